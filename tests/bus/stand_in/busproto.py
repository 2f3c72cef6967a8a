# The bus simulator's own wire: how a stand-in `machine`/`pyb` module (MicroPython) asks
# tests/bus/sim.py (CPython) to move bytes on a simulated bus. It is not the rpc protocol.
# This file is the one place for the op codes; it runs under MicroPython and CPython.
#
# request:  REQUEST header (op, a, b, c, data length) then the data bytes
# response: RESPONSE header (status, value, data length) then the data bytes;
#           status 0 = done, else an errno the stand-in raises as OSError(status).
import struct

REQUEST = "<BIIII"
RESPONSE = "<iiI"
REQUEST_LEN = struct.calcsize(REQUEST)
RESPONSE_LEN = struct.calcsize(RESPONSE)

OP_HELLO = 1            # data: node name
OP_I2C_INIT = 10        # a bus, b mode (0 master, 1 slave), c freq (master) or addr (slave)
OP_I2C_DEINIT = 11      # a bus
OP_I2C_WRITE = 12       # a bus, b addr, data -> value: bytes acknowledged
OP_I2C_READ = 13        # a bus, b addr, c nbytes -> data
OP_I2C_SLAVE_RECV = 14  # a bus, b nbytes, c timeout_ms -> data
OP_I2C_SLAVE_SEND = 15  # a bus, c timeout_ms, data
OP_SPI_INIT = 20        # a bus, b mode | polarity << 8 | phase << 9, c baudrate
OP_SPI_DEINIT = 21      # a bus
OP_SPI_MASTER_XFER = 22  # a bus, data (MOSI) -> data (MISO)
OP_SPI_SLAVE_XFER = 23  # a bus, b nbytes, c timeout_ms, data (MISO, nbytes or empty) -> data (MOSI)
OP_PIN_INIT = 30        # a mode (0 in, 1 out), b initial value (VALUE_NONE: keep), data: name
OP_PIN_SET = 31         # a value, data: name
OP_PIN_GET = 32         # data: name -> value
OP_CAN_INIT = 40        # a bus, b bit rate, c mode
OP_CAN_DEINIT = 41      # a bus
OP_CAN_FILTER = 42      # a bus, b bank, c fifo, data: u32 mode then u32 params
OP_CAN_CLEARFILTER = 43  # a bus, b bank
OP_CAN_SEND = 44        # a bus, b id, c timeout_ms, data (<= 8 bytes)
OP_CAN_RECV = 45        # a bus, b fifo, c timeout_ms -> value id, data
OP_CAN_ANY = 46         # a bus, b fifo -> value 0/1

VALUE_NONE = 0xFFFFFFFF

I2C_MASTER = 0
I2C_SLAVE = 1
SPI_MASTER = 0
SPI_SLAVE = 1
CAN_NORMAL = 0
CAN_LOOPBACK = 1
CAN_SILENT = 2
CAN_SILENT_LOOPBACK = 3
# Filter modes: bxCAN (LIST16, MASK16, LIST32, MASK32) and FDCAN (RANGE, DUAL, MASK).
CAN_LIST16 = 0
CAN_MASK16 = 1
CAN_LIST32 = 2
CAN_MASK32 = 3
CAN_RANGE = 4
CAN_DUAL = 5
CAN_MASK = 6

EIO = 5
EBUSY = 16
ENODEV = 19
EINVAL = 22
ETIMEDOUT = 110

ENV_ADDRESS = "OMV_BUS_SIM"   # "host:port" of the simulator
ENV_NODE = "OMV_BUS_NODE"     # this process's name in the simulator's log
# Comma-separated names the stand-ins leave out, to play a port without them:
# "pyb" (no pyb module at all), "machine.I2C", "pyb.CAN", ...
ENV_HIDE = "OMV_BUS_HIDE"


def _hidden():
    import os
    return [h.strip() for h in (os.getenv(ENV_HIDE) or "").split(",") if h.strip()]


def check_module(module_name):
    """ImportError when $OMV_BUS_HIDE hides the whole module (call it before defining anything,
    so that no half-made module is left behind)."""
    if module_name in _hidden():
        raise ImportError("no module named '%s' (hidden by %s)" % (module_name, ENV_HIDE))


def hide_names(module_name, names):
    """Drop the names $OMV_BUS_HIDE lists for this module from `names` (its globals)."""
    for entry in _hidden():
        if entry.startswith(module_name + "."):
            names.pop(entry[len(module_name) + 1:], None)


class Link:
    """One connection from a process to the simulator (one simulated board)."""

    def __init__(self, host, port, name):
        import socket
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.connect(socket.getaddrinfo(host, port)[0][-1])
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (AttributeError, OSError):
            self.sock.setsockopt(6, 1, 1)
        self._write = getattr(self.sock, "sendall", None) or self.sock.write
        self._readinto = getattr(self.sock, "recv_into", None) or self.sock.readinto
        # Preallocated: a request header, a response header and small responses (CAN frames,
        # pin levels): a board's C transport allocates nothing per packet, and the stand-in
        # should not make the garbage collector stall a simulated board either.
        self._request = bytearray(REQUEST_LEN)
        self._header = bytearray(RESPONSE_LEN)
        self._small = bytearray(64)
        self.request(OP_HELLO, 0, 0, 0, name.encode())

    def _read_exactly(self, buf):
        view = memoryview(buf)
        got = 0
        while got < len(view):
            n = self._readinto(view[got:])
            if not n:
                raise OSError(EIO, "bus simulator closed the link")
            got += n

    def request(self, op, a=0, b=0, c=0, data=b""):
        """-> (status, value, data). Data of up to 64 bytes is a view of a buffer that the
        next request reuses: callers copy it out."""
        struct.pack_into(REQUEST, self._request, 0, op, a, b, c, len(data))
        self._write(self._request)
        if len(data):
            self._write(data)
        self._read_exactly(self._header)
        status, value, n = struct.unpack(RESPONSE, self._header)
        if n <= len(self._small):
            out = memoryview(self._small)[:n]
        else:
            out = bytearray(n)
        if n:
            self._read_exactly(out)
        return status, value, out


_link = None


def link():
    """The process's link, opened on first use from $OMV_BUS_SIM."""
    global _link
    if _link is None:
        import os
        address = os.getenv(ENV_ADDRESS)
        if not address:
            raise OSError(ENODEV, "no bus simulator: set " + ENV_ADDRESS + "=host:port")
        host, port = address.rsplit(":", 1)
        _link = Link(host, int(port), os.getenv(ENV_NODE) or "node")
    return _link


def request(op, a=0, b=0, c=0, data=b""):
    """Like Link.request, but raises OSError(status) when the simulator reports an error."""
    status, value, out = link().request(op, a, b, c, data)
    if status:
        raise OSError(status)
    return value, out
