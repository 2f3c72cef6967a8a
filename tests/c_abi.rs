//! include/omv_rpc.h matches the Rust ABI.
//!
//! 1. Layout: a C program (built with the `cc` crate's compiler) prints the size, alignment
//!    and every field offset of each struct and the value of every `#define OMV_RPC_*` in the
//!    header; each must equal the Rust side.
//! 2. Linkage: a C program that includes the header and only calls the C ABI is linked against
//!    the release static library (built with no std, as firmware and native modules use it) and
//!    replays the recorded `echo` call as master and as slave.

mod support;

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use omv_rpc::ffi::{omv_rpc_engine_t, omv_rpc_io_t, ENGINE_SIZE};
use omv_rpc::{wire, Config, LastError, Packet, Reason, Stats, Status};
use support::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn work_dir(name: &str) -> PathBuf {
    let dir = root().join("target").join("c-abi-test").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The host C compiler as the `cc` crate finds it (CC, or cc/gcc/clang).
fn c_compiler() -> Command {
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let tool = cc::Build::new()
        .target(&triple)
        .host(&triple)
        .opt_level(1)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .get_compiler();
    let mut cmd = tool.to_command();
    cmd.arg("-std=c11").arg("-Wall").arg("-Werror").arg("-I").arg(root().join("include"));
    cmd
}

fn build_and_run(dir: &Path, source: &str, extra: &[&Path]) -> String {
    let c = dir.join("main.c");
    let exe = dir.join("main");
    std::fs::write(&c, source).unwrap();
    let out =
        c_compiler().arg(&c).args(extra).arg("-o").arg(&exe).output().expect("run the C compiler");
    assert!(out.status.success(), "C build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let mut child =
        Command::new(&exe).stdout(std::process::Stdio::piped()).spawn().expect("run the C program");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the C program did not finish in 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let run = child.wait_with_output().unwrap();
    assert!(run.status.success(), "C program failed: {}", String::from_utf8_lossy(&run.stderr));
    String::from_utf8(run.stdout).unwrap()
}

fn header_defines() -> Vec<String> {
    let header = std::fs::read_to_string(root().join("include/omv_rpc.h")).unwrap();
    header
        .lines()
        .filter_map(|l| l.trim().strip_prefix("#define "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        // Function-like macros (the X-macros, OMV_RPC_PACKET_MAGIC) have tests of their own.
        .filter(|n| n != "OMV_RPC_H" && !n.contains('('))
        .collect()
}

macro_rules! layout {
    ($m:ident, $c:literal, $t:ty, [$($f:ident),*]) => {{
        $m.insert(format!("sizeof({})", $c), size_of::<$t>() as i64);
        $m.insert(format!("alignof({})", $c), align_of::<$t>() as i64);
        $(
            $m.insert(format!("offsetof({}, {})", $c, stringify!($f)), offset_of!($t, $f) as i64);
        )*
    }};
}

fn rust_side() -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    layout!(m, "omv_rpc_engine_t", omv_rpc_engine_t, [opaque]);
    layout!(
        m,
        "omv_rpc_io_t",
        omv_rpc_io_t,
        [
            action,
            packet,
            timeout_ms,
            len,
            data,
            name_hash,
            status,
            start_timeout_ms,
            deadline_ms,
            start_deadline_ms,
            prefix,
            prefix_len,
            packet_len,
            gap_ms
        ]
    );
    layout!(
        m,
        "omv_rpc_config_t",
        Config,
        [
            short_timeout_ms,
            long_timeout_ms,
            max_argument_len,
            max_result_len,
            max_frame_len,
            max_queue_depth,
            stream_timeout_ms,
            pipeline,
            bytes_per_s,
            error_pause_ms,
            split_reads
        ]
    );
    layout!(
        m,
        "omv_rpc_stats_t",
        Stats,
        [
            packets_sent,
            packets_received,
            bad_magic,
            bad_crc,
            too_long,
            timeouts,
            transport_errors,
            retries,
            calls_ok,
            calls_failed,
            send_phase_timeouts,
            recv_phase_timeouts,
            commands_served,
            stream_frames,
            late_requests,
            repeats_answered,
            new_commands,
            stray_replies
        ]
    );
    layout!(m, "omv_rpc_error_t", LastError, [status, packet, reason, attempts]);
    let mut c = |name: &str, v: i64| {
        m.insert(name.to_string(), v);
    };
    c("OMV_RPC_MAGIC_COMMAND_HEADER", wire::MAGIC_COMMAND_HEADER.into());
    c("OMV_RPC_MAGIC_COMMAND_DATA", wire::MAGIC_COMMAND_DATA.into());
    c("OMV_RPC_MAGIC_RESULT_HEADER", wire::MAGIC_RESULT_HEADER.into());
    c("OMV_RPC_MAGIC_RESULT_DATA", wire::MAGIC_RESULT_DATA.into());
    c("OMV_RPC_MAGIC_STREAM_SETUP", wire::MAGIC_STREAM_SETUP.into());
    c("OMV_RPC_MAGIC_STREAM_HEADER", wire::MAGIC_STREAM_HEADER.into());
    c("OMV_RPC_PACKET_OVERHEAD", wire::PACKET_OVERHEAD as i64);
    c("OMV_RPC_PAYLOAD_OFFSET", wire::PAYLOAD_OFFSET as i64);
    use omv_rpc::defaults;
    c("OMV_RPC_DEFAULT_MASTER_SHORT_TIMEOUT_MS", defaults::MASTER_SHORT_TIMEOUT_MS.into());
    c("OMV_RPC_DEFAULT_SLAVE_SHORT_TIMEOUT_MS", defaults::SLAVE_SHORT_TIMEOUT_MS.into());
    c("OMV_RPC_DEFAULT_LONG_TIMEOUT_MS", defaults::LONG_TIMEOUT_MS.into());
    c("OMV_RPC_DEFAULT_MAX_DATA_LEN", defaults::MAX_DATA_LEN.into());
    c("OMV_RPC_DEFAULT_MAX_QUEUE_DEPTH", defaults::MAX_QUEUE_DEPTH.into());
    c("OMV_RPC_DEFAULT_STREAM_TIMEOUT_MS", defaults::STREAM_TIMEOUT_MS.into());
    c("OMV_RPC_DEFAULT_DATA_GAP_MS", defaults::DATA_GAP_MS.into());
    c("OMV_RPC_BUS_SHORT_TIMEOUT_SCALE", defaults::BUS_SHORT_TIMEOUT_SCALE.into());
    c("OMV_RPC_ENGINE_SIZE", ENGINE_SIZE as i64);
    use omv_rpc::Io;
    for (name, io) in [
        ("DONE", Io::Done(Status::Ok)),
        ("FLUSH", Io::Flush),
        ("SEND", Io::Send { packet: Packet::None, timeout_ms: 0, deadline_ms: 0, data: &[] }),
        (
            "RECV",
            Io::Recv {
                packet: Packet::None,
                timeout_ms: 0,
                deadline_ms: 0,
                len: 0,
                packet_len: 0,
                prefix: &[],
                into: None,
            },
        ),
        ("WAIT", Io::Wait { deadline_ms: 0 }),
        ("DISPATCH", Io::Dispatch { name_hash: 0, argument: &[] }),
        ("DELIVER", Io::Deliver { frame: &[] }),
        ("PRODUCE", Io::Produce),
    ] {
        c(&format!("OMV_RPC_ACTION_{name}"), io.action().into());
    }
    for (name, p) in [
        ("NONE", Packet::None),
        ("COMMAND_HEADER", Packet::CommandHeader),
        ("COMMAND_DATA", Packet::CommandData),
        ("RESULT_HEADER", Packet::ResultHeader),
        ("RESULT_DATA", Packet::ResultData),
        ("STREAM_SETUP", Packet::StreamSetup),
        ("STREAM_HEADER", Packet::StreamHeader),
        ("STREAM_FRAME", Packet::StreamFrame),
        ("STREAM_ACK", Packet::StreamAck),
    ] {
        c(&format!("OMV_RPC_PACKET_{name}"), p as i64);
    }
    // complete(io_status): the numbers ffi::omv_rpc_complete maps (0 OK, 1 TIMEOUT, else ERROR).
    c("OMV_RPC_IO_OK", 0);
    c("OMV_RPC_IO_TIMEOUT", 1);
    c("OMV_RPC_IO_ERROR", 2);
    for (name, s) in [
        ("OK", Status::Ok),
        ("SEND_TIMEOUT", Status::SendTimeout),
        ("RECV_TIMEOUT", Status::RecvTimeout),
        ("NO_COMMAND", Status::NoCommand),
        ("RESULT_NOT_TAKEN", Status::ResultNotTaken),
        ("STREAM_TIMEOUT", Status::StreamTimeout),
        ("STREAM_BAD_PACKET", Status::StreamBadPacket),
        ("STREAM_BAD_ACK", Status::StreamBadAck),
        ("STREAM_TOO_LONG", Status::StreamTooLong),
        ("STREAM_STOPPED", Status::StreamStopped),
        ("TRANSPORT_ERROR", Status::TransportError),
        ("BUSY", Status::Busy),
        ("BAD_BUFFER", Status::BadBuffer),
    ] {
        c(&format!("OMV_RPC_{name}"), s as i64);
    }
    for (name, r) in [
        ("NONE", Reason::None),
        ("TIMEOUT", Reason::Timeout),
        ("BAD_MAGIC", Reason::BadMagic),
        ("BAD_CRC", Reason::BadCrc),
        ("TOO_LONG", Reason::TooLong),
        ("TRANSPORT", Reason::Transport),
    ] {
        c(&format!("OMV_RPC_REASON_{name}"), r as i64);
    }
    c("OMV_RPC_PIPELINE_RESULT_DATA_REQUEST", omv_rpc::pipeline::RESULT_DATA_REQUEST.into());
    c("OMV_RPC_PIPELINE_COMMAND_DATA", omv_rpc::pipeline::COMMAND_DATA.into());
    c("OMV_RPC_ROLE_MASTER", 0);
    c("OMV_RPC_ROLE_SLAVE", 1);
    m
}

#[test]
fn header_layout_and_constants_match_rust() {
    let rust = rust_side();
    let mut src = String::from("#include <stdio.h>\n#include <stddef.h>\n#include \"omv_rpc.h\"\n");
    src += "#define P(name, x) printf(\"%s %lld\\n\", name, (long long)(x));\nint main(void) {\n";
    for key in rust.keys().filter(|k| k.contains('(')) {
        let expr = key.replace("alignof(", "_Alignof(");
        src += &format!("P(\"{key}\", {expr})\n");
    }
    let defines = header_defines();
    assert!(defines.len() >= 45, "found the header's constants: {}", defines.len());
    for d in &defines {
        src += &format!("P(\"{d}\", {d})\n");
    }
    src += "return 0;\n}\n";
    let out = build_and_run(&work_dir("layout"), &src, &[]);
    let c: BTreeMap<String, i64> = out
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect();
    for (k, v) in &c {
        assert_eq!(rust.get(k), Some(v), "{k}: C says {v}, Rust says {:?}", rust.get(k));
    }
    for k in rust.keys() {
        assert!(c.contains_key(k), "{k} is not in the header");
    }
}

/// Builds the release static library (no std, panic=abort, LTO) into its own target dir.
fn release_staticlib() -> PathBuf {
    let target_dir = root().join("target").join("c-abi-test").join("cargo");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root())
        .args(["build", "--release", "--lib", "-j2", "--target-dir"])
        .arg(&target_dir)
        .status()
        .expect("run cargo");
    assert!(status.success());
    target_dir.join("release").join("libomv_rpc.a")
}

fn c_bytes(name: &str, bytes: &[u8]) -> String {
    let body: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
    format!(
        "static const uint8_t {name}[] = {{{}0}};\nstatic const size_t {name}_len = {};\n",
        body.join(",") + if bytes.is_empty() { "" } else { "," },
        bytes.len()
    )
}

const SMOKE: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every RECV's packet and start_timeout_ms, as "packet:ms " (the last run's). */
static char starts[512];

/* Drives e against recorded peer bytes; the DISPATCH callback echoes its argument. */
static int run(omv_rpc_engine_t *e, const uint8_t *in, size_t in_len, const char *label) {
    size_t at = 0;
    uint32_t now = 0;
    static uint8_t caller[8192], result[8192];
    printf("%s ", label);
    starts[0] = 0;
    for (;;) {
        omv_rpc_io_t io;
        omv_rpc_poll(e, now, &io);
        switch (io.action) {
        case OMV_RPC_ACTION_DONE:
            printf("\n%s_status %u\n", label, (unsigned)io.status);
            return (int)io.status;
        case OMV_RPC_ACTION_FLUSH:
            omv_rpc_complete(e, now, OMV_RPC_IO_OK, NULL, 0);
            break;
        case OMV_RPC_ACTION_SEND:
            for (uint32_t i = 0; i < io.len; i++) printf("%02x", io.data[i]);
            omv_rpc_complete(e, now, OMV_RPC_IO_OK, NULL, 0);
            break;
        case OMV_RPC_ACTION_RECV:
            if (strlen(starts) + 24 < sizeof(starts))
                sprintf(starts + strlen(starts), "%u:%u ", (unsigned)io.packet, (unsigned)io.start_timeout_ms);
            if (at + io.len > in_len) { now += io.timeout_ms; omv_rpc_complete(e, now, OMV_RPC_IO_TIMEOUT, NULL, 0); break; }
            if (io.data) {
                memcpy(io.data, in + at, io.len);
                omv_rpc_complete(e, now, OMV_RPC_IO_OK, NULL, 0);
            } else {
                memcpy(caller, in + at, io.len);
                omv_rpc_complete(e, now, OMV_RPC_IO_OK, caller, io.len);
            }
            at += io.len;
            break;
        case OMV_RPC_ACTION_DISPATCH:
            memcpy(result + 2, io.data, io.len);
            omv_rpc_complete(e, now, OMV_RPC_IO_OK, result, io.len + OMV_RPC_PACKET_OVERHEAD);
            break;
        default:
            return 100;
        }
    }
}

int main(void) {
    omv_rpc_engine_t master, slave;
    omv_rpc_init(&master, OMV_RPC_ROLE_MASTER, NULL);
    omv_rpc_init(&slave, OMV_RPC_ROLE_SLAVE, NULL);
    printf("crc %u\n", (unsigned)omv_rpc_crc16((const uint8_t *)"123456789", 9));
    printf("bench_crc %u\n", (unsigned)omv_rpc_bench_crc((const uint8_t *)"123456789", 9, 3));
    uint32_t hash = omv_rpc_name_hash((const uint8_t *)"echo", 4);
    printf("hash %u\n", (unsigned)hash);

    uint8_t *packet = malloc(argument_len + OMV_RPC_PACKET_OVERHEAD);
    memcpy(packet + 2, argument, argument_len);
    if (omv_rpc_call_start(&master, hash, packet, argument_len + 4, 1000, 1000, 0) != OMV_RPC_OK) return 1;
    if (omv_rpc_call_start(&master, hash, packet, argument_len + 4, 1000, 1000, 0) != OMV_RPC_BUSY) return 2;
    run(&master, slave_to_master, slave_to_master_len, "master");
    printf("master_starts %s\n", starts);
    printf("result_len %u\n", (unsigned)omv_rpc_result_len(&master));
    omv_rpc_stats_t stats;
    omv_rpc_stats(&master, &stats);
    printf("calls_ok %u\n", (unsigned)stats.calls_ok);

    if (omv_rpc_serve_start(&slave, 1000, 1000, 0) != OMV_RPC_OK) return 3;
    run(&slave, master_to_slave, master_to_slave_len, "slave");
    printf("slave_starts %s\n", starts);

    /* A turn with nothing to read ends NO_COMMAND and says why. */
    omv_rpc_serve_start(&slave, 5, 5, 0);
    run(&slave, NULL, 0, "idle");
    omv_rpc_error_t err;
    omv_rpc_last_error(&slave, &err);
    printf("idle_error %u %u %u\n", (unsigned)err.status, (unsigned)err.packet, (unsigned)err.reason);
    uint8_t short_packet[3];
    printf("bad_buffer %u\n", (unsigned)omv_rpc_call_start(&master, hash, short_packet, 3, 10, 10, 0));
    free(packet);
    return 0;
}
"#;

#[test]
fn a_c_program_links_the_static_library_and_replays_echo() {
    let lib = release_staticlib();
    let v = vectors();
    let echo = v.get("calls").arr().iter().find(|c| c.get("name").str() == "echo").unwrap();
    let mut src =
        String::from("#include <stdint.h>\n#include <stddef.h>\n#include \"omv_rpc.h\"\n");
    src += &c_bytes("argument", &echo.get("arg_hex").hex());
    src += &c_bytes("slave_to_master", &echo.get("slave_to_master_hex").hex());
    src += &c_bytes("master_to_slave", &echo.get("master_to_slave_hex").hex());
    src += SMOKE;
    let out = build_and_run(&work_dir("smoke"), &src, &[&lib]);
    let lines: BTreeMap<&str, &str> = out.lines().filter_map(|l| l.split_once(' ')).collect();
    assert_eq!(lines["crc"], "10673");
    assert_eq!(lines["bench_crc"], "10673");
    assert_eq!(lines["hash"], omv_rpc::name_hash(b"echo").to_string());
    assert_eq!(lines["master"], echo.get("master_to_slave_hex").str());
    assert_eq!(lines["master_status"], "0");
    assert_eq!(lines["result_len"], (echo.get("result_hex").str().len() / 2).to_string());
    assert_eq!(lines["calls_ok"], "1");
    // Only the master's RESULT_DATA receive has a first-byte limit: two of its 3 ms short
    // timeouts (a slave that missed the request is asked again soon, while it still waits).
    let (cmd, res) = (Packet::CommandHeader as u32, Packet::ResultHeader as u32);
    let (cmd_data, res_data) = (Packet::CommandData as u32, Packet::ResultData as u32);
    assert_eq!(lines["master_starts"].trim(), format!("{cmd}:0 {cmd_data}:0 {res}:0 {res_data}:6"));
    assert_eq!(lines["slave_starts"].trim(), format!("{cmd}:0 {cmd_data}:0 {res}:0 {res_data}:0"));
    assert_eq!(lines["slave"], echo.get("slave_to_master_hex").str());
    assert_eq!(lines["slave_status"], "0");
    assert_eq!(lines["idle_status"], (Status::NoCommand as u32).to_string());
    assert_eq!(
        lines["idle_error"],
        format!(
            "{} {} {}",
            Status::NoCommand as u32,
            Packet::CommandHeader as u32,
            Reason::Timeout as u32
        )
    );
    assert_eq!(lines["bad_buffer"], (Status::BadBuffer as u32).to_string());
}

/// Builds the no-std release library for `target` (None: the host) and returns the undefined
/// symbols of the crate's own object: what a native module or firmware must provide.
fn undefined_symbols_of_the_crate_object(target: Option<&str>) -> Vec<String> {
    let target_dir = root().join("target").join("c-abi-test").join("cargo");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root())
        .args(["build", "--release", "--lib", "-j2", "--target-dir"])
        .arg(&target_dir);
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    assert!(cmd.status().expect("run cargo").success());
    let lib = match target {
        Some(t) => target_dir.join(t).join("release/libomv_rpc.a"),
        None => target_dir.join("release/libomv_rpc.a"),
    };
    let dir = work_dir(target.unwrap_or("host"));
    let members = Command::new("ar").arg("t").arg(&lib).output().unwrap();
    let members = String::from_utf8(members.stdout).unwrap();
    let own: Vec<&str> = members.lines().filter(|m| m.starts_with("omv_rpc-")).collect();
    assert_eq!(own.len(), 1, "one LTO object for the crate");
    assert!(Command::new("ar")
        .arg("x")
        .arg(&lib)
        .arg(own[0])
        .current_dir(&dir)
        .status()
        .unwrap()
        .success());
    let symbols =
        Command::new("readelf").arg("-sW").arg(dir.join(own[0])).output().expect("readelf");
    let symbols = String::from_utf8(symbols.stdout).unwrap();
    symbols
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 8 && f[6] == "UND").then(|| f[7].to_string())
        })
        .collect()
}

