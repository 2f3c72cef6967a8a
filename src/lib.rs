//! omv_rpc: the OpenMV `rpc` wire protocol engine (PROTOCOL.md), `no_std`, no allocator,
//! sans-IO.
//!
//! # Layout
//! - [`wire`]: magics, the djb2-xor name hash, packets as views over bytes with a `Repr` per
//!   packet (`wire/mod.rs`); CRC-16/IBM-3740 (`wire/crc.rs`).
//! - [`engine`]: one state machine per operation: the master call (`engine/call.rs`), the slave
//!   turn (`engine/serve.rs`), the stream reader and writer (`engine/stream.rs`), the timing
//!   rules they share (`engine/timing.rs`), the public types (`engine/types.rs`), the state and
//!   the dispatch (`engine/mod.rs`).
//! - [`ffi`]: the C ABI of `include/omv_rpc.h` (`#[no_mangle] extern "C"`), over the same engine.
//!
//! # The safe Rust API (the C ABI's shape)
//! ```
//! use omv_rpc::{Config, Engine, Io, IoStatus, Role, Status};
//!
//! let mut master: Engine<Vec<u8>> = Engine::new(Role::Master, Config::default());
//! // The argument goes at [2, len - 2) of a packet buffer; the engine frames it in place.
//! let mut packet = vec![0u8; 3 + 4];
//! packet[2..5].copy_from_slice(b"abc");
//! let name_hash = omv_rpc::name_hash(b"echo");
//! assert_eq!(master.call_start(name_hash, packet, 1000, 1000, 0), Status::Ok);
//! let now = 0;
//! match master.poll(now) {
//!     // A new engine is not in sync: its first attempt drops pending input.
//!     Io::Flush => master.complete(now, IoStatus::Ok, None),
//!     _ => unreachable!(),
//! }
//! // Then: Io::Send { data, timeout_ms, .. } -> write data, complete(Ok | Timeout | Error);
//! // Io::Recv { len, into: Some(buf), .. } -> read len bytes into buf, complete(status, None);
//! // Io::Recv { len, into: None, .. } -> read len bytes into a Vec of your own and
//! //     complete(status, Some(vec)); ... until Io::Done(status); then master.result().
//! assert!(matches!(master.poll(now), Io::Send { .. }));
//! master.abort(); // idle and reusable
//! ```
//! - [`Engine::new`]`(role, config)`; zero config fields take the reference defaults.
//! - [`Engine::call_start`] (master), [`Engine::serve_start`] (slave: one turn of `loop()`),
//!   [`Engine::stream_reader_start`], [`Engine::stream_writer_start`]: `Ok`, `Busy`, or
//!   `BadBuffer` (a command packet shorter than 4 bytes).
//! - [`Engine::poll`]`(now)` → [`Io`]: what to do next. It has no side effects, so a
//!   non-blocking caller may poll as often as it likes until it carries the action out.
//! - [`Engine::complete`]`(now, status, buffer)`: how it went, with the caller's buffer where
//!   one is due (a data packet received into the caller's memory, the result packet at
//!   DISPATCH, the frame at PRODUCE).
//! - [`Engine::start_timeout_ms`]: for the receive poll() asks for, how soon its first byte
//!   must come (0: no limit; only the master's RESULT_DATA has one). `omv_rpc_io_t` carries it
//!   as `start_timeout_ms`.
//! - [`Engine::abort`], [`Engine::stats`], [`Engine::last_error`], [`Engine::result`].
//!
//! The engine is generic over the caller's buffer type `B` (`Vec<u8>`, `&mut [u8]`, ...); the C
//! ABI uses raw pointer buffers. The engine holds the buffers handed to it until the next
//! operation starts; [`Engine::take_incoming`] / [`Engine::take_outgoing`] give them back for
//! reuse. Time is a wrapping u32 millisecond counter. The state is 320 bytes on x86-64 (`Engine<Vec<u8>>`) (it must
//! fit `OMV_RPC_ENGINE_SIZE`, checked at compile time); there are no statics.
//!
//! Reference behaviour (PROTOCOL.md), where the code says it once: short timeouts 3 ms
//! (master) / 2 ms (slave), grown `t * 4 / 3` / `t + 1` after a failed attempt, capped at the
//! phase timeout, reset at each phase; data packets wait 5000 ms; stream waits 1000 ms; a
//! packet is valid only if magic and crc match (also for stream headers, unlike the reference);
//! every length is checked against the caller's limit before a buffer is asked for. Where the
//! engine does better than the reference: an attempt drops pending input ([`Io::Flush`]) only
//! when it is a retry or the link is not in sync (a good exchange less than one short timeout
//! ago), so that a peer's packet sent ahead is not thrown away (the same bytes on the wire).
//!
//! # Features
//! - `std`: link std (host Rust users, e.g. the Python package, and the tests). Without it the
//!   crate provides its own panic handler, so that the static library links into firmware and
//!   MicroPython native modules. Nothing in the engine panics on wire data.
#![no_std]
#![allow(non_camel_case_types)]
#![allow(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "std")]
extern crate std;

pub mod engine;
pub mod ffi;
pub mod wire;

pub use engine::{
    defaults, pipeline, Buffer, Config, Engine, Io, IoStatus, LastError, Packet, Reason, Role,
    Stats, Status,
};
pub use wire::{crc16, frame, name_hash};

#[cfg(not(feature = "std"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// The host targets' precompiled `core` is built for unwinding and refers to this symbol, so a
/// no-std static library for the host (the unix port's native module, the C tests) would not
/// link without it. The crate is built with panic=abort: it is never called.
#[cfg(all(not(feature = "std"), not(target_os = "none")))]
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
