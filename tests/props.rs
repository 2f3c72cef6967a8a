//! Property tests: every packet type round-trips; the decoders never panic and never accept a
//! damaged packet that CRC-16 must catch; the engines never panic, never ask for more than the
//! caller's limits allow and keep poll() free of side effects, whatever bytes, statuses,
//! buffers and times the caller feeds them.

mod support;

use omv_rpc::wire::{
    self, CommandHeaderRepr, Packet as View, ResultHeaderRepr, StreamHeaderRepr, StreamSetupRepr,
    WireError,
};
use omv_rpc::{Config, Engine, Io, IoStatus, Packet, Role, Status};
use proptest::prelude::*;

const MAGICS: [u16; 6] = [
    wire::MAGIC_COMMAND_HEADER,
    wire::MAGIC_COMMAND_DATA,
    wire::MAGIC_RESULT_HEADER,
    wire::MAGIC_RESULT_DATA,
    wire::MAGIC_STREAM_SETUP,
    wire::MAGIC_STREAM_HEADER,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn command_header_round_trips(name_hash: u32, argument_len: u32) {
        let h = CommandHeaderRepr { name_hash, argument_len };
        let bytes = h.to_bytes();
        prop_assert_eq!(&bytes[..2], &wire::MAGIC_COMMAND_HEADER.to_le_bytes());
        prop_assert_eq!(CommandHeaderRepr::parse(&View::new_unchecked(&bytes[..])), Ok(h));
    }

    #[test]
    fn u32_packets_round_trip(value: u32, which in 0usize..3) {
        let (magic, bytes, parsed) = match which {
            0 => {
                let bytes = ResultHeaderRepr { result_len: value }.to_bytes();
                let parsed = ResultHeaderRepr::parse(&View::new_unchecked(&bytes[..])).map(|r| r.result_len);
                (wire::MAGIC_RESULT_HEADER, bytes, parsed)
            }
            1 => {
                let bytes = StreamSetupRepr { queue_depth: value }.to_bytes();
                let parsed = StreamSetupRepr::parse(&View::new_unchecked(&bytes[..])).map(|r| r.queue_depth);
                (wire::MAGIC_STREAM_SETUP, bytes, parsed)
            }
            _ => {
                let bytes = StreamHeaderRepr { frame_len: value }.to_bytes();
                let parsed = StreamHeaderRepr::parse(&View::new_unchecked(&bytes[..])).map(|r| r.frame_len);
                (wire::MAGIC_STREAM_HEADER, bytes, parsed)
            }
        };
        prop_assert_eq!(parsed, Ok(value));
        prop_assert_eq!(View::new_unchecked(&bytes[..]).magic(), magic);
        // Another magic is refused.
        for other in MAGICS.iter().filter(|&&m| m != magic) {
            prop_assert_eq!(wire::check(*other, &bytes), Err(WireError::BadMagic));
        }
    }

    #[test]
    fn data_packets_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..2048), m in 0usize..6) {
        let magic = MAGICS[m];
        let mut packet = vec![0u8; payload.len() + 4];
        packet[2..2 + payload.len()].copy_from_slice(&payload);
        wire::frame(magic, &mut packet);
        prop_assert_eq!(wire::check(magic, &packet), Ok(&payload[..]));
        prop_assert_eq!(wire::crc16(&packet[..packet.len() - 2]).to_le_bytes(), [packet[packet.len() - 2], packet[packet.len() - 1]]);
    }

    /// The slice-by-16 CRC (std builds and the x86-64 static library), the crc crate's 256-entry
    /// table (the static library on other targets: Cortex-M7 firmware, native modules) and the
    /// bitwise definition agree, on every length 0..300 (every tail after the 16-byte blocks),
    /// each case at its own offset into a random buffer.
    #[test]
    fn crc_implementations_agree(buffer in proptest::collection::vec(any::<u8>(), 340), offset in 0usize..40) {
        const TABLE1: crc::Crc<u16, crc::Table<1>> = crc::Crc::<u16, crc::Table<1>>::new(&crc::CRC_16_IBM_3740);
        const BITWISE: crc::Crc<u16, crc::NoTable> = crc::Crc::<u16, crc::NoTable>::new(&crc::CRC_16_IBM_3740);
        for len in 0..300 {
            let data = &buffer[offset..offset + len];
            let expected = BITWISE.checksum(data);
            prop_assert_eq!(TABLE1.checksum(data), expected, "table, len {}", len);
            prop_assert_eq!(wire::crc16_sliced(data), expected, "slice-by-16, len {}", len);
            prop_assert_eq!(wire::crc16(data), expected, "crc16, len {}", len);
        }
    }

    #[test]
    fn empty_packets_round_trip(m in 0usize..6) {
        let p = wire::empty_packet(MAGICS[m]);
        prop_assert_eq!(wire::check(MAGICS[m], &p), Ok(&[][..]));
    }

    /// CRC-16 catches every error burst of up to 16 bits: one damaged byte is always refused.
    #[test]
    fn one_damaged_byte_is_always_refused(
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        m in 0usize..6,
        at: prop::sample::Index,
        flip in 1u8..=255,
    ) {
        let magic = MAGICS[m];
        let mut packet = vec![0u8; payload.len() + 4];
        packet[2..2 + payload.len()].copy_from_slice(&payload);
        wire::frame(magic, &mut packet);
        let i = at.index(packet.len());
        packet[i] ^= flip;
        prop_assert!(wire::check(magic, &packet).is_err());
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..40), m in 0usize..6) {
        let _ = wire::check(MAGICS[m], &bytes);
        let view = View::new_unchecked(&bytes[..]);
        let _ = CommandHeaderRepr::parse(&view);
        let _ = ResultHeaderRepr::parse(&view);
        let _ = StreamSetupRepr::parse(&view);
        let _ = StreamHeaderRepr::parse(&view);
        let _ = wire::EmptyRepr::parse(MAGICS[m], &view);
        let _ = wire::DataRepr::parse(MAGICS[m], &view);
        let mut copy = bytes.clone();
        wire::frame(MAGICS[m], &mut copy);
        if bytes.len() >= 4 {
            prop_assert!(wire::check(MAGICS[m], &copy).is_ok());
        } else {
            prop_assert_eq!(copy, bytes);
        }
    }
}

