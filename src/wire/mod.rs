//! The wire format (PROTOCOL.md): the six packet magics, the CRC ([`crc`]), the name hash, and
//! packets as zero-copy views over caller-owned buffers.
//!
//! Every packet is `| magic: u16 | payload | crc: u16 |`, little-endian, with the CRC over magic
//! and payload. A packet is valid only if both its magic and its CRC match.
//!
//! As in smoltcp: [`Packet`] wraps a buffer without copying and reads and writes its fields in
//! place (the ranges live once, in [`field`]); a `Repr` per packet kind is its parsed meaning,
//! with `parse`, `emit` and `buffer_len`: [`CommandHeaderRepr`], [`ResultHeaderRepr`],
//! [`StreamSetupRepr`], [`StreamHeaderRepr`], [`EmptyRepr`] (acks and requests) and
//! [`DataRepr`] (COMMAND_DATA and RESULT_DATA, whose payload is the caller's bytes).

pub mod crc;

use core::ops::Range;

pub use crc::crc16;
#[cfg(any(feature = "std", target_arch = "x86_64"))]
pub use crc::crc16_sliced;
#[cfg(target_arch = "x86_64")]
pub use crc::{crc16_folded, crc16_folded_unchecked, CRC16_FOLD_BUILT_IN, CRC16_FOLD_MIN_LEN};

/// COMMAND_HEADER: u32 name hash, u32 argument length (the slave's ack is empty).
pub const MAGIC_COMMAND_HEADER: u16 = 0x1209;
/// COMMAND_DATA: the argument bytes (the slave's ack is empty).
pub const MAGIC_COMMAND_DATA: u16 = 0xABD1;
/// RESULT_HEADER: u32 result length (the master's request is empty).
pub const MAGIC_RESULT_HEADER: u16 = 0x9021;
/// RESULT_DATA: the result bytes (the master's request is empty).
pub const MAGIC_RESULT_DATA: u16 = 0x1DBA;
/// STREAM_SETUP: u32 queue depth.
pub const MAGIC_STREAM_SETUP: u16 = 0xEDF6;
/// STREAM_HEADER: u32 length of the raw frame that follows.
pub const MAGIC_STREAM_HEADER: u16 = 0x542E;

/// Where each field of a packet lives. Every offset into a packet is written here only.
pub mod field {
    use core::ops::Range;

    /// The magic, first.
    pub const MAGIC: Range<usize> = 0..2;
    /// Where the payload starts (the C ABI's `OMV_RPC_PAYLOAD_OFFSET`).
    pub const PAYLOAD: usize = MAGIC.end;
    /// The CRC takes the last two bytes of a packet of `len` bytes.
    pub const fn crc(len: usize) -> Range<usize> {
        len.saturating_sub(CRC_LEN)..len
    }
    /// Length of the CRC.
    pub const CRC_LEN: usize = 2;
    /// COMMAND_HEADER: the callback's name hash.
    pub const NAME_HASH: Range<usize> = PAYLOAD..PAYLOAD + 4;
    /// COMMAND_HEADER: the argument length.
    pub const ARGUMENT_LEN: Range<usize> = NAME_HASH.end..NAME_HASH.end + 4;
    /// RESULT_HEADER (result length), STREAM_SETUP (queue depth), STREAM_HEADER (frame length):
    /// the one u32.
    pub const VALUE: Range<usize> = PAYLOAD..PAYLOAD + 4;
}

