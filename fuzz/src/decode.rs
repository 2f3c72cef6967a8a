//! The packet decoder and the CRC: every parse against a reference written here from
//! PROTOCOL.md, every CRC path against the bitwise one, frame/check and emit/parse round trips.

use omv_rpc::wire::{
    self, CommandHeaderRepr, Packet, ResultHeaderRepr, StreamHeaderRepr, StreamSetupRepr, WireError,
};

/// An 8-byte packet with one u32 payload, through the packet's own Repr where it has one (the
/// value and the Repr's emitted bytes), else through the packet view.
fn u32_parse(magic: u16, data: &[u8]) -> Result<(u32, Option<[u8; 8]>), WireError> {
    let p = Packet::new_unchecked(data);
    match magic {
        wire::MAGIC_RESULT_HEADER => {
            ResultHeaderRepr::parse(&p).map(|r| (r.result_len, Some(r.to_bytes())))
        }
        wire::MAGIC_STREAM_SETUP => {
            StreamSetupRepr::parse(&p).map(|r| (r.queue_depth, Some(r.to_bytes())))
        }
        wire::MAGIC_STREAM_HEADER => {
            StreamHeaderRepr::parse(&p).map(|r| (r.frame_len, Some(r.to_bytes())))
        }
        _ if data.len() != 8 => Err(WireError::Truncated),
        _ => p.check(magic).map(|_| (p.value(), None)),
    }
}

use crate::*;

fn reference_check(magic: u16, p: &[u8]) -> Result<&[u8], WireError> {
    if p.len() < 4 {
        return Err(WireError::Truncated);
    }
    if p[..2] != magic.to_le_bytes() {
        return Err(WireError::BadMagic);
    }
    if !valid_packet(magic, p) {
        return Err(WireError::BadCrc);
    }
    Ok(&p[2..p.len() - 2])
}

pub fn run(data: &[u8]) {
    let crc = crc16_reference(data);
    assert_eq!(wire::crc16(data), crc, "crc16");
    assert_eq!(wire::crc16_sliced(data), crc, "crc16_sliced");
    #[cfg(target_arch = "x86_64")]
    if let Some(c) = wire::crc16_folded(data) {
        assert_eq!(c, crc, "crc16_folded");
    }
    assert_eq!(unsafe { ffi::omv_rpc_crc16(data.as_ptr(), data.len()) }, crc, "omv_rpc_crc16");
    let hash = data.iter().fold(5381u32, |h, &b| h.wrapping_mul(33) ^ u32::from(b));
    assert_eq!(unsafe { ffi::omv_rpc_name_hash(data.as_ptr(), data.len()) }, hash, "omv_rpc_name_hash");

    for &magic in &MAGICS {
        assert_eq!(wire::check(magic, data), reference_check(magic, data), "check({magic:#x})");
        let u = u32_parse(magic, data);
        match reference_check(magic, data) {
            Ok(payload) if data.len() == 8 => {
                reached(9);
                let (value, emitted) = u.expect("a valid 8-byte packet must parse");
                assert_eq!(value, u32_at(payload, 0));
                if let Some(bytes) = emitted {
                    assert_eq!(&bytes[..], data, "emit(parse(p)) != p");
                }
            }
            _ => assert!(u.is_err(), "an invalid packet parsed as an 8-byte u32 packet"),
        }
    }
    let h = CommandHeaderRepr::parse(&Packet::new_unchecked(data));
    match reference_check(MAGIC_COMMAND_HEADER, data) {
        Ok(payload) if data.len() == 12 => {
            reached(9);
            let v = h.expect("a valid COMMAND_HEADER must parse");
            assert_eq!((v.name_hash, v.argument_len), (u32_at(payload, 0), u32_at(payload, 4)));
            assert_eq!(&v.to_bytes()[..], data);
        }
        _ => assert!(h.is_err(), "CommandHeaderRepr::parse accepted an invalid packet"),
    }

    // Framing any buffer in place makes it a valid packet, through the Rust and the C API;
    // a buffer under 4 bytes is left alone.
    let magic = MAGICS[usize::from(data.first().copied().unwrap_or(0)) % MAGICS.len()];
    let mut g = Guarded::new(data);
    unsafe { ffi::omv_rpc_frame(magic, g.mut_ptr(), g.len()) };
    g.check_guards("frame");
    if data.len() >= 4 {
        assert!(valid_packet(magic, g.bytes()));
        assert_eq!(&g.bytes()[2..data.len() - 2], &data[2..data.len() - 2], "frame() changed the payload");
        assert_eq!(wire::check(magic, g.bytes()).map(<[u8]>::len), Ok(data.len() - 4));
    } else {
        assert_eq!(g.bytes(), data);
    }
}
