"""Harness of the unix-port tests: micropython processes (our module `rpc` from build/unix, or
the independent peer bench/ref_rpc.py), bounded by timeouts and always killed at teardown;
free loopback ports; a pty relay that can inject bytes."""
import fcntl
import json
import os
import queue
import random
import select
import socket
import subprocess
import sys
import threading
import time
import tty
import warnings

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MPY_SCRIPTS = os.path.join(ROOT, "tests", "unix", "mpy")
MICROPYTHON = os.environ.get("MICROPYTHON", os.path.join(ROOT, ".venv", "bin", "micropython"))
MICROPYPATH = ":".join([os.path.join(ROOT, "build", "unix"), MPY_SCRIPTS, os.path.join(ROOT, "bench")])
VECTORS = os.path.join(ROOT, "tests", "vectors", "rpc-wire-vectors.json")
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, MPY_SCRIPTS)

MASTER_IP = "127.0.0.1"
SLAVE_IP = "127.0.0.2"

# (master impl, slave impl): our module against itself and against the reference peer in
# both roles.
PAIRS = [("mod", "mod"), ("mod", "ref"), ("ref", "mod")]
PAIR_IDS = ["mod-mod", "modmaster-refslave", "refmaster-modslave"]


class MPy:
    """One micropython process. Its stdout is read by a thread, line by line."""

    def __init__(self, script, *args, pass_fds=(), name=""):
        env = dict(os.environ, MICROPYPATH=MICROPYPATH)
        self.name = name or os.path.basename(script)
        self.argv = [MICROPYTHON, os.path.join(MPY_SCRIPTS, script)] + [str(a) for a in args]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, pass_fds=pass_fds, cwd=ROOT)
        self.lines = queue.Queue()
        self.out = []
        self.err = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.decode(errors="replace").rstrip("\n")
            self.out.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _read_err(self):
        self.err = self.proc.stderr.read()

    def wait_line(self, prefix, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: no line %r within %ss; stdout %r stderr %r"
                                     % (self.name, prefix, timeout, self.out, self.stderr()))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(5)
                raise AssertionError("%s exited (rc %s) before %r; stdout %r stderr %r"
                                     % (self.name, self.proc.returncode, prefix, self.out, self.stderr()))
            if line.startswith(prefix):
                return line

    def result(self, timeout=60):
        """The JSON printed after RESULT by a master script."""
        res = json.loads(self.wait_line("RESULT ", timeout)[len("RESULT "):])
        if res.get("retried"):
            # Calls that returned None and were tried again (see master.py's call()): shown in
            # pytest's warnings summary, so that they are seen without failing the run.
            warnings.warn("%s: calls tried again: %s" % (self.name, res["retried"]))
        return res

    def finish(self, timeout=20):
        """Waits for the exit; returns the exit code."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s did not exit within %ss; stdout %r stderr %r"
                                 % (self.name, timeout, self.out, self.stderr()))
        self._reader.join(5)
        self._err_reader.join(5)
        return self.proc.returncode

    def stderr(self):
        return self.err.decode(errors="replace") if isinstance(self.err, bytes) else str(self.err)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def spawn():
    """spawn(script, *args, pass_fds=(), name="") -> MPy; every process is killed at teardown."""
    procs = []

    def start(script, *args, **kw):
        p = MPy(script, *args, **kw)
        procs.append(p)
        return p
    yield start
    for p in procs:
        p.kill()


def _bindable(kind, ip, port):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind((ip, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A port free for UDP and TCP on both loopback addresses (each side binds its own)."""
    rng = random.Random(os.getpid() * 1000003 + time.monotonic_ns())
    for _ in range(200):
        port = rng.randrange(20000, 60000)
        if all(_bindable(k, ip, port) for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM)
               for ip in (MASTER_IP, SLAVE_IP)):
            return port
    raise RuntimeError("no free port")


@pytest.fixture
def port():
    return free_port()


