/*
 * transport_can.c: the CAN transport, the same for master and slave (docs/PROTOCOL.md,
 * Transports: CAN).
 *
 * pyb.CAN in normal mode at bit_rate/sample_point, one filter that accepts message_id only,
 * into FIFO 0. A packet of n bytes travels as ceil(n / 8) frames on message_id, 8 bytes each
 * but the last. The receiver takes exactly that many frames and fails on a frame of another
 * id or length. Frames go out through the controller's transmit mailboxes without waiting
 * for each one, so the bus stays busy. Frames are
 * received into one preallocated list and buffer (pyb's allocation-free recv form).
 */
#include "transport_bus.h"

#define RPC_CAN_FRAME_LEN 8u
/* Worst-case bits of a standard 8-byte frame with stuffing and interframe space. */
#define RPC_CAN_MAX_FRAME_BITS 135u
#define RPC_CAN_MAX_ID 0x7FFu

typedef struct rpc_can_transport {
    rpc_transport_t base;
    mp_obj_t bus;
    rpc_bus_method_t send;
    rpc_bus_method_t recv;
    rpc_bus_method_t any;
    mp_obj_t frame;      /* [id, extended, rtr, fmi, memoryview(frame_data)] for recv(0, frame) */
    mp_obj_t frame_view;
    mp_obj_t view;
    mp_obj_t sleep_us;
    uint32_t message_id;
    uint32_t bit_rate;
    uint32_t retry_us;       /* two 8-byte frames' wire time */
    uint8_t frame_data[RPC_CAN_FRAME_LEN];
} rpc_can_transport_t;

/* Time for n payload bytes of frames at the bit rate, rounded up. */
static uint32_t rpc_can_wire_ms(rpc_can_transport_t *t, size_t n) {
    size_t frames = (n + RPC_CAN_FRAME_LEN - 1) / RPC_CAN_FRAME_LEN;
    return rpc_bus_wire_ms(frames, RPC_CAN_MAX_FRAME_BITS, t->bit_rate);
}

/* The time a send or receive of n more bytes may take: timeout_ms stretched by their wire
 * time, or 0 (only what the mailboxes and the FIFO allow now: the non-blocking call_poll). */
static uint32_t rpc_can_budget(rpc_can_transport_t *t, size_t n, uint32_t timeout_ms) {
    return timeout_ms == 0 ? 0 : timeout_ms + rpc_can_wire_ms(t, n);
}

/* One received frame: its length into *len, its bytes at t->frame_data, or false. */
static bool rpc_can_recv_frame(rpc_can_transport_t *t, uint32_t timeout_ms, size_t *len, uint32_t *id) {
    mp_obj_t *items;
    size_t n_items;
    mp_obj_get_array(t->frame, &n_items, &items);
    items[4] = t->frame_view;  /* pyb shrinks the view to the frame; give it the full 8 bytes */
    rpc_memoryview_set(t->frame_view, t->frame_data, 0, RPC_CAN_FRAME_LEN, true);
    mp_obj_t args[4] = { MP_OBJ_NEW_SMALL_INT(0), t->frame, MP_OBJ_NEW_QSTR(MP_QSTR_timeout),
                         MP_OBJ_NEW_SMALL_INT(timeout_ms) };
    if (rpc_bus_call(&t->recv, 2, 1, args, NULL) == MP_OBJ_NULL) {
        return false;
    }
    mp_obj_get_array(t->frame, &n_items, &items);
    mp_buffer_info_t info;
    if (n_items < 5 || !mp_get_buffer(items[4], &info, MP_BUFFER_READ) || info.len > RPC_CAN_FRAME_LEN) {
        return false;
    }
    if (info.buf != t->frame_data) {
        memcpy(t->frame_data, info.buf, info.len);
    }
    *len = info.len;
    *id = mp_obj_is_small_int(items[0]) ? (uint32_t)MP_OBJ_SMALL_INT_VALUE(items[0]) : 0xFFFFFFFFu;
    return true;
}

