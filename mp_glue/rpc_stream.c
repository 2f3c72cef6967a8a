/*
 * rpc_stream.c: reading and writing any MicroPython stream (UART, USB VCP, socket, file)
 * straight through its stream protocol, with timeouts. A wait checks readiness for a short
 * while (the transport's spin_us), then goes to select.poll's ipoll (the kernel's poll on the
 * unix port, the port's event loop on a board), or, on a port without select, to 1 ms sleeps
 * between readiness checks.
 */
#include "rpc_glue.h"

#define RPC_POLL_RD MP_STREAM_POLL_RD
#define RPC_POLL_WR MP_STREAM_POLL_WR
/* Flush drops at most this much pending input per call, so that a peer that never stops
 * sending cannot hold a flush forever. */
#define RPC_FLUSH_MAX (64 * 1024)
/* A read or write that would block (non-blocking stream) or ran into the stream's own timeout. */
#define RPC_IS_WOULD_BLOCK(err) ((err) == MP_EAGAIN || (err) == MP_EWOULDBLOCK || (err) == MP_ETIMEDOUT)

void rpc_stream_init(rpc_stream_t *s, rpc_transport_t *owner, mp_obj_t obj, bool nonblocking) {
    s->owner = owner;
    rpc_spin_init(&s->spin, RPC_SPIN_US_MAX);
    s->proto = mp_get_stream_raise(obj, MP_STREAM_OP_READ | MP_STREAM_OP_WRITE | MP_STREAM_OP_IOCTL);
    s->obj = obj;
    s->nonblocking = nonblocking;
    s->poller = MP_OBJ_NULL;
    if (rpc_port.poll != MP_OBJ_NULL && rpc_port.poll != mp_const_none) {
        s->poller = mp_call_function_n_kw(rpc_port.poll, 0, 0, NULL);
        mp_obj_t args[2] = { obj, MP_OBJ_NEW_SMALL_INT(RPC_POLL_RD) };
        rpc_call_method(s->poller, MP_QSTR_register, 2, args);
        mp_load_method(s->poller, MP_QSTR_ipoll, s->ipoll);
        s->poll_events = RPC_POLL_RD;
    }
}

/* Is the stream ready for events now? 1 yes, 0 no, -1 when its ioctl cannot tell (a file
 * object of a port whose files do not poll; select.poll may still wait on its descriptor). */
static int rpc_stream_poll_now(rpc_stream_t *s, uint8_t events) {
    int err;
    mp_uint_t ret = s->proto->ioctl(s->obj, MP_STREAM_POLL, events, &err);
    if (ret == MP_STREAM_ERROR) {
        return -1;
    }
    return (ret & (events | MP_STREAM_POLL_ERR | MP_STREAM_POLL_HUP)) != 0;
}

/* The same, for the wait without a poller: a stream that cannot tell counts as ready. */
static bool rpc_stream_ready(rpc_stream_t *s, uint8_t events) {
    return rpc_stream_poll_now(s, events) != 0;
}

/* The wait that sleeps (the poller, or 1 ms sleeps between readiness checks). */
static bool rpc_stream_sleep_until_ready(rpc_stream_t *s, uint8_t events, uint32_t timeout_ms) {
    if (s->poller != MP_OBJ_NULL) {
        if (s->poll_events != events) {
            mp_obj_t args[2] = { s->obj, MP_OBJ_NEW_SMALL_INT(events) };
            rpc_call_method(s->poller, MP_QSTR_modify, 2, args);
            s->poll_events = events;
        }
        s->ipoll[2] = MP_OBJ_NEW_SMALL_INT(timeout_ms);
        mp_obj_t iter = mp_call_method_n_kw(1, 0, s->ipoll);
        /* ipoll returns the poller as an iterator over the ready objects (its result tuple
         * is reused: no allocation). */
        #if MICROPY_ENABLE_DYNRUNTIME
        mp_obj_iter_buf_t iter_buf;
        iter_buf.base.type = MP_OBJ_NULL;
        iter_buf.buf[0] = iter;
        return mp_fun_table.iternext(&iter_buf) != MP_OBJ_STOP_ITERATION;
        #else
        return mp_iternext(iter) != MP_OBJ_STOP_ITERATION;
        #endif
    }
    uint32_t start = rpc_ticks_ms();
    while (!rpc_stream_ready(s, events)) {
        if (rpc_time_left(start, timeout_ms) == 0) {
            return false;
        }
        rpc_sleep_ms(1);
    }
    return true;
}

