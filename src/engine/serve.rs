//! The slave's turn of `loop()` (PROTOCOL.md, "One call"): wait for a command, DISPATCH it,
//! send the result; with the recovery rules of a slave on a byte stream (split reads): a
//! repeated COMMAND_HEADER or COMMAND_DATA acked again without a second callback, a new
//! COMMAND_HEADER taken at once, repeated result requests answered from the result kept after
//! the turn.

use super::{
    packet_crc, payload_len, Action, Buffer, Engine, IoStatus, Packet, Phase, Reason, RecvInto,
    SendFrom, Status,
};
use crate::wire::{
    self, CommandHeaderRepr, ResultHeaderRepr, WireError, COMMAND_HEADER_LEN, EMPTY_PACKET_LEN,
    MAGIC_COMMAND_DATA, MAGIC_COMMAND_HEADER, MAGIC_RESULT_DATA, MAGIC_RESULT_HEADER,
    PACKET_OVERHEAD,
};

/// How many RESULT_HEADER requests after its RESULT_HEADER the slave takes for copies left by
/// a late answer (a master that retried while this side was stalled: one copy per master
/// short timeout of the stall, 3 for a 12 ms stall against a 3 ms master) before it takes
/// one for the master asking again.
const MAX_SKIPPED_REPEATS: u32 = 3;

/// The steps of a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ServeStep {
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
    /// See [`MAX_SKIPPED_REPEATS`].
    RecvResultDataRequest,
    SendResultData,
}

/// What only a turn keeps, and the result kept after one.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct TurnState {
    /// The COMMAND_DATA wait follows a repeated COMMAND_HEADER: if nothing comes within a
    /// short timeout, the master lost the ack and waits for it.
    pub(super) after_repeat: bool,
    /// A RESULT_HEADER was sent in this result phase (the master may then ask for RESULT_DATA
    /// even after the slave's attempt to wait for that request timed out).
    pub(super) result_header_sent: bool,
    /// Answering from the result kept after its turn (see [`Engine::kept_result_valid`]).
    pub(super) resending: bool,
    /// The result of the last turn is kept (the outgoing buffer) for the master's repeated
    /// requests, until a new COMMAND_HEADER or `kept_for` ms after `kept_at`.
    pub(super) kept: bool,
    kept_len: u32,
    kept_at: u32,
    kept_for: u32,
    /// The crc of the COMMAND_DATA taken in this turn (a repeat must carry the same).
    committed_crc: u16,
    /// recv_timeout of the turn (a command phase started over by a new COMMAND_HEADER).
    command_phase_timeout: u32,
    /// The argument length of the command in this turn.
    argument_len: u32,
    /// RESULT_HEADER requests skipped since the last RESULT_HEADER went out.
    pub(super) repeats_skipped: u32,
}

impl<B: Buffer> Engine<B> {
    /// Slave: start one turn of loop(): wait up to `recv_timeout_ms` for a command, DISPATCH
    /// it, then send the result within `send_timeout_ms`.
    pub fn serve_start(&mut self, recv_timeout_ms: u32, send_timeout_ms: u32, now: u32) -> Status {
        if self.is_busy() {
            return Status::Busy;
        }
        self.begin_op(ServeStep::RecvCommandHeader.into(), now);
        self.result_phase_timeout = send_timeout_ms;
        self.turn.command_phase_timeout = recv_timeout_ms;
        self.start_phase(Phase::Command, recv_timeout_ms, now);
        Status::Ok
    }

