//! Protocol V2 on the wire: the 10-byte header, the payload CRC, and the numbers
//! (opcodes, flags, status codes, payload layouts) of OpenMV's `protocol/omv_protocol.h`.

use crate::crc::{crc16, crc32};

pub const SYNC_WORD: u16 = 0xD5AA;
/// SYNC[2] SEQ[1] CHAN[1] FLAGS[1] OPCODE[1] LEN[2] CRC16[2], little endian.
pub const HEADER_SIZE: usize = 10;
pub const CRC_SIZE: usize = 4;
/// The firmware's receive buffer; a packet never exceeds it.
pub const MAX_BUFFER_SIZE: usize = 4096;
/// 64 - header - payload CRC: what both sides use until SET_CAPS (the firmware's minimum).
pub const MIN_PAYLOAD_SIZE: u16 = 50;
/// The `openmv` package starts a resync with 52 (64 - 10 - 2); it only bounds what it accepts.
pub const HOST_RESYNC_PAYLOAD_SIZE: u16 = 52;
pub const MAX_PAYLOAD_SIZE: u16 = (MAX_BUFFER_SIZE - HEADER_SIZE - CRC_SIZE) as u16;
pub const MAX_PACKET_SIZE: usize = HEADER_SIZE + MAX_PAYLOAD_SIZE as usize + CRC_SIZE;
pub const MAX_CHANNELS: usize = 32;
pub const CHANNEL_NAME_SIZE: usize = 14;

pub mod flags {
    pub const ACK: u8 = 1 << 0;
    pub const NAK: u8 = 1 << 1;
    pub const RTX: u8 = 1 << 2;
    pub const ACK_REQ: u8 = 1 << 3;
    pub const FRAGMENT: u8 = 1 << 4;
    pub const EVENT: u8 = 1 << 5;
    /// Packets that never ask for an ACK.
    pub const NO_ACK: u8 = ACK | NAK | EVENT;
}

pub mod opcode {
    pub const PROTO_SYNC: u8 = 0x00;
    pub const PROTO_GET_CAPS: u8 = 0x01;
    pub const PROTO_SET_CAPS: u8 = 0x02;
    pub const PROTO_STATS: u8 = 0x03;
    pub const PROTO_VERSION: u8 = 0x04;
    pub const SYS_RESET: u8 = 0x10;
    pub const SYS_BOOT: u8 = 0x11;
    pub const SYS_INFO: u8 = 0x12;
    pub const SYS_EVENT: u8 = 0x13;
    pub const SYS_MEMORY: u8 = 0x14;
    /// Protocol and system opcodes up to this one are only valid on channel 0.
    pub const SYS_LAST: u8 = 0x14;
    pub const CHANNEL_LIST: u8 = 0x20;
    pub const CHANNEL_POLL: u8 = 0x21;
    pub const CHANNEL_LOCK: u8 = 0x22;
    pub const CHANNEL_UNLOCK: u8 = 0x23;
    pub const CHANNEL_SHAPE: u8 = 0x24;
    pub const CHANNEL_SIZE: u8 = 0x25;
    pub const CHANNEL_READ: u8 = 0x26;
    pub const CHANNEL_WRITE: u8 = 0x27;
    pub const CHANNEL_IOCTL: u8 = 0x28;
    pub const CHANNEL_EVENT: u8 = 0x29;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    Success = 0,
    Failed = 1,
    Invalid = 2,
    Timeout = 3,
    Busy = 4,
    Checksum = 5,
    Sequence = 6,
    Overflow = 7,
    Fragment = 8,
    Unknown = 9,
}

impl Status {
    pub fn from_u16(v: u16) -> Status {
        match v {
            0 => Status::Success,
            1 => Status::Failed,
            2 => Status::Invalid,
            3 => Status::Timeout,
            4 => Status::Busy,
            5 => Status::Checksum,
            6 => Status::Sequence,
            7 => Status::Overflow,
            8 => Status::Fragment,
            _ => Status::Unknown,
        }
    }
}

