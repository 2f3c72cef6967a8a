/*
 * transport_python.c: the documented way to add a transport in Python. A subclass of
 * rpc_master/rpc_slave that overrides get_bytes(buff, timeout_ms), put_bytes(data, timeout_ms)
 * and optionally _flush() gets those methods called for each io action. The buffers are
 * passed as memoryviews of the engine's packet (one view per direction, repointed for each
 * packet: no allocation per packet); they are valid only during the call.
 */
#include "rpc_glue.h"
#include "rpc_transports.h"

/* Which methods the subclass overrides (bits of the `overrides` argument). */
#define RPC_OVERRIDES_GET_BYTES 1
#define RPC_OVERRIDES_PUT_BYTES 2
#define RPC_OVERRIDES_FLUSH     4

typedef struct rpc_python_transport {
    rpc_transport_t base;
    mp_obj_t owner;     /* the rpc object whose methods are called */
    mp_obj_t recv_view; /* memoryview handed to get_bytes */
    mp_obj_t send_view; /* memoryview handed to put_bytes */
    uint32_t overrides;
} rpc_python_transport_t;

static int rpc_python_transport_flush(rpc_transport_t *t) {
    rpc_python_transport_t *self = (rpc_python_transport_t *)t;
    if (self->overrides & RPC_OVERRIDES_FLUSH) {
        rpc_call_method(self->owner, MP_QSTR__flush, 0, NULL);
    }
    return OMV_RPC_IO_OK;
}

static int rpc_python_transport_send(rpc_transport_t *t, const uint8_t *data, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet) {
    (void)packet;
    rpc_python_transport_t *self = (rpc_python_transport_t *)t;
    if (self->overrides & RPC_OVERRIDES_PUT_BYTES) {
        rpc_memoryview_set(self->send_view, (void *)data, *done, len - *done, false);
        mp_obj_t args[2] = { self->send_view, MP_OBJ_NEW_SMALL_INT(timeout_ms) };
        mp_obj_t ret = rpc_call_method(self->owner, MP_QSTR_put_bytes, 2, args);
        rpc_memoryview_set(self->send_view, NULL, 0, 0, false);
        /* The reference put_bytes returns nothing; an explicit False is a failure. */
        if (ret == mp_const_false) {
            return OMV_RPC_IO_ERROR;
        }
    }
    *done = len;
    return OMV_RPC_IO_OK;
}

static int rpc_python_transport_recv(rpc_transport_t *t, uint8_t *buf, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet) {
    (void)packet;
    rpc_python_transport_t *self = (rpc_python_transport_t *)t;
    if (!(self->overrides & RPC_OVERRIDES_GET_BYTES)) {
        return OMV_RPC_IO_TIMEOUT;
    }
    size_t want = len - *done;
    rpc_memoryview_set(self->recv_view, buf, *done, want, true);
    mp_obj_t args[2] = { self->recv_view, MP_OBJ_NEW_SMALL_INT(timeout_ms) };
    mp_obj_t ret = rpc_call_method(self->owner, MP_QSTR_get_bytes, 2, args);
    rpc_memoryview_set(self->recv_view, NULL, 0, 0, true);
    if (ret == mp_const_none || ret == mp_const_false) {
        return OMV_RPC_IO_TIMEOUT;
    }
    if (ret != self->recv_view) {
        /* Another bytes-like object: take it if it is whole. */
        mp_buffer_info_t info;
        if (!mp_get_buffer(ret, &info, MP_BUFFER_READ)) {
            return OMV_RPC_IO_ERROR;
        }
        if (info.len != want) {
            return OMV_RPC_IO_TIMEOUT;
        }
        memcpy(buf + *done, info.buf, want);
    }
    *done = len;
    return OMV_RPC_IO_OK;
}

static const rpc_transport_ops_t rpc_python_transport_ops = {
    .flush = rpc_python_transport_flush,
    .send = rpc_python_transport_send,
    .recv = rpc_python_transport_recv,
    .max_queue_depth = OMV_RPC_DEFAULT_MAX_QUEUE_DEPTH,
    .short_timeout_scale = 1,
    .whole_packets = true,
};

/* python_transport(owner, overrides) */
static mp_obj_t rpc_python_transport_make(mp_obj_t owner, mp_obj_t overrides) {
    rpc_python_transport_t *t = (rpc_python_transport_t *)rpc_transport_new(
        sizeof(rpc_python_transport_t), &rpc_python_transport_ops);
    t->owner = owner;
    t->overrides = mp_obj_get_int(overrides);
    t->recv_view = rpc_memoryview_new(NULL, 0, 0, true);
    t->send_view = rpc_memoryview_new(NULL, 0, 0, false);
    return MP_OBJ_FROM_PTR(t);
}
MP_DEFINE_CONST_FUN_OBJ_2(rpc_python_transport_obj, rpc_python_transport_make);
