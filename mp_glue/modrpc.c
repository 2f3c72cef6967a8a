/*
 * modrpc.c: module _rpc, the engine driver. An Engine object holds the sans-IO engine
 * (include/omv_rpc.h) in its own memory, a transport (transport.h) and the buffers the
 * engine works in, and carries out the io actions the engine asks for. MicroPython calls
 * that may raise (transports, callbacks) happen only here, between engine calls: an
 * exception leaves the operation unfinished, and the engine is aborted before the next one.
 *
 * Memory: the command packet (master), the received argument (slave), the result packet
 * (slave) and stream frames live in buffers that grow when needed and are reused; a call's
 * result is the one allocation per call (the received RESULT_DATA packet, handed out as a
 * memoryview of its payload). Data packets are allocated without raising: no memory is a
 * clean failure (OMV_RPC_IO_ERROR), never MemoryError.
 */
#include "rpc_glue.h"
#include "rpc_transports.h"

/* The default timings and limits are the engine's (OMV_RPC_DEFAULT_* in omv_rpc.h). */

/* Engine.op: what the engine is doing as far as the glue knows. */
#define RPC_OP_IDLE 0
#define RPC_OP_BLOCKING 1    /* a blocking operation; still set afterwards only if it raised */
#define RPC_OP_CALL_RUNNING 2 /* call_start() ... call_poll() */
#define RPC_OP_CALL_DONE 3   /* finished, waiting for call_result() */

/* Engine.status before the first operation. */
#define RPC_STATUS_NONE 0xFFFFFFFFu

typedef struct rpc_buffer {
    uint8_t *data;
    size_t cap;
} rpc_buffer_t;

typedef struct rpc_callback {
    uint32_t name_hash;
    mp_obj_t fun;
} rpc_callback_t;

typedef struct rpc_engine_obj {
    mp_obj_base_t base;
    omv_rpc_engine_t engine;
    omv_rpc_config_t config;
    mp_obj_t transport_obj;
    rpc_transport_t *transport;
    uint32_t role;
    uint32_t status;         /* how the last operation ended (OMV_RPC_*) */
    const char *glue_error;  /* a failure only the glue knows about (no memory), or NULL */
    uint8_t op;              /* RPC_OP_* */
    bool reinit_pending;     /* configure() came during an operation (from a callback):
                                the engine takes the new config when that operation ends */
    bool io_pending;         /* a SEND or RECV is being carried out */
    omv_rpc_io_t io;
    size_t io_done;
    uint32_t io_start;
    uint32_t io_timeout;
    uint32_t io_start_timeout; /* RECV: the first byte is due within this (0: no limit) */
    uint32_t io_gap_ms;        /* RECV of a data packet: the longest pause between bytes (0: none) */
    uint32_t io_gap_at;        /* when io_done last grew (or the action began) */
    size_t io_gap_done;        /* io_done then */
    uint8_t *io_buf;         /* where the pending RECV goes */
    rpc_buffer_t command;    /* master: the COMMAND_DATA packet; slave: the one received */
    rpc_buffer_t result;     /* slave: the RESULT_DATA packet to send */
    rpc_buffer_t frame;      /* stream reader: the frame received */
    uint8_t *result_data;    /* master: the RESULT_DATA packet of the running call */
    size_t result_data_len;
    uint8_t *result_into;    /* master, call_into(): the caller's buffer the RESULT_DATA packet
                                goes to (NULL: a fresh one), and its length */
    size_t result_into_len;
    mp_obj_t produced;       /* stream writer: the frame being sent (kept alive) */
    mp_obj_t stream_cb;
    rpc_callback_t *callbacks;
    size_t n_callbacks;
    size_t callbacks_cap;
    mp_obj_t schedule_cb;
    mp_obj_t loop_cb;
    mp_obj_t empty_bytes;
    mp_obj_t view;           /* the memoryview callbacks get: repointed for each call or
                                frame and emptied afterwards (no allocation per call) */
    uint8_t small_packet[8]; /* empty packets (magic + crc) */
} rpc_engine_obj_t;

/******************************************************************************/
// Buffers

/* The buffer grown to at least n bytes, without raising: NULL when the heap cannot give it.
 * A buffer that was outgrown is left to the garbage collector (a callback may still hold a
 * memoryview of it). */
static uint8_t *rpc_buffer_reserve(rpc_buffer_t *b, size_t n) {
    if (b->cap >= n && b->data != NULL) {
        return b->data;
    }
    uint8_t *data = rpc_malloc_maybe(n);
    if (data == NULL) {
        return NULL;
    }
    b->data = data;
    b->cap = n;
    return data;
}

/******************************************************************************/
// Carrying out io actions

static uint32_t rpc_now(void) {
    return rpc_ticks_ms();
}

static void rpc_complete(rpc_engine_obj_t *self, int32_t io_status, const uint8_t *buf, size_t len) {
    omv_rpc_complete(&self->engine, rpc_now(), io_status, buf, len);
}

/* Where a RECV with io.data == NULL (a data packet or a frame) goes; NULL if no memory. */
static uint8_t *rpc_recv_buffer(rpc_engine_obj_t *self, size_t len) {
    switch (self->io.packet) {
        case OMV_RPC_PACKET_RESULT_DATA:
            if (len == OMV_RPC_PACKET_OVERHEAD) {
                return self->small_packet; /* an empty result */
            }
            if (self->result_into != NULL) {
                /* call_into(): the packet goes to the caller's buffer (no allocation). */
                if (len > self->result_into_len) {
                    self->glue_error = "TRANSPORT_ERROR: RESULT_DATA longer than the buffer (the result + 4 bytes)";
                    return NULL;
                }
                self->result_data = self->result_into;
                self->result_data_len = len;
                return self->result_data;
            }
            /* A retry of the same call reuses the packet it allocated; the buffer becomes
             * the result on success. */
            if (self->result_data == NULL || self->result_data_len != len) {
                self->result_data = rpc_malloc_maybe(len);
                self->result_data_len = self->result_data != NULL ? len : 0;
            }
            return self->result_data;
        case OMV_RPC_PACKET_COMMAND_DATA:
            return rpc_buffer_reserve(&self->command, len);
        default:
            return rpc_buffer_reserve(&self->frame, len);
    }
}

/* The callbacks' memoryview, pointed at io data that lies in one of our buffers (items kept
 * at the block start for the garbage collector). */
