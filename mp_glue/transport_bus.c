/*
 * transport_bus.c: calls into bus objects for the I2C, SPI and CAN transports
 * (transport_bus.h).
 */
#include "transport_bus.h"

#if MICROPY_ENABLE_DYNRUNTIME
#define RPC_BUS_CALL_METHOD(n_args, n_kw, args) (mp_fun_table.call_method_n_kw((n_args), (n_kw), (args)))
#define RPC_BUS_NLR_PUSH(buf) (mp_fun_table.nlr_push(buf))
#define RPC_BUS_NLR_POP() (mp_fun_table.nlr_pop())
/* A host whose nlr is setjmp-based has another nlr_buf_t layout (see rpc_port.c): there a
 * bus's OSError cannot be caught from here and propagates instead. */
#define RPC_BUS_NLR_USABLE() (mp_fun_table.setjmp_ == NULL)
#else
#define RPC_BUS_CALL_METHOD(n_args, n_kw, args) mp_call_method_n_kw((n_args), (n_kw), (args))
#define RPC_BUS_NLR_PUSH(buf) nlr_push(buf)
#define RPC_BUS_NLR_POP() nlr_pop()
#define RPC_BUS_NLR_USABLE() (true)
#endif

void rpc_bus_method_load(rpc_bus_method_t *m, mp_obj_t obj, qstr attr) {
    mp_obj_t dest[2];
    mp_load_method(obj, attr, dest);
    m->fun = dest[0];
    m->self = dest[1];
}

static mp_obj_t rpc_bus_call_unguarded(const rpc_bus_method_t *m, size_t n_args, size_t n_kw,
    const mp_obj_t *args) {
    mp_obj_t call[2 + RPC_BUS_MAX_ARGS];
    size_t n = n_args + 2 * n_kw;
    call[0] = m->fun;
    call[1] = m->self;
    for (size_t i = 0; i < n; i++) {
        call[2 + i] = args[i];
    }
    if (m->self == MP_OBJ_NULL) {
        return mp_call_function_n_kw(m->fun, n_args, n_kw, &call[2]);
    }
    return RPC_BUS_CALL_METHOD(n_args, n_kw, call);
}

static bool rpc_bus_is_oserror(mp_obj_t exc) {
    #if MICROPY_ENABLE_DYNRUNTIME
    mp_obj_t oserror = mp_load_global(MP_QSTR_OSError);
    #else
    mp_obj_t oserror = MP_OBJ_FROM_PTR(&mp_type_OSError);
    #endif
    return mp_obj_is_true(mp_binary_op(MP_BINARY_OP_EXCEPTION_MATCH, exc, oserror));
}

mp_obj_t rpc_bus_call(const rpc_bus_method_t *m, size_t n_args, size_t n_kw, const mp_obj_t *args,
    int *err) {
    if (!RPC_BUS_NLR_USABLE()) {
        return rpc_bus_call_unguarded(m, n_args, n_kw, args);
    }
    nlr_buf_t nlr;
    if (RPC_BUS_NLR_PUSH(&nlr) == 0) {
        mp_obj_t ret = rpc_bus_call_unguarded(m, n_args, n_kw, args);
        RPC_BUS_NLR_POP();
        return ret;
    }
    mp_obj_t exc = MP_OBJ_FROM_PTR(nlr.ret_val);
    if (rpc_bus_is_oserror(exc)) {
        if (err != NULL) {
            mp_obj_t code = mp_load_attr(exc, MP_QSTR_errno);
            *err = mp_obj_is_small_int(code) ? (int)MP_OBJ_SMALL_INT_VALUE(code) : 0;
        }
        return MP_OBJ_NULL;
    }
    nlr_raise(exc);
}

mp_obj_t rpc_bus_import(qstr module) {
    if (!RPC_BUS_NLR_USABLE()) {
        return mp_import_name(module, mp_const_none, MP_OBJ_NEW_SMALL_INT(0));
    }
    nlr_buf_t nlr;
    if (RPC_BUS_NLR_PUSH(&nlr) == 0) {
        mp_obj_t ret = mp_import_name(module, mp_const_none, MP_OBJ_NEW_SMALL_INT(0));
        RPC_BUS_NLR_POP();
        return ret;
    }
    /* ImportError (or anything the module raised while importing): no such module here. */
    return MP_OBJ_NULL;
}

mp_obj_t rpc_bus_attr(mp_obj_t obj, qstr attr) {
    if (obj == MP_OBJ_NULL) {
        return MP_OBJ_NULL;
    }
    mp_obj_t dest[2];
    mp_load_method_maybe(obj, attr, dest);
    if (dest[0] != MP_OBJ_NULL && dest[1] != MP_OBJ_NULL) {
        /* A method bound to obj: the attribute itself is the bound method object. */
        return mp_load_attr(obj, attr);
    }
    return dest[0];
}

/* A port without the bus: OSError, as every other transport class raises at construction
 * (docs/python-api.md). The native module has no mp_type_OSError symbol: look it up. */
NORETURN void rpc_bus_missing(const char *what) {
    #if MICROPY_ENABLE_DYNRUNTIME
    const mp_obj_type_t *os_error = MP_OBJ_TO_PTR(mp_load_global(MP_QSTR_OSError));
    #else
    const mp_obj_type_t *os_error = &mp_type_OSError;
    #endif
    mp_raise_msg(os_error, (mp_rom_error_text_t)what);
}

void rpc_bus_delay_init(mp_obj_t *sleep_us) {
    #if MICROPY_ENABLE_DYNRUNTIME
    mp_obj_t time = mp_import_name(MP_QSTR_time, mp_const_none, MP_OBJ_NEW_SMALL_INT(0));
    *sleep_us = mp_load_attr(time, MP_QSTR_sleep_us);
    #else
    *sleep_us = mp_const_none;
    #endif
}

void rpc_bus_delay_us(mp_obj_t sleep_us, uint32_t us) {
    #if MICROPY_ENABLE_DYNRUNTIME
    mp_obj_t arg = MP_OBJ_NEW_SMALL_INT(us);
    mp_call_function_n_kw(sleep_us, 1, 0, &arg);
    #else
    (void)sleep_us;
    mp_hal_delay_us(us);
    #endif
}
