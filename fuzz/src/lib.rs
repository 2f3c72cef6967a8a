//! Fuzz harnesses for the omv-rpc engine, driven through its C ABI (`omv_rpc::ffi`, the
//! functions of include/omv_rpc.h).
//!
//! Each harness turns one input (bytes) into a hostile peer and a hostile caller: what comes off
//! the wire (raw bytes, valid packets of the wrong kind, hostile length fields, bit flips,
//! truncations, repeats, packets ahead), how each io completes (OK, TIMEOUT after a short read,
//! ERROR) and how the ms clock moves (small steps, jumps, its wrap). It checks the header's
//! contract on every step and panics on a violation (libFuzzer reports the panic as a crash):
//! - every pointer the engine hands out lies, with its length, inside the engine's state or a
//!   buffer the caller passed; nothing is written outside a caller buffer (guard bytes);
//! - a data packet is asked for only after its length passed the caller's limit;
//! - every deadline is at most its timeout ahead;
//! - success (a result, a DISPATCH, a delivered frame) only with bytes that passed the CRC and
//!   whose length a valid header announced;
//! - every packet the engine sends is valid (magic of its kind, CRC);
//! - an operation ends within its phase deadlines (+ one attempt's overrun and the clock jumps
//!   the caller made); and a well-formed call right after the hostile one succeeds.
//!
//! The input is read as a tape: when it runs out every byte reads as 0, which makes the peer
//! go quiet, so that every run ends in timeouts.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use omv_rpc::ffi::{self, omv_rpc_engine_t, omv_rpc_io_t};
use omv_rpc::{Config, Stats};

pub const ACTION_DONE: u32 = 0;
pub const ACTION_FLUSH: u32 = 1;
pub const ACTION_SEND: u32 = 2;
pub const ACTION_RECV: u32 = 3;
pub const ACTION_DISPATCH: u32 = 4;
pub const ACTION_DELIVER: u32 = 5;
pub const ACTION_PRODUCE: u32 = 6;
pub const ACTION_WAIT: u32 = 7;

pub const IO_OK: i32 = 0;
pub const IO_TIMEOUT: i32 = 1;
pub const IO_ERROR: i32 = 2;

pub const PACKET_COMMAND_HEADER: u32 = 1;
pub const PACKET_COMMAND_DATA: u32 = 2;
pub const PACKET_RESULT_HEADER: u32 = 3;
pub const PACKET_RESULT_DATA: u32 = 4;
pub const PACKET_STREAM_SETUP: u32 = 5;
pub const PACKET_STREAM_HEADER: u32 = 6;
pub const PACKET_STREAM_FRAME: u32 = 7;
pub const PACKET_STREAM_ACK: u32 = 8;

pub const MAGIC_COMMAND_HEADER: u16 = 0x1209;
pub const MAGIC_COMMAND_DATA: u16 = 0xABD1;
pub const MAGIC_RESULT_HEADER: u16 = 0x9021;
pub const MAGIC_RESULT_DATA: u16 = 0x1DBA;
pub const MAGIC_STREAM_SETUP: u16 = 0xEDF6;
pub const MAGIC_STREAM_HEADER: u16 = 0x542E;
const MAGICS: [u16; 6] = [
    MAGIC_COMMAND_HEADER,
    MAGIC_COMMAND_DATA,
    MAGIC_RESULT_HEADER,
    MAGIC_RESULT_DATA,
    MAGIC_STREAM_SETUP,
    MAGIC_STREAM_HEADER,
];

/// The statuses of include/omv_rpc.h.
pub const OK: u32 = 0;
pub const SEND_TIMEOUT: u32 = 1;
pub const RECV_TIMEOUT: u32 = 2;
pub const NO_COMMAND: u32 = 3;
pub const RESULT_NOT_TAKEN: u32 = 4;
pub const BAD_BUFFER: u32 = 12;

/// The longest packet the engine keeps in its own state (COMMAND_HEADER).
const MAX_HEADER_LEN: usize = 12;

/// How often the harnesses reached the states their checks are about (printed by the smoke
/// runner: a check that is never reached checks nothing).
pub static REACHED: [AtomicU64; 10] = [const { AtomicU64::new(0) }; 10];
pub const REACHED_NAMES: [&str; 10] = [
    "hostile calls OK",
    "hostile calls failed",
    "hostile DISPATCH",
    "hostile turns OK",
    "frames delivered",
    "frames produced",
    "clean calls OK",
    "RECV into caller buffer",
    "RECV with prefix",
    "valid packets parsed",
];
pub fn reached(i: usize) {
    REACHED[i].fetch_add(1, Ordering::Relaxed);
}

