/*
 * rpc_port.c: the host services the glue needs (clock, sleep, poll, memory, guarded calls) in
 * both builds, the transport type, and (native module only) the few libc functions that the
 * compiler and the Rust object refer to.
 */
#include "rpc_glue.h"

rpc_port_t rpc_port;

/* _port_init(ticks_ms, sleep_ms, poll, ticks_max, ticks_us): called once by the shim with
 * time.ticks_ms, time.sleep_ms, select.poll (or None), time.ticks_add(0, -1) (the largest
 * ticks value) and time.ticks_us. They are builtins in ROM, so keeping them in a global that the garbage
 * collector does not scan is safe. */
static mp_obj_t rpc_port_init(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    rpc_port.ticks_ms = args[0];
    rpc_port.sleep_ms = args[1];
    rpc_port.poll = args[2];
    rpc_port.ticks_mask = (uint32_t)mp_obj_get_int_truncated(args[3]);
    rpc_port.ticks_us = args[4];
    #if MICROPY_ENABLE_DYNRUNTIME
    rpc_port.ticks_raw = (uint32_t)mp_obj_get_int_truncated(mp_call_function_n_kw(rpc_port.ticks_ms, 0, 0, NULL));
    #endif
    #if MICROPY_ENABLE_DYNRUNTIME
    rpc_port.memoryview_type = (const mp_obj_type_t *)MP_OBJ_TO_PTR(mp_load_global(MP_QSTR_memoryview));
    #endif
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rpc_port_init_obj, 5, 5, rpc_port_init);

uint32_t rpc_ticks_ms(void) {
    #if MICROPY_ENABLE_DYNRUNTIME
    uint32_t raw = (uint32_t)mp_obj_get_int_truncated(mp_call_function_n_kw(rpc_port.ticks_ms, 0, 0, NULL));
    rpc_port.ticks += (raw - rpc_port.ticks_raw) & rpc_port.ticks_mask;
    rpc_port.ticks_raw = raw;
    return rpc_port.ticks;
    #else
    return (uint32_t)mp_hal_ticks_ms();
    #endif
}

uint32_t rpc_ticks_us(void) {
    #if MICROPY_ENABLE_DYNRUNTIME
    return (uint32_t)mp_obj_get_int_truncated(mp_call_function_n_kw(rpc_port.ticks_us, 0, 0, NULL));
    #else
    return (uint32_t)mp_hal_ticks_us();
    #endif
}

uint32_t rpc_us_since(uint32_t start_us) {
    #if MICROPY_ENABLE_DYNRUNTIME
    /* time.ticks_us wraps at the same power of two as time.ticks_ms */
    return (rpc_ticks_us() - start_us) & rpc_port.ticks_mask;
    #else
    return rpc_ticks_us() - start_us;
    #endif
}

void rpc_sleep_ms(uint32_t ms) {
    #if MICROPY_ENABLE_DYNRUNTIME
    mp_obj_t arg = MP_OBJ_NEW_SMALL_INT(ms);
    mp_call_function_n_kw(rpc_port.sleep_ms, 1, 0, &arg);
    #else
    mp_hal_delay_ms(ms);
    #endif
}

/******************************************************************************/
// Memory

void *rpc_malloc_maybe(size_t n) {
    #if MICROPY_ENABLE_DYNRUNTIME
    /* mp_fun_table.realloc_ is gc_realloc: NULL on failure, never raises. */
    return mp_fun_table.realloc_(NULL, n, false);
    #else
    return m_malloc_maybe(n);
    #endif
}

void rpc_free(void *ptr, size_t n) {
    if (ptr == NULL) {
        return;
    }
    #if MICROPY_ENABLE_DYNRUNTIME
    (void)n;
    mp_fun_table.realloc_(ptr, 0, false);
    #else
    m_del(uint8_t, ptr, n);
    #endif
}

void *rpc_obj_new(size_t size, const mp_obj_type_t *type) {
    mp_obj_base_t *base = rpc_malloc_maybe(size);
    if (base == NULL) {
        #if MICROPY_ENABLE_DYNRUNTIME
        mp_raise_msg(&mp_type_MemoryError, NULL);
        #else
        m_malloc_fail(size);
        #endif
    }
    memset(base, 0, size);
    base->type = type;
    return base;
}