/// One thing a hostile or broken caller/peer can do to an engine.
#[derive(Debug, Clone)]
enum Step {
    /// Complete the pending action with this status, these bytes (for receives: into the
    /// engine's buffer, or as the caller's buffer) and a buffer length offset (wrong lengths).
    Complete {
        status: u8,
        bytes: Vec<u8>,
        len_skew: i8,
        advance: u16,
    },
    /// Complete a receive with a valid packet of the expected kind carrying `value`.
    Valid {
        value: u32,
    },
    Start {
        op: u8,
        len: u16,
        timeout: u16,
    },
    Abort,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..4, proptest::collection::vec(any::<u8>(), 0..24), -2i8..3, 0u16..300)
            .prop_map(|(status, bytes, len_skew, advance)| Step::Complete { status, bytes, len_skew, advance }),
        4 => prop_oneof![Just(0u32), Just(1), Just(3), Just(1000), Just(1001), Just(u32::MAX), Just(u32::MAX - 3), any::<u32>()]
            .prop_map(|value| Step::Valid { value }),
        1 => (0u8..5, 0u16..40, 0u16..50).prop_map(|(op, len, timeout)| Step::Start { op, len, timeout }),
        1 => Just(Step::Abort),
    ]
}

const LIMIT: u32 = 1000;

