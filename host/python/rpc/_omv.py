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
