"""make qemu-bench: what our rpc costs on the Cortex-M7 of the virtual cam, instruction by
instruction, against the pure-Python reference (bench/ref_rpc.py) on the same image.

QEMU runs with -icount shift=0: every instruction takes 1 ns of emulated time, so
qemu.busy_ns() (emulated time minus the time spent waiting for an interrupt) counts the
instructions the cam ran, interrupt handlers included. The cam waits by polling
(qemu.idle_spin(True)) rather than in WFI, after which QEMU would add the real time slept
at a moment of its choosing. Prints:
  - instructions per CRC byte (the engine's omv_rpc_bench_crc hook; the reference's crc);
  - instructions per call on the cam as slave for 0 B, 1 KiB and 64 KiB each way;
  - the image's size and the module's share of flash and RAM (from the linker map);
  - rpc.mpy on the stock-firmware image (build/qemu-natmod): the copy over the raw REPL,
    the import (instructions, GC heap) and the same calls, against the linked-in module.
"""

import os
import re
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peer  # noqa: E402
from vcam import FIRMWARE, NATMOD_FIRMWARE, REPO_DIR, VirtualCam  # noqa: E402

MAP_FILE = os.path.join(os.path.dirname(FIRMWARE), "firmware.map")
CRC_BUF = 65536

# Cam side of the call benchmark, appended to a script that defined `interface` (ours or
# the reference's) on UART3. bench_mark/bench_report bracket one call with busy_ns().
CALL_BENCH_CAM = r"""
import gc, qemu, struct, time
qemu.idle_spin(True)
_mark = [0]
PATTERN = bytes(i * 7 & 0xFF for i in range(65536))
def bench_mark(data):
    _mark[0] = qemu.busy_ns()
    return bytes()
def bench_report(data):
    return struct.pack('<I', time.ticks_diff(qemu.busy_ns(), _mark[0]))
def echo(data):
    return bytes(data)
def pattern(data):
    return memoryview(PATTERN)[:struct.unpack('<I', data)[0]]
for _cb in (bench_mark, bench_report, echo, pattern):
    interface.register_callback(_cb)
gc.collect()
print('READY')
interface.loop()
"""

OUR_SLAVE = "import rpc\ninterface = rpc.rpc_uart_slave(baudrate=115200)\n"
REF_SLAVE = "\ninterface = rpc_uart_slave(baudrate=115200)\n"

# (label, callback, argument, expected result length, calls measured)
CALL_CASES = [
    ("0 B", "echo", b"", 0, 15),
    ("1 KiB each way", "echo", bytes(i * 13 & 0xFF for i in range(1024)), 1024, 8),
    ("64 KiB result", "pattern", struct.pack("<I", 65536), 65536, 3),
]


def section(title):
    print("\n== %s" % title)


def crc_bench(cam):
    section("CRC-16/CCITT-FALSE on the cam (instructions per byte)")
    out = cam.exec(r"""
import qemu, time
buf = bytes(range(256)) * (%d // 256)
def busy(f, *a):
    b0 = qemu.busy_ns(); r = f(*a); return time.ticks_diff(qemu.busy_ns(), b0), r
base, _ = busy(qemu.bench_crc, buf, 0)
spent, crc = busy(qemu.bench_crc, buf, 8)
print((spent - base) / (8 * len(buf)), hex(crc), hex(qemu.bench_crc(b'123456789', 1)))
""" % CRC_BUF)
    per_byte, crc, check = out.split()
    print("  engine (omv_rpc_bench_crc, 8 x 64 KiB): %.2f instructions/byte  (check 0x29b1: %s)"
          % (float(per_byte), check))
    return float(per_byte)


def ref_crc_bench(cam, ref_source):
    out = cam.exec(ref_source + r"""
import qemu, time
buf = bytes(range(256)) * 4
b0 = qemu.busy_ns(); c = ref_crc16(buf); spent = time.ticks_diff(qemu.busy_ns(), b0)
print(spent / len(buf), hex(ref_crc16(b'123456789')))
""")
    per_byte, check = out.split()
    print("  reference (pure Python, 1 KiB):          %.2f instructions/byte  (check 0x29b1: %s)"
          % (float(per_byte), check))
    return float(per_byte)