fn valid_packet(packet: Packet, len: usize, value: u32) -> Vec<u8> {
    match (packet, len) {
        (Packet::CommandHeader, 12) => {
            CommandHeaderRepr { name_hash: value ^ 0x55, argument_len: value }.to_bytes().to_vec()
        }
        (Packet::ResultHeader, 8) => ResultHeaderRepr { result_len: value }.to_bytes().to_vec(),
        (Packet::StreamHeader, 8) => StreamHeaderRepr { frame_len: value }.to_bytes().to_vec(),
        (Packet::StreamSetup, 8) => StreamSetupRepr { queue_depth: value }.to_bytes().to_vec(),
        (Packet::StreamAck, 1) => vec![value as u8],
        (Packet::StreamFrame, n) => vec![value as u8; n],
        (p, n) if n >= 4 => {
            let magic = match p {
                Packet::CommandHeader => wire::MAGIC_COMMAND_HEADER,
                Packet::CommandData => wire::MAGIC_COMMAND_DATA,
                Packet::ResultHeader => wire::MAGIC_RESULT_HEADER,
                _ => wire::MAGIC_RESULT_DATA,
            };
            let mut v = vec![value as u8; n];
            wire::frame(magic, &mut v);
            v
        }
        (_, n) => vec![0; n],
    }
}