/// The input, read front to back; 0 once it runs out.
pub struct Tape<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Tape<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Tape { data, pos: 0 }
    }
    pub fn exhausted(&self) -> bool {
        self.pos >= self.data.len()
    }
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// `n` bytes (zeros past the end).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let from = self.pos.min(self.data.len());
        let to = self.pos.saturating_add(n).min(self.data.len());
        let mut v = self.data[from..to].to_vec();
        v.resize(n, 0);
        self.pos = self.pos.saturating_add(n);
        v
    }
    /// A length field: the values where limits break, or anything.
    pub fn hostile_len(&mut self, limit: u32) -> u32 {
        match self.u8() % 16 {
            0 => 0,
            1 => 1,
            2 => 2,
            3 => 4,
            4 => limit.wrapping_sub(1),
            5 => limit,
            6 => limit.wrapping_add(1),
            7 => limit.wrapping_add(4),
            8 => 1 << 31,
            9 => u32::MAX,
            10 => u32::MAX - 3,
            11 => u32::MAX - 4,
            12 => u32::from(self.u16()),
            13 => self.u32(),
            _ => u32::from(self.u8()),
        }
    }
}

/// A caller buffer with guard bytes on both sides: a write outside it is caught.
pub struct Guarded {
    mem: Vec<u8>,
    len: usize,
}

const GUARD: usize = 32;
const GUARD_BYTE: u8 = 0xA5;

impl Guarded {
    pub fn new(contents: &[u8]) -> Self {
        let mut mem = vec![GUARD_BYTE; contents.len() + 2 * GUARD];
        mem[GUARD..GUARD + contents.len()].copy_from_slice(contents);
        Guarded { mem, len: contents.len() }
    }
    pub fn zeroed(len: usize) -> Self {
        Self::new(&vec![0; len])
    }
    pub fn ptr(&self) -> *const u8 {
        self.mem[GUARD..].as_ptr()
    }
    pub fn mut_ptr(&mut self) -> *mut u8 {
        self.mem[GUARD..].as_mut_ptr()
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn bytes(&self) -> &[u8] {
        &self.mem[GUARD..GUARD + self.len]
    }
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.mem[GUARD..GUARD + self.len]
    }
    /// Panics if anything was written outside the buffer.
    pub fn check_guards(&self, what: &str) {
        let (head, rest) = self.mem.split_at(GUARD);
        let tail = &rest[self.len..];
        assert!(
            head == [GUARD_BYTE; GUARD] && tail == [GUARD_BYTE; GUARD],
            "engine wrote outside the caller's {what} buffer"
        );
    }
    /// [ptr, ptr + len) lies inside this buffer.
    pub fn holds(&self, ptr: *const u8, len: usize) -> bool {
        let start = self.ptr() as usize;
        let p = ptr as usize;
        p >= start && p.checked_add(len).is_some_and(|end| end <= start + self.len)
    }
}

/// CRC-16/IBM-3740 written here from PROTOCOL.md (poly 0x1021, init 0xFFFF, MSB first), one
/// byte a step from a 256-entry table built bit by bit: independent of the engine's code.
pub fn crc16_reference(data: &[u8]) -> u16 {
    static TABLE: std::sync::OnceLock<[u16; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u16; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut crc = (i as u16) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            }
            *e = crc;
        }
        t
    });
    data.iter().fold(0xFFFF, |crc, &b| (crc << 8) ^ table[usize::from((crc >> 8) as u8 ^ b)])
}

