"""CAN interfaces over python-can (any adapter it supports: Kvaser, SocketCAN, PCAN, ...).

Bytes travel in 8-byte frames of the standard 11-bit id `message_id` (the last frame may be
shorter); a receiver expects exactly ceil(n / 8) frames of the right length and id.
python-can is imported only when one of these classes is made.
"""

import time

from ._base import rpc_master, rpc_slave
from ._transport import NativeTransport

FRAME_BYTES = 8


def _can_module():
    try:
        import can
    except ImportError as e:
        raise ImportError(
            "the CAN interfaces need python-can: pip install python-can (or omv-rpc[can])"
        ) from e
    return can


def bit_timing(sampling_point):
    """(tseg1, tseg2) of an 8-quantum bit whose sample point is `sampling_point` percent."""
    for tseg1 in range(1, 7):
        tseg2 = 7 - tseg1
        if (1 + tseg1) * 1000 // 8 == sampling_point * 10:
            return tseg1, tseg2
    raise ValueError("sampling_point must be one of 25, 37, 50, 62, 75, 87 (8 time quanta): %r"
                     % (sampling_point,))


class _CanLink(NativeTransport):
    def _open_can(self, bus, message_id):
        if not 0 <= message_id <= 0x7FF:
            raise ValueError("message_id must be a standard 11-bit id: %r" % (message_id,))
        self._can = _can_module()
        self._bus = bus
        self._message_id = message_id
        try:
            bus.set_filters([{"can_id": message_id, "can_mask": 0x7FF, "extended": False}])
        except (NotImplementedError, AttributeError):
            pass
        self._init_native(_CanLink)

    def _read(self, buff, deadlines, stream):
        view = memoryview(buff)
        n = len(view)
        for i in range(0, n, FRAME_BYTES):
            msg = self._bus.recv(timeout=max(deadlines.remaining(i), 0))
            if msg is None:
                return False
            expected = min(n - i, FRAME_BYTES)
            if (msg.arbitration_id != self._message_id or msg.is_extended_id
                    or msg.is_remote_frame or msg.dlc != expected):
                return False
            view[i:i + expected] = bytes(msg.data[:expected])
            deadlines.progress()
        return True

    def _write(self, data, timeout_ms, stream):
        view = memoryview(data).cast("B")
        deadline = time.monotonic() + timeout_ms / 1000.0
        for i in range(0, len(view), FRAME_BYTES):
            msg = self._can.Message(arbitration_id=self._message_id, is_extended_id=False,
                                    data=bytes(view[i:i + FRAME_BYTES]))
            try:
                self._bus.send(msg, timeout=max(deadline - time.monotonic(), 0.001))
            except self._can.CanOperationError as e:
                raise TimeoutError(str(e)) from e
            except self._can.CanError as e:
                raise ConnectionError(str(e)) from e

    def _wait_input(self, timeout_s):
        return self._bus.recv(timeout=max(timeout_s, 0)) is not None

    def _drop_input(self):
        while self._bus.recv(timeout=0) is not None:
            pass

    def close(self):
        if self._bus is not None:
            self._bus.shutdown()
            self._bus = None


def _open_bus(interface, channel, bit_rate, bus, **kwargs):
    can = _can_module()
    if bus is not None:
        return bus
    return can.Bus(interface=interface, channel=channel, bitrate=bit_rate, **kwargs)


class rpc_can_master(_CanLink, rpc_master):
    """Master over any python-can bus: rpc_can_master(channel="can0", interface="socketcan"),
    or pass an open python-can `bus=`."""

    def __init__(self, channel=None, interface=None, message_id=0x7FF, bit_rate=250000,
                 sampling_point=75, bus=None, raise_on_error=False, **bus_kwargs):
        rpc_master.__init__(self, raise_on_error)
        bit_timing(sampling_point)
        self._open_can(_open_bus(interface, channel, bit_rate, bus, **bus_kwargs), message_id)
        self._session.set_link_hint(bit_rate / 8.0 / 2.0)


class rpc_can_slave(_CanLink, rpc_slave):
    def __init__(self, channel=None, interface=None, message_id=0x7FF, bit_rate=250000,
                 sampling_point=75, bus=None, raise_on_error=False, **bus_kwargs):
        rpc_slave.__init__(self, raise_on_error)
        bit_timing(sampling_point)
        self._open_can(_open_bus(interface, channel, bit_rate, bus, **bus_kwargs), message_id)
        self._session.set_link_hint(bit_rate / 8.0 / 2.0)


def _kvaser_bus(channel, bit_rate, sampling_point):
    tseg1, tseg2 = bit_timing(sampling_point)
    return _open_bus("kvaser", channel, bit_rate, None, tseg1=tseg1, tseg2=tseg2, sjw=1)


class rpc_kvarser_can_master(_CanLink, rpc_master):
    """The desktop library's Kvaser master (its original spelling), over python-can's
    kvaser interface."""

    def __init__(self, channel, message_id=0x7FF, bit_rate=250000, sampling_point=75,
                 raise_on_error=False):
        rpc_master.__init__(self, raise_on_error)
        self._open_can(_kvaser_bus(channel, bit_rate, sampling_point), message_id)
        self._session.set_link_hint(bit_rate / 8.0 / 2.0)


class rpc_kvarser_can_slave(_CanLink, rpc_slave):
    def __init__(self, channel, message_id=0x7FF, bit_rate=250000, sampling_point=75,
                 raise_on_error=False):
        rpc_slave.__init__(self, raise_on_error)
        self._open_can(_kvaser_bus(channel, bit_rate, sampling_point), message_id)
        self._session.set_link_hint(bit_rate / 8.0 / 2.0)