def call_bench(cam, slave_source, label):
    """Instructions the cam (slave) runs per call, for each case: the minimum and the median
    over several calls (they differ by the retries a call needed, if any)."""
    host = peer.master(cam.uart3_path, "host")
    cam.exec_start(slave_source + CALL_BENCH_CAM)
    cam.wait_for_output("READY")
    results = {}
    failures = []
    try:
        def call(name, data=b"", timeout=20000):
            for _ in range(5):
                r = host.call(name, data, send_timeout=timeout, recv_timeout=timeout)
                if r is not None:
                    return bytes(r)
                failures.append("%s: %s" % (name, getattr(host, "last_error", None)))
            raise RuntimeError("%s: %s did not answer" % (label, name))

        def bracket(name=None, data=b""):
            call("bench_mark")
            result = call(name, data) if name else None
            return struct.unpack("<I", call("bench_report"))[0], result

        overhead = min(bracket()[0] for _ in range(5))
        for case, name, data, result_len, n_calls in CALL_CASES:
            t = time.monotonic()
            spent = []
            for _ in range(n_calls):
                busy, result = bracket(name, data)
                assert len(result) == result_len, (case, len(result))
                spent.append(busy - overhead)
            spent.sort()
            results[case] = spent[0]
            print("  %-10s %-15s %11.0f instructions/call (median %.0f; %d calls, %.1f s)"
                  % (label, case, spent[0], spent[len(spent) // 2], n_calls, time.monotonic() - t))
            for failure in failures:
                print("    (a call failed and was repeated: %s)" % failure)
            del failures[:]
    finally:
        cam.interrupt()
        host.close()
    return results


def image_sizes():
    section("Image size and the rpc module's share (build/qemu/firmware.map)")
    out = subprocess.run(["arm-none-eabi-size", "-A", FIRMWARE], capture_output=True, text=True).stdout
    sizes = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\w+)\s+(\d+)", out, re.M)}
    flash = sizes.get(".text", 0) + sizes.get(".ARM.exidx", 0) + sizes.get(".data", 0)
    ram = sizes.get(".data", 0) + sizes.get(".bss", 0)
    print("  image: %d bytes of flash (code + rodata + data), %d bytes of static RAM (data + bss);"
          " the rest of the 4 MiB RAM is stack (64 KiB) and the GC heap" % (flash, ram))

    text = open(MAP_FILE).read()
    text = text[text.index("Linker script and memory map"):]
    share = {"engine (Rust)": [0, 0], "glue (mp_glue C)": [0, 0], "frozen modules": [0, 0]}
    for m in re.finditer(r"^ (\.\S+)\s*\n?\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)", text, re.M):
        name, size, obj = m.group(1), int(m.group(2), 16), m.group(3)
        if "libomv_rpc.a" in obj:
            key = "engine (Rust)"
        elif "/mp_glue/" in obj:
            key = "glue (mp_glue C)"
        elif obj.endswith("frozen_content.o"):
            key = "frozen modules"
        else:
            continue
        if name.startswith((".text", ".rodata", ".data")):
            share[key][0] += size
        if name.startswith((".data", ".bss")):
            share[key][1] += size
    for key, (f, r) in share.items():
        print("  %-17s %7d bytes flash (%4.1f%%), %6d bytes static RAM"
              % (key, f, 100.0 * f / flash, r))


def heap_share(cam):
    out = cam.exec("import gc\ngc.collect(); a = gc.mem_free()\nimport rpc\n"
                   "gc.collect(); b = gc.mem_free()\ni = rpc.rpc_uart_slave(baudrate=115200)\n"
                   "gc.collect(); c = gc.mem_free()\nprint(a - b, b - c)\n")
    imported, interface = map(int, out.split())
    print("  GC heap: import rpc takes %d bytes, an rpc_uart_slave object %d bytes" % (imported, interface))


def natmod_bench(ours):
    section("rpc.mpy (make natmod-arm) copied onto the stock-firmware image (build/qemu-natmod)")
    natmod_dir = os.path.join(REPO_DIR, "build", "natmod-arm")
    with VirtualCam(firmware=NATMOD_FIRMWARE, icount=True) as cam:
        for name in ("rpc.mpy", "mutex.mpy"):
            with open(os.path.join(natmod_dir, name), "rb") as f:
                data = f.read()
            t = time.monotonic()
            cam.put_file(name, data)
            print("  copy %-9s %6d bytes over the raw REPL (hex chunks): %.1f s"
                  % (name, len(data), time.monotonic() - t))
        out = cam.exec("import gc, qemu, time\ngc.collect(); a = gc.mem_free(); b0 = qemu.busy_ns()\n"
                       "import rpc\nspent = time.ticks_diff(qemu.busy_ns(), b0)\n"
                       "gc.collect(); b = gc.mem_free()\nprint(spent, a - b)\n")
        spent, heap = map(int, out.split())
        print("  import rpc: %d instructions, %d bytes of GC heap (machine code, data, shim)"
              % (spent, heap))
        cam.soft_reset()
        mpy = call_bench(cam, OUR_SLAVE, "rpc.mpy")
    for case, *_ in CALL_CASES:
        print("  %-15s rpc.mpy / linked-in = %.2fx" % (case, mpy[case] / ours[case]))


def main():
    if not os.path.exists(peer.REF_RPC_PATH):
        print("bench/ref_rpc.py is missing: the reference baseline cannot run")
        return 1
    ref_source = open(peer.REF_RPC_PATH).read()
    print("virtual cam benchmark: qemu-system-arm -M mps2-an500 -icount shift=0"
          " (1 instruction = 1 ns of emulated time)")
    with VirtualCam(icount=True) as cam:
        engine_crc = crc_bench(cam)
        cam.soft_reset()
        ref_crc = ref_crc_bench(cam, ref_source + "\nref_crc16 = crc16\n")
        print("  reference / engine: %.0fx" % (ref_crc / engine_crc))

        section("Calls, the cam as slave on UART3, the host package as master (instructions on the cam)")
        cam.soft_reset()
        ours = call_bench(cam, OUR_SLAVE, "ours")
        cam.soft_reset()
        ref = call_bench(cam, ref_source + REF_SLAVE, "reference")
        for case, *_ in CALL_CASES:
            print("  %-15s reference / ours = %.1fx" % (case, ref[case] / ours[case]))
        cam.soft_reset()
        image_sizes()
        heap_share(cam)
    natmod_bench(ours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