void rpc_memoryview_set(mp_obj_t mv, void *base, size_t offset, size_t len, bool writable) {
    mp_obj_array_t *self = MP_OBJ_TO_PTR(mv);
    self->typecode = 'B' | (writable ? MP_OBJ_ARRAY_TYPECODE_FLAG_RW : 0);
    /* A memoryview's `free` field is its offset into items (py/objarray.c); keeping items
     * at the start of the heap block keeps the block alive for the garbage collector. */
    self->free = offset;
    self->len = len;
    self->items = base;
}

mp_obj_t rpc_memoryview_new(void *base, size_t offset, size_t len, bool writable) {
    #if MICROPY_ENABLE_DYNRUNTIME
    /* (Set by _port_init, which the shim runs before anything else of this module.) */
    const mp_obj_type_t *type = rpc_port.memoryview_type;
    #else
    const mp_obj_type_t *type = &mp_type_memoryview;
    #endif
    mp_obj_array_t *self = rpc_obj_new(sizeof(mp_obj_array_t), type);
    rpc_memoryview_set(MP_OBJ_FROM_PTR(self), base, offset, len, writable);
    return MP_OBJ_FROM_PTR(self);
}

/******************************************************************************/
// Calls

mp_obj_t rpc_call_method(mp_obj_t obj, qstr attr, size_t n_args, const mp_obj_t *args) {
    mp_obj_t dest[2 + 3];
    mp_load_method(obj, attr, dest);
    for (size_t i = 0; i < n_args; i++) {
        dest[2 + i] = args[i];
    }
    return mp_call_method_n_kw(n_args, 0, dest);
}

mp_obj_t rpc_try_call_method(mp_obj_t obj, qstr attr, size_t n_args, const mp_obj_t *args, mp_obj_t *exc) {
    nlr_buf_t nlr;
    #if MICROPY_ENABLE_DYNRUNTIME
    if (mp_fun_table.setjmp_ != NULL) {
        /* A host built with setjmp-based nlr: our nlr_buf_t does not fit its layout, so
         * the call is made unguarded and an exception propagates. */
        return rpc_call_method(obj, attr, n_args, args);
    }
    if (mp_fun_table.nlr_push(&nlr) == 0) {
        mp_obj_t ret = rpc_call_method(obj, attr, n_args, args);
        mp_fun_table.nlr_pop();
        return ret;
    }
    #else
    if (nlr_push(&nlr) == 0) {
        mp_obj_t ret = rpc_call_method(obj, attr, n_args, args);
        nlr_pop();
        return ret;
    }
    #endif
    if (exc != NULL) {
        *exc = MP_OBJ_FROM_PTR(nlr.ret_val);
    }
    return MP_OBJ_NULL;
}

/******************************************************************************/
// The transport type (transport.h)

static void rpc_transport_print(const mp_print_t *print, mp_obj_t self_in, mp_print_kind_t kind) {
    (void)kind;
    mp_printf(print, "<rpc transport %p>", MP_OBJ_TO_PTR(self_in));
}

#if MICROPY_ENABLE_DYNRUNTIME
mp_obj_full_type_t rpc_type_transport;
void rpc_transport_type_init(void) {
    rpc_type_transport.base.type = (void *)&mp_type_type;
    rpc_type_transport.flags = MP_TYPE_FLAG_NONE;
    rpc_type_transport.name = MP_QSTR_transport;
    MP_OBJ_TYPE_SET_SLOT(&rpc_type_transport, print, rpc_transport_print, 0);
}
#else
MP_DEFINE_CONST_OBJ_TYPE(
    rpc_type_transport,
    MP_QSTR_transport,
    MP_TYPE_FLAG_NONE,
    print, rpc_transport_print
    );
#endif

rpc_transport_t *rpc_transport_new(size_t size, const rpc_transport_ops_t *ops) {
    rpc_transport_t *t = rpc_obj_new(size, RPC_TYPE(rpc_type_transport));
    t->ops = ops;
    t->spin_us = RPC_SPIN_US_DEFAULT;
    return t;
}

rpc_transport_t *rpc_transport_get(mp_obj_t obj) {
    if (mp_obj_get_type(obj) != RPC_TYPE(rpc_type_transport)) {
        mp_raise_TypeError(MP_ERROR_TEXT("expected an rpc transport"));
    }
    return MP_OBJ_TO_PTR(obj);
}

/******************************************************************************/
// libc for the native module: mpy_ld.py links no libc, but gcc emits calls to these for
// struct copies and the Rust object refers to them.

