//! Byte-exact checks against the traces recorded from the reference implementation
//! (tests/vectors/rpc-wire-vectors.json, a copy of shared/rpc-wire-vectors.json).

mod support;

use omv_rpc::ffi::*;
use omv_rpc::{crc16, name_hash, Engine, Status};
use support::*;

#[test]
fn every_recorded_crc() {
    let v = vectors();
    let cases = v.get("crc16").arr();
    assert!(cases.len() >= 6);
    for c in cases {
        assert_eq!(
            crc16(&c.get("hex").hex()) as f64,
            c.get("crc").num(),
            "crc of {}",
            c.get("hex").str()
        );
    }
}

#[test]
fn every_recorded_hash() {
    let v = vectors();
    let cases = v.get("hash").arr();
    assert!(cases.len() >= 8);
    for c in cases {
        let name = c.get("name").str();
        assert_eq!(name_hash(name.as_bytes()) as f64, c.get("hash").num(), "hash of {name:?}");
    }
}

struct Recorded {
    name: String,
    argument: Vec<u8>,
    registered: bool,
    result: Vec<u8>,
    master_to_slave: Vec<u8>,
    slave_to_master: Vec<u8>,
}

fn recorded_calls() -> Vec<Recorded> {
    vectors()
        .get("calls")
        .arr()
        .iter()
        .map(|c| Recorded {
            name: c.get("name").str().to_string(),
            argument: c.get("arg_hex").hex(),
            registered: c.get("registered").bool(),
            result: c.get("result_hex").hex(),
            master_to_slave: c.get("master_to_slave_hex").hex(),
            slave_to_master: c.get("slave_to_master_hex").hex(),
        })
        .collect()
}

/// A master call against the slave's recorded bytes writes exactly the master's recorded bytes
/// and returns the recorded result (empty for the unregistered name). `engine` is new (it
/// flushes once, before its first byte) or in sync after a good call (it never flushes): no
/// phase after a good one flushes.
fn master_reproduces(engine: &mut Engine<Vec<u8>>, c: &Recorded) {
    let fresh = engine.stats().calls_ok == 0;
    engine.stats_reset();
    let hash = name_hash(c.name.as_bytes());
    assert_eq!(engine.call_start(hash, command_packet(&c.argument), 1000, 1000, 0), Status::Ok);
    let mut peer = Script::new(c.slave_to_master.clone());
    let status = peer.run(engine, &mut NoCallbacks);
    assert_eq!(status, Status::Ok, "call {}", c.name);
    assert_eq!(peer.written, c.master_to_slave, "master bytes of {}", c.name);
    assert_eq!(peer.flushes, if fresh { vec![0] } else { vec![] }, "flushes of {}", c.name);
    assert_eq!(peer.at, c.slave_to_master.len(), "master read every slave byte of {}", c.name);
    assert_eq!(engine.result().unwrap(), &c.result[..], "result of {}", c.name);
    assert_eq!(engine.result_len() as usize, c.result.len());
    let stats = engine.stats();
    assert_eq!(
        (stats.calls_ok, stats.packets_sent, stats.packets_received, stats.retries),
        (1, 4, 4, 0)
    );
}

