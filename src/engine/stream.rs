//! The stream reader and writer (PROTOCOL.md, "Streams"): STREAM_SETUP, then frames under the
//! writer's credit rule, each acked by the next byte of the LFSR. No retries: any error or
//! timeout ends the stream.

use super::{
    Action, Buffer, Engine, IoStatus, Op, Packet, Reason, RecvInto, SendFrom, Status, Step,
};
use crate::wire::{self, AckLfsr, StreamHeaderRepr, StreamSetupRepr, U32_PACKET_LEN};

/// The steps of the stream reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReaderStep {
    SendStreamSetup,
    RecvStreamHeader,
    RecvStreamFrame,
    Deliver,
    SendStreamAck,
}

/// The steps of the stream writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WriterStep {
    RecvStreamSetup,
    RecvStreamAck,
    Produce,
    SendStreamHeader,
    SendStreamFrame,
}

/// What only a stream keeps.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct StreamState {
    /// read_timeout_ms (reader) or write_timeout_ms (writer) for raw frames.
    frame_timeout: u32,
    queue_depth: u32,
    credits: u32,
    /// The next ack byte, sent (reader) or expected (writer).
    pub(super) lfsr: AckLfsr,
}

impl<B: Buffer> Engine<B> {
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
        self.begin_op(Step::Flush(Op::StreamReader), now);
        self.stream.frame_timeout = read_timeout_ms;
        self.stream.queue_depth = queue_depth;
        self.set_tx(&StreamSetupRepr { queue_depth }.to_bytes());
        Status::Ok
    }

    /// Stream writer: wait for STREAM_SETUP, then send frames (PRODUCE) under the credit
    /// rule until an error, a timeout, a bad ack byte, or the caller stops at PRODUCE.
    pub fn stream_writer_start(&mut self, write_timeout_ms: u32, now: u32) -> Status {
        if self.is_busy() {
            return Status::Busy;
        }
        self.begin_op(WriterStep::RecvStreamSetup.into(), now);
        self.stream.frame_timeout = write_timeout_ms;
        Status::Ok
    }

    pub(super) fn reader_action(&self, step: ReaderStep) -> Action {
        let wait = self.config.stream_timeout_ms;
        let frame = self.stream.frame_timeout;
        match step {
            ReaderStep::SendStreamSetup => {
                Action::Send { packet: Packet::StreamSetup, timeout_ms: wait, from: SendFrom::Tx }
            }
            ReaderStep::SendStreamAck => {
                Action::Send { packet: Packet::StreamAck, timeout_ms: wait, from: SendFrom::Tx }
            }
            ReaderStep::RecvStreamHeader => Action::Recv {
                packet: Packet::StreamHeader,
                timeout_ms: wait,
                len: U32_PACKET_LEN,
                packet_len: U32_PACKET_LEN,
                into: RecvInto::Rx(0),
            },
            ReaderStep::RecvStreamFrame => Action::Recv {
                packet: Packet::StreamFrame,
                timeout_ms: frame,
                len: self.data_len as usize,
                packet_len: self.data_len as usize,
                into: RecvInto::Caller(0),
            },
            ReaderStep::Deliver => Action::Deliver,
        }
    }

    pub(super) fn writer_action(&self, step: WriterStep) -> Action {
        let wait = self.config.stream_timeout_ms;
        let frame = self.stream.frame_timeout;
        match step {
            WriterStep::RecvStreamSetup => Action::Recv {
                packet: Packet::StreamSetup,
                timeout_ms: wait,
                len: U32_PACKET_LEN,
                packet_len: U32_PACKET_LEN,
                into: RecvInto::Rx(0),
            },
            WriterStep::RecvStreamAck => Action::Recv {
                packet: Packet::StreamAck,
                timeout_ms: wait,
                len: 1,
                packet_len: 1,
                into: RecvInto::Rx(0),
            },
            WriterStep::Produce => Action::Produce,
            WriterStep::SendStreamHeader => {
                Action::Send { packet: Packet::StreamHeader, timeout_ms: wait, from: SendFrom::Tx }
            }
            WriterStep::SendStreamFrame => Action::Send {
                packet: Packet::StreamFrame,
                timeout_ms: frame,
                from: SendFrom::Outgoing,
            },
        }
    }

    pub(super) fn reader_complete(&mut self, step: ReaderStep, status: IoStatus, buf: Option<B>) {
        match step {
            ReaderStep::SendStreamSetup => {
                if self.sent(status, Packet::StreamSetup) {
                    self.set_step(ReaderStep::RecvStreamHeader);
                } else {
                    self.stream_failed();
                }
            }
            ReaderStep::RecvStreamHeader => {
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
                self.set_step(if header.frame_len == 0 {
                    ReaderStep::Deliver
                } else {
                    ReaderStep::RecvStreamFrame
                });
            }
            ReaderStep::RecvStreamFrame => {
                if !self.received(status, Packet::StreamFrame) {
                    return self.stream_failed();
                }
                match buf {
                    Some(frame) if frame.as_ref().len() == self.data_len as usize => {
                        self.stats.packets_received += 1;
                        self.incoming = Some(frame);
                        self.set_step(ReaderStep::Deliver);
                    }
                    _ => self.finish(Status::BadBuffer),
                }
            }
            ReaderStep::Deliver => {
                if status == IoStatus::Ok {
                    self.stats.stream_frames += 1;
                    let ack = self.stream.lfsr.0;
                    self.stream.lfsr.advance();
                    self.set_tx(&[ack]);
                    self.set_step(ReaderStep::SendStreamAck);
                } else {
                    self.set_failure(Packet::StreamFrame, Reason::None);
                    self.finish(Status::StreamStopped);
                }
            }
            ReaderStep::SendStreamAck => {
                if self.sent(status, Packet::StreamAck) {
                    self.set_step(ReaderStep::RecvStreamHeader);
                } else {
                    self.stream_failed();
                }
            }
        }
    }

    pub(super) fn writer_complete(&mut self, step: WriterStep, status: IoStatus, buf: Option<B>) {
        match step {
            WriterStep::RecvStreamSetup => {
                if !self.received(status, Packet::StreamSetup) {
                    return self.stream_failed();
                }
                let Some(setup) = self.parse_rx(Packet::StreamSetup, |rx| {
                    StreamSetupRepr::parse(&wire::Packet::new_unchecked(&rx[..U32_PACKET_LEN]))
                }) else {
                    return self.finish(Status::StreamBadPacket);
                };
                self.stream.queue_depth = setup.queue_depth.min(self.config.max_queue_depth).max(1);
                self.stream.credits = self.stream.queue_depth;
                self.next_frame();
            }
            WriterStep::RecvStreamAck => {
                if !self.received(status, Packet::StreamAck) {
                    return self.stream_failed();
                }
                if self.rx[0] != self.stream.lfsr.0 {
                    self.set_failure(Packet::StreamAck, Reason::None);
                    return self.finish(Status::StreamBadAck);
                }
                self.stats.packets_received += 1;
                self.stream.lfsr.advance();
                self.stream.credits += 1;
                self.set_step(WriterStep::Produce);
            }
            WriterStep::Produce => {
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
                self.set_step(WriterStep::SendStreamHeader);
            }
            WriterStep::SendStreamHeader => {
                if !self.sent(status, Packet::StreamHeader) {
                    return self.stream_failed();
                }
                if self.data_len == 0 {
                    self.frame_sent();
                } else {
                    self.set_step(WriterStep::SendStreamFrame);
                }
            }
            WriterStep::SendStreamFrame => {
                if self.sent(status, Packet::StreamFrame) {
                    self.frame_sent();
                } else {
                    self.stream_failed();
                }
            }
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

    /// The credit rule: read an ack when credits are down to half the depth, else produce.
    fn next_frame(&mut self) {
        self.set_step(if self.stream.credits <= self.stream.queue_depth / 2 {
            WriterStep::RecvStreamAck
        } else {
            WriterStep::Produce
        });
    }

    fn frame_sent(&mut self) {
        self.stream.credits = self.stream.credits.saturating_sub(1);
        self.stats.stream_frames += 1;
        self.next_frame();
    }
}
