//! The engine's public types: its configuration and defaults, what it asks for ([`Io`]) and
//! is told ([`IoStatus`]), how operations end ([`Status`], [`Reason`], [`LastError`]), the
//! packets an action moves ([`Packet`]) and the counters ([`Stats`]); the names every door
//! prints are theirs.

#[cfg(doc)]
use super::Engine;
use crate::wire;

/// The reference timings and limits (PROTOCOL.md), taken by every zero field of [`Config`].
pub mod defaults {
    /// First short timeout of the master (ms).
    pub const MASTER_SHORT_TIMEOUT_MS: u32 = 3;
    /// First short timeout of the slave (ms).
    pub const SLAVE_SHORT_TIMEOUT_MS: u32 = 2;
    /// Timeout for a data packet, COMMAND_DATA or RESULT_DATA (ms).
    pub const LONG_TIMEOUT_MS: u32 = 5000;
    /// Longest argument, result or stream frame accepted (1 MiB: what both drivers document,
    /// `set_limits`).
    pub const MAX_DATA_LEN: u32 = 1 << 20;
    /// Largest stream queue depth the writer accepts (1 on I2C and SPI).
    pub const MAX_QUEUE_DEPTH: u32 = 255;
    /// Stream setup, header and ack waits (ms).
    pub const STREAM_TIMEOUT_MS: u32 = 1000;
    /// The longest pause between two bytes of a data packet once it started (ms; stretched to
    /// the wire time of 1 KiB on a slow link): see [`crate::Engine::gap_timeout_ms`].
    pub const DATA_GAP_MS: u32 = 100;
    /// The factor on the short timeouts of a transport that moves packets in transfers rather
    /// than a byte stream: UDP datagrams (the reference's network x10), I2C, SPI and CAN.
    pub const BUS_SHORT_TIMEOUT_SCALE: u32 = 10;
}

/// The bits of [`Config::pipeline`].
pub mod pipeline {
    /// The RESULT_DATA request right behind the RESULT_HEADER request. Safe with every slave
    /// on a transport that buffers input (a slave reads exactly one packet at a time, and the
    /// request is 4 bytes); it also spares a slave that waits only a short timeout for the
    /// request a round trip of waiting.
    pub const RESULT_DATA_REQUEST: u32 = 1;
    /// COMMAND_DATA right behind COMMAND_HEADER. The slave must take COMMAND_DATA into its
    /// input while it handles the header: this project's slaves do; a reference slave on a
    /// UART with a small receive buffer may lose bytes.
    pub const COMMAND_DATA: u32 = 2;
}

/// Which side of the link the engine plays. It sets the short timeout's start and growth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    Master = 0,
    Slave = 1,
}

/// Timing and limits; zero fields take the [`defaults`]. Same layout as `omv_rpc_config_t`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Config {
    pub short_timeout_ms: u32,
    pub long_timeout_ms: u32,
    pub max_argument_len: u32,
    pub max_result_len: u32,
    pub max_frame_len: u32,
    pub max_queue_depth: u32,
    pub stream_timeout_ms: u32,
    /// Master: which requests go right behind the one before them instead of after its
    /// answer (then both answers are read), a set of [`pipeline`] bits: the RESULT_DATA
    /// request behind the RESULT_HEADER request, COMMAND_DATA behind COMMAND_HEADER. Each
    /// saves a round trip a call; the bytes on the wire are the same. 0 (the reference order)
    /// by default.
    pub pipeline: u32,
    /// The link's rate in bytes/s (0: unknown, a fast link): every send and receive may take
    /// at least the wire time of its bytes plus the first short timeout, and the master waits
    /// for a reply at least the wire time of what it just wrote (set_timing(bytes_per_s=)).
    pub bytes_per_s: u32,
    /// Pause after a send or receive the caller reported as an error (a transport that fails
    /// at once: nobody listening), before the next attempt ([`Io::Wait`]); 0: the first short
    /// timeout.
    pub error_pause_ms: u32,
    /// Nonzero when the transport carries a byte stream that may be read in pieces (UART, USB
    /// VCP, TCP, pty; UDP read through a datagram buffer): the slave then reads the first
    /// bytes of a packet to tell a repeated request from the packet it waits for (see
    /// [`Stats::repeats_answered`]). 0 for buses that move whole packets (I2C, SPI, CAN, a
    /// Python override): each receive asks for the whole packet the peer is expected to send.
    pub split_reads: u32,
}

