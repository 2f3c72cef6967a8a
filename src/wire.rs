//! The wire format (PROTOCOL.md): the six packet magics, the CRC, the name hash, and packets
//! as zero-copy views over caller-owned buffers.
//!
//! Every packet is `| magic: u16 | payload | crc: u16 |`, little-endian, with the CRC over magic
//! and payload. A packet is valid only if both its magic and its CRC match.

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

/// Magic (2 bytes) plus CRC (2 bytes) around every payload.
pub const PACKET_OVERHEAD: usize = 4;
/// An empty packet (ack or request).
pub const EMPTY_PACKET_LEN: usize = PACKET_OVERHEAD;
/// COMMAND_HEADER with its two u32 fields.
pub const COMMAND_HEADER_LEN: usize = PACKET_OVERHEAD + 8;
/// RESULT_HEADER, STREAM_SETUP and STREAM_HEADER carry one u32.
pub const U32_PACKET_LEN: usize = PACKET_OVERHEAD + 4;
/// The longest packet the engine builds or receives in its own buffers.
pub const MAX_HEADER_LEN: usize = COMMAND_HEADER_LEN;

/// CRC-16/IBM-3740 (also called CCITT-FALSE): poly 0x1021, init 0xFFFF, no reflection, no xorout.
/// The one CRC of the engine; which table it uses depends on the target:
/// - x86-64 (std or not: the C static library in the unix-port native module too) and every
///   `std` build (host Rust programs such as the Python package): [`crc16_sliced`], slice-by-16
///   over sixteen 256-entry tables (8 KiB, computed at compile time, in `.rodata`);
/// - other targets without `std` (Cortex-M7 firmware and native modules: small flash): the crc
///   crate's single 256-entry table (512 B).
///
/// Neither has a panic path in the static library's object (tests/c_abi.rs checks both the host
/// and the thumbv7em object). Check value: `crc16(b"123456789") == 0x29B1`.
#[inline]
pub fn crc16(data: &[u8]) -> u16 {
    #[cfg(any(feature = "std", target_arch = "x86_64"))]
    return crc16_sliced(data);
    #[cfg(not(any(feature = "std", target_arch = "x86_64")))]
    return CRC16_TABLE1.checksum(data);
}

#[cfg(not(any(feature = "std", target_arch = "x86_64")))]
const CRC16_TABLE1: crc::Crc<u16, crc::Table<1>> = crc::Crc::<u16, crc::Table<1>>::new(&crc::CRC_16_IBM_3740);

/// Slice-by-16 CRC-16/IBM-3740: only built on x86-64 and with `std` (a Cortex-M7 object does
/// not carry its 8 KiB).
#[cfg(any(feature = "std", target_arch = "x86_64"))]
mod slice_by_16 {
    /// The CRC polynomial (x^16 + x^12 + x^5 + 1, most significant bit first).
    const CRC16_POLY: u16 = 0x1021;
    /// The CRC register before the first byte.
    const CRC16_INIT: u16 = 0xFFFF;

    /// `CRC16_SLICES[k][b]`: the CRC register (from 0) after byte `b` followed by `k` zero bytes.
    /// Slice 0 is the ordinary byte table.
    static CRC16_SLICES: [[u16; 256]; 16] = crc16_slices();

    const fn crc16_slices() -> [[u16; 256]; 16] {
        let mut t = [[0u16; 256]; 16];
        let mut b = 0;
        while b < 256 {
            let mut r = (b as u16) << 8;
            let mut bit = 0;
            while bit < 8 {
                r = if r & 0x8000 != 0 { (r << 1) ^ CRC16_POLY } else { r << 1 };
                bit += 1;
            }
            t[0][b] = r;
            b += 1;
        }
        let mut k = 1;
        while k < 16 {
            let mut b = 0;
            while b < 256 {
                let prev = t[k - 1][b];
                t[k][b] = (prev << 8) ^ t[0][(prev >> 8) as usize];
                b += 1;
            }
            k += 1;
        }
        t
    }

    /// CRC-16/IBM-3740 of `data` by slice-by-16: sixteen bytes per step, each looked up in its own
    /// table (the register folds into the first two). Every index is a `u8` into a 256-entry table
    /// and the blocks are `&[u8; 16]`, so nothing can go out of bounds or panic. What [`crc16`] uses
    /// on x86-64 and with `std`; public so that the tests and the benchmark reach it.
    pub fn crc16_sliced(data: &[u8]) -> u16 {
        let t = &CRC16_SLICES;
        let mut crc = CRC16_INIT;
        let mut rest = data;
        while let Some((block, tail)) = rest.split_first_chunk::<16>() {
            // The fourteen lookups that do not depend on the register first, so that only the
            // last two wait for the previous block (a shorter dependency chain per block).
            let data = t[13][usize::from(block[2])]
                ^ t[12][usize::from(block[3])]
                ^ t[11][usize::from(block[4])]
                ^ t[10][usize::from(block[5])]
                ^ t[9][usize::from(block[6])]
                ^ t[8][usize::from(block[7])]
                ^ t[7][usize::from(block[8])]
                ^ t[6][usize::from(block[9])]
                ^ t[5][usize::from(block[10])]
                ^ t[4][usize::from(block[11])]
                ^ t[3][usize::from(block[12])]
                ^ t[2][usize::from(block[13])]
                ^ t[1][usize::from(block[14])]
                ^ t[0][usize::from(block[15])];
            let [hi, lo] = crc.to_be_bytes();
            crc = data ^ t[15][usize::from(block[0] ^ hi)] ^ t[14][usize::from(block[1] ^ lo)];
            rest = tail;
        }
        for &b in rest {
            crc = (crc << 8) ^ t[0][usize::from((crc >> 8) as u8 ^ b)];
        }
        crc
    }
}
#[cfg(any(feature = "std", target_arch = "x86_64"))]
pub use slice_by_16::crc16_sliced;