static mp_obj_t rpc_view_of(rpc_engine_obj_t *self, rpc_buffer_t *b, const uint8_t *data, size_t len) {
    if (len == 0 || data == NULL) {
        rpc_memoryview_set(self->view, NULL, 0, 0, false);
    } else if (b->data != NULL && data >= b->data && data + len <= b->data + b->cap) {
        rpc_memoryview_set(self->view, b->data, data - b->data, len, false);
    } else {
        rpc_memoryview_set(self->view, (void *)data, 0, len, false);
    }
    return self->view;
}

static void rpc_view_clear(rpc_engine_obj_t *self) {
    rpc_memoryview_set(self->view, NULL, 0, 0, false);
}

static mp_obj_t rpc_find_callback(rpc_engine_obj_t *self, uint32_t name_hash) {
    for (size_t i = 0; i < self->n_callbacks; i++) {
        if (self->callbacks[i].name_hash == name_hash) {
            return self->callbacks[i].fun;
        }
    }
    return MP_OBJ_NULL;
}

/* Slave: run the callback for the command and complete with the framed result. */
static void rpc_dispatch(rpc_engine_obj_t *self) {
    mp_obj_t fun = rpc_find_callback(self, self->io.name_hash);
    if (fun == MP_OBJ_NULL) {
        /* No callback of that name: the reference answers with an empty result. */
        rpc_complete(self, OMV_RPC_IO_OK, self->small_packet, OMV_RPC_PACKET_OVERHEAD);
        return;
    }
    mp_obj_t arg = rpc_view_of(self, &self->command, self->io.data, self->io.len);
    mp_obj_t ret = mp_call_function_n_kw(fun, 1, 0, &arg);
    if (ret == mp_const_none) {
        rpc_view_clear(self);
        rpc_complete(self, OMV_RPC_IO_OK, self->small_packet, OMV_RPC_PACKET_OVERHEAD);
        return;
    }
    mp_buffer_info_t info;
    if (!mp_get_buffer(ret, &info, MP_BUFFER_READ)) {
        rpc_view_clear(self);
        mp_raise_TypeError(MP_ERROR_TEXT("an rpc callback must return a bytes-like object or None"));
    }
    uint8_t *packet = rpc_buffer_reserve(&self->result, info.len + OMV_RPC_PACKET_OVERHEAD);
    if (packet == NULL) {
        rpc_view_clear(self);
        self->glue_error = "TRANSPORT_ERROR: RESULT_DATA no memory for the result";
        rpc_complete(self, OMV_RPC_IO_ERROR, NULL, 0);
        return;
    }
    /* (The result may be the argument's view itself: copy before emptying it.) */
    memcpy(packet + OMV_RPC_PAYLOAD_OFFSET, info.buf, info.len);
    rpc_view_clear(self);
    rpc_complete(self, OMV_RPC_IO_OK, packet, info.len + OMV_RPC_PACKET_OVERHEAD);
}

/* Stream reader: hand the frame to the callback; a False return stops the stream. */
static void rpc_deliver(rpc_engine_obj_t *self) {
    mp_obj_t arg = rpc_view_of(self, &self->frame, self->io.data, self->io.len);
    mp_obj_t ret = mp_call_function_n_kw(self->stream_cb, 1, 0, &arg);
    rpc_view_clear(self);
    /* False (exactly: None and anything else go on, as the reference ignores the return)
     * ends the stream before this frame's ack, as in the host package. */
    rpc_complete(self, ret == mp_const_false ? OMV_RPC_IO_ERROR : OMV_RPC_IO_OK, NULL, 0);
}

/* Stream writer: the next frame from the callback; None ends the stream. */
static void rpc_produce(rpc_engine_obj_t *self) {
    mp_obj_t ret = mp_call_function_n_kw(self->stream_cb, 0, 0, NULL);
    if (ret == mp_const_none) {
        self->produced = MP_OBJ_NULL;
        rpc_complete(self, OMV_RPC_IO_ERROR, NULL, 0);
        return;
    }
    mp_buffer_info_t info;
    if (!mp_get_buffer(ret, &info, MP_BUFFER_READ)) {
        mp_raise_TypeError(MP_ERROR_TEXT("a stream_writer callback must return a bytes-like object"));
    }
    self->produced = ret;
    rpc_complete(self, OMV_RPC_IO_OK, info.buf, info.len);
}

/* FLUSH: the engine decides when (see OMV_RPC_ACTION_FLUSH in omv_rpc.h); never skip one. */
static void rpc_flush(rpc_engine_obj_t *self) {
    rpc_complete(self, self->transport->ops->flush(self->transport), NULL, 0);
}

/* io.start_timeout_ms, for the transports that see the bytes of a packet as they come
 * (stream: UART, USB VCP, socket, pty; network: a UDP datagram or the TCP connection). Those
 * that move whole packets (I2C, SPI, a Python override) cannot tell when the first byte
 * came, and keep the packet's whole timeout. */
static uint32_t rpc_io_start_timeout(rpc_engine_obj_t *self) {
    if (self->io.action != OMV_RPC_ACTION_RECV || self->transport->ops->whole_packets) {
        return 0;
    }
    uint32_t start_timeout = self->io.start_timeout_ms;
    return start_timeout < self->io_timeout ? start_timeout : 0;
}

/* True while a RECV with a first-byte limit has nothing yet and the limit has passed. */
static bool rpc_first_byte_missed(rpc_engine_obj_t *self) {
    return self->io_start_timeout != 0 && self->io_done == 0
           && rpc_time_left(self->io_start, self->io_start_timeout) == 0;
}

/* io.gap_ms, for the byte-stream transports (UART, USB VCP, socket, pty; UDP through its
 * datagram buffer). CAN's frames and the whole-packet buses keep the packet's timeout. */
static uint32_t rpc_io_gap(rpc_engine_obj_t *self) {
    if (self->io.action != OMV_RPC_ACTION_RECV || !self->transport->ops->byte_stream) {
        return 0;
    }
    return self->io.gap_ms;
}

/* True when a RECV under a gap limit has had bytes and none came for io.gap_ms (a packet cut
 * short: the engine retries at once instead of waiting out the whole packet's timeout). */
static bool rpc_gap_passed(rpc_engine_obj_t *self) {
    if (self->io_gap_ms == 0 || self->io_done == 0) {
        return false;
    }
    if (self->io_done != self->io_gap_done) {
        self->io_gap_done = self->io_done;
        self->io_gap_at = rpc_now();
        return false;
    }
    return rpc_time_left(self->io_gap_at, self->io_gap_ms) == 0;
}

/* Carries out io actions until the operation is done (true) or, when !blocking, until an
 * io action would have to wait (false; call again to go on). */