/// A whole packet: magic, payload, CRC.
pub fn packet(magic: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = magic.to_le_bytes().to_vec();
    p.extend_from_slice(payload);
    let crc = crc16_reference(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

/// `p` is a valid packet of `magic` (by the reference CRC, not the engine's).
pub fn valid_packet(magic: u16, p: &[u8]) -> bool {
    p.len() >= 4
        && p[..2] == magic.to_le_bytes()
        && p[p.len() - 2..] == crc16_reference(&p[..p.len() - 2]).to_le_bytes()
}

pub fn u32_at(p: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(p[at..at + 4].try_into().unwrap())
}

pub fn magic_of(packet: u32) -> Option<u16> {
    match packet {
        PACKET_COMMAND_HEADER => Some(MAGIC_COMMAND_HEADER),
        PACKET_COMMAND_DATA => Some(MAGIC_COMMAND_DATA),
        PACKET_RESULT_HEADER => Some(MAGIC_RESULT_HEADER),
        PACKET_RESULT_DATA => Some(MAGIC_RESULT_DATA),
        PACKET_STREAM_SETUP => Some(MAGIC_STREAM_SETUP),
        PACKET_STREAM_HEADER => Some(MAGIC_STREAM_HEADER),
        _ => None,
    }
}

/// FUZZ_TRACE=1: every poll and complete on stderr (to read a failing input).
pub fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

/// The engine state with the checks that need its address.
pub struct Harness {
    pub e: Box<omv_rpc_engine_t>,
    pub config: Config,
    /// Virtual time (u64, never wraps) and the u32 ms clock the engine sees.
    pub virt: u64,
    pub now: u32,
    /// Time the caller jumped beyond what the engine asked for (descheduled caller, clock wrap).
    pub jumped: u64,
    zero_steps: u32,
}

impl Harness {
    pub fn new(role: u32, config: Config, now: u32) -> Self {
        let mut e = Box::new(omv_rpc_engine_t { opaque: [0; ffi::ENGINE_SIZE / 8] });
        // SAFETY: e is valid storage of OMV_RPC_ENGINE_SIZE bytes.
        unsafe { ffi::omv_rpc_init(&mut *e, role, &config) };
        Harness { e, config, virt: 0, now, jumped: 0, zero_steps: 0 }
    }

    pub fn poll(&mut self) -> omv_rpc_io_t {
        let mut io = std::mem::MaybeUninit::<omv_rpc_io_t>::uninit();
        // SAFETY: the engine was initialised; io is writable.
        let io = unsafe {
            ffi::omv_rpc_poll(&mut *self.e, self.now, io.as_mut_ptr());
            io.assume_init()
        };
        assert!(io.action <= ACTION_WAIT, "unknown action {}", io.action);
        if tracing() {
            eprintln!(
                "poll t={} action {} packet {} len {} packet_len {} prefix {} timeout {} deadline +{} first-byte {} gap {} status {} stats {:?}",
                self.now, io.action, io.packet, io.len, io.packet_len, io.prefix_len, io.timeout_ms,
                io.deadline_ms.wrapping_sub(self.now), io.start_timeout_ms, io.gap_ms, io.status, self.stats()
            );
        }
        // poll() has no side effects: asking again gives the same action.
        let mut again = std::mem::MaybeUninit::<omv_rpc_io_t>::uninit();
        let again = unsafe {
            ffi::omv_rpc_poll(&mut *self.e, self.now, again.as_mut_ptr());
            again.assume_init()
        };
        assert!(
            again.action == io.action && again.len == io.len && again.data == io.data && again.deadline_ms == io.deadline_ms,
            "poll() twice gave two actions"
        );
        if matches!(io.action, ACTION_SEND | ACTION_RECV | ACTION_WAIT) {
            let ahead = io.deadline_ms.wrapping_sub(self.now);
            if io.action != ACTION_WAIT {
                assert!(ahead <= io.timeout_ms, "deadline {ahead} ms ahead, timeout {}", io.timeout_ms);
            }
            let mut d = 0u32;
            // SAFETY: as above.
            let timed = unsafe { ffi::omv_rpc_poll_timeout(&mut *self.e, &mut d) };
            assert!(timed, "poll_timeout() false while the engine waits for a timed action");
        }
        io
    }

    pub fn complete(&mut self, status: i32, buf: Option<&Guarded>) {
        if tracing() {
            eprintln!("  complete t={} (virt {}) status {status} buf {:?}", self.now, self.virt, buf.map(Guarded::len));
        }
        let (p, n) = buf.map_or((std::ptr::null(), 0), |b| (b.ptr(), b.len()));
        // SAFETY: buf (if any) stays alive until the next DONE (the callers keep every buffer).
        unsafe { ffi::omv_rpc_complete(&mut *self.e, self.now, status, p, n) };
    }

    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        unsafe { ffi::omv_rpc_stats(&*self.e, &mut s) };
        s
    }

    /// [ptr, ptr + len) lies inside the engine's own state.
    pub fn in_state(&self, ptr: *const u8, len: usize) -> bool {
        let start = &*self.e as *const omv_rpc_engine_t as usize;
        let p = ptr as usize;
        p >= start && p.checked_add(len).is_some_and(|end| end <= start + ffi::ENGINE_SIZE)
    }

    /// Moves the clock `dt` ms (the caller took that long).
    pub fn advance(&mut self, dt: u32) {
        if dt == 0 {
            self.zero_steps += 1;
        }
        // A real caller takes time: at most 4 steps in a row at the same ms.
        let dt = if self.zero_steps > 4 { 1 } else { dt };
        if dt > 0 {
            self.zero_steps = 0;
        }
        self.virt += u64::from(dt);
        self.now = self.now.wrapping_add(dt);
    }

    /// To the io's deadline (a TIMEOUT is reported only once it passed), then `extra` ms.
    pub fn to_deadline(&mut self, io: &omv_rpc_io_t) {
        let ahead = io.deadline_ms.wrapping_sub(self.now);
        if ahead < 1 << 31 {
            self.advance(ahead);
        }
    }

    pub fn jump(&mut self, dt: u32) {
        self.jumped += u64::from(dt);
        self.virt += u64::from(dt);
        self.now = self.now.wrapping_add(dt);
    }

    /// A clock step from the tape: mostly 0-3 ms, sometimes a jump (a caller descheduled for
    /// a while, a step over the wrap of the ms clock).
    pub fn tape_step(&mut self, tape: &mut Tape) {
        let b = tape.u8();
        // Time the caller spends beyond a few ms is its own (a slow callback or loop), not
        // the engine's: it counts as a jump.
        match b {
            0..=239 => self.advance(u32::from(b % 4)),
            240..=247 => self.jump(u32::from(b - 236) * 7),
            248 => self.jump(1000),
            249 => self.jump(1 << 31),
            250 => self.jump(u32::MAX),
            251 => {
                let j = tape.u32();
                self.jump(j)
            }
            _ => {
                let j = u32::from(tape.u8());
                self.jump(j)
            }
        }
    }

    pub fn abort(&mut self) {
        unsafe { ffi::omv_rpc_abort(&mut *self.e) };
    }
}

/// The engine's config from the tape: small timeouts (so that a run is quick), hostile limits.
pub fn config_from(tape: &mut Tape) -> Config {
    let b = tape.u8();
    let small = |t: &mut Tape, max: u32| u32::from(t.u8()) % max;
    let mut c = Config::default();
    if b & 1 != 0 {
        c.short_timeout_ms = small(tape, 12);
    }
    c.long_timeout_ms = 1 + small(tape, 200);
    // Limits: hostile values, the default 64 KiB, or small ones (most runs: quick).
    let limit = |t: &mut Tape| match b >> 5 {
        0 => t.hostile_len(4096),
        1 => 0,
        2 => 1 + u32::from(t.u16()),
        _ => 1 + u32::from(t.u8()) * 4,
    };
    c.max_argument_len = limit(tape);
    c.max_result_len = limit(tape);
    c.max_frame_len = limit(tape);
    c.max_queue_depth = if b & 4 != 0 { tape.hostile_len(255) } else { 0 };
    c.stream_timeout_ms = 1 + small(tape, 100);
    c.pipeline = u32::from(tape.u8() & 3);
    c.bytes_per_s = if b & 8 != 0 { 1000 * (1 + u32::from(tape.u8())) } else { 0 };
    c.error_pause_ms = small(tape, 20);
    c.split_reads = u32::from(b & 16 != 0);
    c
}

/// A starting time: near the wrap of the clock, near its half, or anywhere.
pub fn start_time(tape: &mut Tape) -> u32 {
    match tape.u8() % 4 {
        0 => u32::MAX - u32::from(tape.u8()),
        1 => (1u32 << 31) - u32::from(tape.u8()),
        2 => tape.u32(),
        _ => u32::from(tape.u8()),
    }
}

/// A byte stream from the peer: what it sent and the caller has not read yet.
#[derive(Default)]
pub struct Wire {
    pub pending: VecDeque<u8>,
    /// Every byte the engine read, in order (raw tape bytes may carry valid packets too).
    pub read: Vec<u8>,
}

impl Wire {
    pub fn push(&mut self, p: &[u8]) {
        self.pending.extend(p.iter().copied());
    }
    pub fn flush(&mut self) {
        self.pending.clear();
    }
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.pending.len());
        let got: Vec<u8> = self.pending.drain(..n).collect();
        self.read.extend_from_slice(&got);
        got
    }

    /// The engine read, as consecutive bytes, a valid packet of `magic` and `len` bytes whose
    /// payload starts with `fields`.
    pub fn read_valid(&self, magic: u16, len: usize, fields: &[u8]) -> bool {
        self.read.windows(len).any(|p| p[2..].starts_with(fields) && valid_packet(magic, p))
    }
}