static int rpc_can_flush(rpc_transport_t *self) {
    rpc_can_transport_t *t = (rpc_can_transport_t *)self;
    /* Drop the frames already in the FIFO (a bounded number: the FIFO's depth). */
    for (int i = 0; i < 256; i++) {
        mp_obj_t fifo = MP_OBJ_NEW_SMALL_INT(0);
        mp_obj_t any = rpc_bus_call(&t->any, 1, 0, &fifo, NULL);
        if (any == MP_OBJ_NULL || !mp_obj_is_true(any)) {
            break;
        }
        size_t len;
        uint32_t id;
        if (!rpc_can_recv_frame(t, 0, &len, &id)) {
            break;
        }
    }
    return OMV_RPC_IO_OK;
}

static int rpc_can_send(rpc_transport_t *self, const uint8_t *data, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet) {
    (void)packet;
    rpc_can_transport_t *t = (rpc_can_transport_t *)self;
    uint32_t start = rpc_ticks_ms();
    uint32_t budget = rpc_can_budget(t, len - *done, timeout_ms);
    while (*done < len) {
        size_t n = len - *done < RPC_CAN_FRAME_LEN ? len - *done : RPC_CAN_FRAME_LEN;
        rpc_memoryview_set(t->view, (uint8_t *)data, *done, n, false);
        /* timeout=0 queues the frame in a free mailbox and returns at once; with all three
         * busy it raises. Then wait two frames' time (two mailboxes free, one frame still
         * on the wire) and try again: a send with a timeout would wait until its own frame
         * is out, leaving the bus idle until the next send. */
        mp_obj_t args[4] = { t->view, MP_OBJ_NEW_SMALL_INT(t->message_id),
                             MP_OBJ_NEW_QSTR(MP_QSTR_timeout), MP_OBJ_NEW_SMALL_INT(0) };
        mp_obj_t ret;
        while ((ret = rpc_bus_call(&t->send, 2, 1, args, NULL)) == MP_OBJ_NULL
               && rpc_time_left(start, budget) > 0) {
            rpc_bus_delay_us(t->sleep_us, t->retry_us);
        }
        rpc_memoryview_set(t->view, NULL, 0, 0, false);
        if (ret == MP_OBJ_NULL) {
            return OMV_RPC_IO_TIMEOUT;
        }
        *done += n;
    }
    return OMV_RPC_IO_OK;
}

static int rpc_can_recv(rpc_transport_t *self, uint8_t *buf, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet) {
    (void)packet;
    rpc_can_transport_t *t = (rpc_can_transport_t *)self;
    uint32_t start = rpc_ticks_ms();
    uint32_t budget = rpc_can_budget(t, len - *done, timeout_ms);
    while (*done < len) {
        size_t want = len - *done < RPC_CAN_FRAME_LEN ? len - *done : RPC_CAN_FRAME_LEN;
        size_t got;
        uint32_t id;
        if (!rpc_can_recv_frame(t, rpc_time_left(start, budget), &got, &id)) {
            return OMV_RPC_IO_TIMEOUT;
        }
        if (got != want || id != t->message_id) {
            /* Not the frame this packet needs (a lost or extra frame): the packet fails. */
            return OMV_RPC_IO_ERROR;
        }
        memcpy(buf + *done, t->frame_data, got);
        *done += got;
    }
    return OMV_RPC_IO_OK;
}

static const rpc_transport_ops_t rpc_can_ops = {
    .flush = rpc_can_flush,
    .send = rpc_can_send,
    .recv = rpc_can_recv,
    .max_queue_depth = OMV_RPC_DEFAULT_MAX_QUEUE_DEPTH,
    .short_timeout_scale = RPC_BUS_SHORT_TIMEOUT_SCALE,
    /* Not whole packets: frames come one by one through the FIFO, so a receive sees when the
     * first one came and can resume a packet (both advance *done per frame). The driver then
     * holds the master's RESULT_DATA receive to the engine's first-byte limit: a slave that
     * read the request after its short timeout (a master descheduled between RESULT_HEADER
     * and the request: the slave's flush drops the request, or it reads it in place of a
     * RESULT_HEADER request) never answers it, and the master retries within its phase
     * instead of waiting out the 5 s long timeout (tests/bus/test_faults.py). */
    .whole_packets = false,
};