/// Where the payload starts in every packet: a caller puts an argument or result at
/// `[PAYLOAD_OFFSET, len - 2)` of a packet buffer and the engine frames it in place.
pub const PAYLOAD_OFFSET: usize = field::PAYLOAD;
/// Magic (2 bytes) plus CRC (2 bytes) around every payload.
pub const PACKET_OVERHEAD: usize = field::PAYLOAD + field::CRC_LEN;
/// An empty packet (ack or request).
pub const EMPTY_PACKET_LEN: usize = PACKET_OVERHEAD;
/// COMMAND_HEADER with its two u32 fields.
pub const COMMAND_HEADER_LEN: usize = field::ARGUMENT_LEN.end + field::CRC_LEN;
/// RESULT_HEADER, STREAM_SETUP and STREAM_HEADER carry one u32.
pub const U32_PACKET_LEN: usize = field::VALUE.end + field::CRC_LEN;
/// The longest packet the engine builds or receives in its own buffers.
pub const MAX_HEADER_LEN: usize = COMMAND_HEADER_LEN;

/// The 32-bit djb2-xor hash that names a callback: `h = 5381; h = (h * 33) ^ b` for each byte,
/// wrapping in u32 on every target (the reference's 64-bit port forgets to).
pub fn name_hash(name: &[u8]) -> u32 {
    name.iter().fold(5381u32, |h, &b| h.wrapping_mul(33) ^ u32::from(b))
}

/// Why a packet is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter (or longer) than the packet it should be.
    Truncated,
    /// The magic is not the one expected.
    BadMagic,
    /// The magic is right but the CRC is not.
    BadCrc,
}

/// A packet as a view over a buffer (`&[u8]`, `&mut [u8]`, `Vec<u8>`, ...): no copy, fields
/// read and written in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without a check. No accessor panics (the static library has no panic
    /// path): on a buffer too short for a field, a getter reads 0 (an empty payload) and a
    /// setter writes nothing; [`Packet::new_checked`] is the one to use on wire data.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` if it is long enough to be a packet (magic and CRC).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Truncated` if the buffer cannot hold a magic and a CRC.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < PACKET_OVERHEAD {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole packet's length.
    pub fn len(&self) -> usize {
        self.buffer.as_ref().len()
    }

    /// Whether the buffer is empty (never a valid packet).
    pub fn is_empty(&self) -> bool {
        self.buffer.as_ref().is_empty()
    }

    /// The magic field.
    pub fn magic(&self) -> u16 {
        self.u16_field(field::MAGIC)
    }

    /// The CRC field.
    pub fn crc(&self) -> u16 {
        self.buffer.as_ref().last_chunk::<2>().map_or(0, |b| u16::from_le_bytes(*b))
    }

    /// The bytes between magic and CRC.
    pub fn payload(&self) -> &[u8] {
        payload_of(self.buffer.as_ref())
    }

    /// The CRC the packet should carry: over magic and payload.
    pub fn compute_crc(&self) -> u16 {
        let buffer = self.buffer.as_ref();
        crc16(buffer.split_last_chunk::<2>().map_or(&[][..], |(body, _)| body))
    }

    /// Whether the CRC field matches magic and payload.
    pub fn verify_crc(&self) -> bool {
        self.crc() == self.compute_crc()
    }

    /// The payload, if this is a whole valid packet of `magic` (the length is the caller's:
    /// a receiver always knows how long the next packet is).
    pub fn check(&self, magic: u16) -> Result<&[u8], WireError> {
        self.check_len()?;
        if self.magic() != magic {
            return Err(WireError::BadMagic);
        }
        if !self.verify_crc() {
            return Err(WireError::BadCrc);
        }
        Ok(self.payload())
    }

    /// The u32 at `range` (inside the buffer).
    fn u32_field(&self, range: Range<usize>) -> u32 {
        let b = self.buffer.as_ref().get(range).and_then(|b| <[u8; 4]>::try_from(b).ok());
        b.map_or(0, u32::from_le_bytes)
    }

    /// The u16 at `range` (inside the buffer).
    fn u16_field(&self, range: Range<usize>) -> u16 {
        let b = self.buffer.as_ref().get(range).and_then(|b| <[u8; 2]>::try_from(b).ok());
        b.map_or(0, u16::from_le_bytes)
    }

    /// COMMAND_HEADER's name hash.
    pub fn name_hash(&self) -> u32 {
        self.u32_field(field::NAME_HASH)
    }

    /// COMMAND_HEADER's argument length.
    pub fn argument_len(&self) -> u32 {
        self.u32_field(field::ARGUMENT_LEN)
    }

    /// The one u32 of RESULT_HEADER, STREAM_SETUP and STREAM_HEADER.
    pub fn value(&self) -> u32 {
        self.u32_field(field::VALUE)
    }
}

