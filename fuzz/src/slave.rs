//! The slave turn against a hostile master and a hostile caller, then a well-formed call.

use crate::*;

/// The hostile master's packets so far: the COMMAND_HEADERs it sent (valid ones), the last
/// packet (to repeat it).
#[derive(Default)]
struct Master {
    headers: Vec<(u32, u32)>,
    last: Vec<u8>,
}

const HASHES: [u32; 4] = [0, 0x1234_5678, 0xFFFF_FFFF, 5381];

impl Master {
    fn command_header(&mut self, tape: &mut Tape, arg_limit: u32) -> Vec<u8> {
        let hash = HASHES[usize::from(tape.u8()) % HASHES.len()];
        let len = if tape.u8() & 1 == 0 { u32::from(tape.u8()) } else { tape.hostile_len(arg_limit) };
        self.headers.push((hash, len));
        let mut payload = hash.to_le_bytes().to_vec();
        payload.extend_from_slice(&len.to_le_bytes());
        packet(MAGIC_COMMAND_HEADER, &payload)
    }

    fn expected(&mut self, tape: &mut Tape, io: &omv_rpc_io_t, arg_limit: u32) -> Vec<u8> {
        match io.packet {
            PACKET_COMMAND_HEADER => self.command_header(tape, arg_limit),
            PACKET_COMMAND_DATA => {
                let n = (io.packet_len as usize).saturating_sub(4).min(70_000);
                packet(MAGIC_COMMAND_DATA, &tape.bytes(n))
            }
            k => packet(magic_of(k).unwrap_or(MAGIC_RESULT_DATA), &[]),
        }
    }

    /// What the hostile master puts on the wire when the slave reads and nothing is pending.
    /// True: the caller reports a transport error instead.
    fn answers(&mut self, tape: &mut Tape, io: &omv_rpc_io_t, wire: &mut Wire, arg_limit: u32) -> bool {
        let p = match tape.u8() % 12 {
            0..=2 => self.expected(tape, io, arg_limit),
            3 => {
                let n = 1 + usize::from(tape.u8() % 16);
                tape.bytes(n)
            }
            4 => {
                let magic = MAGICS[usize::from(tape.u8()) % MAGICS.len()];
                let n = [0, 4, 8][usize::from(tape.u8()) % 3];
                let payload = tape.bytes(n);
                if magic == MAGIC_COMMAND_HEADER && n == 8 {
                    self.headers.push((u32_at(&payload, 0), u32_at(&payload, 4)));
                }
                packet(magic, &payload)
            }
            5 => {
                let mut p = self.expected(tape, io, arg_limit);
                let bit = usize::from(tape.u16()) % (p.len() * 8);
                p[bit / 8] ^= 1 << (bit % 8);
                p
            }
            6 => {
                let p = self.expected(tape, io, arg_limit);
                let cut = usize::from(tape.u16()) % p.len();
                p[..cut].to_vec()
            }
            7 => Vec::new(),
            8 => return true,
            // The last packet again (a master that missed the answer).
            9 => self.last.clone(),
            // A new command where something else was due.
            10 => self.command_header(tape, arg_limit),
            _ => {
                let p = self.expected(tape, io, arg_limit);
                wire.push(&p);
                p
            }
        };
        if !p.is_empty() {
            self.last = p.clone();
        }
        wire.push(&p);
        false
    }
}

/// The checks of a slave SEND.
fn check_send(h: &Harness, io: &omv_rpc_io_t, results: &[Guarded]) {
    let len = io.len as usize;
    assert!(len >= 4 && len == io.packet_len as usize, "slave SEND of {len} bytes, packet_len {}", io.packet_len);
    let in_result = results.iter().any(|r| r.holds(io.data, len));
    assert!(h.in_state(io.data, len) || in_result, "SEND data outside the engine state and the result packets");
    let sent = unsafe { std::slice::from_raw_parts(io.data, len) };
    let magic = magic_of(io.packet).expect("slave SEND of an unknown packet");
    assert!(valid_packet(magic, sent), "slave sent an invalid packet {}", io.packet);
    if io.packet == PACKET_RESULT_HEADER {
        let n = u32_at(sent, 2) as usize;
        assert!(results.iter().any(|r| r.len() == n + 4), "RESULT_HEADER({n}) for no result the callback gave");
    }
    if io.packet == PACKET_RESULT_DATA {
        assert!(in_result, "RESULT_DATA sent from outside the caller's result packets");
    }
}