/* can_transport(message_id, bit_rate, sample_point, can_bus) */
static mp_obj_t rpc_can_transport(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    mp_obj_t message_id = args[0], bit_rate = args[1], sample_point = args[2], can_bus = args[3];
    mp_int_t id = mp_obj_get_int(message_id);
    mp_int_t rate = mp_obj_get_int(bit_rate);
    if (id < 0 || id > (mp_int_t)RPC_CAN_MAX_ID) {
        mp_raise_ValueError(MP_ERROR_TEXT("message_id must be a standard 11-bit id"));
    }
    if (rate <= 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("bit_rate must be positive"));
    }
    mp_obj_t pyb = rpc_bus_import(MP_QSTR_pyb);
    mp_obj_t can = rpc_bus_attr(pyb, MP_QSTR_CAN);
    mp_obj_t normal = rpc_bus_attr(can, MP_QSTR_NORMAL);
    if (normal == MP_OBJ_NULL) {
        rpc_bus_missing("rpc_can_master/rpc_can_slave need pyb.CAN; this port has no pyb.CAN");
    }
    rpc_can_transport_t *t = (rpc_can_transport_t *)rpc_transport_new(sizeof(rpc_can_transport_t), &rpc_can_ops);
    t->message_id = (uint32_t)id;
    t->bit_rate = (uint32_t)rate;
    t->base.bytes_per_s = (uint32_t)((uint64_t)rate * 8 / RPC_CAN_MAX_FRAME_BITS); /* 8 B a frame */
    t->retry_us = (uint32_t)(2 * RPC_CAN_MAX_FRAME_BITS * 1000000ull / (uint32_t)rate);
    rpc_bus_delay_init(&t->sleep_us);
    t->view = rpc_memoryview_new(NULL, 0, 0, false);
    t->frame_view = rpc_memoryview_new(NULL, 0, 0, true);
    mp_obj_t frame_items[5] = { MP_OBJ_NEW_SMALL_INT(0), mp_const_false, mp_const_false,
                                MP_OBJ_NEW_SMALL_INT(0), t->frame_view };
    t->frame = mp_obj_new_list(5, frame_items);
    mp_obj_t can_args[8] = { can_bus, normal, MP_OBJ_NEW_QSTR(MP_QSTR_baudrate), bit_rate,
                             MP_OBJ_NEW_QSTR(MP_QSTR_sample_point), sample_point,
                             MP_OBJ_NEW_QSTR(MP_QSTR_auto_restart), mp_const_true };
    t->bus = mp_call_function_n_kw(can, 2, 3, can_args);
    /* Accept message_id only: bxCAN lists four 16-bit ids, FDCAN a dual id filter. */
    mp_obj_t filter_mode = rpc_bus_attr(can, MP_QSTR_LIST16);
    mp_obj_t ids;
    if (filter_mode != MP_OBJ_NULL) {
        mp_obj_t list[4] = { message_id, message_id, message_id, message_id };
        ids = mp_obj_new_tuple(4, list);
    } else {
        filter_mode = rpc_bus_attr(can, MP_QSTR_DUAL);
        if (filter_mode == MP_OBJ_NULL) {
            rpc_bus_missing("rpc_can: pyb.CAN has neither a LIST16 nor a DUAL filter mode");
        }
        mp_obj_t list[2] = { message_id, message_id };
        ids = mp_obj_new_tuple(2, list);
    }
    rpc_bus_method_t setfilter;
    rpc_bus_method_load(&setfilter, t->bus, MP_QSTR_setfilter);
    mp_obj_t filter_args[4] = { MP_OBJ_NEW_SMALL_INT(0), filter_mode, MP_OBJ_NEW_SMALL_INT(0), ids };
    int err = 0;
    if (rpc_bus_call(&setfilter, 4, 0, filter_args, &err) == MP_OBJ_NULL) {
        mp_raise_OSError(err ? err : MP_EIO);
    }
    rpc_bus_method_load(&t->send, t->bus, MP_QSTR_send);
    rpc_bus_method_load(&t->recv, t->bus, MP_QSTR_recv);
    rpc_bus_method_load(&t->any, t->bus, MP_QSTR_any);
    return MP_OBJ_FROM_PTR(t);
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rpc_can_transport_obj, 4, 4, rpc_can_transport);