/// The slave, fed the master's recorded bytes, writes exactly the slave's recorded bytes; it
/// flushes as `master_reproduces` says.
fn slave_reproduces(engine: &mut Engine<Vec<u8>>, all: &[Recorded], c: &Recorded) {
    struct Registered<'a>(&'a [Recorded], Vec<(u32, Vec<u8>)>);
    impl Callbacks for Registered<'_> {
        fn dispatch(&mut self, name_hash: u32, argument: &[u8]) -> Option<Vec<u8>> {
            let call = self
                .0
                .iter()
                .find(|c| c.registered && omv_rpc::name_hash(c.name.as_bytes()) == name_hash)?;
            self.1.push((name_hash, argument.to_vec()));
            // The recorded callbacks: echo returns its argument, the others their recorded result.
            Some(if call.name == "echo" { argument.to_vec() } else { call.result.clone() })
        }
    }
    let fresh = engine.stats().commands_served == 0;
    engine.stats_reset();
    assert_eq!(engine.serve_start(1000, 1000, 0), Status::Ok);
    let mut peer = Script::new(c.master_to_slave.clone());
    let mut callbacks = Registered(all, Vec::new());
    let status = peer.run(engine, &mut callbacks);
    assert_eq!(status, Status::Ok, "turn {}", c.name);
    assert_eq!(peer.written, c.slave_to_master, "slave bytes of {}", c.name);
    assert_eq!(peer.flushes, if fresh { vec![0] } else { vec![] }, "flushes of {}", c.name);
    assert_eq!(peer.at, c.master_to_slave.len());
    if c.registered {
        assert_eq!(callbacks.1, vec![(name_hash(c.name.as_bytes()), c.argument.clone())]);
    } else {
        assert!(callbacks.1.is_empty());
    }
    assert_eq!((engine.stats().commands_served, engine.stats().retries), (1, 0));
}

#[test]
fn master_writes_the_recorded_bytes_of_every_call() {
    let calls = recorded_calls();
    assert_eq!(calls.len(), 5);
    for c in &calls {
        master_reproduces(&mut master(), c);
    }
}

/// Back-to-back calls on one engine, the peer's next packets already waiting: only the very
/// first attempt flushes, and every call is byte-exact.
#[test]
fn back_to_back_recorded_calls_flush_only_at_the_start() {
    let calls = recorded_calls();
    let (mut m, mut s) = (master(), slave());
    for _ in 0..2 {
        for c in &calls {
            master_reproduces(&mut m, c);
            slave_reproduces(&mut s, &calls, c);
        }
    }
}

#[test]
fn slave_writes_the_recorded_bytes_of_every_call() {
    let calls = recorded_calls();
    assert!(calls.iter().any(|c| !c.registered), "the vectors include an unregistered name");
    for c in &calls {
        slave_reproduces(&mut slave(), &calls, c);
    }
}

// ----- streams -----

struct RecordedStream {
    queue_depth: u32,
    frames: Vec<Vec<u8>>,
    reader_to_writer: Vec<u8>,
    writer_to_reader: Vec<u8>,
}

fn recorded_stream() -> RecordedStream {
    let v = vectors();
    let s = v.get("stream");
    assert!(s.get("received_ok").bool());
    RecordedStream {
        queue_depth: s.get("queue_depth").num() as u32,
        frames: s.get("frames_hex").arr().iter().map(|f| f.hex()).collect(),
        reader_to_writer: s.get("reader_to_writer_hex").hex(),
        writer_to_reader: s.get("writer_to_reader_hex").hex(),
    }
}

#[test]
fn stream_reader_writes_the_recorded_bytes() {
    // The recorded reader stops (its callback raises) on the last frame, so it acks one
    // frame fewer than it receives.
    struct Reader {
        got: Vec<Vec<u8>>,
        stop_after: usize,
    }
    impl Callbacks for Reader {
        fn deliver(&mut self, frame: &[u8]) -> bool {
            self.got.push(frame.to_vec());
            self.got.len() < self.stop_after
        }
    }
    let s = recorded_stream();
    let mut engine = master();
    assert_eq!(engine.stream_reader_start(s.queue_depth, 5000, 0), Status::Ok);
    let mut peer = Script::new(s.writer_to_reader.clone());
    let mut reader = Reader { got: Vec::new(), stop_after: s.frames.len() };
    let status = peer.run(&mut engine, &mut reader);
    assert_eq!(status, Status::StreamStopped);
    assert_eq!(reader.got, s.frames);
    assert_eq!(peer.written, s.reader_to_writer);
    assert_eq!(peer.at, s.writer_to_reader.len());
    assert_eq!(peer.flushes, vec![0], "the reader drops left-over input before its setup");
    assert_eq!(engine.stats().stream_frames as usize, s.frames.len() - 1);
}

