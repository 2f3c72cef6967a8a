# ref_rpc.py: an independent pure-Python peer of the OpenMV rpc wire protocol, written from
# PROTOCOL.md only. It is the peer our native module must interoperate with (in both roles)
# and the baseline the benchmarks compare against. Not shipped.
#
# Runs in MicroPython (unix port, and any board with time.ticks_ms/ticks_diff/sleep_ms and
# struct) and in CPython 3. The core (packets, calls, streams) needs nothing else; each
# transport imports its own modules when it is constructed.
#
# Reference behaviour minus the known defects listed in PROTOCOL.md:
# - a packet (stream setup and header included) is valid only when magic AND crc match;
# - a length field above max_*_len is rejected before anything is allocated (counted in
#   stats["too_long"]);
# - packet buffers are allocated once per call/phase, never per attempt, and no gc.collect();
# - the network master can be constructed;
# - after a data packet the wait for its ack is stretched by its size (n // 256 ms), so that a
#   slow (pure-Python) peer computing the crc of a 64 KiB argument does not miss it;
# - every wait is cut at the end of its phase, so call() returns None within the phase
#   timeouts (the reference may overrun a phase by a whole 5000 ms data wait);
# - the slave waits for the RESULT_DATA request with the long timeout (cut at the phase end),
#   not the short one: a master that answers the RESULT_HEADER later than the slave's short
#   timeout otherwise waits its whole phase for a RESULT_DATA the slave will never send (the
#   slave has gone back to waiting for a RESULT_HEADER request). A wrong packet still ends
#   the attempt at once.
#
# use_timing(mode) gives a peer the waits of another existing implementation (PROTOCOL.md,
# "How the existing peers time their waits"); the packets and their order stay the same:
# - "reference" (default): the cam-side rpc.py, with the changes above.
# - "arduino": the Arduino library. Master: short timeouts grow x1.5; RESULT_DATA is waited
#   for with a 5000 ms timeout that restarts on every byte that comes, not cut at the phase
#   end (a failed call can take ~5 s). Slave: loop(100, 100) by default; each attempt of a
#   phase starts by dropping pending input (so a request that came while the callback ran is
#   lost); after RESULT_HEADER it waits only its short timeout (2 ms, +1 ms a retry) for the
#   RESULT_DATA request.
# - "desktop": the old desktop library. On a byte stream (pyserial) every read waits a fixed
#   10 ms per 1024-byte chunk whatever the timeout says, and after a failed attempt it sleeps
#   the short timeout before the next one drops input. On the network each UDP read waits the
#   short timeout x 10, data packets too (no long timeout).

import struct

try:
    from time import ticks_ms, ticks_diff, sleep_ms
except ImportError:  # CPython
    import time as _time

    def ticks_ms():
        return int(_time.monotonic() * 1000) & 0x3FFFFFFF

    def ticks_diff(a, b):
        d = (a - b) & 0x3FFFFFFF
        return d - 0x40000000 if d & 0x20000000 else d

    def sleep_ms(ms):
        _time.sleep(ms / 1000)


COMMAND_HEADER = 0x1209
COMMAND_DATA = 0xABD1
RESULT_HEADER = 0x9021
RESULT_DATA = 0x1DBA
STREAM_SETUP = 0xEDF6
STREAM_HEADER = 0x542E

MASTER_SHORT_TIMEOUT_MS = 3
SLAVE_SHORT_TIMEOUT_MS = 2
LONG_TIMEOUT_MS = 5000
STREAM_TIMEOUT_MS = 1000
MAX_QUEUE_DEPTH = 255
DEFAULT_MAX_LEN = 1 << 20
# Extra wait for the ack of a data packet: 1 ms per 256 bytes (the peer reads it and checks
# its crc before it acks).
ACK_BYTES_PER_MS = 256