/// The 32-bit djb2-xor hash that names a callback: `h = 5381; h = (h * 33) ^ b` for each byte,
/// wrapping in u32 on every target (the reference's 64-bit port forgets to).
pub fn name_hash(name: &[u8]) -> u32 {
    name.iter()
        .fold(5381u32, |h, &b| h.wrapping_mul(33) ^ u32::from(b))
}

/// Why a packet is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than the packet it should be.
    Truncated,
    /// The magic is not the one expected.
    BadMagic,
    /// The magic is right but the CRC is not.
    BadCrc,
}

/// Writes `magic` at `[0, 2)` and the CRC of `[0, len - 2)` at `[len - 2, len)`, so that the
/// payload at `[2, len - 2)` becomes a packet in place. Buffers shorter than 4 bytes are left alone.
pub fn frame(magic: u16, packet: &mut [u8]) {
    let Some((body, crc)) = packet.split_last_chunk_mut::<2>() else { return };
    let Some(m) = body.first_chunk_mut::<2>() else { return };
    *m = magic.to_le_bytes();
    *crc = crc16(body).to_le_bytes();
}

/// Checks that `packet` is a whole valid packet of `magic` and returns its payload.
pub fn check(magic: u16, packet: &[u8]) -> Result<&[u8], WireError> {
    let (body, crc) = packet.split_last_chunk::<2>().ok_or(WireError::Truncated)?;
    let (m, payload) = body.split_first_chunk::<2>().ok_or(WireError::Truncated)?;
    if *m != magic.to_le_bytes() {
        return Err(WireError::BadMagic);
    }
    if *crc != crc16(body).to_le_bytes() {
        return Err(WireError::BadCrc);
    }
    Ok(payload)
}

/// An empty packet of `magic`: the slave's acks and the master's requests.
pub fn empty_packet(magic: u16) -> [u8; EMPTY_PACKET_LEN] {
    let mut p = [0u8; EMPTY_PACKET_LEN];
    frame(magic, &mut p);
    p
}

fn u32_at(payload: &[u8], at: usize) -> Result<u32, WireError> {
    payload
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(WireError::Truncated)
}

/// COMMAND_HEADER(name hash, argument length) from the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandHeader {
    pub name_hash: u32,
    pub argument_len: u32,
}

impl CommandHeader {
    pub const LEN: usize = COMMAND_HEADER_LEN;

    pub fn emit(&self) -> [u8; COMMAND_HEADER_LEN] {
        let mut p = [0u8; COMMAND_HEADER_LEN];
        p[2..6].copy_from_slice(&self.name_hash.to_le_bytes());
        p[6..10].copy_from_slice(&self.argument_len.to_le_bytes());
        frame(MAGIC_COMMAND_HEADER, &mut p);
        p
    }

    pub fn parse(packet: &[u8]) -> Result<Self, WireError> {
        if packet.len() != Self::LEN {
            return Err(WireError::Truncated);
        }
        let payload = check(MAGIC_COMMAND_HEADER, packet)?;
        Ok(Self { name_hash: u32_at(payload, 0)?, argument_len: u32_at(payload, 4)? })
    }
}

/// A packet whose payload is one u32: RESULT_HEADER (result length), STREAM_SETUP (queue
/// depth) and STREAM_HEADER (frame length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct U32Packet {
    pub magic: u16,
    pub value: u32,
}

impl U32Packet {
    pub const LEN: usize = U32_PACKET_LEN;

    pub fn result_header(result_len: u32) -> Self {
        Self { magic: MAGIC_RESULT_HEADER, value: result_len }
    }
    pub fn stream_setup(queue_depth: u32) -> Self {
        Self { magic: MAGIC_STREAM_SETUP, value: queue_depth }
    }
    pub fn stream_header(frame_len: u32) -> Self {
        Self { magic: MAGIC_STREAM_HEADER, value: frame_len }
    }

    pub fn emit(&self) -> [u8; U32_PACKET_LEN] {
        let mut p = [0u8; U32_PACKET_LEN];
        p[2..6].copy_from_slice(&self.value.to_le_bytes());
        frame(self.magic, &mut p);
        p
    }

    /// Parses a packet that must carry `magic`.
    pub fn parse(magic: u16, packet: &[u8]) -> Result<Self, WireError> {
        if packet.len() != Self::LEN {
            return Err(WireError::Truncated);
        }
        let payload = check(magic, packet)?;
        Ok(Self { magic, value: u32_at(payload, 0)? })
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
    fn crc_check_value() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
    }

    #[cfg(any(feature = "std", target_arch = "x86_64"))]
    #[test]
    fn crc_sliced_check_values() {
        assert_eq!(crc16_sliced(b"123456789"), 0x29B1);
        assert_eq!(crc16_sliced(b""), 0xFFFF);
        // 32 bytes: two full slice-by-16 blocks, no tail.
        assert_eq!(crc16_sliced(b"123456789123456789123456789ABCDE"), crc16_bitwise(b"123456789123456789123456789ABCDE"));
    }

    /// The definition, one bit at a time.
    #[cfg(any(feature = "std", target_arch = "x86_64"))]
    fn crc16_bitwise(data: &[u8]) -> u16 {
        data.iter().fold(0xFFFF, |mut r, &b| {
            r ^= u16::from(b) << 8;
            for _ in 0..8 {
                r = if r & 0x8000 != 0 { (r << 1) ^ 0x1021 } else { r << 1 };
            }
            r
        })
    }

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
}
