//! The master call against a hostile slave and a hostile caller, then a well-formed call.

use crate::*;

/// What the hostile slave puts on the wire when the master reads and nothing is pending.
fn slave_answers(tape: &mut Tape, io: &omv_rpc_io_t, wire: &mut Wire, result_limit: u32, headers: &mut Vec<u32>) -> bool {
    let expected = |tape: &mut Tape, headers: &mut Vec<u32>| -> Vec<u8> {
        let magic = magic_of(io.packet).unwrap_or(MAGIC_RESULT_DATA);
        let n = (io.packet_len as usize).saturating_sub(4);
        if io.packet == PACKET_RESULT_HEADER && n == 4 {
            let len = if tape.u8() & 1 == 0 { u32::from(tape.u8()) } else { tape.hostile_len(result_limit) };
            headers.push(len);
            packet(magic, &len.to_le_bytes())
        } else {
            packet(magic, &tape.bytes(n.min(70_000)))
        }
    };
    match tape.u8() % 10 {
        0..=2 => {
            let p = expected(tape, headers);
            wire.push(&p)
        }
        3 => {
            let n = 1 + usize::from(tape.u8() % 16);
            wire.push(&tape.bytes(n))
        }
        4 => {
            // A valid packet of any kind (a stray, a repeat, a late answer).
            let magic = MAGICS[usize::from(tape.u8()) % MAGICS.len()];
            let n = [0, 4, 8][usize::from(tape.u8()) % 3];
            let payload = tape.bytes(n);
            if magic == MAGIC_RESULT_HEADER && n == 4 {
                headers.push(u32_at(&payload, 0));
            }
            wire.push(&packet(magic, &payload))
        }
        5 => {
            let mut p = expected(tape, headers);
            let bit = usize::from(tape.u16()) % (p.len() * 8);
            p[bit / 8] ^= 1 << (bit % 8);
            wire.push(&p)
        }
        6 => {
            let p = expected(tape, headers);
            let cut = usize::from(tape.u16()) % p.len();
            wire.push(&p[..cut])
        }
        7 => {}
        8 => return true,
        _ => {
            let p = expected(tape, headers);
            wire.push(&p);
            wire.push(&p)
        }
    }
    false
}

struct Call {
    /// Every buffer passed to the engine in this call (valid until DONE).
    buffers: Vec<Guarded>,
    command: Guarded,
    result: Option<usize>,
    max_timeout: u32,
}

/// The checks of a SEND; returns the bytes sent.
fn check_send(h: &Harness, io: &omv_rpc_io_t, call: &Call) -> Vec<u8> {
    let len = io.len as usize;
    assert!(len >= 4 && len == io.packet_len as usize, "master SEND of {len} bytes, packet_len {}", io.packet_len);
    let inside = h.in_state(io.data, len) || call.command.holds(io.data, len);
    assert!(inside, "SEND data outside the engine state and the command packet");
    // SAFETY: checked just above.
    let sent = unsafe { std::slice::from_raw_parts(io.data, len) }.to_vec();
    let magic = magic_of(io.packet).expect("master SEND of an unknown packet");
    assert!(valid_packet(magic, &sent), "master sent an invalid packet {:?}", io.packet);
    if io.packet == PACKET_COMMAND_DATA {
        assert!(call.command.holds(io.data, len), "COMMAND_DATA sent from outside the caller's packet");
    }
    sent
}

pub fn run(data: &[u8]) {
    let mut tape = Tape::new(data);
    let config = config_from(&mut tape);
    let (_, result_limit, _) = resolved(&config);
    let now = start_time(&mut tape);
    let mut h = Harness::new(0, config, now);
    let mut wire = Wire::default();
    for _ in 0..1 + tape.u8() % 3 {
        hostile_call(&mut h, &mut tape, &mut wire, result_limit);
        if tape.u8() & 1 == 1 {
            // Abort while idle changes nothing.
            h.abort();
        }
    }
    // Quiet for 100 ms, then a peer that answers every packet right.
    h.advance(100);
    clean_call(&mut h, &mut tape, &mut wire, result_limit);
}