fn drive(role: Role, steps: &[Step]) -> Result<(), TestCaseError> {
    let config = Config {
        max_argument_len: LIMIT,
        max_result_len: LIMIT,
        max_frame_len: LIMIT,
        max_queue_depth: 7,
        ..Config::default()
    };
    let mut e: Engine<Vec<u8>> = Engine::new(role, config);
    let mut now: u32 = u32::MAX - 1000;
    let mut started = [0u32; 2];
    for s in steps {
        // poll() twice: same answer, no side effects.
        let first = format!("{:?}", e.poll(now));
        let second = format!("{:?}", e.poll(now));
        prop_assert_eq!(&first, &second);
        // Nothing asks for more than the limits allow.
        match e.poll(now) {
            Io::Recv { len, into: None, packet, .. } => {
                let limit = if packet == Packet::StreamFrame { LIMIT } else { LIMIT + 4 };
                prop_assert!(len as u32 <= limit, "asked for {} bytes", len);
            }
            Io::Recv { len, into: Some(b), .. } => prop_assert!(b.len() == len && len <= 12),
            Io::Dispatch { argument, .. } => prop_assert!(argument.len() as u32 <= LIMIT),
            Io::Deliver { frame } => prop_assert!(frame.len() as u32 <= LIMIT),
            _ => {}
        }
        match s {
            Step::Start { op, len, timeout } => {
                let t = u32::from(*timeout);
                let r = match op {
                    0 => e.call_start(7, vec![0u8; usize::from(*len)], t, t, now),
                    1 => e.serve_start(t, t, now),
                    2 => e.stream_reader_start(u32::from(*len), t, now),
                    3 => e.stream_writer_start(t, now),
                    _ => e.call_start(7, vec![0u8; usize::from(*len) % 4], t, t, now),
                };
                prop_assert!(matches!(r, Status::Ok | Status::Busy | Status::BadBuffer));
                if r == Status::Ok && (*op == 0 || *op == 1) {
                    started[usize::from(*op)] += 1;
                }
                if *op == 4 {
                    prop_assert!(r != Status::Ok, "a packet shorter than 4 bytes is refused");
                }
            }
            Step::Abort => {
                e.abort();
                prop_assert!(!e.is_busy());
                prop_assert!(matches!(e.poll(now), Io::Done(_)));
            }
            Step::Valid { value } => {
                let buf = match e.poll(now) {
                    Io::Recv { packet, len, into: Some(into), .. } => {
                        let v = valid_packet(packet, len, *value);
                        into.copy_from_slice(&v);
                        None
                    }
                    Io::Recv { packet, len, into: None, .. } => {
                        Some(valid_packet(packet, len, *value))
                    }
                    Io::Dispatch { .. } => Some(vec![1u8; 4 + (*value as usize % 50)]),
                    Io::Produce => Some(vec![2u8; *value as usize % 50]),
                    _ => None,
                };
                e.complete(now, IoStatus::Ok, buf);
            }
            Step::Complete { status, bytes, len_skew, advance } => {
                now = now.wrapping_add(u32::from(*advance));
                let status = match status {
                    0 | 3 => IoStatus::Ok,
                    1 => IoStatus::Timeout,
                    _ => IoStatus::Error,
                };
                let fill = |n: usize| -> Vec<u8> {
                    let n = (n as i64 + i64::from(*len_skew)).max(0) as usize;
                    (0..n)
                        .map(|i| bytes.get(i % bytes.len().max(1)).copied().unwrap_or(0))
                        .collect()
                };
                let buf = match e.poll(now) {
                    Io::Recv { into: Some(into), .. } => {
                        for (i, b) in into.iter_mut().enumerate() {
                            *b = bytes.get(i).copied().unwrap_or(0);
                        }
                        None
                    }
                    Io::Recv { len, into: None, .. } => Some(fill(len)),
                    Io::Dispatch { .. } | Io::Produce => Some(fill(bytes.len())),
                    _ => None,
                };
                e.complete(now, status, buf);
            }
        }
        // An operation never ends as BUSY (that is only a start() answer).
        prop_assert!(e.poll(now) != Io::Done(Status::Busy));
        // Each started call or turn ends at most once.
        let st = e.stats();
        prop_assert!(st.calls_ok + st.calls_failed <= started[0]);
        prop_assert!(st.commands_served <= started[1]);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn master_never_panics(steps in proptest::collection::vec(step(), 1..80)) {
        drive(Role::Master, &steps)?;
    }

    #[test]
    fn slave_never_panics(steps in proptest::collection::vec(step(), 1..80)) {
        drive(Role::Slave, &steps)?;
    }
}

/// A hostile length (4 GiB, just over the limit, at u32::MAX - 3 where +4 would wrap) is refused
/// before any buffer is asked for, and counted.
#[test]
fn hostile_lengths_never_ask_for_a_buffer() {
    for len in [LIMIT + 1, u32::MAX - 3, u32::MAX] {
        let config = Config { max_argument_len: LIMIT, ..Config::default() };
        let mut s: Engine<Vec<u8>> = Engine::new(Role::Slave, config);
        s.serve_start(10, 10, 0);
        s.complete(0, IoStatus::Ok, None); // flush
        match s.poll(0) {
            Io::Recv { into: Some(into), .. } => into
                .copy_from_slice(&CommandHeaderRepr { name_hash: 1, argument_len: len }.to_bytes()),
            other => panic!("{other:?}"),
        }
        s.complete(0, IoStatus::Ok, None);
        assert_eq!(s.poll(0), Io::Flush, "the attempt failed and a new one starts");
        assert_eq!(s.stats().too_long, 1);

        let config = Config { max_result_len: LIMIT, ..Config::default() };
        let mut m: Engine<Vec<u8>> = Engine::new(Role::Master, config);
        m.call_start(1, vec![0; 4], 100, 100, 0);
        // flush (a new engine), COMMAND_HEADER, its ack, COMMAND_DATA, its ack, RESULT_HEADER
        // request (phase 2 in sync: no flush).
        let ack = |magic| Some(wire::empty_packet(magic).to_vec());
        for bytes in
            [None, None, ack(wire::MAGIC_COMMAND_HEADER), None, ack(wire::MAGIC_COMMAND_DATA), None]
        {
            if let Some(b) = bytes {
                if let Io::Recv { into: Some(into), .. } = m.poll(0) {
                    into.copy_from_slice(&b);
                }
            }
            m.complete(0, IoStatus::Ok, None);
        }
        match m.poll(0) {
            Io::Recv { packet: Packet::ResultHeader, into: Some(into), .. } => {
                into.copy_from_slice(&ResultHeaderRepr { result_len: len }.to_bytes())
            }
            other => panic!("{other:?}"),
        }
        m.complete(0, IoStatus::Ok, None);
        assert_eq!(m.poll(0), Io::Flush);
        assert_eq!(m.stats().too_long, 1);
        assert_eq!(m.last_error().status, Status::Ok, "the call is still running");
    }
}
