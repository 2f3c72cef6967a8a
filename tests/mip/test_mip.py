"""The mip package (make mip: build/mip/<arch>/package.json) installed the way MicroPython
users install things, `mpremote mip install <package.json>` from a local directory (PyPI
mpremote), into the unix port and onto the virtual cam, then imported and called.

mpremote drives a board through its raw REPL. The unix port's REPL has none, so
repl_server.py gives it one over TCP (mpremote connect socket://...). The virtual cam has its
raw REPL on a pty; its stock-like firmware has no filesystem, so cam_files.py first gives
mpremote an open()/os over the RAM file store, and mpremote then runs with `resume` (no soft
reset, which would clear them).
"""
import os
import socket
import subprocess
import sys

import pytest

import peer
from harness import Run
from vcam import NATMOD_FIRMWARE, REPO_DIR, VirtualCam, _Pty

HERE = os.path.dirname(os.path.abspath(__file__))
MIP_DIR = os.path.join(REPO_DIR, "build", "mip")
MICROPYTHON = os.path.join(REPO_DIR, ".venv", "bin", "micropython")
MPREMOTE = [sys.executable, "-m", "mpremote"]
REF = peer.load_ref_rpc()


def package(arch):
    path = os.path.join(MIP_DIR, arch, "package.json")
    if not os.path.exists(path):
        pytest.fail("no %s: run `make mip` first" % path)
    return path


def built(arch, name):
    with open(os.path.join(MIP_DIR, arch, name), "rb") as f:
        return f.read()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mpremote(*args, timeout=120):
    out = subprocess.run(MPREMOTE + list(args), capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_package_json_lists_both_modules():
    import json
    for arch in ("x64", "armv6m", "armv7m", "armv7emsp", "armv7emdp"):
        with open(package(arch)) as f:
            pkg = json.load(f)
        assert pkg["urls"] == [["rpc.mpy", "rpc.mpy"], ["mutex.mpy", "mutex.mpy"]]
        assert "hashes" not in pkg   # mip would fetch those from its index, not from here
        assert built(arch, "rpc.mpy")[2] >> 2 == {"x64": 2, "armv6m": 4, "armv7m": 5,
                                                  "armv7emsp": 7, "armv7emdp": 8}[arch]


def test_install_into_unix_port(tmp_path):
    port = free_port()
    server = subprocess.Popen([MICROPYTHON, os.path.join(HERE, "repl_server.py"), str(port)],
                              cwd=str(tmp_path), stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "listening"
        lib = str(tmp_path / "lib")
        out = mpremote("connect", "socket://127.0.0.1:%d" % port, "mip", "install",
                       "--target", lib, package("x64"))
        assert "Done" in out
        server.wait(30)
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()
        server.stdout.close()
    for name in ("rpc.mpy", "mutex.mpy"):
        assert (tmp_path / "lib" / name).read_bytes() == built("x64", name)
    # The installed modules, from that directory alone, in a fresh unix port.
    env = dict(os.environ, MICROPYPATH=lib)
    out = subprocess.run([MICROPYTHON, "-c", "import rpc, mutex; print(rpc.__file__, rpc.crc16(b'123456789'),"
                          " rpc.name_hash('echo'), mutex.Mutex().test())"],
                         env=env, capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == [lib + "/rpc.mpy", str(0x29B1), str(REF.name_hash("echo")), "True"]
    # And calls between two processes that use them: a network master and slave.
    with Run("network", n=1, rpc_dir=lib) as run:
        tally = run.master(calls=50, seed=3)["blocking"]
    assert tally["ok"] == [50] and tally["wrong"] == [0]


def test_install_onto_virtual_cam():
    if not os.path.exists(NATMOD_FIRMWARE):
        pytest.fail("no %s: run `make qemu-natmod` first" % NATMOD_FIRMWARE)
    cam = VirtualCam(firmware=NATMOD_FIRMWARE).start()
    try:
        assert cam.exec("import qemu\nprint(qemu.ramfiles())").strip() == "{}"
        with open(os.path.join(HERE, "cam_files.py")) as f:
            cam.exec(f.read())
        # mpremote takes the REPL's pty for itself meanwhile.
        path = cam.repl.path
        cam.repl.close()
        try:
            out = mpremote("connect", path, "resume", "mip", "install", "--target", ".",
                           package("armv7emsp"), timeout=300)
        finally:
            cam.repl = _Pty(path)
            cam._enter_raw_repl()
        assert "Done" in out
        cam.soft_reset()
        sizes = cam.eval("__import__('qemu').ramfiles()")
        assert sizes == {n: len(built("armv7emsp", n)) for n in ("rpc.mpy", "mutex.mpy")}
        for name in ("rpc.mpy", "mutex.mpy"):
            got = cam.exec("print(__import__('qemu').ramfile(%r).hex())" % name).strip()
            assert bytes.fromhex(got) == built("armv7emsp", name)
        out = cam.exec("import rpc, mutex\nprint(rpc.__file__, rpc.crc16(b'123456789'), mutex.Mutex().test())")
        assert out.split() == ["rpc.mpy", str(0x29B1), "True"]
        # The installed rpc serves calls from a host peer over UART3.
        with open(os.path.join(REPO_DIR, "tests", "qemu", "cam", "slave_cam.py")) as f:
            cam.exec_start(f.read())
        cam.wait_for_output("READY")
        host = peer.master(cam.uart3_path, "ref")
        try:
            result = None
            for _ in range(10):
                result = host.call("echo", b"installed by mip", send_timeout=3000, recv_timeout=3000)
                if result is not None:
                    break
            assert bytes(result) == b"installed by mip"
        finally:
            cam.interrupt()
            host.close()
    finally:
        cam.close()
