/*
 * transport_network.c: the reference's network transport (docs/PROTOCOL.md, Transports): packets
 * of at most 1400 bytes go over UDP, larger ones and all stream traffic over one TCP
 * connection that the master listens for and the slave opens; the slave learns the master's
 * address from the first UDP datagram. Short timeouts are ten times the serial ones.
 *
 * The shim opens, binds and sets non-blocking the UDP socket (the master's is connected to
 * the slave, so that plain writes reach it) and the master's listening TCP socket. Packets
 * then move through the sockets' stream protocol with no allocation; only setting up a TCP
 * connection calls socket methods.
 */
#include "rpc_glue.h"
#include "rpc_transports.h"

#define RPC_NETWORK_UDP_MAX 1400
#define RPC_AF_INET 2
#define RPC_SOCK_STREAM 1
#define RPC_IPPROTO_TCP 6
#define RPC_TCP_NODELAY 1

typedef struct rpc_network_transport {
    rpc_transport_t base;
    rpc_stream_t udp;
    rpc_stream_t tcp;         /* tcp.obj == MP_OBJ_NULL while there is no connection */
    rpc_stream_t listener;    /* master: the listening TCP socket */
    mp_obj_t socket_module;   /* slave: opens the TCP connection */
    mp_obj_t master_addr;     /* slave: the master's address, MP_OBJ_NULL until learned */
    bool is_master;
    /* The datagram being read: UDP datagrams are read whole and handed out as a byte stream,
     * so that the engine may read a packet in pieces (its first bytes tell which packet came)
     * and a read shorter than the datagram loses nothing. */
    uint16_t dgram_len;
    uint16_t dgram_at;
    uint8_t dgram[RPC_NETWORK_UDP_MAX];
} rpc_network_transport_t;

static bool rpc_network_uses_tcp(uint32_t packet, size_t len) {
    return rpc_packet_is_stream(packet) || len > RPC_NETWORK_UDP_MAX;
}

static void rpc_network_close_tcp(rpc_network_transport_t *self) {
    if (self->tcp.obj != MP_OBJ_NULL) {
        rpc_try_call_method(self->tcp.obj, MP_QSTR_close, 0, NULL, NULL);
        self->tcp.obj = MP_OBJ_NULL;
        self->tcp.poller = MP_OBJ_NULL;
    }
}

/* A new TCP connection: no Nagle delay (request/response traffic), non-blocking. */
static bool rpc_network_adopt_tcp(rpc_network_transport_t *self, mp_obj_t sock) {
    mp_obj_t opt[3] = { MP_OBJ_NEW_SMALL_INT(RPC_IPPROTO_TCP), MP_OBJ_NEW_SMALL_INT(RPC_TCP_NODELAY), MP_OBJ_NEW_SMALL_INT(1) };
    rpc_try_call_method(sock, MP_QSTR_setsockopt, 3, opt, NULL); /* not every port has it */
    mp_obj_t no = mp_const_false;
    if (rpc_try_call_method(sock, MP_QSTR_setblocking, 1, &no, NULL) == MP_OBJ_NULL) {
        rpc_try_call_method(sock, MP_QSTR_close, 0, NULL, NULL);
        return false;
    }
    rpc_network_close_tcp(self);
    rpc_stream_init(&self->tcp, &self->base, sock, true);
    return true;
}

/* Master: take a connection waiting on the listening socket, if any (within timeout_ms). */
static bool rpc_network_accept(rpc_network_transport_t *self, uint32_t timeout_ms) {
    if (!rpc_stream_wait(&self->listener, MP_STREAM_POLL_RD, timeout_ms)) {
        return false;
    }
    mp_obj_t ret = rpc_try_call_method(self->listener.obj, MP_QSTR_accept, 0, NULL, NULL);
    if (ret == MP_OBJ_NULL) {
        return false;
    }
    mp_obj_t *items;
    size_t n;
    mp_obj_get_array(ret, &n, &items);
    return n >= 1 && rpc_network_adopt_tcp(self, items[0]);
}

/* Slave: connect to the master (same address and port as its UDP socket), within about
 * timeout_ms (whole seconds, at least one: a host that does not answer must not hold the
 * loop for the system's connect timeout). */