impl<'a> Packet<&'a [u8]> {
    /// The payload, borrowed from the buffer itself rather than from the view.
    pub fn into_payload(self) -> &'a [u8] {
        payload_of(self.buffer)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the magic field.
    pub fn set_magic(&mut self, magic: u16) {
        set_field(self.buffer.as_mut(), field::MAGIC, &magic.to_le_bytes());
    }

    /// The bytes between magic and CRC, to write.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let buffer = self.buffer.as_mut();
        let end = buffer.len().saturating_sub(field::CRC_LEN);
        buffer.get_mut(field::PAYLOAD..end).unwrap_or_default()
    }

    /// Writes the CRC of magic and payload into the CRC field.
    pub fn fill_crc(&mut self) {
        if let Some((body, crc)) = self.buffer.as_mut().split_last_chunk_mut::<2>() {
            *crc = crc16(body).to_le_bytes();
        }
    }

    fn set_u32_field(&mut self, range: Range<usize>, value: u32) {
        set_field(self.buffer.as_mut(), range, &value.to_le_bytes());
    }

    /// Sets COMMAND_HEADER's name hash.
    pub fn set_name_hash(&mut self, name_hash: u32) {
        self.set_u32_field(field::NAME_HASH, name_hash);
    }

    /// Sets COMMAND_HEADER's argument length.
    pub fn set_argument_len(&mut self, argument_len: u32) {
        self.set_u32_field(field::ARGUMENT_LEN, argument_len);
    }

    /// Sets the one u32 of RESULT_HEADER, STREAM_SETUP and STREAM_HEADER.
    pub fn set_value(&mut self, value: u32) {
        self.set_u32_field(field::VALUE, value);
    }
}

/// The bytes between magic and CRC of `packet` (empty if it is too short to have any).
fn payload_of(packet: &[u8]) -> &[u8] {
    let end = packet.len().saturating_sub(field::CRC_LEN);
    packet.get(field::PAYLOAD..end).unwrap_or_default()
}

/// Writes `value` at `range` of `buffer`, if the buffer holds that range.
fn set_field<const N: usize>(buffer: &mut [u8], range: Range<usize>, value: &[u8; N]) {
    if let Some(b) = buffer.get_mut(range).and_then(|b| <&mut [u8; N]>::try_from(b).ok()) {
        *b = *value;
    }
}

/// Writes `magic` and the CRC around the payload already at `[PAYLOAD_OFFSET, len - 2)`, so that
/// the buffer becomes a packet in place. Buffers shorter than 4 bytes are left alone.
pub fn frame(magic: u16, packet: &mut [u8]) {
    let Ok(mut packet) = Packet::new_checked(packet) else { return };
    packet.set_magic(magic);
    packet.fill_crc();
}

/// Checks that `packet` is a whole valid packet of `magic` and returns its payload.
pub fn check(magic: u16, packet: &[u8]) -> Result<&[u8], WireError> {
    let packet = Packet::new_unchecked(packet);
    packet.check(magic)?;
    Ok(packet.into_payload())
}

/// An empty packet of `magic`: the slave's acks and the master's requests.
pub fn empty_packet(magic: u16) -> [u8; EMPTY_PACKET_LEN] {
    EmptyRepr { magic }.to_bytes()
}

/// `Truncated` unless `packet` is exactly `len` bytes (header packets have one length).
fn exact_len<T: AsRef<[u8]>>(packet: &Packet<T>, len: usize) -> Result<(), WireError> {
    if packet.len() == len {
        Ok(())
    } else {
        Err(WireError::Truncated)
    }
}