    pub(super) fn serve_action(&self, step: ServeStep) -> Action {
        let short = self.short_timeout;
        let long = self.config.long_timeout_ms;
        let split_reads = self.config.split_reads != 0;
        let send = |packet, timeout_ms, from| Action::Send { packet, timeout_ms, from };
        let recv = |packet, timeout_ms, len, packet_len, into| Action::Recv {
            packet,
            timeout_ms,
            len,
            packet_len,
            into,
        };
        let data_packet_len = self.data_len as usize + PACKET_OVERHEAD;
        let empty = EMPTY_PACKET_LEN;
        match step {
            ServeStep::Dispatch => Action::Dispatch,
            ServeStep::SendCommandHeaderAck => send(Packet::CommandHeader, short, SendFrom::Tx),
            ServeStep::SendCommandDataAck => send(Packet::CommandData, short, SendFrom::Tx),
            ServeStep::SendResultHeader => send(Packet::ResultHeader, short, SendFrom::Tx),
            ServeStep::SendResultData => send(Packet::ResultData, long, SendFrom::Outgoing),
            ServeStep::RecvCommandHeader => {
                let len = if split_reads { EMPTY_PACKET_LEN } else { COMMAND_HEADER_LEN };
                recv(Packet::CommandHeader, short, len, len, RecvInto::Rx(0))
            }
            ServeStep::RecvCommandHeaderRest | ServeStep::RecvRepeatedHeaderRest => recv(
                Packet::CommandHeader,
                short,
                COMMAND_HEADER_LEN - EMPTY_PACKET_LEN,
                COMMAND_HEADER_LEN,
                RecvInto::Rx(EMPTY_PACKET_LEN),
            ),
            ServeStep::RecvCommandDataHead => {
                // After a repeated header (and in the result phase) COMMAND_DATA comes right
                // away or the master is waiting for an ack.
                let t = if self.turn.after_repeat || self.phase == Phase::Result {
                    short
                } else {
                    long
                };
                recv(Packet::CommandData, t, empty, data_packet_len, RecvInto::Rx(0))
            }
            ServeStep::RecvCommandData => {
                let prefix = if split_reads { EMPTY_PACKET_LEN } else { 0 };
                let len = data_packet_len;
                recv(Packet::CommandData, long, len, len, RecvInto::Caller(prefix))
            }
            ServeStep::RecvRepeatedCommandData => recv(
                Packet::CommandData,
                long,
                data_packet_len,
                self.turn.argument_len as usize + PACKET_OVERHEAD,
                RecvInto::Incoming(EMPTY_PACKET_LEN),
            ),
            ServeStep::RecvResultHeaderRequest => {
                recv(Packet::ResultHeader, short, empty, empty, RecvInto::Rx(0))
            }
            ServeStep::RecvResultDataRequest => {
                recv(Packet::ResultData, short, empty, empty, RecvInto::Rx(0))
            }
        }
    }

