"""make arch-bench (1 of 2): the size of rpc.mpy and mutex.mpy per architecture, and the
instructions the cam runs per call on each emulated board (QEMU -icount shift=0: one
instruction per emulated ns of busy time; the cam as slave on UART3, the host package as
master; the method and cases of tests/qemu/bench.py, see MODES)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "qemu"))
sys.path.insert(0, HERE)

import bench  # noqa: E402  (tests/qemu/bench.py)
from boards import ARCH_RUNS, BOARDS, MODULES, module_path, read_module  # noqa: E402
from vcam import VirtualCam  # noqa: E402

# The 0 B and 1 KiB cases (the 64 KiB one takes minutes per board here).
bench.CALL_CASES = [case for case in bench.CALL_CASES if case[0] in ("0 B", "1 KiB each way")]
# Two ways to wait, two figures: "polling" as tests/qemu/bench.py (the cam polls instead of
# WFI, so the instructions it runs while waiting for the host count, and they move with the
# machine's load), and "asleep" (WFI, which qemu.busy_ns() leaves out, and waits that do not
# spin first): then a 1 KiB argument costs the cam one receive interrupt and wake-up per byte,
# as QEMU's UART model hands the bytes over one at a time.
POLLING = bench.CALL_BENCH_CAM
ASLEEP = bench.CALL_BENCH_CAM.replace("qemu.idle_spin(True)", "qemu.idle_spin(False)")
assert ASLEEP != POLLING
MODES = [("polling", POLLING, bench.OUR_SLAVE),
         ("asleep", ASLEEP, bench.OUR_SLAVE + "interface.set_timing(spin_us=0)\n")]


def main():
    print("native module sizes (bytes)")
    for arch in ["x64"] + sorted({a for a, _, _ in ARCH_RUNS}):
        path = module_path(arch, "rpc.mpy") if arch != "x64" else os.path.join(
            os.path.dirname(module_path("x64", "")), "..", "unix", "rpc.mpy")
        sizes = []
        for name in MODULES:
            with open(os.path.join(os.path.dirname(path), name), "rb") as f:
                sizes.append(len(f.read()))
        print("  %-10s rpc.mpy %6d   mutex.mpy %5d" % (arch, sizes[0], sizes[1]))
    print("\ninstructions on the cam per call (QEMU -icount shift=0), rpc.mpy as slave")
    for arch, board, how in ARCH_RUNS:
        machine, firmware, _ = BOARDS[board]
        with VirtualCam(firmware=firmware, machine=machine, icount=True) as cam:
            for name in MODULES:
                cam.put_file(name, read_module(arch, name))
            cam.soft_reset()
            print("  %s on %s (%s)" % (arch, machine, how))
            for mode, cam_script, slave in MODES:
                bench.CALL_BENCH_CAM = cam_script
                bench.call_bench(cam, slave, "%s %s" % (arch, mode))


if __name__ == "__main__":
    main()
