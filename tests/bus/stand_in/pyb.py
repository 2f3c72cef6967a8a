# Stand-in `pyb` for the bus tests only: I2C (master and slave modes), SPI (master and slave
# modes), Pin and CAN with the stm32 port's names and signatures, on tests/bus/sim.py's
# simulated buses, plus the timing helpers the rpc transports use.
import struct
import time

import busproto as bp

bp.check_module("pyb")
import machine

try:
    _ticks_ms, _ticks_us, _ticks_diff = time.ticks_ms, time.ticks_us, time.ticks_diff
    _sleep_us, _sleep_ms = time.sleep_us, time.sleep_ms
except AttributeError:  # CPython
    def _ticks_ms():
        return int(time.monotonic() * 1000)

    def _ticks_us():
        return int(time.monotonic() * 1000000)

    def _ticks_diff(a, b):
        return a - b

    def _sleep_us(us):
        time.sleep(us / 1e6)

    def _sleep_ms(ms):
        time.sleep(ms / 1e3)


def millis():
    return _ticks_ms()


def micros():
    return _ticks_us()


def elapsed_millis(start):
    return _ticks_diff(_ticks_ms(), start)


def elapsed_micros(start):
    return _ticks_diff(_ticks_us(), start)


def delay(ms):
    _sleep_ms(ms)


def udelay(us):
    _sleep_us(us)


def _recv_target(recv):
    """pyb's `recv` argument: an int (a new bytearray of that size) or a buffer to fill."""
    if isinstance(recv, int):
        return bytearray(recv)
    return recv


def _send_bytes(send):
    if isinstance(send, int):
        return bytes([send & 0xFF])
    return bytes(send)


class Pin(machine.Pin):
    OUT_PP = 1
    OUT_OD = 2
    AF_PP = 3
    AF_OD = 4
    ANALOG = 5
    PULL_NONE = 0

    def __init__(self, id, mode=0, pull=0, *, value=None, alt=-1, **kwargs):
        machine.Pin.__init__(self, id, 1 if mode in (1, 2) else 0, pull, value=value)


class I2C:
    MASTER = 0
    SLAVE = 1

    def __init__(self, bus, mode=None, *, addr=0x12, baudrate=400000, gencall=False, dma=False):
        self._bus = bus
        self._mode = None
        if mode is not None:
            self.init(mode, addr=addr, baudrate=baudrate, gencall=gencall, dma=dma)

    def init(self, mode, *, addr=0x12, baudrate=400000, gencall=False, dma=False):
        if mode not in (I2C.MASTER, I2C.SLAVE):
            raise ValueError("mode")
        self._mode = mode
        bp.request(bp.OP_I2C_INIT, self._bus, mode, baudrate if mode == I2C.MASTER else addr)

    def deinit(self):
        self._mode = None
        bp.request(bp.OP_I2C_DEINIT, self._bus)

    def _check(self):
        if self._mode is None:
            raise OSError(bp.EIO, "I2C bus not initialised")

    def is_ready(self, addr):
        self._check()
        return bp.link().request(bp.OP_I2C_WRITE, self._bus, addr)[0] == 0

    def scan(self):
        return [a for a in range(0x08, 0x78) if self.is_ready(a)]

    def recv(self, recv, addr=0x00, *, timeout=5000):
        self._check()
        buf = _recv_target(recv)
        if self._mode == I2C.MASTER:
            _, data = bp.request(bp.OP_I2C_READ, self._bus, addr, len(buf))
        else:
            _, data = bp.request(bp.OP_I2C_SLAVE_RECV, self._bus, len(buf), timeout)
        memoryview(buf)[:] = data
        return buf

    def send(self, send, addr=0x00, *, timeout=5000):
        self._check()
        data = _send_bytes(send)
        if self._mode == I2C.MASTER:
            acked = bp.request(bp.OP_I2C_WRITE, self._bus, addr, 0, data)[0]
            if acked != len(data):
                raise OSError(bp.EIO)
        else:
            bp.request(bp.OP_I2C_SLAVE_SEND, self._bus, 0, timeout, data)

    def mem_read(self, data, addr, memaddr, *, timeout=5000, addr_size=8):
        raise OSError(bp.EINVAL, "mem_read is not simulated")

    def mem_write(self, data, addr, memaddr, *, timeout=5000, addr_size=8):
        raise OSError(bp.EINVAL, "mem_write is not simulated")