#[test]
fn stream_writer_writes_the_recorded_bytes() {
    struct Writer {
        frames: std::vec::IntoIter<Vec<u8>>,
    }
    impl Callbacks for Writer {
        fn produce(&mut self) -> Option<Vec<u8>> {
            self.frames.next()
        }
    }
    let s = recorded_stream();
    let mut engine = slave();
    assert_eq!(engine.stream_writer_start(5000, 0), Status::Ok);
    let mut peer = Script::new(s.reader_to_writer.clone());
    let mut writer = Writer { frames: s.frames.clone().into_iter() };
    let status = peer.run(&mut engine, &mut writer);
    // After the sixth frame the writer takes one more ack, then its callback has no frame.
    assert_eq!(status, Status::StreamStopped);
    assert_eq!(peer.written, s.writer_to_reader);
    assert_eq!(peer.at, s.reader_to_writer.len());
    assert!(peer.flushes.is_empty(), "the writer never flushes: the setup may be waiting");
    assert_eq!(engine.stats().stream_frames as usize, s.frames.len());
}

#[test]
fn stream_reader_rejects_a_header_with_only_the_magic_right() {
    let s = recorded_stream();
    let mut bytes = s.writer_to_reader.clone();
    bytes[6] ^= 0x01; // the crc of the first STREAM_HEADER
    let mut engine = master();
    engine.stream_reader_start(s.queue_depth, 5000, 0);
    let mut peer = Script::new(bytes);
    assert_eq!(peer.run(&mut engine, &mut NoCallbacks), Status::StreamBadPacket);
    assert_eq!(engine.stats().bad_crc, 1);
}

// ----- the same through the C ABI -----

struct CEngine(Box<omv_rpc_engine_t>);

impl CEngine {
    fn new(role: u32) -> Self {
        let mut e = Box::new(omv_rpc_engine_t { opaque: [0; omv_rpc::ffi::ENGINE_SIZE / 8] });
        unsafe { omv_rpc_init(&mut *e, role, std::ptr::null()) };
        CEngine(e)
    }
    fn poll(&mut self, now: u32) -> omv_rpc_io_t {
        let mut io = std::mem::MaybeUninit::<omv_rpc_io_t>::uninit();
        unsafe {
            omv_rpc_poll(&mut *self.0, now, io.as_mut_ptr());
            io.assume_init()
        }
    }
}

/// Drives a C-ABI engine against recorded input; `dispatch` returns the result payload.
/// Returns the status, the bytes written, the last caller buffer and the number of FLUSHes.
fn run_c(
    e: &mut CEngine,
    input: &[u8],
    dispatch: &dyn Fn(u32, &[u8]) -> Vec<u8>,
) -> (u32, Vec<u8>, Vec<u8>, usize) {
    let mut at = 0;
    let mut flushes = 0;
    let mut written = Vec::new();
    let mut caller_buf: Vec<u8> = Vec::new();
    // Result packets handed to the engine stay alive until the next DONE.
    let mut result_packets: Vec<Vec<u8>> = Vec::new();
    loop {
        let io = e.poll(0);
        let again = e.poll(0);
        assert_eq!(
            (io.action, io.len, io.data),
            (again.action, again.len, again.data),
            "poll has no side effects"
        );
        unsafe {
            match io.action {
                0 => return (io.status, written, caller_buf, flushes),
                1 => {
                    flushes += 1;
                    omv_rpc_complete(&mut *e.0, 0, 0, std::ptr::null(), 0);
                }
                2 => {
                    written.extend_from_slice(std::slice::from_raw_parts(io.data, io.len as usize));
                    omv_rpc_complete(&mut *e.0, 0, 0, std::ptr::null(), 0);
                }
                3 => {
                    let n = io.len as usize;
                    let bytes = &input[at..at + n];
                    at += n;
                    if io.data.is_null() {
                        caller_buf = bytes.to_vec();
                        omv_rpc_complete(&mut *e.0, 0, 0, caller_buf.as_ptr(), n);
                    } else {
                        std::ptr::copy_nonoverlapping(bytes.as_ptr(), io.data, n);
                        omv_rpc_complete(&mut *e.0, 0, 0, std::ptr::null(), 0);
                    }
                }
                4 => {
                    let argument = std::slice::from_raw_parts(io.data, io.len as usize);
                    let result = dispatch(io.name_hash, argument);
                    let mut result_packet = vec![0; result.len() + 4];
                    result_packet[2..2 + result.len()].copy_from_slice(&result);
                    omv_rpc_complete(&mut *e.0, 0, 0, result_packet.as_ptr(), result_packet.len());
                    result_packets.push(result_packet);
                }
                a => panic!("unexpected action {a}"),
            }
        }
    }
}