pub fn run(data: &[u8]) {
    let mut tape = Tape::new(data);
    let config = config_from(&mut tape);
    let (arg_limit, _, _) = resolved(&config);
    let now = start_time(&mut tape);
    let mut h = Harness::new(1, config, now);
    let mut wire = Wire::default();
    // Result packets stay valid for the whole run (the slave keeps the last one).
    let mut results: Vec<Guarded> = Vec::new();
    for _ in 0..1 + tape.u8() % 3 {
        hostile_turn(&mut h, &mut tape, &mut wire, arg_limit, &mut results);
    }
    h.advance(100);
    clean_turn(&mut h, &mut tape, &mut wire, arg_limit, &mut results);
    for r in &results {
        r.check_guards("result");
    }
}

fn hostile_turn(h: &mut Harness, tape: &mut Tape, wire: &mut Wire, arg_limit: u32, results: &mut Vec<Guarded>) {
    let recv_timeout = u32::from(tape.u8());
    let send_timeout = u32::from(tape.u8());
    let st = unsafe { ffi::omv_rpc_serve_start(&mut *h.e, recv_timeout, send_timeout, h.now) };
    assert_eq!(st, OK, "serve_start on an idle engine");
    let mut master = Master::default();
    let mut buffers: Vec<Guarded> = Vec::new();
    let mut max_timeout = 0u32;
    let mut dispatches = 0u64;
    let t0 = h.virt;
    let j0 = h.jumped;
    let status = loop {
        let io = h.poll();
        max_timeout = max_timeout.max(io.timeout_ms);
        if io.action == ACTION_WAIT {
            max_timeout = max_timeout.max(io.deadline_ms.wrapping_sub(h.now));
        }
        // Each command (a DISPATCH, or a new COMMAND_HEADER that started the wait over) gets its
        // two phases, each + one attempt's overrun; + the caller's jumps.
        let commands = 1 + dispatches + u64::from(h.stats().new_commands);
        let per = u64::from(recv_timeout) + u64::from(send_timeout) + 2 * STEPS_PER_ATTEMPT * (u64::from(max_timeout) + 4) + 8;
        let spent = h.virt - t0 - (h.jumped - j0);
        assert!(spent <= commands * per, "turn still running after {spent} ms ({commands} commands, {per} ms each)");
        match io.action {
            ACTION_DONE => break io.status,
            ACTION_FLUSH => {
                wire.flush();
                h.tape_step(tape);
                h.complete(IO_OK, None)
            }
            ACTION_WAIT => {
                h.to_deadline(&io);
                h.complete(IO_OK, None)
            }
            ACTION_SEND => {
                check_send(h, &io, results);
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
                    error = master.answers(tape, &io, wire, arg_limit);
                }
                if io.data.is_null() {
                    assert!(
                        io.len <= arg_limit.saturating_add(4),
                        "a {}-byte COMMAND_DATA asked for over the {arg_limit}-byte limit",
                        io.len
                    );
                }
                if let Some(g) = carry_out_recv(h, &io, wire, error, tape, &buffers) {
                    buffers.push(g);
                }
            }
            ACTION_DISPATCH => {
                dispatches += 1;
                reached(2);
                let len = io.len as usize;
                let mut fields = io.name_hash.to_le_bytes().to_vec();
                fields.extend_from_slice(&io.len.to_le_bytes());
                assert!(
                    master.headers.contains(&(io.name_hash, io.len)) || wire.read_valid(MAGIC_COMMAND_HEADER, 12, &fields),
                    "DISPATCH({:#x}, {len}) that no valid COMMAND_HEADER asked for",
                    io.name_hash
                );
                assert!(io.len <= arg_limit, "argument of {len} bytes over the limit");
                if len > 0 {
                    let start = (io.data as usize).wrapping_sub(2) as *const u8;
                    let packet = buffers.iter().find(|b| b.ptr() == start && b.len() == len + 4);
                    let packet = packet.expect("DISPATCH argument not inside a COMMAND_DATA packet the caller read");
                    assert!(valid_packet(MAGIC_COMMAND_DATA, packet.bytes()), "DISPATCH of a COMMAND_DATA that fails the CRC");
                }
                h.tape_step(tape);
                match tape.u8() % 8 {
                    0 => h.complete(IO_ERROR, None),
                    1 => {
                        // Too short to be a packet.
                        let g = Guarded::zeroed(usize::from(tape.u8() % 4));
                        h.complete(IO_OK, Some(&g));
                        results.push(g);
                    }
                    k => {
                        let n = if k == 2 { usize::from(tape.u16()) % 5000 } else { usize::from(tape.u8() % 32) };
                        let g = Guarded::new(&tape.bytes(n + 4));
                        h.complete(IO_OK, Some(&g));
                        results.push(g);
                    }
                }
            }
            a => panic!("slave got action {a}"),
        }
        if let Some(r) = results.last() {
            r.check_guards("result");
        }
    };
    assert!(matches!(status, OK | NO_COMMAND | RESULT_NOT_TAKEN | BAD_BUFFER), "slave turn ended {status}");
    if status == OK {
        reached(3);
    }
    for b in &buffers {
        b.check_guards("receive");
    }
}

