//! The host role (what a PC runs), as the `openmv` package behaves (transport.py, camera.py):
//! one command at a time, no ACK asked for commands; every packet of the answer that asks for
//! an ACK gets one; a retransmitted packet already taken (RTX with an old sequence) is ACKed
//! again and skipped; fragments are handed out as they come; a NAK ends the command with its
//! status. A timeout is the caller's cue to resync (`sync`), as the package does.

use crate::rx::RxBuf;
use crate::wire::{self, flags, opcode, Header, Status, HEADER_SIZE, MAX_PACKET_SIZE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostConfig {
    pub crc: bool,
    pub seq: bool,
    /// The largest payload accepted (and sent).
    pub max_payload: u16,
    /// How long to wait for the next packet of an answer.
    pub timeout_ms: u32,
}

impl Default for HostConfig {
    fn default() -> HostConfig {
        HostConfig { crc: true, seq: true, max_payload: wire::HOST_RESYNC_PAYLOAD_SIZE, timeout_ms: 1000 }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum HostAction<'a> {
    Idle,
    Transmit(&'a [u8]),
    /// An event: the channel, and the event number (`event::NOTIFY` when it had no payload).
    Event { channel: u8, event: u16 },
    /// A piece of the answer; more follow.
    Fragment(&'a [u8]),
    /// The last (or only) piece of the answer; empty for a plain ACK.
    Response(&'a [u8]),
    /// The command was refused.
    Nak(Status),
    /// No answer (or no next fragment) within the timeout.
    Timeout,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostError {
    Busy,
    TooLarge,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    pub sent: u32,
    pub received: u32,
    pub checksum: u32,
    pub sequence: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    Event(u8, u16),
    Fragment(usize),
    Response(usize),
    Nak(Status),
}

pub struct Host {
    cfg: HostConfig,
    sequence: u8,
    rx: RxBuf,
    tx: [u8; MAX_PACKET_SIZE],
    tx_len: usize,
    tx_pending: bool,
    ack: [u8; HEADER_SIZE],
    ack_pending: bool,
    held: Option<Held>,
    held_len: usize,
    consume_next: usize,
    waiting: bool,
    deadline: u64,
    command_opcode: u8,
    stats: HostStats,
}

impl Host {
    pub fn new(cfg: HostConfig) -> Host {
        Host {
            cfg,
            sequence: 0,
            rx: RxBuf::new(),
            tx: [0; MAX_PACKET_SIZE],
            tx_len: 0,
            tx_pending: false,
            ack: [0; HEADER_SIZE],
            ack_pending: false,
            held: None,
            held_len: 0,
            consume_next: 0,
            waiting: false,
            deadline: 0,
            command_opcode: 0,
            stats: HostStats::default(),
        }
    }

    pub fn config(&self) -> &HostConfig {
        &self.cfg
    }
    pub fn stats(&self) -> &HostStats {
        &self.stats
    }
    pub fn sequence(&self) -> u8 {
        self.sequence
    }
    pub fn is_waiting(&self) -> bool {
        self.waiting
    }
    pub fn receive(&mut self, bytes: &[u8]) -> usize {
        self.rx.push(bytes)
    }
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.waiting {
            Some(self.deadline)
        } else {
            None
        }
    }

    /// The capabilities agreed with SET_CAPS (after its ACK).
    pub fn update_caps(&mut self, crc: bool, seq: bool, max_payload: u16) {
        self.cfg.crc = crc;
        self.cfg.seq = seq;
        self.cfg.max_payload = max_payload;
    }

    /// Starts over as the package's `_resync` does: the defaults (CRC and sequence on, 52-byte
    /// payloads), sequence 0, nothing buffered, and a PROTO_SYNC command.
    pub fn sync(&mut self, now: u64) {
        self.cfg.crc = true;
        self.cfg.seq = true;
        self.cfg.max_payload = wire::HOST_RESYNC_PAYLOAD_SIZE;
        self.rx.clear();
        self.held = None;
        self.consume_next = 0;
        self.ack_pending = false;
        self.waiting = false;
        self.sequence = 0;
        let _ = self.command(now, opcode::PROTO_SYNC, 0, &[]);
    }

    /// Sends a command (flags 0, the current sequence) and waits for its answer.
    pub fn command(&mut self, now: u64, op: u8, chan: u8, payload: &[u8]) -> Result<(), HostError> {
        if self.waiting || self.tx_pending {
            return Err(HostError::Busy);
        }
        if payload.len() > self.cfg.max_payload as usize {
            return Err(HostError::TooLarge);
        }
        let h = Header { sequence: self.sequence, channel: chan, flags: 0, opcode: op, length: 0 };
        self.tx_len = wire::emit_packet(&mut self.tx, h, payload, self.cfg.crc).ok_or(HostError::TooLarge)?;
        self.tx_pending = true;
        self.waiting = true;
        self.command_opcode = op;
        self.deadline = now + self.cfg.timeout_ms as u64;
        Ok(())
    }

    /// Gives up the command in progress (the caller timed out on its own).
    pub fn abandon(&mut self) {
        self.waiting = false;
    }

    fn queue_ack(&mut self, h: &Header, sequence: u8) {
        let a = Header { sequence, channel: h.channel, flags: flags::ACK, opcode: h.opcode, length: 0 };
        a.emit(&mut self.ack, self.cfg.crc);
        self.ack_pending = true;
        self.stats.sent += 1;
    }

    pub fn poll(&mut self, now: u64) -> HostAction<'_> {
        if self.consume_next > 0 {
            self.rx.consume(self.consume_next);
            self.consume_next = 0;
        }
        if self.ack_pending {
            self.ack_pending = false;
            return HostAction::Transmit(&self.ack);
        }
        if self.tx_pending {
            self.tx_pending = false;
            self.stats.sent += 1;
            return HostAction::Transmit(&self.tx[..self.tx_len]);
        }
        if self.held.is_none() {
            self.parse(now);
            if self.ack_pending {
                self.ack_pending = false;
                return HostAction::Transmit(&self.ack);
            }
        }
        if let Some(held) = self.held.take() {
            self.consume_next = self.held_len;
            let b = self.rx.bytes();
            let payload = |len: usize| &b[HEADER_SIZE..HEADER_SIZE + len];
            return match held {
                Held::Event(channel, event) => HostAction::Event { channel, event },
                Held::Fragment(len) => HostAction::Fragment(payload(len)),
                Held::Response(len) => HostAction::Response(payload(len)),
                Held::Nak(s) => HostAction::Nak(s),
            };
        }
        if self.waiting && now >= self.deadline {
            self.waiting = false;
            return HostAction::Timeout;
        }
        HostAction::Idle
    }

    fn seq_ok(&self, h: &Header) -> bool {
        !self.cfg.seq
            || h.flags & (flags::EVENT | flags::RTX) != 0
            || h.sequence == self.sequence
            || h.opcode == opcode::PROTO_SYNC
    }

    /// Finds the next whole packet (the package's `_process`) and decides what it is.
    fn parse(&mut self, now: u64) {
        loop {
            self.rx.skip_to_sync();
            let b = self.rx.bytes();
            if b.len() < HEADER_SIZE {
                return;
            }
            let h = match Header::parse(b, self.cfg.crc) {
                Ok(h) if h.length <= self.cfg.max_payload && self.seq_ok(&h) => h,
                Ok(h) => {
                    if h.length <= self.cfg.max_payload {
                        self.stats.sequence += 1;
                    }
                    self.rx.consume(1);
                    continue;
                }
                Err(_) => {
                    self.rx.consume(1);
                    continue;
                }
            };
            let n = h.packet_len();
            if b.len() < n {
                return;
            }
            if h.length > 0 && self.cfg.crc && !wire::payload_crc_ok(&b[HEADER_SIZE..n]) {
                self.stats.checksum += 1;
                self.rx.consume(1);
                continue;
            }
            self.stats.received += 1;
            let len = h.length as usize;
            let first16 = if len >= 2 { Some(u16::from_le_bytes([b[HEADER_SIZE], b[HEADER_SIZE + 1]])) } else { None };
            if h.flags & flags::RTX != 0 && h.sequence != self.sequence {
                // Taken before: its ACK was lost.
                if h.flags & flags::ACK_REQ != 0 {
                    self.queue_ack(&h, h.sequence);
                }
                self.rx.consume(n);
                if self.ack_pending {
                    return;
                }
                continue;
            }
            if h.flags & flags::ACK_REQ != 0 {
                self.queue_ack(&h, self.sequence);
            }
            self.held_len = n;
            if h.flags & flags::EVENT != 0 {
                let ev = first16.unwrap_or(wire::event::NOTIFY);
                self.held = Some(Held::Event(h.channel, ev));
                if self.waiting {
                    self.deadline = now + self.cfg.timeout_ms as u64;
                }
                return;
            }
            self.sequence = self.sequence.wrapping_add(1);
            if h.flags & flags::FRAGMENT != 0 {
                self.held = Some(Held::Fragment(len));
                self.deadline = now + self.cfg.timeout_ms as u64;
                return;
            }
            self.waiting = false;
            if self.command_opcode == opcode::PROTO_SYNC {
                self.sequence = 0;
            }
            if h.flags & flags::NAK != 0 {
                let st = first16.unwrap_or(Status::Unknown as u16);
                self.held = Some(Held::Nak(Status::from_u16(st)));
            } else {
                self.held = Some(Held::Response(len));
            }
            return;
        }
    }
}
