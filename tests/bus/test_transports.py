"""The rpc I2C, SPI and CAN classes on the simulated buses (tests/bus/sim.py), at the buses'
nominal speeds (100 kHz I2C, 1 MHz SPI, 250 kbit/s CAN), between MicroPython processes."""
import time

import pytest

from sim import can_frame_bits, i2c_transfer_time, spi_transfer_time

BUSES = ["i2c", "spi", "can"]
SMALL = [0, 1, 7, 8, 9, 16, 63, 255, 256, 1000]
BIG = 65536
BIG_TIMEOUT = 20000  # ms: 64 KiB take 5.9 s on 100 kHz I2C


def wire_seconds(bus, n):
    """Wire time of one n-byte data packet (n + 4 bytes) at the bus's nominal rate."""
    if bus == "i2c":
        return i2c_transfer_time(n + 4, 100000)
    if bus == "spi":
        return spi_transfer_time(n + 4, 1000000)
    frames = (n + 4 + 7) // 8
    return frames * can_frame_bits(0x7FF, b"\x55" * 8) / 250000


def start_pair(sim, boards, bus, plan, slave_impl="native", master_impl="native", timing=None,
               send_timeout=None):
    slave = boards(sim, "slave", bus, "slave", slave_impl, timing=timing, send_timeout=send_timeout)
    slave.wait_for("ready")
    return boards(sim, "master", bus, "master", master_impl, plan=plan, timing=timing)


def assert_all_ok(result, count):
    assert result["ok"] == count, result
    assert result["none"] == 0 and result["wrong"] == 0, result


def assert_python_peer_ok(result, count):
    """Against a peer whose transport is Python code per packet (fixed 100 us lead, no
    recovery of a slave that starts late, as the reference): never wrong data, and at most
    two calls of `count` lost to timing on a loaded host. Our classes on both sides lose
    none (test_500_calls_in_a_row)."""
    assert result["wrong"] == 0 and result["ok"] + result["none"] == count, result
    assert result["ok"] >= count - 2, result


@pytest.mark.parametrize("bus", BUSES)
def test_calls_of_every_size_and_unknown_names(sim, boards, bus):
    plan = [
        {"op": "calls", "sizes": SMALL},
        {"op": "calls", "name": "size", "sizes": [BIG], "recv_timeout": BIG_TIMEOUT},
        {"op": "calls", "name": "check", "sizes": [BIG], "send_timeout": BIG_TIMEOUT},
        {"op": "unknown"},
        {"op": "calls", "sizes": [5]},
    ]
    # The slave hands over a 64 KiB result for up to 20 s (loop's send_timeout), as the master
    # waits for it (recv_timeout): with the default 1 s, one failed attempt of a 0.5 s (SPI)
    # to 5.9 s (I2C) result packet would end the call.
    master = start_pair(sim, boards, bus, plan, send_timeout=BIG_TIMEOUT)
    small, big_result, big_argument, unknown, after = master.results(timeout=90)
    assert_all_ok(small, len(SMALL))
    assert_all_ok(big_result, 1)
    assert_all_ok(big_argument, 1)
    # An unregistered name answers an empty result, and the link stays in step.
    assert unknown["result"] == []
    assert_all_ok(after, 1)
    # The timing profile was in force: 64 KiB took at least their wire time.
    assert big_result["ms"][0] / 1000 >= wire_seconds(bus, BIG)
    assert big_argument["ms"][0] / 1000 >= wire_seconds(bus, BIG)


@pytest.mark.parametrize("bus", BUSES)
def test_500_calls_in_a_row(sim, boards, bus):
    sizes = [n % 48 for n in range(100)]
    master = start_pair(sim, boards, bus, [{"op": "calls", "sizes": sizes, "repeat": 5}])
    (result,) = master.results(timeout=150)
    assert_all_ok(result, 500)


def test_can_call_poll_returns_while_the_call_waits(sim, boards):
    """CAN receives frame by frame, so the non-blocking call_poll() does the I/O possible now
    and returns False while the slave's answer is on its way (I2C and SPI move whole packets:
    there it blocks per packet)."""
    sizes = [0, 9, 300, 2000]
    master = start_pair(sim, boards, "can", [{"op": "calls_polled", "sizes": sizes}])
    (result,) = master.results(timeout=60)
    assert_all_ok(result, len(sizes))
    # 2000 B take 70 ms on 250 kbit/s CAN: call_poll() returned before they were in.
    assert result["waits"] >= len(sizes), result


@pytest.mark.parametrize("bus", BUSES)
def test_streams_both_ways(sim, boards, bus):
    # The readers ask for a queue depth of 4. On I2C and SPI the writer must clamp it to 1:
    # a writer sending a second frame before it reads the first ack is not in a receive call
    # when the reader's ack comes, the ack is lost and the stream stops short (every frame is
    # required on I2C and CAN).
    plan = [
        {"op": "stream_from_slave", "frames": 40, "length": 200, "queue_depth": 4},
        {"op": "stream_to_slave", "frames": 40, "length": 300, "queue_depth": 4},
        {"op": "calls", "sizes": [3]},
    ]
    master = start_pair(sim, boards, bus, plan)
    from_slave, to_slave, after = master.results(timeout=90)
    assert from_slave["setup"] and to_slave["setup"], (from_slave, to_slave)
    report = to_slave["report"]
    assert report is not None, to_slave  # the slave answered after the stream
    if bus == "spi":
        # SPI has no flow control: a reader that gets into its next receive later than the
        # writer's lead (1 ms before every stream packet) misses a header, frame or ack, and
        # the stream ends early (seen on a loaded host: peers 2 ms late, 1 run in 5). What
        # arrived must be right, and the link must work after it.
        assert 1 <= from_slave["frames"] == from_slave["good"] <= 40, from_slave
        assert 1 <= report["frames"] == report["good"] <= to_slave["sent"] <= 40, to_slave
    else:
        assert from_slave["frames"] == 40 and from_slave["good"] == 40, from_slave
        assert to_slave["sent"] == 40, to_slave
        assert report == {"frames": 40, "good": 40}, to_slave
    assert_all_ok(after, 1)