static bool rpc_drive(rpc_engine_obj_t *self, bool blocking) {
    rpc_transport_t *t = self->transport;
    for (;;) {
        if (!self->io_pending) {
            omv_rpc_poll(&self->engine, rpc_now(), &self->io);
            #ifdef RPC_TRACE
            mp_printf(&mp_plat_print, "%u %c a%u p%u len%u to%u\n", (unsigned)rpc_now(), self->role ? 'S' : 'M',
                (unsigned)self->io.action, (unsigned)self->io.packet, (unsigned)self->io.len, (unsigned)self->io.timeout_ms);
            #endif
            switch (self->io.action) {
                case OMV_RPC_ACTION_DONE:
                    self->status = self->io.status;
                    return true;
                case OMV_RPC_ACTION_FLUSH:
                    rpc_flush(self);
                    continue;
                case OMV_RPC_ACTION_WAIT: {
                    /* A pause the engine asked for (after a transport error). */
                    uint32_t left = self->io.deadline_ms - rpc_now();
                    if ((int32_t)left > 0) {
                        if (!blocking) {
                            return false;
                        }
                        rpc_sleep_ms(left);
                    }
                    rpc_complete(self, OMV_RPC_IO_OK, NULL, 0);
                    continue;
                }
                case OMV_RPC_ACTION_SEND:
                case OMV_RPC_ACTION_RECV:
                    self->io_pending = true;
                    self->io_done = 0;
                    /* The engine's deadlines: the step began timeout_ms before deadline_ms. */
                    self->io_timeout = self->io.timeout_ms;
                    self->io_start = self->io.deadline_ms - self->io.timeout_ms;
                    self->io_start_timeout = rpc_io_start_timeout(self);
                    self->io_gap_ms = rpc_io_gap(self);
                    self->io_buf = self->io.data;
                    if (self->io.action == OMV_RPC_ACTION_RECV && self->io_buf == NULL) {
                        self->io_buf = rpc_recv_buffer(self, self->io.len);
                        if (self->io_buf == NULL || self->io.prefix_len > self->io.len) {
                            self->io_pending = false;
                            if (self->glue_error == NULL) {
                                self->glue_error = "TRANSPORT_ERROR: data packet no memory";
                            }
                            rpc_complete(self, OMV_RPC_IO_ERROR, NULL, 0);
                            continue;
                        }
                        /* The packet's first bytes, which the engine read to tell what came. */
                        memcpy(self->io_buf, self->io.prefix, self->io.prefix_len);
                        self->io_done = self->io.prefix_len;
                    }
                    self->io_gap_done = self->io_done;
                    self->io_gap_at = rpc_now();
                    break;
                case OMV_RPC_ACTION_DISPATCH:
                    rpc_dispatch(self);
                    continue;
                case OMV_RPC_ACTION_DELIVER:
                    rpc_deliver(self);
                    continue;
                case OMV_RPC_ACTION_PRODUCE:
                    rpc_produce(self);
                    continue;
                default:
                    rpc_complete(self, OMV_RPC_IO_ERROR, NULL, 0);
                    continue;
            }
        }
        uint32_t left = (blocking || t->ops->whole_packets) ? rpc_time_left(self->io_start, self->io_timeout) : 0;
        if (self->io_start_timeout != 0 && self->io_done == 0) {
            /* Nothing of the packet yet: wait for its first byte only until the limit. */
            uint32_t start_left = rpc_time_left(self->io_start, self->io_start_timeout);
            left = start_left < left ? start_left : left;
        }
        if (self->io_gap_ms != 0 && self->io_done > 0) {
            /* Bytes came: the next must come within the gap limit. */
            uint32_t gap_left = rpc_time_left(self->io_gap_at, self->io_gap_ms);
            left = gap_left < left ? gap_left : left;
        }
        int status;
        t->packet_len = self->io.packet_len;
        if (self->io.action == OMV_RPC_ACTION_SEND) {
            status = t->ops->send(t, self->io.data, self->io.len, &self->io_done, left, self->io.packet);
        } else {
            status = t->ops->recv(t, self->io_buf, self->io.len, &self->io_done, left, self->io.packet);
        }
        if (status == OMV_RPC_IO_TIMEOUT && !t->ops->whole_packets && !rpc_first_byte_missed(self)
            && !rpc_gap_passed(self) && rpc_time_left(self->io_start, self->io_timeout) > 0) {
            if (!blocking) {
                return false;
            }
            if (self->io_start_timeout != 0 || (self->io_gap_ms != 0 && self->io_done > 0)) {
                /* The first bytes came within the limit, or the last bytes within the gap:
                 * the rest has the packet's timeout. */
                continue;
            }
        }
        self->io_pending = false;
        #ifdef RPC_TRACE
        mp_printf(&mp_plat_print, "%u %c   -> %d done%u\n", (unsigned)rpc_now(), self->role ? 'S' : 'M', status, (unsigned)self->io_done);
        #endif
        if (self->io.action == OMV_RPC_ACTION_RECV && self->io.data == NULL) {
            rpc_complete(self, status, self->io_buf, self->io.len);
        } else {
            rpc_complete(self, status, NULL, 0);
        }
    }
}

/******************************************************************************/
// Operations

static rpc_engine_obj_t *rpc_engine(mp_obj_t self_in) {
    if (mp_obj_get_type(self_in) != RPC_TYPE(rpc_type_engine)) {
        mp_raise_TypeError(MP_ERROR_TEXT("expected an rpc Engine"));
    }
    return MP_OBJ_TO_PTR(self_in);
}

static uint32_t rpc_timeout_arg(mp_obj_t arg) {
    mp_int_t ms = mp_obj_get_int(arg);
    return ms < 0 ? 0 : (uint32_t)ms;
}

/* The engine re-initialised with self->config (its counters zeroed). */
static void rpc_reinit(rpc_engine_obj_t *self) {
    omv_rpc_init(&self->engine, self->role, &self->config);
    self->reinit_pending = false;
}

/* Start of every operation: an operation that an exception cut short is abandoned now. */
static void rpc_begin(rpc_engine_obj_t *self) {
    if (self->op == RPC_OP_CALL_RUNNING || self->op == RPC_OP_CALL_DONE) {
        mp_raise_msg(&mp_type_RuntimeError,
            MP_ERROR_TEXT("a call_start() is in progress: finish it with call_result() or call_cancel()"));
    }
    if (self->op == RPC_OP_BLOCKING) {
        omv_rpc_abort(&self->engine);
        self->op = RPC_OP_IDLE;
    }
    if (self->reinit_pending) {
        rpc_reinit(self);
    }
    self->io_pending = false;
    self->glue_error = NULL;
    self->produced = MP_OBJ_NULL;
}

