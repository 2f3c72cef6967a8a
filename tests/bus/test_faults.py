"""Faults on the simulated buses: noise, a slave that starts late, a slave or a master
restarted in the middle of a call. Every call must return the right data or None (never
wrong data), and calls must succeed again once the fault is over."""
import time

import pytest

import busproto as bp
from test_transports import BUSES, assert_all_ok, start_pair

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


# The bus calls that put a packet on the wire from a master (an SPI read clocks out 0xFF).
MASTER_WRITES = (bp.OP_I2C_WRITE, bp.OP_SPI_MASTER_XFER, bp.OP_CAN_SEND)
MAGIC_RESULT_DATA = b"\xba\x1d"


def is_result_data_request(op, data, args=None):
    """A master's RESULT_DATA packet is always the request: magic, empty payload, crc."""
    return op in MASTER_WRITES and len(data) == 4 and data[:2] == MAGIC_RESULT_DATA


@pytest.mark.parametrize("bus", BUSES)
def test_master_late_with_the_result_data_request(sim, boards, bus):
    """The master is descheduled between the slave's RESULT_HEADER and its RESULT_DATA request
    for longer than the slave's short timeout: the slave has gone back to waiting for a
    RESULT_HEADER request when the request comes. It answers it there (it sent the
    RESULT_HEADER in this phase), or on I2C and SPI the master finds it not ready and retries;
    either way the call succeeds."""
    stall = sim.stall("master", is_result_data_request, ms=80, count=4)
    sizes = [0, 5, 40, 3, 17, 8]
    master = start_pair(sim, boards, bus, [{"op": "calls", "sizes": sizes}])
    (result,) = master.results(timeout=90)
    assert stall.done == 4
    assert_all_ok(result, len(sizes))


def test_can_slave_keeps_a_late_result_data_request(sim, boards):
    """CAN buffers frames in the receive FIFO: a RESULT_DATA request that lands after the
    slave's wait for it timed out was dropped unread by the flush that started the slave's
    next attempt, and the master waited for RESULT_DATA (the 5 s long timeout, past its 1 s
    recv_timeout, before CAN had the engine's first-byte limit). A retry after a wait that
    only timed out now keeps the input (engine), so the slave reads the late request and
    answers it. Staged: the master stalls 40 ms before the request (the slave waits 20 ms);
    a flush by the slave then (its only pyb.CAN.any() call) would be held 60 ms, and none
    may happen."""
    master_stall = sim.stall("master", is_result_data_request, ms=40, count=3)
    # The slave's flush (the only pyb.CAN.any() call) once the master has stalled.
    slave_stall = sim.stall("slave", lambda op, data, args: op == bp.OP_CAN_ANY
                            and master_stall.done > slave_stall.done, ms=60, count=3)
    sizes = [0, 5, 40, 3, 17, 8]
    master = start_pair(sim, boards, "can", [{"op": "calls", "sizes": sizes}])
    (result,) = master.results(timeout=90)
    assert_all_ok(result, len(sizes))
    assert master_stall.done == 3
    # No flush after the slave's timed-out wait for the request.
    assert slave_stall.done == 0


def is_result_data(op, data, args=None):
    """A slave's RESULT_DATA send (an I2C slave send, an SPI slave call with bytes to shift out)."""
    return (op in (bp.OP_I2C_SLAVE_SEND, bp.OP_SPI_SLAVE_XFER) and len(data) > 4
            and bytes(data[:2]) == MAGIC_RESULT_DATA)


@pytest.mark.parametrize("bus", ["i2c", "spi"])
def test_slave_late_with_the_result_data(sim, boards, bus):
    """Our slave is descheduled 60 ms between the RESULT_DATA request and its send: our master
    has given up the read (30 ms of a slave not ready) and writes its next RESULT_HEADER
    request while the slave's RESULT_DATA send (5 s long timeout) is armed. On I2C a slave
    in a send call does not acknowledge writes: the master's writes were refused, attempt
    after attempt, until the slave's send timed out 5 s later (the call and the next three
    returned None). The master now ends such a send with a one-byte read, which the slave
    counts as a failed send: both retry the result phase."""
    stall = sim.stall("slave", is_result_data, ms=60, count=3)
    sizes = [5, 40, 17, 0, 8, 3]
    master = start_pair(sim, boards, bus, [{"op": "calls", "sizes": sizes}])
    (result,) = master.results(timeout=90)
    assert_all_ok(result, len(sizes))
    assert stall.done == 3