def _crc_table():
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        table.append(c & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE over a buffer."""
    table = _CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFF00) ^ table[(crc >> 8) ^ b]
    return crc


def name_hash(name):
    """djb2-xor over the name's bytes, mod 2**32."""
    if isinstance(name, str):
        name = name.encode()
    h = 5381
    for b in name:
        h = ((h * 33) ^ b) & 0xFFFFFFFF
    return h


def _frame_in_place(magic, packet):
    """packet: bytearray of payload length + 4, payload at [2:-2]; writes magic and crc."""
    n = len(packet)
    struct.pack_into("<H", packet, 0, magic)
    struct.pack_into("<H", packet, n - 2, crc16(memoryview(packet)[:n - 2]))
    return packet


def frame(magic, payload=b""):
    """A whole packet (magic, payload, crc) as a new bytearray."""
    n = len(payload)
    packet = bytearray(n + 4)
    packet[2:2 + n] = payload
    return _frame_in_place(magic, packet)


def _lfsr_next(x):
    return (x >> 1) ^ (0xB8 if x & 1 else 0)


TIMINGS = ("reference", "arduino", "desktop")
DESKTOP_CHUNK = 1024
DESKTOP_CHUNK_TIMEOUT_MS = 10  # pyserial's fixed read timeout in the desktop library
ARDUINO_LOOP_TIMEOUT_MS = 100  # the Arduino slave's loop(100, 100)


class rpc:
    """The protocol over get_bytes/put_bytes/_flush, which a transport (or a user's subclass)
    provides. get_bytes(buff, timeout_ms) fills buff and returns it, or returns None;
    put_bytes(data, timeout_ms) writes data (returning False means it could not)."""

    _short_timeout_start = MASTER_SHORT_TIMEOUT_MS
    timing = "reference"

    def use_timing(self, mode):
        """Wait like another existing implementation: "reference", "arduino" or "desktop"
        (see the top of this file)."""
        if mode not in TIMINGS:
            raise ValueError("timing must be one of %r, not %r" % (TIMINGS, mode))
        self.timing = mode

    def __init__(self):
        self.max_argument_len = DEFAULT_MAX_LEN
        self.max_result_len = DEFAULT_MAX_LEN
        self.max_frame_len = DEFAULT_MAX_LEN
        self.max_queue_depth = MAX_QUEUE_DEPTH
        self._streaming = False
        self._small = bytearray(12)  # headers, acks and requests: at most 8 bytes of payload
        self._ack_byte = bytearray(1)
        self.stats = {"bad_magic": 0, "bad_crc": 0, "too_long": 0, "timeouts": 0, "retries": 0}

    # The transport; a subclass overrides these three.
    def get_bytes(self, buff, timeout_ms):
        raise NotImplementedError

    def put_bytes(self, data, timeout_ms):
        raise NotImplementedError

    def _flush(self):
        pass

    # How much a transport stretches the timeouts of a packet of n bytes (network: x10 on UDP).
    def _timeout_scale(self, n):
        return 1

    def _wait(self, t, n, start, phase_ms):
        """The wait for a packet of n bytes: t (scaled), cut at the end of the phase."""
        left = phase_ms - ticks_diff(ticks_ms(), start)
        t *= self._timeout_scale(n)
        return t if t < left else left

    def _data_wait(self, short, n, start, phase_ms):
        """The wait for a data packet of n bytes: the long timeout; on the desktop library's
        network, the short one x 10 like every other UDP read."""
        if self.timing == "desktop" and self._timeout_scale(n) != 1:
            return self._wait(short, n, start, phase_ms)
        return self._wait(LONG_TIMEOUT_MS, n, start, phase_ms)

    def _after_miss(self, short):
        """Between two attempts: the desktop library sleeps the short timeout on a serial
        line."""
        if self.timing == "desktop" and self._serial_like():
            sleep_ms(short)

    def _timed_read(self, buff, timeout_ms):
        """get_bytes() with the timing's read rule: the desktop library's serial reads wait
        10 ms per 1024-byte chunk, whatever timeout_ms says."""
        if self.timing == "desktop" and self._serial_like():
            mv = memoryview(buff)
            for i in range(0, len(mv), DESKTOP_CHUNK):
                if self.get_bytes(mv[i:i + DESKTOP_CHUNK], DESKTOP_CHUNK_TIMEOUT_MS) is None:
                    return None
            return buff
        return self.get_bytes(buff, timeout_ms)

    def _serial_like(self):
        return not hasattr(self, "_net")

    def _get_bytes_patient(self, buff, timeout_ms):
        """get_bytes() whose timeout restarts whenever bytes come (the Arduino master's
        RESULT_DATA wait). Transports that cannot tell progress wait timeout_ms once."""
        return self.get_bytes(buff, timeout_ms)

    def _get_packet(self, magic, buff, timeout_ms, patient=False):
        """Reads one packet into buff (payload length + 4); the payload as a memoryview, or
        None. patient: the timeout restarts whenever bytes come."""
        if timeout_ms <= 0:
            return None
        got = self._get_bytes_patient(buff, timeout_ms) if patient else self._timed_read(buff, timeout_ms)
        if got is None:
            self.stats["timeouts"] += 1
            return None
        n = len(buff)
        if struct.unpack_from("<H", buff, 0)[0] != magic:
            self.stats["bad_magic"] += 1
            return None
        mv = memoryview(buff)
        if crc16(mv[:n - 2]) != struct.unpack_from("<H", buff, n - 2)[0]:
            self.stats["bad_crc"] += 1
            return None
        return mv[2:n - 2]

    def _get_small(self, magic, payload_len, timeout_ms):
        return self._get_packet(magic, memoryview(self._small)[:payload_len + 4], timeout_ms)

    def _put_packet(self, packet, timeout_ms):
        if timeout_ms <= 0:
            return False
        return self.put_bytes(packet, timeout_ms) is not False

    # Streams (after a call has synchronised both sides).
    def stream_reader(self, call_back, queue_depth=1, read_timeout_ms=5000):
        self._streaming = True
        try:
            if not self._put_packet(frame(STREAM_SETUP, struct.pack("<I", queue_depth)), STREAM_TIMEOUT_MS):
                return
            ack = self._ack_byte
            ack[0] = 255
            buff = bytearray(0)
            while True:
                header = self._get_small(STREAM_HEADER, 4, STREAM_TIMEOUT_MS)
                if header is None:
                    return
                n = struct.unpack_from("<I", header, 0)[0]
                if n > self.max_frame_len:
                    self.stats["too_long"] += 1
                    return
                if len(buff) < n:
                    buff = bytearray(n)
                view = memoryview(buff)[:n]
                if n and self.get_bytes(view, read_timeout_ms) is None:
                    return
                call_back(view)
                if self.put_bytes(ack, STREAM_TIMEOUT_MS) is False:
                    return
                ack[0] = _lfsr_next(ack[0])
        finally:
            self._streaming = False

    def stream_writer(self, call_back, write_timeout_ms=5000):
        self._streaming = True
        try:
            setup = self._get_small(STREAM_SETUP, 4, STREAM_TIMEOUT_MS)
            if setup is None:
                return
            depth = struct.unpack_from("<I", setup, 0)[0]
            depth = max(1, min(depth, self.max_queue_depth))
            credits = depth
            expected_ack = 255
            ack = self._ack_byte
            header = bytearray(8)
            while True:
                if credits <= depth // 2:
                    if self.get_bytes(ack, STREAM_TIMEOUT_MS) is None or ack[0] != expected_ack:
                        return
                    expected_ack = _lfsr_next(expected_ack)
                    credits += 1
                if credits > 0:
                    data = call_back()
                    struct.pack_into("<I", header, 2, len(data))
                    if not self._put_packet(_frame_in_place(STREAM_HEADER, header), STREAM_TIMEOUT_MS):
                        return
                    if self.put_bytes(data, write_timeout_ms) is False:
                        return
                    credits -= 1
        finally:
            self._streaming = False


class rpc_master(rpc):
    _short_timeout_start = MASTER_SHORT_TIMEOUT_MS

    def call(self, name, data=bytes(), send_timeout=1000, recv_timeout=1000):
        """The result as a memoryview, b'' for an empty result (or an unknown name), None when
        a phase ran out of time."""
        if not isinstance(name, (str, bytes)):
            raise TypeError("name must be str or bytes")
        data = memoryview(data)
        n = len(data)
        command_header = frame(COMMAND_HEADER, struct.pack("<II", name_hash(name), n))
        command_data = frame(COMMAND_DATA, data)
        if not self._send_command(command_header, command_data, send_timeout):
            return None
        return self._receive_result(recv_timeout)

    def _grow(self, short, phase_ms):
        self.stats["retries"] += 1
        self._after_miss(short)
        short = short * 3 // 2 if self.timing == "arduino" else short * 4 // 3
        return short if short < phase_ms else phase_ms

    def _send_command(self, command_header, command_data, send_timeout):
        start = ticks_ms()
        short = self._short_timeout_start
        n = len(command_data)
        ack_timeout = short + n // ACK_BYTES_PER_MS
        while ticks_diff(ticks_ms(), start) < send_timeout:
            self._flush()
            if (self._put_packet(command_header, self._wait(short, 12, start, send_timeout))
                    and self._get_small(COMMAND_HEADER, 0, self._wait(short, 4, start, send_timeout)) is not None
                    and self._put_packet(command_data, self._data_wait(short, n, start, send_timeout))
                    and self._get_small(COMMAND_DATA, 0, self._wait(ack_timeout, 4, start, send_timeout)) is not None):
                return True
            short = self._grow(short, send_timeout)
            ack_timeout = short + n // ACK_BYTES_PER_MS
        return False

    def _receive_result(self, recv_timeout):
        start = ticks_ms()
        short = self._short_timeout_start
        request_header = frame(RESULT_HEADER)
        request_data = frame(RESULT_DATA)
        buff = None
        while ticks_diff(ticks_ms(), start) < recv_timeout:
            self._flush()
            if (self._put_packet(request_header, self._wait(short, 4, start, recv_timeout))):
                header = self._get_small(RESULT_HEADER, 4, self._wait(short, 8, start, recv_timeout))
                if header is not None:
                    n = struct.unpack_from("<I", header, 0)[0]
                    if n > self.max_result_len:
                        self.stats["too_long"] += 1
                    elif self._put_packet(request_data, self._wait(short, 4, start, recv_timeout)):
                        if buff is None or len(buff) != n + 4:
                            buff = bytearray(n + 4)
                        if self.timing == "arduino":
                            # 5000 ms restarting on every byte, not cut at the phase end.
                            result = self._get_packet(RESULT_DATA, buff, LONG_TIMEOUT_MS, patient=True)
                        else:
                            result = self._get_packet(RESULT_DATA, buff, self._data_wait(short, n + 4, start, recv_timeout))
                        if result is not None:
                            return result if n else bytes()
            short = self._grow(short, recv_timeout)
        return None


class rpc_slave(rpc):
    _short_timeout_start = SLAVE_SHORT_TIMEOUT_MS

    def __init__(self):
        rpc.__init__(self)
        self._callbacks = {}
        self._schedule_cb = None
        self._loop_cb = None

    def register_callback(self, cb):
        self._callbacks[name_hash(cb.__name__)] = cb

    def schedule_callback(self, cb):
        self._schedule_cb = cb

    def setup_loop_callback(self, cb):
        self._loop_cb = cb

    def _grow(self, short, phase_ms):
        self.stats["retries"] += 1
        self._after_miss(short)
        short += 1
        return short if short < phase_ms else phase_ms

    def loop(self, recv_timeout=None, send_timeout=None):
        """Defaults: 1000 ms each; the Arduino library's loop(100, 100) under its timing."""
        default = ARDUINO_LOOP_TIMEOUT_MS if self.timing == "arduino" else 1000
        recv_timeout = default if recv_timeout is None else recv_timeout
        send_timeout = default if send_timeout is None else send_timeout
        while True:
            self.serve_once(recv_timeout, send_timeout)
            if self._loop_cb is not None:
                self._loop_cb()

    def serve_once(self, recv_timeout=1000, send_timeout=1000):
        """One turn of loop() without the loop callback: True when a result was delivered."""
        command = self._receive_command(recv_timeout)
        if command is None:
            return False
        h, argument = command
        cb = self._callbacks.get(h)
        result = cb(argument) if cb is not None else None
        if result is None:
            result = b""
        scheduled = self._schedule_cb
        self._schedule_cb = None
        if not self._send_result(memoryview(result), send_timeout):
            return False
        if scheduled is not None:
            scheduled()
        return True

    def _receive_command(self, recv_timeout):
        start = ticks_ms()
        short = self._short_timeout_start
        ack_header = frame(COMMAND_HEADER)
        ack_data = frame(COMMAND_DATA)
        buff = None
        while ticks_diff(ticks_ms(), start) < recv_timeout:
            self._flush()
            header = self._get_small(COMMAND_HEADER, 8, self._wait(short, 12, start, recv_timeout))
            if header is not None:
                h, n = struct.unpack_from("<II", header, 0)
                if n > self.max_argument_len:
                    self.stats["too_long"] += 1
                elif self._put_packet(ack_header, self._wait(short, 4, start, recv_timeout)):
                    if buff is None or len(buff) != n + 4:
                        buff = bytearray(n + 4)
                    argument = self._get_packet(COMMAND_DATA, buff, self._data_wait(short, n + 4, start, recv_timeout))
                    if argument is not None and self._put_packet(ack_data, self._wait(short, 4, start, recv_timeout)):
                        return h, argument
            short = self._grow(short, recv_timeout)
        return None

    def _request_data_wait(self, short):
        # The Arduino slave waits only its short timeout for the RESULT_DATA request.
        return short if self.timing == "arduino" else LONG_TIMEOUT_MS

    def _send_result(self, result, send_timeout):
        start = ticks_ms()
        short = self._short_timeout_start
        n = len(result)
        result_header = frame(RESULT_HEADER, struct.pack("<I", n))
        result_data = frame(RESULT_DATA, result)
        while ticks_diff(ticks_ms(), start) < send_timeout:
            self._flush()
            if (self._get_small(RESULT_HEADER, 0, self._wait(short, 4, start, send_timeout)) is not None
                    and self._put_packet(result_header, self._wait(short, 8, start, send_timeout))
                    and self._get_small(RESULT_DATA, 0, self._wait(self._request_data_wait(short), 4, start, send_timeout)) is not None
                    and self._put_packet(result_data, self._wait(LONG_TIMEOUT_MS, n + 4, start, send_timeout))):
                return True
            short = self._grow(short, send_timeout)
        return False


# ---------------------------------------------------------------------------------------
# Transports. Each imports what it needs when constructed, so the core runs anywhere.

def _poll_module():
    try:
        import select
    except ImportError:
        import uselect as select
    return select


class _stream_io:
    """A non-blocking byte stream (socket, pty or serial file) driven with select.poll.
    The object must be non-blocking: sockets are switched by setblocking(False); a file must
    have been opened with O_NONBLOCK (e.g. MicroPython's open(fd, "r+b") on such an fd)."""

    def __init__(self, stream):
        select = _poll_module()
        self.stream = stream
        if hasattr(stream, "setblocking"):
            stream.setblocking(False)
        if hasattr(stream, "recv_into"):  # CPython socket
            self._read = stream.recv_into
            self._write = stream.send
        else:
            self._read = stream.readinto
            self._write = stream.write
        self._in = select.poll()
        self._in.register(stream, select.POLLIN)
        self._out = select.poll()
        self._out.register(stream, select.POLLOUT)
        self._scratch = bytearray(256)

    def _readinto(self, mv):
        try:
            n = self._read(mv)
        except OSError as e:
            if e.args and e.args[0] == 11:  # EAGAIN
                return None
            raise
        if n == 0:
            raise OSError("stream closed by the peer")
        return n

    def read_exactly(self, buff, timeout_ms, restart=False):
        """Fills buff within timeout_ms; restart: the timeout restarts whenever bytes come."""
        mv = memoryview(buff)
        n = len(mv)
        got = 0
        start = ticks_ms()
        while got < n:
            left = timeout_ms - ticks_diff(ticks_ms(), start)
            if left < 0 or not self._in.poll(left):
                return None
            k = self._readinto(mv[got:])
            if k:
                got += k
                if restart:
                    start = ticks_ms()
        return buff

    def write_all(self, data, timeout_ms):
        mv = memoryview(data)
        n = len(mv)
        sent = 0
        start = ticks_ms()
        while sent < n:
            try:
                k = self._write(mv[sent:])
            except OSError as e:
                if not (e.args and e.args[0] == 11):
                    raise
                k = None
            if k:
                sent += k
                continue
            left = timeout_ms - ticks_diff(ticks_ms(), start)
            if left < 0 or not self._out.poll(left):
                return False
        return True

    def drain(self):
        while self._in.poll(0):
            if not self._readinto(self._scratch):
                return


class _stream_transport:
    def _stream_init(self, stream):
        self._io = _stream_io(stream)

    def get_bytes(self, buff, timeout_ms):
        return self._io.read_exactly(buff, timeout_ms)

    def _get_bytes_patient(self, buff, timeout_ms):
        return self._io.read_exactly(buff, timeout_ms, restart=True)

    def put_bytes(self, data, timeout_ms):
        return self._io.write_all(data, timeout_ms)

    def _flush(self):
        self._io.drain()


class rpc_stream_master(_stream_transport, rpc_master):
    def __init__(self, stream):
        rpc_master.__init__(self)
        self._stream_init(stream)


class rpc_stream_slave(_stream_transport, rpc_slave):
    def __init__(self, stream):
        rpc_slave.__init__(self)
        self._stream_init(stream)


UDP_MAX = 1400


class _network:
    """UDP for reads and writes of at most 1400 bytes, one TCP connection (master listens,
    slave connects) for larger ones and for every stream."""

    def __init__(self, my_ip, port, master_of=None):
        import socket
        self.socket = socket
        select = _poll_module()
        self.select = select
        self.port = port
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.udp.bind(self._addr(my_ip or "0.0.0.0", port))
        self.udp_io = _stream_io(self.udp)
        self.listener = None
        self.tcp = None
        self.tcp_io = None
        if master_of is not None:  # the master: knows the slave, listens for its connection
            self.peer = self._addr(master_of, port)
            self.peer_ip = master_of
            self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(self._addr(my_ip or "0.0.0.0", port))
            self.listener.listen(1)
            self.listener.setblocking(False)
            self.accept_poll = select.poll()
            self.accept_poll.register(self.listener, select.POLLIN)
        else:  # the slave: learns the master from the first datagram
            self.peer = None
            self.peer_ip = None

    def _addr(self, ip, port):
        return self.socket.getaddrinfo(ip, port)[0][-1]

    def _learn_peer(self, timeout_ms):
        if not self.udp_io._in.poll(timeout_ms):
            return None
        data, addr = self.udp.recvfrom(UDP_MAX + 4)
        self.peer = addr
        if isinstance(addr, tuple):
            self.peer_ip = addr[0]
        else:  # MicroPython: a raw sockaddr_in
            a = bytes(addr)
            self.peer_ip = "%d.%d.%d.%d" % (a[4], a[5], a[6], a[7])
        return data

    def _tcp_connection(self, timeout_ms):
        if self.tcp is not None:
            return self.tcp_io
        socket = self.socket
        if self.listener is not None:
            if not self.accept_poll.poll(max(timeout_ms, 0)):
                return None
            conn = self.listener.accept()[0]
        else:
            if self.peer_ip is None:
                return None
            conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                conn.connect(self._addr(self.peer_ip, self.port))
            except OSError:
                conn.close()
                sleep_ms(1)
                return None
        conn.setsockopt(6, 1, 1)  # TCP_NODELAY: request/response traffic
        self.tcp = conn
        self.tcp_io = _stream_io(conn)
        return self.tcp_io

    def _tcp_failed(self):
        try:
            self.tcp.close()
        except OSError:
            pass
        self.tcp = None
        self.tcp_io = None

    def uses_tcp(self, n, streaming):
        return streaming or n > UDP_MAX

    def get(self, buff, timeout_ms, streaming):
        n = len(buff)
        if self.uses_tcp(n, streaming):
            start = ticks_ms()
            io = self._tcp_connection(timeout_ms)
            if io is None:
                return None
            try:
                return io.read_exactly(buff, timeout_ms - ticks_diff(ticks_ms(), start))
            except OSError:
                self._tcp_failed()
                return None
        if self.peer is None:
            data = self._learn_peer(timeout_ms)
            if data is None or len(data) != n:
                return None
            buff[:] = data
            return buff
        if not self.udp_io._in.poll(max(timeout_ms, 0)):
            return None
        k = self.udp_io._readinto(memoryview(buff))
        return buff if k == n else None

    def put(self, data, timeout_ms, streaming):
        n = len(data)
        if self.uses_tcp(n, streaming):
            start = ticks_ms()
            io = self._tcp_connection(timeout_ms)
            if io is None:
                return False
            try:
                return io.write_all(data, timeout_ms - ticks_diff(ticks_ms(), start))
            except OSError:
                self._tcp_failed()
                return False
        if self.peer is None:
            return False
        try:
            self.udp.sendto(data, self.peer)
        except OSError:
            return False
        return True

    def flush(self):
        self.udp_io.drain()
        if self.tcp_io is not None:
            try:
                self.tcp_io.drain()
            except OSError:
                self._tcp_failed()


class _network_transport:
    def get_bytes(self, buff, timeout_ms):
        return self._net.get(buff, timeout_ms, self._streaming)

    def put_bytes(self, data, timeout_ms):
        return self._net.put(data, timeout_ms, self._streaming)

    def _flush(self):
        self._net.flush()

    def _timeout_scale(self, n):
        # Short timeouts are scaled x10 on UDP (a network has more latency than a wire).
        return 1 if self._net.uses_tcp(n, self._streaming) else 10


class rpc_network_master(_network_transport, rpc_master):
    def __init__(self, slave_ip, my_ip="", port=0x1DBA):
        rpc_master.__init__(self)
        self._net = _network(my_ip, port, master_of=slave_ip)


class rpc_network_slave(_network_transport, rpc_slave):
    def __init__(self, my_ip="", port=0x1DBA):
        rpc_slave.__init__(self)
        self._net = _network(my_ip, port)


class _uart_transport:
    """machine.UART(uart_port, baudrate, timeout=2, timeout_char=2), as on the cam."""

    def _uart_init(self, baudrate, uart_port):
        from machine import UART
        self._uart = UART(uart_port, baudrate, timeout=2, timeout_char=2)
        self._scratch = bytearray(64)

    def get_bytes(self, buff, timeout_ms):
        mv = memoryview(buff)
        n = len(mv)
        got = 0
        start = ticks_ms()
        while got < n:
            k = self._uart.readinto(mv[got:])
            if k:
                got += k
            elif ticks_diff(ticks_ms(), start) >= timeout_ms:
                return None
        return buff

    def put_bytes(self, data, timeout_ms):
        self._uart.write(data)

    def _flush(self):
        while self._uart.any():
            self._uart.readinto(self._scratch)


class rpc_uart_master(_uart_transport, rpc_master):
    def __init__(self, baudrate=9600, uart_port=3):
        rpc_master.__init__(self)
        self._uart_init(baudrate, uart_port)


class rpc_uart_slave(_uart_transport, rpc_slave):
    def __init__(self, baudrate=9600, uart_port=3):
        rpc_slave.__init__(self)
        self._uart_init(baudrate, uart_port)
