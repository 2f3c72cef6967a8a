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
# The stand-ins first, then the native rpc module, the Python peers, the reference peer.
MICROPYPATH = ":".join([os.path.join(HERE, "stand_in"), os.path.join(ROOT, "build", "unix"),
                        os.path.join(HERE, "boards"), os.path.join(ROOT, "bench")])
BOARD = os.path.join(HERE, "boards", "board.py")


class Board:
    """One MicroPython process running boards/board.py against the simulator."""

    def __init__(self, sim, name, bus, role, impl="native", plan=None, timing=None, hide=None,
                 script=None, send_timeout=None):
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
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        self.lines = []

    def wait_for(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if text in line:
                return line
        raise AssertionError("%s never printed %r; output:\n%s" % (self.name, text, "\n".join(self.lines)))

    def results(self, timeout):
        """The JSON lines of a master's plan, after it exits (within timeout seconds)."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, _ = self.proc.communicate()
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
