"""rpc over the OpenMV IDE's link (Protocol V2) through a custom channel of the cam.

The cam side registers the channel (`rpc.rpc_channel_slave(name="rpc")` or
`rpc.rpc_channel_master(...)` in frozen/rpc_channel.py); here the rpc bytes for the cam go
in with CHANNEL_WRITE and the cam's bytes come out with CHANNEL_SIZE + CHANNEL_READ.

    from openmv import Camera            # the official package (PyPI `openmv`)
    import rpc
    with Camera("/dev/ttyACM0") as cam:
        interface = rpc.rpc_omv_camera_master(cam, channel="rpc")
        print(bytes(interface.call("echo", b"hello")))
"""

import struct
import time

from ._base import rpc_master, rpc_slave


class _CameraPipe:
    """The channel as a byte pipe, through an `openmv.Camera`."""

    # Between two polls of an empty channel (each poll is a round trip on the link).
    POLL_PAUSE_S = 0.0005

    def __init__(self, camera, channel):
        self.camera = camera
        self.channel = channel
        self.pending = bytearray()

    def _exceptions(self):
        from openmv.exceptions import OMVException

        return (OMVException,)

    def get(self, buff, timeout_ms):
        n = len(buff)
        deadline = time.monotonic() + timeout_ms / 1000.0
        errors = self._exceptions()
        while len(self.pending) < n:
            try:
                size = self.camera.channel_size(self.channel)
                if size:
                    data = self.camera.channel_read(self.channel, size)
                    if data:
                        self.pending += data
                        continue
            except errors:
                pass  # the package resynchronised; rpc's own retries cover what was lost
            if time.monotonic() >= deadline:
                return None
            time.sleep(self.POLL_PAUSE_S)
        buff[:] = self.pending[:n]
        del self.pending[:n]
        return buff

    def put(self, data):
        try:
            if not self.camera.channel_write(self.channel, bytes(data)):
                raise OSError("the cam has no channel %r" % self.channel)
        except self._exceptions() as e:
            raise OSError("channel write failed: %s" % e) from e

    def flush(self):
        self.pending.clear()


class rpc_omv_camera_master(rpc_master):
    """An rpc master on the cam's `channel`, through the official package's Camera."""

    def __init__(self, camera, channel="rpc", raise_on_error=False):
        self._pipe = _CameraPipe(camera, channel)
        rpc_master.__init__(self, raise_on_error)

    def get_bytes(self, buff, timeout_ms):
        return self._pipe.get(buff, timeout_ms)

    def put_bytes(self, data, timeout_ms):
        self._pipe.put(data)

    def _flush(self):
        self._pipe.flush()


class rpc_omv_camera_slave(rpc_slave):
    """An rpc slave on the cam's `channel` (the cam runs rpc_channel_master)."""

    def __init__(self, camera, channel="rpc", raise_on_error=False):
        self._pipe = _CameraPipe(camera, channel)
        rpc_slave.__init__(self, raise_on_error)

    def get_bytes(self, buff, timeout_ms):
        return self._pipe.get(buff, timeout_ms)

    def put_bytes(self, data, timeout_ms):
        self._pipe.put(data)

    def _flush(self):
        self._pipe.flush()


# --- our own host role (protocol/src/host.rs through _engine.OmvHost): no `openmv` needed ---

_SYNC, _GET_CAPS, _SET_CAPS = 0x00, 0x01, 0x02
_CHANNEL_LIST, _CHANNEL_SIZE, _CHANNEL_READ, _CHANNEL_WRITE = 0x20, 0x25, 0x26, 0x27


class OmvLinkError(OSError):
    pass


