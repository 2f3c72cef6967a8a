"""The port itself: REPL, time, machine.UART on UART3 through a pty, select, interrupt masking."""
import os
import select
import time

import pytest

from vcam import CamError, VirtualCam, _Pty


def test_builtin_modules_and_platform(cam):
    out = cam.exec("import sys, gc, micropython, struct, time, machine, select, qemu\n"
                   "print(sys.platform, struct.pack('<HI', 0x1209, 7).hex())")
    assert out.split() == ["mps2-an500", "091207000000"]


def test_sleep_and_ticks_agree(cam):
    ms, us = cam.eval("(lambda t0, u0: (time.sleep_ms(200), time.ticks_diff(time.ticks_ms(), t0), "
                      "time.ticks_diff(time.ticks_us(), u0))[1:])(time.ticks_ms(), time.ticks_us())"
                      .replace("time.", "__import__('time')."))
    # Lower bounds are exact; upper bounds leave room for a loaded host (QEMU's clock is the
    # host's, and its threads may wait for a core).
    assert 200 <= ms <= 1000
    assert abs(us - ms * 1000) < 10000


def test_exception_reported(cam):
    with pytest.raises(CamError, match="ZeroDivisionError"):
        cam.exec("1 // 0")


def test_disable_irq_really_masks(cam):
    # With interrupts masked the SysTick handler cannot run, so ticks_ms stands still over as
    # many loop turns as took 20 ms with interrupts on; enabling them delivers the pending tick.
    out = cam.exec("import machine, time\n"
                   "t = time.ticks_ms(); n = 0\n"
                   "while time.ticks_diff(time.ticks_ms(), t) < 20: n += 1\n"
                   "s = machine.disable_irq()\n"
                   "t = time.ticks_ms()\n"
                   "for _ in range(n): time.ticks_ms()\n"
                   "masked = time.ticks_diff(time.ticks_ms(), t)\n"
                   "machine.enable_irq(s)\n"
                   "time.sleep_us(10)\n"
                   "print(n, masked, time.ticks_diff(time.ticks_ms(), t))\n")
    n, masked, after_enable = map(int, out.split())
    assert n > 100
    assert masked == 0
    assert after_enable >= 1


def test_uart_arguments_checked(cam):
    with pytest.raises(CamError, match="ValueError"):
        cam.exec("import machine; machine.UART(0)")
    with pytest.raises(CamError, match="ValueError"):
        cam.exec("import machine; machine.UART(5)")
    with pytest.raises(CamError, match="ValueError"):
        cam.exec("import machine; machine.UART(3, 115200, bits=7)")
    out = cam.exec("import machine; u = machine.UART(3, 115200, timeout=2, timeout_char=3); print(u)")
    assert "UART(3, baudrate=115200" in out and "timeout=2, timeout_char=3" in out


ECHO_SCRIPT = """
import machine, select
u = machine.UART(3, 115200, timeout=1000, timeout_char=100)
p = select.poll()
p.register(u, select.POLLIN)
buf = bytearray(4096)
total = 0
print('READY')
while total < %d:
    if not p.poll(5000):
        raise OSError('nothing to echo')
    n = u.readinto(buf, min(len(buf), u.any()))
    u.write(memoryview(buf)[:n])
    total += n
print('ECHOED', total)
"""


def test_uart3_echo_64k_through_pty(cam):
    size = 65536
    data = os.urandom(size)
    peer = _Pty(cam.uart3_path)
    try:
        peer.drain()
        cam.exec_start(ECHO_SCRIPT % size)
        cam.wait_for_output("READY")
        start = time.monotonic()
        got = bytearray()
        for i in range(0, size, 1024):
            peer.write(data[i:i + 1024])
            while peer._fill(0):
                pass
            got += peer.buf
            peer.buf.clear()
        while len(got) < size:
            if not peer._fill(10.0):
                break
            got += peer.buf
            peer.buf.clear()
        elapsed = time.monotonic() - start
        out = cam.exec_wait()
    finally:
        peer.close()
    assert bytes(got) == data, "echo differs at byte %d" % next(
        (i for i, (a, b) in enumerate(zip(got, data)) if a != b), len(got))
    assert "ECHOED %d" % size in out
    print("UART3 echo: %d bytes in %.2f s (%.0f KiB/s each way)" % (size, elapsed, size / 1024 / elapsed))


