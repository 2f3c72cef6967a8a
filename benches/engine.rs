//! `make engine-bench` (= `cargo bench --bench engine`): prints
//! - CRC-16/IBM-3740 throughput (MB/s) and instructions per byte: `omv_rpc::crc16` (on x86-64,
//!   std or not, e.g. the unix-port rpc.mpy: the PCLMULQDQ fold from `CRC16_FOLD_MIN_LEN` bytes
//!   on, slice-by-16 below), the fold alone and with its CPUID, the engine's own slice-by-16
//!   against the crc crate's slice-by-16, its 256-entry table (the C static library on
//!   Cortex-M7: firmware, native modules) and bitwise; then ns per CRC by length, which is
//!   where the fold threshold comes from;
//! - engine overhead per call, master and slave engines driven against each other in memory
//!   (no I/O, no clock): ns per call and, under valgrind (callgrind), instructions per call,
//!   for 0 B, 1 KiB and 64 KiB arguments and results;
//! - the thumbv7em-none-eabihf release size: the crate's own object (.text/.rodata/.data/.bss)
//!   and a --gc-sections link of every C ABI entry point.
//!
//! `engine --calls N SIZE` only runs N calls (used for the instruction counts); `--crc-only` prints
//! only the CRC figures (`cargo bench --bench engine -- --crc-only`).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crc::{Crc, NoTable, Table, CRC_16_IBM_3740};
use omv_rpc::{name_hash, Config, Engine, Io, IoStatus, Role, Status};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Time per run of `f`: the best of five rounds of about `budget / 5` each (the machine is
/// shared; the best round is the least disturbed).
fn time_per_run(budget: Duration, mut f: impl FnMut()) -> Duration {
    f();
    let round = budget / 5;
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let (mut runs, mut total) = (1u64, 0u64);
        let start = Instant::now();
        loop {
            for _ in 0..runs {
                f();
            }
            total += runs;
            let elapsed = start.elapsed();
            if elapsed >= round {
                best = best.min(elapsed / total as u32);
                break;
            }
            runs *= 2;
        }
    }
    best
}

const BITWISE: Crc<u16, NoTable> = Crc::<u16, NoTable>::new(&CRC_16_IBM_3740);
const TABLE1: Crc<u16, Table<1>> = Crc::<u16, Table<1>>::new(&CRC_16_IBM_3740);
const SLICE16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_IBM_3740);

type CrcFn = fn(&[u8]) -> u16;
const CRCS: [(&str, CrcFn); 8] = [
    ("omv_rpc::crc16 (x86-64: fold from CRC16_FOLD_MIN_LEN)", |d| omv_rpc::crc16(d)),
    ("omv_rpc_crc16 via the C ABI", |d| unsafe {
        omv_rpc::ffi::omv_rpc_crc16(d.as_ptr(), d.len())
    }),
    ("crc16_folded: PCLMULQDQ fold + CPUID per call", |d| {
        omv_rpc::wire::crc16_folded(d).unwrap_or(0)
    }),
    // Only run when crc16_folded said the CPU has PCLMULQDQ (see `fold_supported`).
    ("crc16_folded_unchecked: the fold alone", |d| unsafe {
        omv_rpc::wire::crc16_folded_unchecked(d)
    }),
    ("crc16_sliced: own slice-by-16 (8 KiB)", |d| omv_rpc::wire::crc16_sliced(d)),
    ("crc crate Table<16> (slice-by-16, 8 KiB)", |d| SLICE16.checksum(d)),
    ("crc crate Table<1>, 512 B (Cortex-M7 C library)", |d| TABLE1.checksum(d)),
    ("crc crate NoTable (bitwise)", |d| BITWISE.checksum(d)),
];
/// The CRCS row that must not run without PCLMULQDQ.
const FOLD_UNCHECKED: usize = 3;

fn fold_supported() -> bool {
    omv_rpc::wire::crc16_folded(b"").is_some()
}

fn crc_data() -> Vec<u8> {
    (0..65536u32).map(|i| (i * 31 + 7) as u8).collect()
}

