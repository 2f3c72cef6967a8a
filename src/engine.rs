//! The master call, slave turn and stream engines: one sans-IO state machine.
//!
//! The engine never reads a clock, touches a bus or calls the caller. [`Engine::poll`] says what
//! it wants next ([`Io`]); the caller carries it out and reports with [`Engine::complete`].
//! All timing rules of PROTOCOL.md live here: phases, short and long timeouts, their growth, when
//! an attempt drops pending input first (see [`Io::Flush`]), the stream credits and ack bytes.

use crate::wire::{
    self, AckLfsr, CommandHeaderRepr, ResultHeaderRepr, StreamHeaderRepr, StreamSetupRepr,
    WireError, COMMAND_HEADER_LEN, EMPTY_PACKET_LEN, MAGIC_COMMAND_DATA, MAGIC_COMMAND_HEADER,
    MAGIC_RESULT_DATA, MAGIC_RESULT_HEADER, MAX_HEADER_LEN, PACKET_OVERHEAD, PAYLOAD_OFFSET,
    U32_PACKET_LEN,
};

/// The reference timings and limits (PROTOCOL.md), taken by every zero field of [`Config`].
pub mod defaults {
    /// First short timeout of the master (ms).
    pub const MASTER_SHORT_TIMEOUT_MS: u32 = 3;
    /// First short timeout of the slave (ms).
    pub const SLAVE_SHORT_TIMEOUT_MS: u32 = 2;
    /// Timeout for a data packet, COMMAND_DATA or RESULT_DATA (ms).
    pub const LONG_TIMEOUT_MS: u32 = 5000;
    /// Longest argument, result or stream frame accepted.
    pub const MAX_DATA_LEN: u32 = 65536;
    /// Largest stream queue depth the writer accepts (1 on I2C and SPI).
    pub const MAX_QUEUE_DEPTH: u32 = 255;
    /// Stream setup, header and ack waits (ms).
    pub const STREAM_TIMEOUT_MS: u32 = 1000;
    /// The longest pause between two bytes of a data packet once it started (ms; stretched to
    /// the wire time of 1 KiB on a slow link): see [`crate::Engine::gap_timeout_ms`].
    pub const DATA_GAP_MS: u32 = 100;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Idle,
    Done,
    /// Drop pending input: a retry, a first attempt out of sync, the stream reader's start.
    Flush,
    /// The pause after a transport error, before the next attempt.
    Pause,
    // Master call.
    SendCommandHeader,
    RecvCommandHeaderAck,
    SendCommandData,
    RecvCommandDataAck,
    SendResultHeaderRequest,
    RecvResultHeader,
    /// The second half of RESULT_HEADER, after a stray ack was found in its first half.
    RecvResultHeaderRest,
    SendResultDataRequest,
    RecvResultData,
    // Slave turn.
    RecvCommandHeader,
    SendCommandHeaderAck,
    /// The last 8 bytes of a COMMAND_HEADER whose first 4 were read to tell it apart from a
    /// request for a result this side still holds (split reads).
    RecvCommandHeaderRest,
    /// The first 4 bytes of what comes while COMMAND_DATA is due (split reads): COMMAND_DATA,
    /// or a COMMAND_HEADER again (the master lost the ack, or has started another call). In
    /// the result phase: a repeated COMMAND_DATA after a repeated COMMAND_HEADER was acked.
    RecvCommandDataHead,
    /// COMMAND_DATA (after its first 4 bytes, with split reads).
    RecvCommandData,
    /// The last 8 bytes of a COMMAND_HEADER that came where COMMAND_DATA or a result request
    /// was due.
    RecvRepeatedHeaderRest,
    /// Result phase: the rest of a COMMAND_DATA sent again (the master lost its ack), read
    /// into the argument's buffer to check that it is the command already taken.
    RecvRepeatedCommandData,
    SendCommandDataAck,
    Dispatch,
    RecvResultHeaderRequest,
    SendResultHeader,
    RecvResultDataRequest,
    SendResultData,
    // Stream reader.
    SendStreamSetup,
    RecvStreamHeader,
    RecvStreamFrame,
    Deliver,
    SendStreamAck,
    // Stream writer.
    RecvStreamSetup,
    RecvStreamAck,
    Produce,
    SendStreamHeader,
    SendStreamFrame,
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
    /// read_timeout_ms (reader) or write_timeout_ms (writer) for raw frames.
    frame_timeout: u32,
    attempts: u32,
    name_hash: u32,
    /// Argument, result or frame length of the data packet in flight.
    data_len: u32,
    queue_depth: u32,
    credits: u32,
    role: Role,
    op: Op,
    phase: Phase,
    step: Step,
    status: Status,
    fail_packet: Packet,
    fail_reason: Reason,
    lfsr: AckLfsr,
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
    /// Master: COMMAND_DATA went out in this phase (a COMMAND_DATA ack is then the slave's
    /// commit, whenever it comes); and again alone in this attempt.
    command_data_sent: bool,
    command_data_resent: bool,
    /// Master: a RESULT_HEADER came in this phase (data_len holds its length); the RESULT_DATA
    /// being read was found where a RESULT_HEADER was due (its first 4 bytes are in rx).
    result_len_known: bool,
    late_result_data: bool,
    /// Slave: the COMMAND_DATA wait follows a repeated COMMAND_HEADER: if nothing comes
    /// within a short timeout, the master lost the ack and waits for it.
    after_repeat: bool,
    /// Slave: a RESULT_HEADER was sent in this result phase (the master may then ask for
    /// RESULT_DATA even after the slave's attempt to wait for that request timed out).
    result_header_sent: bool,
    /// Slave: answering from the result kept after its turn (see [`Engine::kept_result`]).
    resending: bool,
    /// Slave: the result of the last turn is kept (the outgoing buffer) for the master's
    /// repeated requests, until a new COMMAND_HEADER or `kept_for` ms after `kept_at`.
    kept: bool,
    kept_len: u32,
    kept_at: u32,
    kept_for: u32,
    /// Slave: the crc of the COMMAND_DATA taken in this turn (a repeat must carry the same).
    committed_crc: u16,
    /// Slave: recv_timeout of the turn (a command phase started over by a new COMMAND_HEADER).
    command_phase_timeout: u32,
    /// Slave: the argument length of the command in this turn.
    argument_len: u32,
    /// Slave: RESULT_HEADER requests skipped since the last RESULT_HEADER went out (see
    /// [`Step::RecvResultDataRequest`]).
    repeats_skipped: u32,
    tx_len: u8,
    tx: [u8; MAX_HEADER_LEN],
    rx: [u8; MAX_HEADER_LEN],
}

/// Slave: how many RESULT_HEADER requests after its RESULT_HEADER it takes for copies left
/// by a late answer (a master that retried while this side was stalled: one copy per master
/// short timeout of the stall, 3 for a 12 ms stall against a 3 ms master) before it takes
/// one for the master asking again.
const MAX_SKIPPED_REPEATS: u32 = 3;