@pytest.mark.parametrize("bus", BUSES)
@pytest.mark.parametrize("overridden", ["master", "slave"])
def test_subclass_overrides_talk_to_the_native_classes(sim, boards, bus, overridden):
    """A subclass of rpc_master/rpc_slave with Python get_bytes/put_bytes over the same bus
    (the documented way to add a transport) against our native class in the other role."""
    sizes = [0, 1, 8, 9, 100, 700]
    master_impl = "python" if overridden == "master" else "native"
    slave_impl = "python" if overridden == "slave" else "native"
    # Python code per packet reacts slower than C (and much slower on a loaded host).
    python_short_ms = 50
    slave = boards(sim, "slave", bus, "slave", slave_impl,
                   timing=python_short_ms if overridden == "slave" else None)
    slave.wait_for("ready")
    master = boards(sim, "master", bus, "master", master_impl,
                    plan=[{"op": "calls", "sizes": sizes, "repeat": 5}, {"op": "unknown"}],
                    timing=python_short_ms if overridden == "master" else None)
    calls, unknown = master.results(timeout=90)
    assert_python_peer_ok(calls, 5 * len(sizes))
    assert unknown["result"] == []


@pytest.mark.parametrize("bus", BUSES)
@pytest.mark.parametrize("ours", ["master", "slave"])
def test_interoperates_with_the_reference_peer(sim, boards, bus, ours):
    """Our class in one role, bench/ref_rpc.py (an independent pure-Python implementation of
    docs/PROTOCOL.md) with the same bus code as the override peer in the other: byte-compatible
    calls, unknown names and streams both ways."""
    ref_short_ms = 50  # a pure-Python peer on a loaded host is no real-time board
    slave = boards(sim, "slave", bus, "slave", "native" if ours == "slave" else "ref",
                   timing=None if ours == "slave" else ref_short_ms)
    slave.wait_for("ready")
    plan = [
        {"op": "calls", "sizes": [0, 1, 8, 9, 100, 1000], "repeat": 3},
        {"op": "unknown"},
        {"op": "stream_from_slave", "frames": 10, "length": 100, "queue_depth": 1},
        {"op": "stream_to_slave", "frames": 10, "length": 100, "queue_depth": 1},
        {"op": "calls", "sizes": [3]},
    ]
    master = boards(sim, "master", bus, "master", "native" if ours == "master" else "ref",
                    plan=plan, timing=None if ours == "master" else ref_short_ms)
    calls, unknown, from_slave, to_slave, after = master.results(timeout=120)
    assert_python_peer_ok(calls, 18)
    assert unknown["result"] == []
    report = to_slave["report"]
    assert report is not None, to_slave  # the slave answered after the stream
    if bus == "spi":
        # A reference-like SPI writer sends a frame 100 us after its header with no way to
        # know that the reader heard it (SPI has no acknowledge, and a stream frame has no
        # crc): a reader that gets into its receive late ends the stream early, or takes a
        # frame's tail plus the next bytes as a frame. The link works after it; our classes on
        # both sides deliver every frame right (test_streams_both_ways).
        assert report["frames"] <= to_slave["sent"] and from_slave["frames"] <= 10
    else:
        assert from_slave["frames"] == 10 and from_slave["good"] == 10, from_slave
        assert to_slave["sent"] == 10 and report == {"frames": 10, "good": 10}, to_slave
    assert_all_ok(after, 1)


MISSING_SCRIPT = """
import rpc
try:
    rpc.rpc_%s()
    print("built")
except OSError as e:
    print("missing:", e)
"""


@pytest.mark.parametrize("cls,hide,expect", [
    ("i2c_master", "machine.I2C,pyb", "machine.I2C or pyb.I2C"),
    ("i2c_slave", "pyb", "pyb.I2C"),
    ("spi_master", "machine.SPI,pyb", "machine.SPI"),
    ("spi_slave", "pyb.SPI", "pyb.SPI"),
    ("can_master", "pyb", "pyb.CAN"),
    ("can_slave", "pyb.CAN", "pyb.CAN"),
])
def test_a_port_without_the_bus_says_what_is_missing(sim, boards, cls, hide, expect):
    board = boards(sim, "board", "i2c", "x", hide=hide, script=MISSING_SCRIPT % cls)
    line = board.wait_for(":", timeout=20)
    assert line.startswith("missing:") and expect in line and "rpc_" + cls.split("_")[0] in line, line


def test_i2c_master_falls_back_to_pyb_without_machine_i2c(sim, boards):
    slave = boards(sim, "slave", "i2c", "slave")
    slave.wait_for("ready")
    master = boards(sim, "master", "i2c", "master", plan=[{"op": "calls", "sizes": [0, 10, 300]}],
                    hide="machine.I2C")
    (result,) = master.results(timeout=60)
    assert_all_ok(result, 3)
