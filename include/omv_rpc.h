/*
 * omv_rpc.h: the C ABI of the omv-rpc protocol engine (the Rust crate in src/).
 *
 * The engine is sans-IO. It never reads a clock, touches a bus or calls back into the
 * caller. The caller drives it with two calls:
 *
 *     omv_rpc_io_t io;
 *     omv_rpc_<op>_start(e, ..., now_ms);
 *     for (;;) {
 *         omv_rpc_poll(e, now_ms, &io);           // what the engine wants next
 *         switch (io.action) {
 *         case OMV_RPC_ACTION_FLUSH:   drop pending input; complete(OK) (see OMV_RPC_ACTION_FLUSH)
 *         case OMV_RPC_ACTION_SEND:    write io.data[0..io.len] within io.timeout_ms; complete(OK/TIMEOUT/ERROR)
 *         case OMV_RPC_ACTION_RECV:    read exactly io.len bytes within io.timeout_ms (the first of them
 *                                      within io.start_timeout_ms when it is not 0) into io.data, or,
 *                                      when io.data is NULL, into a buffer of the caller's own that it
 *                                      passes to complete (a data packet: the caller owns the memory,
 *                                      e.g. the result object it will return); complete(OK/TIMEOUT/ERROR)
 *         case OMV_RPC_ACTION_DISPATCH: (slave) run the callback for io.name_hash with the argument
 *                                      io.data[0..io.len]; complete with the result packet (the
 *                                      engine frames it in place)
 *         case OMV_RPC_ACTION_DELIVER: (stream reader) hand the frame io.data[0..io.len] to the
 *                                      callback; complete(OK) or complete(ERROR) to stop
 *         case OMV_RPC_ACTION_PRODUCE: (stream writer) get the next frame from the callback; complete
 *                                      with that frame as buf/len (sent raw, no framing)
 *         case OMV_RPC_ACTION_WAIT:    (a pause after a transport error) sleep until io.deadline_ms
 *                                      (a non-blocking caller may return and come back); complete(OK)
 *         case OMV_RPC_ACTION_DONE:    io.status says how the operation ended
 *         }
 *         omv_rpc_complete(e, now_ms, status, buf, len);
 *     }
 *
 * Time is a wrapping u32 millisecond counter (ticks_ms). The engine owns every timing rule:
 * io.deadline_ms (and io.start_deadline_ms for a first byte) are absolute on that clock, the
 * step's start plus io.timeout_ms (which already includes the wire-time stretch of
 * config.bytes_per_s); a caller waits until them and no longer, and keeps no timing of its own.
 * omv_rpc_poll_timeout() gives the next deadline, for a caller that sleeps between polls.
 * All integers on the wire are little-endian.
 * Every pointer the engine hands out in io stays valid until the next complete() on the same
 * engine; every buffer the caller passes must stay valid until the next DONE (the engine
 * keeps pointers to the command data packet, the result packet and the last frame), and a
 * slave's result packet until its next DISPATCH or abort (with config.split_reads, the slave
 * keeps the last result for a master that lost RESULT_DATA and asks again).
 */
#ifndef OMV_RPC_H
#define OMV_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Packet magics (PROTOCOL.md). */
#define OMV_RPC_MAGIC_COMMAND_HEADER 0x1209u
#define OMV_RPC_MAGIC_COMMAND_DATA   0xABD1u
#define OMV_RPC_MAGIC_RESULT_HEADER  0x9021u
#define OMV_RPC_MAGIC_RESULT_DATA    0x1DBAu
#define OMV_RPC_MAGIC_STREAM_SETUP   0xEDF6u
#define OMV_RPC_MAGIC_STREAM_HEADER  0x542Eu

/* magic (2) + crc (2) around every packet payload; the payload starts at PAYLOAD_OFFSET. */
#define OMV_RPC_PACKET_OVERHEAD 4u
#define OMV_RPC_PAYLOAD_OFFSET  2u