/// System events (channel 0).
pub mod event {
    pub const CHANNEL_REGISTERED: u16 = 0x00;
    pub const CHANNEL_UNREGISTERED: u16 = 0x01;
    pub const SOFT_REBOOT: u16 = 0x02;
    /// An event with no payload.
    pub const NOTIFY: u16 = 0xFFFF;
}

/// Reserved channel ids.
pub mod channel {
    pub const TRANSPORT: u8 = 0;
    pub const STDIN: u8 = 1;
    pub const STDOUT: u8 = 2;
    pub const STREAM: u8 = 3;
    pub const PROFILE: u8 = 4;
    pub const FLAG_READ: u8 = 1 << 0;
    pub const FLAG_WRITE: u8 = 1 << 1;
    pub const FLAG_EXEC: u8 = 1 << 2;
    pub const FLAG_LOCK: u8 = 1 << 3;
    pub const FLAG_STREAM: u8 = 1 << 4;
    pub const FLAG_DYNAMIC: u8 = 1 << 5;
    pub const FLAG_PHYSICAL: u8 = 1 << 6;
}

pub mod ioctl {
    pub const STDIN_STOP: u32 = 0x01;
    pub const STDIN_EXEC: u32 = 0x02;
    pub const STDIN_RESET: u32 = 0x03;
    pub const STREAM_CTRL: u32 = 0x00;
    pub const STREAM_RAW_CTRL: u32 = 0x01;
    pub const STREAM_RAW_CFG: u32 = 0x02;
    pub const STREAM_SOURCE: u32 = 0x03;

    /// The argument sizes the firmware checks for the static channels' ioctls
    /// (OMV_PROTOCOL_CHANNEL_IOCTL_TABLE); None: not in the table (refused as INVALID).
    pub fn static_arg_size(channel: u8, cmd: u32) -> Option<usize> {
        use super::channel::*;
        match (channel, cmd) {
            (STDIN, STDIN_STOP) | (STDIN, STDIN_EXEC) | (STDIN, STDIN_RESET) => Some(0),
            (STREAM, STREAM_CTRL) | (STREAM, STREAM_RAW_CTRL) | (STREAM, STREAM_SOURCE) => Some(4),
            (STREAM, STREAM_RAW_CFG) => Some(8),
            (PROFILE, 0) | (PROFILE, 2) | (PROFILE, 3) => Some(if cmd == 0 { 4 } else { 0 }),
            (PROFILE, 1) => Some(8),
            _ => None,
        }
    }
}

/// What the header says; `crc` is the value carried, checked by `parse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub sequence: u8,
    pub channel: u8,
    pub flags: u8,
    pub opcode: u8,
    pub length: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    Truncated,
    Sync,
    Checksum,
}

impl Header {
    /// Reads a header; `check_crc` false accepts any CRC (CRC disabled by SET_CAPS).
    pub fn parse(b: &[u8], check_crc: bool) -> Result<Header, Error> {
        if b.len() < HEADER_SIZE {
            return Err(Error::Truncated);
        }
        if u16::from_le_bytes([b[0], b[1]]) != SYNC_WORD {
            return Err(Error::Sync);
        }
        if check_crc && u16::from_le_bytes([b[8], b[9]]) != crc16(&b[..8]) {
            return Err(Error::Checksum);
        }
        Ok(Header {
            sequence: b[2],
            channel: b[3],
            flags: b[4],
            opcode: b[5],
            length: u16::from_le_bytes([b[6], b[7]]),
        })
    }

    /// Writes the header into `b[..10]`; the CRC is 0 when CRC is off, as the firmware sends.
    pub fn emit(&self, b: &mut [u8], crc: bool) {
        b[..2].copy_from_slice(&SYNC_WORD.to_le_bytes());
        b[2] = self.sequence;
        b[3] = self.channel;
        b[4] = self.flags;
        b[5] = self.opcode;
        b[6..8].copy_from_slice(&self.length.to_le_bytes());
        let c = if crc { crc16(&b[..8]) } else { 0 };
        b[8..10].copy_from_slice(&c.to_le_bytes());
    }

