//! Time, for every operation (PROTOCOL.md, "One call"): phases and their attempts, the short
//! timeouts and their growth, when an attempt drops pending input first, the deadlines handed
//! to the caller and the wire-time stretch of a slow link.

use super::call::CallStep;
use super::serve::ServeStep;
use super::stream::ReaderStep;
use super::{defaults, Buffer, Engine, Io, Op, Phase, Reason, Role, Status, Step};
use crate::wire::{self, CommandHeaderRepr, MAGIC_RESULT_HEADER};

/// The next short timeout after a failed attempt, capped at the phase timeout.
fn grow(role: Role, t: u32, cap: u32) -> u32 {
    let grown = match role {
        // The reference cam master: t * 4 // 3 (the Arduino library uses x1.5).
        Role::Master => (u64::from(t) * 4 / 3).min(u64::from(u32::MAX)) as u32,
        Role::Slave => t.saturating_add(1),
    };
    grown.min(cap)
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

/// `now` is at or past `deadline` (wrapping ms clock: within half its range).
pub(super) fn deadline_passed(now: u32, deadline: u32) -> bool {
    (now.wrapping_sub(deadline) as i32) >= 0
}

impl<B: Buffer> Engine<B> {
    /// The short timeout the next short wait will use (ms).
    pub fn short_timeout(&self) -> u32 {
        self.short_timeout
    }

    /// For the [`Io::Recv`] that [`Engine::poll`] asks for now: the first byte of the packet
    /// must arrive within this many ms of the step's start, else the caller completes it with
    /// `Timeout` (the whole packet still has `timeout_ms`); 0 means no such limit, and is what
    /// every other action gets (`omv_rpc_io_t.start_timeout_ms` in the C ABI).
    ///
    /// Only the master's RESULT_DATA receive has one (`Engine::reply_wait`). The slave sends
    /// RESULT_DATA as soon as it reads the request, so its first bytes come within a round trip;
    /// only the transfer may take long (64 KiB on a slow UART). If the request was lost, or
    /// came after a reference slave's short timeout (that slave has gone back to waiting for
    /// a RESULT_HEADER request), nothing will come: the retry must come while the slave still
    /// waits. The slave's COMMAND_DATA wait has no such limit: a slow master (the old desktop
    /// library) may take seconds to compute a 64 KiB CRC between the header ack and the data.
    pub fn start_timeout_ms(&self) -> u32 {
        if self.step == Step::Call(CallStep::RecvResultData) {
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
            Step::Serve(ServeStep::RecvCommandData | ServeStep::RecvRepeatedCommandData)
            | Step::Call(CallStep::RecvResultData) => stretch(
                defaults::DATA_GAP_MS.max(self.config.short_timeout_ms),
                1024,
                self.config.bytes_per_s,
                self.config.short_timeout_ms,
            ),
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

    // ----- phases and attempts -----

    pub(super) fn start_phase(&mut self, phase: Phase, timeout: u32, now: u32) {
        self.phase = phase;
        self.phase_start = now;
        self.phase_timeout = timeout;
        self.short_timeout = self.config.short_timeout_ms;
        self.attempts = 0;
        self.turn.result_header_sent = false;
        self.turn.repeats_skipped = 0;
        self.call.command_data_sent = false;
        self.call.result_len_known = false;
        self.call.late_result_data = false;
        self.begin_attempt(now, false);
    }

    /// The reference's `while elapsed(phase_start) < phase_timeout: attempt`: checked only
    /// between attempts, so an attempt in progress may overrun the phase. `keep_input`: the
    /// attempt does not flush (see [`Engine::attempt_timed_out`]).
    pub(super) fn begin_attempt(&mut self, now: u32, keep_input: bool) {
        if !self.in_phase(now) {
            return self.phase_expired();
        }
        self.attempts += 1;
        if self.attempts > 1 {
            self.stats.retries += 1;
        }
        self.call.command_data_resent = false;
        self.turn.after_repeat = false;
        let in_sync =
            self.in_sync && now.wrapping_sub(self.last_io_at) < self.config.short_timeout_ms;
        match self.step.op() {
            Some(op) if !keep_input && (self.attempts > 1 || !in_sync) => {
                self.step = Step::Flush(op)
            }
            _ => self.attempt_packets(),
        }
    }

    /// The phase's time is not up: a slave may go on skipping repeated requests (a hostile
    /// peer that repeats forever is cut off at the phase's end like any other).
    pub(super) fn in_phase(&self, now: u32) -> bool {
        now.wrapping_sub(self.phase_start) < self.phase_timeout
    }

    pub(super) fn attempt_failed(&mut self, now: u32) {
        self.retry(now, false);
    }

    /// A retry after a wait for an answer that may only be late (nothing wrong came): the next
    /// attempt keeps the input instead of flushing it. Bytes of a packet cut short by the
    /// timeout then fail the next attempt's first receive (bad magic), whose retry flushes.
    pub(super) fn attempt_timed_out(&mut self, now: u32) {
        self.retry(now, true);
    }

    fn retry(&mut self, now: u32, keep_input: bool) {
        self.short_timeout = grow(self.role, self.short_timeout, self.phase_timeout);
        match self.step.op() {
            // A transport that fails at once (nobody listening, connection refused) would
            // have the attempts follow each other in a hot loop: pause first.
            Some(op) if self.fail_reason == Reason::Transport && self.in_phase(now) => {
                self.step = Step::Pause(op)
            }
            _ => self.begin_attempt(now, keep_input),
        }
    }

    /// The first packet of an attempt (after its flush, if any); the stream reader's setup.
    pub(super) fn attempt_packets(&mut self) {
        self.step = match (self.step.op(), self.phase) {
            (Some(Op::Call), Phase::Command) => {
                let header =
                    CommandHeaderRepr { name_hash: self.name_hash, argument_len: self.data_len };
                self.set_tx(&header.to_bytes());
                CallStep::SendCommandHeader.into()
            }
            (Some(Op::Call), Phase::Result) => {
                self.set_tx(&wire::empty_packet(MAGIC_RESULT_HEADER));
                CallStep::SendResultHeaderRequest.into()
            }
            (Some(Op::Serve), Phase::Command) => ServeStep::RecvCommandHeader.into(),
            (Some(Op::Serve), Phase::Result) => ServeStep::RecvResultHeaderRequest.into(),
            (Some(Op::StreamReader), _) => ReaderStep::SendStreamSetup.into(),
            // The writer never flushes: the reader's setup may already be waiting.
            (Some(Op::StreamWriter) | None, _) => self.step,
        };
    }

    pub(super) fn phase_expired(&mut self) {
        let op = self.step.op();
        let status = match (op, self.phase) {
            (Some(Op::Call), Phase::Command) => {
                self.stats.send_phase_timeouts += 1;
                Status::SendTimeout
            }
            (Some(Op::Call), Phase::Result) => {
                self.stats.recv_phase_timeouts += 1;
                Status::RecvTimeout
            }
            (_, Phase::Command) => Status::NoCommand,
            (_, Phase::Result) => Status::ResultNotTaken,
        };
        if op == Some(Op::Call) {
            self.stats.calls_failed += 1;
        }
        self.finish(status);
    }

    /// How long the master waits for a reply after which the slave has moved on (the
    /// COMMAND_DATA ack, the first byte of RESULT_DATA) when `outstanding` bytes were just
    /// written: two short timeouts and their wire time. Then a retry, which a slave that
    /// missed the packet or whose reply was lost answers (ours from what it holds; a reference
    /// slave waits only 2-3 ms for the RESULT_DATA request, an Arduino one 100 ms for a
    /// command); a reply that is only late is still read (see [`CallStep::RecvCommandDataAck`]).
    pub(super) fn reply_wait(&self, outstanding: usize) -> u32 {
        // And 1 ms per KiB outstanding: the slave checks the crc of what it got before it
        // acks (a peer in pure Python does that at about 1 MB/s).
        let processing = u32::try_from(outstanding / 1024).unwrap_or(u32::MAX);
        let t = self.short_timeout.saturating_mul(2).saturating_add(processing);
        stretch(t, outstanding, self.config.bytes_per_s, self.config.short_timeout_ms)
    }
}