static bool rpc_network_connect(rpc_network_transport_t *self, uint32_t timeout_ms) {
    if (self->master_addr == MP_OBJ_NULL) {
        return false;
    }
    mp_obj_t args[2] = { MP_OBJ_NEW_SMALL_INT(RPC_AF_INET), MP_OBJ_NEW_SMALL_INT(RPC_SOCK_STREAM) };
    mp_obj_t sock = rpc_try_call_method(self->socket_module, MP_QSTR_socket, 2, args, NULL);
    if (sock == MP_OBJ_NULL) {
        return false;
    }
    mp_obj_t seconds = MP_OBJ_NEW_SMALL_INT(timeout_ms < 1000 ? 1 : (timeout_ms + 999) / 1000);
    rpc_try_call_method(sock, MP_QSTR_settimeout, 1, &seconds, NULL);
    if (rpc_try_call_method(sock, MP_QSTR_connect, 1, &self->master_addr, NULL) == MP_OBJ_NULL) {
        rpc_try_call_method(sock, MP_QSTR_close, 0, NULL, NULL);
        return false;
    }
    return rpc_network_adopt_tcp(self, sock);
}

static rpc_stream_t *rpc_network_tcp(rpc_network_transport_t *self, uint32_t timeout_ms) {
    if (self->tcp.obj == MP_OBJ_NULL) {
        bool ok = self->is_master ? rpc_network_accept(self, timeout_ms) : rpc_network_connect(self, timeout_ms);
        if (!ok) {
            return NULL;
        }
    }
    return &self->tcp;
}

static int rpc_network_flush(rpc_transport_t *t) {
    rpc_network_transport_t *self = (rpc_network_transport_t *)t;
    self->dgram_len = self->dgram_at = 0;
    rpc_stream_flush(&self->udp);
    /* A connection whose peer is gone (a slave that restarted, a master that went away) is
     * closed now, before a packet is written into it without an error. */
    if (self->tcp.obj != MP_OBJ_NULL && rpc_stream_flush(&self->tcp) != OMV_RPC_IO_OK) {
        rpc_network_close_tcp(self);
    }
    if (self->is_master) {
        /* A slave that restarted connects again: the newest connection wins. */
        rpc_network_accept(self, 0);
    }
    return OMV_RPC_IO_OK;
}

static int rpc_network_send(rpc_transport_t *t, const uint8_t *data, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet) {
    rpc_network_transport_t *self = (rpc_network_transport_t *)t;
    if (rpc_network_uses_tcp(packet, len)) {
        uint32_t start = rpc_ticks_ms();
        /* In a call nothing is due on TCP while we send a data packet: input now means the
         * connection's end (the peer went away: writes would vanish into it) or leftovers.
         * (Not in a stream, where the reader's acks come in while frames go out.) */
        if (*done == 0 && !rpc_packet_is_stream(packet) && self->tcp.obj != MP_OBJ_NULL
            && rpc_stream_wait(&self->tcp, MP_STREAM_POLL_RD, 0)
            && rpc_stream_flush(&self->tcp) != OMV_RPC_IO_OK) {
            rpc_network_close_tcp(self);
        }
        rpc_stream_t *tcp = rpc_network_tcp(self, timeout_ms);
        if (tcp == NULL) {
            return self->is_master ? OMV_RPC_IO_TIMEOUT : OMV_RPC_IO_ERROR;
        }
        int status = rpc_stream_send(tcp, data, len, done, rpc_time_left(start, timeout_ms));
        if (status == OMV_RPC_IO_ERROR) {
            rpc_network_close_tcp(self);
        }
        return status;
    }
    if (!self->is_master && self->master_addr == MP_OBJ_NULL) {
        return OMV_RPC_IO_ERROR; /* nobody to answer yet */
    }
    /* One datagram per packet. */
    return rpc_stream_send(&self->udp, data, len, done, timeout_ms);
}

/* Slave, before it knows the master: read one datagram with recvfrom to learn where it came
 * from, then connect the UDP socket to that address so that plain writes go there. */