#[test]
fn echo_through_the_c_abi_in_both_roles() {
    let calls = recorded_calls();
    let echo = calls.iter().find(|c| c.name == "echo").unwrap();

    let mut m = CEngine::new(0);
    let mut packet = command_packet(&echo.argument);
    let hash = unsafe { omv_rpc_name_hash(echo.name.as_ptr(), echo.name.len()) };
    let started = unsafe {
        omv_rpc_call_start(&mut *m.0, hash, packet.as_mut_ptr(), packet.len(), 1000, 1000, 0)
    };
    assert_eq!(started, 0);
    let (status, written, result_packet, flushes) =
        run_c(&mut m, &echo.slave_to_master, &|_, _| unreachable!());
    assert_eq!(status, 0);
    assert_eq!(written, echo.master_to_slave);
    assert_eq!(flushes, 1, "a new engine flushes once");
    let result_len = unsafe { omv_rpc_result_len(&*m.0) } as usize;
    assert_eq!(&result_packet[2..2 + result_len], &echo.result[..]);
    let mut stats = std::mem::MaybeUninit::<omv_rpc_stats_t>::uninit();
    let stats = unsafe {
        omv_rpc_stats(&*m.0, stats.as_mut_ptr());
        stats.assume_init()
    };
    assert_eq!(stats.calls_ok, 1);
    // The same call again, back to back: in sync, no FLUSH.
    let mut packet = command_packet(&echo.argument);
    let started = unsafe {
        omv_rpc_call_start(&mut *m.0, hash, packet.as_mut_ptr(), packet.len(), 1000, 1000, 0)
    };
    assert_eq!(started, 0);
    let (status, written, _, flushes) =
        run_c(&mut m, &echo.slave_to_master, &|_, _| unreachable!());
    assert_eq!((status, flushes), (0, 0));
    assert_eq!(written, echo.master_to_slave);

    let mut s = CEngine::new(1);
    for expect_flushes in [1, 0] {
        assert_eq!(unsafe { omv_rpc_serve_start(&mut *s.0, 1000, 1000, 0) }, 0);
        let (status, written, _, flushes) = run_c(&mut s, &echo.master_to_slave, &|h, arg| {
            assert_eq!(h, hash);
            arg.to_vec()
        });
        assert_eq!((status, flushes), (0, expect_flushes));
        assert_eq!(written, echo.slave_to_master);
    }
}