/* A wait spins when the stream's tuner says so (rpc_spin.h), for at most its window: the
 * window halves after a wait that slept and was answered later than a whole spin would have
 * covered, and comes back after one answered within it (a slow peer: no spin at all). */
bool rpc_stream_wait(rpc_stream_t *s, uint8_t events, uint32_t timeout_ms) {
    uint32_t spin_us = s->owner->spin_us;
    if (timeout_ms == 0 || spin_us == 0) {
        return rpc_stream_sleep_until_ready(s, events, timeout_ms);
    }
    rpc_spin_t *sp = &s->spin;
    bool ready = false;
    if (sp->spinning && !sp->cannot_poll) {
        uint32_t start_us = rpc_ticks_us();
        uint32_t window_us = sp->window_us < spin_us ? sp->window_us : spin_us;
        do {
            int now = rpc_stream_poll_now(s, events);
            if (now < 0) {
                sp->cannot_poll = true; /* its waits all go to the poller */
                break;
            }
            ready = now != 0;
        } while (!ready && rpc_us_since(start_us) < window_us);
        if (!ready) {
            ready = rpc_stream_sleep_until_ready(s, events, timeout_ms);
            sp->window_us = ready && rpc_us_since(start_us) <= spin_us ? spin_us : window_us / 2;
        }
    } else {
        ready = rpc_stream_sleep_until_ready(s, events, timeout_ms);
    }
    return ready;
}

/* Reads once what is there; OK (with *done advanced, maybe by 0 when it would block) or ERROR. */
static int rpc_stream_read_some(rpc_stream_t *s, uint8_t *buf, size_t len, size_t *done) {
    int err = 0;
    mp_uint_t n = s->proto->read(s->obj, buf + *done, len - *done, &err);
    if (n == MP_STREAM_ERROR) {
        return RPC_IS_WOULD_BLOCK(err) ? OMV_RPC_IO_OK : OMV_RPC_IO_ERROR;
    }
    if (n == 0) {
        return OMV_RPC_IO_ERROR; /* end of stream: the peer is gone */
    }
    *done += n;
    return OMV_RPC_IO_OK;
}

static int rpc_stream_recv_packet(rpc_stream_t *s, uint8_t *buf, size_t len, size_t *done, uint32_t timeout_ms) {
    uint32_t start = rpc_ticks_ms();
    /* A non-blocking stream is read first and waited on when empty; any other stream is only
     * read once the poller says it is readable, so that the read cannot block. */
    bool readable = s->nonblocking;
    while (*done < len) {
        if (readable) {
            size_t before = *done;
            if (rpc_stream_read_some(s, buf, len, done) != OMV_RPC_IO_OK) {
                return OMV_RPC_IO_ERROR;
            }
            if (*done > before && s->nonblocking) {
                continue;
            }
            if (*done == len) {
                break;
            }
            /* Read and not done: time may be up, and a stream that said it was readable but
             * gave nothing must not be asked again at once (a poll that always says ready
             * would spin here past every timeout). */
            if (rpc_time_left(start, timeout_ms) == 0) {
                return OMV_RPC_IO_TIMEOUT;
            }
            if (*done == before && !s->nonblocking) {
                rpc_sleep_ms(1);
            }
        }
        uint32_t left = rpc_time_left(start, timeout_ms);
        readable = rpc_stream_wait(s, RPC_POLL_RD, left);
        if (!readable && (left == 0 || rpc_time_left(start, timeout_ms) == 0)) {
            return OMV_RPC_IO_TIMEOUT;
        }
    }
    return OMV_RPC_IO_OK;
}