/// Instructions per byte of CRC implementation `i` (callgrind: deterministic, unlike time).
fn crc_instructions_per_byte(i: usize) -> Option<f64> {
    let (few, many) = (2u32, 12u32);
    let total =
        |rounds: u32| callgrind_instructions(&["--crc", &i.to_string(), &rounds.to_string()]);
    Some((total(many)? - total(few)?) / f64::from(many - few) / 65536.0)
}

fn crc_throughput() {
    let data = crc_data();
    println!("CRC-16/IBM-3740 over 64 KiB (x86-64 host; best of 5 rounds):");
    let small = [0x12u8, 0x09, 1, 2, 3, 4, 5, 6, 7, 8];
    let t = time_per_run(Duration::from_millis(200), || {
        black_box(omv_rpc::crc16(black_box(&small)));
    });
    println!("  omv_rpc::crc16 of a 10-byte header: {:.1} ns", t.as_nanos() as f64);
    println!("  (the x86-64 C static library, no std, runs the same omv_rpc::crc16 as the std build: the");
    println!("   first two rows; Cortex-M7 builds keep the crc crate's 512 B table)");
    println!("  {:<50} {:>9} {:>12}", "", "MB/s", "instr/byte");
    for (i, (name, f)) in CRCS.iter().enumerate() {
        if i == FOLD_UNCHECKED && !fold_supported() {
            println!("  {name:<50} (this CPU has no PCLMULQDQ)");
            continue;
        }
        let t = time_per_run(Duration::from_millis(300), || {
            black_box(f(black_box(&data)));
        });
        let instr = crc_instructions_per_byte(i).map_or(String::from("-"), |n| format!("{n:.2}"));
        println!("  {name:<50} {:>9.0} {instr:>12}", data.len() as f64 / t.as_secs_f64() / 1e6);
    }
    crc_by_length(&data);
}

/// ns per CRC by length: slice-by-16, the fold with and without CPUID, and `crc16`, which picks
/// the fold from `CRC16_FOLD_MIN_LEN` bytes on. The fold pays where its column with CPUID
/// drops below slice-by-16's.
fn crc_by_length(data: &[u8]) {
    println!(
        "  ns per CRC by length (crc16 folds from {} B{}; the feature check alone: {:.0} ns):",
        omv_rpc::wire::CRC16_FOLD_MIN_LEN,
        if omv_rpc::wire::CRC16_FOLD_BUILT_IN {
            ", PCLMULQDQ assumed by the build: no CPUID"
        } else {
            ""
        },
        time_per_run(Duration::from_millis(100), || {
            black_box(omv_rpc::wire::crc16_folded(black_box(b"")));
        })
        .as_nanos() as f64
    );
    println!(
        "  {:>8} {:>12} {:>12} {:>12} {:>12}",
        "bytes", "sliced", "fold", "fold+CPUID", "crc16"
    );
    for len in [16usize, 32, 48, 64, 128, 256, 1024, 4096, 16384, 32768, 65536] {
        let d = &data[..len];
        let ns = |f: &dyn Fn()| time_per_run(Duration::from_millis(60), f).as_nanos() as f64;
        let sliced = ns(&|| {
            black_box(omv_rpc::wire::crc16_sliced(black_box(d)));
        });
        let (fold, fold_cpuid) = if fold_supported() {
            let fold = ns(&|| {
                black_box(unsafe { omv_rpc::wire::crc16_folded_unchecked(black_box(d)) });
            });
            let fold_cpuid = ns(&|| {
                black_box(omv_rpc::wire::crc16_folded(black_box(d)));
            });
            (format!("{fold:.0}"), format!("{fold_cpuid:.0}"))
        } else {
            (String::from("-"), String::from("-"))
        };
        let crc16 = ns(&|| {
            black_box(omv_rpc::crc16(black_box(d)));
        });
        println!("  {len:>8} {sliced:>12.0} {fold:>12} {fold_cpuid:>12} {crc16:>12.0}");
    }
}

