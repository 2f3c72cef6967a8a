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

// idle_spin(True): wait for interrupts by polling, not WFI, so that under -icount
// time_ns() - idle_ns() counts instructions exactly (costs a host core while waiting).
static mp_obj_t qemu_idle_spin(mp_obj_t spin_in) {
    board_set_idle_spin(mp_obj_is_true(spin_in));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(qemu_idle_spin_obj, qemu_idle_spin);

#if QEMU_WITH_ENGINE
#include "omv_rpc.h"

// The engine's CRC benchmark hook (src/ffi.rs): the CRC-16 of buf, `rounds` times over, in
// one native call, so that busy_ns() around it gives instructions per byte.
uint16_t omv_rpc_bench_crc(const uint8_t *buf, size_t len, uint32_t rounds);

static mp_obj_t qemu_bench_crc(mp_obj_t buf_in, mp_obj_t rounds_in) {
    mp_buffer_info_t buf;
    mp_get_buffer_raise(buf_in, &buf, MP_BUFFER_READ);
    mp_int_t rounds = mp_obj_get_int(rounds_in);
    if (rounds < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("rounds must be >= 0"));
    }
    return MP_OBJ_NEW_SMALL_INT(omv_rpc_bench_crc(buf.buf, buf.len, rounds));
}
static MP_DEFINE_CONST_FUN_OBJ_2(qemu_bench_crc_obj, qemu_bench_crc);
#endif

#if QEMU_RAMFILE
MP_DECLARE_CONST_FUN_OBJ_VAR_BETWEEN(qemu_ramfile_obj);
MP_DECLARE_CONST_FUN_OBJ_0(qemu_ramfiles_obj);
#endif

static const mp_rom_map_elem_t qemu_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_qemu) },
    { MP_ROM_QSTR(MP_QSTR_exit), MP_ROM_PTR(&qemu_exit_obj) },
    { MP_ROM_QSTR(MP_QSTR_time_ns), MP_ROM_PTR(&qemu_time_ns_obj) },
    { MP_ROM_QSTR(MP_QSTR_idle_ns), MP_ROM_PTR(&qemu_idle_ns_obj) },
    { MP_ROM_QSTR(MP_QSTR_busy_ns), MP_ROM_PTR(&qemu_busy_ns_obj) },
    { MP_ROM_QSTR(MP_QSTR_idle_spin), MP_ROM_PTR(&qemu_idle_spin_obj) },
    #if QEMU_WITH_ENGINE
    { MP_ROM_QSTR(MP_QSTR_bench_crc), MP_ROM_PTR(&qemu_bench_crc_obj) },
    #endif
    #if QEMU_RAMFILE
    { MP_ROM_QSTR(MP_QSTR_ramfile), MP_ROM_PTR(&qemu_ramfile_obj) },
    { MP_ROM_QSTR(MP_QSTR_ramfiles), MP_ROM_PTR(&qemu_ramfiles_obj) },
    #endif
};
static MP_DEFINE_CONST_DICT(qemu_module_globals, qemu_module_globals_table);

const mp_obj_module_t mp_module_qemu = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&qemu_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_qemu, mp_module_qemu);
