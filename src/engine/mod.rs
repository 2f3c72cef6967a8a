//! The master call, slave turn and stream engines: one sans-IO state machine per operation.
//!
//! The engine never reads a clock, touches a bus or calls the caller. [`Engine::poll`] says what
//! it wants next ([`Io`]); the caller carries it out and reports with [`Engine::complete`].
//! All timing rules of PROTOCOL.md live here: phases, short and long timeouts, their growth, when
//! an attempt drops pending input first (see [`Io::Flush`]), the stream credits and ack bytes.
//!
//! # Layout
//! - this file: the public types, the engine's state (`Step`: an operation and its own step,
//!   so that a step of one operation cannot be written in another), `poll`/`complete` handing
//!   each step to its operation, and how a send or receive is accounted for;
//! - `timing.rs`: phases, attempts, short timeouts and their growth, the flush
//!   rule, deadlines and the wire-time stretch;
//! - `call.rs`: the master's call; `serve.rs`: the slave's turn and its recovery rules;
//!   `stream.rs`: the stream reader and writer.

mod call;
mod serve;
mod stream;
mod timing;

use self::call::{CallState, CallStep};
use self::serve::{ServeStep, TurnState};
use self::stream::{ReaderStep, StreamState, WriterStep};
use self::timing::deadline_passed;
pub use self::timing::stretch;
use crate::wire::{self, AckLfsr, WireError, EMPTY_PACKET_LEN, MAX_HEADER_LEN, PACKET_OVERHEAD};

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

/// The operations (what a [`Step`] belongs to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Call,
    Serve,
    StreamReader,
    StreamWriter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Master phase 1 / slave waiting for a command (the four COMMAND packets).
    Command,
    /// Master phase 2 / slave sending the result (the four RESULT packets).
    Result,
}

/// Where the engine is: idle, or in one operation, at one of that operation's own steps (or
/// at one of the steps every retrying operation shares).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Idle,
    /// The operation ended ([`Engine::status`] says how).
    Done(Op),
    /// Drop pending input: a retry, a first attempt out of sync, the stream reader's start.
    Flush(Op),
    /// The pause after a transport error, before the next attempt.
    Pause(Op),
    Call(CallStep),
    Serve(ServeStep),
    Reader(ReaderStep),
    Writer(WriterStep),
}

impl Step {
    fn op(self) -> Option<Op> {
        match self {
            Step::Idle => None,
            Step::Done(op) | Step::Flush(op) | Step::Pause(op) => Some(op),
            Step::Call(_) => Some(Op::Call),
            Step::Serve(_) => Some(Op::Serve),
            Step::Reader(_) => Some(Op::StreamReader),
            Step::Writer(_) => Some(Op::StreamWriter),
        }
    }

    /// A send or a receive (every step but these).
    fn moves_bytes(self) -> bool {
        !matches!(
            self,
            Step::Idle
                | Step::Done(_)
                | Step::Flush(_)
                | Step::Pause(_)
                | Step::Serve(ServeStep::Dispatch)
                | Step::Reader(ReaderStep::Deliver)
                | Step::Writer(WriterStep::Produce)
        )
    }
}

impl From<CallStep> for Step {
    fn from(step: CallStep) -> Step {
        Step::Call(step)
    }
}
impl From<ServeStep> for Step {
    fn from(step: ServeStep) -> Step {
        Step::Serve(step)
    }
}
impl From<ReaderStep> for Step {
    fn from(step: ReaderStep) -> Step {
        Step::Reader(step)
    }
}
impl From<WriterStep> for Step {
    fn from(step: WriterStep) -> Step {
        Step::Writer(step)
    }
}

/// What an operation's step asks for, before the engine lends out its buffers ([`Io`]).
enum Action {
    /// Send the header buffer (`tx`) or the caller's buffer the engine holds (`outgoing`).
    Send {
        packet: Packet,
        timeout_ms: u32,
        from: SendFrom,
    },
    /// Receive `len` bytes (of a packet of `packet_len`).
    Recv {
        packet: Packet,
        timeout_ms: u32,
        len: usize,
        packet_len: usize,
        into: RecvInto,
    },
    Dispatch,
    Deliver,
    Produce,
}