#if MICROPY_ENABLE_DYNRUNTIME
void *memcpy(void *dst, const void *src, size_t n) {
    return mp_fun_table.memmove_(dst, src, n);
}

void *memmove(void *dst, const void *src, size_t n) {
    return mp_fun_table.memmove_(dst, src, n);
}

void *memset(void *dst, int c, size_t n) {
    return mp_fun_table.memset_(dst, c, n);
}

int memcmp(const void *a, const void *b, size_t n) {
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) {
            return x[i] < y[i] ? -1 : 1;
        }
    }
    return 0;
}

int bcmp(const void *a, const void *b, size_t n) {
    return memcmp(a, b, n);
}


#if defined(__arm__)
/* The ARM EABI helpers that gcc and LLVM call for memory operations. */
void __aeabi_memcpy(void *dst, const void *src, size_t n) {
    mp_fun_table.memmove_(dst, src, n);
}
void __aeabi_memcpy4(void *dst, const void *src, size_t n) {
    mp_fun_table.memmove_(dst, src, n);
}
void __aeabi_memcpy8(void *dst, const void *src, size_t n) {
    mp_fun_table.memmove_(dst, src, n);
}
void __aeabi_memmove(void *dst, const void *src, size_t n) {
    mp_fun_table.memmove_(dst, src, n);
}
void __aeabi_memmove4(void *dst, const void *src, size_t n) {
    mp_fun_table.memmove_(dst, src, n);
}
void __aeabi_memmove8(void *dst, const void *src, size_t n) {
    mp_fun_table.memmove_(dst, src, n);
}
void __aeabi_memset(void *dst, size_t n, int c) {
    mp_fun_table.memset_(dst, c, n);
}
void __aeabi_memset4(void *dst, size_t n, int c) {
    mp_fun_table.memset_(dst, c, n);
}
void __aeabi_memset8(void *dst, size_t n, int c) {
    mp_fun_table.memset_(dst, c, n);
}
void __aeabi_memclr(void *dst, size_t n) {
    mp_fun_table.memset_(dst, 0, n);
}
void __aeabi_memclr4(void *dst, size_t n) {
    mp_fun_table.memset_(dst, 0, n);
}
void __aeabi_memclr8(void *dst, size_t n) {
    mp_fun_table.memset_(dst, 0, n);
}

/* 64-bit unsigned division (gcc calls __aeabi_uldivmod for it on 32-bit ARM): shift and
 * subtract. Division by zero gives 0 remainder n, like no trap at all. */
uint64_t rpc_udivmod64(uint64_t n, uint64_t d, uint64_t *rem) {
    uint64_t q = 0, r = 0;
    if (d == 0) {
        *rem = n;
        return 0;
    }
    for (int i = 63; i >= 0; i--) {
        r = (r << 1) | ((n >> i) & 1);
        if (r >= d) {
            r -= d;
            q |= (uint64_t)1 << i;
        }
    }
    *rem = r;
    return q;
}

/* Signed: the quotient rounds toward zero, the remainder takes the dividend's sign. */
int64_t rpc_divmod64(int64_t n, int64_t d, int64_t *rem) {
    uint64_t un = n < 0 ? -(uint64_t)n : (uint64_t)n;
    uint64_t ud = d < 0 ? -(uint64_t)d : (uint64_t)d;
    uint64_t ur;
    uint64_t uq = rpc_udivmod64(un, ud, &ur);
    *rem = n < 0 ? -(int64_t)ur : (int64_t)ur;
    return (n < 0) != (d < 0) ? -(int64_t)uq : (int64_t)uq;
}

/* The EABI returns the quotient in r0:r1 and the remainder in r2:r3, which C cannot say. */
__attribute__((naked)) void __aeabi_uldivmod(void) {
    __asm volatile (
        "push {r4, lr}\n"
        "sub sp, sp, #16\n"
        "add r4, sp, #8\n"
        "str r4, [sp]\n"
        "bl rpc_udivmod64\n"
        "ldr r2, [sp, #8]\n"
        "ldr r3, [sp, #12]\n"
        "add sp, sp, #16\n"
        "pop {r4, pc}\n"
        );
}

