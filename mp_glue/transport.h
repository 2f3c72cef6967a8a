/*
 * transport.h: how the engine driver (modrpc.c) moves bytes over a bus.
 *
 * The driver runs the sans-IO engine (include/omv_rpc.h) and carries out each io action it
 * asks for through a transport: an ops table plus the state that bus needs. A transport is a
 * MicroPython object (so the garbage collector keeps its bus objects alive) whose struct
 * starts with rpc_transport_t; every transport shares the one type rpc_type_transport.
 *
 * Adding a transport (one file, e.g. mp_glue/transport_i2c.c):
 *   1. Define your state struct with `rpc_transport_t base;` first, then your bus objects and
 *      settings (mp_obj_t fields are kept alive by the GC: the struct is a GC block).
 *   2. Write flush/send/recv as documented on rpc_transport_ops_t below and put them in a
 *      `static const rpc_transport_ops_t` (max_queue_depth 255, or 1 for I2C and SPI).
 *   3. Write a constructor `static mp_obj_t rpc_i2c_transport_make(...)` that allocates the
 *      struct with rpc_transport_new(sizeof(struct), &ops), fills it and returns it, and
 *      MP_DEFINE_CONST_FUN_OBJ_* it (not static).
 *   4. Name the file mp_glue/transport_<bus>.c: every such file is compiled (sources.mk,
 *      micropython.cmake). Export the constructor through RPC_BUS_TRANSPORT_GLOBALS(X) in
 *      transport_bus.h (see rpc_transports.h).
 *   5. The Python shim (frozen/rpc.py) builds the bus object (machine.I2C, pyb.SPI, ...) and
 *      passes it to your constructor; `_rpc.Engine(role, transport)` does the rest.
 * A transport may raise (a MicroPython exception is a longjmp) anywhere: the driver calls it
 * outside every engine call, and aborts the engine before its next operation.
 */
#ifndef OMV_RPC_MP_GLUE_TRANSPORT_H
#define OMV_RPC_MP_GLUE_TRANSPORT_H

#include "py/obj.h"
#include "py/stream.h"
#include "omv_rpc.h"
#include "rpc_spin.h"

/* What flush/send/recv return: OMV_RPC_IO_OK, OMV_RPC_IO_TIMEOUT or OMV_RPC_IO_ERROR. */

typedef struct rpc_transport rpc_transport_t;

typedef struct rpc_transport_ops {
    /* Drop whatever input is pending, without waiting for more (this is how both sides
     * resynchronise at the start of an attempt). */
    int (*flush)(rpc_transport_t *t);
    /* Write data[*done, len) and advance *done. timeout_ms is how long it may wait in all;
     * 0 means: write only what can be written now (the non-blocking call_poll). OK once
     * *done == len, TIMEOUT when time ran out first. */
    int (*send)(rpc_transport_t *t, const uint8_t *data, size_t len, size_t *done,
        uint32_t timeout_ms, uint32_t packet);
    /* Read into buf[*done, len) and advance *done; same rules as send. A transport that can
     * only move whole packets (I2C, SPI, a Python override) sets whole_packets: it is
     * never asked for 0, and its TIMEOUT always ends the action. */
    int (*recv)(rpc_transport_t *t, uint8_t *buf, size_t len, size_t *done,
        uint32_t timeout_ms, uint32_t packet);
    /* Largest stream queue depth this bus allows (docs/PROTOCOL.md: 255, 1 on I2C and SPI). */
    uint32_t max_queue_depth;
    /* Short timeouts on this bus are the reference's times this factor (network: 10). */
    uint32_t short_timeout_scale;
    /* True for a transport that moves whole packets only (a Python override): the
     * non-blocking call_poll() then gives each send/recv its whole timeout (it blocks per
     * packet) instead of 0. */
    bool whole_packets;
    /* True for a byte stream that may be read in pieces (a UART, USB VCP, TCP, a pty; UDP
     * through the network transport's datagram buffer): the engine may then read a packet's
     * first bytes to tell which packet came (omv_rpc_config_t.split_reads). False where a
     * read must match the peer's write (I2C, SPI, CAN frames, a Python override). */
    bool byte_stream;
} rpc_transport_ops_t;

/* How long a wait on a stream may check readiness before it goes to sleep in the poller, in
 * microseconds (set_timing(spin_us=)). A peer on the same machine answers within tens of
 * microseconds, and waking a process that slept costs about as much again: the checks keep a
 * call's round trips off the scheduler. The window adapts below this (rpc_stream_wait).
 * 0: sleep at once. */
#define RPC_SPIN_US_DEFAULT 100
#define RPC_SPIN_US_MAX 100000