/// What a send sends.
enum SendFrom {
    /// The engine's header buffer.
    Tx,
    /// The caller's buffer the engine holds (`outgoing`).
    Outgoing,
}

/// Where a receive goes.
enum RecvInto {
    /// The engine's header buffer, from this offset.
    Rx(usize),
    /// A buffer of the caller's own, the first bytes (this many) already read into rx.
    Caller(usize),
    /// The caller's buffer the engine holds (`incoming`), from this offset.
    Incoming(usize),
}

/// The caller's buffers the engine holds: anything that is a mutable byte slice
/// (`&mut [u8]`, `Vec<u8>`, `[u8; N]`, or the C glue's raw buffers).
pub trait Buffer: AsRef<[u8]> + AsMut<[u8]> {}
impl<T: AsRef<[u8]> + AsMut<[u8]>> Buffer for T {}

/// One protocol engine: a master (calls, streams) or a slave (turns, streams).
///
/// It owns no memory but small header buffers; data packets and frames live in caller
/// buffers of type `B` that the engine holds from the moment they are handed in until the
/// next operation starts (take them back with [`Engine::take_incoming`] and
/// [`Engine::take_outgoing`]).
pub struct Engine<B: Buffer> {
    config: Config,
    stats: Stats,
    last_error: LastError,
    /// The command data packet (master), the result packet (slave), the frame (writer).
    outgoing: Option<B>,
    /// The result packet (master), the command data packet (slave), the frame (reader).
    incoming: Option<B>,
    phase_start: u32,
    phase_timeout: u32,
    short_timeout: u32,
    /// recv_timeout (master) or send_timeout (slave) for the second phase.
    result_phase_timeout: u32,
    attempts: u32,
    name_hash: u32,
    /// Argument, result or frame length of the data packet in flight.
    data_len: u32,
    role: Role,
    phase: Phase,
    step: Step,
    status: Status,
    fail_packet: Packet,
    fail_reason: Reason,
    /// The last send or receive completed OK, the last operation ended OK, and no abort or
    /// stream since: a first attempt soon after `last_io_at` need not flush (see [`Io::Flush`]).
    in_sync: bool,
    /// When the last send or receive completed.
    last_io_at: u32,
    /// When the current step began (the `now` of the call that set it): the deadlines of its
    /// send, receive or pause count from here.
    step_at: u32,
    /// The master's replies after which the slave has moved on (the COMMAND_DATA ack, the
    /// first byte of RESULT_DATA): how long to wait, set when the packet before them went out
    /// ([`Engine::reply_wait`]).
    reply_wait_ms: u32,
    /// The master's own flags of a call (call.rs).
    call: CallState,
    /// The slave's own state of a turn, and the result it keeps after one (serve.rs).
    turn: TurnState,
    /// The stream reader's and writer's credits and ack bytes (stream.rs).
    stream: StreamState,
    tx_len: u8,
    tx: [u8; MAX_HEADER_LEN],
    rx: [u8; MAX_HEADER_LEN],
}

impl<B: Buffer> Engine<B> {
    /// An idle engine. Zero fields of `config` take the reference defaults for `role`.
    pub fn new(role: Role, config: Config) -> Self {
        Engine {
            config: config.resolved(role),
            stats: Stats::default(),
            last_error: LastError::default(),
            outgoing: None,
            incoming: None,
            phase_start: 0,
            phase_timeout: 0,
            short_timeout: 0,
            result_phase_timeout: 0,
            attempts: 0,
            name_hash: 0,
            data_len: 0,
            role,
            phase: Phase::Command,
            step: Step::Idle,
            status: Status::Ok,
            fail_packet: Packet::None,
            fail_reason: Reason::None,
            in_sync: false,
            last_io_at: 0,
            step_at: 0,
            reply_wait_ms: 0,
            call: CallState::default(),
            turn: TurnState::default(),
            stream: StreamState::default(),
            tx_len: 0,
            tx: [0; MAX_HEADER_LEN],
            rx: [0; MAX_HEADER_LEN],
        }
    }