impl Config {
    /// This configuration with every zero field replaced by its default for `role`.
    pub fn resolved(self, role: Role) -> Config {
        let or = |v: u32, d: u32| if v == 0 { d } else { v };
        let short = match role {
            Role::Master => defaults::MASTER_SHORT_TIMEOUT_MS,
            Role::Slave => defaults::SLAVE_SHORT_TIMEOUT_MS,
        };
        Config {
            short_timeout_ms: or(self.short_timeout_ms, short),
            long_timeout_ms: or(self.long_timeout_ms, defaults::LONG_TIMEOUT_MS),
            max_argument_len: or(self.max_argument_len, defaults::MAX_DATA_LEN),
            max_result_len: or(self.max_result_len, defaults::MAX_DATA_LEN),
            max_frame_len: or(self.max_frame_len, defaults::MAX_DATA_LEN),
            max_queue_depth: or(self.max_queue_depth, defaults::MAX_QUEUE_DEPTH),
            stream_timeout_ms: or(self.stream_timeout_ms, defaults::STREAM_TIMEOUT_MS),
            pipeline: self.pipeline,
            bytes_per_s: self.bytes_per_s,
            error_pause_ms: or(self.error_pause_ms, or(self.short_timeout_ms, short)),
            split_reads: self.split_reads,
        }
    }
}

/// Which packet an action moves (`OMV_RPC_PACKET_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Packet {
    None = 0,
    CommandHeader = 1,
    CommandData = 2,
    ResultHeader = 3,
    ResultData = 4,
    StreamSetup = 5,
    StreamHeader = 6,
    StreamFrame = 7,
    StreamAck = 8,
}

impl Packet {
    /// Every packet, in the order of their numbers.
    pub const ALL: [Packet; 9] = [
        Packet::None,
        Packet::CommandHeader,
        Packet::CommandData,
        Packet::ResultHeader,
        Packet::ResultData,
        Packet::StreamSetup,
        Packet::StreamHeader,
        Packet::StreamFrame,
        Packet::StreamAck,
    ];

    /// The name every door prints (`OMV_RPC_PACKET_NAMES`).
    pub const fn name(self) -> &'static str {
        match self {
            Packet::None => "NONE",
            Packet::CommandHeader => "COMMAND_HEADER",
            Packet::CommandData => "COMMAND_DATA",
            Packet::ResultHeader => "RESULT_HEADER",
            Packet::ResultData => "RESULT_DATA",
            Packet::StreamSetup => "STREAM_SETUP",
            Packet::StreamHeader => "STREAM_HEADER",
            Packet::StreamFrame => "STREAM_FRAME",
            Packet::StreamAck => "STREAM_ACK",
        }
    }

    /// The magic of this packet on the wire; 0 for a stream frame or ack, which have none
    /// (`OMV_RPC_PACKET_MAGIC`).
    pub const fn magic(self) -> u16 {
        match self {
            Packet::CommandHeader => wire::MAGIC_COMMAND_HEADER,
            Packet::CommandData => wire::MAGIC_COMMAND_DATA,
            Packet::ResultHeader => wire::MAGIC_RESULT_HEADER,
            Packet::ResultData => wire::MAGIC_RESULT_DATA,
            Packet::StreamSetup => wire::MAGIC_STREAM_SETUP,
            Packet::StreamHeader => wire::MAGIC_STREAM_HEADER,
            Packet::None | Packet::StreamFrame | Packet::StreamAck => 0,
        }
    }
}

