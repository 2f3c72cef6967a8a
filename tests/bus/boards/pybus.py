# Transports written in Python the documented way: subclasses of rpc_master/rpc_slave that
# override get_bytes/put_bytes/_flush, driving the (stand-in) machine/pyb buses as the
# reference implementation does. classes(module) builds them on a module's rpc_master and
# rpc_slave: our `rpc` (the "subclass overrides" peer of the bus tests) or bench/ref_rpc.py
# (an independent pure-Python peer: interoperability).
import time

import machine
import pyb

SLAVE_ADDR = 0x12
CAN_ID = 0x7FF
LEAD_US = 100


def _not_ready(buf):
    """A packet (4 bytes or more) of all-equal bytes: no magic has two equal bytes, so this is
    a slave that was not in its send call (released lines read 0xFF), or on an SPI slave the
    master's clocks for a read. One-byte stream acks and raw frames are never judged."""
    if len(buf) < 4:
        return False
    first = buf[0]
    for b in buf:
        if b != first:
            return False
    return True


# How long a not-ready slave is polled within a call: one that is late gets in; one that gave
# up the phase never will, and only the protocol's next attempt brings both back in step.
NOT_READY_MS = 50


def _retry(attempt, timeout_ms, streaming=False):
    """attempt() until it returns something other than None, within timeout_ms (at most
    NOT_READY_MS outside streams, whose waits cover the peer's callback)."""
    if not streaming and timeout_ms > NOT_READY_MS:
        timeout_ms = NOT_READY_MS
    start = time.ticks_ms()
    while True:
        result = attempt()
        if result is not None or time.ticks_diff(time.ticks_ms(), start) >= timeout_ms:
            return result


def classes(rpc_module):
    """{(bus, role): class} of transports over the buses, on rpc_module's base classes."""
    rpc_master, rpc_slave = rpc_module.rpc_master, rpc_module.rpc_slave

    class I2CMaster(rpc_master):
        def __init__(self):
            self.i2c = machine.I2C(2, freq=100000)
            rpc_master.__init__(self)
            self.max_queue_depth = 1

        # A NACK or a not-ready read takes nothing from the slave: try again while there is time.
        def _read(self, buff):
            pyb.udelay(LEAD_US)
            try:
                self.i2c.readfrom_into(SLAVE_ADDR, buff)
            except OSError:
                return None
            return None if _not_ready(buff) else buff

        def _write(self, data):
            pyb.udelay(LEAD_US)
            try:
                return True if self.i2c.writeto(SLAVE_ADDR, data) == len(data) else None
            except OSError:
                return None

        def get_bytes(self, buff, timeout_ms):
            return _retry(lambda: self._read(buff), timeout_ms, getattr(self, "_streaming", False))

        def put_bytes(self, data, timeout_ms):
            return _retry(lambda: self._write(data), timeout_ms,
                          getattr(self, "_streaming", False)) is not None

    class I2CSlave(rpc_slave):
        def __init__(self):
            self.i2c = pyb.I2C(2, pyb.I2C.SLAVE, addr=SLAVE_ADDR)
            rpc_slave.__init__(self)
            self.max_queue_depth = 1  # docs/PROTOCOL.md: streams on I2C and SPI

        def get_bytes(self, buff, timeout_ms):
            try:
                self.i2c.recv(buff, timeout=timeout_ms)
            except OSError:
                return None
            return buff

        def put_bytes(self, data, timeout_ms):
            try:
                self.i2c.send(data, timeout=timeout_ms)
            except OSError:
                return False

    class SPIMaster(rpc_master):
        def __init__(self):
            self.spi = machine.SPI(2, baudrate=1000000, polarity=1, phase=0)
            self.cs = machine.Pin("P3", machine.Pin.OUT, value=1)
            rpc_master.__init__(self)
            self.max_queue_depth = 1

        def _transfer(self, buff, read):
            self.cs.value(0)
            pyb.udelay(LEAD_US)
            try:
                if read:
                    self.spi.readinto(buff)
                else:
                    self.spi.write(buff)
            finally:
                self.cs.value(1)

        def get_bytes(self, buff, timeout_ms):
            # All-equal bytes: the slave was not in its send call yet, and nothing was taken
            # from it: clock the packet again while there is time.
            def read():
                self._transfer(buff, True)
                return None if _not_ready(buff) else buff

            return _retry(read, timeout_ms, getattr(self, "_streaming", False))

        def put_bytes(self, data, timeout_ms):
            self._transfer(data, False)

    class SPISlave(rpc_slave):
        def __init__(self):
            self.spi = pyb.SPI(2, pyb.SPI.SLAVE, polarity=1, phase=0)
            rpc_slave.__init__(self)
            self.max_queue_depth = 1

        def get_bytes(self, buff, timeout_ms):
            start = time.ticks_ms()
            while True:
                left = timeout_ms - time.ticks_diff(time.ticks_ms(), start)
                if left <= 0:
                    return None
                try:
                    self.spi.recv(buff, timeout=left)
                except OSError:
                    return None
                # All-equal bytes are the master's clocks for a read of its own: not a packet.
                if not _not_ready(buff):
                    return buff

        def put_bytes(self, data, timeout_ms):
            try:
                self.spi.send(data, timeout=timeout_ms)
            except OSError:
                return False

    class _CAN:
        def _can_init(self):
            self.can = pyb.CAN(2, pyb.CAN.NORMAL, baudrate=250000, sample_point=75)
            self.can.setfilter(0, pyb.CAN.LIST16, 0, (CAN_ID, CAN_ID, CAN_ID, CAN_ID))

        def _flush(self):
            while self.can.any(0):
                self.can.recv(0, timeout=0)

        def get_bytes(self, buff, timeout_ms):
            view = memoryview(buff)
            start = time.ticks_ms()
            for offset in range(0, len(buff), 8):
                want = min(8, len(buff) - offset)
                left = max(1, timeout_ms - time.ticks_diff(time.ticks_ms(), start))
                try:
                    can_id, _, _, _, data = self.can.recv(0, timeout=left)
                except OSError:
                    return None
                if can_id != CAN_ID or len(data) != want:
                    return None
                view[offset:offset + want] = data
            return buff

        def put_bytes(self, data, timeout_ms):
            view = memoryview(data)
            for offset in range(0, len(data), 8):
                try:
                    self.can.send(view[offset:offset + 8], CAN_ID, timeout=timeout_ms)
                except OSError:
                    return False

    class CANMaster(_CAN, rpc_master):
        def __init__(self):
            self._can_init()
            rpc_master.__init__(self)

    class CANSlave(_CAN, rpc_slave):
        def __init__(self):
            self._can_init()
            rpc_slave.__init__(self)

    return {
        ("i2c", "master"): I2CMaster,
        ("i2c", "slave"): I2CSlave,
        ("spi", "master"): SPIMaster,
        ("spi", "slave"): SPISlave,
        ("can", "master"): CANMaster,
        ("can", "slave"): CANSlave,
    }
