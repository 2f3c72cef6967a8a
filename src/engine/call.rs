//! The master's call (PROTOCOL.md, "One call"): COMMAND_HEADER, COMMAND_DATA, then the
//! RESULT_HEADER and RESULT_DATA requests, each phase a loop of attempts (timing.rs), with the
//! recovery rules of a master: late and second acks read, COMMAND_DATA sent again alone, a late
//! RESULT_DATA read where the RESULT_HEADER is due.

use super::{
    payload_len, pipeline, Action, Buffer, Engine, IoStatus, Op, Packet, Phase, RecvInto, SendFrom,
    Status, Step,
};
use crate::wire::{
    self, ResultHeaderRepr, EMPTY_PACKET_LEN, MAGIC_COMMAND_DATA, MAGIC_COMMAND_HEADER,
    MAGIC_RESULT_DATA, MAGIC_RESULT_HEADER, PACKET_OVERHEAD, U32_PACKET_LEN,
};

/// The steps of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CallStep {
    SendCommandHeader,
    RecvCommandHeaderAck,
    SendCommandData,
    RecvCommandDataAck,
    SendResultHeaderRequest,
    RecvResultHeader,
    /// The second half of RESULT_HEADER, after a stray ack was found in its first half.
    RecvResultHeaderRest,
    SendResultDataRequest,
    /// The first 4 bytes of what comes where RESULT_DATA is due (split reads): RESULT_DATA,
    /// or a second RESULT_HEADER (the answers to a late and a repeated request, back to back).
    RecvResultDataHead,
    /// The last 4 bytes of that second RESULT_HEADER, checked and skipped.
    RecvStrayResultHeaderRest,
    RecvResultData,
}

/// What only a call keeps (reset with each phase or attempt).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct CallState {
    /// COMMAND_DATA went out in this phase (a COMMAND_DATA ack is then the slave's commit,
    /// whenever it comes); and again alone in this attempt.
    pub(super) command_data_sent: bool,
    pub(super) command_data_resent: bool,
    /// A RESULT_HEADER came in this phase (data_len holds its length); the RESULT_DATA being
    /// read was found where a RESULT_HEADER was due (its first 4 bytes are in rx).
    pub(super) result_len_known: bool,
    pub(super) late_result_data: bool,
}

