//! Properties: any bytes, in any chunks, never panic either role, and everything the device
//! transmits is a well-formed packet.
mod common;
use common::App;
use omv_protocol::device::{Config, Device};
use omv_protocol::host::{Host, HostAction, HostConfig};
use omv_protocol::wire::{self, Header, HEADER_SIZE};
use proptest::prelude::*;

/// Valid packets mixed with noise, so that the parser gets past the sync word often.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let packet = (any::<u8>(), 0u8..8, any::<u8>(), prop_oneof![0u8..5, 0x10u8..0x15, 0x20u8..0x2A, any::<u8>()],
                  prop::collection::vec(any::<u8>(), 0..80), any::<bool>())
        .prop_map(|(seq, chan, fl, op, payload, crc)| {
            let mut b = vec![0u8; wire::packet_len(payload.len())];
            let h = Header { sequence: seq, channel: chan, flags: fl, opcode: op, length: 0 };
            wire::emit_packet(&mut b, h, &payload, crc).unwrap();
            b
        });
    let piece = prop_oneof![packet, prop::collection::vec(any::<u8>(), 0..24), Just(vec![0xAA, 0xD5])];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn header_round_trip(seq: u8, chan: u8, fl: u8, op: u8, len: u16, crc: bool) {
        let mut b = [0u8; HEADER_SIZE];
        let h = Header { sequence: seq, channel: chan, flags: fl, opcode: op, length: len };
        h.emit(&mut b, crc);
        prop_assert_eq!(Header::parse(&b, crc).unwrap(), h);
    }

    #[test]
    fn device_survives_anything(bytes in stream(), chunk in 1usize..64, max in 50u16..600, ack: bool) {
        let mut d = Device::new(Config { max_payload: max, ack, ..Config::default() });
        let mut app = App::new();
        let mut now = 0;
        for c in bytes.chunks(chunk) {
            let mut rest = c;
            while !rest.is_empty() {
                let n = d.receive(rest);
                rest = &rest[n..];
                let out = app.run(&mut d, now);
                // Everything sent is one or more whole, valid packets.
                let mut i = 0;
                while i < out.len() {
                    let h = Header::parse(&out[i..], true).unwrap();
                    let n = h.packet_len();
                    prop_assert!(h.length <= 4082);
                    if h.length > 0 {
                        prop_assert!(wire::payload_crc_ok(&out[i + HEADER_SIZE..i + n]));
                    }
                    i += n;
                }
                prop_assert_eq!(i, out.len());
                now += 700;
                if n == 0 { break; }
            }
        }
    }

    #[test]
    fn host_survives_anything(bytes in stream(), chunk in 1usize..64, op in 0u8..0x2A) {
        let mut h = Host::new(HostConfig { max_payload: 4082, ..HostConfig::default() });
        let _ = h.command(0, op, 0, &[1, 2, 3]);
        let mut now = 0;
        for c in bytes.chunks(chunk) {
            h.receive(c);
            for _ in 0..64 {
                match h.poll(now) {
                    HostAction::Idle => break,
                    HostAction::Timeout => { let _ = h.command(now, op, 1, &[]); }
                    _ => {}
                }
            }
            now += 300;
        }
    }
}
