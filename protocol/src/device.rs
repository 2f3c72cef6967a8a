//! The device role (what the cam runs), as OpenMV's firmware behaves (protocol/omv_protocol.c):
//! it answers the host's commands one packet at a time, asks for an ACK of each packet it
//! sends when ACKs are on, retransmits with the RTX flag after a timeout that doubles each
//! time, gives up (and resets) when the retries run out, and recovers from a packet cut
//! short by finding a whole SYNC command behind it.
//!
//! Sans-IO: `receive` takes bytes, `poll(now_ms)` says what to do next. Protocol commands
//! (SYNC, GET/SET_CAPS, STATS, VERSION) are answered inside; system and channel commands are
//! handed out as a `Request`, answered with `respond` / `respond_status`.

use crate::rx::RxBuf;
use crate::wire::{self, channel, flags, opcode, Caps, Header, Stats, Status, HEADER_SIZE, MAX_PACKET_SIZE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub crc: bool,
    pub seq: bool,
    pub ack: bool,
    pub events: bool,
    pub max_payload: u16,
    pub rtx_retries: u16,
    /// The first retransmission timeout; doubled after each one.
    pub rtx_timeout_ms: u32,
    /// protocol_version, bootloader_version, firmware_version (PROTO_VERSION).
    pub version: [u8; 9],
}

impl Default for Config {
    /// The firmware's defaults (omv_protocol_init_default); protocol 1.0.2, firmware 5.0.0.
    fn default() -> Config {
        Config {
            crc: true,
            seq: true,
            ack: true,
            events: true,
            max_payload: wire::MAX_PAYLOAD_SIZE,
            rtx_retries: 3,
            rtx_timeout_ms: 500,
            version: [1, 0, 2, 1, 0, 0, 5, 0, 0],
        }
    }
}

