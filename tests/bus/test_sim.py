"""The simulator itself: each hard property of a real bus, checked with raw links (CPython
threads acting as boards), so that the transport tests above it test something real."""
import struct
import threading
import time

import pytest

import busproto as bp
from sim import Simulator, can_frame_bits, i2c_transfer_time

@pytest.fixture
def sim():
    simulator = Simulator().start()
    yield simulator
    simulator.stop()


def board(sim, name):
    host, port = sim.address.split(":")
    return bp.Link(host, int(port), name)


def in_thread(fn, *args):
    out = {}

    def run():
        out["result"] = fn(*args)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


# ---- I2C ----

def test_i2c_master_write_nacked_unless_slave_in_a_call(sim):
    master, slave = board(sim, "master"), board(sim, "slave")
    assert master.request(bp.OP_I2C_INIT, 2, bp.I2C_MASTER, 100000)[0] == 0
    assert slave.request(bp.OP_I2C_INIT, 2, bp.I2C_SLAVE, 0x12)[0] == 0
    # Slave configured but not inside recv/send: no ACK.
    assert master.request(bp.OP_I2C_WRITE, 2, 0x12, 0, b"abcd")[0] == bp.ENODEV
    # Nobody at that address at all.
    assert master.request(bp.OP_I2C_WRITE, 2, 0x13, 0, b"abcd")[0] == bp.ENODEV
    thread, out = in_thread(slave.request, bp.OP_I2C_SLAVE_RECV, 2, 4, 2000)
    for _ in range(200):  # until the slave's call is in place
        status, acked, _ = master.request(bp.OP_I2C_WRITE, 2, 0x12, 0, b"abcd")
        if status == 0:
            break
        time.sleep(0.002)
    assert (status, acked) == (0, 4)
    thread.join(5)
    assert out["result"] == (0, 4, bytearray(b"abcd"))


def test_i2c_read_of_a_receiving_slave_is_all_ff_and_takes_nothing(sim):
    master, slave = board(sim, "master"), board(sim, "slave")
    master.request(bp.OP_I2C_INIT, 2, bp.I2C_MASTER, 100000)
    slave.request(bp.OP_I2C_INIT, 2, bp.I2C_SLAVE, 0x12)
    thread, out = in_thread(slave.request, bp.OP_I2C_SLAVE_RECV, 2, 3, 2000)
    time.sleep(0.1)
    assert master.request(bp.OP_I2C_READ, 2, 0x12, 5) == (0, 5, bytearray(b"\xff" * 5))
    # The slave still waits for its bytes.
    assert master.request(bp.OP_I2C_WRITE, 2, 0x12, 0, b"xyz")[:2] == (0, 3)
    thread.join(5)
    assert out["result"][2] == bytearray(b"xyz")


def test_i2c_length_mismatches_fail_as_the_hal_does(sim):
    master, slave = board(sim, "master"), board(sim, "slave")
    master.request(bp.OP_I2C_INIT, 2, bp.I2C_MASTER, 100000)
    slave.request(bp.OP_I2C_INIT, 2, bp.I2C_SLAVE, 0x12)
    # Master writes fewer bytes than the slave waits for: the slave's receive fails.
    thread, out = in_thread(slave.request, bp.OP_I2C_SLAVE_RECV, 2, 8, 2000)
    time.sleep(0.1)
    assert master.request(bp.OP_I2C_WRITE, 2, 0x12, 0, b"abc")[:2] == (0, 3)
    thread.join(5)
    assert out["result"][0] == bp.EIO
    # Master writes more than the slave takes: only the slave's count is acknowledged.
    thread, out = in_thread(slave.request, bp.OP_I2C_SLAVE_RECV, 2, 2, 2000)
    time.sleep(0.1)
    assert master.request(bp.OP_I2C_WRITE, 2, 0x12, 0, b"abcdef")[:2] == (0, 2)
    thread.join(5)
    assert out["result"] == (0, 2, bytearray(b"ab"))
    # Master reads past the slave's data: 0xFF after it.
    thread, out = in_thread(slave.request, bp.OP_I2C_SLAVE_SEND, 2, 0, 2000, b"hi")
    time.sleep(0.1)
    assert master.request(bp.OP_I2C_READ, 2, 0x12, 4)[2] == bytearray(b"hi\xff\xff")
    thread.join(5)
    assert out["result"][0] == 0
    # Master reads fewer bytes than the slave sends: the slave's send fails.
    thread, out = in_thread(slave.request, bp.OP_I2C_SLAVE_SEND, 2, 0, 2000, b"hello")
    time.sleep(0.1)
    assert master.request(bp.OP_I2C_READ, 2, 0x12, 2)[2] == bytearray(b"he")
    thread.join(5)
    assert out["result"][0] == bp.EIO