/// COMMAND_HEADER(name hash, argument length) from the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandHeaderRepr {
    pub name_hash: u32,
    pub argument_len: u32,
}

impl CommandHeaderRepr {
    pub const MAGIC: u16 = MAGIC_COMMAND_HEADER;

    /// A whole valid COMMAND_HEADER (exactly [`COMMAND_HEADER_LEN`] bytes).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self, WireError> {
        exact_len(packet, COMMAND_HEADER_LEN)?;
        packet.check(Self::MAGIC)?;
        Ok(Self { name_hash: packet.name_hash(), argument_len: packet.argument_len() })
    }

    pub const fn buffer_len(&self) -> usize {
        COMMAND_HEADER_LEN
    }

    /// Writes the whole packet into `packet` ([`Self::buffer_len`] bytes).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_magic(Self::MAGIC);
        packet.set_name_hash(self.name_hash);
        packet.set_argument_len(self.argument_len);
        packet.fill_crc();
    }

    /// The packet's bytes.
    pub fn to_bytes(&self) -> [u8; COMMAND_HEADER_LEN] {
        let mut bytes = [0u8; COMMAND_HEADER_LEN];
        self.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        bytes
    }
}

/// The three packets whose payload is one u32, each its own `Repr`.
macro_rules! u32_repr {
    ($(#[$doc:meta])* $name:ident, $magic:ident, $value:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            pub $value: u32,
        }

        impl $name {
            pub const MAGIC: u16 = $magic;

            /// A whole valid packet (exactly [`U32_PACKET_LEN`] bytes).
            pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self, WireError> {
                exact_len(packet, U32_PACKET_LEN)?;
                packet.check(Self::MAGIC)?;
                Ok(Self { $value: packet.value() })
            }

            pub const fn buffer_len(&self) -> usize {
                U32_PACKET_LEN
            }

            /// Writes the whole packet into `packet` ([`Self::buffer_len`] bytes).
            pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
                packet.set_magic(Self::MAGIC);
                packet.set_value(self.$value);
                packet.fill_crc();
            }

            /// The packet's bytes.
            pub fn to_bytes(&self) -> [u8; U32_PACKET_LEN] {
                let mut bytes = [0u8; U32_PACKET_LEN];
                self.emit(&mut Packet::new_unchecked(&mut bytes[..]));
                bytes
            }
        }
    };
}

u32_repr!(
    /// RESULT_HEADER(result length) from the slave.
    ResultHeaderRepr,
    MAGIC_RESULT_HEADER,
    result_len
);
u32_repr!(
    /// STREAM_SETUP(queue depth) from the stream reader.
    StreamSetupRepr,
    MAGIC_STREAM_SETUP,
    queue_depth
);
u32_repr!(
    /// STREAM_HEADER(frame length) from the stream writer, before the frame's raw bytes.
    StreamHeaderRepr,
    MAGIC_STREAM_HEADER,
    frame_len
);

/// An empty packet: the slave's COMMAND_HEADER and COMMAND_DATA acks, the master's RESULT_HEADER
/// and RESULT_DATA requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmptyRepr {
    pub magic: u16,
}

impl EmptyRepr {
    /// A whole valid empty packet of `magic` (exactly [`EMPTY_PACKET_LEN`] bytes).
    pub fn parse<T: AsRef<[u8]>>(magic: u16, packet: &Packet<T>) -> Result<Self, WireError> {
        exact_len(packet, EMPTY_PACKET_LEN)?;
        packet.check(magic)?;
        Ok(Self { magic })
    }

    pub const fn buffer_len(&self) -> usize {
        EMPTY_PACKET_LEN
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_magic(self.magic);
        packet.fill_crc();
    }