/* The defaults of the crate (src/engine/mod.rs, mod defaults): a zero config field takes them,
 * and the drivers start from them. */
#define OMV_RPC_DEFAULT_MASTER_SHORT_TIMEOUT_MS 3u
#define OMV_RPC_DEFAULT_SLAVE_SHORT_TIMEOUT_MS  2u
#define OMV_RPC_DEFAULT_LONG_TIMEOUT_MS         5000u    /* data packets */
#define OMV_RPC_DEFAULT_MAX_DATA_LEN            1048576u /* argument, result, stream frame */
#define OMV_RPC_DEFAULT_MAX_QUEUE_DEPTH         255u     /* 1 on I2C and SPI */
#define OMV_RPC_DEFAULT_STREAM_TIMEOUT_MS       1000u
#define OMV_RPC_DEFAULT_DATA_GAP_MS             100u
/* Short timeouts on a transport of transfers, not a byte stream (UDP: the reference's x10;
 * I2C, SPI, CAN) are the defaults times this. */
#define OMV_RPC_BUS_SHORT_TIMEOUT_SCALE         10u

/* Size and alignment of the caller-owned engine state. The engine checks at compile time
 * that its state fits. */
#define OMV_RPC_ENGINE_SIZE 320u
typedef struct omv_rpc_engine {
    uint64_t opaque[OMV_RPC_ENGINE_SIZE / 8];
} omv_rpc_engine_t;

/* io.action (u32; enums are not passed across the FFI: arm-none-eabi uses short enums). */
#define OMV_RPC_ACTION_DONE     0u
#define OMV_RPC_ACTION_FLUSH    1u
#define OMV_RPC_ACTION_SEND     2u
#define OMV_RPC_ACTION_RECV     3u
#define OMV_RPC_ACTION_DISPATCH 4u
#define OMV_RPC_ACTION_DELIVER  5u
#define OMV_RPC_ACTION_PRODUCE  6u
#define OMV_RPC_ACTION_WAIT     7u

/* FLUSH comes at the start of an attempt that must resynchronise: every retry, and the first
 * attempt of a call's or a turn's phase unless the link is in sync; and once before the stream
 * reader's STREAM_SETUP (the writer sends nothing before it: whatever is pending is left
 * over). In sync: the last SEND/RECV completed OK less than short_timeout_ms ago (by the
 * now_ms passed to complete() and to the call that starts the phase), the last operation
 * ended OK, and no omv_rpc_abort() or stream since; a new engine is not in sync. Then what is
 * pending is the peer's next packet, already sent (the master's RESULT_HEADER request while
 * the slave's callback ran, its next COMMAND_HEADER before the slave's next turn), and
 * dropping it would cost the peer a timeout and a retry. Later than that the peer may have
 * sent it again, and answering the stale copy would cross its retry: a slow callback or loop
 * gets the reference flush. The caller always drops input on FLUSH, and never on its own.
 * (The reference flushes at every attempt; the bytes on the wire are the same.) */

/* io.packet: which packet an action moves, so that a transport can route it (the network
 * transport sends stream traffic over TCP, UART stream reads poll first) and so that a
 * failure can name it. */
#define OMV_RPC_PACKET_NONE           0u
#define OMV_RPC_PACKET_COMMAND_HEADER 1u
#define OMV_RPC_PACKET_COMMAND_DATA   2u
#define OMV_RPC_PACKET_RESULT_HEADER  3u
#define OMV_RPC_PACKET_RESULT_DATA    4u
#define OMV_RPC_PACKET_STREAM_SETUP   5u
#define OMV_RPC_PACKET_STREAM_HEADER  6u
#define OMV_RPC_PACKET_STREAM_FRAME   7u
#define OMV_RPC_PACKET_STREAM_ACK     8u