/// No panic path is left in the static library's object (every wire length is checked with
/// get(), chunks and checked arithmetic, so the optimiser removes all bounds-check panics): it
/// needs nothing from outside but the memory builtins. The C glue links this object alone.
#[test]
fn the_crate_object_has_no_panic_paths() {
    let arm = undefined_symbols_of_the_crate_object(Some("thumbv7em-none-eabihf"));
    assert!(
        arm.iter().all(|s| s.starts_with("__aeabi_mem")),
        "thumbv7em undefined symbols: {arm:?}"
    );
    let host = undefined_symbols_of_the_crate_object(None);
    assert!(
        host.iter()
            .all(|s| ["memcpy", "memmove", "memset", "memcmp", "bcmp"].contains(&s.as_str())),
        "host undefined symbols: {host:?}"
    );
}

/// The stats field list lives once in the crate (`Stats::FIELDS`, what every door's `stats()`
/// returns); the header's `omv_rpc_stats_t` must list the same counters in the same order.
#[test]
fn the_stats_field_list_is_the_headers() {
    let header =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/omv_rpc.h")).unwrap();
    let start = header.find("typedef struct omv_rpc_stats {").unwrap();
    let end = header[start..].find("} omv_rpc_stats_t;").unwrap() + start;
    let names: Vec<&str> = header[start..end]
        .lines()
        .filter_map(|l| l.trim().strip_prefix("uint32_t "))
        .map(|l| l.split(';').next().unwrap().trim())
        .collect();
    assert_eq!(names, Stats::FIELDS);
    assert_eq!(Stats::default().values().len(), names.len());
}