/// A non-blocking caller: poll() as often as it likes (nothing changes until complete()),
/// give up half-way with abort(), and the same engine then makes a clean call.
#[test]
fn poll_is_repeatable_and_abort_leaves_the_engine_reusable() {
    let calls = recorded_calls();
    let echo = calls.iter().find(|c| c.name == "echo").unwrap();
    let mut engine = master();
    let hash = name_hash(echo.name.as_bytes());
    assert_eq!(engine.call_start(hash, command_packet(&echo.argument), 1000, 1000, 0), Status::Ok);
    // Carry out the first three actions (flush, COMMAND_HEADER, its ack), polling each many times.
    let mut peer = Script::new(echo.slave_to_master.clone());
    for _ in 0..3 {
        let first = format!("{:?}", engine.poll(0));
        for now in 0..50 {
            assert_eq!(format!("{:?}", engine.poll(now)), first);
        }
        if let omv_rpc::Io::Recv { into: Some(into), len, .. } = engine.poll(0) {
            into.copy_from_slice(&peer.input[peer.at..peer.at + len]);
            peer.at += len;
        }
        engine.complete(0, omv_rpc::IoStatus::Ok, None);
    }
    assert!(engine.is_busy());
    assert_eq!(engine.call_start(hash, command_packet(b""), 10, 10, 0), Status::Busy);
    engine.abort();
    assert!(!engine.is_busy());
    assert!(matches!(engine.poll(0), omv_rpc::Io::Done(_)));
    // complete() on an idle engine is ignored.
    engine.complete(0, omv_rpc::IoStatus::Ok, Some(vec![1, 2, 3]));
    assert!(!engine.is_busy());
    // The same engine makes the whole recorded call.
    assert_eq!(engine.call_start(hash, command_packet(&echo.argument), 1000, 1000, 0), Status::Ok);
    let mut peer = Script::new(echo.slave_to_master.clone());
    assert_eq!(peer.run(&mut engine, &mut NoCallbacks), Status::Ok);
    assert_eq!(peer.written, echo.master_to_slave);
    assert_eq!(peer.flushes, vec![0], "after an abort the first attempt flushes");
    assert_eq!(engine.result().unwrap(), &echo.result[..]);
}

// ----- packet by packet (smoltcp style: deconstruct, parse, emit, construct) -----

use omv_rpc::wire::{
    self, CommandHeaderRepr, DataRepr, EmptyRepr, Packet as View, ResultHeaderRepr,
    StreamHeaderRepr, StreamSetupRepr, WireError,
};

/// Cuts the next `len` bytes off `stream`.
fn take<'a>(stream: &mut &'a [u8], len: usize) -> &'a [u8] {
    assert!(stream.len() >= len, "the recorded stream ends early");
    let (packet, rest) = stream.split_at(len);
    *stream = rest;
    packet
}

/// The view of one recorded packet says what the table of PROTOCOL.md says, and a CRC flip
/// is caught.
fn deconstruct(packet: &[u8], magic: u16, payload_len: usize) {
    let view = View::new_checked(packet).unwrap();
    assert_eq!(view.magic(), magic);
    assert_eq!(view.payload().len(), payload_len);
    assert_eq!(&packet[wire::PAYLOAD_OFFSET..packet.len() - 2], view.payload());
    assert_eq!(
        view.crc(),
        u16::from_le_bytes([packet[packet.len() - 2], packet[packet.len() - 1]])
    );
    assert!(view.verify_crc());
    let mut damaged = packet.to_vec();
    *damaged.last_mut().unwrap() ^= 0x80;
    assert_eq!(View::new_unchecked(&damaged[..]).check(magic), Err(WireError::BadCrc));
}

/// An empty recorded packet (ack or request): parse, then emit gives the same bytes.
fn empty_packet_round_trips(packet: &[u8], magic: u16) {
    deconstruct(packet, magic, 0);
    let repr = EmptyRepr::parse(magic, &View::new_unchecked(packet)).unwrap();
    assert_eq!(repr.buffer_len(), packet.len());
    assert_eq!(&repr.to_bytes()[..], packet);
}

/// A recorded data packet: parse, then framing the same payload in a new buffer gives the same
/// bytes.
fn data_packet_round_trips(packet: &[u8], magic: u16, data: &[u8]) {
    deconstruct(packet, magic, data.len());
    let repr = DataRepr::parse(magic, &View::new_unchecked(packet)).unwrap();
    assert_eq!(repr, DataRepr { magic, data_len: data.len() as u32 });
    let mut built = vec![0u8; repr.buffer_len()];
    let mut view = View::new_checked(&mut built[..]).unwrap();
    view.payload_mut().copy_from_slice(data);
    repr.emit(&mut view);
    assert_eq!(&built[..], packet);
}

