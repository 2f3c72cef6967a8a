"""The emulated boards of the per-architecture checks and the native module each one proves.

QEMU (Debian's 7.2) has a board for Cortex-M3, M4F and M7 with the peripherals the virtual
cam's port drives (the MPS2 FPGA images); its only Cortex-M0 board (microbit: 16 KiB RAM) cannot
hold MicroPython with a 40 KiB module, mps2-an385 refuses `-cpu cortex-m0`, and it has no
Cortex-M55. So armv6m runs on the closest target: firmware built for the Cortex-M0 (an armv6m
loader, Thumb-1 code) on QEMU's Cortex-M3 with unaligned accesses trapping as on an M0
(BOARD=an385-m0); what the M3 would still execute and an M0 would not (Thumb-2) is checked
by disassembling the module's objects (test_arch.py). armv7emdp, the
M55's architecture in MicroPython, runs on the Cortex-M7 with a double-precision FPU.
"""
import os

REPO_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(REPO_DIR, "build")

# board (ports/qemu BOARD=) -> (QEMU machine, firmware, the architecture its loader takes)
BOARDS = {
    "an385-m0": ("mps2-an385", os.path.join(BUILD, "qemu-natmod-an385-m0", "firmware.elf"), "armv6m"),
    "an385": ("mps2-an385", os.path.join(BUILD, "qemu-natmod-an385", "firmware.elf"), "armv7m"),
    "an386": ("mps2-an386", os.path.join(BUILD, "qemu-natmod-an386", "firmware.elf"), "armv7emsp"),
    "an500": ("mps2-an500", os.path.join(BUILD, "qemu-natmod", "firmware.elf"), "armv7emsp"),
    "an500-dp": ("mps2-an500", os.path.join(BUILD, "qemu-natmod-an500-dp", "firmware.elf"), "armv7emdp"),
}

# (architecture, board it is proven on, how)
ARCH_RUNS = [
    ("armv6m", "an385-m0", "closest emulated target: Cortex-M0 code and alignment on QEMU's Cortex-M3"),
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
