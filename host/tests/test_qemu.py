"""The host package against the virtual cam (this project's MicroPython port for QEMU
mps2-an500, rpc linked into its firmware), over its UART3 (a pty), in both roles, and through
the bad-line relay."""

import re
import struct
import sys

import pytest

import rpc
from conftest import CAM_DIR, REPO
from test_serial import LOADED, collect_stream, run_calls, run_stream

sys.path.insert(0, str(REPO / "tests" / "qemu"))
from vcam import FIRMWARE, VirtualCam  # noqa: E402

import expect  # noqa: E402  (tests/cam, on the path through test_serial)

BAUD = 115200


@pytest.fixture(scope="module")
def vcam():
    assert FIRMWARE and __import__("os").path.exists(FIRMWARE), "make qemu first"
    cam = VirtualCam().start()
    yield cam
    cam.close()


def run_on_cam(cam, script, prelude):
    cam.soft_reset()
    cam.exec_start("import rpc\n" + prelude + "\n" + (CAM_DIR / script).read_text())
    cam.wait_for_output("READY", timeout=30)


def warm_up(master):
    """The first bytes the host sends after a script starts on the virtual cam take QEMU
    0.5 s or more (several under load) to deliver: one patient call first, so that the
    figures are about the link and not the emulator's start."""
    for _ in range(3):
        if master.call("echo", b"warm-up", 10000, 10000) is not None:
            return
    raise AssertionError("the virtual cam does not answer: %s" % master.last_error)


@pytest.fixture(autouse=True)
def stop_cam_script(vcam):
    """Whatever a test left running on the cam is stopped (Ctrl-C) before the next one."""
    yield
    try:
        vcam.interrupt()
    except Exception:  # noqa: BLE001 - nothing was running
        pass


def test_host_master_cam_slave(vcam):
    run_on_cam(vcam, "cam_slave.py", "interface = rpc.rpc_uart_slave(baudrate=%d)" % BAUD)
    with rpc.rpc_uart_master(vcam.uart3_path, baudrate=BAUD) as m:
        warm_up(m)
        assert run_calls(m, 20, timeout=LOADED) == (20, 0), m.last_error
        # Host-to-cam bytes cross QEMU's UART model one at a time (~13 KiB/s): the waits for
        # the COMMAND_DATA ack follow the link's rate.
        arg = expect.pattern(3, 4000)
        assert bytes(m.call("echo", arg, LOADED, LOADED)) == arg, m.last_error
        r = m.call("sized", struct.pack("<II", 5, 30000), LOADED, LOADED)
        assert r is not None and bytes(r) == expect.pattern(5, 30000), m.last_error
        assert collect_stream(m, 30) == (30, 0), m.last_error
        assert run_calls(m, 5, timeout=LOADED) == (5, 0)


def test_cam_master_host_slave(vcam, serve):
    slave = rpc.rpc_uart_slave(vcam.uart3_path, baudrate=BAUD)

    def sized(data):
        seed, n = struct.unpack("<II", data)
        return expect.pattern(seed, n)

    slave.register_callback(sized)
    t = serve(slave)
    run_on_cam(vcam, "cam_master.py",
               "interface = rpc.rpc_uart_master(baudrate=%d)\ncalls = 30" % BAUD)
    out = vcam.wait_for_output("CALLS", timeout=120)
    out += vcam.interrupt()
    t.stop()
    found = re.search(r"30 OK (\d+) WRONG (\d+)", out)
    assert found, out
    ok, wrong = int(found.group(1)), int(found.group(2))
    assert wrong == 0, out
    # The cam's master keeps the reference 3 ms waits; the first bytes it gets from the host
    # after a start take QEMU longer than that, so its first call may run out of time.
    assert ok >= 27, out


def test_bad_line_to_the_virtual_cam(vcam, relay, capsys):
    run_on_cam(vcam, "cam_slave.py", "interface = rpc.rpc_uart_slave(baudrate=%d)" % BAUD)
    with rpc.rpc_uart_master(vcam.uart3_path, baudrate=BAUD) as m:
        warm_up(m)
    line = relay(latency_ms=16, jitter_ms=4, loss=0.0005, latency_timer_ms=16, seed=11,
                 cam_path=vcam.uart3_path)
    with rpc.rpc_uart_master(line.host, baudrate=BAUD) as m:
        ok, wrong = run_calls(m, 30)
        stats = m.stats()
    with rpc.rpc_uart_master(line.host, baudrate=BAUD) as ref:
        ref.set_timing(adaptive=False, pipeline=False)
        ref_ok, ref_wrong = run_calls(ref, 3)
    relayed, dropped = line.close()
    with capsys.disabled():
        print("\n[host] bad line to the virtual cam (%d of %d bytes lost): adaptive %d/30 calls "
              "ok (%d retries); reference timing %d/3" % (dropped, relayed + dropped, ok,
                                                         stats["retries"], ref_ok))
    assert wrong == 0 and ref_wrong == 0
    assert ok >= 24, stats
    # The engine's own timing (adaptive waits off) and the adaptive host both recover through
    # the cam's answers to repeated requests; which gets more of so few calls through depends
    # on where the relay's losses fall in time (printed above, not asserted).


def test_cli_against_the_virtual_cam(vcam, tmp_path):
    import subprocess

    run_on_cam(vcam, "cam_slave.py", "interface = rpc.rpc_uart_slave(baudrate=%d)" % BAUD)
    link = ("--uart", vcam.uart3_path, "--baud", str(BAUD))
    patient = ("--send-timeout", "3000", "--recv-timeout", "3000", "--tries", "2")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "rpc", *link, *args], capture_output=True,
                              text=True, timeout=120)

    with rpc.rpc_uart_master(vcam.uart3_path, baudrate=BAUD) as m:
        warm_up(m)

    r = cli("call", "sized", "--pack", "<II", "4", "12", *patient)
    assert r.returncode == 0 and r.stdout.strip() == expect.pattern(4, 12).hex(), r.stderr
    frames = tmp_path / "frames"
    r = cli("stream", "stream_out", "--pack", "<I", "0", "--out-dir", str(frames), "--count", "15",
            "--suffix", ".bin", "--once", *patient)
    assert r.returncode == 0 and "fps" in r.stderr, r.stderr
    got = sorted(frames.iterdir())
    assert [f.read_bytes() for f in got] == [expect.frame(i) for i in range(15)]
    r = cli("measure", "--name", "echo", "--size", "64", "--count", "20")
    assert r.returncode == 0 and "calls/s" in r.stdout, r.stdout + r.stderr
