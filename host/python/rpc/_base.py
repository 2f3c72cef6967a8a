"""The documented base classes: rpc, rpc_master, rpc_slave.

Every protocol decision (framing, CRC, retries, phases, stream credits) is made by the Rust
engine in `rpc._engine`; these classes only hold the user's callbacks and options and hand the
engine a transport: `get_bytes`/`put_bytes`/`_flush` (and `_stream_get_bytes`/
`_stream_put_bytes` for stream traffic), which a subclass may override as the desktop README
documents.
"""

import atexit
import logging
import threading
import weakref

from . import _engine

log = logging.getLogger("rpc")

# Slaves whose loop() runs, so that the interpreter can stop them before it exits: a loop in
# a daemon thread that is still inside the engine when the interpreter finalizes would be
# killed in the middle of a native frame (CPython ends such threads with a forced unwind).
_running_loops = weakref.WeakKeyDictionary()


@atexit.register
def _stop_running_loops():
    for slave, thread in list(_running_loops.items()):
        slave.stop()
        if thread is not threading.current_thread():
            thread.join(5.0)


class RpcError(OSError):
    """A call or stream that did not succeed, with the engine's account of why.

    `status` is one of SEND_TIMEOUT, RECV_TIMEOUT, NO_COMMAND, RESULT_NOT_TAKEN, STREAM_*,
    TRANSPORT_ERROR; `packet` the packet that failed last (e.g. RESULT_HEADER), `reason` one
    of timeout, bad_magic, bad_crc, too_long, transport; `attempts` the attempts made.
    """

    def __init__(self, message, status=None, packet=None, reason=None, attempts=0):
        super().__init__(message)
        self.status = status
        self.packet = packet
        self.reason = reason
        self.attempts = attempts


def name_hash(name):
    """The 32-bit hash that names a callback on the wire (str or bytes)."""
    return _engine.name_hash(name)


def crc16(data):
    """CRC-16/CCITT-FALSE, the packets' checksum."""
    return _engine.crc16(data)


