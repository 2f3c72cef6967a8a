"""Both roles on the simulated I2C, SPI and CAN buses (tests/bus) under valgrind memcheck,
while the simulator drops transfers (frames on CAN), flips bits, and on CAN cuts or lengthens
frames (a frame of the wrong size at the wrong time); then calls on a clean bus must
all succeed, and valgrind must have reported no error in either board (issue 13).

The boards are killed at the end (the slave loops for ever): valgrind's log is read for errors
(every error is logged when it happens). `make memcheck` only (each board takes ~20 s to start
under valgrind)."""
import glob
import os
import random
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "bus"))
import harness  # noqa: E402
from sim import Simulator  # noqa: E402
from test_memcheck import VALGRIND  # noqa: E402

SCALE = int(os.environ.get("OMV_MEMCHECK_SCALE", "1"))
ERROR = re.compile(r"Invalid (read|write|free)|Mismatched free|Syscall param|"
                   r"Source and destination overlap|Jump to the invalid address")


def resizing(faults, bus, rate, rng):
    """Wraps faults.maybe_corrupt: also cuts or lengthens a CAN frame a board receives (up to 8
    data bytes, what a frame can carry), at `rate`. Not on SPI or I2C: a transfer there always
    moves the bytes the master clocked (a transfer of another length than the slave wanted is
    the simulator's own case: the HAL call fails); a buffer of another length handed to the
    stand-in bus classes breaks them, not the module (tried: the stand-in I2C then never
    recovers)."""
    corrupt = faults.maybe_corrupt
    faults.resized = 0

    def maybe(data):
        corrupt(data)
        if bus == "can" and faults._active() and len(data) and rng.random() < rate:
            room = 8 - len(data)
            if room <= 0 or rng.random() < 0.5:
                del data[rng.randrange(len(data)):]
            else:
                data.extend(rng.randbytes(rng.randrange(1, room + 1)))
            faults.resized += 1
    faults.maybe_corrupt = maybe


@pytest.mark.parametrize("bus", ["i2c", "spi", "can"])
def test_bus_faults_under_memcheck(bus, tmp_path, monkeypatch):
    log = str(tmp_path / "vg")
    wrapper = tmp_path / "vg-micropython"
    checker = "" if os.environ.get("OMV_MEMCHECK_BARE") else " ".join(VALGRIND) + " --log-file=%s.%%p" % log
    wrapper.write_text("#!/bin/sh\nexec %s %s \"$@\"\n" % (checker, harness.MICROPYTHON))
    wrapper.chmod(0o755)
    monkeypatch.setattr(harness, "MICROPYTHON", str(wrapper))
    monkeypatch.setenv("PYTHONMALLOC", "malloc")
    sim = Simulator().start()
    boards = []
    try:
        faults = sim.fault(bus, 2)
        faults.rng = random.Random(13)
        faults.drop = faults.corrupt = 0.04
        resizing(faults, bus, float(os.environ.get("OMV_RESIZE_RATE", "0.04")), random.Random(14))
        faults.limit = 300 * SCALE
        sizes = [0, 3, 8, 17, 64, 150] * (5 * SCALE)
        plan = [
            {"op": "calls", "sizes": sizes, "send_timeout": 1000, "recv_timeout": 1000},
            {"op": "until_ok", "within_ms": 60000},
            {"op": "calls", "sizes": [0, 9, 100] * 3, "send_timeout": 3000, "recv_timeout": 3000},
        ]
        slave = harness.Board(sim, "slave", bus, "slave")
        boards.append(slave)
        slave.wait_for("ready", timeout=300)
        master = harness.Board(sim, "master", bus, "master", plan=plan)
        boards.append(master)
        noisy, recovered, clean = master.results(timeout=600 * SCALE)
        print("%s: %d transfers seen, %d dropped, %d corrupted, %d resized; noisy calls %s; clean %s"
              % (bus, faults.seen, faults.dropped, faults.corrupted, faults.resized, noisy, clean))
        assert noisy["wrong"] == 0, noisy
        assert recovered["ok"] and recovered["wrong"] == 0, recovered
        assert clean["ok"] == 9 and clean["none"] == 0 and clean["wrong"] == 0, clean
        assert faults.dropped + faults.corrupted + faults.resized > 0
    finally:
        for b in boards:
            b.kill()
        sim.stop()
    logs = glob.glob(log + ".*")
    assert len(logs) >= 2 or os.environ.get("OMV_MEMCHECK_BARE"), logs
    for path in logs:
        text = open(path).read()
        bad = [line for line in text.splitlines() if ERROR.search(line)]
        assert not bad, "%s:\n%s" % (path, text[-6000:])
