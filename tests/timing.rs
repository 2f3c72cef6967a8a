//! Every timing rule of PROTOCOL.md, checked with a virtual clock: the short timeouts' start
//! (3 ms master, 2 ms slave), growth (x4//3, +1), cap at the phase timeout and reset at each
//! phase, the 5000 ms long timeout of data packets, the 1000 ms stream waits, and the phase
//! loop boundary (`while elapsed < phase_timeout: attempt`).

mod support;

use omv_rpc::wire::{self, CommandHeader, U32Packet};
use omv_rpc::{Config, Engine, Io, IoStatus, Packet, Reason, Role, Status};
use support::*;

/// One action as seen by the tests: (action name, packet, timeout, len).
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Flush,
    Send(Packet, u32, usize),
    Recv(Packet, u32, usize),
    Dispatch,
    Deliver,
    Produce,
    Done(Status),
}

fn seen(e: &mut Engine<Vec<u8>>, now: u32) -> Seen {
    match e.poll(now) {
        Io::Flush => Seen::Flush,
        Io::Send { packet, timeout_ms, data } => Seen::Send(packet, timeout_ms, data.len()),
        Io::Recv { packet, timeout_ms, len, .. } => Seen::Recv(packet, timeout_ms, len),
        Io::Dispatch { .. } => Seen::Dispatch,
        Io::Deliver { .. } => Seen::Deliver,
        Io::Produce => Seen::Produce,
        Io::Done(s) => Seen::Done(s),
    }
}

/// Feeds `bytes` to the engine's pending receive (into its own buffer or the caller's).
fn feed(e: &mut Engine<Vec<u8>>, now: u32, bytes: &[u8]) {
    let buf = match e.poll(now) {
        Io::Recv { into: Some(into), len, .. } => {
            assert_eq!(len, bytes.len());
            into.copy_from_slice(bytes);
            None
        }
        Io::Recv { into: None, len, .. } => {
            assert_eq!(len, bytes.len());
            Some(bytes.to_vec())
        }
        other => panic!("expected a receive, got {other:?}"),
    };
    e.complete(now, IoStatus::Ok, buf);
}

fn ok(e: &mut Engine<Vec<u8>>, now: u32) {
    e.complete(now, IoStatus::Ok, None);
}

