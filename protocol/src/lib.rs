//! OpenMV Protocol V2, the link of OpenMV IDE and of the `openmv` Python package, as a
//! `#![no_std]` sans-IO engine with no allocator: the wire format (`wire`, `crc`), the
//! device role the cam runs (`device`) and the host role a PC runs (`host`). Nothing here
//! reads a clock or touches a port: bytes and the time in milliseconds are passed in.
#![cfg_attr(not(feature = "std"), no_std)]

pub mod crc;
pub mod device;
pub mod host;
pub mod rx;
pub mod wire;
pub mod c_abi;

#[cfg(all(not(feature = "std"), feature = "panic-handler", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
