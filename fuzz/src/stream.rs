//! The stream reader against a hostile writer, the stream writer against a hostile reader.

use crate::*;

fn lfsr_next(x: u8) -> u8 {
    (x >> 1) ^ if x & 1 != 0 { 0xB8 } else { 0 }
}

/// A stream that makes no progress ends: at most this many io steps between two frames.
const MAX_STEPS_WITHOUT_A_FRAME: u32 = 16;

fn stream_status(s: u32) -> bool {
    s == OK || (5..=10).contains(&s)
}

pub fn run_reader(data: &[u8]) {
    let mut tape = Tape::new(data);
    let config = config_from(&mut tape);
    let (_, _, frame_limit) = resolved(&config);
    let now = start_time(&mut tape);
    let mut h = Harness::new(tape.u8() as u32 & 1, config, now);
    let mut wire = Wire::default();
    let depth = tape.hostile_len(255);
    let read_timeout = u32::from(tape.u8());
    let st = unsafe { ffi::omv_rpc_stream_reader_start(&mut *h.e, depth, read_timeout, h.now) };
    assert_eq!(st, OK);
    let mut headers: Vec<u32> = Vec::new();
    let mut buffers: Vec<Guarded> = Vec::new();
    let mut last_frame: Option<usize> = None;
    let mut ack = 0xFFu8;
    let mut setup_sent = false;
    let mut steps = 0;
    let status = loop {
        let io = h.poll();
        steps += 1;
        assert!(steps <= MAX_STEPS_WITHOUT_A_FRAME, "stream reader made {steps} steps without a frame");
        match io.action {
            ACTION_DONE => break io.status,
            ACTION_FLUSH => {
                wire.flush();
                h.tape_step(&mut tape);
                h.complete(IO_OK, None)
            }
            ACTION_WAIT => {
                h.to_deadline(&io);
                h.complete(IO_OK, None)
            }
            ACTION_SEND => {
                let len = io.len as usize;
                assert!(h.in_state(io.data, len), "reader SEND outside the engine state");
                let sent = unsafe { std::slice::from_raw_parts(io.data, len) };
                if !setup_sent {
                    assert_eq!(io.packet, PACKET_STREAM_SETUP);
                    assert!(sent.len() == 8 && valid_packet(MAGIC_STREAM_SETUP, sent), "bad STREAM_SETUP sent");
                    assert_eq!(u32_at(sent, 2), depth, "STREAM_SETUP carries another depth");
                    setup_sent = true;
                } else {
                    assert_eq!(io.packet, PACKET_STREAM_ACK);
                    assert_eq!(sent, [ack], "ack byte off the LFSR sequence");
                    ack = lfsr_next(ack);
                }
                match tape.u8() % 16 {
                    0 => {
                        h.to_deadline(&io);
                        h.complete(IO_TIMEOUT, None)
                    }
                    1 => h.complete(IO_ERROR, None),
                    _ => {
                        h.advance(u32::from(tape.u8() % 2));
                        h.complete(IO_OK, None)
                    }
                }
            }
            ACTION_RECV => {
                let mut error = false;
                if wire.pending.is_empty() {
                    let expected = |tape: &mut Tape, headers: &mut Vec<u32>| -> Vec<u8> {
                        if io.packet == PACKET_STREAM_HEADER {
                            let len = if tape.u8() & 1 == 0 { u32::from(tape.u8()) } else { tape.hostile_len(frame_limit) };
                            headers.push(len);
                            packet(MAGIC_STREAM_HEADER, &len.to_le_bytes())
                        } else {
                            tape.bytes((io.packet_len as usize).min(70_000))
                        }
                    };
                    let p = match tape.u8() % 9 {
                        0..=2 => expected(&mut tape, &mut headers),
                        3 => {
                            let n = 1 + usize::from(tape.u8() % 16);
                            tape.bytes(n)
                        }
                        4 => {
                            let magic = MAGICS[usize::from(tape.u8()) % MAGICS.len()];
                            let payload = tape.bytes(4);
                            if magic == MAGIC_STREAM_HEADER {
                                headers.push(u32_at(&payload, 0));
                            }
                            packet(magic, &payload)
                        }
                        5 => {
                            let mut p = expected(&mut tape, &mut headers);
                            if !p.is_empty() {
                                let bit = usize::from(tape.u16()) % (p.len() * 8);
                                p[bit / 8] ^= 1 << (bit % 8);
                            }
                            p
                        }
                        6 => {
                            let p = expected(&mut tape, &mut headers);
                            let cut = usize::from(tape.u16()) % p.len().max(1);
                            p[..cut.min(p.len())].to_vec()
                        }
                        7 => Vec::new(),
                        _ => {
                            error = true;
                            Vec::new()
                        }
                    };
                    wire.push(&p);
                }
                if io.data.is_null() {
                    assert!(io.len <= frame_limit, "a {}-byte frame asked for over the {frame_limit}-byte limit", io.len);
                }
                if let Some(g) = carry_out_recv(&mut h, &io, &mut wire, error, &mut tape, &buffers) {
                    buffers.push(g);
                    last_frame = Some(buffers.len() - 1);
                }
            }
            ACTION_DELIVER => {
                steps = 0;
                reached(4);
                let len = io.len as usize;
                assert!(
                    headers.contains(&io.len) || wire.read_valid(MAGIC_STREAM_HEADER, 8, &io.len.to_le_bytes()),
                    "frame of {len} bytes that no valid STREAM_HEADER announced"
                );
                assert!(io.len <= frame_limit, "frame of {len} bytes over the limit");
                if len > 0 {
                    let f = &buffers[last_frame.expect("DELIVER without a frame read")];
                    assert!(f.holds(io.data, len) && f.len() == len, "DELIVER outside the frame the caller read");
                }
                h.tape_step(&mut tape);
                let st = if tape.u8() % 8 == 0 { IO_ERROR } else { IO_OK };
                h.complete(st, None)
            }
            a => panic!("stream reader got action {a}"),
        }
    };
    assert!(stream_status(status), "stream reader ended {status}");
    for b in &buffers {
        b.check_guards("frame");
    }
}

