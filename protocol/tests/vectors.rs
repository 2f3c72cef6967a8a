//! Byte for byte against what the official `openmv` package (1.0.7) wrote.
mod common;
use common::*;
use omv_protocol::crc::{crc16, crc32};
use omv_protocol::device::Device;
use omv_protocol::host::{Host, HostAction, HostConfig};
use omv_protocol::wire::{self, flags, opcode, Header, HEADER_SIZE};

#[test]
fn every_recorded_packet_parses_and_re_emits_byte_for_byte() {
    let v = packets();
    assert!(v.len() >= 19);
    for p in &v {
        let h = Header::parse(&p.bytes, p.crc).unwrap_or_else(|e| panic!("{}: {:?}", p.name, e));
        assert_eq!((h.sequence, h.channel, h.flags, h.opcode), (p.seq, p.chan, p.flags, p.opcode), "{}", p.name);
        assert_eq!(h.length as usize, p.payload.len(), "{}", p.name);
        assert_eq!(h.packet_len(), p.bytes.len(), "{}", p.name);
        if p.crc && !p.payload.is_empty() {
            assert!(wire::payload_crc_ok(&p.bytes[HEADER_SIZE..]), "{}", p.name);
        }
        let mut out = vec![0u8; wire::MAX_PACKET_SIZE];
        let n = wire::emit_packet(&mut out, h, &p.payload, p.crc).unwrap();
        assert_eq!(&out[..n], &p.bytes[..], "{}", p.name);
    }
}

#[test]
fn the_crcs_are_the_packages() {
    for p in packets().iter().filter(|p| p.crc) {
        assert_eq!(crc16(&p.bytes[..8]), u16::from_le_bytes([p.bytes[8], p.bytes[9]]), "{}", p.name);
        if !p.payload.is_empty() {
            let n = p.bytes.len();
            assert_eq!(crc32(&p.payload), u32::from_le_bytes(p.bytes[n - 4..].try_into().unwrap()), "{}", p.name);
        }
    }
    // With CRC off the package sends zeros in both CRC fields.
    let p = packets().into_iter().find(|p| p.name == "no_crc_payload").unwrap();
    assert_eq!(&p.bytes[8..10], &[0, 0]);
    assert_eq!(&p.bytes[p.bytes.len() - 4..], &[0, 0, 0, 0]);
}

#[test]
fn a_flipped_bit_anywhere_is_caught() {
    for p in packets().iter().filter(|p| p.crc) {
        for i in 0..p.bytes.len().min(64) {
            let mut b = p.bytes.clone();
            b[i] ^= 0x10;
            let ok = match Header::parse(&b, true) {
                Ok(h) => h.length as usize == p.payload.len() && (p.payload.is_empty() || wire::payload_crc_ok(&b[HEADER_SIZE..])),
                Err(_) => false,
            };
            assert!(!ok, "{} byte {}", p.name, i);
        }
    }
}

/// The package's connect() and the calls after it, replayed into our device: every byte it
/// answers must be what the firmware-rule device answered.
#[test]
fn our_device_answers_the_recorded_conversation_byte_for_byte() {
    let conv = conversation();
    assert!(conv.len() > 30);
    let mut d = Device::new(device_config());
    let mut app = App::new();
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for (is_host, b) in &conv {
        if *is_host {
            // The recorded device queued all fragments at once; ours waits for each ACK, so
            // what it wrote so far is a prefix of what was recorded so far.
            { let i = first_diff(&got, &expected); assert!(expected.starts_with(&got), "device output differs at byte {}: {:02x?} vs {:02x?}", i, &got[i.saturating_sub(12)..(i + 8).min(got.len())], &expected[i.saturating_sub(12)..(i + 8).min(expected.len())]); }
            assert_eq!(d.receive(b), b.len());
            got.extend(app.run(&mut d, 0));
        } else {
            expected.extend_from_slice(b);
        }
    }
    assert!(got == expected, "device output differs at byte {}", first_diff(&got, &expected));
    assert_eq!(app.custom.len(), 1500);
    assert_eq!(app.stdin, b"print('hello from the cam')\n");
}

/// The same conversation from the host side: our host role, given the device's bytes and the
/// same commands, writes exactly what the package wrote (commands and ACKs).
#[test]
fn our_host_writes_what_the_package_wrote() {
    let conv = conversation();
    let mut host = Host::new(HostConfig::default());
    let mut wrote = Vec::new();
    let mut expected = Vec::new();
    let mut answers: Vec<Vec<u8>> = Vec::new();
    let mut current = Vec::new();
    let mut last_op = 0xFF;
    let drain = |host: &mut Host, wrote: &mut Vec<u8>, answers: &mut Vec<Vec<u8>>, current: &mut Vec<u8>, last_op: u8| loop {
        match host.poll(0) {
            HostAction::Idle => break,
            HostAction::Transmit(b) => wrote.extend_from_slice(b),
            HostAction::Fragment(p) => current.extend_from_slice(p),
            HostAction::Response(p) => {
                current.extend_from_slice(p);
                answers.push(std::mem::take(current));
                if last_op == opcode::PROTO_SET_CAPS {
                    host.update_caps(true, true, 4082);
                }
            }
            other => panic!("{:?}", other),
        }
    };
    for (is_host, b) in &conv {
        if *is_host {
            expected.extend_from_slice(b);
            let h = Header::parse(b, true).unwrap();
            if h.flags & flags::ACK == 0 {
                if h.opcode == opcode::PROTO_SYNC {
                    host.sync(0);
                } else {
                    host.command(0, h.opcode, h.channel, &b[HEADER_SIZE..HEADER_SIZE + h.length as usize]).unwrap();
                }
                last_op = h.opcode;
                drain(&mut host, &mut wrote, &mut answers, &mut current, last_op);
            }
        } else {
            host.receive(b);
            drain(&mut host, &mut wrote, &mut answers, &mut current, last_op);
        }
    }
    assert!(wrote == expected, "host output differs at byte {}", first_diff(&wrote, &expected));
    let data: Vec<u8> = (0..1500u32).map(|i| ((i * 13 + 5) & 0xFF) as u8).collect();
    assert!(answers.iter().any(|a| *a == data), "the 1500-byte channel read came back whole");
    assert!(answers.iter().any(|a| a == b"hello from the cam\n"));
}

fn first_diff(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()))
}