/// The master's short timeouts of successive attempts of a phase of `phase_timeout` ms, where
/// every attempt fails by waiting out its first short receive; and the phase's status.
fn master_attempts(phase_timeout: u32, config: Config) -> (Vec<u32>, Status, u32) {
    let mut e: Engine<Vec<u8>> = Engine::new(Role::Master, config);
    let mut now = 1_000;
    e.call_start(1, command_packet(b"x"), phase_timeout, 1000, now);
    let mut shorts = Vec::new();
    loop {
        match seen(&mut e, now) {
            Seen::Flush => ok(&mut e, now),
            Seen::Send(Packet::CommandHeader, t, 12) => {
                shorts.push(t);
                ok(&mut e, now);
            }
            Seen::Recv(Packet::CommandHeader, t, 4) => {
                assert_eq!(t, *shorts.last().unwrap(), "send and receive use the same short timeout");
                now += t;
                e.complete(now, IoStatus::Timeout, None);
            }
            Seen::Done(s) => return (shorts, s, e.last_error().attempts),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The reference phase loop, independently: attempts start while elapsed < timeout; each
/// takes its short timeout; the master grows t to min(t * 4 // 3, timeout).
fn reference_schedule(start: u32, phase_timeout: u32, grow: impl Fn(u32) -> u32) -> Vec<u32> {
    let (mut elapsed, mut t, mut out) = (0u32, start, Vec::new());
    while elapsed < phase_timeout {
        out.push(t);
        elapsed += t;
        t = grow(t).min(phase_timeout);
    }
    out
}

#[test]
fn master_short_timeout_starts_at_3_and_grows_by_4_thirds_capped_at_the_phase() {
    let (shorts, status, attempts) = master_attempts(1000, Config::default());
    assert_eq!(&shorts[..8], &[3, 4, 5, 6, 8, 10, 13, 17]);
    assert_eq!(shorts, reference_schedule(3, 1000, |t| t * 4 / 3));
    assert_eq!(status, Status::SendTimeout);
    assert_eq!(attempts as usize, shorts.len());
    // A short phase: the cap is the phase timeout itself.
    let (shorts, _, _) = master_attempts(40, Config::default());
    assert_eq!(shorts, reference_schedule(3, 40, |t| t * 4 / 3));
    assert!(shorts.iter().all(|&t| t <= 40));
}

#[test]
fn the_phase_loop_boundary_is_elapsed_less_than_timeout() {
    // Attempts take 3, 4, 5 ms: they start at 0, 3, 7, 12.
    assert_eq!(master_attempts(7, Config::default()).0, vec![3, 4]);
    assert_eq!(master_attempts(8, Config::default()).0, vec![3, 4, 5]);
    assert_eq!(master_attempts(12, Config::default()).0, vec![3, 4, 5]);
    assert_eq!(master_attempts(13, Config::default()).0, vec![3, 4, 5, 6]);
    // No time at all: not one attempt.
    let (shorts, status, attempts) = master_attempts(0, Config::default());
    assert!(shorts.is_empty());
    assert_eq!((status, attempts), (Status::SendTimeout, 0));
}

#[test]
fn config_overrides_the_first_short_timeout() {
    let config = Config { short_timeout_ms: 30, ..Config::default() };
    let (shorts, _, _) = master_attempts(200, config);
    assert_eq!(shorts, reference_schedule(30, 200, |t| t * 4 / 3));
}

#[test]
fn slave_short_timeout_starts_at_2_and_grows_by_1_capped_at_the_phase() {
    let mut e = slave();
    let mut now = 7;
    e.serve_start(30, 1000, now);
    let mut shorts = Vec::new();
    loop {
        match seen(&mut e, now) {
            Seen::Flush => ok(&mut e, now),
            Seen::Recv(Packet::CommandHeader, t, 12) => {
                shorts.push(t);
                now += t;
                e.complete(now, IoStatus::Timeout, None);
            }
            Seen::Done(s) => {
                assert_eq!(s, Status::NoCommand);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(&shorts[..4], &[2, 3, 4, 5]);
    assert_eq!(shorts, reference_schedule(2, 30, |t| t + 1));
    let err = e.last_error();
    assert_eq!((err.status, err.packet, err.reason), (Status::NoCommand, Packet::CommandHeader, Reason::Timeout));
    // The cap: a phase of 3 ms grows 2 -> 3 and stays.
    let mut e = slave();
    e.serve_start(4, 1000, 0);
    let mut now = 0;
    let mut shorts = Vec::new();
    while let Seen::Flush | Seen::Recv(..) = seen(&mut e, now) {
        if let Seen::Recv(_, t, _) = seen(&mut e, now) {
            shorts.push(t);
            now += 1; // attempts fail fast (garbage), so the growth is the only limit
            e.complete(now, IoStatus::Timeout, None);
        } else {
            ok(&mut e, now);
        }
    }
    assert_eq!(shorts, vec![2, 3, 4, 4]);
}

#[test]
fn master_call_uses_short_then_long_timeouts_and_resets_them_in_phase_2() {
    let mut e = master();
    let mut now = 0;
    e.call_start(0xABCD, command_packet(b"hello"), 1000, 1000, now);
    // Phase 1, attempt 1 fails at the data ack (bad crc): the short timeout grows to 4.
    assert_eq!(seen(&mut e, now), Seen::Flush);
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Send(Packet::CommandHeader, 3, 12));
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Recv(Packet::CommandHeader, 3, 4));
    feed(&mut e, now, &wire::empty_packet(wire::MAGIC_COMMAND_HEADER));
    assert_eq!(seen(&mut e, now), Seen::Send(Packet::CommandData, 5000, 9));
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Recv(Packet::CommandData, 3, 4));
    let mut bad = wire::empty_packet(wire::MAGIC_COMMAND_DATA);
    bad[3] ^= 0xFF;
    now += 1;
    feed(&mut e, now, &bad);
    assert_eq!(e.stats().bad_crc, 1);
    // Attempt 2 with the grown short timeout.
    assert_eq!(seen(&mut e, now), Seen::Flush);
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Send(Packet::CommandHeader, 4, 12));
    ok(&mut e, now);
    feed(&mut e, now, &wire::empty_packet(wire::MAGIC_COMMAND_HEADER));
    assert_eq!(seen(&mut e, now), Seen::Send(Packet::CommandData, 5000, 9));
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Recv(Packet::CommandData, 4, 4));
    feed(&mut e, now, &wire::empty_packet(wire::MAGIC_COMMAND_DATA));
    // Phase 2 starts again at 3.
    assert_eq!(seen(&mut e, now), Seen::Flush);
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Send(Packet::ResultHeader, 3, 4));
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Recv(Packet::ResultHeader, 3, 8));
    feed(&mut e, now, &U32Packet::result_header(2).emit());
    assert_eq!(seen(&mut e, now), Seen::Send(Packet::ResultData, 3, 4));
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Recv(Packet::ResultData, 5000, 6));
    let mut result = vec![0, 0, b'o', b'k', 0, 0];
    wire::frame(wire::MAGIC_RESULT_DATA, &mut result);
    feed(&mut e, now, &result);
    assert_eq!(seen(&mut e, now), Seen::Done(Status::Ok));
    assert_eq!(e.result(), Some(&b"ok"[..]));
    assert_eq!(e.stats().retries, 1);
}

