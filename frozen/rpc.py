# rpc: the OpenMV rpc interface library, with its documented classes, over the omv-rpc
# engine. The C part (module _rpc in firmware; in the native rpc.mpy it is this very module,
# loaded before this code) drives the engine and the buses; this file keeps the documented
# API and lets a subclass bring its own transport by overriding get_bytes/put_bytes/_flush.
try:
    from _rpc import (
        Engine,
        name_hash,
        crc16,
        stream_transport,
        python_transport,
        network_transport,
        _port_init,
    )
except ImportError:
    pass  # native module: the C part already put these names here

import time

try:
    import select

    _poll = select.poll
except ImportError:
    _poll = None

_port_init(time.ticks_ms, time.sleep_ms, _poll, time.ticks_add(0, -1), time.ticks_us)

_MASTER = 0
_SLAVE = 1


class rpc:
    """Base of every rpc class. A subclass that overrides get_bytes(buff, timeout_ms) and
    put_bytes(data, timeout_ms) (and optionally _flush()) is its own transport."""

    def __init__(self, _role=_MASTER, _transport=None):
        cls = type(self)
        overrides = (
            (cls.get_bytes is not rpc.get_bytes)
            | (cls.put_bytes is not rpc.put_bytes) << 1
            | (cls._flush is not rpc._flush) << 2
        )
        if _transport is None or overrides:
            _transport = python_transport(self, overrides)
        self._transport = _transport
        self._engine = Engine(_role, _transport)

    # The transport methods of the documented API. A Python transport overrides them; on a
    # native transport the engine moves bytes itself and these are not called.
    def get_bytes(self, buff, timeout_ms):
        return None

    def put_bytes(self, data, timeout_ms):
        pass

    def _flush(self):
        pass

    def stream_reader(self, call_back, queue_depth=1, read_timeout_ms=5000):
        self._engine.stream_reader(call_back, queue_depth, read_timeout_ms)

    def stream_writer(self, call_back, write_timeout_ms=5000):
        self._engine.stream_writer(call_back, write_timeout_ms)

    # Extensions (docs/python-api.md).
    @property
    def last_error(self):
        return self._engine.last_error()

    def stats(self):
        return self._engine.stats()

    def stats_reset(self):
        self._engine.stats_reset()

    def set_limits(self, max_argument_len=None, max_result_len=None, max_frame_len=None):
        self._engine.configure(max_argument_len=max_argument_len, max_result_len=max_result_len, max_frame_len=max_frame_len)

    def set_timing(self, short_timeout_ms=None, long_timeout_ms=None, bytes_per_s=None, pipeline=None, spin_us=None):
        self._engine.configure(short_timeout_ms=short_timeout_ms, long_timeout_ms=long_timeout_ms,
                               bytes_per_s=bytes_per_s, pipeline=pipeline, spin_us=spin_us)


class rpc_master(rpc):
    def __init__(self, _transport=None):
        rpc.__init__(self, _MASTER, _transport)

    def call(self, name, data=bytes(), send_timeout=1000, recv_timeout=1000):
        return self._engine.call(name, data, send_timeout, recv_timeout)

    def call_into(self, name, data, buffer, send_timeout=1000, recv_timeout=1000):
        return self._engine.call_into(name, data, buffer, send_timeout, recv_timeout)

    def call_start(self, name, data=bytes(), send_timeout=1000, recv_timeout=1000):
        self._engine.call_start(name, data, send_timeout, recv_timeout)

    def call_poll(self):
        return self._engine.call_poll()

    def call_result(self):
        return self._engine.call_result()

    def call_cancel(self):
        self._engine.call_cancel()


class rpc_slave(rpc):
    def __init__(self, _transport=None):
        rpc.__init__(self, _SLAVE, _transport)

    def register_callback(self, cb):
        self._engine.register_callback(cb)

    def schedule_callback(self, cb):
        self._engine.schedule_callback(cb)

    def setup_loop_callback(self, cb):
        self._engine.setup_loop_callback(cb)

    def loop(self, recv_timeout=1000, send_timeout=1000):
        self._engine.loop(recv_timeout, send_timeout)


# Any stream object (socket, pty or serial file opened in binary mode, machine.UART, ...).
class rpc_stream_master(rpc_master):
    def __init__(self, stream):
        rpc_master.__init__(self, stream_transport(stream))


class rpc_stream_slave(rpc_slave):
    def __init__(self, stream):
        rpc_slave.__init__(self, stream_transport(stream))


def _missing(cls, what):
    return OSError("%s needs %s, which this port does not have" % (cls, what))


def _uart(cls, baudrate, uart_port):
    try:
        from machine import UART
    except ImportError:
        raise _missing(cls, "machine.UART")
    return UART(uart_port, baudrate, timeout=2, timeout_char=2)


class rpc_uart_master(rpc_master):
    def __init__(self, baudrate=9600, uart_port=3):
        self._uart = _uart("rpc_uart_master", baudrate, uart_port)
        rpc_master.__init__(self, stream_transport(self._uart))


class rpc_uart_slave(rpc_slave):
    def __init__(self, baudrate=9600, uart_port=3):
        self._uart = _uart("rpc_uart_slave", baudrate, uart_port)
        rpc_slave.__init__(self, stream_transport(self._uart))


def _usb_vcp(cls):
    try:
        from pyb import USB_VCP
    except ImportError:
        raise _missing(cls, "pyb.USB_VCP")
    usb = USB_VCP()
    usb.setinterrupt(-1)  # Ctrl-C bytes are data here
    return usb


class rpc_usb_vcp_master(rpc_master):
    def __init__(self):
        self._usb = _usb_vcp("rpc_usb_vcp_master")
        rpc_master.__init__(self, stream_transport(self._usb))


class rpc_usb_vcp_slave(rpc_slave):
    def __init__(self):
        self._usb = _usb_vcp("rpc_usb_vcp_slave")
        rpc_slave.__init__(self, stream_transport(self._usb))


def _socket_module(cls):
    try:
        import socket
    except ImportError:
        raise _missing(cls, "socket")
    return socket


def _address(socket, ip, port):
    return socket.getaddrinfo(ip or "0.0.0.0", port)[0][-1]


def _bound(socket, kind, ip, port):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    except (OSError, AttributeError):
        pass
    s.bind(_address(socket, ip, port))
    return s


class rpc_network_master(rpc_master):
    def __init__(self, slave_ip, my_ip="", port=0x1DBA):
        socket = _socket_module("rpc_network_master")
        udp = _bound(socket, socket.SOCK_DGRAM, my_ip, port)
        udp.connect(_address(socket, slave_ip, port))
        udp.setblocking(False)
        listener = _bound(socket, socket.SOCK_STREAM, my_ip, port)
        listener.listen(1)
        listener.setblocking(False)
        self._sockets = (udp, listener)
        rpc_master.__init__(self, network_transport(udp, listener, socket))


class rpc_network_slave(rpc_slave):
    def __init__(self, my_ip="", port=0x1DBA):
        socket = _socket_module("rpc_network_slave")
        udp = _bound(socket, socket.SOCK_DGRAM, my_ip, port)
        udp.setblocking(False)
        self._sockets = (udp,)
        rpc_slave.__init__(self, network_transport(udp, None, socket))


# Transports that live in their own files (frozen/rpc_<bus>.py): merged after this file into
# the native module; frozen beside it in firmware, and imported here.
try:
    from rpc_bus import *
except ImportError:
    pass
try:
    from rpc_channel import *
except ImportError:
    pass
