"""Runs a master and a slave (tests/unix/mpy/relay_peer.py) through the fault relay
(tests/relay.py), as three processes: used by tests/unix/test_recovery_relay.py and
bench/lossy_bench.py.

    run(transport, master, slave, master_params, relay_args=(), slave_params=None)
transport: "udp" (network transport), "tcp" (stream transport over TCP), "pty" (stream
transport over two pty pairs), "pty-direct" (one pty pair, no relay: relay_args unused).
master / slave: (impl, timing), impl "mod" (our module, unix
port), "ref" (bench/ref_rpc.py, unix port), "host" (the host package, CPython; master only),
timing "default" or a ref_rpc use_timing() mode. Returns a Run: the master's RESULT (with its CALL lines as result["calls"]), the
relay's FAULT lines and STATS. Every process is killed before it returns."""
import json
import os
import queue
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MPY_SCRIPTS = os.path.join(HERE, "mpy")
RELAY = os.path.join(ROOT, "tests", "relay.py")
PEER = os.path.join(MPY_SCRIPTS, "relay_peer.py")
MICROPYTHON = os.environ.get("MICROPYTHON", os.path.join(ROOT, ".venv", "bin", "micropython"))
# OMV_RPC_UNIX_DIR: another build of rpc.mpy for "mod" (e.g. one with a proposed glue patch).
RPC_DIR = os.environ.get("OMV_RPC_UNIX_DIR", os.path.join(ROOT, "build", "unix"))
MICROPYPATH = ":".join([RPC_DIR, MPY_SCRIPTS, os.path.join(ROOT, "bench")])
IPS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")


class Proc:
    def __init__(self, argv, env=None, pass_fds=(), name=""):
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, pass_fds=pass_fds, cwd=ROOT)
        self.lines = queue.Queue()
        self.out = []
        self.err = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.decode(errors="replace").rstrip("\n")
            self.out.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _read_err(self):
        for line in self.proc.stderr:
            self.err.append(line.decode(errors="replace"))

    def wait_line(self, prefix, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("%s: no %r within %ss; out %r err %r"
                                   % (self.name, prefix, timeout, self.out[-5:], "".join(self.err)[-2000:]))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(5)
                raise RuntimeError("%s exited (rc %s) before %r; out %r err %r"
                                   % (self.name, self.proc.returncode, prefix, self.out[-5:],
                                      "".join(self.err)[-2000:]))
            if line.startswith(prefix):
                return line

    def stop(self):
        """Closes stdin (the relay then prints its STATS and exits), then kills."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


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
    """A port free for UDP and TCP on the four loopback addresses."""
    rng = random.Random(os.getpid() * 1000003 + time.monotonic_ns())
    for _ in range(200):
        port = rng.randrange(20000, 60000)
        if all(_bindable(k, ip, port) for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM) for ip in IPS):
            return port
    raise RuntimeError("no free port")


class Run:
    def __init__(self, result, faults, stats, master_err):
        self.result = result
        self.faults = faults
        self.stats = stats
        self.master_err = master_err


def _peer_argv(impl, role, timing, spec, params, tmp):
    script = [PEER, role, impl, timing, spec]
    if params is not None:
        path = os.path.join(tmp, role + ".json")
        with open(path, "w") as f:
            json.dump(params, f)
        script.append("@" + path)
    if impl == "host":
        return [sys.executable] + script
    return [MICROPYTHON] + script


def run(transport, master, slave, master_params, relay_args=(), slave_params=None, timeout=120,
        keep_relay_out=False):
    env = dict(os.environ, MICROPYPATH=MICROPYPATH,
               PYTHONPATH=os.pathsep.join([MPY_SCRIPTS, os.path.join(ROOT, "bench")]))
    procs, fds = [], []
    tmp = tempfile.mkdtemp(prefix="relay-pair-")
    try:
        if transport == "pty-direct":
            # One pty pair, no relay: the master holds the pty's slave end, the slave its
            # master end (the kernel's link).
            ptm, pts = os.openpty()
            fds += [ptm, pts]
            tty.setraw(pts)
            os.set_blocking(pts, master[0] != "ref")
            os.set_blocking(ptm, slave[0] != "ref")
            relay_argv = None
            spec_m = "dev:%s" % os.ttyname(pts) if master[0] == "host" else "fd:%d" % pts
            spec_s = "fd:%d" % ptm
            fds_m, fds_s = (pts,), (ptm,)
        elif transport == "pty":
            (ptm_m, pts_m), (ptm_s, pts_s) = os.openpty(), os.openpty()
            fds += [ptm_m, pts_m, ptm_s, pts_s]
            for fd in (pts_m, pts_s):
                tty.setraw(fd)
            # bench/ref_rpc.py needs O_NONBLOCK (a property of the open file); our module not.
            os.set_blocking(pts_m, master[0] != "ref")
            os.set_blocking(pts_s, slave[0] != "ref")
            relay_argv = [sys.executable, RELAY, "pty", str(ptm_m), str(ptm_s)]
            relay_fds = (ptm_m, ptm_s)
            spec_m = "dev:%s" % os.ttyname(pts_m) if master[0] == "host" else "fd:%d" % pts_m
            spec_s = "fd:%d" % pts_s
            fds_m, fds_s = (pts_m,), (pts_s,)
        else:
            port = free_port()
            relay_argv = [sys.executable, RELAY, transport, str(port)]
            relay_fds = ()
            spec_m = spec_s = "%s:%d" % (transport, port)
            fds_m = fds_s = ()
        relay = None
        if relay_argv is not None:
            relay = Proc(relay_argv + list(relay_args), pass_fds=relay_fds, name="relay")
            procs.append(relay)
            relay.wait_line("READY", 20)
        s = Proc(_peer_argv(slave[0], "slave", slave[1], spec_s, slave_params, tmp), env=env,
                 pass_fds=fds_s, name="slave-%s-%s" % slave)
        procs.append(s)
        s.wait_line("READY", 20)
        m = Proc(_peer_argv(master[0], "master", master[1], spec_m, master_params, tmp), env=env,
                 pass_fds=fds_m, name="master-%s-%s" % master)
        procs.append(m)
        try:
            result = json.loads(m.wait_line("RESULT ", timeout)[len("RESULT "):])
            if "rate" not in result:
                result["calls"] = [json.loads(l[5:]) for l in m.out if l.startswith("CALL ")]
        except RuntimeError as e:
            if relay is None:
                raise
            raise RuntimeError("%s; relay faults so far: %s" % (e, [l for l in relay.out if l.startswith("FAULT")][-3:]))
        m.stop()
        s.proc.kill()
        s.stop()
        if relay is None:
            return Run(result, [], None, "".join(m.err))
        relay.stop()
        stats_lines = [l for l in relay.out if l.startswith("STATS ")]
        stats = json.loads(stats_lines[-1][6:]) if stats_lines else None
        faults = [json.loads(l[6:]) for l in relay.out if l.startswith("FAULT ")]
        run_ = Run(result, faults, stats, "".join(m.err))
        run_.relay_out = relay.out if keep_relay_out else None
        return run_
    finally:
        for p in procs:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(5)
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
