//! The two CRCs of Protocol V2, as the firmware (omv_crc) and the `openmv` package compute
//! them: MSB first, no reflection, no final xor. CRC-16: polynomial 0xF94F, initial 0xFFFF,
//! over the first 8 header bytes. CRC-32: polynomial 0xFA567D89, initial 0xFFFFFFFF, over the
//! payload (a packet with no payload carries none).

const fn table16() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u16) << 8;
        let mut b = 0;
        while b < 8 {
            c = if c & 0x8000 != 0 { (c << 1) ^ CRC16_POLY } else { c << 1 };
            b += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

const fn table32() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut b = 0;
        while b < 8 {
            c = if c & 0x8000_0000 != 0 { (c << 1) ^ CRC32_POLY } else { c << 1 };
            b += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

pub const CRC16_POLY: u16 = 0xF94F;
pub const CRC32_POLY: u32 = 0xFA56_7D89;
static T16: [u16; 256] = table16();
static T32: [u32; 256] = table32();

pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc = (crc << 8) ^ T16[((crc >> 8) as u8 ^ b) as usize];
    }
    crc
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut crc: u32 = 0xFFFF_FFFF;
    for &b in data {
        crc = (crc << 8) ^ T32[((crc >> 24) as u8 ^ b) as usize];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn table_entries_match_the_package() {
        // First entries of the openmv package's tables (crc.py).
        assert_eq!(&T16[..4], &[0x0000, 0xF94F, 0x0BD1, 0xF29E]);
        assert_eq!(T16[255], 0x551E);
        assert_eq!(&T32[..3], &[0x0000_0000, 0xFA56_7D89, 0x0EFA_869B]);
        assert_eq!(T32[255], 0x25C4_421B);
    }
}
