"""The emulated boards of the per-architecture checks and the native module each one proves.

QEMU (Debian's 7.2) has a board for Cortex-M3, M4F and M7 with the peripherals the virtual
cam's port drives (the MPS2 FPGA images); its only Cortex-M0 board (microbit: 16 KiB RAM) cannot
hold MicroPython with a 40 KiB module, mps2-an385 refuses `-cpu cortex-m0`, and it has no
Cortex-M55. So armv6m is loaded and called on the Cortex-M3 (whose loader accepts the lower
Thumb architecture, as every Cortex-M firmware does), and its objects are checked for
ARMv6-M instructions only (test_arch.py); armv7emdp, the M55's architecture in MicroPython,
runs on the Cortex-M7 with a double-precision FPU.
"""
import os

REPO_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(REPO_DIR, "build")

# board (ports/qemu BOARD=) -> (QEMU machine, firmware, the architecture its loader takes)
BOARDS = {
    "an385": ("mps2-an385", os.path.join(BUILD, "qemu-natmod-an385", "firmware.elf"), "armv7m"),
    "an386": ("mps2-an386", os.path.join(BUILD, "qemu-natmod-an386", "firmware.elf"), "armv7emsp"),
    "an500": ("mps2-an500", os.path.join(BUILD, "qemu-natmod", "firmware.elf"), "armv7emsp"),
    "an500-dp": ("mps2-an500", os.path.join(BUILD, "qemu-natmod-an500-dp", "firmware.elf"), "armv7emdp"),
}

# (architecture, board it is proven on, how)
ARCH_RUNS = [
    ("armv6m", "an385", "closest emulated target: Cortex-M3 (no QEMU Cortex-M0 board that fits)"),
    ("armv7m", "an385", "Cortex-M3"),
    ("armv7emsp", "an386", "Cortex-M4F"),
    ("armv7emsp", "an500", "Cortex-M7 SP (the virtual cam)"),
    ("armv7emdp", "an500-dp", "Cortex-M7 DP"),
]

# MP_NATIVE_ARCH_* numbers in the .mpy header (byte 2 >> 2).
ARCH_NUMBER = {"x64": 2, "armv6m": 4, "armv7m": 5, "armv7em": 6, "armv7emsp": 7, "armv7emdp": 8}
MODULES = ("rpc.mpy", "mutex.mpy")


def module_path(arch, name):
    return os.path.join(BUILD, "natmod-" + arch, name)


def read_module(arch, name):
    with open(module_path(arch, name), "rb") as f:
        return f.read()