class rpc:
    """Base of every interface. Subclass it (through rpc_master or rpc_slave) and override
    get_bytes/put_bytes (and optionally _flush) to add a transport."""

    _is_master = True

    def __init__(self, raise_on_error=False):
        self._session = _engine.Session(self._is_master)
        self.raise_on_error = raise_on_error
        self.last_error = None

    # --- the transport (override these) -------------------------------------------------

    def _flush(self):
        """Drop all pending input."""

    def get_bytes(self, buff, timeout_ms):
        """Fill `buff` within `timeout_ms`; return it, or None if it did not fill."""
        return None

    def put_bytes(self, data, timeout_ms):
        """Write `data` within `timeout_ms` (raise OSError if it cannot be written)."""

    def _stream_get_bytes(self, buff, timeout_ms):
        return self.get_bytes(buff, timeout_ms)

    def _stream_put_bytes(self, data, timeout_ms):
        self.put_bytes(data, timeout_ms)

    def _recv(self, buff, first_ms, gap_ms, total_ms):
        """What the engine calls to receive a packet. Transports of this package read with
        a first-byte wait, an inter-byte gap and a total; a user's get_bytes gets the total."""
        return self.get_bytes(buff, total_ms)

    # --- modern use ---------------------------------------------------------------------

    def close(self):
        """Release the transport (ports, sockets, buses)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def stats(self):
        """Counters of the engine (packets, errors, retries, calls, streams)."""
        return self._session.stats()

    def stats_reset(self):
        self._session.stats_reset()

    def link(self):
        """What this side measured about its link (round trip, reply wait, rate)."""
        return self._session.link()

    def set_limits(self, max_argument_len=None, max_result_len=None, max_frame_len=None):
        """Longest lengths accepted off the wire (default 1 MiB each); a longer header is
        refused before anything is allocated."""
        self._session.configure(
            max_argument_len=max_argument_len,
            max_result_len=max_result_len,
            max_frame_len=max_frame_len,
        )

    def set_timing(self, short_timeout_ms=None, long_timeout_ms=None, bytes_per_s=None,
                   adaptive=None, pipeline=None):
        """Engine timing (None keeps, 0 takes the reference default). `bytes_per_s` is the
        link's rate until one is measured; `adaptive=False` and `pipeline=False` give the
        reference behaviour exactly (for comparison: it fails on slow or jittery links).
        `pipeline`: True (the default) writes the RESULT_DATA request right behind the
        RESULT_HEADER request; "all" also COMMAND_DATA right behind COMMAND_HEADER (one more
        round trip saved; the slave must buffer COMMAND_DATA while it handles the header, as
        this project's slaves do)."""
        self._session.configure(short_timeout_ms=short_timeout_ms, long_timeout_ms=long_timeout_ms)
        if bytes_per_s is not None:
            self._session.set_link_hint(float(bytes_per_s))
        if adaptive is not None:
            self._session.adaptive = bool(adaptive)
        if pipeline is not None:
            self._session.pipeline = pipeline if pipeline == "all" else bool(pipeline)

    def _failed(self, what, raise_on_error):
        self.last_error = self._session.last_error_text()
        log.debug("%s failed: %s", what, self.last_error)
        if self.raise_on_error if raise_on_error is None else raise_on_error:
            status, packet, reason, attempts = self._session.last_error_info()
            raise RpcError("%s: %s" % (what, self.last_error), status, packet, reason, attempts)

    # --- streams ------------------------------------------------------------------------

    def stream_reader(self, call_back, queue_depth=1, read_timeout_ms=5000):
        """Receive frames (call_back(memoryview)) until the stream ends; returns the engine's
        status name of the end (a stream always ends by an error or timeout)."""
        status = self._session.stream_reader(self, call_back, queue_depth, read_timeout_ms)
        self.last_error = None if status == "OK" else self._session.last_error_text()
        log.debug("stream_reader ended: %s", self.last_error)
        return status

    def stream_writer(self, call_back, write_timeout_ms=5000):
        """Send the frames call_back() returns until the stream ends (call_back returning
        None ends it); returns the engine's status name of the end."""
        status = self._session.stream_writer(self, call_back, write_timeout_ms)
        self.last_error = None if status == "OK" else self._session.last_error_text()
        log.debug("stream_writer ended: %s", self.last_error)
        return status


class rpc_master(rpc):
    _is_master = True

    def __init__(self, raise_on_error=False):
        rpc.__init__(self, raise_on_error)

    def call(self, name, data=bytes(), send_timeout=1000, recv_timeout=1000, raise_on_error=None):
        """Call `name` on the slave with `data`. Returns a memoryview of the result, an empty
        one when the slave has no such callback, None when a phase ran out of time (then
        last_error says why; with raise_on_error an RpcError is raised instead)."""
        if isinstance(name, str):
            name = name.encode()
        if isinstance(data, str):
            data = data.encode()  # the desktop examples pass text arguments
        result = self._session.call(self, _engine.name_hash(name), data, send_timeout, recv_timeout)
        if result is None:
            if self._session.cancelled:
                self.last_error = "CANCELLED: call_cancel()"
                return None
            self._failed("call %r" % name.decode(errors="replace"), raise_on_error)
            return None
        self.last_error = None
        return memoryview(result)

    # --- a call that does not block (an extension) ----------------------------------------

    def call_start(self, name, data=bytes(), send_timeout=1000, recv_timeout=1000):
        """Start a call in the background; call_poll() says when it is done, call_result()
        gives what call() would have returned, call_cancel() gives up on it."""
        if getattr(self, "_pending", None) is not None:
            raise RuntimeError("a call_start() is in progress: finish it with call_result() "
                               "or call_cancel()")
        box = {}

        def run():
            try:
                box["result"] = self.call(name, data, send_timeout, recv_timeout, False)
            except BaseException as e:  # noqa: BLE001 - handed to call_result()
                box["error"] = e

        # Not a daemon: the call ends by itself within its two phase timeouts.
        thread = threading.Thread(target=run, name="rpc call_start")
        self._pending = (thread, box)
        thread.start()

    def call_poll(self):
        """True when the call started by call_start() is done."""
        pending = getattr(self, "_pending", None)
        if pending is None:
            raise RuntimeError("no call_start() in progress")
        return not pending[0].is_alive()

    def call_result(self, raise_on_error=None):
        """The result of the call started by call_start() (waits for it if need be)."""
        pending = getattr(self, "_pending", None)
        if pending is None:
            raise RuntimeError("no call_start() in progress")
        thread, box = pending
        thread.join()
        self._pending = None
        if "error" in box:
            raise box["error"]
        result = box.get("result")
        if result is None and not self._session.cancelled and (
                self.raise_on_error if raise_on_error is None else raise_on_error):
            status, packet, reason, attempts = self._session.last_error_info()
            raise RpcError("call: %s" % self.last_error, status, packet, reason, attempts)
        return result

    def call_cancel(self):
        """Give up on the call started by call_start() (it ends at its next step)."""
        pending = getattr(self, "_pending", None)
        if pending is None:
            return
        self._session.cancel()
        pending[0].join()
        self._pending = None


class rpc_slave(rpc):
    _is_master = False

    def __init__(self, raise_on_error=False):
        self.__callbacks = {}
        self.__schedule_cb = None
        self.__loop_cb = None
        self.__stop = False
        rpc.__init__(self, raise_on_error)

    def register_callback(self, cb):
        """Serve `cb` (called with a memoryview of the argument; returns a bytes-like or None)
        under its __name__."""
        self.__callbacks[_engine.name_hash(cb.__name__)] = cb

    def schedule_callback(self, cb):
        """Run `cb` once, after the result of the current command is taken by the master."""
        self.__schedule_cb = cb

    def setup_loop_callback(self, cb):
        """Run `cb` after every turn of loop()."""
        self.__loop_cb = cb

    def stop(self):
        """Make loop() return after its current turn (from a callback or another thread)."""
        self.__stop = True

    def loop_once(self, recv_timeout=1000, send_timeout=1000):
        """One turn of loop(); returns the engine's status name (OK: a command was served)."""
        status = self._session.serve(self, self.__callbacks, recv_timeout, send_timeout)
        if status != "NO_COMMAND":
            schedule, self.__schedule_cb = self.__schedule_cb, None
            if status == "OK":
                self.last_error = None
                if schedule is not None:
                    schedule()
            else:
                self.last_error = self._session.last_error_text()
                log.debug("command not served: %s", self.last_error)
        if self.__loop_cb is not None:
            self.__loop_cb()
        return status

    def loop(self, recv_timeout=1000, send_timeout=1000):
        """Serve commands forever (until stop()); an exception in a callback propagates."""
        self.__stop = False
        _running_loops[self] = threading.current_thread()
        try:
            while not self.__stop:
                self.loop_once(recv_timeout, send_timeout)
        finally:
            _running_loops.pop(self, None)
