"""What every transport of this package shares: reads with a first-byte wait, an inter-byte
gap and a total (so a stalled data packet fails fast and a slow big one still gets through),
and the documented get_bytes/put_bytes/_flush on top of them."""

import os
import select
import time

_POLL = hasattr(select, "poll")


def wait_readable(fd, timeout_s):
    """True when `fd` has input within `timeout_s` seconds."""
    if timeout_s < 0:
        timeout_s = 0
    if _POLL:
        p = select.poll()
        p.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(p.poll(timeout_s * 1000.0))
    r, _, _ = select.select([fd], [], [], timeout_s)
    return bool(r)


def wait_writable(fd, timeout_s):
    if timeout_s < 0:
        timeout_s = 0
    if _POLL:
        p = select.poll()
        p.register(fd, select.POLLOUT | select.POLLERR | select.POLLHUP)
        return bool(p.poll(timeout_s * 1000.0))
    _, w, _ = select.select([], [fd], [], timeout_s)
    return bool(w)


class Deadlines:
    """The three waits of one read: the first byte by `first_ms`, then at most `gap_ms`
    between bytes, all by `total_ms` (ms from now; gap None: no gap rule)."""

    __slots__ = ("start", "first", "total", "gap", "last", "first_at")

    def __init__(self, first_ms, gap_ms, total_ms):
        self.start = time.monotonic()
        self.first = self.start + first_ms / 1000.0
        self.total = self.start + max(total_ms, first_ms) / 1000.0
        self.gap = None if gap_ms is None else gap_ms / 1000.0
        self.last = None
        self.first_at = None

    def remaining(self, got):
        """Seconds left to wait for the next bytes (<= 0: give up)."""
        now = time.monotonic()
        if not got:
            return self.first - now
        if self.gap is None:
            return self.total - now
        return min(self.total, self.last + self.gap) - now

    def progress(self):
        self.last = time.monotonic()
        if self.first_at is None:
            self.first_at = self.last


class NativeTransport:
    """Mixin for this package's transports. A subclass of a transport class that overrides
    get_bytes/put_bytes (the documented way) still gets its overrides called."""

    # A byte stream that may be read in pieces (set by the serial, stream and network links).
    _byte_stream = False

    def _init_native(self, cls):
        t = type(self)
        self.__own_get = t.get_bytes is cls.get_bytes
        self.__own_stream_get = t._stream_get_bytes is cls._stream_get_bytes
        # A subclass that overrides get_bytes reads whole packets its own way.
        self._session.split_reads = bool(self.__own_get and cls._byte_stream)

    # To be provided: _read(buff, deadlines, stream) -> bool, _write(data, timeout_ms, stream),
    # _drop_input(), _wait_input(timeout_s) -> bool (input arrived; it may consume it).

    def _recv(self, buff, first_ms, gap_ms, total_ms):
        if not self.__own_get:
            return self.get_bytes(buff, total_ms)
        d = Deadlines(first_ms, gap_ms, total_ms)
        ok = self._read(buff, d, False)
        # For the link estimate: how long the first byte took (a data packet's round trip).
        self._rx_first_delay = None if d.first_at is None else d.first_at - d.start
        return buff if ok else None

    def get_bytes(self, buff, timeout_ms):
        return buff if self._read(buff, Deadlines(timeout_ms, None, timeout_ms), False) else None

    def put_bytes(self, data, timeout_ms):
        self._write(data, timeout_ms, False)

    def _stream_get_bytes(self, buff, timeout_ms):
        return buff if self._read(buff, Deadlines(timeout_ms, None, timeout_ms), True) else None

    def _stream_put_bytes(self, data, timeout_ms):
        self._write(data, timeout_ms, True)

    def _flush(self):
        self._drop_input()

    def _flush_quiet(self, quiet_ms, max_ms):
        """Drop input until none has come for `quiet_ms` (at most `max_ms`): a reply to an
        attempt given up on may still be on its way, and taken for the next one's it would
        put the two sides out of step."""
        if type(self)._flush is not NativeTransport._flush:
            self._flush()  # a subclass's own flush: it knows its transport
            return
        deadline = time.monotonic() + max_ms / 1000.0
        self._drop_input()
        while time.monotonic() < deadline and self._wait_input(quiet_ms / 1000.0):
            self._drop_input()


def read_fd(fd, buff, deadlines):
    """Fill `buff` from a non-blocking fd under `deadlines`. False on timeout; OSError when
    the other end is gone."""
    view = memoryview(buff)
    n = len(view)
    got = 0
    while got < n:
        # Past the deadline, what is already there still counts (the process may have been
        # descheduled while the packet arrived in time).
        if not wait_readable(fd, max(deadlines.remaining(got), 0)):
            return False
        try:
            chunk = os.read(fd, n - got)
        except BlockingIOError:
            continue
        if not chunk:
            raise ConnectionError("end of file on the link")
        view[got:got + len(chunk)] = chunk
        got += len(chunk)
        deadlines.progress()
    return True


def write_fd(fd, data, timeout_ms):
    view = memoryview(data).cast("B")
    deadline = time.monotonic() + timeout_ms / 1000.0
    sent = 0
    while sent < len(view):
        try:
            sent += os.write(fd, view[sent:])
            continue
        except BlockingIOError:
            pass
        if not wait_writable(fd, deadline - time.monotonic()):
            raise TimeoutError("link did not take %d bytes in %d ms" % (len(view) - sent, timeout_ms))
