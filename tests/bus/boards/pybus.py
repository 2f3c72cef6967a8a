# Transports written in Python the documented way: subclasses of rpc.rpc_master/rpc_slave
# that override get_bytes/put_bytes/_flush, driving the (stand-in) machine/pyb buses as the
# reference implementation does. Used by the bus tests as the "subclass overrides" peer.
import time

import machine
import pyb
import rpc

SLAVE_ADDR = 0x12
CAN_ID = 0x7FF
LEAD_US = 100


def _all_equal(buf):
    first = buf[0]
    for b in buf:
        if b != first:
            return False
    return True


class I2CMaster(rpc.rpc_master):
    def __init__(self):
        self.i2c = machine.I2C(2, freq=100000)
        rpc.rpc_master.__init__(self)

    def get_bytes(self, buff, timeout_ms):
        pyb.udelay(LEAD_US)
        try:
            self.i2c.readfrom_into(SLAVE_ADDR, buff)
        except OSError:
            return None
        if len(buff) and _all_equal(buff):  # the slave was not in its send call
            return None
        return buff

    def put_bytes(self, data, timeout_ms):
        pyb.udelay(LEAD_US)
        try:
            return self.i2c.writeto(SLAVE_ADDR, data) == len(data)
        except OSError:
            return False


class I2CSlave(rpc.rpc_slave):
    def __init__(self):
        self.i2c = pyb.I2C(2, pyb.I2C.SLAVE, addr=SLAVE_ADDR)
        rpc.rpc_slave.__init__(self)

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


class SPIMaster(rpc.rpc_master):
    def __init__(self):
        self.spi = machine.SPI(2, baudrate=1000000, polarity=1, phase=0)
        self.cs = machine.Pin("P3", machine.Pin.OUT, value=1)
        rpc.rpc_master.__init__(self)

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
        start = time.ticks_ms()
        while True:
            self._transfer(buff, True)
            if not (len(buff) and _all_equal(buff)):
                return buff
            if time.ticks_diff(time.ticks_ms(), start) >= timeout_ms:
                return None

    def put_bytes(self, data, timeout_ms):
        self._transfer(data, False)


class SPISlave(rpc.rpc_slave):
    def __init__(self):
        self.spi = pyb.SPI(2, pyb.SPI.SLAVE, polarity=1, phase=0)
        rpc.rpc_slave.__init__(self)

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
            if not (len(buff) and _all_equal(buff)):
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


class CANMaster(_CAN, rpc.rpc_master):
    def __init__(self):
        self._can_init()
        rpc.rpc_master.__init__(self)


class CANSlave(_CAN, rpc.rpc_slave):
    def __init__(self):
        self._can_init()
        rpc.rpc_slave.__init__(self)


CLASSES = {
    ("i2c", "master"): I2CMaster,
    ("i2c", "slave"): I2CSlave,
    ("spi", "master"): SPIMaster,
    ("spi", "slave"): SPISlave,
    ("can", "master"): CANMaster,
    ("can", "slave"): CANSlave,
}
