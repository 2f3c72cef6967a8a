"""USB VCP and UART over pyserial. A port that fails (the cam rebooted and its USB device
went away) is closed and reopened on the next operation."""

import logging
import os
import time

from ._base import rpc_master, rpc_slave
from ._transport import NativeTransport, read_fd, wait_readable, write_fd

log = logging.getLogger("rpc")

_REOPEN_INTERVAL_S = 0.2


def _set_ftdi_latency(port):
    """An FTDI adapter's latency timer (16 ms by default) delays every reply. Lower it to 1 ms
    when the sysfs knob is writable (Linux, root or udev rule); otherwise the adaptive waits
    cover it."""
    name = os.path.basename(os.path.realpath(port))
    knob = "/sys/bus/usb-serial/devices/%s/latency_timer" % name
    try:
        with open(knob) as f:
            current = int(f.read().strip() or 0)
        if current > 1:
            with open(knob, "w") as f:
                f.write("1")
            log.info("%s: latency timer %d ms -> 1 ms", port, current)
    except (OSError, ValueError):
        pass


class _SerialLink(NativeTransport):

    _byte_stream = True
    def _open_serial(self, port, baudrate):
        try:
            import serial
        except ImportError as e:  # pragma: no cover - pyserial is a dependency
            raise ImportError("the serial interfaces need pyserial: pip install pyserial") from e
        self._serial_module = serial
        self._port = port
        self._baudrate = baudrate
        self._ser = None
        self._next_open = 0.0
        self._init_native(_SerialLink)
        self._reopen(first=True)

    def _reopen(self, first=False):
        serial = self._serial_module
        now = time.monotonic()
        if not first and now < self._next_open:
            raise ConnectionError("%s is not open" % self._port)
        self._next_open = now + _REOPEN_INTERVAL_S
        try:
            ser = serial.Serial(self._port, self._baudrate, timeout=0, write_timeout=0,
                                exclusive=True if os.name == "posix" else None)
        except (serial.SerialException, OSError, ValueError) as e:
            if first:
                raise
            raise ConnectionError("cannot reopen %s: %s" % (self._port, e)) from e
        _set_ftdi_latency(self._port)
        self._ser = ser
        self._fd = ser.fileno() if os.name == "posix" else None
        if not first:
            log.info("%s: reopened", self._port)

    def _lost(self, e):
        log.warning("%s: %s; reopening", self._port, e)
        try:
            self._ser.close()
        except Exception:  # noqa: BLE001 - the port is already broken
            pass
        self._ser = None

    def _ready(self):
        if self._ser is None:
            self._reopen()
        return self._ser

    def _read(self, buff, deadlines, stream):
        ser = self._ready()
        try:
            if self._fd is not None:
                return read_fd(self._fd, buff, deadlines)
            return self._read_portable(ser, buff, deadlines)
        except (OSError, self._serial_module.SerialException) as e:
            self._lost(e)
            raise ConnectionError(str(e)) from e

    @staticmethod
    def _read_portable(ser, buff, deadlines):
        view = memoryview(buff)
        got = 0
        while got < len(view):
            ser.timeout = max(deadlines.remaining(got), 0)
            chunk = ser.read(len(view) - got)
            if not chunk:
                return False
            view[got:got + len(chunk)] = chunk
            got += len(chunk)
            deadlines.progress()
        return True

    def _write(self, data, timeout_ms, stream):
        ser = self._ready()
        try:
            if self._fd is not None:
                write_fd(self._fd, data, timeout_ms)
            else:
                ser.write_timeout = timeout_ms / 1000.0
                ser.write(data)
        except TimeoutError:
            raise
        except self._serial_module.SerialTimeoutException as e:
            raise TimeoutError(str(e)) from e
        except (OSError, self._serial_module.SerialException) as e:
            self._lost(e)
            raise ConnectionError(str(e)) from e

    def _wait_input(self, timeout_s):
        if self._ser is None:
            return False
        if self._fd is not None:
            return wait_readable(self._fd, timeout_s)
        time.sleep(timeout_s)
        return bool(self._ser.in_waiting)

    def _drop_input(self):
        try:
            ser = self._ready()
            ser.reset_input_buffer()
        except ConnectionError:
            pass
        except (OSError, self._serial_module.SerialException) as e:
            self._lost(e)

    def close(self):
        if self._ser is not None:
            self._ser.close()
            self._ser = None
        self._next_open = float("inf")


class rpc_usb_vcp_master(_SerialLink, rpc_master):
    """Master over the cam's USB serial port (e.g. "/dev/ttyACM0", "COM3")."""

    def __init__(self, port, raise_on_error=False):
        rpc_master.__init__(self, raise_on_error)
        self._open_serial(port, 115200)


class rpc_usb_vcp_slave(_SerialLink, rpc_slave):
    def __init__(self, port, raise_on_error=False):
        rpc_slave.__init__(self, raise_on_error)
        self._open_serial(port, 115200)


class rpc_uart_master(_SerialLink, rpc_master):
    """Master over a UART (a USB-serial adapter wired to the cam's UART)."""

    def __init__(self, port, baudrate=9600, raise_on_error=False):
        rpc_master.__init__(self, raise_on_error)
        self._open_serial(port, baudrate)
        # 10 bits a byte on the wire, until a rate is measured.
        self._session.set_link_hint(baudrate / 10.0)


class rpc_uart_slave(_SerialLink, rpc_slave):
    def __init__(self, port, baudrate=9600, raise_on_error=False):
        rpc_slave.__init__(self, raise_on_error)
        self._open_serial(port, baudrate)
        self._session.set_link_hint(baudrate / 10.0)
