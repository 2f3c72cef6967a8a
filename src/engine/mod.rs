//! The master call, slave turn and stream engines: one sans-IO state machine per operation.
//!
//! The engine never reads a clock, touches a bus or calls the caller. [`Engine::poll`] says what
//! it wants next ([`Io`]); the caller carries it out and reports with [`Engine::complete`].
//! All timing rules of PROTOCOL.md live here: phases, short and long timeouts, their growth, when
//! an attempt drops pending input first (see [`Io::Flush`]), the stream credits and ack bytes.
//!
//! # Layout
//! - `types.rs`: the public types (configuration, defaults, actions, statuses, counters, names);
//! - this file: the engine's state (`Step`: an operation and its own step,
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
mod types;

use self::call::{CallState, CallStep};
use self::serve::{ServeStep, TurnState};
use self::stream::{ReaderStep, StreamState, WriterStep};
use self::timing::deadline_passed;
pub use self::timing::stretch;
pub use self::types::{
    defaults, pipeline, Config, Io, IoStatus, LastError, Packet, Reason, Role, Stats, Status,
};
use crate::wire::{self, AckLfsr, WireError, EMPTY_PACKET_LEN, MAX_HEADER_LEN, PACKET_OVERHEAD};

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