class PtyRelay:
    """Two pty pairs joined by a thread: whatever one side's process writes to its pty is
    written to the other side's, both ways, in raw mode. inject(side, data) adds bytes of
    the test's own into the stream towards `side` ("master" or "slave")."""

    def __init__(self):
        self.fds = {}
        for side in ("master", "slave"):
            ptm, pts = os.openpty()
            tty.setraw(pts)
            os.set_blocking(ptm, False)
            self.fds[side] = (ptm, pts)
        self.pending = {"master": bytearray(), "slave": bytearray()}  # bytes towards a side
        self.lock = threading.Lock()
        self.moved = 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def fd_for(self, side, nonblocking):
        """The pty fd to hand to the process of `side`. O_NONBLOCK is a property of the open
        file, so it is set here for peers that need it (bench/ref_rpc.py)."""
        pts = self.fds[side][1]
        flags = fcntl.fcntl(pts, fcntl.F_GETFL)
        fcntl.fcntl(pts, fcntl.F_SETFL, (flags | os.O_NONBLOCK) if nonblocking else (flags & ~os.O_NONBLOCK))
        return pts

    def inject(self, side, data):
        with self.lock:
            self.pending[side] += data

    def _run(self):
        other = {"master": "slave", "slave": "master"}
        while not self.stop:
            ptms = {self.fds[s][0]: s for s in self.fds}
            with self.lock:
                want_write = [self.fds[s][0] for s in self.fds if self.pending[s]]
            r, w, _ = select.select(list(ptms), want_write, [], 0.05)
            for fd in r:
                try:
                    data = os.read(fd, 65536)
                except (BlockingIOError, OSError):
                    continue
                with self.lock:
                    self.pending[other[ptms[fd]]] += data
                    self.moved += len(data)
            for fd in w:
                side = ptms[fd]
                with self.lock:
                    data = bytes(self.pending[side][:65536])
                try:
                    n = os.write(fd, data)
                except (BlockingIOError, OSError):
                    continue
                with self.lock:
                    del self.pending[side][:n]

    def close(self):
        self.stop = True
        self.thread.join(2)
        for ptm, pts in self.fds.values():
            for fd in (ptm, pts):
                try:
                    os.close(fd)
                except OSError:
                    pass


@pytest.fixture
def pty_relay():
    """pty_relay() -> a new PtyRelay; pty_relay.keep(*fds): fds to close at teardown. All
    are closed at teardown."""
    relays, fds = [], []

    def make():
        r = PtyRelay()
        relays.append(r)
        return r
    make.keep = lambda *f: fds.extend(f)
    yield make
    for r in relays:
        r.close()
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def start_pair(spawn, pty_relay, master_impl, slave_impl, transport, port, scenario, params=None,
               slave_args=()):
    """Starts the standard slave and a master scenario over `transport` (net, tcp, py, pty, vcp,
    ptyrelay); returns (master, slave) processes."""
    fds_m = fds_s = ()
    if transport in ("pty", "vcp"):
        # One pty pair, the kernel's link: the master side's process gets the pty's slave
        # end, the slave side's process its master end.
        ptm, pts = os.openpty()
        tty.setraw(pts)
        kind = "fd" if transport == "pty" else "vcp"
        spec_m, spec_s = "%s:%d" % (kind, pts), "%s:%d" % (kind, ptm)
        for fd, impl in ((pts, master_impl), (ptm, slave_impl)):
            # bench/ref_rpc.py needs O_NONBLOCK, and so does the stand-in USB_VCP (its reads,
            # like the cam's, return what is there).
            os.set_blocking(fd, impl != "ref" and transport != "vcp")
        fds_m, fds_s = (pts,), (ptm,)
        pty_relay.keep(ptm, pts)
    elif transport == "ptyrelay":
        relay = pty_relay()
        fd_m = relay.fd_for("master", nonblocking=master_impl == "ref")
        fd_s = relay.fd_for("slave", nonblocking=slave_impl == "ref")
        # The relay is a user-space thread on a shared machine: its latency often exceeds the
        # reference's 2-3 ms short timeouts. Runs through it use the network transport's x10.
        spec_m, spec_s = "fd:%d,short=30" % fd_m, "fd:%d,short=20" % fd_s
        fds_m, fds_s = (fd_m,), (fd_s,)
    else:
        spec_m = spec_s = "%s:%d" % (transport, port)
    if transport in ("tcp", "pty", "py") and "ref" in (master_impl, slave_impl):
        # A pure-Python peer on a shared 2-core machine is no real-time peer: a 2-3 ms short
        # timeout is often missed by one side or the other, and a lost RESULT_DATA request
        # then costs the master its whole phase (reference behaviour). Pairs with the
        # reference peer run at x10 short timeouts, as the network transport always does.
        # Default timing is covered between two native peers.
        spec_m += ",short=30"
        spec_s += ",short=20"
    slave = spawn("slave.py", slave_impl, spec_s, *slave_args, pass_fds=fds_s, name="slave-" + slave_impl)
    slave.wait_line("READY")
    args = [master_impl, spec_m, scenario]
    if params is not None:
        args.append(json.dumps(params))
    master = spawn("master.py", *args, pass_fds=fds_m, name="master-" + master_impl)
    return master, slave