static void rpc_start_check(uint32_t status) {
    if (status != OMV_RPC_OK) {
        mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("the rpc engine is busy"));
    }
}

/* Runs a started operation to its end (blocking). */
static uint32_t rpc_run(rpc_engine_obj_t *self) {
    self->op = RPC_OP_BLOCKING;
    rpc_drive(self, true);
    self->op = RPC_OP_IDLE;
    if (self->reinit_pending) {
        rpc_reinit(self);
    }
    self->produced = MP_OBJ_NULL;
    return self->status;
}

/* Master: frame the argument into the command packet and start the call. False when there
 * is no memory for the packet: the call has then failed (None, and last_error says why). */
static bool rpc_call_begin(rpc_engine_obj_t *self, mp_obj_t name, mp_obj_t data, mp_obj_t send_timeout, mp_obj_t recv_timeout) {
    if (self->role != OMV_RPC_ROLE_MASTER) {
        mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("call() needs a master"));
    }
    mp_buffer_info_t name_info, data_info;
    mp_get_buffer_raise(name, &name_info, MP_BUFFER_READ);
    mp_get_buffer_raise(data, &data_info, MP_BUFFER_READ);
    uint32_t send_ms = rpc_timeout_arg(send_timeout);
    uint32_t recv_ms = rpc_timeout_arg(recv_timeout);
    rpc_begin(self);
    self->result_data = NULL;
    self->result_data_len = 0;
    self->result_into = NULL;
    self->result_into_len = 0;
    size_t packet_len = data_info.len + OMV_RPC_PACKET_OVERHEAD;
    uint8_t *packet = rpc_buffer_reserve(&self->command, packet_len);
    if (packet == NULL) {
        self->glue_error = "TRANSPORT_ERROR: COMMAND_DATA no memory for the command packet";
        self->status = OMV_RPC_TRANSPORT_ERROR;
        return false;
    }
    memcpy(packet + OMV_RPC_PAYLOAD_OFFSET, data_info.buf, data_info.len);
    uint32_t hash = omv_rpc_name_hash(name_info.buf, name_info.len);
    rpc_start_check(omv_rpc_call_start(&self->engine, hash, packet, packet_len, send_ms, recv_ms, rpc_now()));
    return true;
}

/* Master: what a finished call returns (docs/python-api.md). */
static mp_obj_t rpc_call_outcome(rpc_engine_obj_t *self) {
    if (self->status != OMV_RPC_OK) {
        return mp_const_none;
    }
    size_t len = omv_rpc_result_len(&self->engine);
    if (len == 0) {
        return self->empty_bytes;
    }
    if (self->result_data == NULL || self->result_data_len != len + OMV_RPC_PACKET_OVERHEAD) {
        self->glue_error = "TRANSPORT_ERROR: RESULT_DATA lost";
        self->status = OMV_RPC_TRANSPORT_ERROR;
        return mp_const_none;
    }
    mp_obj_t result;
    if (self->result_into != NULL) {
        /* call_into(): the result at the start of the caller's buffer. */
        memmove(self->result_into, self->result_into + OMV_RPC_PAYLOAD_OFFSET, len);
        result = rpc_memoryview_new(self->result_into, 0, len, true);
    } else {
        result = rpc_memoryview_new(self->result_data, OMV_RPC_PAYLOAD_OFFSET, len, true);
    }
    self->result_data = NULL; /* handed over to the result */
    self->result_data_len = 0;
    return result;
}

static mp_obj_t rpc_engine_call(size_t n_args, const mp_obj_t *args) {
    rpc_engine_obj_t *self = rpc_engine(args[0]);
    if (rpc_call_begin(self, args[1], args[2], args[3], args[4])) {
        rpc_run(self);
    }
    return rpc_call_outcome(self);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rpc_engine_call_obj, 5, 5, rpc_engine_call);

/* call_into(name, data, buffer, send_timeout, recv_timeout): call() with the result received
 * into buffer (writable, the result's length + 4 bytes at least) instead of a fresh object:
 * nothing allocated per call. Returns a memoryview of buffer[:len]. */
static mp_obj_t rpc_engine_call_into(size_t n_args, const mp_obj_t *args) {
    rpc_engine_obj_t *self = rpc_engine(args[0]);
    mp_buffer_info_t into;
    mp_get_buffer_raise(args[3], &into, MP_BUFFER_WRITE);
    if (rpc_call_begin(self, args[1], args[2], args[4], args[5])) {
        self->result_into = into.buf;
        self->result_into_len = into.len;
        rpc_run(self);
    }
    mp_obj_t result = rpc_call_outcome(self);
    self->result_into = NULL; /* the buffer is the caller's again */
    self->result_into_len = 0;
    return result;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rpc_engine_call_into_obj, 6, 6, rpc_engine_call_into);

static mp_obj_t rpc_engine_call_start(size_t n_args, const mp_obj_t *args) {
    rpc_engine_obj_t *self = rpc_engine(args[0]);
    self->op = rpc_call_begin(self, args[1], args[2], args[3], args[4]) ? RPC_OP_CALL_RUNNING : RPC_OP_CALL_DONE;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rpc_engine_call_start_obj, 5, 5, rpc_engine_call_start);

static mp_obj_t rpc_engine_call_poll(mp_obj_t self_in) {
    rpc_engine_obj_t *self = rpc_engine(self_in);
    if (self->op == RPC_OP_CALL_RUNNING) {
        /* While it runs, an exception (KeyboardInterrupt in a wait) leaves it running: the
         * next call_poll() goes on, call_cancel() abandons it. */
        if (rpc_drive(self, false)) {
            self->op = RPC_OP_CALL_DONE;
        }
    } else if (self->op != RPC_OP_CALL_DONE) {
        mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("no call_start() in progress"));
    }
    return mp_obj_new_bool(self->op == RPC_OP_CALL_DONE);
}
static MP_DEFINE_CONST_FUN_OBJ_1(rpc_engine_call_poll_obj, rpc_engine_call_poll);

static mp_obj_t rpc_engine_call_result(mp_obj_t self_in) {
    rpc_engine_obj_t *self = rpc_engine(self_in);
    if (self->op == RPC_OP_CALL_RUNNING) {
        /* Not finished yet: finish it, blocking. */
        rpc_drive(self, true);
        self->op = RPC_OP_CALL_DONE;
    } else if (self->op != RPC_OP_CALL_DONE) {
        mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("no call_start() in progress"));
    }
    self->op = RPC_OP_IDLE;
    return rpc_call_outcome(self);
}
static MP_DEFINE_CONST_FUN_OBJ_1(rpc_engine_call_result_obj, rpc_engine_call_result);

