/*
 * modmutex.c: module _mutex, the one atomic step the frozen mutex.py needs: take a flag byte
 * if it is clear (test-and-set) and clear it. In firmware with interrupts masked
 * (MICROPY_BEGIN_ATOMIC_SECTION), so an interrupt handler cannot slip in between; in the
 * native module with an atomic exchange (LDREXB/STREXB on Cortex-M, XCHG on x86-64), which is
 * also correct between threads of the unix port. armv6m (Cortex-M0/M0+) has no exclusive
 * loads: there the exchange masks interrupts (PRIMASK) around a plain load and store.
 */
#if MICROPY_ENABLE_DYNRUNTIME
#include "py/dynruntime.h"
#else
#include "py/runtime.h"
#include "py/mphal.h"
#endif

#if MICROPY_ENABLE_DYNRUNTIME
static uint8_t mutex_exchange(uint8_t *flag, uint8_t value) {
    #if defined(__ARM_ARCH_6M__)
    uint32_t primask;
    __asm volatile ("mrs %0, primask\n cpsid i" : "=r" (primask) : : "memory");
    uint8_t old = *flag;
    *flag = value;
    __asm volatile ("msr primask, %0" : : "r" (primask) : "memory");
    return old;
    #else
    return __atomic_exchange_n(flag, value, __ATOMIC_SEQ_CST);
    #endif
}
#endif

static uint8_t *mutex_flag(mp_obj_t flag) {
    mp_buffer_info_t info;
    mp_get_buffer_raise(flag, &info, MP_BUFFER_RW);
    if (info.len < 1) {
        mp_raise_ValueError(MP_ERROR_TEXT("mutex flag must be one byte"));
    }
    return info.buf;
}

/* _test_and_set(flag): True when this call took the flag (it was clear). */
static mp_obj_t mutex_test_and_set(mp_obj_t flag_in) {
    uint8_t *flag = mutex_flag(flag_in);
    #if MICROPY_ENABLE_DYNRUNTIME
    bool took = mutex_exchange(flag, 1) == 0;
    #else
    mp_uint_t state = MICROPY_BEGIN_ATOMIC_SECTION();
    bool took = *flag == 0;
    *flag = 1;
    MICROPY_END_ATOMIC_SECTION(state);
    #endif
    return mp_obj_new_bool(took);
}
static MP_DEFINE_CONST_FUN_OBJ_1(mutex_test_and_set_obj, mutex_test_and_set);

/* _clear(flag): True when the flag was taken (and is now clear). */
static mp_obj_t mutex_clear(mp_obj_t flag_in) {
    uint8_t *flag = mutex_flag(flag_in);
    #if MICROPY_ENABLE_DYNRUNTIME
    bool was_taken = mutex_exchange(flag, 0) != 0;
    #else
    mp_uint_t state = MICROPY_BEGIN_ATOMIC_SECTION();
    bool was_taken = *flag != 0;
    *flag = 0;
    MICROPY_END_ATOMIC_SECTION(state);
    #endif
    return mp_obj_new_bool(was_taken);
}
static MP_DEFINE_CONST_FUN_OBJ_1(mutex_clear_obj, mutex_clear);

#if MICROPY_ENABLE_DYNRUNTIME
mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR__test_and_set, MP_OBJ_FROM_PTR(&mutex_test_and_set_obj));
    mp_store_global(MP_QSTR__clear, MP_OBJ_FROM_PTR(&mutex_clear_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
#else
static const mp_rom_map_elem_t mutex_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__mutex) },
    { MP_ROM_QSTR(MP_QSTR__test_and_set), MP_ROM_PTR(&mutex_test_and_set_obj) },
    { MP_ROM_QSTR(MP_QSTR__clear), MP_ROM_PTR(&mutex_clear_obj) },
};
static MP_DEFINE_CONST_DICT(mutex_module_globals, mutex_module_globals_table);

const mp_obj_module_t mutex_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&mutex_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR__mutex, mutex_user_cmodule);
#endif