/// A well-formed call from a master that sends every packet right: it must be served.
fn clean_turn(h: &mut Harness, tape: &mut Tape, wire: &mut Wire, arg_limit: u32, results: &mut Vec<Guarded>) {
    let arg_len = u32::from(tape.u8()).min(arg_limit);
    let arg: Vec<u8> = (0..arg_len).map(|i| (i * 3) as u8).collect();
    let result: Vec<u8> = (0..usize::from(tape.u8())).map(|i| (i * 5) as u8).collect();
    let hash = 0xC0FF_EE00u32;
    let mut header = hash.to_le_bytes().to_vec();
    header.extend_from_slice(&arg_len.to_le_bytes());
    let script = [
        packet(MAGIC_COMMAND_HEADER, &header),
        packet(MAGIC_COMMAND_DATA, &arg),
        packet(MAGIC_RESULT_HEADER, &[]),
        packet(MAGIC_RESULT_DATA, &[]),
    ];
    // The next packet of the call is sent once the slave answered the one before.
    let mut next = 0;
    let mut answered = true;
    let mut buffers: Vec<Guarded> = Vec::new();
    let mut dispatched = 0;
    let mut result_sent = false;
    let st = unsafe { ffi::omv_rpc_serve_start(&mut *h.e, 1000, 1000, h.now) };
    assert_eq!(st, OK);
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
                let sent = unsafe { std::slice::from_raw_parts(io.data, io.len as usize) }.to_vec();
                if io.packet == PACKET_RESULT_DATA {
                    assert_eq!(sent, packet(MAGIC_RESULT_DATA, &result), "the clean call's result differs");
                    result_sent = true;
                }
                answered = true;
                h.complete(IO_OK, None)
            }
            ACTION_RECV => {
                if wire.pending.is_empty() && answered && next < script.len() {
                    wire.push(&script[next]);
                    next += 1;
                    answered = false;
                }
                if let Some(g) = carry_out_recv(h, &io, wire, false, &mut Tape::new(&[]), &buffers) {
                    buffers.push(g);
                }
            }
            ACTION_DISPATCH => {
                dispatched += 1;
                assert_eq!((io.name_hash, io.len), (hash, arg_len), "the clean call dispatched the wrong command");
                let got = if io.len == 0 { Vec::new() } else { unsafe { std::slice::from_raw_parts(io.data, io.len as usize) }.to_vec() };
                assert_eq!(got, arg, "the clean call's argument differs");
                let mut p = vec![0u8; 2];
                p.extend_from_slice(&result);
                p.extend_from_slice(&[0, 0]);
                let g = Guarded::new(&p);
                h.complete(IO_OK, Some(&g));
                results.push(g);
                answered = true;
            }
            a => panic!("slave got action {a}"),
        }
    };
    assert_eq!(status, OK, "a well-formed call after the hostile turns was not served");
    assert_eq!(dispatched, 1, "the clean call ran its callback {dispatched} times");
    assert!(result_sent);
    reached(6);
}