/// The header's X-macros list the crate's names in the crate's order (status, packet, reason:
/// by number; stats: `Stats::FIELDS`), and `OMV_RPC_PACKET_MAGIC` is `Packet::magic`.
#[test]
fn the_header_name_lists_and_magic_map_are_the_crates() {
    let mut src = String::from("#include <stdio.h>\n#include \"omv_rpc.h\"\n");
    src += "#define S(n) printf(\"status %s\\n\", #n);\n";
    src += "#define K(n) printf(\"packet %s\\n\", #n);\n";
    src += "#define R(n) printf(\"reason %s\\n\", #n);\n";
    src += "#define F(n) printf(\"stats %s\\n\", #n);\n";
    src += "int main(void) {\nOMV_RPC_STATUS_NAMES(S)\nOMV_RPC_PACKET_NAMES(K)\n";
    src += "OMV_RPC_REASON_NAMES(R)\nOMV_RPC_STATS_FIELDS(F)\n";
    src += "for (unsigned p = 0; p <= 9; p++) printf(\"magic %u %u\\n\", p, OMV_RPC_PACKET_MAGIC(p));\n";
    src += "return 0;\n}\n";
    let out = build_and_run(&work_dir("names"), &src, &[]);
    let list = |kind: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| l.strip_prefix(kind).and_then(|r| r.strip_prefix(' ')))
            .map(str::to_string)
            .collect()
    };
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(list("status"), statuses);
    for (i, s) in Status::ALL.iter().enumerate() {
        assert_eq!(*s as usize, i, "Status::ALL is in the order of the numbers");
    }
    let packets: Vec<&str> = Packet::ALL.iter().map(|p| p.name()).collect();
    assert_eq!(list("packet"), packets);
    for (i, p) in Packet::ALL.iter().enumerate() {
        assert_eq!(*p as usize, i, "Packet::ALL is in the order of the numbers");
    }
    let reasons: Vec<&str> = Reason::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(list("reason"), reasons);
    for (i, r) in Reason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i, "Reason::ALL is in the order of the numbers");
    }
    assert_eq!(list("stats"), Stats::FIELDS);
    let magics: Vec<String> = (0..=9u32)
        .map(|p| {
            let magic = Packet::ALL.get(p as usize).map_or(0, |k| k.magic());
            format!("{p} {magic}")
        })
        .collect();
    assert_eq!(list("magic"), magics);
    assert_eq!(Packet::CommandHeader.magic(), wire::MAGIC_COMMAND_HEADER);
    assert_eq!(Packet::StreamAck.magic(), 0);
}