static int rpc_stream_send_packet(rpc_stream_t *s, const uint8_t *data, size_t len, size_t *done, uint32_t timeout_ms) {
    uint32_t start = rpc_ticks_ms();
    bool waited = false; /* the last wait said writable */
    while (*done < len) {
        int err = 0;
        mp_uint_t n = s->proto->write(s->obj, data + *done, len - *done, &err);
        if (n == MP_STREAM_ERROR) {
            if (!RPC_IS_WOULD_BLOCK(err)) {
                return OMV_RPC_IO_ERROR;
            }
        } else if (n > 0) {
            *done += n;
            waited = false;
            continue;
        }
        /* Nothing written: time may be up (a poll that always says writable must not hold
         * this loop past the timeout). */
        uint32_t left = rpc_time_left(start, timeout_ms);
        if (left == 0) {
            return OMV_RPC_IO_TIMEOUT;
        }
        if (waited) {
            rpc_sleep_ms(1); /* it said writable, and took nothing */
        }
        waited = rpc_stream_wait(s, RPC_POLL_WR, left);
        if (!waited && rpc_time_left(start, timeout_ms) == 0) {
            return OMV_RPC_IO_TIMEOUT;
        }
    }
    return OMV_RPC_IO_OK;
}

/* The spin epochs are measured per packet (a recv or send with a timeout), not per wait: how
 * many waits a packet takes depends on the mode (a spin sees a packet's bytes arrive in
 * smaller pieces), how many packets a call takes does not. Returns status. */
static int rpc_stream_packet_done(rpc_stream_t *s, uint32_t timeout_ms, int status) {
    if (timeout_ms != 0 && s->owner->spin_us != 0) {
        rpc_spin_account(&s->spin, rpc_ticks_us());
    }
    return status;
}

int rpc_stream_recv(rpc_stream_t *s, uint8_t *buf, size_t len, size_t *done, uint32_t timeout_ms) {
    return rpc_stream_packet_done(s, timeout_ms, rpc_stream_recv_packet(s, buf, len, done, timeout_ms));
}

int rpc_stream_send(rpc_stream_t *s, const uint8_t *data, size_t len, size_t *done, uint32_t timeout_ms) {
    return rpc_stream_packet_done(s, timeout_ms, rpc_stream_send_packet(s, data, len, done, timeout_ms));
}

int rpc_stream_recv_some(rpc_stream_t *s, uint8_t *buf, size_t cap, size_t *got, uint32_t timeout_ms) {
    uint32_t start = rpc_ticks_ms();
    *got = 0;
    for (;;) {
        if (s->nonblocking || rpc_stream_wait(s, RPC_POLL_RD, 0)) {
            if (rpc_stream_read_some(s, buf, cap, got) != OMV_RPC_IO_OK) {
                return OMV_RPC_IO_ERROR;
            }
            if (*got > 0) {
                return rpc_stream_packet_done(s, timeout_ms, OMV_RPC_IO_OK);
            }
        }
        uint32_t left = rpc_time_left(start, timeout_ms);
        if (left == 0 || (!rpc_stream_wait(s, RPC_POLL_RD, left) && rpc_time_left(start, timeout_ms) == 0)) {
            return rpc_stream_packet_done(s, timeout_ms, OMV_RPC_IO_TIMEOUT);
        }
    }
}

int rpc_stream_flush(rpc_stream_t *s) {
    uint8_t scratch[64];
    size_t dropped = 0;
    while (dropped < RPC_FLUSH_MAX) {
        if (!s->nonblocking && !rpc_stream_wait(s, RPC_POLL_RD, 0)) {
            break;
        }
        size_t got = 0;
        if (rpc_stream_read_some(s, scratch, sizeof(scratch), &got) != OMV_RPC_IO_OK) {
            return OMV_RPC_IO_ERROR; /* end of stream (the peer is gone) or an error */
        }
        if (got == 0) {
            break;
        }
        dropped += got;
    }
    return OMV_RPC_IO_OK;
}
