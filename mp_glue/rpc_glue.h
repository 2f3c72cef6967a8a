/*
 * rpc_glue.h: what every file of the glue shares. One source serves two builds:
 * - a user C module linked into firmware (MICROPY_ENABLE_DYNRUNTIME unset): the full runtime API;
 * - a native .mpy (py/dynruntime.mk sets MICROPY_ENABLE_DYNRUNTIME): only mp_fun_table, types
 *   are filled in at load time, globals must not be static (mpy_ld.py), and the garbage
 *   collector does not scan our globals (so they only ever hold ROM objects).
 */
#ifndef OMV_RPC_MP_GLUE_RPC_GLUE_H
#define OMV_RPC_MP_GLUE_RPC_GLUE_H

#if MICROPY_ENABLE_DYNRUNTIME
#include "py/dynruntime.h"
#else
#include "py/runtime.h"
#include "py/mphal.h"
#endif
#include "py/stream.h"
#include "py/objarray.h"
#include <string.h>

#include "omv_rpc.h"
#include "transport.h"

/* A type is a const object in firmware and a struct filled at load time in the native module. */
#if MICROPY_ENABLE_DYNRUNTIME
#define mp_type_MemoryError (*(mp_obj_type_t *)(mp_load_global(MP_QSTR_MemoryError)))
#define mp_call_method_n_kw(n_args, n_kw, args) (mp_fun_table.call_method_n_kw((n_args), (n_kw), (args)))
#endif

#if MICROPY_ENABLE_DYNRUNTIME
#define RPC_TYPE_DECL(name) extern mp_obj_full_type_t name
#define RPC_TYPE(name) ((const mp_obj_type_t *)&name)
#else
#define RPC_TYPE_DECL(name) extern const mp_obj_type_t name
#define RPC_TYPE(name) (&name)
#endif

RPC_TYPE_DECL(rpc_type_engine);
RPC_TYPE_DECL(rpc_type_transport);

/* A locals table written once as an X-macro list of X(MP_QSTR_name, fun_obj). In firmware it
 * becomes a ROM table; in the native module a table filled by rpc_fill_locals() at load time.
 * (Write MP_QSTR_ names out in full: mpy_ld.py finds qstrs by scanning the source text.) */
#define RPC_ROM_ENTRY(qst, obj) { MP_ROM_QSTR(qst), MP_ROM_PTR(&obj) },
#define RPC_DYN_ENTRY(qst, obj) table[i++] = (mp_map_elem_t) { MP_OBJ_NEW_QSTR(qst), MP_OBJ_FROM_PTR(&obj) };
#define RPC_COUNT_ENTRY(qst, obj) +1

/* Host services, resolved once by the shim through _rpc._port_init (rpc_port.c). */
typedef struct rpc_port {
    mp_obj_t ticks_ms;  /* time.ticks_ms (native module only) */
    mp_obj_t sleep_ms;  /* time.sleep_ms (native module only) */
    mp_obj_t ticks_us;  /* time.ticks_us (native module only) */
    mp_obj_t poll;      /* select.poll, or None when the port has no select */
    const mp_obj_type_t *memoryview_type; /* (native module only) */
    /* time.ticks_ms wraps at a power of two that may be below 2**32 (2**30 on a 32-bit
     * port); the engine wants a clock that wraps at 2**32 (native module only). */
    uint32_t ticks_mask;
    uint32_t ticks_raw;
    uint32_t ticks;
} rpc_port_t;
extern rpc_port_t rpc_port;

/* Allocation. rpc_malloc_maybe never raises (NULL when the heap cannot give n bytes);
 * rpc_obj_new raises MemoryError like mp_obj_malloc. */
void *rpc_malloc_maybe(size_t n);
void rpc_free(void *ptr, size_t n);
void *rpc_obj_new(size_t size, const mp_obj_type_t *type);
#define RPC_OBJ_NEW(struct_type, type) ((struct_type *)rpc_obj_new(sizeof(struct_type), (type)))

/* A memoryview of len bytes at base + offset (base must be the start of a heap block, or
 * static memory), writable or not. One small object, no copy. */
mp_obj_t rpc_memoryview_new(void *base, size_t offset, size_t len, bool writable);
/* Repoint a memoryview made by rpc_memoryview_new (for the per-packet views of a Python
 * override transport: no allocation per packet). */
void rpc_memoryview_set(mp_obj_t mv, void *base, size_t offset, size_t len, bool writable);

/* Calls obj.attr(args...) (n_args <= 3); raises like any call. */
mp_obj_t rpc_call_method(mp_obj_t obj, qstr attr, size_t n_args, const mp_obj_t *args);
/* The same, but an exception is caught: returns MP_OBJ_NULL and leaves the exception object
 * in *exc (when exc is not NULL). For setting up sockets, where an OSError is a clean
 * transport failure rather than the user's business. */
mp_obj_t rpc_try_call_method(mp_obj_t obj, qstr attr, size_t n_args, const mp_obj_t *args, mp_obj_t *exc);

#endif /* OMV_RPC_MP_GLUE_RPC_GLUE_H */
