#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| omv_rpc_fuzz::master::run(data));
