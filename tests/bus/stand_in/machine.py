# Stand-in `machine` for the bus tests only (MicroPython unix port): Pin, I2C and SPI with
# MicroPython's names and signatures, moving their bytes on tests/bus/sim.py's simulated
# buses. It shadows the unix port's built-in `machine` only where tests put it on the path.
import busproto as bp

bp.check_module("machine")

try:
    from time import sleep_us as _sleep_us
except ImportError:  # CPython
    import time as _time

    def _sleep_us(us):
        _time.sleep(us / 1e6)


def _buffer_bytes(buf):
    return bytes(buf)


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1, *, value=None, **kwargs):
        self._name = str(id)
        self._mode = Pin.IN
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None, **kwargs):
        if mode != -1:
            self._mode = mode
        out = 1 if self._mode in (Pin.OUT, Pin.OPEN_DRAIN) else 0
        initial = bp.VALUE_NONE if value is None else (1 if value else 0)
        bp.request(bp.OP_PIN_INIT, out, initial, 0, self._name.encode())

    def value(self, x=None):
        if x is None:
            return bp.request(bp.OP_PIN_GET, 0, 0, 0, self._name.encode())[0]
        bp.request(bp.OP_PIN_SET, 1 if x else 0, 0, 0, self._name.encode())

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def high(self):
        self.value(1)

    def low(self):
        self.value(0)

    def __repr__(self):
        return "Pin(%s)" % self._name


class I2C:
    """A controller (master) on a simulated I2C bus."""

    def __init__(self, id, *, scl=None, sda=None, freq=400000, timeout=50000):
        self._bus = id
        self.init(freq=freq)

    def init(self, *, scl=None, sda=None, freq=400000, timeout=50000):
        self._freq = freq
        bp.request(bp.OP_I2C_INIT, self._bus, bp.I2C_MASTER, freq)

    def deinit(self):
        bp.request(bp.OP_I2C_DEINIT, self._bus)

    def scan(self):
        found = []
        for addr in range(0x08, 0x78):
            if bp.link().request(bp.OP_I2C_WRITE, self._bus, addr)[0] == 0:
                found.append(addr)
        return found

    def writeto(self, addr, buf, stop=True):
        """-> the number of data bytes the slave acknowledged; OSError(ENODEV) on an address NACK."""
        return bp.request(bp.OP_I2C_WRITE, self._bus, addr, 0, _buffer_bytes(buf))[0]

    def writevto(self, addr, vector, stop=True):
        return self.writeto(addr, b"".join(bytes(v) for v in vector), stop)

    def readfrom_into(self, addr, buf, stop=True):
        _, data = bp.request(bp.OP_I2C_READ, self._bus, addr, len(buf))
        memoryview(buf)[:] = data

    def readfrom(self, addr, nbytes, stop=True):
        return bytes(bp.request(bp.OP_I2C_READ, self._bus, addr, nbytes)[1])


class SPI:
    """A controller (master) on a simulated SPI bus; chip select is a Pin of the caller's."""

    MSB = 0
    LSB = 1

    def __init__(self, id, baudrate=1000000, *, polarity=0, phase=0, bits=8, firstbit=MSB,
                 sck=None, mosi=None, miso=None):
        self._bus = id
        self.init(baudrate, polarity=polarity, phase=phase, bits=bits, firstbit=firstbit)

    def init(self, baudrate=1000000, *, polarity=0, phase=0, bits=8, firstbit=MSB,
             sck=None, mosi=None, miso=None):
        if bits != 8:
            raise ValueError("stand-in SPI moves 8-bit words only")
        mode = bp.SPI_MASTER | (polarity & 1) << 8 | (phase & 1) << 9
        bp.request(bp.OP_SPI_INIT, self._bus, mode, baudrate)

    def deinit(self):
        bp.request(bp.OP_SPI_DEINIT, self._bus)

    def _xfer(self, data):
        return bp.request(bp.OP_SPI_MASTER_XFER, self._bus, 0, 0, data)[1]

    def write(self, buf):
        self._xfer(_buffer_bytes(buf))

    def read(self, nbytes, write=0x00):
        return bytes(self._xfer(bytes([write]) * nbytes))

    def readinto(self, buf, write=0x00):
        memoryview(buf)[:] = self._xfer(bytes([write]) * len(buf))

    def write_readinto(self, write_buf, read_buf):
        if len(write_buf) != len(read_buf):
            raise ValueError("buffers must be the same length")
        memoryview(read_buf)[:] = self._xfer(_buffer_bytes(write_buf))


def idle():
    _sleep_us(100)


bp.hide_names("machine", globals())