def test_i2c_slave_call_times_out_without_a_master(sim):
    slave = board(sim, "slave")
    slave.request(bp.OP_I2C_INIT, 2, bp.I2C_SLAVE, 0x12)
    start = time.monotonic()
    assert slave.request(bp.OP_I2C_SLAVE_RECV, 2, 4, 30)[0] == bp.ETIMEDOUT
    assert 0.025 <= time.monotonic() - start < 1.0


def test_i2c_pacing_is_100_khz(sim):
    master, slave = board(sim, "master"), board(sim, "slave")
    master.request(bp.OP_I2C_INIT, 2, bp.I2C_MASTER, 100000)
    slave.request(bp.OP_I2C_INIT, 2, bp.I2C_SLAVE, 0x12)
    n = 2000
    thread, out = in_thread(slave.request, bp.OP_I2C_SLAVE_RECV, 2, n, 5000)
    time.sleep(0.1)
    start = time.monotonic()
    assert master.request(bp.OP_I2C_WRITE, 2, 0x12, 0, bytes(n))[:2] == (0, n)
    elapsed = time.monotonic() - start
    thread.join(5)
    wire = i2c_transfer_time(n, 100000)  # 0.18 s
    assert wire <= elapsed < wire + 0.5


def test_i2c_slave_hal_timeout_cuts_a_long_transfer(sim):
    master, slave = board(sim, "master"), board(sim, "slave")
    master.request(bp.OP_I2C_INIT, 2, bp.I2C_MASTER, 100000)
    slave.request(bp.OP_I2C_INIT, 2, bp.I2C_SLAVE, 0x12)
    # 2000 bytes take 0.18 s at 100 kHz; the slave's call gives up 100 ms after it started.
    thread, out = in_thread(slave.request, bp.OP_I2C_SLAVE_RECV, 2, 2000, 100)
    time.sleep(0.02)
    status, acked, _ = master.request(bp.OP_I2C_WRITE, 2, 0x12, 0, bytes(2000))
    thread.join(5)
    assert out["result"][0] == bp.ETIMEDOUT
    assert status == 0 and 0 < acked < 2000


# ---- SPI ----

def spi_pair(sim):
    master, slave = board(sim, "master"), board(sim, "slave")
    master.request(bp.OP_SPI_INIT, 2, bp.SPI_MASTER | 1 << 8, 1000000)
    slave.request(bp.OP_SPI_INIT, 2, bp.SPI_SLAVE | 1 << 8, 0)
    master.request(bp.OP_PIN_INIT, 1, 1, 0, b"P3")
    return master, slave


def test_spi_slave_hears_only_while_cs_low_and_armed(sim):
    master, slave = spi_pair(sim)
    # Not armed: the master reads 0xFF and nothing is kept for later.
    master.request(bp.OP_PIN_SET, 0, 0, 0, b"P3")
    assert master.request(bp.OP_SPI_MASTER_XFER, 2, 0, 0, b"lost")[2] == bytearray(b"\xff" * 4)
    master.request(bp.OP_PIN_SET, 1, 0, 0, b"P3")
    thread, out = in_thread(slave.request, bp.OP_SPI_SLAVE_XFER, 2, 4, 2000, b"WXYZ")
    time.sleep(0.1)
    # Armed but CS high: unheard.
    assert master.request(bp.OP_SPI_MASTER_XFER, 2, 0, 0, b"nope")[2] == bytearray(b"\xff" * 4)
    master.request(bp.OP_PIN_SET, 0, 0, 0, b"P3")
    assert master.request(bp.OP_SPI_MASTER_XFER, 2, 0, 0, b"abcd")[2] == bytearray(b"WXYZ")
    master.request(bp.OP_PIN_SET, 1, 0, 0, b"P3")
    thread.join(5)
    assert out["result"] == (0, 4, bytearray(b"abcd"))


def test_spi_slave_call_fills_across_transfers_like_dma(sim):
    master, slave = spi_pair(sim)
    thread, out = in_thread(slave.request, bp.OP_SPI_SLAVE_XFER, 2, 6, 2000, b"")
    time.sleep(0.1)
    master.request(bp.OP_PIN_SET, 0, 0, 0, b"P3")
    master.request(bp.OP_SPI_MASTER_XFER, 2, 0, 0, b"abc")
    assert "result" not in out
    master.request(bp.OP_SPI_MASTER_XFER, 2, 0, 0, b"defgh")
    thread.join(5)
    assert out["result"] == (0, 6, bytearray(b"abcdef"))


