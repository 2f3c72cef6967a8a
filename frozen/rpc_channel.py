# rpc_channel: rpc over a Protocol V2 custom channel, the link OpenMV IDE and the `openmv`
# package speak on the cam's USB port (on the virtual cam: UART4). The cam registers a
# channel; the host writes the rpc bytes for the cam into it (CHANNEL_WRITE) and reads the
# cam's bytes out of it (CHANNEL_SIZE, CHANNEL_READ). The rpc protocol runs unchanged on top
# (its CRCs and retries cover a lost or repeated chunk).
#
#     interface = rpc.rpc_channel_slave(name="rpc")     # host: rpc.rpc_omv_master(port)
#     interface.register_callback(echo)
#     interface.loop()
#
# The bytes move in the protocol task (the glue calls the backend's write/read/size); the rpc
# engine reads them through get_bytes/put_bytes below.
# In the native module this file is merged into rpc; in firmware rpc.py imports it at its end.
try:
    rpc_master
except NameError:
    from rpc import rpc_master, rpc_slave

import time as _time


class _ChannelPipe:
    """A Protocol V2 channel backend: two byte queues. The host's writes land in `inbound`;
    `outbound` is what the host reads (a read takes the bytes it returns)."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.inbound = bytearray()
        self.outbound = bytearray()

    # --- the backend methods the protocol calls ---
    def size(self):
        return len(self.outbound)

    def poll(self):
        return len(self.outbound) > 0

    def read(self, offset, size):
        # The firmware reads one request in pieces with rising offsets: take from the front.
        data = bytes(self.outbound[:size])
        self.outbound[:size] = b""
        return data

    def write(self, offset, data):
        if len(self.inbound) + len(data) > self.capacity:
            return 0    # refused: FAILED to the host
        self.inbound.extend(data)
        return len(data)

    # --- the rpc side ---
    def take(self, buff, timeout_ms):
        n = len(buff)
        start = _time.ticks_ms()
        while len(self.inbound) < n:
            if _time.ticks_diff(_time.ticks_ms(), start) >= timeout_ms:
                return None
            # Sleeping lets the scheduler run the protocol task that fills `inbound`.
            _time.sleep_ms(1)
        buff[:] = self.inbound[:n]
        self.inbound[:n] = b""
        return buff

    def give(self, data):
        self.outbound.extend(data)


def _register(name, capacity):
    import protocol

    pipe = _ChannelPipe(capacity)
    return pipe, protocol.register(name=name, backend=pipe)


class rpc_channel_master(rpc_master):
    def __init__(self, name="rpc", capacity=131072):
        self._pipe, self.channel = _register(name, capacity)
        rpc_master.__init__(self)

    def get_bytes(self, buff, timeout_ms):
        return self._pipe.take(buff, timeout_ms)

    def put_bytes(self, data, timeout_ms):
        self._pipe.give(data)

    def _flush(self):
        self._pipe.inbound[:] = b""


class rpc_channel_slave(rpc_slave):
    def __init__(self, name="rpc", capacity=131072):
        self._pipe, self.channel = _register(name, capacity)
        rpc_slave.__init__(self)

    def get_bytes(self, buff, timeout_ms):
        return self._pipe.take(buff, timeout_ms)

    def put_bytes(self, data, timeout_ms):
        self._pipe.give(data)

    def _flush(self):
        self._pipe.inbound[:] = b""