static mp_obj_t rpc_engine_call_cancel(mp_obj_t self_in) {
    rpc_engine_obj_t *self = rpc_engine(self_in);
    if (self->op == RPC_OP_CALL_RUNNING || self->op == RPC_OP_CALL_DONE) {
        omv_rpc_abort(&self->engine);
        self->op = RPC_OP_IDLE;
        self->io_pending = false;
        self->result_data = NULL;
        self->result_data_len = 0;
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(rpc_engine_call_cancel_obj, rpc_engine_call_cancel);

/* Slave: one turn of loop(); True when a command was served. */
static uint32_t rpc_serve_once(rpc_engine_obj_t *self, uint32_t recv_ms, uint32_t send_ms) {
    rpc_begin(self);
    rpc_start_check(omv_rpc_serve_start(&self->engine, recv_ms, send_ms, rpc_now()));
    return rpc_run(self);
}

static void rpc_check_slave(rpc_engine_obj_t *self) {
    if (self->role != OMV_RPC_ROLE_SLAVE) {
        mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("serving commands needs a slave"));
    }
}

static mp_obj_t rpc_engine_serve(mp_obj_t self_in, mp_obj_t recv_timeout, mp_obj_t send_timeout) {
    rpc_engine_obj_t *self = rpc_engine(self_in);
    rpc_check_slave(self);
    uint32_t status = rpc_serve_once(self, rpc_timeout_arg(recv_timeout), rpc_timeout_arg(send_timeout));
    return mp_obj_new_bool(status == OMV_RPC_OK);
}
static MP_DEFINE_CONST_FUN_OBJ_3(rpc_engine_serve_obj, rpc_engine_serve);

/* loop(recv_timeout, send_timeout): forever (an exception in a callback ends it). */
static mp_obj_t rpc_engine_loop(mp_obj_t self_in, mp_obj_t recv_timeout, mp_obj_t send_timeout) {
    rpc_engine_obj_t *self = rpc_engine(self_in);
    rpc_check_slave(self);
    uint32_t recv_ms = rpc_timeout_arg(recv_timeout);
    uint32_t send_ms = rpc_timeout_arg(send_timeout);
    for (;;) {
        if (rpc_serve_once(self, recv_ms, send_ms) == OMV_RPC_OK && self->schedule_cb != MP_OBJ_NULL) {
            /* Runs once; the callback may schedule the next one. */
            mp_obj_t cb = self->schedule_cb;
            self->schedule_cb = MP_OBJ_NULL;
            mp_call_function_n_kw(cb, 0, 0, NULL);
        }
        if (self->loop_cb != MP_OBJ_NULL) {
            mp_call_function_n_kw(self->loop_cb, 0, 0, NULL);
        }
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(rpc_engine_loop_obj, rpc_engine_loop);

static mp_obj_t rpc_engine_register_callback(mp_obj_t self_in, mp_obj_t cb) {
    rpc_engine_obj_t *self = rpc_engine(self_in);
    mp_obj_t name[2];
    mp_load_method_maybe(cb, MP_QSTR___name__, name);
    if (name[0] == MP_OBJ_NULL) {
        mp_raise_TypeError(MP_ERROR_TEXT("an rpc callback must be a function (it is found by its __name__)"));
    }
    mp_buffer_info_t info;
    mp_get_buffer_raise(name[0], &info, MP_BUFFER_READ);
    uint32_t hash = omv_rpc_name_hash(info.buf, info.len);
    for (size_t i = 0; i < self->n_callbacks; i++) {
        if (self->callbacks[i].name_hash == hash) {
            self->callbacks[i].fun = cb;
            return mp_const_none;
        }
    }
    if (self->n_callbacks == self->callbacks_cap) {
        size_t cap = self->callbacks_cap ? self->callbacks_cap * 2 : 8;
        rpc_callback_t *table = rpc_malloc_maybe(cap * sizeof(rpc_callback_t));
        if (table == NULL) {
            mp_raise_msg(&mp_type_MemoryError, MP_ERROR_TEXT("no memory for the callback table"));
        }
        if (self->n_callbacks) {
            memcpy(table, self->callbacks, self->n_callbacks * sizeof(rpc_callback_t));
        }
        self->callbacks = table;
        self->callbacks_cap = cap;
    }
    self->callbacks[self->n_callbacks].name_hash = hash;
    self->callbacks[self->n_callbacks].fun = cb;
    self->n_callbacks++;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(rpc_engine_register_callback_obj, rpc_engine_register_callback);

static mp_obj_t rpc_engine_schedule_callback(mp_obj_t self_in, mp_obj_t cb) {
    rpc_engine(self_in)->schedule_cb = cb == mp_const_none ? MP_OBJ_NULL : cb;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(rpc_engine_schedule_callback_obj, rpc_engine_schedule_callback);

static mp_obj_t rpc_engine_setup_loop_callback(mp_obj_t self_in, mp_obj_t cb) {
    rpc_engine(self_in)->loop_cb = cb == mp_const_none ? MP_OBJ_NULL : cb;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(rpc_engine_setup_loop_callback_obj, rpc_engine_setup_loop_callback);

/* Runs a started stream to its end. */
static void rpc_run_stream(rpc_engine_obj_t *self) {
    rpc_run(self);
    self->stream_cb = MP_OBJ_NULL;
}

/* stream_reader(call_back, queue_depth, read_timeout_ms) */
static mp_obj_t rpc_engine_stream_reader(size_t n_args, const mp_obj_t *args) {
    rpc_engine_obj_t *self = rpc_engine(args[0]);
    mp_int_t depth = mp_obj_get_int(args[2]);
    if (depth < 1 || depth > (mp_int_t)OMV_RPC_DEFAULT_MAX_QUEUE_DEPTH) {
        mp_raise_ValueError(MP_ERROR_TEXT("queue_depth must be 1 to 255"));
    }
    uint32_t timeout = rpc_timeout_arg(args[3]);
    rpc_begin(self);
    self->stream_cb = args[1];
    rpc_start_check(omv_rpc_stream_reader_start(&self->engine, depth, timeout, rpc_now()));
    rpc_run_stream(self);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rpc_engine_stream_reader_obj, 4, 4, rpc_engine_stream_reader);

/* stream_writer(call_back, write_timeout_ms) */
static mp_obj_t rpc_engine_stream_writer(mp_obj_t self_in, mp_obj_t cb, mp_obj_t write_timeout) {
    rpc_engine_obj_t *self = rpc_engine(self_in);
    uint32_t timeout = rpc_timeout_arg(write_timeout);
    rpc_begin(self);
    self->stream_cb = cb;
    rpc_start_check(omv_rpc_stream_writer_start(&self->engine, timeout, rpc_now()));
    rpc_run_stream(self);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(rpc_engine_stream_writer_obj, rpc_engine_stream_writer);

/******************************************************************************/
// Explaining failures

/* last_error(): None after a successful operation, else the engine's text,
 * "<STATUS>: <PACKET> <reason> (<n> attempt[s])" (omv_rpc_last_error_text). */
static mp_obj_t rpc_engine_last_error(mp_obj_t self_in) {
    rpc_engine_obj_t *self = rpc_engine(self_in);
    if (self->status == OMV_RPC_OK || self->status == RPC_STATUS_NONE) {
        return mp_const_none;
    }
    if (self->glue_error != NULL) {
        /* (No strlen: the native module has no libc.) */
        size_t len = 0;
        while (self->glue_error[len] != 0) {
            len++;
        }
        return mp_obj_new_str(self->glue_error, len);
    }
    char text[96];
    size_t n = omv_rpc_last_error_text(&self->engine, text, sizeof(text));
    return mp_obj_new_str(text, n);
}
static MP_DEFINE_CONST_FUN_OBJ_1(rpc_engine_last_error_obj, rpc_engine_last_error);

/* The counters by name. The keys are interned qstrs (stats() allocates only its dict), and a
 * native module finds its qstrs in the source text, so each MP_QSTR_ is written out here; the
 * list must be the engine's (OMV_RPC_STATS_FIELDS): each entry names a field of
 * omv_rpc_stats_t, the counts are checked in rpc_engine_stats, the names by tests/unix/test_api.py
 * and tests/conformance. */
#define RPC_STATS_FIELDS(X) \
    X(MP_QSTR_packets_sent, packets_sent) \
    X(MP_QSTR_packets_received, packets_received) \
    X(MP_QSTR_bad_magic, bad_magic) \
    X(MP_QSTR_bad_crc, bad_crc) \
    X(MP_QSTR_too_long, too_long) \
    X(MP_QSTR_timeouts, timeouts) \
    X(MP_QSTR_transport_errors, transport_errors) \
    X(MP_QSTR_retries, retries) \
    X(MP_QSTR_calls_ok, calls_ok) \
    X(MP_QSTR_calls_failed, calls_failed) \
    X(MP_QSTR_send_phase_timeouts, send_phase_timeouts) \
    X(MP_QSTR_recv_phase_timeouts, recv_phase_timeouts) \
    X(MP_QSTR_commands_served, commands_served) \
    X(MP_QSTR_stream_frames, stream_frames) \
    X(MP_QSTR_late_requests, late_requests) \
    X(MP_QSTR_repeats_answered, repeats_answered) \
    X(MP_QSTR_new_commands, new_commands) \
    X(MP_QSTR_stray_replies, stray_replies)
#define RPC_STATS_STORE(qst, field) \
    mp_obj_dict_store(dict, MP_OBJ_NEW_QSTR(qst), mp_obj_new_int_from_uint(stats.field));
#define RPC_STATS_COUNT(qst, field) +1
#define RPC_STATS_COUNT_HEADER(field) +1

static mp_obj_t rpc_engine_stats(mp_obj_t self_in) {
    rpc_engine_obj_t *self = rpc_engine(self_in);
    omv_rpc_stats_t stats;
    omv_rpc_stats(&self->engine, &stats);
    /* One key per counter of OMV_RPC_STATS_FIELDS and of omv_rpc_stats_t. */
    MP_STATIC_ASSERT((0 RPC_STATS_FIELDS(RPC_STATS_COUNT)) == (0 OMV_RPC_STATS_FIELDS(RPC_STATS_COUNT_HEADER)));
    MP_STATIC_ASSERT((0 RPC_STATS_FIELDS(RPC_STATS_COUNT)) * sizeof(uint32_t) == sizeof(omv_rpc_stats_t));
    mp_obj_t dict = mp_obj_new_dict(0 RPC_STATS_FIELDS(RPC_STATS_COUNT));
    RPC_STATS_FIELDS(RPC_STATS_STORE)
    return dict;
}
static MP_DEFINE_CONST_FUN_OBJ_1(rpc_engine_stats_obj, rpc_engine_stats);

static mp_obj_t rpc_engine_stats_reset(mp_obj_t self_in) {
    omv_rpc_stats_reset(&rpc_engine(self_in)->engine);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(rpc_engine_stats_reset_obj, rpc_engine_stats_reset);

/******************************************************************************/
// Configuration

static void rpc_engine_init_config(rpc_engine_obj_t *self) {
    uint32_t scale = self->transport->ops->short_timeout_scale ? self->transport->ops->short_timeout_scale : 1;
    self->config.short_timeout_ms = (self->role == OMV_RPC_ROLE_MASTER ? OMV_RPC_DEFAULT_MASTER_SHORT_TIMEOUT_MS : OMV_RPC_DEFAULT_SLAVE_SHORT_TIMEOUT_MS) * scale;
    self->config.long_timeout_ms = OMV_RPC_DEFAULT_LONG_TIMEOUT_MS;
    self->config.max_argument_len = OMV_RPC_DEFAULT_MAX_DATA_LEN;
    self->config.max_result_len = OMV_RPC_DEFAULT_MAX_DATA_LEN;
    self->config.max_frame_len = OMV_RPC_DEFAULT_MAX_DATA_LEN;
    self->config.max_queue_depth = self->transport->ops->max_queue_depth;
    self->config.stream_timeout_ms = OMV_RPC_DEFAULT_STREAM_TIMEOUT_MS;
    self->config.pipeline = 0;
    self->config.split_reads = self->transport->ops->byte_stream;
    self->config.bytes_per_s = self->transport->bytes_per_s;
}

static void rpc_config_field(uint32_t *field, mp_obj_t arg) {
    if (arg != mp_const_none) {
        mp_int_t v = mp_obj_get_int(arg);
        if (v < 1) {
            mp_raise_ValueError(MP_ERROR_TEXT("rpc limits and timings must be positive"));
        }
        *field = (uint32_t)v;
    }
}

/* config(): the timings and limits this driver gave the engine, as a dict (the keys of the
 * host package's Session.config(); tests/conformance checks both against the header). */
#define RPC_CONFIG_FIELDS(X) \
    X(MP_QSTR_short_timeout_ms, short_timeout_ms) \
    X(MP_QSTR_long_timeout_ms, long_timeout_ms) \
    X(MP_QSTR_max_argument_len, max_argument_len) \
    X(MP_QSTR_max_result_len, max_result_len) \
    X(MP_QSTR_max_frame_len, max_frame_len) \
    X(MP_QSTR_max_queue_depth, max_queue_depth) \
    X(MP_QSTR_stream_timeout_ms, stream_timeout_ms)
#define RPC_CONFIG_STORE(qst, field) \
    mp_obj_dict_store(dict, MP_OBJ_NEW_QSTR(qst), mp_obj_new_int_from_uint(self->config.field));
#define RPC_CONFIG_COUNT(qst, field) +1

static mp_obj_t rpc_engine_config(mp_obj_t self_in) {
    rpc_engine_obj_t *self = rpc_engine(self_in);
    mp_obj_t dict = mp_obj_new_dict(0 RPC_CONFIG_FIELDS(RPC_CONFIG_COUNT));
    RPC_CONFIG_FIELDS(RPC_CONFIG_STORE)
    return dict;
}
static MP_DEFINE_CONST_FUN_OBJ_1(rpc_engine_config_obj, rpc_engine_config);

/* configure(*, short_timeout_ms, long_timeout_ms, max_argument_len, max_result_len,
 * max_frame_len, bytes_per_s, pipeline, spin_us), keywords only: a setting not given (or None)
 * stays as it is. Re-initialises the engine, which zeroes its counters; from inside a callback,
 * once the operation that called it ends (re-initialised now, the engine would drop the turn
 * whose result the callback returns). */
enum {
    RPC_CONF_SHORT_TIMEOUT_MS, RPC_CONF_LONG_TIMEOUT_MS, RPC_CONF_MAX_ARGUMENT_LEN,
    RPC_CONF_MAX_RESULT_LEN, RPC_CONF_MAX_FRAME_LEN, RPC_CONF_BYTES_PER_S, RPC_CONF_PIPELINE,
    RPC_CONF_SPIN_US, RPC_CONF_N
};
static mp_obj_t rpc_engine_configure(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    /* Built at run time: in a native module a qstr is only known once the module is loaded. */
    const mp_arg_t allowed[RPC_CONF_N] = {
        [RPC_CONF_SHORT_TIMEOUT_MS] = { MP_QSTR_short_timeout_ms, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = mp_const_none} },
        [RPC_CONF_LONG_TIMEOUT_MS] = { MP_QSTR_long_timeout_ms, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = mp_const_none} },
        [RPC_CONF_MAX_ARGUMENT_LEN] = { MP_QSTR_max_argument_len, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = mp_const_none} },
        [RPC_CONF_MAX_RESULT_LEN] = { MP_QSTR_max_result_len, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = mp_const_none} },
        [RPC_CONF_MAX_FRAME_LEN] = { MP_QSTR_max_frame_len, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = mp_const_none} },
        [RPC_CONF_BYTES_PER_S] = { MP_QSTR_bytes_per_s, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = mp_const_none} },
        [RPC_CONF_PIPELINE] = { MP_QSTR_pipeline, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = mp_const_none} },
        [RPC_CONF_SPIN_US] = { MP_QSTR_spin_us, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = mp_const_none} },
    };
    mp_arg_val_t a[RPC_CONF_N];
    mp_arg_parse_all(n_args - 1, pos_args + 1, kw_args, RPC_CONF_N, allowed, a);
    mp_obj_t args[1 + RPC_CONF_N];
    args[0] = pos_args[0];
    for (size_t i = 0; i < RPC_CONF_N; i++) {
        args[1 + i] = a[i].u_obj;
    }
    rpc_engine_obj_t *self = rpc_engine(args[0]);
    if (self->op == RPC_OP_CALL_RUNNING || self->op == RPC_OP_CALL_DONE) {
        mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("a call_start() is in progress"));
    }
    omv_rpc_config_t config = self->config;
    rpc_config_field(&config.short_timeout_ms, args[1]);
    rpc_config_field(&config.long_timeout_ms, args[2]);
    rpc_config_field(&config.max_argument_len, args[3]);
    rpc_config_field(&config.max_result_len, args[4]);
    rpc_config_field(&config.max_frame_len, args[5]);
    rpc_config_field(&config.bytes_per_s, args[6]);
    if (args[7] != mp_const_none) {
        /* True: the RESULT_DATA request behind the RESULT_HEADER request; "all": COMMAND_DATA
         * behind COMMAND_HEADER too. */
        if (mp_obj_is_str(args[7])) {
            size_t len;
            const char *mode = mp_obj_str_get_data(args[7], &len);
            if (len != 3 || mode[0] != 'a' || mode[1] != 'l' || mode[2] != 'l') {
                mp_raise_ValueError(MP_ERROR_TEXT("pipeline must be True, False or 'all'"));
            }
            config.pipeline = OMV_RPC_PIPELINE_RESULT_DATA_REQUEST | OMV_RPC_PIPELINE_COMMAND_DATA;
        } else {
            config.pipeline = mp_obj_is_true(args[7]) ? OMV_RPC_PIPELINE_RESULT_DATA_REQUEST : 0;
        }
        if (config.pipeline && self->transport->ops->whole_packets) {
            /* The slave takes a packet only while it is in a receive call. */
            mp_raise_ValueError(MP_ERROR_TEXT("pipeline needs a transport that buffers input (not I2C, SPI or a Python override)"));
        }
    }
    uint32_t spin_us = self->transport->spin_us;
    if (args[8] != mp_const_none) {
        mp_int_t v = mp_obj_get_int(args[8]);
        if (v < 0 || v > RPC_SPIN_US_MAX) {
            mp_raise_ValueError(MP_ERROR_TEXT("spin_us must be 0 to 100000"));
        }
        spin_us = (uint32_t)v;
    }
    self->config = config;
    self->transport->spin_us = spin_us;
    if (self->op == RPC_OP_BLOCKING) {
        self->reinit_pending = true;
    } else {
        rpc_reinit(self);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_KW(rpc_engine_configure_obj, 1, rpc_engine_configure);

/* Engine(role, transport): role 0 master, 1 slave. */
static mp_obj_t rpc_engine_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 2, 2, false);
    mp_int_t role = mp_obj_get_int(args[0]);
    if (role != OMV_RPC_ROLE_MASTER && role != OMV_RPC_ROLE_SLAVE) {
        mp_raise_ValueError(MP_ERROR_TEXT("role must be 0 (master) or 1 (slave)"));
    }
    rpc_transport_t *transport = rpc_transport_get(args[1]);
    rpc_engine_obj_t *self = RPC_OBJ_NEW(rpc_engine_obj_t, type);
    self->role = role;
    self->transport_obj = args[1];
    self->transport = transport;
    self->status = RPC_STATUS_NONE;
    self->op = RPC_OP_IDLE;
    #if MICROPY_ENABLE_DYNRUNTIME
    self->empty_bytes = mp_obj_new_bytes(NULL, 0);
    #else
    self->empty_bytes = mp_const_empty_bytes;
    #endif
    self->view = rpc_memoryview_new(NULL, 0, 0, false);
    rpc_engine_init_config(self);
    omv_rpc_init(&self->engine, self->role, &self->config);
    return MP_OBJ_FROM_PTR(self);
}

