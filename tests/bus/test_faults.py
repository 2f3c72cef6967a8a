"""Faults on the simulated buses: noise, a slave that starts late, a slave or a master
restarted in the middle of a call. Every call must return the right data or None (never
wrong data), and calls must succeed again once the fault is over."""
import time

import pytest

from test_transports import BUSES, assert_all_ok

# A call long enough on the wire (0.5 to 1 s) to be interrupted in its middle.
LONG_CALL = {"i2c": 6000, "spi": 60000, "can": 12000}


@pytest.mark.parametrize("bus", BUSES)
def test_dropped_and_corrupted_frames(sim, boards, bus):
    faults = sim.fault(bus, 2)
    faults.drop = faults.corrupt = 0.04
    faults.limit = 600  # transfers or frames of noise, then a clean bus
    sizes = [0, 3, 8, 17, 64, 150] * 10
    plan = [
        {"op": "calls", "sizes": sizes, "send_timeout": 300, "recv_timeout": 300},
        {"op": "until_ok"},
        {"op": "calls", "sizes": [0, 9, 100] * 5},
    ]
    slave = boards(sim, "slave", bus, "slave")
    slave.wait_for("ready")
    master = boards(sim, "master", bus, "master", plan=plan)
    noisy, recovered, clean = master.results(timeout=120)
    # The noise was real: it hit transfers in both ways.
    assert faults.dropped > 3 and faults.corrupted > 3, (faults.dropped, faults.corrupted)
    assert noisy["wrong"] == 0, noisy
    assert noisy["ok"] + noisy["none"] == len(sizes) and noisy["ok"] > 0, noisy
    assert recovered["ok"] and recovered["wrong"] == 0, recovered
    assert_all_ok(clean, 15)


@pytest.mark.parametrize("bus", BUSES)
def test_slave_that_starts_late(sim, boards, bus):
    plan = [{"op": "until_ok", "within_ms": 20000}, {"op": "calls", "sizes": [0, 5, 300] * 5}]
    master = boards(sim, "master", bus, "master", plan=plan)
    master.wait_for('"made"')
    time.sleep(1.0)  # the master calls into the void (and on CAN its frames wait unacknowledged)
    slave = boards(sim, "slave", bus, "slave")
    slave.wait_for("ready")
    first, calls = master.results(timeout=60)
    assert first["ok"] and first["wrong"] == 0 and first["none"] >= 1, first
    assert_all_ok(calls, 15)


def interrupt_call(sim, boards, bus, restart):
    """Start a long call, kill `restart` ("slave" or "master") half-way, start a new one."""
    slave = boards(sim, "slave", bus, "slave")
    slave.wait_for("ready")
    long_call = {"op": "calls", "sizes": [LONG_CALL[bus]], "send_timeout": 5000, "recv_timeout": 5000}
    after = [{"op": "until_ok", "within_ms": 20000}, {"op": "calls", "sizes": [0, 7, 200] * 5}]
    master_plan = [{"op": "calls", "sizes": [4]}, long_call] + (after if restart == "slave" else [])
    master = boards(sim, "master", bus, "master", plan=master_plan)
    master.wait_for('"step": "calls"')  # the first small call is done: the long one starts
    time.sleep(0.3)
    if restart == "slave":
        slave.kill()
        slave = boards(sim, "slave2", bus, "slave")
        slave.wait_for("ready")
        return master.results(timeout=90)
    master.kill()
    master = boards(sim, "master2", bus, "master", plan=after)
    return [None, None] + master.results(timeout=90)


@pytest.mark.parametrize("bus", BUSES)
def test_slave_restarted_mid_call(sim, boards, bus):
    _, interrupted, recovered, calls = interrupt_call(sim, boards, bus, "slave")
    assert interrupted["wrong"] == 0 and interrupted["ok"] + interrupted["none"] == 1, interrupted
    assert recovered["ok"] and recovered["wrong"] == 0, recovered
    assert_all_ok(calls, 15)


@pytest.mark.parametrize("bus", BUSES)
def test_master_restarted_mid_call(sim, boards, bus):
    _, _, recovered, calls = interrupt_call(sim, boards, bus, "master")
    assert recovered["ok"] and recovered["wrong"] == 0, recovered
    assert_all_ok(calls, 15)