static int rpc_network_recv_first(rpc_network_transport_t *self, size_t *got, uint32_t timeout_ms) {
    uint32_t start = rpc_ticks_ms();
    for (;;) {
        mp_obj_t want = MP_OBJ_NEW_SMALL_INT(sizeof(self->dgram));
        mp_obj_t ret = rpc_try_call_method(self->udp.obj, MP_QSTR_recvfrom, 1, &want, NULL);
        if (ret != MP_OBJ_NULL) {
            mp_obj_t *items;
            size_t n;
            mp_obj_get_array(ret, &n, &items);
            mp_buffer_info_t info;
            if (n == 2 && mp_get_buffer(items[0], &info, MP_BUFFER_READ) && info.len > 0) {
                *got = info.len < sizeof(self->dgram) ? info.len : sizeof(self->dgram);
                memcpy(self->dgram, info.buf, *got);
                if (rpc_try_call_method(self->udp.obj, MP_QSTR_connect, 1, &items[1], NULL) != MP_OBJ_NULL) {
                    self->master_addr = items[1];
                }
                return OMV_RPC_IO_OK;
            }
        }
        uint32_t left = rpc_time_left(start, timeout_ms);
        if (!rpc_stream_wait(&self->udp, MP_STREAM_POLL_RD, left) && rpc_time_left(start, timeout_ms) == 0) {
            return OMV_RPC_IO_TIMEOUT;
        }
    }
}

/* A packet over UDP: bytes from the datagram being read, then from the next ones. */
static int rpc_network_recv_udp(rpc_network_transport_t *self, uint8_t *buf, size_t len, size_t *done,
    uint32_t timeout_ms) {
    uint32_t start = rpc_ticks_ms();
    while (*done < len) {
        if (self->dgram_at < self->dgram_len) {
            size_t n = self->dgram_len - self->dgram_at;
            n = n < len - *done ? n : len - *done;
            memcpy(buf + *done, self->dgram + self->dgram_at, n);
            *done += n;
            self->dgram_at += n;
            continue;
        }
        size_t got = 0;
        uint32_t left = rpc_time_left(start, timeout_ms);
        int status = !self->is_master && self->master_addr == MP_OBJ_NULL
            ? rpc_network_recv_first(self, &got, left)
            : rpc_stream_recv_some(&self->udp, self->dgram, sizeof(self->dgram), &got, left);
        if (status != OMV_RPC_IO_OK) {
            return status;
        }
        self->dgram_len = (uint16_t)got;
        self->dgram_at = 0;
    }
    return OMV_RPC_IO_OK;
}

static int rpc_network_recv(rpc_transport_t *t, uint8_t *buf, size_t len, size_t *done,
    uint32_t timeout_ms, uint32_t packet) {
    rpc_network_transport_t *self = (rpc_network_transport_t *)t;
    if (rpc_network_uses_tcp(packet, t->packet_len > len ? t->packet_len : len)) {
        uint32_t start = rpc_ticks_ms();
        rpc_stream_t *tcp = rpc_network_tcp(self, timeout_ms);
        if (tcp == NULL) {
            return self->is_master ? OMV_RPC_IO_TIMEOUT : OMV_RPC_IO_ERROR;
        }
        int status = rpc_stream_recv(tcp, buf, len, done, rpc_time_left(start, timeout_ms));
        if (status == OMV_RPC_IO_ERROR) {
            rpc_network_close_tcp(self);
        }
        return status;
    }
    return rpc_network_recv_udp(self, buf, len, done, timeout_ms);
}

/* (Not static: the driver knows it as a transport that sees bytes as they come.) */
static const rpc_transport_ops_t rpc_network_transport_ops = {
    .flush = rpc_network_flush,
    .send = rpc_network_send,
    .recv = rpc_network_recv,
    .max_queue_depth = OMV_RPC_DEFAULT_MAX_QUEUE_DEPTH,
    .short_timeout_scale = OMV_RPC_BUS_SHORT_TIMEOUT_SCALE,
    .byte_stream = true,
};

/* network_transport(udp_socket, listening_socket_or_None, socket_module): a master when it
 * has a listening socket, else a slave. */
static mp_obj_t rpc_network_transport_make(mp_obj_t udp, mp_obj_t listener, mp_obj_t socket_module) {
    rpc_network_transport_t *t = (rpc_network_transport_t *)rpc_transport_new(
        sizeof(rpc_network_transport_t), &rpc_network_transport_ops);
    rpc_stream_init(&t->udp, &t->base, udp, true);
    t->is_master = listener != mp_const_none;
    if (t->is_master) {
        rpc_stream_init(&t->listener, &t->base, listener, true);
    }
    t->tcp.obj = MP_OBJ_NULL;
    t->master_addr = MP_OBJ_NULL;
    t->socket_module = socket_module;
    return MP_OBJ_FROM_PTR(t);
}
MP_DEFINE_CONST_FUN_OBJ_3(rpc_network_transport_obj, rpc_network_transport_make);