#define RPC_ENGINE_LOCALS(X) \
    X(MP_QSTR_call, rpc_engine_call_obj) \
    X(MP_QSTR_call_into, rpc_engine_call_into_obj) \
    X(MP_QSTR_call_start, rpc_engine_call_start_obj) \
    X(MP_QSTR_call_poll, rpc_engine_call_poll_obj) \
    X(MP_QSTR_call_result, rpc_engine_call_result_obj) \
    X(MP_QSTR_call_cancel, rpc_engine_call_cancel_obj) \
    X(MP_QSTR_serve, rpc_engine_serve_obj) \
    X(MP_QSTR_loop, rpc_engine_loop_obj) \
    X(MP_QSTR_register_callback, rpc_engine_register_callback_obj) \
    X(MP_QSTR_schedule_callback, rpc_engine_schedule_callback_obj) \
    X(MP_QSTR_setup_loop_callback, rpc_engine_setup_loop_callback_obj) \
    X(MP_QSTR_stream_reader, rpc_engine_stream_reader_obj) \
    X(MP_QSTR_stream_writer, rpc_engine_stream_writer_obj) \
    X(MP_QSTR_last_error, rpc_engine_last_error_obj) \
    X(MP_QSTR_stats, rpc_engine_stats_obj) \
    X(MP_QSTR_stats_reset, rpc_engine_stats_reset_obj) \
    X(MP_QSTR_configure, rpc_engine_configure_obj) \
    X(MP_QSTR_config, rpc_engine_config_obj)