    pub(super) fn serve_complete(
        &mut self,
        step: ServeStep,
        now: u32,
        status: IoStatus,
        buf: Option<B>,
    ) {
        match step {
            // Command phase.
            ServeStep::RecvCommandHeader => {
                if !self.received(status, Packet::CommandHeader) {
                    return self.attempt_failed(now);
                }
                if self.config.split_reads == 0 {
                    return self.command_header_in_rx(now, false);
                }
                // The first 4 bytes: a request for the result kept from the last turn (its
                // RESULT_DATA was lost), or a COMMAND_HEADER's start.
                if self.kept_result_valid(now) && self.received_empty(status, MAGIC_RESULT_HEADER) {
                    self.stats.repeats_answered += 1;
                    self.turn.resending = true;
                    self.data_len = self.turn.kept_len;
                    self.answer_result_header_request();
                } else if self.kept_result_valid(now)
                    && self.received_empty(status, MAGIC_RESULT_DATA)
                {
                    self.stats.repeats_answered += 1;
                    self.turn.resending = true;
                    self.data_len = self.turn.kept_len;
                    self.set_step(ServeStep::SendResultData);
                } else if self.rx_magic() == MAGIC_COMMAND_HEADER {
                    self.set_step(ServeStep::RecvCommandHeaderRest);
                } else {
                    self.wire_error(Packet::CommandHeader, WireError::BadMagic);
                    self.attempt_failed(now);
                }
            }
            ServeStep::SendCommandHeaderAck => {
                if !self.sent(status, Packet::CommandHeader) {
                    return self.attempt_failed(now);
                }
                self.set_step(if self.config.split_reads != 0 || self.phase == Phase::Result {
                    ServeStep::RecvCommandDataHead
                } else {
                    ServeStep::RecvCommandData
                });
            }
            ServeStep::RecvCommandDataHead => {
                let after_repeat = core::mem::replace(&mut self.turn.after_repeat, false);
                if status == IoStatus::Timeout && after_repeat {
                    // Nothing behind the repeated header: the master lost our ack and waits
                    // for it (once per repeat: it sends its header again if this one is lost).
                    self.stats.repeats_answered += 1;
                    self.set_tx(&wire::empty_packet(MAGIC_COMMAND_HEADER));
                    self.set_step(ServeStep::SendCommandHeaderAck);
                    return;
                }
                if !self.received(status, Packet::CommandData) {
                    return self.attempt_failed(now);
                }
                match self.rx_magic() {
                    MAGIC_COMMAND_DATA if self.data_len == 0 => {
                        // An empty argument: the 4 bytes are the whole packet.
                        match self.empty_command_data_in_rx() {
                            Some(crc) if self.phase == Phase::Result => {
                                self.repeated_command_data(now, crc)
                            }
                            Some(crc) => {
                                self.incoming = None;
                                self.command_data_received(crc);
                            }
                            None => self.attempt_failed(now),
                        }
                    }
                    MAGIC_COMMAND_DATA if self.phase == Phase::Result => {
                        self.read_repeated_command_data(now)
                    }
                    MAGIC_COMMAND_DATA => self.set_step(ServeStep::RecvCommandData),
                    MAGIC_COMMAND_HEADER => self.set_step(ServeStep::RecvRepeatedHeaderRest),
                    _ => {
                        self.wire_error(Packet::CommandData, WireError::BadMagic);
                        self.attempt_failed(now);
                    }
                }
            }
            ServeStep::RecvCommandHeaderRest | ServeStep::RecvRepeatedHeaderRest => {
                // The header's last 8 bytes; a repeat when it came where COMMAND_DATA or a
                // result request was due.
                let repeat = step == ServeStep::RecvRepeatedHeaderRest;
                if self.received(status, Packet::CommandHeader) {
                    self.command_header_in_rx(now, repeat);
                } else {
                    self.attempt_failed(now);
                }
            }
            ServeStep::RecvCommandData => {
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
            ServeStep::RecvRepeatedCommandData => {
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
            ServeStep::SendCommandDataAck => {
                if !self.sent(status, Packet::CommandData) {
                    self.attempt_failed(now);
                } else if self.phase == Phase::Result {
                    // A repeat's ack: the command is taken already; wait for the requests.
                    self.set_step(ServeStep::RecvResultHeaderRequest);
                } else {
                    self.set_step(ServeStep::Dispatch);
                }
            }
            ServeStep::Dispatch => match (status, buf) {
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
            // Result phase.
            ServeStep::RecvResultHeaderRequest => {
                let magic = if status == IoStatus::Ok { self.rx_magic() } else { 0 };
                if self.turn.result_header_sent && self.received_empty(status, MAGIC_RESULT_DATA) {
                    // The RESULT_DATA request, after this side stopped waiting for it: the
                    // master has the RESULT_HEADER sent in this phase.
                    self.stats.late_requests += 1;
                    self.set_step(ServeStep::SendResultData);
                } else if magic == MAGIC_COMMAND_HEADER {
                    // The master has sent a COMMAND_HEADER again: it lost our COMMAND_DATA
                    // ack (the same command), or gave up and started another.
                    if self.config.split_reads != 0 {
                        self.set_step(ServeStep::RecvRepeatedHeaderRest);
                    } else {
                        // Only its first bytes came (a bus moves what the receive asked for):
                        // its retry is read in a command phase started over.
                        self.stats.new_commands += 1;
                        self.restart_command_phase(now);
                    }
                } else if magic == MAGIC_COMMAND_DATA && self.config.split_reads != 0 {
                    // COMMAND_DATA again, alone: the master lost our ack of it.
                    if self.turn.argument_len == 0 {
                        match self.empty_command_data_in_rx() {
                            Some(crc) => self.repeated_command_data(now, crc),
                            None => self.attempt_failed(now),
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
            ServeStep::SendResultHeader => {
                if self.sent(status, Packet::ResultHeader) {
                    self.turn.result_header_sent = true;
                    self.turn.repeats_skipped = 0;
                    self.set_step(ServeStep::RecvResultDataRequest);
                } else {
                    self.attempt_failed(now);
                }
            }
            ServeStep::RecvResultDataRequest => {
                if self.in_phase(now) && self.received_empty(status, MAGIC_RESULT_HEADER) {
                    self.stats.late_requests += 1;
                    if self.turn.repeats_skipped < MAX_SKIPPED_REPEATS {
                        // The master's retry of the RESULT_HEADER request this side answered
                        // late: it has the answer, and its RESULT_DATA request follows.
                        // Answering again would put a second RESULT_HEADER ahead of
                        // RESULT_DATA; failing the attempt would flush that request away. (A
                        // master that lost the answer sends no RESULT_DATA request: this wait
                        // times out, and the retry that follows answers it.)
                        self.turn.repeats_skipped += 1;
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
                    self.set_step(ServeStep::SendResultData);
                } else if status == IoStatus::Timeout {
                    // The request may be on its way: a flush now could drop it, and the
                    // master would wait for RESULT_DATA in vain (the next attempt answers a
                    // RESULT_DATA request as well as a RESULT_HEADER request).
                    self.attempt_timed_out(now);
                } else {
                    self.attempt_failed(now);
                }
            }
            ServeStep::SendResultData => {
                if !self.sent(status, Packet::ResultData) {
                    return self.attempt_failed(now);
                }
                if core::mem::replace(&mut self.turn.resending, false) {
                    // A result sent again from the kept one: the command wait goes on.
                    self.data_len = 0;
                    self.attempt_packets();
                } else {
                    self.stats.commands_served += 1;
                    // Kept for the master's repeated requests, should RESULT_DATA be lost.
                    self.turn.kept = self.config.split_reads != 0;
                    self.turn.kept_len = self.data_len;
                    self.turn.kept_at = now;
                    self.turn.kept_for = self.phase_timeout;
                    self.finish(Status::Ok);
                }
            }
        }
    }

    /// A COMMAND_DATA with an empty argument is in rx (its 4 bytes are the whole packet): its
    /// crc if it is valid (counted), else None (why is recorded).
    fn empty_command_data_in_rx(&mut self) -> Option<u16> {
        self.parse_rx(Packet::CommandData, |rx| {
            let packet = wire::Packet::new_unchecked(&rx[..EMPTY_PACKET_LEN]);
            packet.check(MAGIC_COMMAND_DATA).map(|_| packet.crc())
        })
    }

    /// A COMMAND_HEADER is in rx (12 bytes). `repeat`: it came where COMMAND_DATA or a
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
        if repeat
            && header.name_hash == self.name_hash
            && header.argument_len == self.turn.argument_len
        {
            if self.phase == Phase::Result || self.config.split_reads == 0 {
                // Answer at once: in the result phase the master waits for this ack (it has no
                // other reason to repeat), and a whole-packet bus cannot look ahead.
                self.stats.repeats_answered += 1;
                self.set_tx(&wire::empty_packet(MAGIC_COMMAND_HEADER));
                self.set_step(ServeStep::SendCommandHeaderAck);
            } else {
                self.stats.late_requests += 1;
                // A master that had our ack sends COMMAND_DATA right behind its repeat (it
                // retried while our ack was late); one that lost it waits: look for
                // COMMAND_DATA a short timeout, then ack again.
                self.turn.after_repeat = true;
                self.set_step(ServeStep::RecvCommandDataHead);
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
                self.turn.argument_len = len;
                // A new command: the last turn's result is no longer asked for.
                self.turn.kept = false;
                self.turn.resending = false;
                self.set_tx(&wire::empty_packet(MAGIC_COMMAND_HEADER));
                self.set_step(ServeStep::SendCommandHeaderAck);
            }
            None => self.attempt_failed(now),
        }
    }

    /// The command phase starts over inside this turn (a new COMMAND_HEADER came while the
    /// result of the last one was due).
    fn restart_command_phase(&mut self, now: u32) {
        let t = self.turn.command_phase_timeout;
        self.phase = Phase::Command;
        self.phase_start = now;
        self.phase_timeout = t;
        self.short_timeout = self.config.short_timeout_ms;
        self.attempts = 1;
        self.turn.result_header_sent = false;
        self.turn.repeats_skipped = 0;
        self.data_len = self.turn.argument_len;
        self.attempt_packets();
    }

    /// Result phase: the first 4 bytes of a repeated COMMAND_DATA are in rx; read the rest
    /// into the argument's packet buffer (its callback has returned: the buffer is free).
    fn read_repeated_command_data(&mut self, now: u32) {
        let want = self.turn.argument_len as usize + PACKET_OVERHEAD;
        let head = match self.incoming.as_mut() {
            Some(b) if b.as_ref().len() == want => b.as_mut().get_mut(..EMPTY_PACKET_LEN),
            _ => None,
        };
        match head {
            Some(head) => {
                head.copy_from_slice(&self.rx[..EMPTY_PACKET_LEN]);
                self.set_step(ServeStep::RecvRepeatedCommandData);
            }
            _ => {
                self.wire_error(Packet::CommandData, WireError::BadMagic);
                self.attempt_failed(now);
            }
        }
    }

    /// Result phase: a valid COMMAND_DATA came again. The same as the one taken (the master
    /// lost our ack): ack it again, without running the callback twice. Another (a new call
    /// with the same name and length): take it as a new command.
    fn repeated_command_data(&mut self, now: u32, crc: u16) {
        if crc == self.turn.committed_crc {
            self.stats.repeats_answered += 1;
            self.set_tx(&wire::empty_packet(MAGIC_COMMAND_DATA));
            self.set_step(ServeStep::SendCommandDataAck);
        } else {
            self.stats.new_commands += 1;
            self.restart_command_phase(now);
            self.command_data_received(crc);
        }
    }

    /// The result of the last turn may still be asked for (see
    /// [`super::Stats::repeats_answered`]).
    fn kept_result_valid(&self, now: u32) -> bool {
        self.turn.kept
            && self.outgoing.is_some()
            && now.wrapping_sub(self.turn.kept_at) < self.turn.kept_for
    }

    /// Answer a RESULT_HEADER request with the result's length.
    fn answer_result_header_request(&mut self) {
        self.set_tx(&ResultHeaderRepr { result_len: self.data_len }.to_bytes());
        self.set_step(ServeStep::SendResultHeader);
    }

    /// COMMAND_DATA is in and valid (its crc given); acknowledge it.
    fn command_data_received(&mut self, crc: u16) {
        self.turn.committed_crc = crc;
        self.set_tx(&wire::empty_packet(MAGIC_COMMAND_DATA));
        self.set_step(ServeStep::SendCommandDataAck);
    }
}