/// How an operation ended (`OMV_RPC_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    /// Call returned a result / command served / stream ended by the peer.
    Ok = 0,
    /// Master: phase 1 (command) ran out of send_timeout.
    SendTimeout = 1,
    /// Master: phase 2 (result) ran out of recv_timeout.
    RecvTimeout = 2,
    /// Slave: no command within recv_timeout.
    NoCommand = 3,
    /// Slave: the master did not take the result within send_timeout (or the caller
    /// completed DISPATCH with a failure).
    ResultNotTaken = 4,
    /// Stream: a setup, header, frame or ack did not come in time.
    StreamTimeout = 5,
    /// Stream: setup or header with a wrong magic or crc.
    StreamBadPacket = 6,
    /// Stream writer: ack byte off the LFSR sequence.
    StreamBadAck = 7,
    /// Stream reader: frame longer than max_frame_len.
    StreamTooLong = 8,
    /// Stream: the caller stopped it (failure on DELIVER or PRODUCE).
    StreamStopped = 9,
    /// Stream: a send or receive reported an error.
    TransportError = 10,
    /// A start while another operation is running.
    Busy = 11,
    /// The caller passed a packet buffer shorter than 4 bytes, or a receive buffer whose
    /// length is not the one asked for.
    BadBuffer = 12,
}

impl Status {
    /// Every status, in the order of their numbers.
    pub const ALL: [Status; 13] = [
        Status::Ok,
        Status::SendTimeout,
        Status::RecvTimeout,
        Status::NoCommand,
        Status::ResultNotTaken,
        Status::StreamTimeout,
        Status::StreamBadPacket,
        Status::StreamBadAck,
        Status::StreamTooLong,
        Status::StreamStopped,
        Status::TransportError,
        Status::Busy,
        Status::BadBuffer,
    ];

    /// The name every door prints (`OMV_RPC_STATUS_NAMES`).
    pub const fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::SendTimeout => "SEND_TIMEOUT",
            Status::RecvTimeout => "RECV_TIMEOUT",
            Status::NoCommand => "NO_COMMAND",
            Status::ResultNotTaken => "RESULT_NOT_TAKEN",
            Status::StreamTimeout => "STREAM_TIMEOUT",
            Status::StreamBadPacket => "STREAM_BAD_PACKET",
            Status::StreamBadAck => "STREAM_BAD_ACK",
            Status::StreamTooLong => "STREAM_TOO_LONG",
            Status::StreamStopped => "STREAM_STOPPED",
            Status::TransportError => "TRANSPORT_ERROR",
            Status::Busy => "BUSY",
            Status::BadBuffer => "BAD_BUFFER",
        }
    }
}

/// Why the last failed attempt failed (`OMV_RPC_REASON_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Reason {
    None = 0,
    /// A packet did not arrive (whole) in time.
    Timeout = 1,
    BadMagic = 2,
    BadCrc = 3,
    /// A length field above the caller's limit.
    TooLong = 4,
    /// The caller reported a transport error.
    Transport = 5,
}

impl Reason {
    /// Every reason, in the order of their numbers.
    pub const ALL: [Reason; 6] = [
        Reason::None,
        Reason::Timeout,
        Reason::BadMagic,
        Reason::BadCrc,
        Reason::TooLong,
        Reason::Transport,
    ];

    /// The name every door prints (`OMV_RPC_REASON_NAMES`).
    pub const fn name(self) -> &'static str {
        match self {
            Reason::None => "none",
            Reason::Timeout => "timeout",
            Reason::BadMagic => "bad_magic",
            Reason::BadCrc => "bad_crc",
            Reason::TooLong => "too_long",
            Reason::Transport => "transport",
        }
    }
}

/// What the caller reports for the action it carried out (`OMV_RPC_IO_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoStatus {
    Ok,
    /// Fewer bytes than asked for before the timeout.
    Timeout,
    /// Transport error, or no memory for a data packet; on DELIVER/PRODUCE/DISPATCH: stop.
    Error,
}