fn grow(role: Role, t: u32, cap: u32) -> u32 {
    let grown = match role {
        // The reference cam master: t * 4 // 3 (the Arduino library uses x1.5).
        Role::Master => (u64::from(t) * 4 / 3).min(u64::from(u32::MAX)) as u32,
        Role::Slave => t.saturating_add(1),
    };
    grown.min(cap)
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
            frame_timeout: 0,
            attempts: 0,
            name_hash: 0,
            data_len: 0,
            queue_depth: 0,
            credits: 0,
            role,
            op: Op::Call,
            phase: Phase::Command,
            step: Step::Idle,
            status: Status::Ok,
            fail_packet: Packet::None,
            fail_reason: Reason::None,
            lfsr: AckLfsr::START,
            in_sync: false,
            last_io_at: 0,
            step_at: 0,
            reply_wait_ms: 0,
            command_data_sent: false,
            command_data_resent: false,
            result_len_known: false,
            late_result_data: false,
            after_repeat: false,
            result_header_sent: false,
            resending: false,
            kept: false,
            kept_len: 0,
            kept_at: 0,
            kept_for: 0,
            committed_crc: 0,
            command_phase_timeout: 0,
            argument_len: 0,
            repeats_skipped: 0,
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
        !matches!(self.step, Step::Idle | Step::Done)
    }

    /// The short timeout the next short wait will use (ms).
    pub fn short_timeout(&self) -> u32 {
        self.short_timeout
    }

    /// For the [`Io::Recv`] that [`Engine::poll`] asks for now: the first byte of the packet
    /// must arrive within this many ms of the step's start, else the caller completes it with
    /// `Timeout` (the whole packet still has `timeout_ms`); 0 means no such limit, and is what
    /// every other action gets (`omv_rpc_io_t.start_timeout_ms` in the C ABI).
    ///
    /// Only the master's RESULT_DATA receive has one ([`Engine::reply_wait`]). The slave sends
    /// RESULT_DATA as soon as it reads the request, so its first bytes come within a round trip;
    /// only the transfer may take long (64 KiB on a slow UART). If the request was lost, or
    /// came after a reference slave's short timeout (that slave has gone back to waiting for
    /// a RESULT_HEADER request), nothing will come: the retry must come while the slave still
    /// waits. The slave's COMMAND_DATA wait has no such limit: a slow master (the old desktop
    /// library) may take seconds to compute a 64 KiB CRC between the header ack and the data.
    pub fn start_timeout_ms(&self) -> u32 {
        if self.step == Step::RecvResultData {
            self.reply_wait_ms
        } else {
            0
        }
    }

    /// For the [`Io::Recv`] that [`Engine::poll`] asks for now: once its first bytes have
    /// come, the rest may pause at most this many ms between two bytes, else the caller
    /// completes it with `Timeout` (the whole packet still has `timeout_ms`); 0: no such limit
    /// (`omv_rpc_io_t.gap_ms`). Data packets have one: their long timeout (5000 ms) is for
    /// the transfer of 64 KiB over a slow UART, but a packet cut short on a fast link would
    /// hold the call that long, past its phase, where a retry recovers it in a few ms.
    pub fn gap_timeout_ms(&self) -> u32 {
        match self.step {
            Step::RecvCommandData | Step::RecvResultData | Step::RecvRepeatedCommandData => {
                stretch(
                    defaults::DATA_GAP_MS.max(self.config.short_timeout_ms),
                    1024,
                    self.config.bytes_per_s,
                    self.config.short_timeout_ms,
                )
            }
            _ => 0,
        }
    }

    /// The first-byte deadline of the receive asked for now ([`Engine::start_timeout_ms`]
    /// after the step began), if it has one.
    pub fn first_byte_deadline(&self) -> Option<u32> {
        match self.start_timeout_ms() {
            0 => None,
            t => Some(self.step_at.wrapping_add(t)),
        }
    }

    /// When the engine next needs the caller back if nothing happens: the deadline of the
    /// send, receive (its first byte's, if earlier) or pause asked for now; None when it waits
    /// for nothing timed (done, idle, a flush or a callback).
    pub fn poll_timeout(&mut self) -> Option<u32> {
        let first = self.first_byte_deadline();
        match self.poll(self.step_at) {
            Io::Send { deadline_ms, .. } => Some(deadline_ms),
            Io::Recv { deadline_ms, .. } => Some(first.unwrap_or(deadline_ms)),
            Io::Wait { deadline_ms } => Some(deadline_ms),
            _ => None,
        }
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

    /// Master: start one call. `command_data_packet` holds the argument at
    /// `[2, len - 2)`; the engine frames it in place. Returns `Ok`, `Busy`, or `BadBuffer`
    /// (shorter than 4 bytes, or an argument over 4 GiB).
    pub fn call_start(
        &mut self,
        name_hash: u32,
        mut command_data_packet: B,
        send_timeout_ms: u32,
        recv_timeout_ms: u32,
        now: u32,
    ) -> Status {
        if self.is_busy() {
            return Status::Busy;
        }
        let Some(argument_len) = payload_len(command_data_packet.as_ref().len()) else {
            return Status::BadBuffer;
        };
        wire::frame(MAGIC_COMMAND_DATA, command_data_packet.as_mut());
        self.begin_op(Op::Call, now);
        self.outgoing = Some(command_data_packet);
        self.name_hash = name_hash;
        self.data_len = argument_len;
        self.result_phase_timeout = recv_timeout_ms;
        self.start_phase(Phase::Command, send_timeout_ms, now);
        Status::Ok
    }

    /// Master: the result length of the call that just ended OK (0 otherwise).
    pub fn result_len(&self) -> u32 {
        if self.op == Op::Call && self.step == Step::Done && self.status == Status::Ok {
            self.data_len
        } else {
            0
        }
    }

    /// Master: the result of the call that just ended OK.
    pub fn result(&self) -> Option<&[u8]> {
        if self.op != Op::Call || self.step != Step::Done || self.status != Status::Ok {
            return None;
        }
        let packet = self.incoming.as_ref()?.as_ref();
        wire::Packet::new_checked(packet).ok().map(wire::Packet::into_payload)
    }

    /// Slave: start one turn of loop(): wait up to `recv_timeout_ms` for a command, DISPATCH
    /// it, then send the result within `send_timeout_ms`.
    pub fn serve_start(&mut self, recv_timeout_ms: u32, send_timeout_ms: u32, now: u32) -> Status {
        if self.is_busy() {
            return Status::Busy;
        }
        self.begin_op(Op::Serve, now);
        self.result_phase_timeout = send_timeout_ms;
        self.command_phase_timeout = recv_timeout_ms;
        self.start_phase(Phase::Command, recv_timeout_ms, now);
        Status::Ok
    }

    /// Stream reader: send STREAM_SETUP(queue_depth), then receive frames until an error,
    /// a timeout, or the caller stops at DELIVER.
    pub fn stream_reader_start(
        &mut self,
        queue_depth: u32,
        read_timeout_ms: u32,
        now: u32,
    ) -> Status {
        if self.is_busy() {
            return Status::Busy;
        }
        self.begin_op(Op::StreamReader, now);
        self.frame_timeout = read_timeout_ms;
        self.queue_depth = queue_depth;
        self.set_tx(&StreamSetupRepr { queue_depth }.to_bytes());
        self.step = Step::Flush;
        Status::Ok
    }

    /// Stream writer: wait for STREAM_SETUP, then send frames (PRODUCE) under the credit
    /// rule until an error, a timeout, a bad ack byte, or the caller stops at PRODUCE.
    pub fn stream_writer_start(&mut self, write_timeout_ms: u32, now: u32) -> Status {
        if self.is_busy() {
            return Status::Busy;
        }
        self.begin_op(Op::StreamWriter, now);
        self.frame_timeout = write_timeout_ms;
        self.step = Step::RecvStreamSetup;
        Status::Ok
    }

    /// Abandon the running operation; the engine is idle and reusable. Buffers it held are
    /// dropped. poll() then says Done with the status of the last operation that ended.
    pub fn abort(&mut self) {
        self.step = Step::Idle;
        self.in_sync = false;
        self.kept = false;
        self.outgoing = None;
        self.incoming = None;
    }

    /// Takes back the caller buffer last received into (result packet, command data packet,
    /// reader frame), unless the engine still needs it (at DISPATCH or DELIVER).
    pub fn take_incoming(&mut self) -> Option<B> {
        match self.step {
            Step::Dispatch | Step::Deliver => None,
            _ => self.incoming.take(),
        }
    }

    /// Takes back the caller buffer last sent from (command data packet, result packet,
    /// writer frame) when the engine no longer needs it: after Done, or at PRODUCE.
    pub fn take_outgoing(&mut self) -> Option<B> {
        match self.step {
            Step::Idle | Step::Done | Step::Produce => self.outgoing.take(),
            _ => None,
        }
    }

    /// What the engine wants next. Calling it again before [`Engine::complete`] gives the
    /// same answer; it changes nothing. Deadlines count from the step's start.
    pub fn poll(&mut self, _now: u32) -> Io<'_> {
        let short = self.short_timeout;
        let long = self.config.long_timeout_ms;
        let stream = self.config.stream_timeout_ms;
        let frame = self.frame_timeout;
        let data_packet_len = self.data_len as usize + PACKET_OVERHEAD;
        let tx_len = usize::from(self.tx_len).min(MAX_HEADER_LEN);
        let at = self.step_at;
        let (bytes_per_s, first_short) = (self.config.bytes_per_s, self.config.short_timeout_ms);
        // Every send and receive may take the wire time of its bytes (set_timing(bytes_per_s)).
        let stretched =
            |timeout_ms: u32, len: usize| stretch(timeout_ms, len, bytes_per_s, first_short);
        let send = |packet: Packet, timeout_ms: u32, data: &[u8]| -> (Packet, u32, u32) {
            let t = stretched(timeout_ms, data.len());
            (packet, t, at.wrapping_add(t))
        };
        let head_len =
            if self.config.split_reads != 0 { EMPTY_PACKET_LEN } else { COMMAND_HEADER_LEN };
        let (packet, timeout_ms, len, into): (Packet, u32, usize, RecvInto) = match self.step {
            Step::Idle | Step::Done => return Io::Done(self.status),
            Step::Flush => return Io::Flush,
            Step::Pause => {
                return Io::Wait { deadline_ms: at.wrapping_add(self.config.error_pause_ms) }
            }
            Step::Dispatch => {
                let argument = self
                    .incoming
                    .as_ref()
                    .and_then(|b| {
                        b.as_ref().get(PAYLOAD_OFFSET..PAYLOAD_OFFSET + self.data_len as usize)
                    })
                    .unwrap_or(&[]);
                return Io::Dispatch { name_hash: self.name_hash, argument };
            }
            Step::Deliver => {
                let frame = self
                    .incoming
                    .as_ref()
                    .and_then(|b| b.as_ref().get(..self.data_len as usize))
                    .unwrap_or(&[]);
                return Io::Deliver { frame };
            }
            Step::Produce => return Io::Produce,
            // Sends of the header buffer.
            Step::SendCommandHeader | Step::SendCommandHeaderAck => {
                let (packet, timeout_ms, deadline_ms) =
                    send(Packet::CommandHeader, short, &self.tx[..tx_len]);
                return Io::Send { packet, timeout_ms, deadline_ms, data: &self.tx[..tx_len] };
            }
            Step::SendResultHeaderRequest
            | Step::SendResultHeader
            | Step::SendResultDataRequest
            | Step::SendCommandDataAck
            | Step::SendStreamSetup
            | Step::SendStreamAck
            | Step::SendStreamHeader => {
                let (packet, timeout) = match self.step {
                    Step::SendResultHeaderRequest | Step::SendResultHeader => {
                        (Packet::ResultHeader, short)
                    }
                    Step::SendResultDataRequest => (Packet::ResultData, short),
                    Step::SendCommandDataAck => (Packet::CommandData, short),
                    Step::SendStreamSetup => (Packet::StreamSetup, stream),
                    Step::SendStreamAck => (Packet::StreamAck, stream),
                    _ => (Packet::StreamHeader, stream),
                };
                let (packet, timeout_ms, deadline_ms) = send(packet, timeout, &self.tx[..tx_len]);
                return Io::Send { packet, timeout_ms, deadline_ms, data: &self.tx[..tx_len] };
            }
            // Sends of the caller's buffer.
            Step::SendCommandData | Step::SendResultData | Step::SendStreamFrame => {
                let (packet, timeout) = match self.step {
                    Step::SendCommandData => (Packet::CommandData, long),
                    Step::SendResultData => (Packet::ResultData, long),
                    _ => (Packet::StreamFrame, frame),
                };
                let data = self.outgoing.as_ref().map_or(&[][..], |b| b.as_ref());
                let (packet, timeout_ms, deadline_ms) = send(packet, timeout, data);
                return Io::Send { packet, timeout_ms, deadline_ms, data };
            }
            // Master call.
            Step::RecvCommandHeaderAck => {
                (Packet::CommandHeader, short, EMPTY_PACKET_LEN, RecvInto::Rx(0))
            }
            Step::RecvCommandDataAck => {
                (Packet::CommandData, self.reply_wait_ms, EMPTY_PACKET_LEN, RecvInto::Rx(0))
            }
            Step::RecvResultHeader => {
                let len =
                    if self.config.split_reads != 0 { EMPTY_PACKET_LEN } else { U32_PACKET_LEN };
                (Packet::ResultHeader, short, len, RecvInto::Rx(0))
            }
            Step::RecvResultHeaderRest => {
                (Packet::ResultHeader, short, EMPTY_PACKET_LEN, RecvInto::Rx(EMPTY_PACKET_LEN))
            }
            Step::RecvResultData => {
                let prefix = if self.late_result_data { EMPTY_PACKET_LEN } else { 0 };
                (Packet::ResultData, long, data_packet_len, RecvInto::Caller(prefix))
            }
            // Slave turn.
            Step::RecvCommandHeader => (Packet::CommandHeader, short, head_len, RecvInto::Rx(0)),
            Step::RecvCommandHeaderRest | Step::RecvRepeatedHeaderRest => (
                Packet::CommandHeader,
                short,
                COMMAND_HEADER_LEN - EMPTY_PACKET_LEN,
                RecvInto::Rx(EMPTY_PACKET_LEN),
            ),
            Step::RecvCommandDataHead => {
                // After a repeated header (and in the result phase) COMMAND_DATA comes right
                // away or the master is waiting for an ack.
                let t = if self.after_repeat || self.phase == Phase::Result { short } else { long };
                (Packet::CommandData, t, EMPTY_PACKET_LEN, RecvInto::Rx(0))
            }
            Step::RecvCommandData => {
                let prefix = if self.config.split_reads != 0 { EMPTY_PACKET_LEN } else { 0 };
                (Packet::CommandData, long, data_packet_len, RecvInto::Caller(prefix))
            }
            Step::RecvRepeatedCommandData => {
                (Packet::CommandData, long, data_packet_len, RecvInto::Incoming(EMPTY_PACKET_LEN))
            }
            Step::RecvResultHeaderRequest => {
                (Packet::ResultHeader, short, EMPTY_PACKET_LEN, RecvInto::Rx(0))
            }
            Step::RecvResultDataRequest => {
                (Packet::ResultData, short, EMPTY_PACKET_LEN, RecvInto::Rx(0))
            }
            // Streams.
            Step::RecvStreamHeader => {
                (Packet::StreamHeader, stream, U32_PACKET_LEN, RecvInto::Rx(0))
            }
            Step::RecvStreamFrame => {
                (Packet::StreamFrame, frame, self.data_len as usize, RecvInto::Caller(0))
            }
            Step::RecvStreamSetup => (Packet::StreamSetup, stream, U32_PACKET_LEN, RecvInto::Rx(0)),
            Step::RecvStreamAck => (Packet::StreamAck, stream, 1, RecvInto::Rx(0)),
        };
        let timeout_ms = stretched(timeout_ms, len);
        let deadline_ms = at.wrapping_add(timeout_ms);
        let packet_len = match self.step {
            Step::RecvCommandDataHead => data_packet_len,
            Step::RecvRepeatedCommandData => self.argument_len as usize + PACKET_OVERHEAD,
            Step::RecvCommandHeaderRest | Step::RecvRepeatedHeaderRest => COMMAND_HEADER_LEN,
            Step::RecvResultHeader | Step::RecvResultHeaderRest => U32_PACKET_LEN,
            _ => len,
        };
        match into {
            RecvInto::Rx(from) => {
                // Every header fits rx; the min lets the compiler drop the slice bounds panic.
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
                Io::Recv { packet, timeout_ms, deadline_ms, len, packet_len, prefix, into: None }
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

    /// Reports how the action poll() asked for went. `buf` is the caller's buffer for a
    /// receive into the caller's memory (its length must be the one asked for), the result
    /// packet at DISPATCH, the frame at PRODUCE; otherwise `None`. Ignored when idle or done.
    pub fn complete(&mut self, now: u32, status: IoStatus, buf: Option<B>) {
        // Every step but these is a send or a receive.
        if !matches!(
            self.step,
            Step::Idle
                | Step::Done
                | Step::Flush
                | Step::Pause
                | Step::Dispatch
                | Step::Deliver
                | Step::Produce
        ) {
            self.in_sync = status == IoStatus::Ok;
            self.last_io_at = now;
        }
        if !matches!(self.step, Step::Idle | Step::Done | Step::Pause) {
            self.step_at = now;
        }
        match self.step {
            Step::Idle | Step::Done => {}
            Step::Flush => self.attempt_packets(),
            Step::Pause => {
                let until = self.step_at.wrapping_add(self.config.error_pause_ms);
                if deadline_passed(now, until) {
                    self.step_at = now;
                    self.begin_attempt(now, false);
                }
            }
            // Master call, phase 1.
            Step::SendCommandHeader => {
                if self.sent(status, Packet::CommandHeader) {
                    self.step = if self.pipelined(pipeline::COMMAND_DATA) {
                        Step::SendCommandData
                    } else {
                        Step::RecvCommandHeaderAck
                    };
                } else {
                    self.attempt_failed(now);
                }
            }
            Step::RecvCommandHeaderAck => {
                if self.received_packet(
                    status,
                    MAGIC_COMMAND_HEADER,
                    EMPTY_PACKET_LEN,
                    Packet::CommandHeader,
                ) {
                    self.step = if self.pipelined(pipeline::COMMAND_DATA) {
                        Step::RecvCommandDataAck
                    } else {
                        Step::SendCommandData
                    };
                } else if self.command_data_sent
                    && self.rx_is_empty_packet(status, MAGIC_COMMAND_DATA)
                {
                    // The COMMAND_DATA ack of an earlier try, late: the slave has the command
                    // (it answers our repeated header with a second ack, which the result
                    // phase skips if it must).
                    self.stats.stray_replies += 1;
                    self.command_committed(now);
                } else if status == IoStatus::Timeout && !self.pipelined(pipeline::COMMAND_DATA) {
                    // The ack may be on its way: a flush now could drop it. Kept, a late ack
                    // answers the repeat as well.
                    self.attempt_timed_out(now);
                } else {
                    self.attempt_failed(now);
                }
            }
            Step::SendCommandData => {
                if self.sent(status, Packet::CommandData) {
                    self.command_data_sent = true;
                    self.reply_wait_ms = self.reply_wait(self.data_len as usize + PACKET_OVERHEAD);
                    self.step = if self.pipelined(pipeline::COMMAND_DATA) {
                        Step::RecvCommandHeaderAck
                    } else {
                        Step::RecvCommandDataAck
                    };
                } else {
                    self.attempt_failed(now);
                }
            }
            Step::RecvCommandDataAck => {
                if self.received_packet(
                    status,
                    MAGIC_COMMAND_DATA,
                    EMPTY_PACKET_LEN,
                    Packet::CommandData,
                ) {
                    self.command_committed(now);
                } else if self.rx_is_empty_packet(status, MAGIC_COMMAND_HEADER) {
                    // A second COMMAND_HEADER ack (the slave answered our repeated header
                    // twice): the COMMAND_DATA ack comes behind it.
                    self.stats.stray_replies += 1;
                } else if status == IoStatus::Timeout
                    && !self.command_data_resent
                    && !self.pipelined(pipeline::COMMAND_DATA)
                {
                    // COMMAND_DATA lost, or its ack: send it again alone. A slave still waiting
                    // for it takes it; one that has the command acks it again (ours) or sent
                    // its ack late (a reference slave, whose late ack is still read here).
                    self.command_data_resent = true;
                    self.stats.stray_replies += 1;
                    self.step = Step::SendCommandData;
                } else if status == IoStatus::Timeout {
                    self.attempt_timed_out(now);
                } else {
                    self.attempt_failed(now);
                }
            }
            // Master call, phase 2.
            Step::SendResultHeaderRequest => {
                if !self.sent(status, Packet::ResultHeader) {
                    self.attempt_failed(now);
                } else if self.pipelined(pipeline::RESULT_DATA_REQUEST) {
                    self.set_tx(&wire::empty_packet(MAGIC_RESULT_DATA));
                    self.step = Step::SendResultDataRequest;
                } else {
                    self.step = Step::RecvResultHeader;
                }
            }
            Step::RecvResultHeader if self.config.split_reads != 0 => {
                // Its first 4 bytes: a RESULT_HEADER's, an ack the slave sent again for a
                // repeat of ours, or the RESULT_DATA of an earlier try that came late.
                let magic = if status == IoStatus::Ok { self.rx_magic() } else { 0 };
                if magic == MAGIC_RESULT_HEADER {
                    self.step = Step::RecvResultHeaderRest;
                } else if self.in_phase(now) && self.stray_ack_in_rx(status) {
                    self.stats.stray_replies += 1;
                } else if magic == MAGIC_RESULT_DATA && self.result_len_known {
                    self.stats.stray_replies += 1;
                    self.late_result_data = true;
                    self.step = Step::RecvResultData;
                } else {
                    self.received_result_header(status);
                    self.attempt_failed(now);
                }
            }
            Step::RecvResultHeader | Step::RecvResultHeaderRest => {
                let header = self.received_result_header(status);
                match header.and_then(|len| {
                    self.length_within(len, self.config.max_result_len, Packet::ResultHeader)
                }) {
                    Some(len) => {
                        self.data_len = len;
                        self.result_len_known = true;
                        self.late_result_data = false;
                        if self.pipelined(pipeline::RESULT_DATA_REQUEST) {
                            self.step = Step::RecvResultData;
                        } else {
                            self.set_tx(&wire::empty_packet(MAGIC_RESULT_DATA));
                            self.step = Step::SendResultDataRequest;
                        }
                    }
                    None => self.attempt_failed(now),
                }
            }
            Step::SendResultDataRequest => {
                if self.sent(status, Packet::ResultData) {
                    self.late_result_data = false;
                    self.reply_wait_ms = self.reply_wait(EMPTY_PACKET_LEN);
                    self.step = if self.pipelined(pipeline::RESULT_DATA_REQUEST) {
                        Step::RecvResultHeader
                    } else {
                        Step::RecvResultData
                    };
                } else {
                    self.attempt_failed(now);
                }
            }
            Step::RecvResultData => {
                match self.received_data_packet(status, buf, MAGIC_RESULT_DATA, Packet::ResultData)
                {
                    Some(true) => {
                        self.stats.calls_ok += 1;
                        self.finish(Status::Ok);
                    }
                    // Nothing, or not all of it, in time: it may still come (a slow slave), and a
                    // slave that sent it will not send it again unless it kept it (ours does).
                    // The retry keeps the input, and reads a late RESULT_DATA where the
                    // RESULT_HEADER is due.
                    Some(false) if status == IoStatus::Timeout && self.config.split_reads != 0 => {
                        self.attempt_timed_out(now)
                    }
                    Some(false) => self.attempt_failed(now),
                    None => self.finish(Status::BadBuffer),
                }
            }
            // Slave turn, command phase.
            Step::RecvCommandHeader => {
                if !self.received(status, Packet::CommandHeader) {
                    return self.attempt_failed(now);
                }
                if self.config.split_reads == 0 {
                    return self.command_header_in_rx(now, false);
                }
                // The first 4 bytes: a request for the result kept from the last turn (its
                // RESULT_DATA was lost), or a COMMAND_HEADER's start.
                if self.kept_result_valid(now)
                    && self.rx_is_empty_packet(status, MAGIC_RESULT_HEADER)
                {
                    self.stats.repeats_answered += 1;
                    self.resending = true;
                    self.data_len = self.kept_len;
                    self.answer_result_header_request();
                } else if self.kept_result_valid(now)
                    && self.rx_is_empty_packet(status, MAGIC_RESULT_DATA)
                {
                    self.stats.repeats_answered += 1;
                    self.resending = true;
                    self.data_len = self.kept_len;
                    self.step = Step::SendResultData;
                } else if self.rx_magic() == MAGIC_COMMAND_HEADER {
                    self.step = Step::RecvCommandHeaderRest;
                } else {
                    self.wire_error(Packet::CommandHeader, WireError::BadMagic);
                    self.attempt_failed(now);
                }
            }
            Step::SendCommandHeaderAck => {
                if !self.sent(status, Packet::CommandHeader) {
                    return self.attempt_failed(now);
                }
                self.step = if self.config.split_reads != 0 || self.phase == Phase::Result {
                    Step::RecvCommandDataHead
                } else {
                    Step::RecvCommandData
                };
            }
            Step::RecvCommandDataHead => {
                let after_repeat = core::mem::replace(&mut self.after_repeat, false);
                if status == IoStatus::Timeout && after_repeat {
                    // Nothing behind the repeated header: the master lost our ack and waits
                    // for it (once per repeat: it sends its header again if this one is lost).
                    self.stats.repeats_answered += 1;
                    self.set_tx(&wire::empty_packet(MAGIC_COMMAND_HEADER));
                    self.step = Step::SendCommandHeaderAck;
                    return;
                }
                if !self.received(status, Packet::CommandData) {
                    return self.attempt_failed(now);
                }
                match self.rx_magic() {
                    MAGIC_COMMAND_DATA if self.data_len == 0 => {
                        // An empty argument: the 4 bytes are the whole packet.
                        let valid = self.parse_rx(Packet::CommandData, |rx| {
                            wire::check(MAGIC_COMMAND_DATA, &rx[..EMPTY_PACKET_LEN]).map(|_| ())
                        });
                        let crc = wire::Packet::new_unchecked(&self.rx[..EMPTY_PACKET_LEN]).crc();
                        match valid {
                            Some(()) if self.phase == Phase::Result => {
                                self.repeated_command_data(now, crc)
                            }
                            Some(()) => {
                                self.incoming = None;
                                self.command_data_received(crc);
                            }
                            None => self.attempt_failed(now),
                        }
                    }
                    MAGIC_COMMAND_DATA if self.phase == Phase::Result => {
                        self.read_repeated_command_data(now)
                    }
                    MAGIC_COMMAND_DATA => self.step = Step::RecvCommandData,
                    MAGIC_COMMAND_HEADER => self.step = Step::RecvRepeatedHeaderRest,
                    _ => {
                        self.wire_error(Packet::CommandData, WireError::BadMagic);
                        self.attempt_failed(now);
                    }
                }
            }
            Step::RecvCommandHeaderRest | Step::RecvRepeatedHeaderRest => {
                // The header's last 8 bytes; a repeat when it came where COMMAND_DATA or a
                // result request was due.
                let repeat = self.step == Step::RecvRepeatedHeaderRest;
                if self.received(status, Packet::CommandHeader) {
                    self.command_header_in_rx(now, repeat);
                } else {
                    self.attempt_failed(now);
                }
            }
            Step::RecvCommandData => {
                let prefix = if self.config.split_reads != 0 { EMPTY_PACKET_LEN } else { 0 };
                if prefix == 0 && status == IoStatus::Ok {
                    // A whole-packet read: a COMMAND_HEADER may have come instead (the master
                    // lost our ack, or started another call).
                    if let Some(header) =
                        buf.as_ref().and_then(|b| b.as_ref().get(..COMMAND_HEADER_LEN))
                    {
                        if wire::Packet::new_unchecked(header).magic() == MAGIC_COMMAND_HEADER {
                            self.rx.copy_from_slice(header);
                            return self.command_header_in_rx(now, true);
                        }
                    }
                }
                match self.received_data_packet(
                    status,
                    buf,
                    MAGIC_COMMAND_DATA,
                    Packet::CommandData,
                ) {
                    Some(true) => {
                        let crc = self.incoming.as_ref().map_or(0, |b| packet_crc(b.as_ref()));
                        self.command_data_received(crc);
                    }
                    Some(false) => self.attempt_failed(now),
                    None => self.finish(Status::BadBuffer),
                }
            }
            Step::RecvRepeatedCommandData => {
                if !self.received(status, Packet::CommandData) {
                    return self.attempt_failed(now);
                }
                let packet = self.incoming.as_ref().map_or(&[][..], |b| b.as_ref());
                match wire::check(MAGIC_COMMAND_DATA, packet) {
                    Ok(_) => {
                        let crc = packet_crc(packet);
                        self.stats.packets_received += 1;
                        self.repeated_command_data(now, crc);
                    }
                    Err(e) => {
                        self.wire_error(Packet::CommandData, e);
                        self.attempt_failed(now);
                    }
                }
            }
            Step::SendCommandDataAck => {
                if !self.sent(status, Packet::CommandData) {
                    self.attempt_failed(now);
                } else if self.phase == Phase::Result {
                    // A repeat's ack: the command is taken already; wait for the requests.
                    self.step = Step::RecvResultHeaderRequest;
                } else {
                    self.step = Step::Dispatch;
                }
            }
            Step::Dispatch => match (status, buf) {
                (IoStatus::Ok, Some(mut result_packet)) => {
                    match payload_len(result_packet.as_ref().len()) {
                        Some(len) => {
                            wire::frame(MAGIC_RESULT_DATA, result_packet.as_mut());
                            self.outgoing = Some(result_packet);
                            self.data_len = len;
                            let t = self.result_phase_timeout;
                            self.start_phase(Phase::Result, t, now);
                        }
                        None => self.finish(Status::BadBuffer),
                    }
                }
                (IoStatus::Ok, None) => self.finish(Status::BadBuffer),
                _ => {
                    self.fail_packet = Packet::ResultData;
                    self.fail_reason = Reason::None;
                    self.finish(Status::ResultNotTaken);
                }
            },
            // Slave turn, result phase.
            Step::RecvResultHeaderRequest => {
                let magic = if status == IoStatus::Ok { self.rx_magic() } else { 0 };
                if self.result_header_sent && self.received_request(status, MAGIC_RESULT_DATA) {
                    // The RESULT_DATA request, after this side stopped waiting for it: the
                    // master has the RESULT_HEADER sent in this phase.
                    self.stats.late_requests += 1;
                    self.step = Step::SendResultData;
                } else if magic == MAGIC_COMMAND_HEADER {
                    // The master has sent a COMMAND_HEADER again: it lost our COMMAND_DATA
                    // ack (the same command), or gave up and started another.
                    if self.config.split_reads != 0 {
                        self.step = Step::RecvRepeatedHeaderRest;
                    } else {
                        // Only its first bytes came (a bus moves what the receive asked for):
                        // its retry is read in a command phase started over.
                        self.stats.new_commands += 1;
                        self.restart_command_phase(now);
                    }
                } else if magic == MAGIC_COMMAND_DATA && self.config.split_reads != 0 {
                    // COMMAND_DATA again, alone: the master lost our ack of it.
                    if self.argument_len == 0 {
                        match wire::check(MAGIC_COMMAND_DATA, &self.rx[..EMPTY_PACKET_LEN]) {
                            Ok(_) => {
                                self.stats.packets_received += 1;
                                let crc =
                                    wire::Packet::new_unchecked(&self.rx[..EMPTY_PACKET_LEN]).crc();
                                self.repeated_command_data(now, crc);
                            }
                            Err(e) => {
                                self.wire_error(Packet::CommandData, e);
                                self.attempt_failed(now);
                            }
                        }
                    } else {
                        self.read_repeated_command_data(now);
                    }
                } else if self.received_packet(
                    status,
                    MAGIC_RESULT_HEADER,
                    EMPTY_PACKET_LEN,
                    Packet::ResultHeader,
                ) {
                    self.answer_result_header_request();
                } else {
                    self.attempt_failed(now);
                }
            }
            Step::SendResultHeader => {
                if self.sent(status, Packet::ResultHeader) {
                    self.result_header_sent = true;
                    self.repeats_skipped = 0;
                    self.step = Step::RecvResultDataRequest;
                } else {
                    self.attempt_failed(now);
                }
            }
            Step::RecvResultDataRequest => {
                if self.in_phase(now) && self.received_request(status, MAGIC_RESULT_HEADER) {
                    self.stats.late_requests += 1;
                    if self.repeats_skipped < MAX_SKIPPED_REPEATS {
                        // The master's retry of the RESULT_HEADER request this side answered
                        // late: it has the answer, and its RESULT_DATA request follows.
                        // Answering again would put a second RESULT_HEADER ahead of
                        // RESULT_DATA; failing the attempt would flush that request away. (A
                        // master that lost the answer sends no RESULT_DATA request: this wait
                        // times out, and the retry that follows answers it.)
                        self.repeats_skipped += 1;
                    } else {
                        // More than a stall leaves behind: the master asking again, every
                        // master short timeout, because this side missed its RESULT_DATA
                        // request (an I2C or SPI slave misses a packet sent while it is not
                        // inside a call) or the answer was lost. When this side's short
                        // timeout is longer than the master's retry interval (a reference
                        // master: 3 ms against 20 ms on a bus) the wait above never times out,
                        // and skipping them all kept both sides waiting until the phase ended.
                        self.answer_result_header_request();
                    }
                } else if self.received_packet(
                    status,
                    MAGIC_RESULT_DATA,
                    EMPTY_PACKET_LEN,
                    Packet::ResultData,
                ) {
                    self.step = Step::SendResultData;
                } else if status == IoStatus::Timeout {
                    // The request may be on its way: a flush now could drop it, and the
                    // master would wait for RESULT_DATA in vain (the next attempt answers a
                    // RESULT_DATA request as well as a RESULT_HEADER request).
                    self.attempt_timed_out(now);
                } else {
                    self.attempt_failed(now);
                }
            }
            Step::SendResultData => {
                if !self.sent(status, Packet::ResultData) {
                    return self.attempt_failed(now);
                }
                if core::mem::replace(&mut self.resending, false) {
                    // A result sent again from the kept one: the command wait goes on.
                    self.data_len = 0;
                    self.attempt_packets();
                } else {
                    self.stats.commands_served += 1;
                    // Kept for the master's repeated requests, should RESULT_DATA be lost.
                    self.kept = self.config.split_reads != 0;
                    self.kept_len = self.data_len;
                    self.kept_at = now;
                    self.kept_for = self.phase_timeout;
                    self.finish(Status::Ok);
                }
            }
            // Stream reader.
            Step::SendStreamSetup => {
                if self.sent(status, Packet::StreamSetup) {
                    self.step = Step::RecvStreamHeader;
                } else {
                    self.stream_failed();
                }
            }
            Step::RecvStreamHeader => {
                if !self.received(status, Packet::StreamHeader) {
                    return self.stream_failed();
                }
                let Some(header) = self.parse_rx(Packet::StreamHeader, |rx| {
                    StreamHeaderRepr::parse(&wire::Packet::new_unchecked(&rx[..U32_PACKET_LEN]))
                }) else {
                    return self.finish(Status::StreamBadPacket);
                };
                if header.frame_len > self.config.max_frame_len {
                    self.stats.too_long += 1;
                    self.set_failure(Packet::StreamHeader, Reason::TooLong);
                    return self.finish(Status::StreamTooLong);
                }
                self.data_len = header.frame_len;
                self.incoming = None;
                // A zero-length frame has no bytes to read.
                self.step =
                    if header.frame_len == 0 { Step::Deliver } else { Step::RecvStreamFrame };
            }
            Step::RecvStreamFrame => {
                if !self.received(status, Packet::StreamFrame) {
                    return self.stream_failed();
                }
                match buf {
                    Some(frame) if frame.as_ref().len() == self.data_len as usize => {
                        self.stats.packets_received += 1;
                        self.incoming = Some(frame);
                        self.step = Step::Deliver;
                    }
                    _ => self.finish(Status::BadBuffer),
                }
            }
            Step::Deliver => {
                if status == IoStatus::Ok {
                    self.stats.stream_frames += 1;
                    let ack = self.lfsr.0;
                    self.lfsr.advance();
                    self.set_tx(&[ack]);
                    self.step = Step::SendStreamAck;
                } else {
                    self.set_failure(Packet::StreamFrame, Reason::None);
                    self.finish(Status::StreamStopped);
                }
            }
            Step::SendStreamAck => {
                if self.sent(status, Packet::StreamAck) {
                    self.step = Step::RecvStreamHeader;
                } else {
                    self.stream_failed();
                }
            }
            // Stream writer.
            Step::RecvStreamSetup => {
                if !self.received(status, Packet::StreamSetup) {
                    return self.stream_failed();
                }
                let Some(setup) = self.parse_rx(Packet::StreamSetup, |rx| {
                    StreamSetupRepr::parse(&wire::Packet::new_unchecked(&rx[..U32_PACKET_LEN]))
                }) else {
                    return self.finish(Status::StreamBadPacket);
                };
                self.queue_depth = setup.queue_depth.min(self.config.max_queue_depth).max(1);
                self.credits = self.queue_depth;
                self.next_frame();
            }
            Step::RecvStreamAck => {
                if !self.received(status, Packet::StreamAck) {
                    return self.stream_failed();
                }
                if self.rx[0] != self.lfsr.0 {
                    self.set_failure(Packet::StreamAck, Reason::None);
                    return self.finish(Status::StreamBadAck);
                }
                self.stats.packets_received += 1;
                self.lfsr.advance();
                self.credits += 1;
                self.step = Step::Produce;
            }
            Step::Produce => {
                if status != IoStatus::Ok {
                    self.set_failure(Packet::StreamFrame, Reason::None);
                    return self.finish(Status::StreamStopped);
                }
                let len = buf.as_ref().map_or(0, |b| b.as_ref().len());
                let Ok(len) = u32::try_from(len) else {
                    return self.finish(Status::BadBuffer);
                };
                self.outgoing = buf;
                self.data_len = len;
                self.set_tx(&StreamHeaderRepr { frame_len: len }.to_bytes());
                self.step = Step::SendStreamHeader;
            }
            Step::SendStreamHeader => {
                if !self.sent(status, Packet::StreamHeader) {
                    return self.stream_failed();
                }
                if self.data_len == 0 {
                    self.frame_sent();
                } else {
                    self.step = Step::SendStreamFrame;
                }
            }
            Step::SendStreamFrame => {
                if self.sent(status, Packet::StreamFrame) {
                    self.frame_sent();
                } else {
                    self.stream_failed();
                }
            }
        }
    }

    // ----- operations and phases -----

    fn begin_op(&mut self, op: Op, now: u32) {
        self.op = op;
        self.step_at = now;
        self.resending = false;
        if op == Op::Serve && self.kept {
            // The last turn's result stays for the master's repeated requests.
        } else {
            self.kept = false;
            self.outgoing = None;
        }
        self.incoming = None;
        self.data_len = 0;
        self.attempts = 1;
        self.lfsr = AckLfsr::START;
        self.fail_packet = Packet::None;
        self.fail_reason = Reason::None;
    }

    fn start_phase(&mut self, phase: Phase, timeout: u32, now: u32) {
        self.phase = phase;
        self.phase_start = now;
        self.phase_timeout = timeout;
        self.short_timeout = self.config.short_timeout_ms;
        self.attempts = 0;
        self.result_header_sent = false;
        self.repeats_skipped = 0;
        self.command_data_sent = false;
        self.result_len_known = false;
        self.late_result_data = false;
        self.begin_attempt(now, false);
    }

    /// The reference's `while elapsed(phase_start) < phase_timeout: attempt`: checked only
    /// between attempts, so an attempt in progress may overrun the phase. `keep_input`: the
    /// attempt does not flush (see [`Engine::attempt_timed_out`]).
    fn begin_attempt(&mut self, now: u32, keep_input: bool) {
        if !self.in_phase(now) {
            return self.phase_expired();
        }
        self.attempts += 1;
        if self.attempts > 1 {
            self.stats.retries += 1;
        }
        self.command_data_resent = false;
        self.after_repeat = false;
        let in_sync =
            self.in_sync && now.wrapping_sub(self.last_io_at) < self.config.short_timeout_ms;
        if !keep_input && (self.attempts > 1 || !in_sync) {
            self.step = Step::Flush;
        } else {
            self.attempt_packets();
        }
    }

    /// Master: this request goes right behind the one before it ([`Config::pipeline`]).
    fn pipelined(&self, bit: u32) -> bool {
        self.config.pipeline & bit != 0 && self.role == Role::Master
    }

    /// The phase's time is not up: a slave may go on skipping repeated requests (a hostile
    /// peer that repeats forever is cut off at the phase's end like any other).
    fn in_phase(&self, now: u32) -> bool {
        now.wrapping_sub(self.phase_start) < self.phase_timeout
    }

    fn attempt_failed(&mut self, now: u32) {
        self.retry(now, false);
    }

    /// A retry after a wait for an answer that may only be late (nothing wrong came): the next
    /// attempt keeps the input instead of flushing it. Bytes of a packet cut short by the
    /// timeout then fail the next attempt's first receive (bad magic), whose retry flushes.
    fn attempt_timed_out(&mut self, now: u32) {
        self.retry(now, true);
    }

    fn retry(&mut self, now: u32, keep_input: bool) {
        self.short_timeout = grow(self.role, self.short_timeout, self.phase_timeout);
        if self.fail_reason == Reason::Transport && self.in_phase(now) {
            // A transport that fails at once (nobody listening, connection refused) would
            // have the attempts follow each other in a hot loop: pause first.
            self.step = Step::Pause;
        } else {
            self.begin_attempt(now, keep_input);
        }
    }

    /// The first packet of an attempt (after its flush, if any); the stream reader's setup.
    fn attempt_packets(&mut self) {
        self.step = match (self.op, self.phase) {
            (Op::Call, Phase::Command) => {
                self.set_tx(
                    &CommandHeaderRepr { name_hash: self.name_hash, argument_len: self.data_len }
                        .to_bytes(),
                );
                Step::SendCommandHeader
            }
            (Op::Call, Phase::Result) => {
                self.set_tx(&wire::empty_packet(MAGIC_RESULT_HEADER));
                Step::SendResultHeaderRequest
            }
            (Op::Serve, Phase::Command) => Step::RecvCommandHeader,
            (Op::Serve, Phase::Result) => Step::RecvResultHeaderRequest,
            (Op::StreamReader, _) => Step::SendStreamSetup,
            // The writer never flushes: the reader's setup may already be waiting.
            (Op::StreamWriter, _) => self.step,
        };
    }

    fn phase_expired(&mut self) {
        let status = match (self.op, self.phase) {
            (Op::Call, Phase::Command) => {
                self.stats.send_phase_timeouts += 1;
                Status::SendTimeout
            }
            (Op::Call, Phase::Result) => {
                self.stats.recv_phase_timeouts += 1;
                Status::RecvTimeout
            }
            (_, Phase::Command) => Status::NoCommand,
            (_, Phase::Result) => Status::ResultNotTaken,
        };
        if self.op == Op::Call {
            self.stats.calls_failed += 1;
        }
        self.finish(status);
    }

    fn finish(&mut self, status: Status) {
        self.step = Step::Done;
        self.status = status;
        // A stream ends out of step (acks not read, frames in flight) whatever its status.
        if status != Status::Ok || matches!(self.op, Op::StreamReader | Op::StreamWriter) {
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

    fn stream_failed(&mut self) {
        let status = if self.fail_reason == Reason::Transport {
            Status::TransportError
        } else {
            Status::StreamTimeout
        };
        self.finish(status);
    }

    fn next_frame(&mut self) {
        self.step =
            if self.credits <= self.queue_depth / 2 { Step::RecvStreamAck } else { Step::Produce };
    }

    fn frame_sent(&mut self) {
        self.credits = self.credits.saturating_sub(1);
        self.stats.stream_frames += 1;
        self.next_frame();
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

    /// True when `rx` holds exactly the empty request packet with `magic`, received whole
    /// (counted as a valid packet). Nothing is recorded otherwise: the caller goes on to its
    /// usual check.
    fn received_request(&mut self, status: IoStatus, magic: u16) -> bool {
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

    /// True when rx holds exactly the empty packet with `magic`, received whole (counted as
    /// a valid packet).
    fn rx_is_empty_packet(&mut self, status: IoStatus, magic: u16) -> bool {
        self.received_request(status, magic)
    }

    /// Master: the first 4 bytes in rx are an ack the slave sent again (COMMAND_HEADER or
    /// COMMAND_DATA), not the reply awaited.
    fn stray_ack_in_rx(&mut self, status: IoStatus) -> bool {
        self.rx_is_empty_packet(status, MAGIC_COMMAND_DATA)
            || self.rx_is_empty_packet(status, MAGIC_COMMAND_HEADER)
    }

    /// Slave: a COMMAND_HEADER is in rx (12 bytes). `repeat`: it came where COMMAND_DATA or a
    /// result request was due. The same header as the command of this turn is the master's
    /// repeat (it lost our ack); any other is a new command: the master has moved on, and
    /// waiting out the phase for the old one would lose this one too.
    fn command_header_in_rx(&mut self, now: u32, repeat: bool) {
        let header = match CommandHeaderRepr::parse(&wire::Packet::new_unchecked(&self.rx[..])) {
            Ok(h) => h,
            Err(e) => {
                self.wire_error(Packet::CommandHeader, e);
                return self.attempt_failed(now);
            }
        };
        self.stats.packets_received += 1;
        if repeat && !self.in_phase(now) {
            // A peer that repeats forever is cut off at the phase's end like any other.
            return self.phase_expired();
        }
        if repeat && header.name_hash == self.name_hash && header.argument_len == self.argument_len
        {
            if self.phase == Phase::Result || self.config.split_reads == 0 {
                // Answer at once: in the result phase the master waits for this ack (it has no
                // other reason to repeat), and a whole-packet bus cannot look ahead.
                self.stats.repeats_answered += 1;
                self.set_tx(&wire::empty_packet(MAGIC_COMMAND_HEADER));
                self.step = Step::SendCommandHeaderAck;
            } else {
                self.stats.late_requests += 1;
                // A master that had our ack sends COMMAND_DATA right behind its repeat (it
                // retried while our ack was late); one that lost it waits: look for
                // COMMAND_DATA a short timeout, then ack again.
                self.after_repeat = true;
                self.step = Step::RecvCommandDataHead;
            }
            return;
        }
        if repeat {
            self.stats.new_commands += 1;
            if self.phase == Phase::Result {
                self.restart_command_phase(now);
            }
        }
        match self.length_within(
            header.argument_len,
            self.config.max_argument_len,
            Packet::CommandHeader,
        ) {
            Some(len) => {
                self.name_hash = header.name_hash;
                self.data_len = len;
                self.argument_len = len;
                // A new command: the last turn's result is no longer asked for.
                self.kept = false;
                self.resending = false;
                self.set_tx(&wire::empty_packet(MAGIC_COMMAND_HEADER));
                self.step = Step::SendCommandHeaderAck;
            }
            None => self.attempt_failed(now),
        }
    }

    /// Slave: the command phase starts over inside this turn (a new COMMAND_HEADER came while
    /// the result of the last one was due).
    fn restart_command_phase(&mut self, now: u32) {
        let t = self.command_phase_timeout;
        self.phase = Phase::Command;
        self.phase_start = now;
        self.phase_timeout = t;
        self.short_timeout = self.config.short_timeout_ms;
        self.attempts = 1;
        self.result_header_sent = false;
        self.repeats_skipped = 0;
        self.data_len = self.argument_len;
        self.attempt_packets();
    }

    /// Slave, result phase: the first 4 bytes of a repeated COMMAND_DATA are in rx; read the
    /// rest into the argument's packet buffer (its callback has returned: the buffer is free).
    fn read_repeated_command_data(&mut self, now: u32) {
        let want = self.argument_len as usize + PACKET_OVERHEAD;
        let head = match self.incoming.as_mut() {
            Some(b) if b.as_ref().len() == want => b.as_mut().get_mut(..EMPTY_PACKET_LEN),
            _ => None,
        };
        match head {
            Some(head) => {
                head.copy_from_slice(&self.rx[..EMPTY_PACKET_LEN]);
                self.step = Step::RecvRepeatedCommandData;
            }
            _ => {
                self.wire_error(Packet::CommandData, WireError::BadMagic);
                self.attempt_failed(now);
            }
        }
    }

    /// Slave, result phase: a valid COMMAND_DATA came again. The same as the one taken (the
    /// master lost our ack): ack it again, without running the callback twice. Another (a new
    /// call with the same name and length): take it as a new command.
    fn repeated_command_data(&mut self, now: u32, crc: u16) {
        if crc == self.committed_crc {
            self.stats.repeats_answered += 1;
            self.set_tx(&wire::empty_packet(MAGIC_COMMAND_DATA));
            self.step = Step::SendCommandDataAck;
        } else {
            self.stats.new_commands += 1;
            self.restart_command_phase(now);
            self.command_data_received(crc);
        }
    }

    /// Slave: the result of the last turn may still be asked for (see [`Stats::repeats_answered`]).
    fn kept_result_valid(&self, now: u32) -> bool {
        self.kept && self.outgoing.is_some() && now.wrapping_sub(self.kept_at) < self.kept_for
    }

    /// Master: the slave has the command (its COMMAND_DATA ack came): the result phase.
    fn command_committed(&mut self, now: u32) {
        let t = self.result_phase_timeout;
        self.start_phase(Phase::Result, t, now);
    }

    /// How long the master waits for a reply after which the slave has moved on (the
    /// COMMAND_DATA ack, the first byte of RESULT_DATA) when `outstanding` bytes were just
    /// written: two short timeouts and their wire time. Then a retry, which a slave that
    /// missed the packet or whose reply was lost answers (ours from what it holds; a reference
    /// slave waits only 2-3 ms for the RESULT_DATA request, an Arduino one 100 ms for a
    /// command); a reply that is only late is still read (see [`Step::RecvCommandDataAck`]).
    fn reply_wait(&self, outstanding: usize) -> u32 {
        // And 1 ms per KiB outstanding: the slave checks the crc of what it got before it
        // acks (a peer in pure Python does that at about 1 MB/s).
        let processing = u32::try_from(outstanding / 1024).unwrap_or(u32::MAX);
        let t = self.short_timeout.saturating_mul(2).saturating_add(processing);
        stretch(t, outstanding, self.config.bytes_per_s, self.config.short_timeout_ms)
    }

    /// Slave: answer a RESULT_HEADER request with the result's length.
    fn answer_result_header_request(&mut self) {
        self.set_tx(&ResultHeaderRepr { result_len: self.data_len }.to_bytes());
        self.step = Step::SendResultHeader;
    }

    /// Slave: COMMAND_DATA is in and valid (its crc given); acknowledge it.
    fn command_data_received(&mut self, crc: u16) {
        self.committed_crc = crc;
        self.set_tx(&wire::empty_packet(MAGIC_COMMAND_DATA));
        self.step = Step::SendCommandDataAck;
    }

    /// The u32 of a RESULT_HEADER-shaped packet in `rx`.
    fn received_result_header(&mut self, status: IoStatus) -> Option<u32> {
        if !self.received(status, Packet::ResultHeader) {
            return None;
        }
        self.parse_rx(Packet::ResultHeader, |rx| {
            ResultHeaderRepr::parse(&wire::Packet::new_unchecked(&rx[..U32_PACKET_LEN]))
        })
        .map(|p| p.result_len)
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

/// Where a receive goes.
enum RecvInto {
    /// The engine's header buffer, from this offset.
    Rx(usize),
    /// A buffer of the caller's own, the first bytes (this many) already read into rx.
    Caller(usize),
    /// The caller's buffer the engine holds (`incoming`), from this offset.
    Incoming(usize),
}

/// `timeout_ms` for moving `len` bytes over a link of `bytes_per_s` (0: fast, no stretch): at
/// least their wire time plus one first short timeout. 32-bit arithmetic only (a native
/// module has no 64-bit division helper); lengths are bounded far below overflow by the limits.
pub fn stretch(timeout_ms: u32, len: usize, bytes_per_s: u32, short_timeout_ms: u32) -> u32 {
    if bytes_per_s == 0 {
        return timeout_ms;
    }
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    let bytes_per_ms = bytes_per_s / 1000;
    let wire_ms = match len.checked_div(bytes_per_ms) {
        Some(ms) => ms,
        None if len > 4_000_000 => 0xFFFF_0000,
        None => len * 1000 / bytes_per_s,
    };
    timeout_ms.max(wire_ms.saturating_add(1).saturating_add(short_timeout_ms))
}

/// The crc (the last two bytes) of a packet.
fn packet_crc(packet: &[u8]) -> u16 {
    wire::Packet::new_checked(packet).map_or(0, |p| p.crc())
}

/// `now` is at or past `deadline` (wrapping ms clock: within half its range).
fn deadline_passed(now: u32, deadline: u32) -> bool {
    (now.wrapping_sub(deadline) as i32) >= 0
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