impl<B: Buffer> Engine<B> {
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
        self.begin_op(CallStep::SendCommandHeader.into(), now);
        self.outgoing = Some(command_data_packet);
        self.name_hash = name_hash;
        self.data_len = argument_len;
        self.result_phase_timeout = recv_timeout_ms;
        self.start_phase(Phase::Command, send_timeout_ms, now);
        Status::Ok
    }

    /// Master: the result length of the call that just ended OK (0 otherwise).
    pub fn result_len(&self) -> u32 {
        if self.step == Step::Done(Op::Call) && self.status == Status::Ok {
            self.data_len
        } else {
            0
        }
    }

    /// Master: the result of the call that just ended OK.
    pub fn result(&self) -> Option<&[u8]> {
        if self.step != Step::Done(Op::Call) || self.status != Status::Ok {
            return None;
        }
        let packet = self.incoming.as_ref()?.as_ref();
        wire::Packet::new_checked(packet).ok().map(wire::Packet::into_payload)
    }

    pub(super) fn call_action(&self, step: CallStep) -> Action {
        let short = self.short_timeout;
        let long = self.config.long_timeout_ms;
        let send = |packet, timeout_ms, from| Action::Send { packet, timeout_ms, from };
        let recv = |packet, timeout_ms, len, packet_len, into| Action::Recv {
            packet,
            timeout_ms,
            len,
            packet_len,
            into,
        };
        let data_packet_len = self.data_len as usize + PACKET_OVERHEAD;
        match step {
            CallStep::SendCommandHeader => send(Packet::CommandHeader, short, SendFrom::Tx),
            CallStep::SendCommandData => send(Packet::CommandData, long, SendFrom::Outgoing),
            CallStep::SendResultHeaderRequest => send(Packet::ResultHeader, short, SendFrom::Tx),
            CallStep::SendResultDataRequest => send(Packet::ResultData, short, SendFrom::Tx),
            CallStep::RecvCommandHeaderAck => {
                let len = EMPTY_PACKET_LEN;
                recv(Packet::CommandHeader, short, len, len, RecvInto::Rx(0))
            }
            CallStep::RecvCommandDataAck => {
                let len = EMPTY_PACKET_LEN;
                recv(Packet::CommandData, self.reply_wait_ms, len, len, RecvInto::Rx(0))
            }
            CallStep::RecvResultHeader => {
                let len =
                    if self.config.split_reads != 0 { EMPTY_PACKET_LEN } else { U32_PACKET_LEN };
                recv(Packet::ResultHeader, short, len, U32_PACKET_LEN, RecvInto::Rx(0))
            }
            CallStep::RecvResultHeaderRest => recv(
                Packet::ResultHeader,
                short,
                U32_PACKET_LEN - EMPTY_PACKET_LEN,
                U32_PACKET_LEN,
                RecvInto::Rx(EMPTY_PACKET_LEN),
            ),
            CallStep::RecvResultDataHead => {
                let len = EMPTY_PACKET_LEN;
                recv(Packet::ResultData, self.reply_wait_ms, len, data_packet_len, RecvInto::Rx(0))
            }
            CallStep::RecvStrayResultHeaderRest => recv(
                Packet::ResultHeader,
                short,
                U32_PACKET_LEN - EMPTY_PACKET_LEN,
                U32_PACKET_LEN,
                RecvInto::Rx(EMPTY_PACKET_LEN),
            ),
            CallStep::RecvResultData => {
                let prefix = if self.call.late_result_data { EMPTY_PACKET_LEN } else { 0 };
                let len = data_packet_len;
                recv(Packet::ResultData, long, len, len, RecvInto::Caller(prefix))
            }
        }
    }

    pub(super) fn call_complete(
        &mut self,
        step: CallStep,
        now: u32,
        status: IoStatus,
        buf: Option<B>,
    ) {
        match step {
            // Phase 1.
            CallStep::SendCommandHeader => {
                if self.sent(status, Packet::CommandHeader) {
                    self.set_step(if self.pipelined(pipeline::COMMAND_DATA) {
                        CallStep::SendCommandData
                    } else {
                        CallStep::RecvCommandHeaderAck
                    });
                } else {
                    self.attempt_failed(now);
                }
            }
            CallStep::RecvCommandHeaderAck => {
                if self.received_packet(
                    status,
                    MAGIC_COMMAND_HEADER,
                    EMPTY_PACKET_LEN,
                    Packet::CommandHeader,
                ) {
                    self.set_step(if self.pipelined(pipeline::COMMAND_DATA) {
                        CallStep::RecvCommandDataAck
                    } else {
                        CallStep::SendCommandData
                    });
                } else if self.call.command_data_sent
                    && self.received_empty(status, MAGIC_COMMAND_DATA)
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
            CallStep::SendCommandData => {
                if self.sent(status, Packet::CommandData) {
                    self.call.command_data_sent = true;
                    self.reply_wait_ms = self.reply_wait(self.data_len as usize + PACKET_OVERHEAD);
                    self.set_step(if self.pipelined(pipeline::COMMAND_DATA) {
                        CallStep::RecvCommandHeaderAck
                    } else {
                        CallStep::RecvCommandDataAck
                    });
                } else {
                    self.attempt_failed(now);
                }
            }
            CallStep::RecvCommandDataAck => {
                if self.received_packet(
                    status,
                    MAGIC_COMMAND_DATA,
                    EMPTY_PACKET_LEN,
                    Packet::CommandData,
                ) {
                    self.command_committed(now);
                } else if self.received_empty(status, MAGIC_COMMAND_HEADER) {
                    // A second COMMAND_HEADER ack (the slave answered our repeated header
                    // twice): the COMMAND_DATA ack comes behind it.
                    self.stats.stray_replies += 1;
                } else if status == IoStatus::Timeout
                    && !self.call.command_data_resent
                    && !self.pipelined(pipeline::COMMAND_DATA)
                {
                    // COMMAND_DATA lost, or its ack: send it again alone. A slave still waiting
                    // for it takes it; one that has the command acks it again (ours) or sent
                    // its ack late (a reference slave, whose late ack is still read here).
                    self.call.command_data_resent = true;
                    self.stats.stray_replies += 1;
                    self.set_step(CallStep::SendCommandData);
                } else if status == IoStatus::Timeout {
                    self.attempt_timed_out(now);
                } else {
                    self.attempt_failed(now);
                }
            }
            // Phase 2.
            CallStep::SendResultHeaderRequest => {
                if !self.sent(status, Packet::ResultHeader) {
                    self.attempt_failed(now);
                } else if self.pipelined(pipeline::RESULT_DATA_REQUEST) {
                    self.set_tx(&wire::empty_packet(MAGIC_RESULT_DATA));
                    self.set_step(CallStep::SendResultDataRequest);
                } else {
                    self.set_step(CallStep::RecvResultHeader);
                }
            }
            CallStep::RecvResultHeader if self.config.split_reads != 0 => {
                // Its first 4 bytes: a RESULT_HEADER's, an ack the slave sent again for a
                // repeat of ours, or the RESULT_DATA of an earlier try that came late.
                let magic = if status == IoStatus::Ok { self.rx_magic() } else { 0 };
                if magic == MAGIC_RESULT_HEADER {
                    self.set_step(CallStep::RecvResultHeaderRest);
                } else if self.in_phase(now) && self.stray_ack_in_rx(status) {
                    self.stats.stray_replies += 1;
                } else if magic == MAGIC_RESULT_DATA && self.call.result_len_known {
                    self.stats.stray_replies += 1;
                    self.call.late_result_data = true;
                    self.set_step(CallStep::RecvResultData);
                } else {
                    self.received_result_header(status);
                    self.attempt_failed(now);
                }
            }
            CallStep::RecvResultHeader | CallStep::RecvResultHeaderRest => {
                let header = self.received_result_header(status);
                match header.and_then(|len| {
                    self.length_within(len, self.config.max_result_len, Packet::ResultHeader)
                }) {
                    Some(len) => {
                        self.data_len = len;
                        self.call.result_len_known = true;
                        self.call.late_result_data = false;
                        if self.pipelined(pipeline::RESULT_DATA_REQUEST) {
                            self.set_step(CallStep::RecvResultData);
                        } else {
                            self.set_tx(&wire::empty_packet(MAGIC_RESULT_DATA));
                            self.set_step(CallStep::SendResultDataRequest);
                        }
                    }
                    None => self.attempt_failed(now),
                }
            }
            CallStep::SendResultDataRequest => {
                if self.sent(status, Packet::ResultData) {
                    self.call.late_result_data = false;
                    self.reply_wait_ms = self.reply_wait(EMPTY_PACKET_LEN);
                    self.set_step(if self.pipelined(pipeline::RESULT_DATA_REQUEST) {
                        CallStep::RecvResultHeader
                    } else if self.config.split_reads != 0 {
                        CallStep::RecvResultDataHead
                    } else {
                        CallStep::RecvResultData
                    });
                } else {
                    self.attempt_failed(now);
                }
            }
            CallStep::RecvResultDataHead => {
                let magic = if status == IoStatus::Ok { self.rx_magic() } else { 0 };
                if magic == MAGIC_RESULT_DATA {
                    // Its first 4 bytes are in rx: the rest follows.
                    self.call.late_result_data = true;
                    self.set_step(CallStep::RecvResultData);
                } else if magic == MAGIC_RESULT_HEADER {
                    // A second RESULT_HEADER: the slave answered our repeated request as well
                    // as the late one. RESULT_DATA comes behind it (a reference slave sends it
                    // only once: the request must not be sent again).
                    self.set_step(CallStep::RecvStrayResultHeaderRest);
                } else if self.in_phase(now) && self.stray_ack_in_rx(status) {
                    self.stats.stray_replies += 1;
                } else if status == IoStatus::Timeout {
                    // As for RESULT_DATA below: it may still come; the retry keeps the input.
                    self.attempt_timed_out(now);
                } else {
                    if self.received(status, Packet::ResultData) {
                        self.wire_error(Packet::ResultData, wire::WireError::BadMagic);
                    }
                    self.attempt_failed(now);
                }
            }
            CallStep::RecvStrayResultHeaderRest => {
                if self.received_result_header(status) == Some(self.data_len) && self.in_phase(now)
                {
                    self.stats.stray_replies += 1;
                    self.set_step(CallStep::RecvResultDataHead);
                } else {
                    self.attempt_failed(now);
                }
            }
            CallStep::RecvResultData => {
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
        }
    }

    /// This request goes right behind the one before it ([`super::Config::pipeline`]).
    fn pipelined(&self, bit: u32) -> bool {
        self.config.pipeline & bit != 0 && self.role == super::Role::Master
    }

    /// The first 4 bytes in rx are an ack the slave sent again (COMMAND_HEADER or
    /// COMMAND_DATA), not the reply awaited.
    fn stray_ack_in_rx(&mut self, status: IoStatus) -> bool {
        self.received_empty(status, MAGIC_COMMAND_DATA)
            || self.received_empty(status, MAGIC_COMMAND_HEADER)
    }

    /// The slave has the command (its COMMAND_DATA ack came): the result phase.
    fn command_committed(&mut self, now: u32) {
        let t = self.result_phase_timeout;
        self.start_phase(Phase::Result, t, now);
    }

    /// The result length of a RESULT_HEADER in `rx`.
    fn received_result_header(&mut self, status: IoStatus) -> Option<u32> {
        if !self.received(status, Packet::ResultHeader) {
            return None;
        }
        self.parse_rx(Packet::ResultHeader, |rx| {
            ResultHeaderRepr::parse(&wire::Packet::new_unchecked(&rx[..U32_PACKET_LEN]))
        })
        .map(|p| p.result_len)
    }
}