__attribute__((naked)) void __aeabi_ldivmod(void) {
    __asm volatile (
        "push {r4, lr}\n"
        "sub sp, sp, #16\n"
        "add r4, sp, #8\n"
        "str r4, [sp]\n"
        "bl rpc_divmod64\n"
        "ldr r2, [sp, #8]\n"
        "ldr r3, [sp, #12]\n"
        "add sp, sp, #16\n"
        "pop {r4, pc}\n"
        );
}

#if defined(__ARM_ARCH_6M__)
/* armv6m (Cortex-M0/M0+, the Raspberry Pi Pico) has no divide instruction and no 32x32->64
 * multiply: gcc and LLVM call these EABI helpers for them, and for 64-bit shifts by a
 * variable count. They use only 32-bit operations, so none of them calls another helper. */
static uint32_t rpc_udivmod32(uint32_t n, uint32_t d, uint32_t *rem) {
    uint32_t q = 0, r = 0;
    if (d == 0) {
        *rem = n;
        return 0;
    }
    for (int i = 31; i >= 0; i--) {
        r = (r << 1) | ((n >> i) & 1);
        if (r >= d) {
            r -= d;
            q |= 1u << i;
        }
    }
    *rem = r;
    return q;
}

uint32_t __aeabi_uidiv(uint32_t n, uint32_t d) {
    uint32_t r;
    return rpc_udivmod32(n, d, &r);
}

/* The quotient in r0, the remainder in r1: a 64-bit return value, low word first. */
uint64_t __aeabi_uidivmod(uint32_t n, uint32_t d) {
    uint32_t r;
    uint32_t q = rpc_udivmod32(n, d, &r);
    return ((uint64_t)r << 32) | q;
}

int32_t __aeabi_idiv(int32_t n, int32_t d) {
    uint32_t r;
    uint32_t q = rpc_udivmod32(n < 0 ? -(uint32_t)n : (uint32_t)n, d < 0 ? -(uint32_t)d : (uint32_t)d, &r);
    return (n < 0) != (d < 0) ? -(int32_t)q : (int32_t)q;
}

uint64_t __aeabi_idivmod(int32_t n, int32_t d) {
    uint32_t r;
    uint32_t q = rpc_udivmod32(n < 0 ? -(uint32_t)n : (uint32_t)n, d < 0 ? -(uint32_t)d : (uint32_t)d, &r);
    uint32_t sq = (n < 0) != (d < 0) ? -q : q;
    uint32_t sr = n < 0 ? -r : r;
    return ((uint64_t)sr << 32) | sq;
}

/* 32x32->64 from 16-bit halves. */
static uint64_t rpc_umul32x32(uint32_t a, uint32_t b) {
    uint32_t a0 = a & 0xffff, a1 = a >> 16, b0 = b & 0xffff, b1 = b >> 16;
    uint32_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint32_t mid = (p00 >> 16) + (p01 & 0xffff) + (p10 & 0xffff);
    uint32_t lo = (p00 & 0xffff) | (mid << 16);
    uint32_t hi = p11 + (p01 >> 16) + (p10 >> 16) + (mid >> 16);
    return ((uint64_t)hi << 32) | lo;
}

uint64_t __aeabi_lmul(uint64_t a, uint64_t b) {
    uint32_t al = (uint32_t)a, ah = (uint32_t)(a >> 32), bl = (uint32_t)b, bh = (uint32_t)(b >> 32);
    uint64_t p = rpc_umul32x32(al, bl);
    uint32_t hi = (uint32_t)(p >> 32) + al * bh + ah * bl;
    return ((uint64_t)hi << 32) | (uint32_t)p;
}

uint64_t __aeabi_llsl(uint64_t a, int n) {
    uint32_t lo = (uint32_t)a, hi = (uint32_t)(a >> 32);
    if (n >= 32) {
        hi = lo << (n - 32);
        lo = 0;
    } else if (n > 0) {
        hi = (hi << n) | (lo >> (32 - n));
        lo <<= n;
    }
    return ((uint64_t)hi << 32) | lo;
}

uint64_t __aeabi_llsr(uint64_t a, int n) {
    uint32_t lo = (uint32_t)a, hi = (uint32_t)(a >> 32);
    if (n >= 32) {
        lo = hi >> (n - 32);
        hi = 0;
    } else if (n > 0) {
        lo = (lo >> n) | (hi << (32 - n));
        hi >>= n;
    }
    return ((uint64_t)hi << 32) | lo;
}
#endif
#endif
#endif