class SPI:
    MASTER = 0
    SLAVE = 1
    MSB = 0
    LSB = 1

    def __init__(self, bus, mode=None, baudrate=328125, **kwargs):
        self._bus = bus
        self._mode = None
        if mode is not None:
            self.init(mode, baudrate, **kwargs)

    def init(self, mode, baudrate=328125, *, prescaler=None, polarity=1, phase=0, bits=8,
             firstbit=MSB, ti=False, crc=None):
        if mode not in (SPI.MASTER, SPI.SLAVE):
            raise ValueError("mode")
        if bits != 8:
            raise ValueError("stand-in SPI moves 8-bit words only")
        self._mode = mode
        bits = mode | (polarity & 1) << 8 | (phase & 1) << 9
        bp.request(bp.OP_SPI_INIT, self._bus, bits, baudrate)

    def deinit(self):
        self._mode = None
        bp.request(bp.OP_SPI_DEINIT, self._bus)

    def _xfer(self, out, nbytes, timeout):
        if self._mode is None:
            raise OSError(bp.EIO, "SPI bus not initialised")
        if self._mode == SPI.MASTER:
            return bp.request(bp.OP_SPI_MASTER_XFER, self._bus, 0, 0, out or bytes(nbytes))[1]
        return bp.request(bp.OP_SPI_SLAVE_XFER, self._bus, nbytes, timeout, out)[1]

    def send(self, send, *, timeout=5000):
        data = _send_bytes(send)
        self._xfer(data, len(data), timeout)

    def recv(self, recv, *, timeout=5000):
        buf = _recv_target(recv)
        memoryview(buf)[:] = self._xfer(b"", len(buf), timeout)
        return buf

    def send_recv(self, send, recv=None, *, timeout=5000):
        data = _send_bytes(send)
        buf = bytearray(len(data)) if recv is None else recv
        if len(buf) != len(data):
            raise ValueError("buffers must be the same length")
        memoryview(buf)[:] = self._xfer(data, len(data), timeout)
        return buf


class CAN:
    NORMAL = bp.CAN_NORMAL
    LOOPBACK = bp.CAN_LOOPBACK
    SILENT = bp.CAN_SILENT
    SILENT_LOOPBACK = bp.CAN_SILENT_LOOPBACK
    LIST16 = bp.CAN_LIST16
    MASK16 = bp.CAN_MASK16
    LIST32 = bp.CAN_LIST32
    MASK32 = bp.CAN_MASK32
    RANGE = bp.CAN_RANGE
    DUAL = bp.CAN_DUAL
    MASK = bp.CAN_MASK
    STOPPED = 0
    ERROR_ACTIVE = 1
    ERROR_WARNING = 2
    ERROR_PASSIVE = 3
    BUS_OFF = 4
    # The bit clock the prescaler divides (APB1 of an STM32F4 at 168 MHz).
    _CLOCK = 42000000

    def __init__(self, bus, mode=None, *args, **kwargs):
        self._bus = bus
        self._mode = None
        self._views = {}
        if mode is not None:
            self.init(mode, *args, **kwargs)

    def init(self, mode, prescaler=100, *, sjw=1, bs1=6, bs2=8, auto_restart=False,
             baudrate=0, sample_point=75, extframe=False):
        if not baudrate:
            baudrate = CAN._CLOCK // (prescaler * (1 + bs1 + bs2))
        self._mode = mode
        self._baudrate = baudrate
        bp.request(bp.OP_CAN_INIT, self._bus, baudrate, mode)

    def deinit(self):
        self._mode = None
        bp.request(bp.OP_CAN_DEINIT, self._bus)

    def restart(self):
        pass

    def state(self):
        return CAN.STOPPED if self._mode is None else CAN.ERROR_ACTIVE

    def _check(self):
        if self._mode is None:
            raise OSError(bp.EIO, "CAN bus not initialised")

    def setfilter(self, bank, mode, fifo, params, *, rtr=None, extframe=False):
        self._check()
        values = [mode] + [int(p) for p in params]
        bp.request(bp.OP_CAN_FILTER, self._bus, bank, fifo,
                   struct.pack("<%dI" % len(values), *values))

    def clearfilter(self, bank, extframe=False):
        self._check()
        bp.request(bp.OP_CAN_CLEARFILTER, self._bus, bank)

    def any(self, fifo):
        self._check()
        return bool(bp.request(bp.OP_CAN_ANY, self._bus, fifo)[0])

    def send(self, data, id, *, timeout=0, rtr=False, extframe=False):
        self._check()
        if extframe or rtr:
            raise ValueError("stand-in CAN sends standard data frames only")
        data = _send_bytes(data)
        if len(data) > 8:
            raise ValueError("CAN data field too long")
        bp.request(bp.OP_CAN_SEND, self._bus, id & 0x7FF, timeout, data)

    def recv(self, fifo, list=None, *, timeout=5000):
        """-> (id, is_extended, is_rtr, fmi, data), filled into `list` when one is given."""
        self._check()
        can_id, data = bp.request(bp.OP_CAN_RECV, self._bus, fifo, timeout)
        if list is None:
            return (can_id, False, False, 0, bytes(data))
        list[0], list[1], list[2], list[3] = can_id, False, False, 0
        # pyb shrinks the list's memoryview to the frame's length in place and grows it again
        # on the next frame; a Python memoryview cannot grow, so keep the full view aside.
        full = self._views.get(id(list))
        if full is None or not isinstance(list[4], memoryview):
            full = memoryview(list[4])
            self._views[id(list)] = full
        if len(full) < len(data):
            raise ValueError("list[4] has room for fewer than 8 bytes")
        full[:len(data)] = data
        list[4] = full[:len(data)]
        return list


bp.hide_names("pyb", globals())