#[test]
fn every_recorded_call_packet_by_packet() {
    let calls = recorded_calls();
    assert!(calls.len() >= 5);
    for c in &calls {
        let mut m = &c.master_to_slave[..];
        let header = take(&mut m, wire::COMMAND_HEADER_LEN);
        deconstruct(header, wire::MAGIC_COMMAND_HEADER, 8);
        let repr = CommandHeaderRepr::parse(&View::new_unchecked(header)).unwrap();
        assert_eq!(
            repr,
            CommandHeaderRepr {
                name_hash: name_hash(c.name.as_bytes()),
                argument_len: c.argument.len() as u32
            },
            "COMMAND_HEADER of {}",
            c.name
        );
        assert_eq!(repr.buffer_len(), header.len());
        assert_eq!(&repr.to_bytes()[..], header);
        let data = take(&mut m, c.argument.len() + wire::PACKET_OVERHEAD);
        data_packet_round_trips(data, wire::MAGIC_COMMAND_DATA, &c.argument);
        empty_packet_round_trips(take(&mut m, 4), wire::MAGIC_RESULT_HEADER);
        empty_packet_round_trips(take(&mut m, 4), wire::MAGIC_RESULT_DATA);
        assert!(m.is_empty(), "the master of {} wrote 4 packets", c.name);

        let mut s = &c.slave_to_master[..];
        empty_packet_round_trips(take(&mut s, 4), wire::MAGIC_COMMAND_HEADER);
        empty_packet_round_trips(take(&mut s, 4), wire::MAGIC_COMMAND_DATA);
        let header = take(&mut s, wire::U32_PACKET_LEN);
        deconstruct(header, wire::MAGIC_RESULT_HEADER, 4);
        let repr = ResultHeaderRepr::parse(&View::new_unchecked(header)).unwrap();
        assert_eq!(repr.result_len as usize, c.result.len(), "RESULT_HEADER of {}", c.name);
        assert_eq!(&repr.to_bytes()[..], header);
        let data = take(&mut s, c.result.len() + wire::PACKET_OVERHEAD);
        data_packet_round_trips(data, wire::MAGIC_RESULT_DATA, &c.result);
        assert!(s.is_empty(), "the slave of {} wrote 4 packets", c.name);
    }
}

#[test]
fn recorded_stream_packet_by_packet() {
    let st = recorded_stream();
    let mut r = &st.reader_to_writer[..];
    let setup = take(&mut r, wire::U32_PACKET_LEN);
    deconstruct(setup, wire::MAGIC_STREAM_SETUP, 4);
    let repr = StreamSetupRepr::parse(&View::new_unchecked(setup)).unwrap();
    assert_eq!(repr, StreamSetupRepr { queue_depth: st.queue_depth });
    assert_eq!(&repr.to_bytes()[..], setup);
    // The rest are ack bytes, one per frame acked, in LFSR order.
    let mut lfsr = wire::AckLfsr::START;
    assert!(!r.is_empty());
    for &ack in r {
        assert_eq!(ack, lfsr.0);
        lfsr.advance();
    }

    let mut w = &st.writer_to_reader[..];
    for frame in &st.frames {
        let header = take(&mut w, wire::U32_PACKET_LEN);
        deconstruct(header, wire::MAGIC_STREAM_HEADER, 4);
        let repr = StreamHeaderRepr::parse(&View::new_unchecked(header)).unwrap();
        assert_eq!(repr.frame_len as usize, frame.len());
        assert_eq!(&repr.to_bytes()[..], header);
        // Every other magic is refused, and so is a header of the wrong length.
        assert_eq!(StreamSetupRepr::parse(&View::new_unchecked(header)), Err(WireError::BadMagic));
        assert_eq!(
            StreamHeaderRepr::parse(&View::new_unchecked(&header[..7])),
            Err(WireError::Truncated)
        );
        assert_eq!(take(&mut w, frame.len()), &frame[..], "the frame's raw bytes, no crc");
    }
    assert!(w.is_empty());
}
