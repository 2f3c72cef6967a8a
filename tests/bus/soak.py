"""Lost calls under load: runs test_500_calls_in_a_row's plan (500 echo calls of 0..47 bytes
between our master and slave classes) RUNS times per bus on the simulator, optionally with
LOAD busy-loop processes competing for the CPUs (started here, killed at the end), and
prints the calls that returned None or wrong data per run.

    .venv/bin/python tests/bus/soak.py [--runs 5] [--load 2] [--buses i2c,spi,can]
                                       [--impl native|python-slave|...] [--logs DIR]

--impl python-slave (python-master): that side is the Python get_bytes/put_bytes subclass,
ref-slave (ref-master) the pure-Python reference peer on the same bus code (the peers of
test_subclass_overrides_talk_to_the_native_classes and test_interoperates_with_the_reference_peer,
short timeout 50 ms as in the tests); the other side is our class.
--logs DIR keeps both boards' output and the simulator's log of every run that lost a call
(with OMV_BUS_RPC_DIR pointing at an rpc.mpy built with OMV_RPC_CFLAGS=-DRPC_TRACE, that
output is the engine's io trace)."""
import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time

from harness import Board
from sim import Simulator

SIZES = [n % 48 for n in range(100)]


def one_run(bus, impl, logs, tag):
    sim = Simulator().start()
    sim.log = collections.deque(maxlen=400000)  # a whole run, for the logs of a lost call
    slave_log = os.path.join(logs, "%s-slave.txt" % tag)
    master_log = os.path.join(logs, "%s-master.txt" % tag)
    python_short_ms = 50
    peer, _, side = impl.partition("-")  # "python-master" -> ("python", "master")
    slave_impl = peer if side == "slave" else "native"
    master_impl = peer if side == "master" else "native"
    slave = master = None
    try:
        slave = Board(sim, "slave", bus, "slave", slave_impl, log=slave_log,
                      timing=python_short_ms if slave_impl != "native" else None)
        slave.wait_for("ready")
        master = Board(sim, "master", bus, "master", master_impl,
                       plan=[{"op": "calls", "sizes": SIZES, "repeat": 5}], log=master_log,
                       timing=python_short_ms if master_impl != "native" else None)
        (result,) = master.results(timeout=300)
    finally:
        for board in (master, slave):
            if board:
                board.kill()
                board.proc.stdout.close()
        sim.stop()
    lost = result["none"] + result["wrong"]
    if lost:
        with sim.cond:
            entries = list(sim.log)
        with open(os.path.join(logs, "%s-sim.txt" % tag), "w") as f:
            for when, node, what in entries:
                f.write("%.6f %s %s\n" % (when, node, what))
    else:
        os.remove(slave_log)
        os.remove(master_log)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--load", type=int, default=0, help="busy-loop processes during the runs")
    parser.add_argument("--buses", default="i2c,spi,can")
    parser.add_argument("--impl", default="native", choices=["native", "python-slave", "python-master", "ref-slave", "ref-master"])
    parser.add_argument("--logs", default=None)
    args = parser.parse_args()
    logs = args.logs or tempfile.mkdtemp(prefix="bus-soak-")
    os.makedirs(logs, exist_ok=True)
    # Killed (timeout, Ctrl-C): still stop the busy loops (finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(args.load)]
    totals = {}
    try:
        for bus in args.buses.split(","):
            for run in range(args.runs):
                tag = "%s-%s-%d" % (bus, args.impl, run)
                start = time.monotonic()
                result = one_run(bus, args.impl, logs, tag)
                lost = result["none"] + result["wrong"]
                total = totals.setdefault(bus, [0, 0])
                total[0] += lost
                total[1] += 500
                print("%s run %d: ok %d none %d wrong %d (%.0f s) %s" % (
                    bus, run, result["ok"], result["none"], result["wrong"],
                    time.monotonic() - start, result["errors"] if lost else ""), flush=True)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    for bus, (lost, calls) in totals.items():
        print("%s: %d lost of %d calls (impl %s, load %d)" % (bus, lost, calls, args.impl, args.load))
    print("logs of runs that lost calls: %s" % logs)


if __name__ == "__main__":
    main()
