"""Each native architecture's rpc.mpy and mutex.mpy (make natmod-ARCH) copied onto the
stock-like firmware of an emulated board of that architecture (ports/qemu BOARD=), imported,
and serving calls over UART3 to host peers: the independent pure-Python reference
(bench/ref_rpc.py) and the host package (host/). boards.py says which board proves which
architecture and why armv6m has only the closest target.
"""
import glob
import os
import time
import re
import struct
import subprocess

import pytest

import peer
from boards import ARCH_NUMBER, ARCH_RUNS, BOARDS, BUILD, MODULES, read_module
from vcam import CamError, CamTimeout, VirtualCam

HERE = os.path.dirname(os.path.abspath(__file__))
SLAVE_SCRIPT = open(os.path.join(HERE, "..", "qemu", "cam", "slave_cam.py")).read()
PATTERN = bytes(i * 7 & 0xFF for i in range(65536))
REF = peer.load_ref_rpc()

_cams = {}


def booted(board):
    """One QEMU per board for the whole session."""
    if board not in _cams:
        machine, firmware, _ = BOARDS[board]
        if not os.path.exists(firmware):
            pytest.fail("no %s: run `make arch-firmware qemu-natmod` first" % firmware)
        _cams[board] = VirtualCam(firmware=firmware, machine=machine).start()
    return _cams[board]


@pytest.fixture(scope="session", autouse=True)
def close_cams():
    yield
    for cam in _cams.values():
        cam.close()


def load(board, arch):
    """The board soft-reset, its file store holding `arch`'s modules only."""
    cam = booted(board)
    cam.soft_reset()
    cam.exec("import qemu\nfor n in list(qemu.ramfiles()): qemu.ramfile(n, None)")
    for name in MODULES:
        cam.put_file(name, read_module(arch, name))
    cam.soft_reset()
    return cam


@pytest.mark.parametrize("arch", sorted({a for a, _, _ in ARCH_RUNS}))
def test_header_names_the_architecture(arch):
    for name in MODULES:
        data = read_module(arch, name)
        assert data[:2] == b"M\x06", name          # mpy version 6
        assert data[2] >> 2 == ARCH_NUMBER[arch], name