/******************************************************************************/
// Module functions

static mp_obj_t rpc_name_hash(mp_obj_t name) {
    mp_buffer_info_t info;
    mp_get_buffer_raise(name, &info, MP_BUFFER_READ);
    return mp_obj_new_int_from_uint(omv_rpc_name_hash(info.buf, info.len));
}
static MP_DEFINE_CONST_FUN_OBJ_1(rpc_name_hash_obj, rpc_name_hash);

static mp_obj_t rpc_crc16(mp_obj_t buf) {
    mp_buffer_info_t info;
    mp_get_buffer_raise(buf, &info, MP_BUFFER_READ);
    return MP_OBJ_NEW_SMALL_INT(omv_rpc_crc16(info.buf, info.len));
}
static MP_DEFINE_CONST_FUN_OBJ_1(rpc_crc16_obj, rpc_crc16);

extern const mp_obj_fun_builtin_var_t rpc_port_init_obj;

#define RPC_MODULE_GLOBALS(X) \
    X(MP_QSTR_name_hash, rpc_name_hash_obj) \
    X(MP_QSTR_crc16, rpc_crc16_obj) \
    X(MP_QSTR__port_init, rpc_port_init_obj) \
    RPC_TRANSPORT_GLOBALS(X)

#if MICROPY_ENABLE_DYNRUNTIME
/******************************************************************************/
// Native module: fill the types in at load time and store the globals.