/* The magic of an OMV_RPC_PACKET_* (0 for NONE, STREAM_FRAME and STREAM_ACK, which have none). */
#define OMV_RPC_PACKET_MAGIC(packet) \
    ((packet) == OMV_RPC_PACKET_COMMAND_HEADER ? OMV_RPC_MAGIC_COMMAND_HEADER : \
     (packet) == OMV_RPC_PACKET_COMMAND_DATA   ? OMV_RPC_MAGIC_COMMAND_DATA : \
     (packet) == OMV_RPC_PACKET_RESULT_HEADER  ? OMV_RPC_MAGIC_RESULT_HEADER : \
     (packet) == OMV_RPC_PACKET_RESULT_DATA    ? OMV_RPC_MAGIC_RESULT_DATA : \
     (packet) == OMV_RPC_PACKET_STREAM_SETUP   ? OMV_RPC_MAGIC_STREAM_SETUP : \
     (packet) == OMV_RPC_PACKET_STREAM_HEADER  ? OMV_RPC_MAGIC_STREAM_HEADER : 0u)

/* The names every door prints, X(name) in the order of the numbers (OMV_RPC_PACKET_*,
 * OMV_RPC_* statuses, OMV_RPC_REASON_*): stringify them with #name. */
#define OMV_RPC_PACKET_NAMES(X) \
    X(NONE) X(COMMAND_HEADER) X(COMMAND_DATA) X(RESULT_HEADER) X(RESULT_DATA) X(STREAM_SETUP) \
    X(STREAM_HEADER) X(STREAM_FRAME) X(STREAM_ACK)
#define OMV_RPC_STATUS_NAMES(X) \
    X(OK) X(SEND_TIMEOUT) X(RECV_TIMEOUT) X(NO_COMMAND) X(RESULT_NOT_TAKEN) X(STREAM_TIMEOUT) \
    X(STREAM_BAD_PACKET) X(STREAM_BAD_ACK) X(STREAM_TOO_LONG) X(STREAM_STOPPED) \
    X(TRANSPORT_ERROR) X(BUSY) X(BAD_BUFFER)
#define OMV_RPC_REASON_NAMES(X) \
    X(none) X(timeout) X(bad_magic) X(bad_crc) X(too_long) X(transport)

/* complete(status) from the caller, for the action it carried out. */
#define OMV_RPC_IO_OK      0
#define OMV_RPC_IO_TIMEOUT 1  /* fewer bytes than asked for before the timeout */
#define OMV_RPC_IO_ERROR   2  /* transport error, or no memory for a data packet */

/* io.status on DONE, and omv_rpc_last_error().status. */
#define OMV_RPC_OK                 0u  /* call returned a result / command served / stream ended by peer */
#define OMV_RPC_SEND_TIMEOUT       1u  /* master: phase 1 (command) ran out of send_timeout */
#define OMV_RPC_RECV_TIMEOUT       2u  /* master: phase 2 (result) ran out of recv_timeout */
#define OMV_RPC_NO_COMMAND         3u  /* slave: no command within recv_timeout */
#define OMV_RPC_RESULT_NOT_TAKEN   4u  /* slave: the master did not take the result within send_timeout */
#define OMV_RPC_STREAM_TIMEOUT     5u  /* stream: a setup, header, frame or ack did not come in time */
#define OMV_RPC_STREAM_BAD_PACKET  6u  /* stream: setup or header with a wrong magic or crc */
#define OMV_RPC_STREAM_BAD_ACK     7u  /* stream writer: ack byte off the LFSR sequence */
#define OMV_RPC_STREAM_TOO_LONG    8u  /* stream reader: frame longer than max_frame_len */
#define OMV_RPC_STREAM_STOPPED     9u  /* stream: the caller stopped it (complete(ERROR) on DELIVER/PRODUCE) */
#define OMV_RPC_TRANSPORT_ERROR    10u /* stream: a send or receive reported ERROR */
#define OMV_RPC_BUSY               11u /* start() while another operation is running */
#define OMV_RPC_BAD_BUFFER         12u /* a packet buffer shorter than 4 bytes (start, DISPATCH), or a
                                          RECV completed OK without the buffer of io.len bytes */