def thumb2_instructions(objects):
    """The 32-bit Thumb instructions (mnemonics) in these objects' code."""
    found = set()
    for obj in objects:
        out = subprocess.run(["arm-none-eabi-objdump", "-d", obj], check=True, capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            m = re.match(r"\s*[0-9a-f]+:\t([0-9a-f]{4}) ([0-9a-f]{4})\s*\t(\S+)", line)
            if m:
                found.add(m.group(3))
    return found


def natmod_objects(arch):
    objs = glob.glob(os.path.join(BUILD, "natmod-" + arch, "**", "*.o"), recursive=True)
    objs.append(os.path.join(BUILD, "cargo-" + arch, "omv_rpc_engine.o"))
    assert len(objs) >= 10, objs
    return objs


def test_armv6m_objects_use_armv6m_instructions_only():
    # No QEMU Cortex-M0 board runs the armv6m module, so its code is checked instead: the
    # only 32-bit Thumb instructions ARMv6-M has are BL, MRS, MSR, DMB, DSB and ISB (no
    # divide, no IT blocks, no wide loads and stores, no LDREX/STREX).
    allowed = {"bl", "mrs", "msr", "dmb", "dsb", "isb"}
    assert thumb2_instructions(natmod_objects("armv6m")) <= allowed
    # The check finds Thumb-2 where there is some: the armv7m build has divides and wide ops.
    assert {"udiv", "ldr.w"} <= thumb2_instructions(natmod_objects("armv7m"))


def test_loader_refuses_a_higher_architecture():
    # The Cortex-M0 firmware takes armv6m only; the Cortex-M3 one armv6m and armv7m, not code
    # built for an FPU; the single-precision M4F not double-precision code.
    for board, arch in (("an385-m0", "armv7m"), ("an385", "armv7emsp"), ("an386", "armv7emdp")):
        cam = booted(board)
        cam.soft_reset()
        cam.put_file("mutex.mpy", read_module(arch, "mutex.mpy"))
        with pytest.raises(CamError, match="incompatible .mpy arch"):
            cam.exec("import mutex", timeout=10)
        cam.exec("__import__('qemu').ramfile('mutex.mpy', None)")


def call(host, name, data=b"", attempts=5, **timeouts):
    timeouts.setdefault("send_timeout", 3000)
    timeouts.setdefault("recv_timeout", 5000)
    for _ in range(attempts):
        result = host.call(name, data, **timeouts)
        if result is not None:
            return bytes(result)
    return None


@pytest.mark.parametrize("arch,board,how", ARCH_RUNS, ids=["%s-%s" % (a, b) for a, b, _ in ARCH_RUNS])
def test_load_and_call(arch, board, how):
    cam = load(board, arch)
    out = cam.exec("import sys, rpc, mutex\n"
                   "m = mutex.Mutex()\n"
                   "print(sys.platform, rpc.__file__, mutex.__file__, rpc.crc16(b'123456789'),"
                   " rpc.name_hash('echo'), m.test(), m.test())")
    assert out.split() == [BOARDS[board][0], "rpc.mpy", "mutex.mpy", str(0x29B1),
                           str(REF.name_hash("echo")), "True", "False"]
    for kind in peer.PEERS:
        host = peer.master(cam.uart3_path, kind)
        try:
            cam.exec_start(SLAVE_SCRIPT)
            cam.wait_for_output("READY")
            # QEMU notices a newly opened pty on its next poll: the first call may take a few tries.
            assert call(host, "echo", b"link up", attempts=10) == b"link up"
            # Host-to-cam bytes are slow here; the reference peer's 3 ms waits keep its arguments short.
            sizes = (0, 200) if kind == "ref" else (0, 1024, 4000)
            for size in sizes:
                data = os.urandom(size)
                assert call(host, "echo", data) == data, (kind, size)
            for n in (0, 1024, 16384):
                assert call(host, "pattern", struct.pack("<I", n)) == PATTERN[:n], (kind, n)
            assert call(host, "no_such_callback", b"abc") == b""
            # The module's own counters saw the calls (link up, echoes, patterns at least).
            served = struct.unpack("<5I", call(host, "counters"))[3]
            assert served >= 1 + len(sizes) + 3
        finally:
            try:
                cam.interrupt()
            finally:
                host.close()


def test_m0_board_traps_unaligned_accesses():
    # BOARD=an385-m0 stands in for an M0 only if an unaligned load faults there as on an M0 (on
    # the M3 it just works): one from inline assembler ends QEMU through the fault handler.
    # Its own QEMU, after the other tests (the board does not survive it).
    machine, firmware, _ = BOARDS["an385-m0"]
    cam = VirtualCam(firmware=firmware, machine=machine).start()
    try:
        cam.exec("import micropython\n"
                 "@micropython.asm_thumb\n"
                 "def load(r0):\n"
                 "    ldr(r0, [r0, 0])\n"
                 "b = bytearray(16)\n"
                 "print(load(id(b)) != 0)\n")
        cam.exec_start("load(id(b) + 1)\n")
        # Read while QEMU runs: once it has exited, Linux may drop what was still in the pty.
        deadline = time.monotonic() + 20
        try:
            while b"FATAL: HardFault" not in cam.repl.buf and time.monotonic() < deadline:
                cam.repl._fill(1.0)
        except CamTimeout:                # the pty closed with QEMU
            pass
        assert cam.proc.wait(20) == 3     # fault_stop(): semihosting exit 3, only from the handler
        # The handler's message, when the pty still held it as QEMU went (it does not always).
        out = bytes(cam.repl.buf)
        assert b"FATAL:" not in out or b"FATAL: HardFault" in out, out
    finally:
        cam.kill()
