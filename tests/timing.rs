//! Every timing rule of docs/PROTOCOL.md, checked with a virtual clock: the short timeouts' start
//! (3 ms master, 2 ms slave), growth (x4//3, +1), cap at the phase timeout and reset at each
//! phase, the 5000 ms long timeout of data packets, the 1000 ms stream waits, and the phase
//! loop boundary (`while elapsed < phase_timeout: attempt`).

mod support;

use omv_rpc::wire::{self, CommandHeaderRepr, ResultHeaderRepr, StreamHeaderRepr, StreamSetupRepr};
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
    Wait,
}

/// (Also checks the first-byte limit of every action: only the master's RESULT_DATA receive
/// has one, within its timeout; see `master_result_data_first_byte_limit_*`.)
fn seen(e: &mut Engine<Vec<u8>>, now: u32) -> Seen {
    let (role, start_timeout) = (e.role(), e.start_timeout_ms());
    let seen = match e.poll(now) {
        Io::Flush => Seen::Flush,
        Io::Send { packet, timeout_ms, data, .. } => Seen::Send(packet, timeout_ms, data.len()),
        Io::Recv { packet, timeout_ms, len, .. } => Seen::Recv(packet, timeout_ms, len),
        Io::Dispatch { .. } => Seen::Dispatch,
        Io::Deliver { .. } => Seen::Deliver,
        Io::Produce => Seen::Produce,
        Io::Done(s) => Seen::Done(s),
        Io::Wait { .. } => Seen::Wait,
    };
    match (role, &seen) {
        (Role::Master, Seen::Recv(Packet::ResultData, timeout_ms, _)) => {
            assert!(
                start_timeout > 0 && start_timeout <= *timeout_ms,
                "RESULT_DATA: {start_timeout} of {timeout_ms}"
            )
        }
        _ => assert_eq!(start_timeout, 0, "{role:?} {seen:?}: no first-byte limit"),
    }
    seen
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
                assert_eq!(
                    t,
                    *shorts.last().unwrap(),
                    "send and receive use the same short timeout"
                );
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
    assert_eq!(
        (err.status, err.packet, err.reason),
        (Status::NoCommand, Packet::CommandHeader, Reason::Timeout)
    );
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
    // The ack that tells the slave has the command: two short timeouts, then a retry.
    assert_eq!(seen(&mut e, now), Seen::Recv(Packet::CommandData, 6, 4));
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
    assert_eq!(seen(&mut e, now), Seen::Recv(Packet::CommandData, 8, 4));
    feed(&mut e, now, &wire::empty_packet(wire::MAGIC_COMMAND_DATA));
    // Phase 2 starts again at 3, and in sync (phase 1 ended well): no flush.
    assert_eq!(seen(&mut e, now), Seen::Send(Packet::ResultHeader, 3, 4));
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Recv(Packet::ResultHeader, 3, 8));
    feed(&mut e, now, &ResultHeaderRepr { result_len: 2 }.to_bytes());
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

