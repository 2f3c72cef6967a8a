"""A faithful simulator of I2C, SPI and CAN buses between processes (CPython, stdlib only).

Each MicroPython process under test is one board. Its stand-in `machine`/`pyb` modules
(tests/bus/stand_in/) open one TCP loopback link to this simulator and ask it to move bytes
(the link's format is in stand_in/busproto.py). The simulator keeps what makes real buses
hard:

- I2C: a master transfer is acknowledged only if the slave with that address is inside a
  receive or send call at that moment; otherwise the address is not acknowledged and the
  master's call raises OSError(ENODEV). A master read while the slave waits in a receive
  call reads all 0xFF (nobody drives SDA). Lengths are checked as the hardware does: a
  slave receive that gets fewer bytes than asked for fails, a master write longer than the
  slave's receive is cut off (fewer bytes acknowledged), a master read longer than the
  slave's send reads 0xFF past the end and the slave's send fails if the master stops early.
- SPI: the slave sees bytes only while its chip select net is low and only while it is
  inside a receive/send call (the DMA is armed); a slave that arms during a transfer catches
  only its tail. A full-duplex transfer returns what the slave had queued, else 0xFF.
  A slave call keeps filling across transfers until it has all its bytes (as DMA does).
- CAN: frames carry an 11-bit id and at most 8 bytes, take their exact wire time (bit
  stuffing included), wait in three transmit mailboxes, are acknowledged only when another
  node is on the bus (else they stay in the mailbox and are retried), and reach only the
  nodes whose filters match, through a receive FIFO of `can_fifo_depth` frames that overruns.
- Timing: with `pacing` on, every transfer takes its wire time at the bus's clock
  (100 kHz I2C, 1 MHz SPI, 250 kbit/s CAN by default, or what the master configured).
- Faults: per bus, dropped and corrupted transfers/frames at given rates (`fault()`); a
  board stalled just before chosen bus calls (`stall()`: a process descheduled on a loaded
  host, at the moment that hurts); the tests restart processes themselves (a killed process
  leaves the bus cleanly).

Run standalone: `python tests/bus/sim.py [--no-pacing]` prints OMV_BUS_SIM=host:port.
"""
import collections
import os
import random
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "stand_in"))
import busproto as bp  # noqa: E402

I2C_DEFAULT_FREQ = 100000
SPI_DEFAULT_BAUDRATE = 1000000
CAN_DEFAULT_BITRATE = 250000
CAN_TX_MAILBOXES = 3
CAN_ACK_TO_EOF_BITS = 13  # CRC delimiter, ACK slot and delimiter, 7 EOF, 3 interframe
IDLE_BYTE = 0xFF


def i2c_transfer_time(nbytes, freq):
    """Start, address byte, nbytes, stop: 9 clocks a byte (8 bits and the ACK)."""
    return (2 + 9 * (nbytes + 1)) / freq


def spi_transfer_time(nbytes, baudrate):
    return 8 * nbytes / baudrate


def can_frame_bits(can_id, data):
    """Exact length in bits of a standard data frame, stuff bits and interframe space included."""
    bits = [0]  # SOF
    bits += [(can_id >> i) & 1 for i in range(10, -1, -1)]
    bits += [0, 0, 0]  # RTR, IDE, r0
    bits += [(len(data) >> i) & 1 for i in range(3, -1, -1)]
    for byte in data:
        bits += [(byte >> i) & 1 for i in range(7, -1, -1)]
    crc = 0
    for bit in bits:
        feedback = bit ^ ((crc >> 14) & 1)
        crc = (crc << 1) & 0x7FFF
        if feedback:
            crc ^= 0x4599
    bits += [(crc >> i) & 1 for i in range(14, -1, -1)]
    stuffed, run, last = 0, 0, None
    for bit in bits:
        stuffed += 1
        if bit == last:
            run += 1
        else:
            last, run = bit, 1
        if run == 5:  # a stuff bit of the opposite level, which starts a new run
            stuffed += 1
            last, run = 1 - bit, 1
    return stuffed + CAN_ACK_TO_EOF_BITS


