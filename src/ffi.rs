//! The C ABI of include/omv_rpc.h over [`Engine`].
//!
//! The engine state lives in the caller's `omv_rpc_engine_t` (no statics anywhere: the
//! MicroPython native-module linker has no .data or .bss). Caller buffers are held as raw
//! pointer and length ([`RawBuf`]) under the header's rule: each stays valid until the next
//! DONE on the same engine.
//!
//! # Safety
//! Every function here is `unsafe` for one reason, the header's contract: `e` was initialised
//! by `omv_rpc_init` (or is NULL, which every function refuses), and every pointer/length pair
//! names memory that is valid for that length for as long as the header says.
#![allow(clippy::missing_safety_doc)]

use core::mem::{align_of, size_of};
use core::ptr::{self, NonNull};

use crate::engine::{Config, Engine, Io, IoStatus, LastError, Packet, Role, Stats, Status};
use crate::wire;

/// `OMV_RPC_ENGINE_SIZE`: bytes of caller storage for one engine.
pub const ENGINE_SIZE: usize = 320;

/// `omv_rpc_engine_t`.
#[repr(C, align(8))]
pub struct omv_rpc_engine_t {
    pub opaque: [u64; ENGINE_SIZE / 8],
}

/// `omv_rpc_io_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct omv_rpc_io_t {
    pub action: u32,
    pub packet: u32,
    pub timeout_ms: u32,
    pub len: u32,
    pub data: *mut u8,
    pub name_hash: u32,
    pub status: u32,
    /// RECV: the first byte must arrive within this many ms (0: no limit); see
    /// [`Engine::start_timeout_ms`]. Added last: every earlier offset is unchanged.
    pub start_timeout_ms: u32,
    /// SEND, RECV, WAIT: the absolute deadline (the ms clock), `timeout_ms` after the step
    /// began.
    pub deadline_ms: u32,
    /// RECV with a first-byte limit: its absolute deadline (valid when start_timeout_ms != 0).
    pub start_deadline_ms: u32,
    /// RECV into the caller's buffer (data NULL): the packet's first prefix_len bytes, already
    /// read by the engine; the caller copies them to the start of its buffer and reads the rest.
    pub prefix: *const u8,
    pub prefix_len: u32,
    /// SEND, RECV: the whole packet's length (a RECV may read only part of it).
    pub packet_len: u32,
    /// RECV: once bytes came, the longest pause between two (0: none); see
    /// [`Engine::gap_timeout_ms`].
    pub gap_ms: u32,
}

pub type omv_rpc_config_t = Config;
pub type omv_rpc_stats_t = Stats;
pub type omv_rpc_error_t = LastError;

/// A caller buffer as the C side hands it over: valid until the next DONE (header contract).
pub struct RawBuf {
    ptr: NonNull<u8>,
    len: usize,
}