    /// The configuration in force (defaults filled in).
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// True while an operation runs (poll() says anything but Done).
    pub fn is_busy(&self) -> bool {
        !matches!(self.step, Step::Idle | Step::Done(_))
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn stats_reset(&mut self) {
        self.stats = Stats::default();
    }

    pub fn last_error(&self) -> LastError {
        self.last_error
    }

    /// Abandon the running operation; the engine is idle and reusable. Buffers it held are
    /// dropped. poll() then says Done with the status of the last operation that ended.
    pub fn abort(&mut self) {
        self.step = Step::Idle;
        self.in_sync = false;
        self.turn.kept = false;
        self.outgoing = None;
        self.incoming = None;
    }

    /// Takes back the caller buffer last received into (result packet, command data packet,
    /// reader frame), unless the engine still needs it (at DISPATCH or DELIVER).
    pub fn take_incoming(&mut self) -> Option<B> {
        match self.step {
            Step::Serve(ServeStep::Dispatch) | Step::Reader(ReaderStep::Deliver) => None,
            _ => self.incoming.take(),
        }
    }

    /// Takes back the caller buffer last sent from (command data packet, result packet,
    /// writer frame) when the engine no longer needs it: after Done, or at PRODUCE.
    pub fn take_outgoing(&mut self) -> Option<B> {
        match self.step {
            Step::Idle | Step::Done(_) | Step::Writer(WriterStep::Produce) => self.outgoing.take(),
            _ => None,
        }
    }

    /// What the engine wants next. Calling it again before [`Engine::complete`] gives the
    /// same answer; it changes nothing. Deadlines count from the step's start.
    pub fn poll(&mut self, _now: u32) -> Io<'_> {
        let action = match self.step {
            Step::Idle | Step::Done(_) => return Io::Done(self.status),
            Step::Flush(_) => return Io::Flush,
            Step::Pause(_) => {
                return Io::Wait {
                    deadline_ms: self.step_at.wrapping_add(self.config.error_pause_ms),
                }
            }
            Step::Call(step) => self.call_action(step),
            Step::Serve(step) => self.serve_action(step),
            Step::Reader(step) => self.reader_action(step),
            Step::Writer(step) => self.writer_action(step),
        };
        self.io(action)
    }