/* Why the last failed attempt failed (omv_rpc_last_error().reason). */
#define OMV_RPC_REASON_NONE        0u
#define OMV_RPC_REASON_TIMEOUT     1u  /* a packet did not arrive (whole) in time */
#define OMV_RPC_REASON_BAD_MAGIC   2u
#define OMV_RPC_REASON_BAD_CRC     3u
#define OMV_RPC_REASON_TOO_LONG    4u  /* a length field above the caller's limit */
#define OMV_RPC_REASON_TRANSPORT   5u  /* the caller reported OMV_RPC_IO_ERROR */

typedef struct omv_rpc_io {
    uint32_t action;      /* OMV_RPC_ACTION_* */
    uint32_t packet;      /* OMV_RPC_PACKET_* */
    uint32_t timeout_ms;  /* SEND, RECV */
    uint32_t len;         /* SEND, RECV, DISPATCH (argument length), DELIVER (frame length) */
    uint8_t *data;        /* SEND: bytes to write; RECV: where to read (NULL: caller's buffer);
                             DISPATCH: the argument; DELIVER: the frame */
    uint32_t name_hash;   /* DISPATCH */
    uint32_t status;      /* DONE: OMV_RPC_* */
    uint32_t start_timeout_ms; /* RECV: 0 = no limit; else the first byte of the packet must
                             arrive within start_timeout_ms of the action's start, or the
                             caller completes TIMEOUT (the whole packet still has timeout_ms).
                             A caller that only moves whole packets (I2C, SPI, CAN) ignores it.
                             Set only for the master's RESULT_DATA: the slave answers the
                             request at once when the sides are in step; a request that came
                             after the slave's short timeout gets no answer, and the master
                             would otherwise wait out the long timeout past recv_timeout. */
    uint32_t deadline_ms;       /* SEND, RECV, WAIT: absolute deadline (see above) */
    uint32_t start_deadline_ms; /* RECV with start_timeout_ms != 0: the first byte's deadline */
    const uint8_t *prefix;      /* RECV with data NULL: the packet's first prefix_len bytes, already
                                   read by the engine (to tell which packet came): copy them to
                                   the start of your buffer and read only the rest */
    uint32_t prefix_len;
    uint32_t packet_len;        /* SEND, RECV: the whole packet's length (a RECV may read a part of
                                   it: a transport that routes by size, UDP or TCP, routes by this) */
    uint32_t gap_ms;            /* RECV of a data packet: once bytes came, the longest pause between
                                   two; the caller completes TIMEOUT past it (0: no limit). A packet
                                   cut short on a fast link is then retried in ms, not after the
                                   long timeout. A caller of whole packets (I2C, SPI) ignores it. */
} omv_rpc_io_t;

/* Timing and limits. Zero fields take the reference defaults shown. */
typedef struct omv_rpc_config {
    uint32_t short_timeout_ms;   /* first short timeout: 3 (master) / 2 (slave) */
    uint32_t long_timeout_ms;    /* data packets: 5000 */
    uint32_t max_argument_len;   /* slave: longest COMMAND_DATA payload accepted: 1 MiB */
    uint32_t max_result_len;     /* master: longest RESULT_DATA payload accepted: 1 MiB */
    uint32_t max_frame_len;      /* stream reader: longest frame accepted: 1 MiB */
    uint32_t max_queue_depth;    /* stream writer: 255 (1 on I2C and SPI) */
    uint32_t stream_timeout_ms;  /* stream setup, header and ack waits: 1000 */
    uint32_t pipeline;           /* master: OMV_RPC_PIPELINE_* bits, requests sent right behind
                                    the one before them (a round trip saved each, same bytes);
                                    0: the reference order. Not for I2C or SPI. */
    uint32_t bytes_per_s;        /* the link's rate (0: fast): every io may take its bytes' wire
                                    time + the first short timeout; the master's reply waits add
                                    the wire time of what it just wrote */
    uint32_t error_pause_ms;     /* pause (ACTION_WAIT) after an io completed ERROR, before the
                                    next attempt: the first short timeout */
    uint32_t split_reads;        /* nonzero: the transport is a byte stream that may be read in
                                    pieces (UART, USB VCP, TCP, pty, UDP through a datagram
                                    buffer): the slave reads the first 4 bytes of a packet to
                                    tell a repeated request from the packet it waits for, and
                                    keeps its last result. 0: whole packets only (I2C, SPI, CAN,
                                    a Python override) */
} omv_rpc_config_t;