/// Counters since [`Engine::new`] or [`Engine::stats_reset`]. Same layout as `omv_rpc_stats_t`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Stats {
    pub packets_sent: u32,
    /// Valid packets (and stream frames and ack bytes).
    pub packets_received: u32,
    pub bad_magic: u32,
    pub bad_crc: u32,
    /// Length fields over the caller's limit.
    pub too_long: u32,
    /// Receives that timed out.
    pub timeouts: u32,
    pub transport_errors: u32,
    /// Attempts after the first, in any phase.
    pub retries: u32,
    pub calls_ok: u32,
    pub calls_failed: u32,
    pub send_phase_timeouts: u32,
    pub recv_phase_timeouts: u32,
    pub commands_served: u32,
    pub stream_frames: u32,
    /// Slave: requests that came twice or late and were handled in step (see
    /// [`Engine::complete`]'s duplicate rules): a repeated COMMAND_HEADER read where
    /// COMMAND_DATA was expected, a repeated RESULT_HEADER request read where the RESULT_DATA
    /// request was expected, a RESULT_DATA request that came after the slave stopped waiting.
    pub late_requests: u32,
    /// Slave: repeats answered again from what this side still holds: a COMMAND_HEADER or
    /// COMMAND_DATA re-acknowledged (the master lost the ack; the callback is not run twice),
    /// a RESULT_HEADER or RESULT_DATA request answered from the result kept after the turn.
    pub repeats_answered: u32,
    /// Slave: a new COMMAND_HEADER that ended the wait for COMMAND_DATA or for the result
    /// requests (the master gave up on the call and started another).
    pub new_commands: u32,
    /// Master: replies to an earlier try skipped where another reply was due (a second ack
    /// of a repeated COMMAND_HEADER), and COMMAND_DATA sent again alone.
    pub stray_replies: u32,
}

/// Declares the stats field list once: the names (`Stats::FIELDS`, what `stats()` returns in
/// every door) and the values in that order.
macro_rules! stats_fields {
    ($($field:ident),* $(,)?) => {
        impl Stats {
            /// Every counter's name, in the struct's (and `omv_rpc_stats_t`'s) order.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Every counter, in the order of [`Stats::FIELDS`].
            pub fn values(&self) -> [u32; Self::FIELDS.len()] {
                [$(self.$field),*]
            }

            /// The sum of two sets of counters (wrapping), e.g. across engine re-inits.
            pub fn wrapping_add(self, other: Stats) -> Stats {
                Stats { $($field: self.$field.wrapping_add(other.$field)),* }
            }
        }
    };
}

stats_fields!(
    packets_sent,
    packets_received,
    bad_magic,
    bad_crc,
    too_long,
    timeouts,
    transport_errors,
    retries,
    calls_ok,
    calls_failed,
    send_phase_timeouts,
    recv_phase_timeouts,
    commands_served,
    stream_frames,
    late_requests,
    repeats_answered,
    new_commands,
    stray_replies,
);

/// What ended the last operation that did not end OK, and the last attempt failure in it.
/// Same layout as `omv_rpc_error_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct LastError {
    pub status: Status,
    /// The last packet that failed.
    pub packet: Packet,
    pub reason: Reason,
    /// Attempts made in the phase that failed.
    pub attempts: u32,
}

impl LastError {
    /// Writes what every door's `last_error` says, `"<STATUS>: <PACKET> <reason> (<n>
    /// attempt[s])"`, into `out` (cut short if it does not fit; 64 bytes always do) and
    /// returns its length (`omv_rpc_error_text`).
    pub fn describe(&self, out: &mut [u8]) -> usize {
        let mut n = 0;
        let mut put = |s: &[u8]| {
            for &b in s {
                if let Some(slot) = out.get_mut(n) {
                    *slot = b;
                    n += 1;
                }
            }
        };
        put(self.status.name().as_bytes());
        put(b": ");
        put(self.packet.name().as_bytes());
        put(b" ");
        put(self.reason.name().as_bytes());
        put(b" (");
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        let mut v = self.attempts;
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (v % 10) as u8;
            }
            v /= 10;
            if v == 0 || i == 0 {
                break;
            }
        }
        put(digits.get(i..).unwrap_or_default());
        put(if self.attempts == 1 { b" attempt)" } else { b" attempts)" });
        n
    }
}