def test_spi_slave_armed_mid_transfer_gets_the_tail(sim):
    master, slave = spi_pair(sim)
    master.request(bp.OP_PIN_SET, 0, 0, 0, b"P3")
    n = 20000  # 160 ms at 1 MHz
    thread, out = in_thread(master.request, bp.OP_SPI_MASTER_XFER, 2, 0, 0, bytes(range(256)) * (n // 256))
    time.sleep(0.08)
    status, got, data = slave.request(bp.OP_SPI_SLAVE_XFER, 2, 100, 2000, b"")
    thread.join(5)
    assert status == 0 and got == 100
    first = data[0]
    assert data != bytearray(range(100)), "a slave armed late must not see the start"
    assert all(data[i] == (first + i) & 0xFF for i in range(100))


def test_spi_wrong_clock_mode_garbles(sim):
    master, slave = board(sim, "master"), board(sim, "slave")
    master.request(bp.OP_SPI_INIT, 2, bp.SPI_MASTER | 1 << 8, 1000000)
    slave.request(bp.OP_SPI_INIT, 2, bp.SPI_SLAVE, 0)  # polarity 0
    master.request(bp.OP_PIN_INIT, 1, 0, 0, b"P3")
    thread, out = in_thread(slave.request, bp.OP_SPI_SLAVE_XFER, 2, 4, 2000, b"")
    time.sleep(0.1)
    master.request(bp.OP_SPI_MASTER_XFER, 2, 0, 0, b"abcd")
    thread.join(5)
    assert out["result"][0] == 0 and out["result"][2] != bytearray(b"abcd")


def test_spi_pacing_is_1_mhz(sim):
    master, slave = spi_pair(sim)
    master.request(bp.OP_PIN_SET, 0, 0, 0, b"P3")
    start = time.monotonic()
    master.request(bp.OP_SPI_MASTER_XFER, 2, 0, 0, bytes(25000))  # 0.2 s
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 0.7


# ---- CAN ----

def can_node(sim, name, fifo_filter=(0x7FF,)):
    node = board(sim, name)
    node.request(bp.OP_CAN_INIT, 2, 250000, bp.CAN_NORMAL)
    params = [bp.CAN_LIST16] + list(fifo_filter) * (4 // len(fifo_filter))
    node.request(bp.OP_CAN_FILTER, 2, 0, 0, struct.pack("<%dI" % len(params), *params))
    return node


def test_can_frames_reach_only_matching_filters(sim):
    a, b, c = can_node(sim, "a"), can_node(sim, "b"), can_node(sim, "c", (0x123,))
    assert a.request(bp.OP_CAN_SEND, 2, 0x7FF, 100, b"12345678")[0] == 0
    assert b.request(bp.OP_CAN_RECV, 2, 0, 100) == (0, 0x7FF, bytearray(b"12345678"))
    assert c.request(bp.OP_CAN_RECV, 2, 0, 50)[0] == bp.ETIMEDOUT
    assert a.request(bp.OP_CAN_SEND, 2, 0x123, 100, b"x")[0] == 0
    assert c.request(bp.OP_CAN_RECV, 2, 0, 100) == (0, 0x123, bytearray(b"x"))
    assert b.request(bp.OP_CAN_ANY, 2, 0)[1] == 0
    # The sender does not hear itself.
    assert a.request(bp.OP_CAN_ANY, 2, 0)[1] == 0


def test_can_rejects_long_frames_and_extended_ids(sim):
    a = can_node(sim, "a")
    assert a.request(bp.OP_CAN_SEND, 2, 0x7FF, 100, b"123456789")[0] == bp.EINVAL
    assert a.request(bp.OP_CAN_SEND, 2, 0x800, 100, b"1")[0] == bp.EINVAL


def test_can_fifo_overruns_and_mailboxes_fill():
    sim = Simulator(can_fifo_depth=3).start()
    try:
        check_fifo_overruns_and_mailboxes(sim)
    finally:
        sim.stop()


def check_fifo_overruns_and_mailboxes(sim):
    a = can_node(sim, "a")
    # Alone on the bus nothing acknowledges: frames stay in the three mailboxes, and a
    # fourth send finds them all busy.
    results = [a.request(bp.OP_CAN_SEND, 2, 0x7FF, 0, bytes([i]) * 8)[0] for i in range(4)]
    assert results == [0, 0, 0, bp.ETIMEDOUT]
    assert a.request(bp.OP_CAN_SEND, 2, 0x7FF, 20, b"x")[0] == bp.ETIMEDOUT
    b = can_node(sim, "b")
    for i in range(3, 8):  # blocking sends wait for a mailbox, then for their frame
        assert a.request(bp.OP_CAN_SEND, 2, 0x7FF, 100, bytes([i]) * 8)[0] == 0
    time.sleep(0.05)
    got = []
    while True:
        status, _, data = b.request(bp.OP_CAN_RECV, 2, 0, 0)
        if status:
            break
        got.append(data[0])
    assert got == [0, 1, 2]  # a FIFO of three frames; the rest overran
    assert sim.stats["can_overruns"] == 5


def test_can_frame_without_a_receiver_waits_in_its_mailbox(sim):
    a = can_node(sim, "a")
    assert a.request(bp.OP_CAN_SEND, 2, 0x7FF, 0, b"early")[0] == 0
    time.sleep(0.05)
    b = can_node(sim, "b")
    assert b.request(bp.OP_CAN_RECV, 2, 0, 200) == (0, 0x7FF, bytearray(b"early"))


def test_can_pacing_is_250_kbit(sim):
    a, b = can_node(sim, "a"), can_node(sim, "b")
    bits = sum(can_frame_bits(0x7FF, bytes([i]) * 8) for i in range(100))
    start = time.monotonic()
    for i in range(100):
        assert a.request(bp.OP_CAN_SEND, 2, 0x7FF, 1000, bytes([i]) * 8)[0] == 0
        assert b.request(bp.OP_CAN_RECV, 2, 0, 1000)[0] == 0
    elapsed = time.monotonic() - start
    assert bits / 250000 <= elapsed < bits / 250000 + 1.0


def test_can_frame_bits_include_stuffing():
    # Unstuffed, a standard 8-byte frame is 47 + 64 bits; stuffing adds at most one bit in
    # four of the 98 stuffed bits. Long runs (id 0x7FF, zero data) stuff more than
    # alternating bits.
    for can_id, data in ((0x7FF, bytes(8)), (0x555, b"\x55" * 8), (0x123, b"\xff" * 8)):
        assert 47 + 64 <= can_frame_bits(can_id, data) <= 47 + 64 + 97 // 4
    assert can_frame_bits(0x7FF, bytes(8)) > can_frame_bits(0x555, b"\x55" * 8) + 8


# ---- faults and boards that go away ----

def test_faults_drop_and_corrupt_at_their_rates(sim):
    a, b = can_node(sim, "a"), can_node(sim, "b")
    faults = sim.fault("can", 2)
    faults.drop, faults.corrupt = 0.2, 0.2
    received = []
    for i in range(200):
        a.request(bp.OP_CAN_SEND, 2, 0x7FF, 1000, b"\x00" * 8)
        status, _, data = b.request(bp.OP_CAN_RECV, 2, 0, 20)
        if status == 0:
            received.append(bytes(data))
    assert 20 < faults.dropped < 70
    assert 200 - len(received) == faults.dropped
    damaged = sum(1 for data in received if data != b"\x00" * 8)
    assert damaged == faults.corrupted and damaged > 10


def test_a_stalled_board_is_held_before_the_matching_calls_only(sim):
    a, b = can_node(sim, "a"), can_node(sim, "b")
    stall = sim.stall("a", lambda op, data, args: op == bp.OP_CAN_SEND and data[:1] == b"\x01", ms=150, count=2)
    took, done = [], []
    for first in (0, 1, 1, 1):
        start = time.monotonic()
        a.request(bp.OP_CAN_SEND, 2, 0x7FF, 0, bytes([first, 2]))
        took.append(time.monotonic() - start)
        done.append(stall.done)
    # Not the first frame (no match), the next two, not the last (count reached).
    assert done == [0, 1, 2, 2]
    assert took[1] >= 0.15 and took[2] >= 0.15, took
    # b is never stalled, and every frame went through.
    for _ in range(4):
        assert b.request(bp.OP_CAN_RECV, 2, 0, 1000)[0] == 0


def test_a_board_that_goes_away_releases_its_pins_and_address(sim):
    master, slave = board(sim, "master"), board(sim, "slave")
    slave.request(bp.OP_I2C_INIT, 2, bp.I2C_SLAVE, 0x12)
    slave.request(bp.OP_PIN_INIT, 1, 0, 0, b"P3")
    assert master.request(bp.OP_PIN_GET, 0, 0, 0, b"P3")[1] == 0
    slave.sock.close()
    time.sleep(0.1)
    assert master.request(bp.OP_PIN_GET, 0, 0, 0, b"P3")[1] == 1
    assert 0x12 not in sim.i2c[2].slaves