/* omv_rpc_config_t.pipeline: the RESULT_DATA request right behind the RESULT_HEADER request
 * (safe with every slave on a transport that buffers input); COMMAND_DATA right behind
 * COMMAND_HEADER (the slave must buffer COMMAND_DATA while it handles the header: this
 * project's slaves do, a reference slave on a UART with a small receive buffer may not). */
#define OMV_RPC_PIPELINE_RESULT_DATA_REQUEST 1u
#define OMV_RPC_PIPELINE_COMMAND_DATA        2u

#define OMV_RPC_ROLE_MASTER 0u
#define OMV_RPC_ROLE_SLAVE  1u

/* The role sets the short timeout's start (3 / 2 ms) and growth rule (t*4//3 / t+1). */
void omv_rpc_init(omv_rpc_engine_t *e, uint32_t role, const omv_rpc_config_t *config); /* config may be NULL */

/* Master: one call. command_data_packet is a caller buffer of argument_len + 4 bytes whose
 * bytes [2, 2 + argument_len) hold the argument; the engine writes the magic and the crc
 * into it in place. On DONE with OMV_RPC_OK, the result payload is
 * result_packet[2, 2 + result_len) of the last buffer the caller passed to complete() for
 * the RESULT_DATA receive; omv_rpc_result_len() gives result_len. */
uint32_t omv_rpc_call_start(omv_rpc_engine_t *e, uint32_t name_hash,
                            uint8_t *command_data_packet, size_t packet_len,
                            uint32_t send_timeout_ms, uint32_t recv_timeout_ms, uint32_t now_ms);
uint32_t omv_rpc_result_len(const omv_rpc_engine_t *e);

/* Slave: one turn of loop(): wait up to recv_timeout_ms for a command, DISPATCH it, then
 * send the result within send_timeout_ms. At DISPATCH the caller completes with a result
 * packet buffer of result_len + 4 bytes whose [2, 2 + result_len) hold the result; the
 * engine frames it in place. An unknown name is the caller's business: it answers with an
 * empty result (a 4-byte buffer). */
uint32_t omv_rpc_serve_start(omv_rpc_engine_t *e, uint32_t recv_timeout_ms,
                             uint32_t send_timeout_ms, uint32_t now_ms);

/* Streams, after a call has synchronised both sides. */
uint32_t omv_rpc_stream_reader_start(omv_rpc_engine_t *e, uint32_t queue_depth,
                                     uint32_t read_timeout_ms, uint32_t now_ms);
uint32_t omv_rpc_stream_writer_start(omv_rpc_engine_t *e, uint32_t write_timeout_ms,
                                     uint32_t now_ms);

/* The start functions return OMV_RPC_OK, OMV_RPC_BUSY, or OMV_RPC_BAD_BUFFER (call_start with a
 * packet_len < 4 or a NULL packet). */

void omv_rpc_poll(omv_rpc_engine_t *e, uint32_t now_ms, omv_rpc_io_t *io);
/* The deadline of what the engine asks for now into *deadline_ms (a first byte's, if earlier);
 * false when it waits for nothing timed (done, idle, FLUSH, a callback). */
bool omv_rpc_poll_timeout(omv_rpc_engine_t *e, uint32_t *deadline_ms);

/* buf/len: the caller's buffer for a RECV with io.data == NULL (len must equal io.len), the
 * result packet for DISPATCH, the frame for PRODUCE; otherwise NULL/0. The result packet at
 * DISPATCH must be writable: the engine writes its magic and crc in place (buf is const only so
 * that read-only frames can be passed at PRODUCE). */