/// A master and a slave engine wired to each other through two in-memory byte queues, reusing
/// every buffer between calls.
struct Pair {
    master: Engine<Vec<u8>>,
    slave: Engine<Vec<u8>>,
    m2s: Vec<u8>,
    m2s_at: usize,
    s2m: Vec<u8>,
    s2m_at: usize,
    spare: Vec<Vec<u8>>,
    argument: Vec<u8>,
    result_len: usize,
}

enum Turn {
    Blocked,
    Done(Status),
}

fn take(pipe: &[u8], at: &mut usize, n: usize) -> Option<std::ops::Range<usize>> {
    (pipe.len() - *at >= n).then(|| {
        *at += n;
        *at - n..*at
    })
}

impl Pair {
    fn new(size: usize) -> Pair {
        Pair {
            master: Engine::new(Role::Master, Config::default()),
            slave: Engine::new(Role::Slave, Config::default()),
            m2s: Vec::with_capacity(2 * size + 64),
            m2s_at: 0,
            s2m: Vec::with_capacity(2 * size + 64),
            s2m_at: 0,
            spare: Vec::new(),
            argument: (0..size).map(|i| i as u8).collect(),
            result_len: size,
        }
    }

    fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut b = self.spare.pop().unwrap_or_default();
        b.resize(len, 0);
        b
    }

    /// Runs one side until it needs bytes that are not there yet, or ends.
    fn run(&mut self, master: bool) -> Turn {
        loop {
            let (engine, inbox, at, outbox) = if master {
                (&mut self.master, &self.s2m, &mut self.s2m_at, &mut self.m2s)
            } else {
                (&mut self.slave, &self.m2s, &mut self.m2s_at, &mut self.s2m)
            };
            let mut need_buffer = None;
            let (status, buf) = match engine.poll(0) {
                Io::Done(s) => return Turn::Done(s),
                Io::Flush => (IoStatus::Ok, None),
                Io::Send { data, .. } => {
                    outbox.extend_from_slice(data);
                    (IoStatus::Ok, None)
                }
                Io::Recv { len, into: Some(into), .. } => match take(inbox, at, len) {
                    Some(r) => {
                        into.copy_from_slice(&inbox[r]);
                        (IoStatus::Ok, None)
                    }
                    None => return Turn::Blocked,
                },
                Io::Recv { len, into: None, .. } => {
                    if inbox.len() - *at < len {
                        return Turn::Blocked;
                    }
                    need_buffer = Some(len);
                    (IoStatus::Ok, None)
                }
                Io::Dispatch { argument, .. } => {
                    black_box(argument);
                    need_buffer = Some(self.result_len + 4);
                    (IoStatus::Ok, None)
                }
                other => panic!("{other:?}"),
            };
            match need_buffer {
                None => engine.complete(0, status, buf),
                Some(len) => {
                    let mut b = self.buffer(len);
                    let (engine, inbox, at) = if master {
                        (&mut self.master, &self.s2m, &mut self.s2m_at)
                    } else {
                        (&mut self.slave, &self.m2s, &mut self.m2s_at)
                    };
                    if let Some(r) = take(inbox, at, len) {
                        b.copy_from_slice(&inbox[r]);
                    } else {
                        // DISPATCH: the callback writes its result into the packet buffer.
                        b[2..len - 2].fill(0x5A);
                    }
                    // The slave's argument buffer is free once the result is handed in.
                    if let Some(old) = engine.take_incoming() {
                        self.spare.push(old);
                    }
                    engine.complete(0, IoStatus::Ok, Some(b));
                }
            }
        }
    }

    fn call(&mut self) {
        self.m2s.clear();
        self.m2s_at = 0;
        self.s2m.clear();
        self.s2m_at = 0;
        for e in [&mut self.master, &mut self.slave] {
            if let Some(b) = e.take_incoming() {
                self.spare.push(b);
            }
            if let Some(b) = e.take_outgoing() {
                self.spare.push(b);
            }
        }
        let mut packet = self.buffer(self.argument.len() + 4);
        packet[2..2 + self.argument.len()].copy_from_slice(&self.argument);
        assert_eq!(self.master.call_start(name_hash(b"bench"), packet, 1000, 1000, 0), Status::Ok);
        assert_eq!(self.slave.serve_start(1000, 1000, 0), Status::Ok);
        let (mut master_done, mut slave_done) = (false, false);
        while !(master_done && slave_done) {
            if let Turn::Done(s) = self.run(true) {
                assert_eq!(s, Status::Ok);
                master_done = true;
            }
            if let Turn::Done(s) = self.run(false) {
                assert_eq!(s, Status::Ok);
                slave_done = true;
            }
        }
        assert_eq!(self.master.result_len() as usize, self.result_len);
    }
}

