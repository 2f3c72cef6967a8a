/*
 * transport_stream.c: any stream object (machine.UART, pyb.USB_VCP, a socket, a pty or serial
 * file opened in binary mode) as the bus, driven through its stream protocol.
 */
#include "rpc_glue.h"
#include "rpc_transports.h"

typedef struct rpc_stream_transport {
    rpc_transport_t base;
    rpc_stream_t stream;
} rpc_stream_transport_t;

static int rpc_stream_transport_flush(rpc_transport_t *t) {
    /* A stream that ended reports it on the next read, which fails the attempt. */
    rpc_stream_flush(&((rpc_stream_transport_t *)t)->stream);
    return OMV_RPC_IO_OK;
}

static int rpc_stream_transport_send(rpc_transport_t *t, const uint8_t *data, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet) {
    (void)packet;
    return rpc_stream_send(&((rpc_stream_transport_t *)t)->stream, data, len, done, timeout_ms);
}

static int rpc_stream_transport_recv(rpc_transport_t *t, uint8_t *buf, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet) {
    (void)packet;
    return rpc_stream_recv(&((rpc_stream_transport_t *)t)->stream, buf, len, done, timeout_ms);
}

/* (Not static: the driver knows it as a transport that sees bytes as they come.) */
static const rpc_transport_ops_t rpc_stream_transport_ops = {
    .flush = rpc_stream_transport_flush,
    .send = rpc_stream_transport_send,
    .recv = rpc_stream_transport_recv,
    .max_queue_depth = OMV_RPC_DEFAULT_MAX_QUEUE_DEPTH,
    .short_timeout_scale = 1,
    .byte_stream = true,
};

/* stream_transport(stream, nonblocking=False) */
static mp_obj_t rpc_stream_transport_make(size_t n_args, const mp_obj_t *args) {
    rpc_stream_transport_t *t = (rpc_stream_transport_t *)rpc_transport_new(
        sizeof(rpc_stream_transport_t), &rpc_stream_transport_ops);
    rpc_stream_init(&t->stream, &t->base, args[0], n_args > 1 && mp_obj_is_true(args[1]));
    return MP_OBJ_FROM_PTR(t);
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rpc_stream_transport_obj, 1, 2, rpc_stream_transport_make);