#[test]
fn slave_turn_uses_short_then_long_timeouts_and_resets_them_in_phase_b() {
    let mut e = slave();
    let now = 0;
    e.serve_start(1000, 1000, now);
    assert_eq!(seen(&mut e, now), Seen::Flush);
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Recv(Packet::CommandHeader, 2, 12));
    // A first command header with a bad magic: the attempt fails, t grows to 3.
    let mut bad = CommandHeader { name_hash: 5, argument_len: 1 }.emit();
    bad[0] ^= 1;
    feed(&mut e, now, &bad);
    assert_eq!(e.stats().bad_magic, 1);
    assert_eq!(seen(&mut e, now), Seen::Flush);
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Recv(Packet::CommandHeader, 3, 12));
    feed(&mut e, now, &CommandHeader { name_hash: 5, argument_len: 1 }.emit());
    assert_eq!(seen(&mut e, now), Seen::Send(Packet::CommandHeader, 3, 4));
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Recv(Packet::CommandData, 5000, 5));
    let mut data = vec![0, 0, 42, 0, 0];
    wire::frame(wire::MAGIC_COMMAND_DATA, &mut data);
    feed(&mut e, now, &data);
    assert_eq!(seen(&mut e, now), Seen::Send(Packet::CommandData, 3, 4));
    ok(&mut e, now);
    match e.poll(now) {
        Io::Dispatch { name_hash, argument } => assert_eq!((name_hash, argument), (5, &[42u8][..])),
        other => panic!("{other:?}"),
    }
    e.complete(now, IoStatus::Ok, Some(vec![0, 0, 7, 7, 7, 0, 0]));
    // Phase B: short timeouts reset to 2.
    assert_eq!(seen(&mut e, now), Seen::Flush);
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Recv(Packet::ResultHeader, 2, 4));
    feed(&mut e, now, &wire::empty_packet(wire::MAGIC_RESULT_HEADER));
    assert_eq!(seen(&mut e, now), Seen::Send(Packet::ResultHeader, 2, 8));
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Recv(Packet::ResultData, 2, 4));
    feed(&mut e, now, &wire::empty_packet(wire::MAGIC_RESULT_DATA));
    assert_eq!(seen(&mut e, now), Seen::Send(Packet::ResultData, 5000, 7));
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Done(Status::Ok));
}

