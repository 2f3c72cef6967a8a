//! The engine on rv32imc, bare metal under qemu-system-riscv32 -M virt: every recorded CRC and
//! name hash, and every recorded call replayed byte for byte in both roles (the master against
//! the slave's recorded bytes, the slave against the master's), as tests/vectors.rs does on
//! the host. Prints a summary on the virt board's NS16550 UART and ends QEMU through its
//! SiFive test device: exit code 0 when all passed, 1 otherwise.
#![no_std]
#![no_main]

use omv_rpc::{Config, Engine, Io, IoStatus, Role, Status};

pub struct Call {
    name: &'static [u8],
    arg: &'static [u8],
    registered: bool,
    result: &'static [u8],
    m2s: &'static [u8],
    s2m: &'static [u8],
}

include!(env!("OMV_RV32_VECTORS"));

const UART: *mut u8 = 0x1000_0000 as *mut u8;
const TEST_DEVICE: *mut u32 = 0x0010_0000 as *mut u32;

core::arch::global_asm!(
    ".section .text.start",
    ".global _start",
    "_start:",
    "la sp, _stack_top",
    "la t0, _sbss",
    "la t1, _ebss",
    "1: bgeu t0, t1, 2f",
    "sw zero, 0(t0)",
    "addi t0, t0, 4",
    "j 1b",
    "2: call main",
    "3: j 3b",
);

fn put(s: &[u8]) {
    for &b in s {
        unsafe { core::ptr::write_volatile(UART, b) };
    }
}

fn put_num(mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    put(&digits[i..]);
}

fn exit(code: u32) -> ! {
    // FINISHER_PASS (0x5555), or FINISHER_FAIL (0x3333) with the code in the upper half.
    let value = if code == 0 { 0x5555 } else { (code << 16) | 0x3333 };
    unsafe { core::ptr::write_volatile(TEST_DEVICE, value) };
    loop {}
}

/// Runs `engine` until Done against the recorded bytes `input`; what it writes must be
/// `expected`. DISPATCH answers with `result` (an empty result when not registered).
fn replay<'a>(engine: &mut Engine<&'a mut [u8]>, input: &[u8], expected: &[u8], result: Option<&[u8]>,
              incoming: &mut Option<&'a mut [u8]>, result_packet: &mut Option<&'a mut [u8]>) -> bool {
    let mut at = 0usize;
    let mut written = 0usize;
    let mut now = 0u32;
    for _ in 0..10_000 {
        let (status, buf): (IoStatus, Option<&'a mut [u8]>) = match engine.poll(now) {
            Io::Done(s) => return s == Status::Ok && at == input.len() && written == expected.len(),
            Io::Flush | Io::Wait { .. } => (IoStatus::Ok, None),
            Io::Send { data, .. } => {
                if expected.get(written..written + data.len()) != Some(data) {
                    return false;
                }
                written += data.len();
                (IoStatus::Ok, None)
            }
            Io::Recv { len, into: Some(into), .. } => match input.get(at..at + len) {
                Some(bytes) => {
                    into.copy_from_slice(bytes);
                    at += len;
                    (IoStatus::Ok, None)
                }
                None => return false,
            },
            Io::Recv { len, into: None, prefix, .. } => {
                let rest = len - prefix.len();
                let Some(bytes) = input.get(at..at + rest) else { return false };
                let Some(buf) = incoming.take() else { return false };
                let buf = &mut buf[..len];
                buf[..prefix.len()].copy_from_slice(prefix);
                buf[prefix.len()..].copy_from_slice(bytes);
                at += rest;
                (IoStatus::Ok, Some(buf))
            }
            Io::Dispatch { .. } => {
                let r = result.unwrap_or(&[]);
                let Some(buf) = result_packet.take() else { return false };
                let buf = &mut buf[..r.len() + 4];
                buf[2..2 + r.len()].copy_from_slice(r);
                (IoStatus::Ok, Some(buf))
            }
            Io::Deliver { .. } | Io::Produce => return false,
        };
        now = now.wrapping_add(1);
        engine.complete(now, status, buf);
    }
    false
}

fn check_call(call: &Call) -> bool {
    let mut out_pool = [0u8; 4096];
    let mut in_pool = [0u8; 4096];
    let mut result_pool = [0u8; 4096];
    // Master: the argument at [2, len - 2) of the COMMAND_DATA packet.
    let name_hash = omv_rpc::name_hash(call.name);
    let packet = &mut out_pool[..call.arg.len() + 4];
    packet[2..2 + call.arg.len()].copy_from_slice(call.arg);
    let mut master: Engine<&mut [u8]> = Engine::new(Role::Master, Config::default());
    if master.call_start(name_hash, packet, 1000, 1000, 0) != Status::Ok {
        return false;
    }
    let mut incoming = Some(&mut in_pool[..]);
    let mut none = None;
    if !replay(&mut master, call.s2m, call.m2s, None, &mut incoming, &mut none) {
        return false;
    }
    if master.result() != Some(call.result) {
        return false;
    }
    // Slave: one turn of loop() against the master's bytes.
    let mut slave: Engine<&mut [u8]> = Engine::new(Role::Slave, Config::default());
    if slave.serve_start(1000, 1000, 0) != Status::Ok {
        return false;
    }
    let mut incoming = Some(&mut out_pool[..]);
    let mut result_packet = Some(&mut result_pool[..]);
    let result = if call.registered { Some(call.result) } else { None };
    replay(&mut slave, call.m2s, call.s2m, result, &mut incoming, &mut result_packet)
}

#[no_mangle]
pub extern "C" fn main() -> ! {
    let mut failed = 0u32;
    let crc_ok = CRC.iter().filter(|(data, crc)| omv_rpc::crc16(data) == *crc).count() as u32;
    failed += CRC.len() as u32 - crc_ok;
    let hash_ok = HASH.iter().filter(|(name, hash)| omv_rpc::name_hash(name) == *hash).count() as u32;
    failed += HASH.len() as u32 - hash_ok;
    let mut calls_ok = 0u32;
    for call in CALLS {
        if check_call(call) {
            calls_ok += 1;
        } else {
            failed += 1;
        }
    }
    put(b"rv32imc engine: crc ");
    put_num(crc_ok);
    put(b"/");
    put_num(CRC.len() as u32);
    put(b", name hash ");
    put_num(hash_ok);
    put(b"/");
    put_num(HASH.len() as u32);
    put(b", calls replayed as master and slave ");
    put_num(calls_ok);
    put(b"/");
    put_num(CALLS.len() as u32);
    put(b"\n");
    exit(if failed == 0 { 0 } else { 1 })
}
