"""Running simulated boards (MicroPython processes with the stand-in buses) against a
simulator: shared by the bus tests (conftest.py) and the bus benchmark (bench_bus.py)."""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "stand_in"))

MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
# Where rpc.mpy is: build/unix, or OMV_BUS_RPC_DIR (e.g. a build with -DRPC_TRACE).
RPC_DIR = os.environ.get("OMV_BUS_RPC_DIR") or os.path.join(ROOT, "build", "unix")
# The stand-ins first, then the native rpc module, the Python peers, the reference peer.
MICROPYPATH = ":".join([os.path.join(HERE, "stand_in"), RPC_DIR,
                        os.path.join(HERE, "boards"), os.path.join(ROOT, "bench")])
BOARD = os.path.join(HERE, "boards", "board.py")


class Board:
    """One MicroPython process running boards/board.py against the simulator."""

    def __init__(self, sim, name, bus, role, impl="native", plan=None, timing=None, hide=None,
                 script=None, send_timeout=None, log=None):
        """log: a file path that gets the process's output instead of a pipe (a slave whose
        output nobody reads, e.g. one printing a trace, would block on a full pipe)."""
        env = dict(os.environ, MICROPYPATH=MICROPYPATH, BUS=bus, ROLE=role, IMPL=impl,
                   PLAN=json.dumps(plan or []), **sim.env(name))
        if timing:
            env["TIMING"] = str(timing)
        if hide:
            env["OMV_BUS_HIDE"] = hide
        if send_timeout:
            env["SEND_TIMEOUT"] = str(send_timeout)
        args = [MICROPYTHON]
        args += ["-c", script] if script else [BOARD]
        self.name = name
        self.log = log
        out = open(log, "w") if log else subprocess.PIPE
        self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        if log:
            out.close()
            self.proc.stdout = open(log)
        self.lines = []

    def _readline(self, deadline):
        line = self.proc.stdout.readline()
        while self.log and not line and time.monotonic() < deadline:
            # A file has no end while the process runs: poll it.
            if self.proc.poll() is not None:
                return self.proc.stdout.readline()
            time.sleep(0.02)
            line = self.proc.stdout.readline()
        return line

    def wait_for(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self._readline(deadline)
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if text in line:
                return line
        raise AssertionError("%s never printed %r; output:\n%s" % (self.name, text, "\n".join(self.lines)))

    def results(self, timeout):
        """The JSON lines of a master's plan, after it exits (within timeout seconds)."""
        try:
            if self.log:
                self.proc.wait(timeout)
                out = self.proc.stdout.read()
            else:
                out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out = self.proc.stdout.read() if self.log else self.proc.communicate()[0]
            raise AssertionError("%s did not finish in %d s; output:\n%s" %
                                 (self.name, timeout, "\n".join(self.lines) + out))
        self.lines += out.splitlines()
        results = []
        for line in self.lines:
            if line.startswith("{"):
                results.append(json.loads(line))
        assert self.proc.returncode == 0, "%s failed:\n%s" % (self.name, "\n".join(self.lines))
        return [r for r in results if r.get("step") != "made"]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