fn hostile_call(h: &mut Harness, tape: &mut Tape, wire: &mut Wire, result_limit: u32) {
    let arg_len = match tape.u8() % 4 {
        0 => 0,
        1 => usize::from(tape.u16()) % 5000,
        _ => usize::from(tape.u8()),
    };
    let mut command = Guarded::new(&tape.bytes(arg_len + 4));
    let send_timeout = u32::from(tape.u8());
    let recv_timeout = u32::from(tape.u8());
    let name_hash = tape.u32();
    let st = unsafe {
        ffi::omv_rpc_call_start(&mut *h.e, name_hash, command.mut_ptr(), command.len(), send_timeout, recv_timeout, h.now)
    };
    assert_eq!(st, OK, "call_start on an idle engine");
    // A second start while it runs is refused and changes nothing.
    if h.poll().action != ACTION_DONE {
        let mut other = Guarded::zeroed(4);
        let busy = unsafe { ffi::omv_rpc_call_start(&mut *h.e, 1, other.mut_ptr(), 4, 10, 10, h.now) };
        assert_eq!(busy, 11, "call_start while a call runs must be BUSY");
    }
    let mut call = Call { buffers: Vec::new(), command, result: None, max_timeout: 0 };
    let mut headers = Vec::new();
    let t0 = h.virt;
    let j0 = h.jumped;
    let status = loop {
        let io = h.poll();
        call.max_timeout = call.max_timeout.max(io.timeout_ms);
        if io.action == ACTION_WAIT {
            call.max_timeout = call.max_timeout.max(io.deadline_ms.wrapping_sub(h.now));
        }
        // The call ends within its phases (+ one attempt's overrun each, + the caller's jumps).
        let bound = u64::from(send_timeout) + u64::from(recv_timeout) + 2 * STEPS_PER_ATTEMPT * (u64::from(call.max_timeout) + 4) + 8;
        assert!(
            h.virt - t0 - (h.jumped - j0) <= bound,
            "call still running {} ms after it started (bound {bound})",
            h.virt - t0 - (h.jumped - j0)
        );
        match io.action {
            ACTION_DONE => break io.status,
            ACTION_FLUSH => {
                wire.flush();
                h.tape_step(tape);
                h.complete(IO_OK, None);
            }
            ACTION_WAIT => {
                h.to_deadline(&io);
                h.complete(IO_OK, None);
            }
            ACTION_SEND => {
                check_send(h, &io, &call);
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
                if wire.pending.len() < io.len as usize - if io.data.is_null() { io.prefix_len as usize } else { 0 } && wire.pending.is_empty() {
                    error = slave_answers(tape, &io, wire, result_limit, &mut headers);
                }
                if io.data.is_null() {
                    assert!(
                        io.len <= result_limit.saturating_add(4),
                        "a {}-byte data packet asked for over the {result_limit}-byte limit",
                        io.len
                    );
                }
                if let Some(g) = carry_out_recv(h, &io, wire, error, tape, &call.buffers) {
                    call.buffers.push(g);
                    call.result = Some(call.buffers.len() - 1);
                }
            }
            a => panic!("master got action {a}"),
        }
        call.command.check_guards("command");
    };
    assert!(matches!(status, OK | SEND_TIMEOUT | RECV_TIMEOUT), "master call ended {status}");
    let again = h.poll();
    assert!(again.action == ACTION_DONE && again.status == status, "DONE does not stay DONE");
    reached(if status == OK { 0 } else { 1 });
    if status == OK {
        let result_len = unsafe { ffi::omv_rpc_result_len(&*h.e) };
        let i = call.result.expect("call OK without a RESULT_DATA buffer");
        let r = &call.buffers[i];
        assert_eq!(r.len(), result_len as usize + 4, "result length and buffer differ");
        assert!(valid_packet(MAGIC_RESULT_DATA, r.bytes()), "call OK with a RESULT_DATA that fails the CRC");
        assert!(result_len <= result_limit, "result of {result_len} bytes over the limit");
        assert!(
            headers.contains(&result_len) || wire.read_valid(MAGIC_RESULT_HEADER, 8, &result_len.to_le_bytes()),
            "call OK with a length no valid RESULT_HEADER carried"
        );
    }
    for b in &call.buffers {
        b.check_guards("receive");
    }
}

/// A well-formed call with a slave that answers every packet right: it must succeed.
fn clean_call(h: &mut Harness, tape: &mut Tape, wire: &mut Wire, result_limit: u32) {
    let arg: Vec<u8> = (0..usize::from(tape.u8())).map(|i| i as u8).collect();
    let result_len = u32::from(tape.u8()).min(result_limit);
    let result: Vec<u8> = (0..result_len).map(|i| (i * 7) as u8).collect();
    let mut cmd = vec![0u8; 2];
    cmd.extend_from_slice(&arg);
    cmd.extend_from_slice(&[0, 0]);
    let mut command = Guarded::new(&cmd);
    let st = unsafe { ffi::omv_rpc_call_start(&mut *h.e, 0x1234_5678, command.mut_ptr(), command.len(), 1000, 1000, h.now) };
    assert_eq!(st, OK);
    let mut buffers: Vec<Guarded> = Vec::new();
    let mut sent_command_data = false;
    let status = loop {
        let io = h.poll();
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
            ACTION_SEND => {
                let len = io.len as usize;
                let sent = unsafe { std::slice::from_raw_parts(io.data, len) }.to_vec();
                if io.packet == PACKET_COMMAND_HEADER {
                    assert_eq!(sent, packet(MAGIC_COMMAND_HEADER, &[0x78, 0x56, 0x34, 0x12, arg.len() as u8, 0, 0, 0]));
                }
                if io.packet == PACKET_COMMAND_DATA {
                    assert_eq!(sent, packet(MAGIC_COMMAND_DATA, &arg));
                    sent_command_data = true;
                }
                h.complete(IO_OK, None)
            }
            ACTION_RECV => {
                if wire.pending.is_empty() {
                    let p = match io.packet {
                        PACKET_RESULT_HEADER => packet(MAGIC_RESULT_HEADER, &result_len.to_le_bytes()),
                        PACKET_RESULT_DATA => packet(MAGIC_RESULT_DATA, &result),
                        k => packet(magic_of(k).expect("master reads an unknown packet"), &[]),
                    };
                    wire.push(&p);
                }
                if let Some(g) = carry_out_recv(h, &io, wire, false, &mut Tape::new(&[]), &buffers) {
                    buffers.push(g);
                }
            }
            a => panic!("master got action {a}"),
        }
    };
    assert_eq!(status, OK, "a well-formed call after the hostile ones failed");
    assert!(sent_command_data);
    reached(6);
    let r = buffers.last().expect("no RESULT_DATA");
    assert_eq!(&r.bytes()[2..r.len() - 2], &result[..], "the clean call's result differs");
}