const SIZES: [(usize, &str); 3] = [(0, "0 B"), (1024, "1 KiB"), (65536, "64 KiB")];

/// Total instructions of this program run with `args` under valgrind's callgrind.
fn callgrind_instructions(args: &[&str]) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(&exe)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().find(|l| l.contains("Collected :"))?;
    line.rsplit(':').next()?.trim().replace(',', "").parse().ok()
}

fn instructions_per_call(size: usize) -> Option<f64> {
    let count =
        |calls: u32| callgrind_instructions(&["--calls", &calls.to_string(), &size.to_string()]);
    let (few, many) = (10, 110);
    Some((count(many)? - count(few)?) / f64::from(many - few))
}

fn engine_overhead() {
    println!(
        "Engine overhead per call, master + slave engines in memory (no I/O; best of 5 rounds):"
    );
    println!(
        "  {:<8} {:>10} {:>14} {:>12} {:>10} {:>13} {:>10}",
        "payload", "ns/call", "MB/s (arg+res)", "raw copy ns", "x raw", "instructions", "instr/B"
    );
    for (size, label) in SIZES {
        let mut pair = Pair::new(size);
        let t = time_per_run(Duration::from_millis(400), || pair.call());
        // Baseline, measured in the same run: moving the same bytes with no protocol at all
        // (argument and result each copied into a pipe and out into a caller buffer).
        let (src, mut pipe, mut dst) =
            (vec![7u8; size + 16], vec![0u8; size + 16], vec![0u8; size + 16]);
        let raw = time_per_run(Duration::from_millis(200), || {
            for _ in 0..2 {
                pipe.copy_from_slice(black_box(&src));
                dst.copy_from_slice(black_box(&pipe));
            }
            black_box(&dst);
        });
        let mbs = if size == 0 {
            String::from("-")
        } else {
            format!("{:.0}", 2.0 * size as f64 / t.as_secs_f64() / 1e6)
        };
        let (instr, per_byte) = match instructions_per_call(size) {
            Some(i) if size > 0 => (format!("{i:.0}"), format!("{:.2}", i / (2 * size) as f64)),
            Some(i) => (format!("{i:.0}"), String::from("-")),
            None => (String::from("(no valgrind)"), String::from("-")),
        };
        let ratio = t.as_secs_f64() / raw.as_secs_f64().max(1e-12);
        println!(
            "  {label:<8} {:>10.0} {mbs:>14} {:>12.0} {ratio:>10.1} {instr:>13} {per_byte:>10}",
            t.as_nanos() as f64,
            raw.as_nanos() as f64
        );
    }
    println!("  (each call: 8 packets, CRC of every byte sent and received by both sides, buffers reused;");
    println!("   std build of the engine, slice-by-16 CRC as in the x86-64 C static library; the");
    println!("   Cortex-M7 library's 512 B table costs more instructions per byte, see the CRC table above)");
}