mp_obj_full_type_t rpc_type_engine;
mp_map_elem_t rpc_engine_locals_table[0 RPC_ENGINE_LOCALS(RPC_COUNT_ENTRY)];
static MP_DEFINE_CONST_DICT(rpc_engine_locals_dict, rpc_engine_locals_table);
void rpc_transport_type_init(void);

#define RPC_STORE_GLOBAL(qst, obj) mp_store_global(qst, MP_OBJ_FROM_PTR(&obj));

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY

    rpc_transport_type_init();

    mp_map_elem_t *table = rpc_engine_locals_table;
    size_t i = 0;
    RPC_ENGINE_LOCALS(RPC_DYN_ENTRY)
    rpc_type_engine.base.type = (void *)&mp_type_type;
    rpc_type_engine.flags = MP_TYPE_FLAG_NONE;
    rpc_type_engine.name = MP_QSTR_Engine;
    MP_OBJ_TYPE_SET_SLOT(&rpc_type_engine, make_new, rpc_engine_make_new, 0);
    MP_OBJ_TYPE_SET_SLOT(&rpc_type_engine, locals_dict, (void *)&rpc_engine_locals_dict, 1);

    mp_store_global(MP_QSTR_Engine, MP_OBJ_FROM_PTR(&rpc_type_engine));
    mp_store_global(MP_QSTR_transport, MP_OBJ_FROM_PTR(&rpc_type_transport));
    RPC_MODULE_GLOBALS(RPC_STORE_GLOBAL)

    MP_DYNRUNTIME_INIT_EXIT
}

#else
/******************************************************************************/
// User C module.

static const mp_rom_map_elem_t rpc_engine_locals_table[] = {
    RPC_ENGINE_LOCALS(RPC_ROM_ENTRY)
};
static MP_DEFINE_CONST_DICT(rpc_engine_locals_dict, rpc_engine_locals_table);

MP_DEFINE_CONST_OBJ_TYPE(
    rpc_type_engine,
    MP_QSTR_Engine,
    MP_TYPE_FLAG_NONE,
    make_new, rpc_engine_make_new,
    locals_dict, &rpc_engine_locals_dict
    );

static const mp_rom_map_elem_t rpc_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__rpc) },
    { MP_ROM_QSTR(MP_QSTR_Engine), MP_ROM_PTR(&rpc_type_engine) },
    { MP_ROM_QSTR(MP_QSTR_transport), MP_ROM_PTR(&rpc_type_transport) },
    RPC_MODULE_GLOBALS(RPC_ROM_ENTRY)
};
static MP_DEFINE_CONST_DICT(rpc_module_globals, rpc_module_globals_table);

const mp_obj_module_t rpc_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&rpc_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR__rpc, rpc_user_cmodule);
#endif