void omv_rpc_complete(omv_rpc_engine_t *e, uint32_t now_ms, int32_t io_status,
                      const uint8_t *buf, size_t len);

/* Abandon the running operation (a non-blocking call the user gave up on, an exception in a
 * callback). The engine is then idle. */
void omv_rpc_abort(omv_rpc_engine_t *e);

/* Counters since init (omv_rpc_stats_reset zeroes them). */
typedef struct omv_rpc_stats {
    uint32_t packets_sent;
    uint32_t packets_received;   /* valid packets */
    uint32_t bad_magic;
    uint32_t bad_crc;
    uint32_t too_long;           /* length fields over the caller's limit */
    uint32_t timeouts;           /* receives that timed out */
    uint32_t transport_errors;
    uint32_t retries;            /* attempts after the first, in any phase */
    uint32_t calls_ok;
    uint32_t calls_failed;
    uint32_t send_phase_timeouts;
    uint32_t recv_phase_timeouts;
    uint32_t commands_served;
    uint32_t stream_frames;
    uint32_t late_requests;      /* slave: requests that came twice or late, handled in step */
    uint32_t repeats_answered;   /* slave: a repeated COMMAND_HEADER/COMMAND_DATA acked again (no
                                    second callback), a repeated RESULT_HEADER/RESULT_DATA request
                                    answered from the kept result */
    uint32_t new_commands;       /* slave: a new COMMAND_HEADER that ended the wait for COMMAND_DATA
                                    or for the result requests */
    uint32_t stray_replies;      /* master: a second ack skipped; COMMAND_DATA sent again alone */
} omv_rpc_stats_t;

/* The fields of omv_rpc_stats_t in order, X(name) each: what every door's stats() returns. */
#define OMV_RPC_STATS_FIELDS(X) \
    X(packets_sent) X(packets_received) X(bad_magic) X(bad_crc) X(too_long) X(timeouts) \
    X(transport_errors) X(retries) X(calls_ok) X(calls_failed) X(send_phase_timeouts) \
    X(recv_phase_timeouts) X(commands_served) X(stream_frames) X(late_requests) \
    X(repeats_answered) X(new_commands) X(stray_replies)

void omv_rpc_stats(const omv_rpc_engine_t *e, omv_rpc_stats_t *out);
void omv_rpc_stats_reset(omv_rpc_engine_t *e);

/* What ended the last operation that did not end OK, and the last attempt failure in it. */
typedef struct omv_rpc_error {
    uint32_t status;   /* OMV_RPC_* */
    uint32_t packet;   /* OMV_RPC_PACKET_* of the last packet that failed */
    uint32_t reason;   /* OMV_RPC_REASON_* */
    uint32_t attempts; /* attempts made in the phase that failed */
} omv_rpc_error_t;

void omv_rpc_last_error(const omv_rpc_engine_t *e, omv_rpc_error_t *out);
/* What every door's last_error says: "<STATUS>: <PACKET> <reason> (<n> attempt[s])" (64 bytes
 * always do) into buf, NUL-terminated when cap > 0; returns its length without the NUL. */
size_t omv_rpc_last_error_text(const omv_rpc_engine_t *e, char *buf, size_t cap);

/* Protocol helpers. */
uint16_t omv_rpc_crc16(const uint8_t *data, size_t len);
uint32_t omv_rpc_name_hash(const uint8_t *name, size_t len);
/* Writes magic at [0,2) and crc at [len-4+2, len) of a packet buffer of len >= 4. */
void omv_rpc_frame(uint16_t magic, uint8_t *packet, size_t len);

/* Benchmark hook: the CRC of buf[0, len) computed `rounds` times; returns the last CRC. For
 * measuring instructions (or cycles) per CRC byte on a target. */
uint16_t omv_rpc_bench_crc(const uint8_t *buf, size_t len, uint32_t rounds);

#ifdef __cplusplus
}
#endif
#endif /* OMV_RPC_H */