/// A system or channel command for the application. Slices point into the receive buffer
/// and stay valid until the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    SysReset,
    SysBoot,
    SysInfo,
    SysMemory,
    ChannelList,
    ChannelPoll,
    Lock { channel: u8 },
    Unlock { channel: u8 },
    Shape { channel: u8 },
    Size { channel: u8 },
    Read { channel: u8, offset: u32, length: u32 },
    Write { channel: u8, offset: u32, data: &'a [u8] },
    Ioctl { channel: u8, cmd: u32, arg: &'a [u8] },
}

#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Nothing to do until more bytes come or `poll_timeout()` passes.
    Idle,
    /// Write these bytes to the transport.
    Transmit(&'a [u8]),
    /// Answer this with `respond` (data) or `respond_status`.
    Request(Request<'a>),
    /// The last piece of the answer was delivered: give the next one (`respond`).
    More,
    /// The link was reset (a SYNC from the host, or retransmissions ran out): an answer in
    /// progress is dropped; locks are released, as the firmware does.
    Reset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// No request is waiting for an answer (or an answer is still in flight).
    NotExpected,
    /// A packet is in flight: try again after it.
    Busy,
    /// Events are off (SET_CAPS) .
    Disabled,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tx {
    Free,
    /// Built, not yet handed out.
    Pending,
    /// Handed out; waiting for its ACK.
    AwaitAck,
    /// Handed out, no ACK asked: done at the next poll.
    Sent,
}

pub struct Device {
    cfg: Config,
    default_cfg: Config,
    sequence: u8,
    rx: RxBuf,
    tx: [u8; MAX_PACKET_SIZE],
    tx_len: usize,
    tx_state: Tx,
    /// Whether the packet in tx advances the sequence (not events, not the SYNC ACK).
    tx_counts: bool,
    /// Whether more of the current answer follows the packet in tx.
    tx_more: bool,
    ack_deadline: u64,
    ack_timeout: u32,
    ack_retries: u16,
    /// The request handed out (opcode, channel), until it is answered in full.
    request: Option<(u8, u8)>,
    /// Receive-buffer bytes of the request handed out, consumed when it is answered.
    request_len: usize,
    want_more: bool,
    reset_pending: bool,
    stats: Stats,
}

impl Device {
    pub fn new(cfg: Config) -> Device {
        Device {
            cfg,
            default_cfg: cfg,
            sequence: 0,
            rx: RxBuf::new(),
            tx: [0; MAX_PACKET_SIZE],
            tx_len: 0,
            tx_state: Tx::Free,
            tx_counts: false,
            tx_more: false,
            ack_deadline: 0,
            ack_timeout: 0,
            ack_retries: 0,
            request: None,
            request_len: 0,
            want_more: false,
            reset_pending: false,
            stats: Stats::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn max_payload(&self) -> usize {
        self.cfg.max_payload as usize
    }
    pub fn sequence(&self) -> u8 {
        self.sequence
    }
    /// Counts a failed transport write (PROTO_STATS `transport`).
    pub fn transport_error(&mut self) {
        self.stats.transport_errors += 1;
    }

    /// Takes received bytes; returns how many fitted (the rest must be offered again).
    pub fn receive(&mut self, bytes: &[u8]) -> usize {
        self.rx.push(bytes)
    }
    pub fn rx_free(&self) -> usize {
        self.rx.free()
    }

    /// When `poll` must be called again even if no byte comes (an ACK deadline).
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.tx_state {
            Tx::AwaitAck => Some(self.ack_deadline),
            _ => None,
        }
    }

    /// Back to the state after init: sequence 0, the configured capabilities, nothing buffered.
    fn reset(&mut self) {
        self.sequence = 0;
        self.cfg = self.default_cfg;
        self.rx.clear();
        self.tx_state = Tx::Free;
        self.request = None;
        self.request_len = 0;
        self.want_more = false;
        self.reset_pending = true;
    }

    fn build(&mut self, op: u8, chan: u8, mut fl: u8, payload: &[u8], counts: bool) {
        if !self.cfg.ack {
            fl &= !flags::ACK_REQ;
        } else if fl & flags::NO_ACK == 0 {
            fl |= flags::ACK_REQ;
        }
        let h = Header { sequence: self.sequence, channel: chan, flags: fl, opcode: op, length: 0 };
        self.tx_len = wire::emit_packet(&mut self.tx, h, payload, self.cfg.crc).unwrap_or(0);
        self.tx_state = Tx::Pending;
        self.tx_counts = counts;
        self.ack_timeout = self.cfg.rtx_timeout_ms;
        self.ack_retries = self.cfg.rtx_retries;
    }

    fn tx_header(&self) -> Header {
        Header::parse(&self.tx[..HEADER_SIZE], false).unwrap()
    }

    fn send_status(&mut self, op: u8, chan: u8, status: Status) {
        match status {
            Status::Sequence => self.stats.sequence_errors += 1,
            Status::Checksum => self.stats.checksum_errors += 1,
            _ => {}
        }
        if status == Status::Success {
            self.build(op, chan, flags::ACK, &[], true);
        } else {
            self.build(op, chan, flags::NAK, &(status as u16).to_le_bytes(), true);
        }
        self.tx_more = false;
    }

    /// Answers the request (or continues the answer after `More`) with data. Takes at most
    /// `max_payload()` bytes and returns how many it took; the packet carries FRAGMENT when
    /// `more` is set or not all was taken, and `More` asks for the rest once it is delivered.
    pub fn respond(&mut self, data: &[u8], more: bool) -> Result<usize, ApiError> {
        let (op, chan) = self.request.ok_or(ApiError::NotExpected)?;
        if self.tx_state != Tx::Free || self.want_more {
            return Err(ApiError::NotExpected);
        }
        self.take_request_bytes();
        let n = data.len().min(self.max_payload());
        let frag = more || n < data.len();
        self.build(op, chan, if frag { flags::FRAGMENT } else { 0 }, &data[..n], true);
        self.tx_more = frag;
        if !frag {
            self.request = None;
        }
        Ok(n)
    }

    /// Answers the request with an ACK (Success) or a NAK carrying the status.
    pub fn respond_status(&mut self, status: Status) -> Result<(), ApiError> {
        let (op, chan) = self.request.ok_or(ApiError::NotExpected)?;
        if self.tx_state != Tx::Free || self.want_more {
            return Err(ApiError::NotExpected);
        }
        self.take_request_bytes();
        self.send_status(op, chan, status);
        self.request = None;
        Ok(())
    }

    fn take_request_bytes(&mut self) {
        self.rx.consume(self.request_len);
        self.request_len = 0;
    }

    /// Sends an event (SYS_EVENT on channel 0, CHANNEL_EVENT otherwise); `event::NOTIFY`
    /// carries no payload. Events do not advance the sequence.
    pub fn send_event(&mut self, chan: u8, event: u16, wait_ack: bool) -> Result<(), ApiError> {
        if !self.cfg.events {
            return Err(ApiError::Disabled);
        }
        if self.tx_state != Tx::Free || self.request.is_some() {
            return Err(ApiError::Busy);
        }
        let op = if chan == 0 { opcode::SYS_EVENT } else { opcode::CHANNEL_EVENT };
        let fl = flags::EVENT | if wait_ack { flags::ACK_REQ } else { 0 };
        let ev = event.to_le_bytes();
        let payload: &[u8] = if event == wire::event::NOTIFY { &[] } else { &ev };
        self.stats.sent_events += 1;
        // EVENT is one of the NO_ACK flags: it asks for an ACK only when told to.
        self.build(op, chan, fl, payload, false);
        self.tx_more = false;
        Ok(())
    }

    fn finish_packet(&mut self) {
        self.tx_state = Tx::Free;
        if self.tx_counts {
            self.sequence = self.sequence.wrapping_add(1);
            self.stats.sent_packets += 1;
        }
        if self.tx_more {
            self.tx_more = false;
            self.want_more = true;
        }
    }

    fn retransmit(&mut self, now: u64) -> bool {
        if self.ack_retries == 0 {
            return false;
        }
        self.ack_retries -= 1;
        self.ack_timeout = self.ack_timeout.saturating_mul(2);
        self.stats.retransmit += 1;
        if self.cfg.crc && self.tx[4] & flags::RTX == 0 {
            self.tx[4] |= flags::RTX;
            let c = crate::crc::crc16(&self.tx[..8]);
            self.tx[8..10].copy_from_slice(&c.to_le_bytes());
        }
        self.ack_deadline = now + self.ack_timeout as u64;
        self.tx_state = Tx::Pending;
        true
    }

    fn is_sync_command(&self, b: &[u8]) -> bool {
        match Header::parse(b, self.cfg.crc) {
            Ok(h) => h.opcode == opcode::PROTO_SYNC && h.channel == 0 && h.length == 0,
            Err(_) => false,
        }
    }

    fn process_sync(&mut self) {
        self.reset();
        self.stats.recv_packets += 1;
        // The SYNC ACK goes out with sequence 0 and the sequence stays 0 after it.
        self.build(opcode::PROTO_SYNC, 0, flags::ACK, &[], false);
        self.stats.sent_packets += 1;
        self.tx_more = false;
    }

    pub fn poll(&mut self, now: u64) -> Action<'_> {
        loop {
            match self.tx_state {
                Tx::Pending => {
                    let wait = self.tx[4] & flags::ACK_REQ != 0;
                    self.tx_state = if wait { Tx::AwaitAck } else { Tx::Sent };
                    if wait {
                        self.ack_deadline = now + self.ack_timeout as u64;
                    }
                    return Action::Transmit(&self.tx[..self.tx_len]);
                }
                Tx::Sent => {
                    self.finish_packet();
                    continue;
                }
                Tx::AwaitAck => match self.scan_for_ack() {
                    AckScan::Acked => {
                        self.finish_packet();
                        continue;
                    }
                    AckScan::Nacked => {
                        if !self.retransmit(now) {
                            self.reset();
                        }
                        continue;
                    }
                    AckScan::Sync => {
                        self.process_sync();
                        continue;
                    }
                    AckScan::Nothing => {
                        if now >= self.ack_deadline {
                            if !self.retransmit(now) {
                                self.reset();
                            }
                            continue;
                        }
                        return Action::Idle;
                    }
                },
                Tx::Free => {}
            }
            if self.reset_pending {
                self.reset_pending = false;
                return Action::Reset;
            }
            if self.want_more {
                self.want_more = false;
                return Action::More;
            }
            if self.request.is_some() {
                return Action::Idle;
            }
            match self.parse() {
                Parsed::Again => continue,
                Parsed::NeedMore => return Action::Idle,
                Parsed::Request => break,
            }
        }
        // The request's packet sits at the front of the receive buffer until it is answered.
        let b = self.rx.bytes();
        let h = Header::parse(b, false).unwrap();
        let p = &b[HEADER_SIZE..HEADER_SIZE + h.length as usize];
        let c = h.channel;
        let r = match h.opcode {
            opcode::SYS_RESET => Request::SysReset,
            opcode::SYS_BOOT => Request::SysBoot,
            opcode::SYS_INFO => Request::SysInfo,
            opcode::SYS_MEMORY => Request::SysMemory,
            opcode::CHANNEL_LIST => Request::ChannelList,
            opcode::CHANNEL_POLL => Request::ChannelPoll,
            opcode::CHANNEL_LOCK => Request::Lock { channel: c },
            opcode::CHANNEL_UNLOCK => Request::Unlock { channel: c },
            opcode::CHANNEL_SHAPE => Request::Shape { channel: c },
            opcode::CHANNEL_SIZE => Request::Size { channel: c },
            opcode::CHANNEL_READ => {
                let (offset, length) = wire::parse_channel_io(p).unwrap();
                Request::Read { channel: c, offset, length }
            }
            opcode::CHANNEL_WRITE => {
                let (offset, length) = wire::parse_channel_io(p).unwrap();
                Request::Write { channel: c, offset, data: &p[8..8 + length as usize] }
            }
            _ => Request::Ioctl { channel: c, cmd: wire::parse_u32(p).unwrap(), arg: &p[4..] },
        };
        Action::Request(r)
    }

    fn scan_for_ack(&mut self) -> AckScan {
        let want = self.tx_header();
        let b = self.rx.bytes();
        if b.len() < HEADER_SIZE {
            return AckScan::Nothing;
        }
        for i in 0..=b.len() - HEADER_SIZE {
            let w = &b[i..i + HEADER_SIZE];
            if self.is_sync_command(w) {
                return AckScan::Sync;
            }
            if let Ok(h) = Header::parse(w, self.cfg.crc) {
                if h.flags & (flags::ACK | flags::NAK) != 0
                    && h.opcode == want.opcode
                    && h.sequence == want.sequence
                {
                    let acked = h.flags & flags::ACK != 0;
                    // Skip the ACK and a NAK's payload; bytes before it are stale.
                    let n = (i + h.packet_len()).min(b.len());
                    self.rx.consume(if acked { n } else { i + HEADER_SIZE });
                    return if acked { AckScan::Acked } else { AckScan::Nacked };
                }
            }
        }
        AckScan::Nothing
    }

    fn seq_ok(&self, h: &Header) -> bool {
        !self.cfg.seq
            || h.sequence == self.sequence
            || h.flags & (flags::ACK | flags::NAK) != 0
            || h.opcode == opcode::SYS_EVENT
            || h.opcode == opcode::CHANNEL_EVENT
            || h.opcode == opcode::PROTO_SYNC
    }

    /// One step of the receive state machine (SYNC, HEADER, PAYLOAD, SYNC_RECOVERY).
    fn parse(&mut self) -> Parsed {
        self.rx.skip_to_sync();
        let b = self.rx.bytes();
        if b.len() < HEADER_SIZE {
            return Parsed::NeedMore;
        }
        let h = match Header::parse(b, self.cfg.crc) {
            Ok(h) => h,
            Err(_) => {
                self.rx.consume(1);
                return Parsed::Again;
            }
        };
        if h.length > self.cfg.max_payload {
            self.rx.consume(1);
            self.send_status(h.opcode, h.channel, Status::Overflow);
            return Parsed::Again;
        }
        if !self.seq_ok(&h) {
            self.rx.consume(1);
            self.send_status(h.opcode, h.channel, Status::Sequence);
            return Parsed::Again;
        }
        let n = h.packet_len();
        if b.len() < n {
            // A packet cut short must not block a SYNC sent behind it.
            let found = (1..=b.len() - HEADER_SIZE).find(|&i| self.is_sync_command(&b[i..i + HEADER_SIZE]));
            if let Some(i) = found {
                self.rx.consume(i);
                self.process_sync();
                return Parsed::Again;
            }
            return Parsed::NeedMore;
        }
        if h.length > 0 && self.cfg.crc && !wire::payload_crc_ok(&b[HEADER_SIZE..n]) {
            self.rx.consume(n);
            self.send_status(h.opcode, h.channel, Status::Checksum);
            return Parsed::Again;
        }
        if h.channel != 0 && h.opcode <= opcode::SYS_LAST {
            self.rx.consume(n);
            self.send_status(h.opcode, h.channel, Status::Invalid);
            return Parsed::Again;
        }
        if h.flags & (flags::ACK | flags::NAK) != 0 {
            // A late or repeated ACK: nothing waits for it.
            self.rx.consume(n);
            return Parsed::Again;
        }
        if h.opcode == opcode::PROTO_SYNC {
            self.rx.consume(n);
            self.process_sync();
            return Parsed::Again;
        }
        self.stats.recv_packets += 1;
        let p = &b[HEADER_SIZE..HEADER_SIZE + h.length as usize];
        match h.opcode {
            opcode::PROTO_GET_CAPS => {
                let caps = Caps {
                    crc: self.cfg.crc,
                    seq: self.cfg.seq,
                    ack: self.cfg.ack,
                    events: self.cfg.events,
                    max_payload: self.cfg.max_payload,
                }
                .emit();
                self.rx.consume(n);
                self.build(h.opcode, 0, 0, &caps, true);
                self.tx_more = false;
                Parsed::Again
            }
            opcode::PROTO_SET_CAPS => {
                let caps = Caps::parse(p);
                self.rx.consume(n);
                match caps {
                    Some(c)
                        if h.length as usize == Caps::SIZE
                            && c.max_payload >= wire::MIN_PAYLOAD_SIZE
                            && c.max_payload <= wire::MAX_PAYLOAD_SIZE =>
                    {
                        // ACK with the old capabilities, then switch.
                        self.send_status(h.opcode, 0, Status::Success);
                        self.cfg.crc = c.crc;
                        self.cfg.seq = c.seq;
                        self.cfg.ack = c.ack;
                        self.cfg.events = c.events;
                        self.cfg.max_payload = c.max_payload;
                    }
                    _ => self.send_status(h.opcode, 0, Status::Invalid),
                }
                Parsed::Again
            }
            opcode::PROTO_STATS => {
                let s = self.stats.emit();
                self.rx.consume(n);
                self.build(h.opcode, 0, 0, &s, true);
                self.tx_more = false;
                Parsed::Again
            }
            opcode::PROTO_VERSION => {
                let mut v = [0u8; 16];
                v[..9].copy_from_slice(&self.cfg.version);
                self.rx.consume(n);
                self.build(h.opcode, 0, 0, &v, true);
                self.tx_more = false;
                Parsed::Again
            }
            opcode::SYS_RESET
            | opcode::SYS_BOOT
            | opcode::SYS_INFO
            | opcode::SYS_MEMORY
            | opcode::CHANNEL_LIST
            | opcode::CHANNEL_POLL
            | opcode::CHANNEL_LOCK
            | opcode::CHANNEL_UNLOCK
            | opcode::CHANNEL_SHAPE
            | opcode::CHANNEL_SIZE => self.hand_out(h, n),
            opcode::CHANNEL_READ => match wire::parse_channel_io(p) {
                Some((_, len)) if len > 0 => self.hand_out(h, n),
                _ => self.refuse(h, n),
            },
            opcode::CHANNEL_WRITE => match wire::parse_channel_io(p) {
                Some((_, len)) if len > 0 && 8 + len as usize <= p.len() => self.hand_out(h, n),
                _ => self.refuse(h, n),
            },
            opcode::CHANNEL_IOCTL if p.len() >= 4 => self.hand_out(h, n),
            _ => self.refuse(h, n),
        }
    }

    fn hand_out(&mut self, h: Header, n: usize) -> Parsed {
        self.request = Some((h.opcode, h.channel));
        self.request_len = n;
        Parsed::Request
    }

    fn refuse(&mut self, h: Header, n: usize) -> Parsed {
        self.rx.consume(n);
        self.send_status(h.opcode, h.channel, Status::Invalid);
        Parsed::Again
    }
}

enum AckScan {
    Nothing,
    Acked,
    Nacked,
    Sync,
}

enum Parsed {
    Again,
    NeedMore,
    Request,
}

/// Helpers for answers whose layout the protocol fixes.
pub mod answer {
    use super::*;

    /// One CHANNEL_LIST entry: id, flags, a name of up to 13 bytes, NUL padded (16 bytes).
    pub fn channel_entry(id: u8, fl: u8, name: &[u8]) -> [u8; 16] {
        let mut e = [0u8; 16];
        e[0] = id;
        e[1] = fl;
        let n = name.len().min(wire::CHANNEL_NAME_SIZE - 1);
        e[2..2 + n].copy_from_slice(&name[..n]);
        e
    }

    /// Whether the firmware checks this ioctl's argument size (static channels only).
    pub fn ioctl_size_ok(chan: u8, dynamic: bool, cmd: u32, len: usize) -> bool {
        dynamic || chan > channel::PROFILE || wire::ioctl::static_arg_size(chan, cmd) == Some(len)
    }
}