impl Default for LastError {
    fn default() -> Self {
        LastError { status: Status::Ok, packet: Packet::None, reason: Reason::None, attempts: 0 }
    }
}

/// What the engine wants next. Slices borrow from the engine (its header buffers or the
/// caller buffers it holds) until the next [`Engine::complete`].
#[derive(Debug, PartialEq, Eq)]
pub enum Io<'e> {
    /// The operation ended (or none ran): how.
    Done(Status),
    /// Drop all pending input, then `complete(Ok)`.
    ///
    /// Asked for at the start of an attempt that must resynchronise: every retry, and the first
    /// attempt of a phase unless the link is in sync. In sync: the last send or receive
    /// completed OK less than one short timeout ago (the configured first one: 3 ms master,
    /// 2 ms slave), the last operation ended OK, and no abort or stream came since; a new
    /// engine is not in sync. The reference flushes at every attempt, but then what is pending
    /// is the peer's next packet, already sent (the master's RESULT_HEADER request while the
    /// slave's callback ran, its next COMMAND_HEADER before the slave's next turn), and
    /// dropping it costs the peer a short timeout and a retry. The time limit matters: later
    /// than that, the peer may have given up and sent its packet again, and answering the
    /// stale copy crosses its retry (a reference master then waits 5 s for a RESULT_DATA that
    /// never comes); so a slow callback or loop gets the reference flush.
    ///
    /// Also asked for once before the stream reader's STREAM_SETUP: the writer sends nothing
    /// before it, so whatever is pending is left over (unread acks of an earlier stream).
    /// Peers see the same bytes on the wire either way.
    Flush,
    /// Write `data` by `deadline_ms` (`timeout_ms` after the step began); complete with Ok,
    /// Timeout or Error.
    Send { packet: Packet, timeout_ms: u32, deadline_ms: u32, data: &'e [u8] },
    /// Read exactly `len` bytes by `deadline_ms` (`timeout_ms` after the step began): into
    /// `into` when it is given (then `complete(status, None)`), else into a buffer of the
    /// caller's own of `len` bytes that it passes to `complete` (a data packet or stream frame,
    /// whose memory the caller owns). `prefix`: the packet's first bytes, already read (to tell
    /// which packet it is): the caller puts them at the start of its buffer and reads only the
    /// rest. See [`Engine::first_byte_deadline`] for the limit on the first byte.
    ///
    /// `packet_len` is the length of the whole packet this read is part of (a transport that
    /// routes packets by size, the network's UDP or TCP, routes by it).
    Recv {
        packet: Packet,
        timeout_ms: u32,
        deadline_ms: u32,
        len: usize,
        packet_len: usize,
        prefix: &'e [u8],
        into: Option<&'e mut [u8]>,
    },
    /// Wait until `deadline_ms` (a pause after a transport error), then `complete(Ok)`. A
    /// non-blocking caller may return and come back; completing earlier changes nothing.
    Wait { deadline_ms: u32 },
    /// Slave: run the callback named by `name_hash` on `argument`; complete with the result
    /// packet: a buffer of result length + 4 whose `[2, len - 2)` holds the result (the engine
    /// frames it in place). An unknown name is answered with an empty result (4 bytes).
    Dispatch { name_hash: u32, argument: &'e [u8] },
    /// Stream reader: hand `frame` to the callback; `complete(Ok)`, or `Error` to stop.
    Deliver { frame: &'e [u8] },
    /// Stream writer: complete with the next frame (sent raw), or with `Error` to stop.
    Produce,
}

impl Io<'_> {
    /// The `OMV_RPC_ACTION_*` number of this action.
    pub fn action(&self) -> u32 {
        match self {
            Io::Done(_) => 0,
            Io::Flush => 1,
            Io::Send { .. } => 2,
            Io::Recv { .. } => 3,
            Io::Dispatch { .. } => 4,
            Io::Deliver { .. } => 5,
            Io::Produce => 6,
            Io::Wait { .. } => 7,
        }
    }
}