/// Master: runs a call started at `now` through phase 1 and phase 2 up to its RESULT_DATA
/// receive; returns the time then.
fn to_result_data(e: &mut Engine<Vec<u8>>, mut now: u32, step_ms: u32) -> u32 {
    loop {
        match seen(e, now) {
            Seen::Flush => ok(e, now),
            Seen::Send(..) => {
                ok(e, now);
                now += step_ms;
            }
            Seen::Recv(Packet::CommandHeader, ..) => {
                feed(e, now, &wire::empty_packet(wire::MAGIC_COMMAND_HEADER))
            }
            Seen::Recv(Packet::CommandData, ..) => {
                feed(e, now, &wire::empty_packet(wire::MAGIC_COMMAND_DATA))
            }
            Seen::Recv(Packet::ResultHeader, ..) => {
                feed(e, now, &ResultHeaderRepr { result_len: 2 }.to_bytes())
            }
            Seen::Recv(Packet::ResultData, ..) => return now,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn master_result_data_first_byte_limit_is_two_short_timeouts() {
    // Every attempt's RESULT_DATA request goes unanswered (the slave missed it): each waits for
    // the first byte two of its (grown) short timeouts, then retries while a slave that missed
    // it still waits (a reference slave: 2-3 ms; an Arduino one: its 100 ms); the phase ends
    // on time, not after the long timeout.
    let mut e = master();
    let start = 7_000;
    e.call_start(0xABCD, command_packet(b"hello"), 1000, 1000, start);
    let mut now = to_result_data(&mut e, start, 0);
    let mut limits = Vec::new();
    loop {
        assert_eq!(seen(&mut e, now), Seen::Recv(Packet::ResultData, 5000, 6));
        let limit = e.start_timeout_ms();
        assert_eq!(limit, 2 * e.short_timeout());
        assert_eq!(e.first_byte_deadline(), Some(now + limit));
        limits.push(limit);
        // Nothing came within the limit.
        now += limit;
        e.complete(now, IoStatus::Timeout, None);
        now = to_result_data_retry(&mut e, now);
        if now == u32::MAX {
            break;
        }
    }
    // The short timeout grows 3, 4, 5, 6, 8 (t * 4 / 3).
    assert_eq!(&limits[..5], &[6, 8, 10, 12, 16]);
    assert_eq!(e.last_error().status, Status::RecvTimeout);
    assert_eq!(e.last_error().packet, Packet::ResultData);
    assert_eq!(e.last_error().reason, Reason::Timeout);
    assert_eq!(e.last_error().attempts as usize, limits.len());
}

/// Master after a failed RESULT_DATA attempt: the retry up to its RESULT_DATA receive (the
/// time then), or u32::MAX when the phase ended instead.
fn to_result_data_retry(e: &mut Engine<Vec<u8>>, now: u32) -> u32 {
    match seen(e, now) {
        Seen::Done(Status::RecvTimeout) => u32::MAX,
        Seen::Flush => to_result_data(e, now, 0),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn master_reply_waits_add_the_wire_time_and_are_measured_from_the_request() {
    // A slow link (set_timing(bytes_per_s=1000), 1 byte/ms): the COMMAND_DATA ack may come
    // only after the slave has all of COMMAND_DATA (104 bytes on the wire: 104 ms, + 1 + the
    // 3 ms short timeout), and every wait is at least its own bytes' wire time.
    let mut e: Engine<Vec<u8>> =
        Engine::new(Role::Master, Config { bytes_per_s: 1000, ..Config::default() });
    e.call_start(1, command_packet(&[7; 100]), 1000, 1000, 0);
    assert_eq!(seen(&mut e, 0), Seen::Flush);
    ok(&mut e, 0);
    assert_eq!(
        seen(&mut e, 0),
        Seen::Send(Packet::CommandHeader, 16, 12),
        "12 bytes: 12 + 1 + 3 ms"
    );
    ok(&mut e, 0);
    feed(&mut e, 0, &wire::empty_packet(wire::MAGIC_COMMAND_HEADER));
    assert_eq!(seen(&mut e, 0), Seen::Send(Packet::CommandData, 5000, 104));
    ok(&mut e, 10);
    assert_eq!(seen(&mut e, 10), Seen::Recv(Packet::CommandData, 108, 4));
    match e.poll(10) {
        Io::Recv { deadline_ms, .. } => assert_eq!(deadline_ms, 118, "from the step's start"),
        other => panic!("{other:?}"),
    }
    feed(&mut e, 20, &wire::empty_packet(wire::MAGIC_COMMAND_DATA));
    // The first byte of RESULT_DATA: two short timeouts, or the request's wire time (4 + 1 + 3).
    let now = to_result_data(&mut e, 20, 40);
    assert_eq!(e.start_timeout_ms(), 8);
    // Measured when the request was sent, so polling later does not change it.
    let deadline = e.first_byte_deadline();
    assert_eq!(seen(&mut e, now + 100), Seen::Recv(Packet::ResultData, 5000, 6));
    assert_eq!(e.first_byte_deadline(), deadline);
    // (to_result_data stepped 40 ms past the request's send.)
    assert_eq!(deadline, Some(now - 40 + 8));
    assert_eq!(e.poll_timeout(), deadline, "the next wake-up is the first byte's");
    // The RESULT_DATA that does come is taken whole, however long its transfer (the limit is
    // only on the first byte).
    let mut result = vec![0, 0, b'o', b'k', 0, 0];
    wire::frame(wire::MAGIC_RESULT_DATA, &mut result);
    feed(&mut e, now + 4000, &result);
    assert_eq!(seen(&mut e, now + 4000), Seen::Done(Status::Ok));
    assert_eq!(e.start_timeout_ms(), 0, "no action, no limit");
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn a_transport_error_pauses_before_the_next_attempt() {
    // A transport that fails at once (nobody listening): the engine asks for a pause of the
    // first short timeout (error_pause_ms) before it retries, not a hot loop.
    let mut e = master();
    e.call_start(1, command_packet(b"x"), 100, 100, 0);
    assert_eq!(seen(&mut e, 0), Seen::Flush);
    ok(&mut e, 0);
    assert!(matches!(seen(&mut e, 0), Seen::Send(Packet::CommandHeader, ..)));
    e.complete(1, IoStatus::Error, None);
    assert_eq!(e.poll(1), Io::Wait { deadline_ms: 4 });
    assert_eq!(e.poll_timeout(), Some(4));
    // Completing early changes nothing.
    e.complete(2, IoStatus::Ok, None);
    assert_eq!(e.poll(2), Io::Wait { deadline_ms: 4 });
    e.complete(4, IoStatus::Ok, None);
    assert_eq!(seen(&mut e, 4), Seen::Flush);
    assert_eq!(e.stats().transport_errors, 1);
    assert_eq!(e.stats().retries, 1);
    // Configurable.
    let mut e: Engine<Vec<u8>> =
        Engine::new(Role::Slave, Config { error_pause_ms: 50, ..Config::default() });
    e.serve_start(1000, 1000, 0);
    assert_eq!(seen(&mut e, 0), Seen::Flush);
    ok(&mut e, 0);
    e.complete(0, IoStatus::Error, None);
    assert_eq!(e.poll(0), Io::Wait { deadline_ms: 50 });
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
    let mut bad = CommandHeaderRepr { name_hash: 5, argument_len: 1 }.to_bytes();
    bad[0] ^= 1;
    feed(&mut e, now, &bad);
    assert_eq!(e.stats().bad_magic, 1);
    assert_eq!(seen(&mut e, now), Seen::Flush);
    ok(&mut e, now);
    assert_eq!(seen(&mut e, now), Seen::Recv(Packet::CommandHeader, 3, 12));
    feed(&mut e, now, &CommandHeaderRepr { name_hash: 5, argument_len: 1 }.to_bytes());
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
    // Phase B: short timeouts reset to 2; in sync, so no flush (the master's RESULT_HEADER
    // request may have come while the callback ran).
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
    feed(&mut e, now, &CommandHeaderRepr { name_hash: 5, argument_len: 0 }.to_bytes());
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
    // The reader drops left-over input before its setup.
    assert_eq!(seen(&mut r, now), Seen::Flush);
    ok(&mut r, now);
    assert_eq!(seen(&mut r, now), Seen::Send(Packet::StreamSetup, 1000, 8));
    ok(&mut r, now);
    assert_eq!(seen(&mut r, now), Seen::Recv(Packet::StreamHeader, 1000, 8));
    feed(&mut r, now, &StreamHeaderRepr { frame_len: 3 }.to_bytes());
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
    feed(&mut w, now, &StreamSetupRepr { queue_depth: 1 }.to_bytes());
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
    for (asked, max, expect_unacked) in [(0u32, 0u32, 1usize), (1000, 0, 255), (9, 1, 1), (4, 0, 4)]
    {
        let mut w: Engine<Vec<u8>> =
            Engine::new(Role::Slave, Config { max_queue_depth: max, ..Config::default() });
        w.stream_writer_start(100, 0);
        feed(&mut w, 0, &StreamSetupRepr { queue_depth: asked }.to_bytes());
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

// ----- when an attempt drops pending input (FLUSH) -----

/// One master call on `e` against a slave that has already written `input`; (status, the
/// master's bytes, where it flushed: the number of bytes written before each FLUSH).
fn master_call(e: &mut Engine<Vec<u8>>, input: Vec<u8>) -> (Status, Vec<u8>, Vec<usize>) {
    master_call_at(e, input, 0)
}

/// The same, started at `now`.
fn master_call_at(
    e: &mut Engine<Vec<u8>>,
    input: Vec<u8>,
    now: u32,
) -> (Status, Vec<u8>, Vec<usize>) {
    assert_eq!(e.call_start(0x51, command_packet(b"arg"), 100, 100, now), Status::Ok);
    let mut peer = Script::new(input);
    peer.now = now;
    let status = peer.run(e, &mut NoCallbacks);
    (status, peer.written, peer.flushes)
}

struct Echo;
impl Callbacks for Echo {
    fn dispatch(&mut self, _: u32, argument: &[u8]) -> Option<Vec<u8>> {
        Some(argument.to_vec())
    }
}

/// One slave turn on `e` against a master that has already written `input`.
fn slave_turn(e: &mut Engine<Vec<u8>>, input: Vec<u8>) -> (Status, Vec<u8>, Vec<usize>) {
    slave_turn_at(e, input, 0, 0)
}

/// The same, started at `now`, with a callback that takes `callback_ms`.
fn slave_turn_at(
    e: &mut Engine<Vec<u8>>,
    input: Vec<u8>,
    now: u32,
    callback_ms: u32,
) -> (Status, Vec<u8>, Vec<usize>) {
    assert_eq!(e.serve_start(100, 100, now), Status::Ok);
    let mut peer = Script::new(input);
    peer.now = now;
    peer.callback_ms = callback_ms;
    let status = peer.run(e, &mut Echo);
    (status, peer.written, peer.flushes)
}

#[test]
fn master_flushes_only_on_a_retry_or_out_of_sync() {
    let good = || slave_bytes(b"arg");
    let mut e = master();
    // A new engine is not in sync: one flush before the first byte; phase 2 follows a good
    // phase 1 and does not flush.
    let (status, written, flushes) = master_call(&mut e, good());
    assert_eq!((status, flushes), (Status::Ok, vec![0]));
    assert_eq!(written, master_bytes(0x51, b"arg"));
    // Back to back after a good call: no flush at all, the same bytes.
    for _ in 0..3 {
        let (status, written, flushes) = master_call(&mut e, good());
        assert_eq!((status, flushes), (Status::Ok, vec![]));
        assert_eq!(written, master_bytes(0x51, b"arg"));
    }
    assert_eq!(e.stats().retries, 0);

    // A call that fails (a silent slave): the first attempt is in sync and does not flush,
    // and neither does a retry after an ack that did not come: it may be late, and a late ack
    // answers the repeated COMMAND_HEADER as well (12 bytes each).
    let (status, written, flushes) = master_call(&mut e, Vec::new());
    assert_eq!(status, Status::SendTimeout);
    let attempts = e.last_error().attempts as usize;
    assert!(attempts > 5);
    assert_eq!(flushes, Vec::<usize>::new());
    assert_eq!(written.len(), 12 * attempts);
    // After a failed call the next one flushes first.
    let (status, _, flushes) = master_call(&mut e, good());
    assert_eq!((status, flushes), (Status::Ok, vec![0]));
    // A wrong ack (bad magic) is no late answer: the retry flushes (after the first
    // COMMAND_HEADER), then the ack is read.
    let mut input = good();
    input.splice(0..0, [0x55u8, 0x55, 0x55, 0x55]);
    let (status, written, flushes) = master_call(&mut e, input);
    assert_eq!((status, flushes), (Status::Ok, vec![12]));
    assert_eq!(written.len(), 12 + master_bytes(0x51, b"arg").len());

    // A retry in phase 2 flushes, then the next call is in sync again.
    // The RESULT_HEADER (after the two 4-byte acks) comes first with a bad crc, then whole.
    let mut input = good();
    let mut bad = input[8..16].to_vec();
    bad[7] ^= 0xFF;
    input.splice(8..8, bad);
    let (status, written, flushes) = master_call(&mut e, input);
    assert_eq!(status, Status::Ok);
    assert_eq!(e.result(), Some(&b"arg"[..]));
    // Flushed once, after the COMMAND packets (12 + 7) and the first RESULT_HEADER request (4).
    assert_eq!(flushes, vec![12 + 7 + 4]);
    assert_eq!(written.len(), 12 + 7 + 4 + 4 + 4);
    let (status, _, flushes) = master_call(&mut e, good());
    assert_eq!((status, flushes), (Status::Ok, vec![]));
}

#[test]
fn master_flushes_after_an_abort_or_a_failed_io_that_ended_the_call() {
    let mut e = master();
    master_call(&mut e, slave_bytes(b"arg"));
    // Abandoned after its COMMAND_HEADER (a non-blocking caller that gave up).
    e.call_start(0x51, command_packet(b"arg"), 100, 100, 0);
    assert!(matches!(e.poll(0), Io::Send { packet: Packet::CommandHeader, .. }));
    ok(&mut e, 0);
    e.abort();
    let (status, _, flushes) = master_call(&mut e, slave_bytes(b"arg"));
    assert_eq!((status, flushes), (Status::Ok, vec![0]));
    // The last attempt of a phase ends on a transport error: the call fails, the next flushes.
    e.call_start(0x51, command_packet(b"arg"), 0, 100, 0);
    assert_eq!(seen(&mut e, 0), Seen::Done(Status::SendTimeout));
    let (status, _, flushes) = master_call(&mut e, slave_bytes(b"arg"));
    assert_eq!((status, flushes), (Status::Ok, vec![0]));
    e.call_start(0x51, command_packet(b"arg"), 1, 100, 0);
    assert!(matches!(e.poll(0), Io::Send { packet: Packet::CommandHeader, .. }));
    e.complete(5, IoStatus::Error, None);
    assert_eq!(seen(&mut e, 5), Seen::Done(Status::SendTimeout));
    let (status, _, flushes) = master_call(&mut e, slave_bytes(b"arg"));
    assert_eq!((status, flushes), (Status::Ok, vec![0]));
}

#[test]
fn slave_flushes_only_on_a_retry_or_out_of_sync() {
    let good = || master_bytes(0x51, b"hi");
    let mut e = slave();
    // A new engine: one flush before anything; phase B after the callback: none.
    let (status, written, flushes) = slave_turn(&mut e, good());
    assert_eq!((status, flushes), (Status::Ok, vec![0]));
    assert_eq!(written, slave_bytes(b"hi"));
    // Back-to-back turns: the master's next COMMAND_HEADER is read, not dropped.
    for _ in 0..3 {
        let (status, written, flushes) = slave_turn(&mut e, good());
        assert_eq!((status, flushes), (Status::Ok, vec![]));
        assert_eq!(written, slave_bytes(b"hi"));
    }
    // No command: the first attempt does not flush, every retry does; the next turn flushes.
    let (status, written, flushes) = slave_turn(&mut e, Vec::new());
    assert_eq!(status, Status::NoCommand);
    assert!(written.is_empty());
    assert_eq!(flushes.len() as u32, e.last_error().attempts - 1);
    let (status, _, flushes) = slave_turn(&mut e, good());
    assert_eq!((status, flushes), (Status::Ok, vec![0]));
    // The master never asks for the result: phase B fails; the next turn flushes.
    let mut commands_only = good();
    commands_only.truncate(12 + 6);
    let (status, _, flushes) = slave_turn(&mut e, commands_only);
    assert_eq!(status, Status::ResultNotTaken);
    let attempts = e.last_error().attempts as usize;
    // Phase A in sync (no flush); phase B: only its retries flush, after the two acks.
    assert_eq!(flushes, vec![8; attempts - 1]);
    let (status, _, flushes) = slave_turn(&mut e, good());
    assert_eq!((status, flushes), (Status::Ok, vec![0]));
    // A callback that failed (DISPATCH completed with an error): the next turn flushes.
    e.serve_start(100, 100, 0);
    let mut input = good();
    input.truncate(12 + 6);
    for _ in 0..4 {
        match e.poll(0) {
            Io::Recv { len, into: Some(into), .. } => {
                into.copy_from_slice(&input[..len]);
                input.drain(..len);
                ok(&mut e, 0);
            }
            Io::Recv { len, into: None, .. } => {
                let bytes = input.drain(..len).collect();
                e.complete(0, IoStatus::Ok, Some(bytes));
            }
            Io::Send { .. } => ok(&mut e, 0),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(e.poll(0), Io::Dispatch { .. }));
    e.complete(0, IoStatus::Error, None);
    assert_eq!(seen(&mut e, 0), Seen::Done(Status::ResultNotTaken));
    let (status, _, flushes) = slave_turn(&mut e, good());
    assert_eq!((status, flushes), (Status::Ok, vec![0]));
}

#[test]
fn the_stream_reader_always_flushes_before_its_setup_and_a_stream_leaves_the_link_out_of_sync() {
    // Reader: in sync after a good call, it still drops left-over input before its setup.
    let mut m = master();
    master_call(&mut m, slave_bytes(b"arg"));
    master_call(&mut m, slave_bytes(b"arg"));
    assert_eq!(m.stream_reader_start(1, 100, 0), Status::Ok);
    let mut writer_bytes = StreamHeaderRepr { frame_len: 2 }.to_bytes().to_vec();
    writer_bytes.extend_from_slice(b"ab");
    let mut peer = Script::new(writer_bytes);
    struct Keep;
    impl Callbacks for Keep {
        fn deliver(&mut self, _: &[u8]) -> bool {
            true
        }
    }
    assert_eq!(peer.run(&mut m, &mut Keep), Status::StreamTimeout);
    assert_eq!(peer.flushes, vec![0], "one flush, before STREAM_SETUP");
    assert_eq!(peer.written.len(), 8 + 1, "setup and one ack");
    // The call after a stream flushes first.
    let (status, _, flushes) = master_call(&mut m, slave_bytes(b"arg"));
    assert_eq!((status, flushes), (Status::Ok, vec![0]));

    // Writer: never a flush (the reader's setup may be waiting); the next turn flushes.
    let mut s = slave();
    slave_turn(&mut s, master_bytes(0x51, b"hi"));
    assert_eq!(s.stream_writer_start(100, 0), Status::Ok);
    let mut peer = Script::new(StreamSetupRepr { queue_depth: 4 }.to_bytes().to_vec());
    struct One(bool);
    impl Callbacks for One {
        fn produce(&mut self) -> Option<Vec<u8>> {
            std::mem::replace(&mut self.0, false).then(|| vec![7; 3])
        }
    }
    assert_eq!(peer.run(&mut s, &mut One(true)), Status::StreamStopped);
    assert!(peer.flushes.is_empty());
    assert_eq!(peer.written.len(), 8 + 3);
    let (status, _, flushes) = slave_turn(&mut s, master_bytes(0x51, b"hi"));
    assert_eq!((status, flushes), (Status::Ok, vec![0]));

    // A stream abandoned half-way (an exception in its callback) also leaves it out of sync.
    s.stream_writer_start(100, 0);
    s.abort();
    let (status, _, flushes) = slave_turn(&mut s, master_bytes(0x51, b"hi"));
    assert_eq!((status, flushes), (Status::Ok, vec![0]));
}

/// In sync lasts less than one short timeout after the last send or receive: later, the peer
/// may have given up and sent its packet again, so the phase flushes as the reference does.
#[test]
fn in_sync_lasts_less_than_one_short_timeout() {
    let cmd = || master_bytes(0x51, b"hi");
    // Slave (short timeout 2 ms): the next turn 1 ms after the last one keeps the pending
    // COMMAND_HEADER; 2 ms after, it drops input first.
    let mut e = slave();
    slave_turn_at(&mut e, cmd(), 100, 0);
    assert_eq!(slave_turn_at(&mut e, cmd(), 101, 0).2, vec![]);
    assert_eq!(slave_turn_at(&mut e, cmd(), 103, 0).2, vec![0]);
    // Phase B after a 1 ms callback: no flush; after a 2 ms one (the master's short timeout
    // may be over): a flush after the two acks.
    assert_eq!(slave_turn_at(&mut e, cmd(), 103, 1).2, vec![]);
    let (status, written, flushes) = slave_turn_at(&mut e, cmd(), 104, 2);
    assert_eq!((status, flushes), (Status::Ok, vec![8]));
    assert_eq!(written, slave_bytes(b"hi"));
    // Master (3 ms): a call 2 ms after the last one does not flush, one 3 ms after does.
    let mut m = master();
    master_call_at(&mut m, slave_bytes(b"arg"), 0);
    assert_eq!(master_call_at(&mut m, slave_bytes(b"arg"), 2).2, vec![]);
    assert_eq!(master_call_at(&mut m, slave_bytes(b"arg"), 5).2, vec![0]);
    // The window follows the configured short timeout (a slow link), across the u32 wrap.
    let mut e: Engine<Vec<u8>> =
        Engine::new(Role::Slave, Config { short_timeout_ms: 30, ..Config::default() });
    let start = u32::MAX - 10;
    slave_turn_at(&mut e, cmd(), start, 0);
    assert_eq!(slave_turn_at(&mut e, cmd(), start.wrapping_add(29), 0).2, vec![]);
    // Turn 3 at +58 with a 29 ms callback ends at +87; turn 4 starts 30 ms later.
    assert_eq!(slave_turn_at(&mut e, cmd(), start.wrapping_add(58), 29).2, vec![]);
    assert_eq!(slave_turn_at(&mut e, cmd(), start.wrapping_add(87 + 30), 0).2, vec![0]);
}

#[test]
fn master_on_a_byte_stream_skips_a_second_result_header_where_result_data_is_due() {
    // The answers to a late RESULT_HEADER request and to its repeat, back to back: the master
    // skips the second RESULT_HEADER and reads RESULT_DATA behind it, without asking for it
    // again (a reference slave sends RESULT_DATA only once).
    let good = slave_bytes(b"result!");
    let header_end = 4 + 4 + 8;
    let mut input = good[..header_end].to_vec();
    input.extend_from_slice(&good[8..header_end]);
    input.extend_from_slice(&good[header_end..]);
    let mut e = stream_master();
    let (status, written, _) = master_call(&mut e, input.clone());
    assert_eq!(status, Status::Ok);
    assert_eq!(e.result(), Some(&b"result!"[..]));
    assert_eq!(written, master_bytes(0x51, b"arg"), "one request of each");
    assert_eq!(e.stats().stray_replies, 1);
    // A second RESULT_HEADER with another length is no repeat: that attempt fails, and the
    // retry's RESULT_HEADER request finds the RESULT_DATA (read as a late one).
    let mut other = good[..header_end].to_vec();
    other.extend_from_slice(&omv_rpc::wire::ResultHeaderRepr { result_len: 3 }.to_bytes());
    other.extend_from_slice(&good[header_end..]);
    let mut e = stream_master();
    let (status, written, _) = master_call(&mut e, other);
    assert_eq!(status, Status::Ok);
    assert_eq!(e.result(), Some(&b"result!"[..]));
    assert_ne!(written, master_bytes(0x51, b"arg"), "the attempt was retried");
    assert!(e.stats().retries >= 1, "{:?}", e.stats());
}