class Faults:
    """Fault injection on one bus: probabilities per transfer (I2C, SPI) or frame (CAN).
    With `limit` set, faults stop after that many transfers or frames (a noisy spell)."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.drop = 0.0
        self.corrupt = 0.0
        self.limit = None
        self.seen = 0
        self.dropped = 0
        self.corrupted = 0

    def _active(self):
        return self.limit is None or self.seen <= self.limit

    def should_drop(self):
        self.seen += 1
        if self.drop and self._active() and self.rng.random() < self.drop:
            self.dropped += 1
            return True
        return False

    def maybe_corrupt(self, data):
        """Flip one random bit of data (a bytearray) in place, at the corrupt rate."""
        if self.corrupt and self._active() and len(data) and self.rng.random() < self.corrupt:
            data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
            self.corrupted += 1


class Stall:
    """A board that stalls `ms` milliseconds before each of its next `count` bus calls that
    `match(op, data, args)` accepts (op: a busproto OP_*, data: the bytes it writes, args:
    the request's a, b, c), as a process that the host deschedules right then. match sees
    every call of the board until `count` stalls are done. Counts the stalls in `done`."""

    def __init__(self, node_name, match, ms, count):
        self.node_name = node_name
        self.match = match
        self.ms = ms
        self.count = count
        self.done = 0


class SlaveCall:
    """A slave inside a receive/send call: what it waits for and how it ended."""

    def __init__(self, node, want, out, deadline):
        self.node = node
        self.want = want          # bytes to receive (I2C recv, SPI) or to send (I2C send)
        self.out = out            # bytes to send (I2C send, SPI), else None
        self.got = bytearray()
        self.deadline = deadline
        self.status = None        # None while waiting, then 0 or an errno
        self.done_at = 0.0


class I2CSlave:
    def __init__(self, node, addr):
        self.node = node
        self.addr = addr
        self.call = None
        self.kind = None  # "recv" or "send" while in a call


class I2CBus:
    def __init__(self):
        self.freq = I2C_DEFAULT_FREQ
        self.slaves = {}   # addr -> I2CSlave
        self.masters = set()


class SPISlave:
    def __init__(self, node, polarity, phase):
        self.node = node
        self.mode = (polarity, phase)
        self.call = None         # its SlaveCall while it is inside a receive/send call


class SPIBus:
    def __init__(self):
        self.baudrate = SPI_DEFAULT_BAUDRATE
        self.master_mode = None  # (polarity, phase) of the master
        self.masters = set()
        self.slaves = {}         # node -> SPISlave; each listens to its own chip select net
        self.active = None       # the master transfer on the wire: [start, end, mosi, miso,
                                 # byte_time, the SPISlave it reaches or None]


class CANDevice:
    def __init__(self, node, bitrate, mode):
        self.node = node
        self.bitrate = bitrate
        self.mode = mode
        self.filters = {}  # bank -> (mode, fifo, params)
        self.fifos = (collections.deque(), collections.deque())

    def accepts(self, can_id):
        """-> fifo index, or None when no filter matches (unmatched frames are rejected)."""
        for bank in sorted(self.filters):
            mode, fifo, params = self.filters[bank]
            if mode in (bp.CAN_LIST16, bp.CAN_LIST32, bp.CAN_DUAL):
                hit = can_id in params
            elif mode in (bp.CAN_MASK16, bp.CAN_MASK32, bp.CAN_MASK):
                hit = any((can_id & mask) == (ident & mask)
                          for ident, mask in zip(params[0::2], params[1::2]))
            elif mode == bp.CAN_RANGE:
                hit = len(params) >= 2 and params[0] <= can_id <= params[1]
            else:
                hit = False
            if hit:
                return fifo
        return None


class CANFrame:
    def __init__(self, sender, can_id, data, start, end):
        self.sender = sender
        self.can_id = can_id
        self.data = data
        self.start = start
        self.end = end


class CANBus:
    def __init__(self):
        self.devices = []
        self.inflight = []  # frames in transmit mailboxes, in wire order
        self.free_at = 0.0


class Simulator:
    """The buses, the pin nets between the boards, and one thread per connected board."""

    def __init__(self, pacing=True, seed=1, can_fifo_depth=64, i2c_idle_read_ff=False,
                 spi_cs_pins=None, time_scale=1.0):
        self.cond = threading.Condition()
        self.pacing = pacing
        self.time_scale = time_scale
        self.seed = seed
        self.can_fifo_depth = can_fifo_depth
        # A real STM32 slave that is not inside a call may still ACK its address and read
        # as 0xFF (clock stretching off); off by default: such a slave NACKs.
        self.i2c_idle_read_ff = i2c_idle_read_ff
        # The chip select net each SPI bus's slave listens to (both boards wire it by name);
        # by default the pin a slave board claimed as an input (P3 if none), so that several
        # slaves share a bus, one chip select each.
        self.spi_cs_pins = dict(spi_cs_pins or {})
        self.pin_inputs = {}  # node -> the last pin it set up as an input
        self.i2c = collections.defaultdict(I2CBus)
        self.spi = collections.defaultdict(SPIBus)
        self.can = collections.defaultdict(CANBus)
        self.pins = collections.defaultdict(dict)  # name -> {node: driven value}
        self.faults = {}
        self.stalls = []
        self.names = {}  # node -> the name it said hello with
        self.stats = collections.Counter()
        self.log = collections.deque(maxlen=4000)
        self.nodes = {}
        self._next_node = 1
        self._server = None
        self._threads = []
        self._stopping = False

    # ---- set-up ----
    def start(self):
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        thread = threading.Thread(target=self._accept_loop, name="bus-sim-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    @property
    def address(self):
        host, port = self._server.getsockname()
        return "%s:%d" % (host, port)

    def env(self, node_name):
        """Environment variables that point a process's stand-in modules at this simulator."""
        return {bp.ENV_ADDRESS: self.address, bp.ENV_NODE: node_name}

    def stop(self):
        self._stopping = True
        try:
            self._server.close()
        except OSError:
            pass
        with self.cond:
            for conn in list(self.nodes.values()):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.cond.notify_all()

    def fault(self, kind, bus=2):
        """The Faults of bus `kind` ("i2c", "spi", "can") number `bus`; set .drop/.corrupt."""
        key = (kind, bus)
        if key not in self.faults:
            self.faults[key] = Faults(hash(key) ^ self.seed)
        return self.faults[key]

    def stall(self, node_name, match, ms, count=1):
        """Stall board `node_name` before its next `count` bus calls that match (see Stall)."""
        stall = Stall(node_name, match, ms, count)
        with self.cond:
            self.stalls.append(stall)
        return stall

    def _stall_before(self, node, op, data, args):
        with self.cond:
            name = self.names.get(node)
            stall = next((s for s in self.stalls if s.node_name == name and s.done < s.count
                          and s.match(op, bytes(data), args)), None)
            if stall is None:
                return
            stall.done += 1
            self._trace(node, "stalled %d ms before op %d" % (stall.ms, op))
        time.sleep(stall.ms / 1000)

    def clear_faults(self):
        for faults in self.faults.values():
            faults.drop = faults.corrupt = 0.0

    # ---- time ----
    def now(self):
        return time.monotonic()

    def wire_time(self, seconds):
        return seconds * self.time_scale if self.pacing else 0.0

    def _wait_until(self, deadline, done=lambda: False):
        """Wait (releasing the lock) until deadline or done(); -> done()."""
        while not done():
            left = deadline - self.now()
            if left <= 0 or self._stopping:
                break
            self.cond.wait(left)
        return done()

    def _trace(self, node, what):
        self.log.append((round(self.now(), 6), node, what))

    # ---- connections ----
    def _accept_loop(self):
        while not self._stopping:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.cond:
                node = self._next_node
                self._next_node += 1
                self.nodes[node] = conn
            thread = threading.Thread(target=self._serve, args=(node, conn), daemon=True,
                                      name="bus-sim-node-%d" % node)
            thread.start()
            self._threads.append(thread)

    @staticmethod
    def _read_exactly(conn, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = conn.recv_into(view[got:])
            if not k:
                raise ConnectionError("closed")
            got += k
        return buf

    def _serve(self, node, conn):
        try:
            while True:
                op, a, b, c, n = struct.unpack(bp.REQUEST, self._read_exactly(conn, bp.REQUEST_LEN))
                data = self._read_exactly(conn, n) if n else bytearray()
                if self.stalls:
                    self._stall_before(node, op, data, (a, b, c))
                with self.cond:
                    try:
                        status, value, out = self._dispatch(node, op, a, b, c, data)
                    except (ValueError, KeyError, IndexError) as exc:
                        self._trace(node, "bad request op %d: %r" % (op, exc))
                        status, value, out = bp.EINVAL, 0, b""
                conn.sendall(struct.pack(bp.RESPONSE, status, value, len(out)) + bytes(out))
        except (ConnectionError, OSError):
            pass
        finally:
            with self.cond:
                self._leave(node)
                self.nodes.pop(node, None)
                self.cond.notify_all()
            conn.close()

    def _leave(self, node):
        """A board went away (process ended or killed): it stops driving anything."""
        self._trace(node, "left")
        for bus in self.i2c.values():
            bus.masters.discard(node)
            for addr in [a for a, s in bus.slaves.items() if s.node == node]:
                del bus.slaves[addr]
        for bus in self.spi.values():
            bus.masters.discard(node)
            bus.slaves.pop(node, None)
        for bus in self.can.values():
            now = self.now()
            bus.devices = [d for d in bus.devices if d.node != node]
            # Frames already on the wire finish; frames still waiting in its mailboxes vanish.
            bus.inflight = [f for f in bus.inflight if f.sender.node != node or f.start <= now]
        for drivers in self.pins.values():
            drivers.pop(node, None)

    def _dispatch(self, node, op, a, b, c, data):
        if op == bp.OP_HELLO:
            self.names[node] = data.decode(errors="replace")
            self._trace(node, "hello " + self.names[node])
            return 0, node, b""
        handler = self._handlers.get(op)
        if handler is None:
            return bp.EINVAL, 0, b""
        return handler(self, node, a, b, c, data)

    # ---- pins ----
    def pin_value(self, name):
        drivers = self.pins[name]
        if not drivers:
            return 1  # chip selects and the like are pulled up
        return min(drivers.values())

    def _pin_init(self, node, mode, value, _c, name):
        name = name.decode()
        if mode == 1:
            if value != bp.VALUE_NONE:
                self.pins[name][node] = 1 if value else 0
            else:
                self.pins[name].setdefault(node, 1)
        else:
            self.pins[name].pop(node, None)
            self.pin_inputs[node] = name
        self.cond.notify_all()
        return 0, self.pin_value(name), b""

    def _pin_set(self, node, value, _b, _c, name):
        name = name.decode()
        self.pins[name][node] = 1 if value else 0
        self._trace(node, "pin %s=%d" % (name, 1 if value else 0))
        self.cond.notify_all()
        return 0, 0, b""

    def _pin_get(self, node, _a, _b, _c, name):
        return 0, self.pin_value(name.decode()), b""

    # ---- I2C ----
    def _i2c_init(self, node, bus_id, mode, arg, _data):
        bus = self.i2c[bus_id]
        for addr in [a for a, s in bus.slaves.items() if s.node == node]:
            del bus.slaves[addr]
        bus.masters.discard(node)
        if mode == bp.I2C_MASTER:
            bus.masters.add(node)
            bus.freq = arg or I2C_DEFAULT_FREQ
        else:
            if not 0 <= arg <= 0x7F:
                return bp.EINVAL, 0, b""
            bus.slaves[arg] = I2CSlave(node, arg)
        self._trace(node, "i2c%d init mode %d arg %d" % (bus_id, mode, arg))
        return 0, 0, b""

    def _i2c_deinit(self, node, bus_id, _b, _c, _data):
        bus = self.i2c[bus_id]
        bus.masters.discard(node)
        for addr in [a for a, s in bus.slaves.items() if s.node == node]:
            del bus.slaves[addr]
        return 0, 0, b""

    def _i2c_slave_call(self, node, bus_id, kind, want, out, timeout_ms):
        bus = self.i2c[bus_id]
        slave = next((s for s in bus.slaves.values() if s.node == node), None)
        if slave is None:
            return bp.EINVAL, 0, b""
        call = SlaveCall(node, want, out, self.now() + timeout_ms / 1000)
        slave.call, slave.kind = call, kind
        self.cond.notify_all()
        self._wait_until(call.deadline, lambda: call.status is not None)
        if call.status is None:  # no master came: the HAL call times out
            if slave.call is call:
                slave.call = slave.kind = None
            return bp.ETIMEDOUT, 0, b""
        self._wait_until(call.done_at)
        return call.status, len(call.got), call.got if kind == "recv" else b""

    def _i2c_slave_recv(self, node, bus_id, nbytes, timeout_ms, _data):
        return self._i2c_slave_call(node, bus_id, "recv", nbytes, None, timeout_ms)

    def _i2c_slave_send(self, node, bus_id, _b, timeout_ms, data):
        return self._i2c_slave_call(node, bus_id, "send", len(data), bytes(data), timeout_ms)

    def _i2c_transfer(self, node, bus_id, addr, write, data, nbytes):
        """A master transfer; everything is decided at its start, as the slave's ACKs are."""
        bus = self.i2c[bus_id]
        faults = self.fault("i2c", bus_id)
        start = self.now()
        byte_time = self.wire_time(9 / bus.freq)
        slave = bus.slaves.get(addr)
        call = slave.call if slave else None
        self.stats["i2c_transfers"] += 1
        if faults.should_drop():
            self._trace(node, "i2c%d 0x%02x dropped" % (bus_id, addr))
            call = None
            slave = None
        if slave is None or call is None:
            if slave is not None and not write and self.i2c_idle_read_ff:
                end = start + self.wire_time(i2c_transfer_time(nbytes, bus.freq))
                self._wait_until(end)
                return 0, nbytes, bytes([IDLE_BYTE]) * nbytes
            self.stats["i2c_nack"] += 1
            self._wait_until(start + byte_time)  # the address byte goes out, then NACK
            return bp.ENODEV, 0, b""
        if write and slave.kind == "send":
            self.stats["i2c_nack"] += 1
            self._wait_until(start + byte_time)
            return bp.ENODEV, 0, b""
        if not write and slave.kind == "recv":
            # Addressed for a read while waiting to receive: nobody drives SDA.
            self.stats["i2c_idle_reads"] += 1
            self._wait_until(start + self.wire_time(i2c_transfer_time(nbytes, bus.freq)))
            return 0, nbytes, bytes([IDLE_BYTE]) * nbytes
        slave.call = slave.kind = None
        length = len(data) if write else nbytes
        # Bytes that fit before the slave's HAL timeout; past it the slave lets go.
        if byte_time > 0:
            fit = max(0, int((call.deadline - start) / byte_time) - 1)
        else:
            fit = length
        moved = min(length, call.want, fit)
        end = start + self.wire_time(i2c_transfer_time(moved, bus.freq))
        call.done_at = end
        if write:
            received = bytearray(data[:moved])
            faults.maybe_corrupt(received)
            call.got = received
            if moved < call.want:
                # STOP before the slave had all its bytes (or its timeout): the HAL call fails.
                call.status = bp.ETIMEDOUT if fit < min(length, call.want) else bp.EIO
            else:
                call.status = 0
            self.cond.notify_all()
            self._trace(node, "i2c%d write 0x%02x %d/%d bytes, slave wanted %d" %
                        (bus_id, addr, moved, length, call.want))
            self._wait_until(end)
            return 0, moved, b""
        readback = bytearray(call.out[:moved]) + bytes([IDLE_BYTE]) * (nbytes - moved)
        faults.maybe_corrupt(readback)
        call.status = 0 if moved == call.want else (bp.ETIMEDOUT if fit < call.want else bp.EIO)
        self.cond.notify_all()
        self._trace(node, "i2c%d read 0x%02x %d bytes, slave sent %d" % (bus_id, addr, nbytes, moved))
        self._wait_until(start + self.wire_time(i2c_transfer_time(nbytes, bus.freq)))
        return 0, nbytes, readback

    def _i2c_write(self, node, bus_id, addr, _c, data):
        return self._i2c_transfer(node, bus_id, addr, True, data, len(data))

    def _i2c_read(self, node, bus_id, addr, nbytes, _data):
        return self._i2c_transfer(node, bus_id, addr, False, b"", nbytes)

    # ---- SPI ----
    def _spi_init(self, node, bus_id, mode_bits, baudrate, _data):
        bus = self.spi[bus_id]
        mode, polarity, phase = mode_bits & 0xFF, (mode_bits >> 8) & 1, (mode_bits >> 9) & 1
        bus.masters.discard(node)
        bus.slaves.pop(node, None)
        if mode == bp.SPI_MASTER:
            bus.masters.add(node)
            bus.baudrate = baudrate or SPI_DEFAULT_BAUDRATE
            bus.master_mode = (polarity, phase)
        else:
            bus.slaves[node] = SPISlave(node, polarity, phase)
        self._trace(node, "spi%d init mode %d pol %d pha %d" % (bus_id, mode, polarity, phase))
        return 0, 0, b""

    def _spi_deinit(self, node, bus_id, _b, _c, _data):
        bus = self.spi[bus_id]
        bus.masters.discard(node)
        bus.slaves.pop(node, None)
        return 0, 0, b""

    def _spi_cs_pin(self, bus_id, slave):
        return self.spi_cs_pins.get(bus_id) or self.pin_inputs.get(slave.node, "P3")

    def _spi_selected(self, bus_id, bus):
        """The slave whose chip select is low, or None (several at once: contention, none heard)."""
        low = [s for s in bus.slaves.values() if self.pin_value(self._spi_cs_pin(bus_id, s)) == 0]
        if len(low) > 1:
            self.stats["spi_contention"] += 1
        return low[0] if len(low) == 1 else None

    def _spi_mode_mismatch(self, bus, slave):
        return bus.master_mode and bus.master_mode != slave.mode

    @staticmethod
    def _shift_one_bit(data):
        """What a slave sampling on the wrong clock edge sees: the stream one bit late."""
        out = bytearray(len(data))
        carry = 1
        for i, byte in enumerate(data):
            out[i] = ((byte >> 1) | (carry << 7)) & 0xFF
            carry = byte & 1
        return out

    def _spi_exchange(self, bus, slave, call, mosi, miso, first):
        """Move bytes mosi[first:] into the slave's call; its queued bytes into miso."""
        pos = len(call.got)
        count = min(len(mosi) - first, call.want - pos)
        if count <= 0:
            return 0
        incoming = bytearray(mosi[first:first + count])
        if self._spi_mode_mismatch(bus, slave):
            incoming = self._shift_one_bit(incoming)
        call.got += incoming
        if call.out is not None:
            miso[first:first + count] = call.out[pos:pos + count]
        return count

    def _spi_master_xfer(self, node, bus_id, _b, _c, mosi):
        bus = self.spi[bus_id]
        faults = self.fault("spi", bus_id)
        start = self.now()
        byte_time = self.wire_time(8 / bus.baudrate)
        end = start + byte_time * len(mosi)
        miso = bytearray([IDLE_BYTE]) * len(mosi)
        slave = self._spi_selected(bus_id, bus)
        selected = slave is not None
        self.stats["spi_transfers"] += 1
        dropped = faults.should_drop()
        call = slave.call if selected and not dropped else None
        if call is not None and call.status is None:
            fit = len(mosi) if byte_time == 0 else max(0, int((call.deadline - start) / byte_time))
            moved = self._spi_exchange(bus, slave, call, mosi[:fit], miso, 0)
            if len(call.got) == call.want:
                call.status, call.done_at = 0, start + byte_time * moved
                slave.call = None
            self.cond.notify_all()
            self._trace(node, "spi%d xfer %d bytes, slave took %d (has %d/%d)" %
                        (bus_id, len(mosi), moved, len(call.got), call.want))
        else:
            self.stats["spi_unheard"] += 1
            self._trace(node, "spi%d xfer %d bytes unheard (cs %s, slave %s, dropped %s)" %
                        (bus_id, len(mosi), "low" if selected else "high",
                         "armed" if selected and slave.call else "idle", dropped))
        bus.active = [start, end, mosi, miso, byte_time, slave if not dropped else None]
        self._wait_until(end)
        bus.active = None
        faults.maybe_corrupt(miso)
        return 0, len(miso), miso

    def _spi_slave_xfer(self, node, bus_id, nbytes, timeout_ms, out):
        bus = self.spi[bus_id]
        slave = bus.slaves.get(node)
        if slave is None:
            return bp.EINVAL, 0, b""
        now = self.now()
        call = SlaveCall(node, nbytes, bytes(out) if len(out) else None, now + timeout_ms / 1000)
        slave.call = call
        self._trace(node, "spi%d slave %s %d bytes, %d ms" % (
            bus_id, "send" if call.out is not None else "recv", nbytes, timeout_ms))
        active = bus.active
        if active and active[5] is slave and active[1] > now:
            # Armed during a master transfer: the DMA catches only the bytes still to come.
            start, end, mosi, miso, byte_time = active[:5]
            first = len(mosi) if byte_time == 0 else int((now - start) / byte_time) + 1
            if first < len(mosi):
                self._spi_exchange(bus, slave, call, mosi, miso, first)
                if len(call.got) == call.want:
                    call.status, call.done_at = 0, end
                    slave.call = None
                self._trace(node, "spi%d slave armed mid-transfer at byte %d" % (bus_id, first))
        self._wait_until(call.deadline, lambda: call.status is not None)
        if call.status is None:
            if slave.call is call:
                slave.call = None
            self._trace(node, "spi%d slave timed out with %d/%d bytes" % (bus_id, len(call.got), call.want))
            return bp.ETIMEDOUT, 0, b""
        self._wait_until(call.done_at)
        received = bytearray(call.got)
        self.fault("spi", bus_id).maybe_corrupt(received)
        return 0, len(received), received

    # ---- CAN ----
    def _can_device(self, node, bus_id):
        return next((d for d in self.can[bus_id].devices if d.node == node), None)

    def _can_settle(self, bus):
        """Deliver the frames whose wire time is over; with no other node there is no ACK."""
        now = self.now()
        while bus.inflight and bus.inflight[0].end <= now:
            frame = bus.inflight[0]
            receivers = [d for d in bus.devices
                         if d is not frame.sender and d.bitrate == frame.sender.bitrate
                         and d.mode == bp.CAN_NORMAL]
            if frame.sender.mode != bp.CAN_NORMAL:
                receivers = [frame.sender] if frame.sender.mode in (
                    bp.CAN_LOOPBACK, bp.CAN_SILENT_LOOPBACK) else []
            elif not receivers:
                # No ACK: the controller keeps retrying the frame; everything behind it waits.
                self._can_reschedule(bus, now + self.wire_time(
                    can_frame_bits(frame.can_id, frame.data) / frame.sender.bitrate))
                self.stats["can_no_ack"] += 1
                return
            bus.inflight.pop(0)
            faults = self.fault("can", self._can_bus_id(bus))
            self.stats["can_frames"] += 1
            if faults.should_drop():
                continue
            data = bytearray(frame.data)
            faults.maybe_corrupt(data)
            for device in receivers:
                fifo = device.accepts(frame.can_id)
                if fifo is None:
                    self.stats["can_filtered"] += 1
                    continue
                if len(device.fifos[fifo]) >= self.can_fifo_depth:
                    self.stats["can_overruns"] += 1
                    self._trace(device.node, "can fifo %d overrun" % fifo)
                    continue
                device.fifos[fifo].append((frame.can_id, bytes(data)))
            self.cond.notify_all()

    def _can_bus_id(self, bus):
        for bus_id, candidate in self.can.items():
            if candidate is bus:
                return bus_id
        return 0

    def _can_reschedule(self, bus, start):
        for frame in bus.inflight:
            duration = frame.end - frame.start
            frame.start, frame.end = start, start + duration
            start = frame.end
        bus.free_at = start

    def _can_init(self, node, bus_id, bitrate, mode, _data):
        bus = self.can[bus_id]
        bus.devices = [d for d in bus.devices if d.node != node]
        bus.devices.append(CANDevice(node, bitrate or CAN_DEFAULT_BITRATE, mode))
        if bus.inflight:  # a node that can ACK has joined: the retried frames go through
            self._can_reschedule(bus, max(self.now(), bus.inflight[0].start))
        self.cond.notify_all()
        self._trace(node, "can%d init %d bit/s mode %d" % (bus_id, bitrate, mode))
        return 0, 0, b""

    def _can_deinit(self, node, bus_id, _b, _c, _data):
        bus = self.can[bus_id]
        bus.devices = [d for d in bus.devices if d.node != node]
        return 0, 0, b""

    def _can_filter(self, node, bus_id, bank, fifo, data):
        device = self._can_device(node, bus_id)
        if device is None or len(data) < 4 or len(data) % 4 or fifo > 1:
            return bp.EINVAL, 0, b""
        values = struct.unpack("<%dI" % (len(data) // 4), data)
        device.filters[bank] = (values[0], fifo, tuple(values[1:]))
        return 0, 0, b""

    def _can_clearfilter(self, node, bus_id, bank, _c, _data):
        device = self._can_device(node, bus_id)
        if device is None:
            return bp.EINVAL, 0, b""
        device.filters.pop(bank, None)
        return 0, 0, b""

    def _can_send(self, node, bus_id, can_id, timeout_ms, data):
        bus = self.can[bus_id]
        device = self._can_device(node, bus_id)
        if device is None or len(data) > 8 or can_id > 0x7FF:
            return bp.EINVAL, 0, b""
        deadline = self.now() + timeout_ms / 1000

        def mailbox_free():
            return sum(1 for f in bus.inflight if f.sender is device) < CAN_TX_MAILBOXES

        if not self._can_wait(bus, deadline if timeout_ms else 0.0, mailbox_free):
            return bp.ETIMEDOUT, 0, b""
        now = self.now()
        start = max(now, bus.free_at)
        end = start + self.wire_time(can_frame_bits(can_id, data) / device.bitrate)
        frame = CANFrame(device, can_id, bytes(data), start, end)
        bus.inflight.append(frame)
        bus.free_at = end
        self.cond.notify_all()
        if timeout_ms == 0:
            return 0, 0, b""
        # With a timeout, pyb.CAN.send waits until the frame has left the mailbox.
        if not self._can_wait(bus, deadline, lambda: frame not in bus.inflight):
            return bp.ETIMEDOUT, 0, b""
        return 0, 0, b""

    def _can_wait(self, bus, deadline, done):
        """Wait until done() or deadline, settling the bus at each frame's end; -> done()."""
        while True:
            self._can_settle(bus)
            if done():
                return True
            now = self.now()
            if now >= deadline or self._stopping:
                return False
            wake = deadline
            if bus.inflight:
                wake = min(wake, bus.inflight[0].end)
            self.cond.wait(max(0.0, wake - now))

    def _can_recv(self, node, bus_id, fifo, timeout_ms, _data):
        bus = self.can[bus_id]
        device = self._can_device(node, bus_id)
        if device is None or fifo > 1:
            return bp.EINVAL, 0, b""
        deadline = self.now() + timeout_ms / 1000
        fifo_queue = device.fifos[fifo]
        if not self._can_wait(bus, deadline, lambda: fifo_queue or device not in bus.devices):
            return bp.ETIMEDOUT, 0, b""
        if not fifo_queue:
            return bp.ETIMEDOUT, 0, b""
        can_id, data = fifo_queue.popleft()
        return 0, can_id, data

    def _can_any(self, node, bus_id, fifo, _c, _data):
        bus = self.can[bus_id]
        device = self._can_device(node, bus_id)
        if device is None or fifo > 1:
            return bp.EINVAL, 0, b""
        self._can_settle(bus)
        return 0, 1 if device.fifos[fifo] else 0, b""

    _handlers = {
        bp.OP_PIN_INIT: _pin_init,
        bp.OP_PIN_SET: _pin_set,
        bp.OP_PIN_GET: _pin_get,
        bp.OP_I2C_INIT: _i2c_init,
        bp.OP_I2C_DEINIT: _i2c_deinit,
        bp.OP_I2C_WRITE: _i2c_write,
        bp.OP_I2C_READ: _i2c_read,
        bp.OP_I2C_SLAVE_RECV: _i2c_slave_recv,
        bp.OP_I2C_SLAVE_SEND: _i2c_slave_send,
        bp.OP_SPI_INIT: _spi_init,
        bp.OP_SPI_DEINIT: _spi_deinit,
        bp.OP_SPI_MASTER_XFER: _spi_master_xfer,
        bp.OP_SPI_SLAVE_XFER: _spi_slave_xfer,
        bp.OP_CAN_INIT: _can_init,
        bp.OP_CAN_DEINIT: _can_deinit,
        bp.OP_CAN_FILTER: _can_filter,
        bp.OP_CAN_CLEARFILTER: _can_clearfilter,
        bp.OP_CAN_SEND: _can_send,
        bp.OP_CAN_RECV: _can_recv,
        bp.OP_CAN_ANY: _can_any,
    }


def main():
    sim = Simulator(pacing="--no-pacing" not in sys.argv).start()
    print("%s=%s" % (bp.ENV_ADDRESS, sim.address), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sim.stop()


if __name__ == "__main__":
    main()
