"""Many slaves under one master: the slave processes and the master process of board.py,
on the bus simulator (tests/bus/sim.py) or on loopback UDP/TCP, and the master's tally."""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUS_DIR = os.path.join(ROOT, "tests", "bus")
sys.path.insert(0, BUS_DIR)
sys.path.insert(0, os.path.join(BUS_DIR, "stand_in"))

from sim import Simulator  # noqa: E402

MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
RPC_DIR = os.path.join(ROOT, "build", "unix")
BOARD = os.path.join(HERE, "board.py")

# The addresses of the slaves on each bus: I2C addresses, CAN ids, CS pin names, IPs.
ADDRESSES = {
    "i2c": [0x20 + i for i in range(8)],
    "can": [0x100 + 0x11 * i for i in range(8)],
    "spi": ["P3", "P4", "P5", "P6"],
    "network": ["127.0.0.%d" % (10 + i) for i in range(8)],
}


def network_port():
    """A UDP/TCP port free on the slaves' and masters' addresses (the kernel picks one)."""
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.10", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Run:
    """One bus, its slaves (processes) and one master process."""

    def __init__(self, bus, n=None, seed=1, rpc_dir=RPC_DIR):
        """rpc_dir: where the boards import rpc.mpy from (build/unix)."""
        self.bus = bus
        self.rpc_dir = rpc_dir
        self.addrs = ADDRESSES[bus][:n]
        self.sim = None if bus == "network" else Simulator(seed=seed).start()
        self.port = network_port() if bus == "network" else 0
        self.procs = []

    def _env(self, name, **extra):
        path = [self.rpc_dir, HERE]
        env = dict(os.environ, BUS=self.bus, ADDRS=json.dumps(self.addrs), PORT=str(self.port), **extra)
        if self.sim:
            path.insert(0, os.path.join(BUS_DIR, "stand_in"))
            env.update(self.sim.env(name))
        env["MICROPYPATH"] = ":".join(path)
        return env

    def _start(self, name, **extra):
        proc = subprocess.Popen([MICROPYTHON, BOARD], env=self._env(name, **extra), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start_slaves(self):
        slaves = [self._start("slave%d" % i, ROLE="slave", SLAVE=str(i)) for i in range(len(self.addrs))]
        for i, proc in enumerate(slaves):
            line = proc.stdout.readline()
            if "ready" not in line:
                raise AssertionError("slave %d did not start: %s%s" % (i, line, proc.stdout.read()
                                                                       if proc.poll() is not None else ""))
        return self

    def master(self, timeout=300, master_addrs=None, **plan):
        extra = {"MASTER_ADDRS": json.dumps(master_addrs)} if master_addrs else {}
        proc = self._start("master", ROLE="master", PLAN=json.dumps(plan), **extra)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            raise AssertionError("the master did not finish in %d s:\n%s" % (timeout, out))
        lines = [line for line in out.splitlines() if line.startswith("{")]
        assert proc.returncode == 0 and lines, "the master failed:\n%s" % out
        return json.loads(lines[-1])

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout:
                proc.stdout.close()
        if self.sim:
            self.sim.stop()

    def __enter__(self):
        return self.start_slaves()

    def __exit__(self, *exc):
        self.close()