def test_spi_slave_late_for_a_reference_master_read(sim, boards):
    """Our SPI slave is descheduled 6 ms between the RESULT_DATA request and its send, while
    a reference-like master (100 us lead, no realignment: the Python subclass) is already
    reading the 2004-byte RESULT_DATA (16 ms on the wire). Armed then, the slave would shift
    out the packet from the middle of that transfer: the master reads 0xFF then the packet's
    start, fails it and writes its next request, which completes the slave's send: that ended
    OK, the slave moved on and the call returned None. The slave must see the master's
    request in what was clocked in during its send, and fail the send: both sides then try
    the result phase again."""
    stall = sim.stall("slave", is_result_data, ms=6, count=3)
    slave = boards(sim, "slave", "spi", "slave")
    slave.wait_for("ready")
    master = boards(sim, "master", "spi", "master", "python", timing=50,
                    plan=[{"op": "calls", "name": "size", "sizes": [2000] * 3}])
    (result,) = master.results(timeout=90)
    assert_all_ok(result, 3)
    assert stall.done == 3
    # The stall did put the slave's send in the middle of the master's read (at least once:
    # a master that is itself late to its read finds the slave armed).
    with sim.cond:
        assert any("armed mid-transfer" in what for _, _, what in sim.log)


MAGIC_COMMAND_DATA = b"\xd1\xab"


def is_command_data_ack(op, data, args=None):
    """A slave's COMMAND_DATA ack (an I2C slave send, an SPI slave call shifting it out)."""
    return (op in (bp.OP_I2C_SLAVE_SEND, bp.OP_SPI_SLAVE_XFER) and len(data) == 4
            and bytes(data[:2]) == MAGIC_COMMAND_DATA)


def test_i2c_slave_late_with_the_command_data_ack(sim, boards):
    """Our slave is descheduled 60 ms between COMMAND_DATA and its ack (traced under load: 40
    ms). The ack is the slave's commit point (then it holds the result and answers only
    RESULT_HEADER requests). The master polls a slave that is not ready for 30 ms, then
    writes COMMAND_HEADER again; on I2C that write is refused while the slave's late ack send
    is armed, and the one-byte read that ends a stale slave send makes the slave fail the ack
    and stay in its command phase: the calls succeed. (On SPI the master's next read takes
    the late ack and both sides wait out their phases: see tests/bus/soak.py and the bus
    notes in README.md.)"""
    stall = sim.stall("slave", is_command_data_ack, ms=60, count=3)
    sizes = [5, 40, 17, 0, 8, 3]
    master = start_pair(sim, boards, "i2c", [{"op": "calls", "sizes": sizes}])
    (result,) = master.results(timeout=90)
    assert_all_ok(result, len(sizes))
    assert stall.done == 3


class AfterResultHeader:
    """Matches an SPI slave's first receive after each RESULT_HEADER it sends (where it waits
    for the RESULT_DATA request)."""

    def __init__(self):
        self.armed = False

    def __call__(self, op, data, args):
        if op != bp.OP_SPI_SLAVE_XFER:
            return False
        if len(data) == 8 and data[:2] == MAGIC_RESULT_HEADER:
            self.armed = True
            return False
        if self.armed and not data:
            self.armed = False
            return True
        return False


MAGIC_RESULT_HEADER = b"\x21\x90"


def test_spi_slave_misses_the_result_data_request(sim, boards):
    """Our SPI slave, with a short timeout longer than the master's (set_timing 50 ms against
    30 ms; a reference master has 3 ms), is descheduled 5 ms after its RESULT_HEADER: the
    master's RESULT_DATA request goes by while it is in no call (SPI has no acknowledge). The
    master then asks for RESULT_HEADER again every short timeout. The slave skips one such
    request (the copy of a request it answered late, whose RESULT_DATA request follows), but
    must answer the next: it skipped them all, its wait never timed out, and the call returned
    None (RECV_TIMEOUT: RESULT_HEADER)."""
    stall = sim.stall("slave", AfterResultHeader(), ms=5, count=3)
    slave = boards(sim, "slave", "spi", "slave", timing=50)
    slave.wait_for("ready")
    sizes = [5, 40, 17, 0, 8, 3]
    master = boards(sim, "master", "spi", "master", plan=[{"op": "calls", "sizes": sizes}])
    (result,) = master.results(timeout=90)
    assert_all_ok(result, len(sizes))
    assert stall.done == 3