pub fn run_writer(data: &[u8]) {
    let mut tape = Tape::new(data);
    let config = config_from(&mut tape);
    let max_depth = if config.max_queue_depth == 0 { 255 } else { config.max_queue_depth };
    let now = start_time(&mut tape);
    let mut h = Harness::new(tape.u8() as u32 & 1, config, now);
    let mut wire = Wire::default();
    let write_timeout = u32::from(tape.u8());
    let st = unsafe { ffi::omv_rpc_stream_writer_start(&mut *h.e, write_timeout, h.now) };
    assert_eq!(st, OK);
    let mut frames: Vec<Guarded> = Vec::new();
    let mut depth: Option<u32> = None;
    let mut setups: Vec<u32> = Vec::new();
    let mut peer_ack = 0xFFu8;
    let mut engine_ack = 0xFFu8;
    let mut sent_frames = 0u64;
    let mut acks = 0u64;
    let mut header_sent = false;
    let mut steps = 0;
    let status = loop {
        let io = h.poll();
        steps += 1;
        assert!(steps <= MAX_STEPS_WITHOUT_A_FRAME, "stream writer made {steps} steps without a frame");
        match io.action {
            ACTION_DONE => break io.status,
            ACTION_FLUSH => {
                wire.flush();
                h.complete(IO_OK, None)
            }
            ACTION_WAIT => {
                h.to_deadline(&io);
                h.complete(IO_OK, None)
            }
            ACTION_PRODUCE => {
                steps = 0;
                if depth.is_none() {
                    // The first frame: the setup that came must have been valid.
                    let d = *setups.last().expect("PRODUCE before any valid STREAM_SETUP");
                    depth = Some(d.clamp(1, max_depth.max(1)));
                }
                h.tape_step(&mut tape);
                match tape.u8() % 16 {
                    0 => h.complete(IO_ERROR, None),
                    k => {
                        let n = if k == 1 { usize::from(tape.u16()) } else { usize::from(tape.u8() % 40) };
                        let g = Guarded::new(&tape.bytes(n));
                        h.complete(IO_OK, Some(&g));
                        frames.push(g);
                        reached(5);
                        header_sent = false;
                    }
                }
            }
            ACTION_SEND => {
                let len = io.len as usize;
                let frame = frames.last().expect("SEND before any frame");
                let sent = unsafe { std::slice::from_raw_parts(io.data, len) };
                if !header_sent {
                    assert_eq!(io.packet, PACKET_STREAM_HEADER);
                    assert!(h.in_state(io.data, len), "STREAM_HEADER outside the engine state");
                    assert!(valid_packet(MAGIC_STREAM_HEADER, sent) && len == 8, "bad STREAM_HEADER sent");
                    assert_eq!(u32_at(sent, 2) as usize, frame.len(), "STREAM_HEADER of another length");
                    let d = u64::from(depth.unwrap());
                    assert!(sent_frames - acks < d, "a frame sent with {} unacked, depth {d}", sent_frames - acks);
                    sent_frames += 1;
                    header_sent = true;
                } else {
                    assert_eq!(io.packet, PACKET_STREAM_FRAME);
                    assert!(len == frame.len() && (len == 0 || frame.holds(io.data, len)), "frame SEND outside the caller's frame");
                }
                match tape.u8() % 16 {
                    0 => {
                        h.to_deadline(&io);
                        h.complete(IO_TIMEOUT, None)
                    }
                    1 => h.complete(IO_ERROR, None),
                    _ => {
                        h.advance(u32::from(tape.u8() % 2));
                        h.complete(IO_OK, None)
                    }
                }
            }
            ACTION_RECV => {
                let mut error = false;
                if wire.pending.is_empty() {
                    if io.packet == PACKET_STREAM_SETUP {
                        match tape.u8() % 6 {
                            0..=2 => {
                                let d = tape.hostile_len(255);
                                setups.push(d);
                                wire.push(&packet(MAGIC_STREAM_SETUP, &d.to_le_bytes()))
                            }
                            3 => {
                                let mut p = packet(MAGIC_STREAM_SETUP, &tape.bytes(4));
                                let bit = usize::from(tape.u8()) % 64;
                                p[bit / 8] ^= 1 << (bit % 8);
                                wire.push(&p)
                            }
                            4 => {
                                let n = 1 + usize::from(tape.u8() % 12);
                                wire.push(&tape.bytes(n))
                            }
                            _ => error = true,
                        }
                    } else {
                        match tape.u8() % 8 {
                            0..=4 => {
                                wire.push(&[peer_ack]);
                                peer_ack = lfsr_next(peer_ack)
                            }
                            5 => wire.push(&[tape.u8()]),
                            6 => {}
                            _ => error = true,
                        }
                    }
                }
                let before = wire.pending.front().copied();
                let packet_kind = io.packet;
                let n = wire.pending.len();
                carry_out_recv(&mut h, &io, &mut wire, error, &mut tape, &[]);
                if packet_kind == PACKET_STREAM_ACK && !error && n >= 1 && before == Some(engine_ack) {
                    acks += 1;
                    engine_ack = lfsr_next(engine_ack);
                }
            }
            a => panic!("stream writer got action {a}"),
        }
    };
    assert!(stream_status(status), "stream writer ended {status}");
    for f in &frames {
        f.check_guards("frame");
    }
}