/// `omv_rpc_last_error_text` says what `LastError::describe` says, NUL-terminated, and cuts
/// short in a small buffer without writing past it.
#[test]
fn last_error_text_through_the_c_abi() {
    let mut e: Box<omv_rpc_engine_t> = Box::new(unsafe { std::mem::zeroed() });
    unsafe { omv_rpc::ffi::omv_rpc_init(&mut *e, 0, std::ptr::null()) };
    // A call against a silent peer: its first phase runs out after 1 ms.
    let mut packet = [0u8; 4];
    let status = unsafe {
        omv_rpc::ffi::omv_rpc_call_start(&mut *e, 7, packet.as_mut_ptr(), packet.len(), 1, 1, 0)
    };
    assert_eq!(status, 0);
    let mut io: omv_rpc_io_t = unsafe { std::mem::zeroed() };
    let mut now = 0;
    loop {
        unsafe { omv_rpc::ffi::omv_rpc_poll(&mut *e, now, &mut io) };
        if io.action == 0 {
            break;
        }
        now += 5;
        let io_status = if io.action == 2 || io.action == 3 { 1 } else { 0 };
        unsafe { omv_rpc::ffi::omv_rpc_complete(&mut *e, now, io_status, std::ptr::null(), 0) };
    }
    assert_eq!(io.status, Status::SendTimeout as u32);
    let mut buf = [0xAAu8; 96];
    let n = unsafe { omv_rpc::ffi::omv_rpc_last_error_text(&*e, buf.as_mut_ptr(), buf.len()) };
    let text = std::str::from_utf8(&buf[..n]).unwrap();
    assert_eq!(text, "SEND_TIMEOUT: COMMAND_HEADER timeout (1 attempt)");
    assert_eq!(buf[n], 0);
    let mut small = [0xAAu8; 9];
    let n = unsafe { omv_rpc::ffi::omv_rpc_last_error_text(&*e, small.as_mut_ptr(), 8) };
    assert_eq!((n, &small[..8], small[8]), (7, &b"SEND_TI\0"[..], 0xAA));
    let three = LastError {
        status: Status::RecvTimeout,
        packet: Packet::ResultData,
        reason: Reason::BadCrc,
        attempts: 12,
    };
    let mut out = [0u8; 64];
    let n = three.describe(&mut out);
    assert_eq!(&out[..n], b"RECV_TIMEOUT: RESULT_DATA bad_crc (12 attempts)");
}