def test_select_poll_timeout_and_readiness(cam):
    peer = _Pty(cam.uart3_path)
    try:
        peer.drain()
        cam.exec_start("import machine, select, time\n"
                       "u = machine.UART(3, 115200)\n"
                       "p = select.poll(); p.register(u, select.POLLIN)\n"
                       "t = time.ticks_ms(); r = p.poll(50); dt = time.ticks_diff(time.ticks_ms(), t)\n"
                       "assert r == [] and 50 <= dt < 500, (r, dt)\n"
                       "print('WAITING')\n"
                       "assert list(p.ipoll(0)) == []\n"
                       "r = p.poll(5000)\n"
                       "assert r == [(u, select.POLLIN)], r\n"
                       "time.sleep_ms(20)\n"
                       "it = p.ipoll(0); first = next(it)\n"
                       "assert first == (u, select.POLLIN) and next(it, None) is None, first\n"
                       "print(u.any(), u.read())\n")
        cam.wait_for_output("WAITING")
        peer.write(b"hello")
        out = cam.exec_wait()
    finally:
        peer.close()
    assert out.split() == ["5", "b'hello'"]


def test_read_returns_none_after_timeout(cam):
    out = cam.exec("import machine, time\n"
                   "u = machine.UART(3, 115200, timeout=30)\n"
                   "t = time.ticks_ms(); r = u.read(10); dt = time.ticks_diff(time.ticks_ms(), t)\n"
                   "print(r, dt >= 30 and dt < 500)\n")
    assert out.split() == ["None", "True"]


def test_semihosting_exit_code():
    with VirtualCam() as cam2:
        # QEMU may be gone before the raw REPL's "OK" can be read: just send the script.
        cam2.repl.write(b"import qemu\nqemu.exit(5)\n\x04")
        assert cam2.proc.wait(10) == 5


def test_mutex_module(cam):
    # mutex's lock is taken inside MICROPY_BEGIN_ATOMIC_SECTION, which on this port is
    # qemu_irq_disable(): the same PRIMASK masking that test_disable_irq_really_masks checks.
    out = cam.exec("import mutex\n"
                   "m = mutex.Mutex()\n"
                   "with m:\n"
                   "    inside = m.test()\n"
                   "first = m.test()\n"
                   "second = m.test()\n"
                   "m.release()\n"
                   "try:\n"
                   "    m.release()\n"
                   "    raised = None\n"
                   "except mutex.MutexException as e:\n"
                   "    raised = isinstance(e, OSError)\n"
                   "print(inside, first, second, raised)\n")
    assert out.split() == ["False", "True", "False", "True"]


def test_uart_receive_ring_full_loses_nothing(cam):
    # The cam does not read while 20000 bytes arrive: its 8 KiB ring fills, the receive
    # interrupt stops, and QEMU holds the rest back until reads make room again.
    import threading
    size = 20000
    data = bytes((i * 31 + (i >> 8)) & 0xFF for i in range(size))
    peer = _Pty(cam.uart3_path)
    try:
        peer.drain()
        cam.exec_start("import machine, time\n"
                       "u = machine.UART(3, 115200, timeout=5000, timeout_char=2000)\n"
                       "print('READY')\n"
                       "t = time.ticks_ms()\n"
                       "while u.any() < 8191 and time.ticks_diff(time.ticks_ms(), t) < 20000:\n"
                       "    time.sleep_ms(20)\n"
                       "time.sleep_ms(300)  # bytes arriving now would be lost if nothing held them back\n"
                       "print('BUFFERED', u.any())\n"
                       "b = bytearray(%d)\n"
                       "n = u.readinto(b)\n"
                       "print('GOT', n, sum(b) & 0xFFFFFF, b[8191], b[8192], b[-1])\n" % size)
        cam.wait_for_output("READY")
        writer = threading.Thread(target=peer.write, args=(data,), daemon=True)
        writer.start()
        out = cam.exec_wait(timeout=60)
        writer.join(10)
    finally:
        peer.close()
    buffered = int(out.split("BUFFERED")[1].split()[0])
    got = out.split("GOT")[1].split()
    assert buffered == 8191  # a full ring (one slot is kept free)
    assert [int(x) for x in got] == [size, sum(data) & 0xFFFFFF, data[8191], data[8192], data[-1]]


def test_every_uart_receives_and_transmits():
    # UARTs 1 to 4 each on a pty: a byte in through the receive interrupt, its successor out.
    with VirtualCam(serial=["pty"] * 5) as cam2:
        peers = {n: _Pty(cam2.uart_paths[n]) for n in range(1, 5)}
        try:
            cam2.exec_start("import machine, select\n"
                            "us = [machine.UART(n, 115200, timeout=5000) for n in range(1, 5)]\n"
                            "print('READY')\n"
                            "for u in us:\n"
                            "    c = u.read(1)\n"
                            "    u.write(bytes([c[0] + 1]))\n")
            cam2.wait_for_output("READY")
            for n, p in peers.items():
                p.write(bytes([0x40 + n]))
                assert p.read_until(bytes([0x41 + n]), 10.0) == b""
            cam2.exec_wait()
        finally:
            for p in peers.values():
                p.close()
