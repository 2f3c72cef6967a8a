"""Fixtures shared by the host package's tests: peers in threads, the pty relay, the
MicroPython unix-port cam side."""

import json
import os
import pathlib
import subprocess
import sys
import threading

import pytest

HERE = pathlib.Path(__file__).resolve().parent
HOST = HERE.parent
REPO = HOST.parent
VECTORS = REPO / "tests" / "vectors" / "rpc-wire-vectors.json"
MICROPYTHON = os.environ.get("MICROPYTHON", str(REPO / ".venv" / "bin" / "micropython"))
UNIX_BUILD = REPO / "build" / "unix"

_port = [21000 + (os.getpid() % 500) * 8]


@pytest.fixture
def port():
    """A fresh UDP/TCP port pair for one network test."""
    _port[0] += 1
    return _port[0]


@pytest.fixture(scope="session")
def vectors():
    return json.loads(VECTORS.read_text())


class SlaveThread:
    """An rpc_slave serving in a thread; stopped and joined at the end of the test."""

    def __init__(self, slave, recv_timeout=100, send_timeout=1000):
        self.slave = slave
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(recv_timeout, send_timeout))
        self.thread.start()

    def _run(self, recv_timeout, send_timeout):
        try:
            self.slave.loop(recv_timeout, send_timeout)
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.error = e

    def stop(self):
        self.slave.stop()
        self.thread.join(10)
        assert not self.thread.is_alive(), "slave loop did not stop"
        self.slave.close()


@pytest.fixture
def serve():
    started = []

    def start(slave, **kw):
        t = SlaveThread(slave, **kw)
        started.append(t)
        return t

    yield start
    for t in started:
        if t.thread.is_alive():
            t.stop()


class Relay:
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "ptyrelay.py"), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.host = self.proc.stdout.readline().split()[1]
        self.cam = self.proc.stdout.readline().split()[1]
        self.stats = None

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            out = self.proc.stdout.read()
            self.proc.wait(10)
            for line in out.splitlines():
                if line.startswith("STATS"):
                    self.stats = tuple(int(x) for x in line.split()[1:])
        return self.stats


@pytest.fixture
def relay():
    made = []

    def make(latency_ms=0, jitter_ms=0, loss=0.0, latency_timer_ms=0, seed=1, cam_path=None):
        r = Relay("--latency-ms", str(latency_ms), "--jitter-ms", str(jitter_ms),
                  "--loss", str(loss), "--latency-timer-ms", str(latency_timer_ms),
                  "--seed", str(seed), *(("--cam-path", cam_path) if cam_path else ()))
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


class Cam:
    """A cam-side script in its own process (MicroPython unix port or CPython)."""

    def __init__(self, interpreter, script, *args, env=None, pass_fds=()):
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen([interpreter, str(script), *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=e, pass_fds=pass_fds)
        self.lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("cam script ended before READY:\n" + "".join(self.lines))
            self.lines.append(line)
            if line.strip() == "READY":
                break

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def output(self, timeout=60):
        out, _ = self.proc.communicate(timeout=timeout)
        return "".join(self.lines) + out


CAM_DIR = HERE / "cam"
# MicroPython finds the project's rpc module (build/unix) and bench/ref_rpc.py.
MICROPYPATH = "%s:%s" % (UNIX_BUILD, REPO / "bench")


def nonblocking_fd(path):
    """An O_NONBLOCK fd on a pty path, for a child's open(fd) (ref_rpc's stream transport)."""
    return os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)


@pytest.fixture
def cam():
    started = []

    def start(script, *args, interpreter=sys.executable, env=None, pass_fds=()):
        c = Cam(interpreter, CAM_DIR / script, *args, env=env, pass_fds=pass_fds)
        started.append(c)
        return c

    yield start
    for c in started:
        c.kill()