class OmvLink:
    """A Protocol V2 host on a serial port: connects as the IDE does (SYNC, GET_CAPS,
    SET_CAPS, CHANNEL_LIST) and offers the Camera methods rpc needs (channel_size,
    channel_read, channel_write). A command that times out or is refused is tried again
    after a resync, as the `openmv` package does."""

    def __init__(self, port, baudrate=921600, timeout=1.0, max_payload=4082, serial_port=None):
        from . import _engine

        if serial_port is None:
            import serial

            serial_port = serial.Serial(port, baudrate, timeout=0)
        self.serial = serial_port
        self.timeout = timeout
        self.max_payload = max_payload
        self.host = _engine.OmvHost(int(timeout * 1000))
        self.channels = {}
        self.events = 0
        self.connect()

    @staticmethod
    def _now():
        return int(time.monotonic() * 1000)

    def close(self):
        self.serial.close()

    def _run(self):
        """Runs the command in progress to its end: the answer's bytes, or raises."""
        answer = bytearray()
        while True:
            kind, value = self.host.poll(self._now())
            if kind == "transmit":
                self.serial.write(value)
            elif kind == "fragment":
                answer += value
            elif kind == "response":
                answer += value
                return bytes(answer)
            elif kind == "event":
                self.events += 1
            elif kind == "nak":
                raise OmvLinkError("refused (status %d)" % value)
            elif kind == "timeout":
                raise OmvLinkError("no answer")
            else:
                data = self.serial.read(self.serial.in_waiting or 1)
                if data:
                    self.host.receive(data)
                else:
                    time.sleep(0.0002)

    def _command(self, op, chan=0, payload=b""):
        if not self.host.command(self._now(), op, chan, payload):
            raise OmvLinkError("command not accepted")
        return self._run()

    def connect(self, attempts=5):
        for _ in range(attempts):
            try:
                self.host.sync(self._now())
                self._run()
                caps = self._command(_GET_CAPS)
                _, device_max = struct.unpack_from("<IH", caps)
                self.max_payload = min(self.max_payload, device_max)
                self._command(_SET_CAPS, 0, struct.pack("<IH10x", 0xF, self.max_payload))
                self.host.update_caps(True, True, self.max_payload)
                self._list_channels()
                return
            except OmvLinkError:
                continue
        raise OmvLinkError("no Protocol V2 device answers")

    def _list_channels(self):
        payload = self._command(_CHANNEL_LIST)
        self.channels = {}
        for i in range(0, len(payload) - 15, 16):
            cid, _, raw = struct.unpack_from("<BB14s", payload, i)
            self.channels[raw.split(b"\0", 1)[0].decode(errors="ignore")] = cid
        self.events = 0

    def _retrying(self, fn):
        for attempt in range(3):
            try:
                return fn()
            except OmvLinkError:
                if attempt == 2:
                    raise
                self.connect()

    def channel_id(self, name):
        if self.events or name not in self.channels:
            self._retrying(self._list_channels)
        return self.channels.get(name)

    def channel_size(self, name):
        cid = self.channel_id(name)
        if cid is None:
            return 0
        return struct.unpack("<I", self._retrying(lambda: self._command(_CHANNEL_SIZE, cid))[:4])[0]

    def channel_read(self, name, size):
        cid = self.channel_id(name)
        if cid is None or size == 0:
            return b""
        return self._retrying(lambda: self._command(_CHANNEL_READ, cid, struct.pack("<II", 0, size)))

    def channel_write(self, name, data):
        cid = self.channel_id(name)
        if cid is None:
            return False
        step = self.max_payload - 8
        for start in range(0, len(data), step):
            chunk = bytes(data[start:start + step])
            self._retrying(lambda: self._command(_CHANNEL_WRITE, cid, struct.pack("<II", start, len(chunk)) + chunk))
        return True


class _LinkPipe(_CameraPipe):
    def _exceptions(self):
        return (OmvLinkError,)


class rpc_omv_master(rpc_master):
    """An rpc master on the cam's `channel` over the IDE's link on `port` (Protocol V2, our
    own host role: CPython 3.8+, no `openmv` package)."""

    def __init__(self, port, channel="rpc", baudrate=921600, raise_on_error=False):
        self.link = OmvLink(port, baudrate)
        self._pipe = _LinkPipe(self.link, channel)
        rpc_master.__init__(self, raise_on_error)

    def get_bytes(self, buff, timeout_ms):
        return self._pipe.get(buff, timeout_ms)

    def put_bytes(self, data, timeout_ms):
        self._pipe.put(data)

    def _flush(self):
        self._pipe.flush()

    def close(self):
        self.link.close()


class rpc_omv_slave(rpc_slave):
    """An rpc slave on the cam's `channel` over the IDE's link on `port` (our host role)."""

    def __init__(self, port, channel="rpc", baudrate=921600, raise_on_error=False):
        self.link = OmvLink(port, baudrate)
        self._pipe = _LinkPipe(self.link, channel)
        rpc_slave.__init__(self, raise_on_error)

    def get_bytes(self, buff, timeout_ms):
        return self._pipe.get(buff, timeout_ms)

    def put_bytes(self, data, timeout_ms):
        self._pipe.put(data)

    def _flush(self):
        self._pipe.flush()

    def close(self):
        self.link.close()