    /// Bytes on the wire: header, payload, and its CRC-32 when there is a payload.
    pub fn packet_len(&self) -> usize {
        packet_len(self.length as usize)
    }
}

pub fn packet_len(payload: usize) -> usize {
    HEADER_SIZE + payload + if payload > 0 { CRC_SIZE } else { 0 }
}

/// Writes a whole packet into `out` and returns its length (None: `out` too small).
pub fn emit_packet(out: &mut [u8], header: Header, payload: &[u8], crc: bool) -> Option<usize> {
    let n = packet_len(payload.len());
    if out.len() < n || payload.len() > u16::MAX as usize {
        return None;
    }
    let h = Header { length: payload.len() as u16, ..header };
    h.emit(out, crc);
    if !payload.is_empty() {
        out[HEADER_SIZE..HEADER_SIZE + payload.len()].copy_from_slice(payload);
        let c = if crc { crc32(payload) } else { 0 };
        out[HEADER_SIZE + payload.len()..n].copy_from_slice(&c.to_le_bytes());
    }
    Some(n)
}

/// Checks the CRC-32 that follows a payload.
pub fn payload_crc_ok(payload_and_crc: &[u8]) -> bool {
    let n = payload_and_crc.len();
    if n < CRC_SIZE {
        return false;
    }
    let (p, c) = payload_and_crc.split_at(n - CRC_SIZE);
    u32::from_le_bytes([c[0], c[1], c[2], c[3]]) == crc32(p)
}

/// PROTO_GET_CAPS / SET_CAPS payload (16 bytes): a bitfield word, max_payload, 10 reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    pub crc: bool,
    pub seq: bool,
    pub ack: bool,
    pub events: bool,
    pub max_payload: u16,
}

impl Caps {
    pub const SIZE: usize = 16;
    pub fn parse(b: &[u8]) -> Option<Caps> {
        if b.len() < 6 {
            return None;
        }
        let f = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        Some(Caps {
            crc: f & 1 != 0,
            seq: f & 2 != 0,
            ack: f & 4 != 0,
            events: f & 8 != 0,
            max_payload: u16::from_le_bytes([b[4], b[5]]),
        })
    }
    pub fn emit(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        let f = self.crc as u32 | (self.seq as u32) << 1 | (self.ack as u32) << 2 | (self.events as u32) << 3;
        b[..4].copy_from_slice(&f.to_le_bytes());
        b[4..6].copy_from_slice(&self.max_payload.to_le_bytes());
        b
    }
}

/// PROTO_STATS payload: eight little-endian u32 counters, in this order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub sent_packets: u32,
    pub recv_packets: u32,
    pub checksum_errors: u32,
    pub sequence_errors: u32,
    pub retransmit: u32,
    pub transport_errors: u32,
    pub sent_events: u32,
    pub reserved: u32,
}

impl Stats {
    pub const SIZE: usize = 32;
    pub fn emit(&self) -> [u8; 32] {
        let v = [
            self.sent_packets,
            self.recv_packets,
            self.checksum_errors,
            self.sequence_errors,
            self.retransmit,
            self.transport_errors,
            self.sent_events,
            self.reserved,
        ];
        let mut b = [0u8; 32];
        for (i, x) in v.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&x.to_le_bytes());
        }
        b
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// CHANNEL_READ / CHANNEL_WRITE payload: offset, length (u32 each), then data for a write.
pub fn parse_channel_io(b: &[u8]) -> Option<(u32, u32)> {
    if b.len() < 8 {
        return None;
    }
    Some((le32(b, 0), le32(b, 4)))
}

pub fn parse_u32(b: &[u8]) -> Option<u32> {
    if b.len() < 4 {
        return None;
    }
    Some(le32(b, 0))
}
