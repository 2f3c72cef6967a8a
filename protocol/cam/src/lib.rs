//! Both engines in one static library: every `#[no_mangle]` function of either crate is
//! exported; omv_rpc brings the panic handler.
#![no_std]
pub use omv_protocol;
pub use omv_rpc;
