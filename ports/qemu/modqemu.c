// The qemu module: what only an emulated board has. exit() ends QEMU (it needs
// -semihosting); time_ns() and idle_ns() give emulated time, which with -icount shift=0
// counts instructions (1 ns each), so time_ns() - idle_ns() is the instructions run.
#include "py/runtime.h"
#include "py/smallint.h"

#include "board.h"

static mp_obj_t qemu_exit(size_t n_args, const mp_obj_t *args) {
    board_semihosting_exit(n_args ? mp_obj_get_int(args[0]) : 0);
    mp_raise_msg(&mp_type_OSError, MP_ERROR_TEXT("QEMU runs without -semihosting"));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qemu_exit_obj, 0, 1, qemu_exit);

static mp_obj_t qemu_time_ns(void) {
    return mp_obj_new_int_from_ull(board_time_ns());
}
static MP_DEFINE_CONST_FUN_OBJ_0(qemu_time_ns_obj, qemu_time_ns);

static mp_obj_t qemu_idle_ns(void) {
    return mp_obj_new_int_from_ull(board_idle_ns());
}
static MP_DEFINE_CONST_FUN_OBJ_0(qemu_idle_ns_obj, qemu_idle_ns);

// Emulated nanoseconds the CPU was busy (not waiting in WFI), as a small int that wraps
// like time.ticks_*: cheap enough to read around a short measurement.
static mp_obj_t qemu_busy_ns(void) {
    uint64_t busy = board_time_ns() - board_idle_ns();
    return MP_OBJ_NEW_SMALL_INT((mp_uint_t)busy & (MICROPY_PY_TIME_TICKS_PERIOD - 1));
}
static MP_DEFINE_CONST_FUN_OBJ_0(qemu_busy_ns_obj, qemu_busy_ns);

static const mp_rom_map_elem_t qemu_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_qemu) },
    { MP_ROM_QSTR(MP_QSTR_exit), MP_ROM_PTR(&qemu_exit_obj) },
    { MP_ROM_QSTR(MP_QSTR_time_ns), MP_ROM_PTR(&qemu_time_ns_obj) },
    { MP_ROM_QSTR(MP_QSTR_idle_ns), MP_ROM_PTR(&qemu_idle_ns_obj) },
    { MP_ROM_QSTR(MP_QSTR_busy_ns), MP_ROM_PTR(&qemu_busy_ns_obj) },
};
static MP_DEFINE_CONST_DICT(qemu_module_globals, qemu_module_globals_table);

const mp_obj_module_t mp_module_qemu = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&qemu_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_qemu, mp_module_qemu);