#[test]
fn slave_result_phase_times_out_as_result_not_taken() {
    let mut e = slave();
    let mut now = 0;
    e.serve_start(1000, 20, now);
    ok(&mut e, now);
    feed(&mut e, now, &CommandHeader { name_hash: 5, argument_len: 0 }.emit());
    ok(&mut e, now);
    feed(&mut e, now, &wire::empty_packet(wire::MAGIC_COMMAND_DATA));
    ok(&mut e, now);
    e.complete(now, IoStatus::Ok, Some(vec![0; 4]));
    let mut shorts = Vec::new();
    loop {
        match seen(&mut e, now) {
            Seen::Flush => ok(&mut e, now),
            Seen::Recv(Packet::ResultHeader, t, 4) => {
                shorts.push(t);
                now += t;
                e.complete(now, IoStatus::Timeout, None);
            }
            Seen::Done(s) => {
                assert_eq!(s, Status::ResultNotTaken);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(shorts, reference_schedule(2, 20, |t| t + 1));
}

#[test]
fn stream_waits_use_1000_ms_and_frames_the_callers_timeouts() {
    let mut r = master();
    let now = 0;
    r.stream_reader_start(2, 777, now);
    assert_eq!(seen(&mut r, now), Seen::Send(Packet::StreamSetup, 1000, 8));
    ok(&mut r, now);
    assert_eq!(seen(&mut r, now), Seen::Recv(Packet::StreamHeader, 1000, 8));
    feed(&mut r, now, &U32Packet::stream_header(3).emit());
    assert_eq!(seen(&mut r, now), Seen::Recv(Packet::StreamFrame, 777, 3));
    feed(&mut r, now, b"abc");
    assert_eq!(seen(&mut r, now), Seen::Deliver);
    ok(&mut r, now);
    assert_eq!(seen(&mut r, now), Seen::Send(Packet::StreamAck, 1000, 1));
    ok(&mut r, now);
    assert_eq!(seen(&mut r, now), Seen::Recv(Packet::StreamHeader, 1000, 8));
    r.complete(1000, IoStatus::Timeout, None);
    assert_eq!(seen(&mut r, now), Seen::Done(Status::StreamTimeout));

    let mut w = slave();
    w.stream_writer_start(555, now);
    assert_eq!(seen(&mut w, now), Seen::Recv(Packet::StreamSetup, 1000, 8));
    feed(&mut w, now, &U32Packet::stream_setup(1).emit());
    assert_eq!(seen(&mut w, now), Seen::Produce);
    w.complete(now, IoStatus::Ok, Some(b"xy".to_vec()));
    assert_eq!(seen(&mut w, now), Seen::Send(Packet::StreamHeader, 1000, 8));
    ok(&mut w, now);
    assert_eq!(seen(&mut w, now), Seen::Send(Packet::StreamFrame, 555, 2));
    ok(&mut w, now);
    // Depth 1: every frame after the first waits for an ack.
    assert_eq!(seen(&mut w, now), Seen::Recv(Packet::StreamAck, 1000, 1));
    feed(&mut w, now, &[0xFF]);
    assert_eq!(seen(&mut w, now), Seen::Produce);
    w.complete(now, IoStatus::Ok, Some(b"z".to_vec()));
    ok(&mut w, now);
    ok(&mut w, now);
    assert_eq!(seen(&mut w, now), Seen::Recv(Packet::StreamAck, 1000, 1));
    feed(&mut w, now, &[0xFF]); // should be 0xC7
    assert_eq!(seen(&mut w, now), Seen::Done(Status::StreamBadAck));
}

#[test]
fn writer_clamps_the_queue_depth() {
    for (asked, max, expect_unacked) in [(0u32, 0u32, 1usize), (1000, 0, 255), (9, 1, 1), (4, 0, 4)] {
        let mut w: Engine<Vec<u8>> = Engine::new(Role::Slave, Config { max_queue_depth: max, ..Config::default() });
        w.stream_writer_start(100, 0);
        feed(&mut w, 0, &U32Packet::stream_setup(asked).emit());
        // Frames sent before the first ack wait: depth - depth / 2 ... then one per ack.
        let mut frames = 0;
        while seen(&mut w, 0) == Seen::Produce {
            w.complete(0, IoStatus::Ok, Some(vec![1]));
            ok(&mut w, 0);
            ok(&mut w, 0);
            frames += 1;
        }
        assert_eq!(seen(&mut w, 0), Seen::Recv(Packet::StreamAck, 1000, 1));
        let depth = expect_unacked as u32;
        assert_eq!(frames, (depth - depth / 2) as usize, "asked {asked} max {max}");
    }
}

#[test]
fn time_wraps_around_u32() {
    let (shorts, status, _) = {
        let mut e = master();
        let mut now = u32::MAX - 5;
        e.call_start(1, command_packet(b""), 20, 20, now);
        let mut shorts = Vec::new();
        loop {
            match seen(&mut e, now) {
                Seen::Flush | Seen::Send(..) => ok(&mut e, now),
                Seen::Recv(_, t, _) => {
                    shorts.push(t);
                    now = now.wrapping_add(t);
                    e.complete(now, IoStatus::Timeout, None);
                }
                Seen::Done(s) => break (shorts, s, ()),
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(shorts, reference_schedule(3, 20, |t| t * 4 / 3));
    assert_eq!(status, Status::SendTimeout);
}