struct rpc_transport {
    mp_obj_base_t base; /* &rpc_type_transport */
    const rpc_transport_ops_t *ops;
    uint32_t spin_us;   /* RPC_SPIN_US_DEFAULT; the stream waits of this transport use it */
    size_t packet_len;  /* set by the driver before each send/recv: the whole packet's length
                           (a recv may read a part of it; the network transport routes by it) */
    uint32_t bytes_per_s; /* a bus's payload rate at its clock (I2C, SPI, CAN), 0 unknown: the
                           engine's config.bytes_per_s until set_timing(bytes_per_s=) says
                           otherwise, so that the master's reply wait after a long packet
                           covers the time the peer needs to take it in */
};

/* The packet kinds of io.packet that are stream traffic (the network transport sends those
 * over TCP; a UART transport may poll longer for them). */
static inline bool rpc_packet_is_stream(uint32_t packet) {
    return packet >= OMV_RPC_PACKET_STREAM_SETUP;
}

/* Allocates a transport object of `size` bytes (>= sizeof(rpc_transport_t)), zeroed. */
rpc_transport_t *rpc_transport_new(size_t size, const rpc_transport_ops_t *ops);
/* The transport inside a Python object, or a TypeError. */
rpc_transport_t *rpc_transport_get(mp_obj_t obj);

/* Services shared by the transports (rpc_port.c). */
uint32_t rpc_ticks_ms(void);
/* A microsecond clock, and the microseconds since one of its readings (wraps handled). */
uint32_t rpc_ticks_us(void);
uint32_t rpc_us_since(uint32_t start_us);
/* Sleep about ms milliseconds, letting the port run its events (may raise KeyboardInterrupt). */
void rpc_sleep_ms(uint32_t ms);
/* Time left of timeout_ms since start_ms, 0 once it has passed. */
static inline uint32_t rpc_time_left(uint32_t start_ms, uint32_t timeout_ms) {
    uint32_t spent = rpc_ticks_ms() - start_ms;
    return spent >= timeout_ms ? 0 : timeout_ms - spent;
}

/* A stream-protocol object with a poller for waiting on it (rpc_stream.c). Transports over
 * anything with the stream protocol (UART, USB VCP, sockets, files) embed one. */
typedef struct rpc_stream {
    rpc_transport_t *owner;      /* the transport this stream belongs to (its spin_us) */
    rpc_spin_t spin;             /* whether and how long its waits spin (rpc_stream.c) */
    mp_obj_t obj;                /* the stream object, MP_OBJ_NULL when there is none */
    const mp_stream_p_t *proto;  /* its stream protocol (read, write, ioctl) */
    mp_obj_t poller;             /* select.poll() with obj registered, or MP_OBJ_NULL */
    mp_obj_t ipoll[3];           /* poller.ipoll loaded once: method, self, timeout */
    uint8_t poll_events;         /* what the poller is registered for now */
    bool nonblocking;            /* read/write say EAGAIN instead of blocking (sockets set
                                    non-blocking): no readiness check before each read */
} rpc_stream_t;

/* Sets up s for obj (raises TypeError if obj is not a stream). */
void rpc_stream_init(rpc_stream_t *s, rpc_transport_t *owner, mp_obj_t obj, bool nonblocking);
/* Read/write with the transport rules above (len - *done bytes, timeout 0 = no wait). */
int rpc_stream_recv(rpc_stream_t *s, uint8_t *buf, size_t len, size_t *done, uint32_t timeout_ms);
int rpc_stream_send(rpc_stream_t *s, const uint8_t *data, size_t len, size_t *done, uint32_t timeout_ms);
/* Wait up to timeout_ms for input, then read once what is there into buf[0, cap) (on a UDP
 * socket: one whole datagram, cut to cap): OK with *got > 0, TIMEOUT or ERROR. */
int rpc_stream_recv_some(rpc_stream_t *s, uint8_t *buf, size_t cap, size_t *got, uint32_t timeout_ms);
/* Read and drop whatever is readable now. ERROR when the stream reported its end (the peer
 * closed it) or an error, OK otherwise. */
int rpc_stream_flush(rpc_stream_t *s);
/* Wait up to timeout_ms until s is readable (events MP_STREAM_POLL_RD) or writable
 * (MP_STREAM_POLL_WR); true when it is (or has an error or hang-up to report). A wait with
 * a timeout checks for up to the owner's spin_us before it sleeps. */
bool rpc_stream_wait(rpc_stream_t *s, uint8_t events, uint32_t timeout_ms);

#endif /* OMV_RPC_MP_GLUE_TRANSPORT_H */