/// The resolved limits the checks need (zero config fields take the defaults).
pub fn resolved(c: &Config) -> (u32, u32, u32) {
    let or = |v: u32| if v == 0 { omv_rpc::defaults::MAX_DATA_LEN } else { v };
    (or(c.max_argument_len), or(c.max_result_len), or(c.max_frame_len))
}

/// How long one attempt may overrun its phase: each of its steps may take its timeout.
pub const STEPS_PER_ATTEMPT: u64 = 12;

/// Carries out a RECV from `wire`: into the engine's buffer or into a new caller buffer
/// (returned; the caller keeps it alive). Reads what is pending; short: partial bytes, TIMEOUT.
/// `status_override`: the caller reports ERROR instead.
/// The largest buffer the harness allocates for a data packet (the limits may be set higher).
pub const MAX_CALLER_BUFFER: usize = 256 * 1024;

/// `live`: the caller's receive buffers of this operation (the engine may read a repeated
/// packet into one it holds).
pub fn carry_out_recv(h: &mut Harness, io: &omv_rpc_io_t, wire: &mut Wire, error: bool, tape: &mut Tape, live: &[Guarded]) -> Option<Guarded> {
    let len = io.len as usize;
    assert!(len > 0, "RECV of 0 bytes");
    assert!(io.packet_len as usize >= len, "RECV of {len} bytes of a {}-byte packet", io.packet_len);
    if io.data.is_null() && len > MAX_CALLER_BUFFER {
        // A caller without that much memory: "no memory for a data packet" is an ERROR.
        h.advance(0);
        h.complete(IO_ERROR, None);
        return None;
    }
    let mut own = None;
    let dst: *mut u8 = if io.data.is_null() {
        let prefix = io.prefix_len as usize;
        assert!(prefix <= len, "prefix {prefix} longer than the read {len}");
        let mut g = Guarded::zeroed(len);
        if prefix > 0 {
            assert!(h.in_state(io.prefix, prefix), "prefix outside the engine state");
            // SAFETY: checked just above: inside the engine state.
            let pre = unsafe { std::slice::from_raw_parts(io.prefix, prefix) };
            g.bytes_mut()[..prefix].copy_from_slice(pre);
        }
        own = Some(g);
        reached(7);
        if prefix > 0 {
            reached(8);
        }
        unsafe { own.as_mut().unwrap().mut_ptr().add(prefix) }
    } else {
        let held = live.iter().any(|b| b.holds(io.data, len));
        assert!(
            held || len <= MAX_HEADER_LEN && h.in_state(io.data, len),
            "RECV of {len} bytes outside the engine state and the caller's buffers of this operation"
        );
        io.data
    };
    let want = len - if io.data.is_null() { io.prefix_len as usize } else { 0 };
    let got = wire.take(want);
    // SAFETY: dst has `want` bytes (the engine's buffer: checked; ours: allocated).
    unsafe { std::ptr::copy_nonoverlapping(got.as_ptr(), dst, got.len()) };
    let status = if error {
        h.advance(u32::from(tape.u8() % 3));
        IO_ERROR
    } else if got.len() == want {
        // An OK read comes by its deadline.
        let ahead = io.deadline_ms.wrapping_sub(h.now);
        let dt = u32::from(tape.u8() % 4);
        h.advance(dt.min(ahead));
        IO_OK
    } else {
        if got.is_empty() && io.start_timeout_ms != 0 {
            // Nothing came: the first byte's deadline is the one that passes.
            let ahead = io.start_deadline_ms.wrapping_sub(h.now);
            if ahead < 1 << 31 {
                h.advance(ahead);
            }
        } else {
            h.to_deadline(io);
        }
        IO_TIMEOUT
    };
    h.complete(status, own.as_ref());
    if let Some(g) = &own {
        g.check_guards("receive");
    }
    own
}

pub mod decode;
pub mod master;
pub mod slave;
pub mod stream;