    /// The packet's bytes.
    pub fn to_bytes(&self) -> [u8; EMPTY_PACKET_LEN] {
        let mut bytes = [0u8; EMPTY_PACKET_LEN];
        self.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        bytes
    }
}

/// COMMAND_DATA (the argument) or RESULT_DATA (the result): the payload is the caller's bytes,
/// already in the buffer at [`PAYLOAD_OFFSET`]; emit frames them in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataRepr {
    pub magic: u16,
    pub data_len: u32,
}

impl DataRepr {
    /// A whole valid data packet of `magic`; its length is the whole buffer's (the header
    /// before it said how long).
    pub fn parse<T: AsRef<[u8]>>(magic: u16, packet: &Packet<T>) -> Result<Self, WireError> {
        let payload = packet.check(magic)?;
        Ok(Self { magic, data_len: u32::try_from(payload.len()).unwrap_or(u32::MAX) })
    }

    pub const fn buffer_len(&self) -> usize {
        self.data_len as usize + PACKET_OVERHEAD
    }

    /// Frames the payload already in `packet` (of [`Self::buffer_len`] bytes).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_magic(self.magic);
        packet.fill_crc();
    }
}

/// The stream ack bytes: an 8-bit Galois LFSR starting at 255 (0xFF, 0xC7, 0xDB, 0xD5, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckLfsr(pub u8);

impl AckLfsr {
    pub const START: AckLfsr = AckLfsr(255);

    /// Moves to the next ack byte.
    pub fn advance(&mut self) {
        let x = self.0;
        self.0 = (x >> 1) ^ if x & 1 != 0 { 0xB8 } else { 0 };
    }
}

impl Default for AckLfsr {
    fn default() -> Self {
        Self::START
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfsr_first_bytes() {
        let mut l = AckLfsr::START;
        let mut seen = [0u8; 4];
        for s in seen.iter_mut() {
            *s = l.0;
            l.advance();
        }
        assert_eq!(seen, [0xFF, 0xC7, 0xDB, 0xD5]);
    }

    #[test]
    fn frame_then_check() {
        let mut p = [0u8, 0, 1, 2, 3, 0, 0];
        frame(MAGIC_RESULT_DATA, &mut p);
        assert_eq!(check(MAGIC_RESULT_DATA, &p), Ok(&[1u8, 2, 3][..]));
        assert_eq!(check(MAGIC_COMMAND_DATA, &p), Err(WireError::BadMagic));
        p[3] ^= 1;
        assert_eq!(check(MAGIC_RESULT_DATA, &p), Err(WireError::BadCrc));
        assert_eq!(check(MAGIC_RESULT_DATA, &p[..3]), Err(WireError::Truncated));
    }

    #[test]
    fn field_ranges() {
        assert_eq!((PAYLOAD_OFFSET, PACKET_OVERHEAD), (2, 4));
        assert_eq!((COMMAND_HEADER_LEN, U32_PACKET_LEN, EMPTY_PACKET_LEN), (12, 8, 4));
        assert_eq!(field::crc(12), 10..12);
    }

    #[test]
    fn view_reads_and_writes_in_place() {
        let mut bytes = [0u8; COMMAND_HEADER_LEN];
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        CommandHeaderRepr { name_hash: 0x0403_0201, argument_len: 0x0807_0605 }.emit(&mut packet);
        assert_eq!(packet.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        packet.payload_mut()[0] = 9;
        assert!(!packet.verify_crc());
        packet.fill_crc();
        assert_eq!(
            CommandHeaderRepr::parse(&packet),
            Ok(CommandHeaderRepr { name_hash: 0x0403_0209, argument_len: 0x0807_0605 })
        );
        assert_eq!(Packet::new_checked(&bytes[..3]).err(), Some(WireError::Truncated));
        assert_eq!(
            ResultHeaderRepr::parse(&Packet::new_unchecked(&bytes[..])),
            Err(WireError::Truncated)
        );
    }
}