    /// The [`Io`] of an operation's [`Action`]: the buffers lent out, every timeout stretched
    /// to the wire time of its bytes (set_timing(bytes_per_s)), deadlines from the step's start.
    fn io(&mut self, action: Action) -> Io<'_> {
        let at = self.step_at;
        let (bytes_per_s, first_short) = (self.config.bytes_per_s, self.config.short_timeout_ms);
        let stretched =
            |timeout_ms: u32, len: usize| stretch(timeout_ms, len, bytes_per_s, first_short);
        match action {
            Action::Dispatch => {
                let argument = self
                    .incoming
                    .as_ref()
                    .and_then(|b| {
                        b.as_ref().get(
                            wire::PAYLOAD_OFFSET..wire::PAYLOAD_OFFSET + self.data_len as usize,
                        )
                    })
                    .unwrap_or(&[]);
                Io::Dispatch { name_hash: self.name_hash, argument }
            }
            Action::Deliver => {
                let frame = self
                    .incoming
                    .as_ref()
                    .and_then(|b| b.as_ref().get(..self.data_len as usize))
                    .unwrap_or(&[]);
                Io::Deliver { frame }
            }
            Action::Produce => Io::Produce,
            Action::Send { packet, timeout_ms, from } => {
                let data = match from {
                    SendFrom::Tx => {
                        let tx_len = usize::from(self.tx_len).min(MAX_HEADER_LEN);
                        &self.tx[..tx_len]
                    }
                    SendFrom::Outgoing => self.outgoing.as_ref().map_or(&[][..], |b| b.as_ref()),
                };
                let timeout_ms = stretched(timeout_ms, data.len());
                Io::Send { packet, timeout_ms, deadline_ms: at.wrapping_add(timeout_ms), data }
            }
            Action::Recv { packet, timeout_ms, len, packet_len, into } => {
                let timeout_ms = stretched(timeout_ms, len);
                let deadline_ms = at.wrapping_add(timeout_ms);
                match into {
                    RecvInto::Rx(from) => {
                        // Every header fits rx; get_mut lets the compiler drop the bounds panic.
                        let into = self.rx.get_mut(from..from + len).unwrap_or_default();
                        Io::Recv {
                            packet,
                            timeout_ms,
                            deadline_ms,
                            len: into.len(),
                            packet_len,
                            prefix: &[],
                            into: Some(into),
                        }
                    }
                    RecvInto::Caller(prefix) => {
                        let prefix = self.rx.get(..prefix.min(len)).unwrap_or_default();
                        Io::Recv {
                            packet,
                            timeout_ms,
                            deadline_ms,
                            len,
                            packet_len,
                            prefix,
                            into: None,
                        }
                    }
                    RecvInto::Incoming(from) => {
                        let buf = self.incoming.as_mut().map_or(&mut [][..], |b| b.as_mut());
                        let from = from.min(buf.len());
                        let rest = &mut buf[from..];
                        Io::Recv {
                            packet,
                            timeout_ms,
                            deadline_ms,
                            len: rest.len(),
                            packet_len,
                            prefix: &[],
                            into: Some(rest),
                        }
                    }
                }
            }
        }
    }

    /// Reports how the action poll() asked for went. `buf` is the caller's buffer for a
    /// receive into the caller's memory (its length must be the one asked for), the result
    /// packet at DISPATCH, the frame at PRODUCE; otherwise `None`. Ignored when idle or done.
    pub fn complete(&mut self, now: u32, status: IoStatus, buf: Option<B>) {
        if self.step.moves_bytes() {
            self.in_sync = status == IoStatus::Ok;
            self.last_io_at = now;
        }
        if !matches!(self.step, Step::Idle | Step::Done(_) | Step::Pause(_)) {
            self.step_at = now;
        }
        match self.step {
            Step::Idle | Step::Done(_) => {}
            Step::Flush(_) => self.attempt_packets(),
            Step::Pause(_) => {
                let until = self.step_at.wrapping_add(self.config.error_pause_ms);
                if deadline_passed(now, until) {
                    self.step_at = now;
                    self.begin_attempt(now, false);
                }
            }
            Step::Call(step) => self.call_complete(step, now, status, buf),
            Step::Serve(step) => self.serve_complete(step, now, status, buf),
            Step::Reader(step) => self.reader_complete(step, status, buf),
            Step::Writer(step) => self.writer_complete(step, status, buf),
        }
    }

    fn set_step(&mut self, step: impl Into<Step>) {
        self.step = step.into();
    }

    // ----- operations -----

    /// A new operation at its first step (`first`).
    fn begin_op(&mut self, first: Step, now: u32) {
        self.step = first;
        self.step_at = now;
        self.turn.resending = false;
        if first.op() == Some(Op::Serve) && self.turn.kept {
            // The last turn's result stays for the master's repeated requests.
        } else {
            self.turn.kept = false;
            self.outgoing = None;
        }
        self.incoming = None;
        self.data_len = 0;
        self.attempts = 1;
        self.stream.lfsr = AckLfsr::START;
        self.fail_packet = Packet::None;
        self.fail_reason = Reason::None;
    }

    fn finish(&mut self, status: Status) {
        let op = self.step.op();
        self.step = op.map_or(Step::Idle, Step::Done);
        self.status = status;
        // A stream ends out of step (acks not read, frames in flight) whatever its status.
        if status != Status::Ok || matches!(op, Some(Op::StreamReader | Op::StreamWriter)) {
            self.in_sync = false;
        }
        if status != Status::Ok {
            self.last_error = LastError {
                status,
                packet: self.fail_packet,
                reason: self.fail_reason,
                attempts: self.attempts,
            };
        }
    }

    // ----- packets -----

    fn set_tx(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(MAX_HEADER_LEN);
        self.tx[..n].copy_from_slice(&bytes[..n]);
        self.tx_len = n as u8;
    }

    fn set_failure(&mut self, packet: Packet, reason: Reason) {
        self.fail_packet = packet;
        self.fail_reason = reason;
    }

    /// Accounts for a send; false if it failed (the failure is recorded).
    fn sent(&mut self, status: IoStatus, packet: Packet) -> bool {
        match status {
            IoStatus::Ok => {
                self.stats.packets_sent += 1;
                true
            }
            IoStatus::Timeout => {
                self.set_failure(packet, Reason::Timeout);
                false
            }
            IoStatus::Error => {
                self.stats.transport_errors += 1;
                self.set_failure(packet, Reason::Transport);
                false
            }
        }
    }

    /// Accounts for a receive that did not arrive whole; true if it did.
    fn received(&mut self, status: IoStatus, packet: Packet) -> bool {
        match status {
            IoStatus::Ok => true,
            IoStatus::Timeout => {
                self.stats.timeouts += 1;
                self.set_failure(packet, Reason::Timeout);
                false
            }
            IoStatus::Error => {
                self.stats.transport_errors += 1;
                self.set_failure(packet, Reason::Transport);
                false
            }
        }
    }

    fn wire_error(&mut self, packet: Packet, e: WireError) {
        let reason = match e {
            WireError::BadMagic => {
                self.stats.bad_magic += 1;
                Reason::BadMagic
            }
            WireError::BadCrc => {
                self.stats.bad_crc += 1;
                Reason::BadCrc
            }
            WireError::Truncated => Reason::Timeout,
        };
        self.set_failure(packet, reason);
    }

    /// Parses the header in `rx`, counting a valid packet or recording why it is not.
    fn parse_rx<T>(
        &mut self,
        packet: Packet,
        parse: impl FnOnce(&[u8; MAX_HEADER_LEN]) -> Result<T, WireError>,
    ) -> Option<T> {
        match parse(&self.rx) {
            Ok(v) => {
                self.stats.packets_received += 1;
                Some(v)
            }
            Err(e) => {
                self.wire_error(packet, e);
                None
            }
        }
    }

    /// A small packet of `len` bytes in `rx` that must carry `magic`.
    fn received_packet(
        &mut self,
        status: IoStatus,
        magic: u16,
        len: usize,
        packet: Packet,
    ) -> bool {
        self.received(status, packet)
            && self.parse_rx(packet, |rx| wire::check(magic, &rx[..len]).map(|_| ())).is_some()
    }

    /// True when `rx` holds exactly the empty packet with `magic` (a request or an ack),
    /// received whole (counted as a valid packet). Nothing is recorded otherwise: the caller
    /// goes on to its usual check.
    fn received_empty(&mut self, status: IoStatus, magic: u16) -> bool {
        let request = status == IoStatus::Ok
            && same_bytes(&self.rx[..EMPTY_PACKET_LEN], &wire::empty_packet(magic));
        if request {
            self.stats.packets_received += 1;
        }
        request
    }

    /// The magic of the packet whose first bytes are in rx.
    fn rx_magic(&self) -> u16 {
        wire::Packet::new_unchecked(&self.rx[..]).magic()
    }

    /// A length field checked against the caller's limit before any buffer is asked for.
    fn length_within(&mut self, len: u32, limit: u32, packet: Packet) -> Option<u32> {
        if len > limit || len.checked_add(PACKET_OVERHEAD as u32).is_none() {
            self.stats.too_long += 1;
            self.set_failure(packet, Reason::TooLong);
            return None;
        }
        Some(len)
    }

    /// A data packet received into the caller's buffer: Some(true) valid, Some(false) the
    /// attempt failed, None the caller broke the contract (no buffer or a wrong length).
    fn received_data_packet(
        &mut self,
        status: IoStatus,
        buf: Option<B>,
        magic: u16,
        packet: Packet,
    ) -> Option<bool> {
        if !self.received(status, packet) {
            return Some(false);
        }
        let buf = buf?;
        if buf.as_ref().len() != self.data_len as usize + PACKET_OVERHEAD {
            return None;
        }
        let valid = match wire::check(magic, buf.as_ref()) {
            Ok(_) => {
                self.stats.packets_received += 1;
                true
            }
            Err(e) => {
                self.wire_error(packet, e);
                false
            }
        };
        self.incoming = Some(buf);
        Some(valid)
    }
}

/// The crc (the last two bytes) of a packet.
fn packet_crc(packet: &[u8]) -> u16 {
    wire::Packet::new_checked(packet).map_or(0, |p| p.crc())
}

/// `a` and `b` agree on their common length (a loop, not `==`: slice equality would call
/// memcmp, which a native module does not have).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// The payload length of a packet buffer of `len` bytes, if it is one (4 bytes or more, a
/// payload that fits the u32 length fields).
fn payload_len(len: usize) -> Option<u32> {
    len.checked_sub(PACKET_OVERHEAD).and_then(|n| u32::try_from(n).ok())
}