fn tool(name: &str) -> bool {
    Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn arm_size() {
    let lib = root().join("target/thumbv7em-none-eabihf/release/libomv_rpc.a");
    if !lib.exists() {
        let ok = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root())
            .args(["build", "--release", "--lib", "--target", "thumbv7em-none-eabihf"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            println!("thumbv7em size: could not build {}", lib.display());
            return;
        }
    }
    if !tool("arm-none-eabi-size") {
        println!("thumbv7em size: arm-none-eabi-size not installed (make deps)");
        return;
    }
    let dir = root().join("target/engine-bench-size");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let members = Command::new("ar").arg("t").arg(&lib).output().unwrap();
    let members = String::from_utf8_lossy(&members.stdout).to_string();
    let own: Vec<&str> = members.lines().filter(|m| m.starts_with("omv_rpc-")).collect();
    Command::new("ar").arg("x").arg(&lib).args(&own).current_dir(&dir).status().unwrap();
    let mut sums = [0u64; 4];
    for obj in &own {
        let out = Command::new("arm-none-eabi-size").arg("-A").arg(dir.join(obj)).output().unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut f = line.split_whitespace();
            let (Some(name), Some(size)) = (f.next(), f.next().and_then(|s| s.parse::<u64>().ok()))
            else {
                continue;
            };
            let slot = if name.starts_with(".text") {
                0
            } else if name.starts_with(".rodata") {
                1
            } else if name.starts_with(".data") {
                2
            } else if name.starts_with(".bss") {
                3
            } else {
                continue;
            };
            sums[slot] += size;
        }
    }
    println!("thumbv7em-none-eabihf release (opt-level 3, LTO, panic=abort):");
    println!(
        "  crate object:      .text {:6} B  .rodata {:5} B  .data {:3} B  .bss {:3} B",
        sums[0], sums[1], sums[2], sums[3]
    );
    linked_size(&lib, &dir);
}

/// Links every C ABI entry point (and what they pull from core/compiler_builtins) with
/// --gc-sections: the engine's real footprint in a firmware image.
fn linked_size(lib: &Path, dir: &Path) {
    if !tool("arm-none-eabi-gcc") {
        return;
    }
    let symbols = [
        "omv_rpc_init",
        "omv_rpc_call_start",
        "omv_rpc_result_len",
        "omv_rpc_serve_start",
        "omv_rpc_stream_reader_start",
        "omv_rpc_stream_writer_start",
        "omv_rpc_poll",
        "omv_rpc_complete",
        "omv_rpc_abort",
        "omv_rpc_stats",
        "omv_rpc_stats_reset",
        "omv_rpc_last_error",
        "omv_rpc_crc16",
        "omv_rpc_name_hash",
        "omv_rpc_frame",
    ];
    let elf = dir.join("engine.elf");
    let mut cmd = Command::new("arm-none-eabi-gcc");
    cmd.args([
        "-mcpu=cortex-m7",
        "-mthumb",
        "-mfloat-abi=hard",
        "-mfpu=fpv5-d16",
        "-nostdlib",
        "-Wl,--gc-sections",
    ])
    .arg("-Wl,--entry=omv_rpc_poll");
    for s in symbols {
        cmd.arg(format!("-Wl,--undefined={s}"));
    }
    cmd.arg(lib).arg("-lgcc").arg("-o").arg(&elf);
    let out = cmd.output().unwrap();
    if !out.status.success() {
        println!(
            "  linked: failed: {}",
            String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("")
        );
        return;
    }
    let size = Command::new("arm-none-eabi-size").arg(&elf).output().unwrap();
    let text = String::from_utf8_lossy(&size.stdout);
    if let Some(line) = text.lines().nth(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        println!(
            "  linked, all 15 C ABI entry points, --gc-sections: text+rodata {} B  data {} B  bss {} B",
            f[0], f[1], f[2]
        );
    }
    println!(
        "  engine state: {} B in the caller's omv_rpc_engine_t (no static RAM)",
        std::mem::size_of::<Engine<omv_rpc::ffi::RawBuf>>()
    );
    println!("  QEMU hook: omv_rpc_bench_crc(buf, len, rounds) -> crc (C ABI) for instructions per CRC byte on the Cortex-M7");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--calls") {
        let calls: u32 = args[i + 1].parse().unwrap();
        let size: usize = args[i + 2].parse().unwrap();
        let mut pair = Pair::new(size);
        for _ in 0..calls {
            pair.call();
        }
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--crc") {
        let which: usize = args[i + 1].parse().unwrap();
        let rounds: u32 = args[i + 2].parse().unwrap();
        let data = crc_data();
        for _ in 0..rounds {
            black_box(CRCS[which].1(black_box(&data)));
        }
        return;
    }
    crc_throughput();
    if args.iter().any(|a| a == "--crc-only") {
        return;
    }
    engine_overhead();
    arm_size();
}