impl AsRef<[u8]> for RawBuf {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the C caller keeps [ptr, ptr + len) valid until the next DONE.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl AsMut<[u8]> for RawBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above; the engine writes only into packets it frames in place (the
        // command data packet and the result packet, which the header documents as writable).
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

type CEngine = Engine<RawBuf>;

// The state must fit the caller's storage.
const _: () = assert!(size_of::<CEngine>() <= ENGINE_SIZE);
const _: () = assert!(align_of::<CEngine>() <= align_of::<omv_rpc_engine_t>());
const _: () = assert!(size_of::<omv_rpc_engine_t>() == ENGINE_SIZE);

fn engine<'a>(e: *mut omv_rpc_engine_t) -> Option<&'a mut CEngine> {
    // SAFETY: a non-null e was initialised by omv_rpc_init (header contract).
    unsafe { e.cast::<CEngine>().as_mut() }
}

fn engine_ref<'a>(e: *const omv_rpc_engine_t) -> Option<&'a CEngine> {
    // SAFETY: as above.
    unsafe { e.cast::<CEngine>().as_ref() }
}

unsafe fn raw_buf(ptr: *const u8, len: usize) -> Option<RawBuf> {
    NonNull::new(ptr as *mut u8).map(|ptr| RawBuf { ptr, len })
}

/// Initialise `e` as an idle engine of `role` (OMV_RPC_ROLE_*; anything else is a slave).
/// `config` may be NULL for all defaults.
#[no_mangle]
pub unsafe extern "C" fn omv_rpc_init(e: *mut omv_rpc_engine_t, role: u32, config: *const Config) {
    if e.is_null() {
        return;
    }
    let role = if role == 0 { Role::Master } else { Role::Slave };
    let config = config.as_ref().copied().unwrap_or_default();
    ptr::write(e.cast::<CEngine>(), Engine::new(role, config));
}

#[no_mangle]
pub unsafe extern "C" fn omv_rpc_call_start(
    e: *mut omv_rpc_engine_t,
    name_hash: u32,
    command_data_packet: *mut u8,
    packet_len: usize,
    send_timeout_ms: u32,
    recv_timeout_ms: u32,
    now_ms: u32,
) -> u32 {
    let Some(engine) = engine(e) else { return Status::BadBuffer as u32 };
    let Some(packet) = raw_buf(command_data_packet, packet_len) else {
        return Status::BadBuffer as u32;
    };
    engine.call_start(name_hash, packet, send_timeout_ms, recv_timeout_ms, now_ms) as u32
}

#[no_mangle]
pub unsafe extern "C" fn omv_rpc_result_len(e: *const omv_rpc_engine_t) -> u32 {
    engine_ref(e).map_or(0, |e| e.result_len())
}

#[no_mangle]
pub unsafe extern "C" fn omv_rpc_serve_start(
    e: *mut omv_rpc_engine_t,
    recv_timeout_ms: u32,
    send_timeout_ms: u32,
    now_ms: u32,
) -> u32 {
    engine(e).map_or(Status::BadBuffer as u32, |e| {
        e.serve_start(recv_timeout_ms, send_timeout_ms, now_ms) as u32
    })
}

#[no_mangle]
pub unsafe extern "C" fn omv_rpc_stream_reader_start(
    e: *mut omv_rpc_engine_t,
    queue_depth: u32,
    read_timeout_ms: u32,
    now_ms: u32,
) -> u32 {
    engine(e).map_or(Status::BadBuffer as u32, |e| {
        e.stream_reader_start(queue_depth, read_timeout_ms, now_ms) as u32
    })
}

#[no_mangle]
pub unsafe extern "C" fn omv_rpc_stream_writer_start(
    e: *mut omv_rpc_engine_t,
    write_timeout_ms: u32,
    now_ms: u32,
) -> u32 {
    engine(e).map_or(Status::BadBuffer as u32, |e| {
        e.stream_writer_start(write_timeout_ms, now_ms) as u32
    })
}

/// The C view of an [`Io`].
pub fn io_to_c(io: Io<'_>) -> omv_rpc_io_t {
    let mut out = omv_rpc_io_t {
        action: io.action(),
        packet: Packet::None as u32,
        timeout_ms: 0,
        len: 0,
        data: ptr::null_mut(),
        name_hash: 0,
        status: Status::Ok as u32,
        start_timeout_ms: 0,
        deadline_ms: 0,
        start_deadline_ms: 0,
        prefix: ptr::null(),
        prefix_len: 0,
        packet_len: 0,
        gap_ms: 0,
    };
    // Lengths handed out here are at most a u32 length field plus 4 (checked on entry).
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    match io {
        Io::Done(status) => out.status = status as u32,
        Io::Flush => {}
        Io::Produce => out.packet = Packet::StreamFrame as u32,
        Io::Wait { deadline_ms } => out.deadline_ms = deadline_ms,
        Io::Send { packet, timeout_ms, deadline_ms, data } => {
            out.packet = packet as u32;
            out.timeout_ms = timeout_ms;
            out.deadline_ms = deadline_ms;
            out.len = len32(data.len());
            out.packet_len = out.len;
            // The caller only reads from it.
            out.data = data.as_ptr() as *mut u8;
        }
        Io::Recv { packet, timeout_ms, deadline_ms, len, packet_len, prefix, into } => {
            out.packet_len = len32(packet_len);
            out.packet = packet as u32;
            out.timeout_ms = timeout_ms;
            out.deadline_ms = deadline_ms;
            out.len = len32(len);
            out.prefix = prefix.as_ptr();
            out.prefix_len = len32(prefix.len());
            out.data = into.map_or(ptr::null_mut(), |b| b.as_mut_ptr());
        }
        Io::Dispatch { name_hash, argument } => {
            out.packet = Packet::CommandData as u32;
            out.name_hash = name_hash;
            out.len = len32(argument.len());
            out.data = argument.as_ptr() as *mut u8;
        }
        Io::Deliver { frame } => {
            out.packet = Packet::StreamFrame as u32;
            out.len = len32(frame.len());
            out.data = frame.as_ptr() as *mut u8;
        }
    }
    out
}

#[no_mangle]
pub unsafe extern "C" fn omv_rpc_poll(
    e: *mut omv_rpc_engine_t,
    now_ms: u32,
    io: *mut omv_rpc_io_t,
) {
    let Some(io) = io.as_mut() else { return };
    let Some(engine) = engine(e) else {
        *io = io_to_c(Io::Done(Status::BadBuffer));
        return;
    };
    let start_timeout_ms = engine.start_timeout_ms();
    let start_deadline_ms = engine.first_byte_deadline().unwrap_or(0);
    let gap_ms = engine.gap_timeout_ms();
    *io = io_to_c(engine.poll(now_ms));
    io.gap_ms = gap_ms;
    io.start_timeout_ms = start_timeout_ms;
    io.start_deadline_ms = start_deadline_ms;
}

/// When the engine next needs the caller back (the deadline of what it asks for now), into
/// `*deadline_ms`; false when nothing it waits for is timed.
#[no_mangle]
pub unsafe extern "C" fn omv_rpc_poll_timeout(
    e: *mut omv_rpc_engine_t,
    deadline_ms: *mut u32,
) -> bool {
    let (Some(engine), Some(out)) = (engine(e), deadline_ms.as_mut()) else { return false };
    match engine.poll_timeout() {
        Some(d) => {
            *out = d;
            true
        }
        None => false,
    }
}

#[no_mangle]
pub unsafe extern "C" fn omv_rpc_complete(
    e: *mut omv_rpc_engine_t,
    now_ms: u32,
    io_status: i32,
    buf: *const u8,
    len: usize,
) {
    let Some(engine) = engine(e) else { return };
    let status = match io_status {
        0 => IoStatus::Ok,
        1 => IoStatus::Timeout,
        _ => IoStatus::Error,
    };
    engine.complete(now_ms, status, raw_buf(buf, len));
}

#[no_mangle]
pub unsafe extern "C" fn omv_rpc_abort(e: *mut omv_rpc_engine_t) {
    if let Some(engine) = engine(e) {
        engine.abort();
    }
}

#[no_mangle]
pub unsafe extern "C" fn omv_rpc_stats(e: *const omv_rpc_engine_t, out: *mut Stats) {
    if let (Some(engine), Some(out)) = (engine_ref(e), out.as_mut()) {
        *out = engine.stats();
    }
}

#[no_mangle]
pub unsafe extern "C" fn omv_rpc_stats_reset(e: *mut omv_rpc_engine_t) {
    if let Some(engine) = engine(e) {
        engine.stats_reset();
    }
}

#[no_mangle]
pub unsafe extern "C" fn omv_rpc_last_error(e: *const omv_rpc_engine_t, out: *mut LastError) {
    if let (Some(engine), Some(out)) = (engine_ref(e), out.as_mut()) {
        *out = engine.last_error();
    }
}

/// `omv_rpc_last_error_text`: what `last_error` says in every door (see
/// [`LastError::describe`]), into `buf` (`cap` bytes, NUL-terminated when there is room);
/// returns its length without the NUL.
#[no_mangle]
pub unsafe extern "C" fn omv_rpc_last_error_text(
    e: *const omv_rpc_engine_t,
    buf: *mut u8,
    cap: usize,
) -> usize {
    let Some(engine) = engine_ref(e) else { return 0 };
    if buf.is_null() || cap == 0 {
        return 0;
    }
    let out = core::slice::from_raw_parts_mut(buf, cap);
    let (text, nul) = out.split_at_mut(cap - 1);
    let n = engine.last_error().describe(text);
    if let Some(end) = text.get_mut(n).or(nul.first_mut()) {
        *end = 0;
    }
    n
}

#[no_mangle]
pub unsafe extern "C" fn omv_rpc_crc16(data: *const u8, len: usize) -> u16 {
    if data.is_null() {
        return wire::crc16(&[]);
    }
    wire::crc16(core::slice::from_raw_parts(data, len))
}

#[no_mangle]
pub unsafe extern "C" fn omv_rpc_name_hash(name: *const u8, len: usize) -> u32 {
    if name.is_null() {
        return wire::name_hash(&[]);
    }
    wire::name_hash(core::slice::from_raw_parts(name, len))
}

#[no_mangle]
pub unsafe extern "C" fn omv_rpc_frame(magic: u16, packet: *mut u8, len: usize) {
    if packet.is_null() {
        return;
    }
    wire::frame(magic, core::slice::from_raw_parts_mut(packet, len));
}

/// Benchmark hook for the emulated Cortex-M7: the CRC of `len` bytes of the caller's
/// `buf`, repeated `rounds` times (so that instructions per byte can be read off a counter
/// or a cycle count around one call). Returns the last CRC so the work cannot be optimised away.
#[no_mangle]
pub unsafe extern "C" fn omv_rpc_bench_crc(buf: *const u8, len: usize, rounds: u32) -> u16 {
    let mut crc = 0;
    for _ in 0..rounds {
        crc = omv_rpc_crc16(core::hint::black_box(buf), len);
    }
    crc
}
