"""The documented API and its extensions, host master against host slave (network loopback),
and the wire bytes against the recorded reference vectors."""

import logging
import socket
import struct
import threading

import pytest

import rpc


def pair(port, **kw):
    slave = rpc.rpc_network_slave(my_ip="127.0.0.2", port=port)
    master = rpc.rpc_network_master("127.0.0.2", my_ip="127.0.0.1", port=port, **kw)
    return master, slave


def test_hash_and_crc_match_the_vectors(vectors):
    for v in vectors["crc16"]:
        assert rpc.crc16(bytes.fromhex(v["hex"])) == v["crc"]
    for v in vectors["hash"]:
        assert rpc.name_hash(v["name"]) == v["hash"]
        assert rpc.name_hash(v["name"].encode()) == v["hash"]


class ScriptedMaster(rpc.rpc_master):
    """A transport of the documented kind (get_bytes/put_bytes overrides) replaying what the
    reference slave wrote and recording what the master writes."""

    def __init__(self, slave_bytes):
        rpc.rpc_master.__init__(self)
        self.incoming = bytearray(slave_bytes)
        self.written = bytearray()

    def get_bytes(self, buff, timeout_ms):
        if len(self.incoming) < len(buff):
            return None
        buff[:] = self.incoming[:len(buff)]
        del self.incoming[:len(buff)]
        return buff

    def put_bytes(self, data, timeout_ms):
        self.written += data


def test_master_writes_the_reference_bytes(vectors):
    for call in vectors["calls"]:
        m = ScriptedMaster(bytes.fromhex(call["slave_to_master_hex"]))
        result = m.call(call["name"], bytes.fromhex(call["arg_hex"]))
        assert result is not None, (call["name"], m.last_error)
        assert bytes(result) == bytes.fromhex(call["result_hex"])
        assert m.written.hex() == call["master_to_slave_hex"], call["name"]
        assert not m.incoming


class ScriptedSlave(rpc.rpc_slave):
    def __init__(self, master_bytes):
        rpc.rpc_slave.__init__(self)
        self.incoming = bytearray(master_bytes)
        self.written = bytearray()

    get_bytes = ScriptedMaster.get_bytes
    put_bytes = ScriptedMaster.put_bytes


def test_slave_writes_the_reference_bytes(vectors):
    for call in vectors["calls"]:
        s = ScriptedSlave(bytes.fromhex(call["master_to_slave_hex"]))
        result = bytes.fromhex(call["result_hex"])
        if call["registered"]:
            def cb(arg, result=result):
                return result
            cb.__name__ = call["name"]
            s.register_callback(cb)
        assert s.loop_once(recv_timeout=100, send_timeout=100) == "OK", s.last_error
        assert s.written.hex() == call["slave_to_master_hex"], call["name"]


def test_stream_bytes_match_the_vectors(vectors):
    st = vectors["stream"]
    frames = [bytes.fromhex(f) for f in st["frames_hex"]]
    reader = ScriptedSlave(bytes.fromhex(st["writer_to_reader_hex"]))
    got = []
    status = reader.stream_reader(lambda f: got.append(bytes(f)), queue_depth=st["queue_depth"],
                                  read_timeout_ms=100)
    assert got == frames
    assert status == "STREAM_TIMEOUT"  # the recording ends: the reader times out quietly
    # The recording stops before the reader's ack of the last frame (0x69, next on the LFSR).
    assert reader.written.hex() == st["reader_to_writer_hex"] + "69"

    writer = ScriptedMaster(bytes.fromhex(st["reader_to_writer_hex"]))
    queue = list(frames)
    writer.stream_writer(lambda: queue.pop(0) if queue else None, write_timeout_ms=100)
    assert not queue
    assert writer.written.hex() == st["writer_to_reader_hex"]


def test_calls_results_and_unknown_names(port, serve):
    master, slave = pair(port)

    def echo(data):
        return bytes(data)

    def nothing(data):
        return None

    def big(data):
        n = struct.unpack("<I", data)[0]
        return bytes(i & 0xFF for i in range(n))

    for cb in (echo, nothing, big):
        slave.register_callback(cb)
    t = serve(slave)
    with master:
        r = master.call("echo", b"hello")
        assert isinstance(r, memoryview) and bytes(r) == b"hello"
        assert master.last_error is None
        r = master.call("nothing")
        assert r is not None and len(r) == 0
        r = master.call("not_registered", b"x")
        assert r is not None and len(r) == 0
        # Over 1400 bytes: TCP, both directions.
        for n in (1400, 1401, 65536, 300_000):
            r = master.call("big", struct.pack("<I", n))
            assert r is not None, master.last_error
            assert bytes(r) == bytes(i & 0xFF for i in range(n))
        arg = bytes(range(256)) * 300
        assert bytes(master.call("echo", arg)) == arg
        # Any buffer is an argument.
        assert bytes(master.call("echo", bytearray(b"ab"))) == b"ab"
        assert bytes(master.call("echo", memoryview(b"xyz")[1:])) == b"yz"
        st = master.stats()
        assert st["calls_ok"] == 10 and st["calls_failed"] == 0
    t.stop()
    assert t.error is None
    assert slave.stats()["commands_served"] == 10


def test_failure_says_why_and_can_raise(port):
    master = rpc.rpc_network_master("127.0.0.2", my_ip="127.0.0.1", port=port)
    with master:
        assert master.call("echo", b"x", send_timeout=50, recv_timeout=50) is None
        assert master.last_error.startswith("SEND_TIMEOUT: COMMAND_HEADER timeout (")
        assert master.stats()["send_phase_timeouts"] == 1
        with pytest.raises(rpc.RpcError) as e:
            master.call("echo", b"x", send_timeout=30, raise_on_error=True)
        assert e.value.status == "SEND_TIMEOUT" and e.value.packet == "COMMAND_HEADER"
        assert e.value.attempts >= 1
    strict = rpc.rpc_network_master("127.0.0.2", my_ip="127.0.0.1", port=port + 500,
                                    raise_on_error=True)
    with strict, pytest.raises(rpc.RpcError):
        strict.call("echo", send_timeout=20)


def test_bad_arguments_are_clean_errors(port):
    with rpc.rpc_network_master("127.0.0.2", my_ip="127.0.0.1", port=port) as m:
        with pytest.raises(TypeError):
            m.call("echo", 12345)
        with pytest.raises(ValueError):
            m.call("echo", b"", send_timeout=-1)
        with pytest.raises(TypeError):
            m.call(None)
        with pytest.raises(ValueError):
            m.set_limits(max_result_len=-5)
    with pytest.raises(ImportError, match="python-can") if _no_can() else _nothing():
        rpc.rpc_can_master(interface="virtual", channel="x", sampling_point=75).close()
    with pytest.raises(ValueError):
        rpc.rpc_can_master(interface="virtual", channel="x", sampling_point=33)


def _no_can():
    try:
        import can  # noqa: F401
    except ImportError:
        return True
    return False


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_limits_refuse_long_results_before_allocating(port, serve):
    master, slave = pair(port)

    def big(data):
        return bytes(5000)

    slave.register_callback(big)
    t = serve(slave)
    master.set_limits(max_result_len=4096)
    assert master.call("big", recv_timeout=200) is None
    assert master.last_error.startswith("RECV_TIMEOUT: RESULT_HEADER")
    assert master.stats()["too_long"] >= 1
    master.set_limits(max_result_len=8192)
    assert len(master.call("big")) == 5000
    t.stop()
    master.close()


def test_schedule_loop_callbacks_and_exceptions(port, serve):
    master, slave = pair(port)
    events = []

    def arm(data):
        slave.schedule_callback(lambda: events.append("scheduled"))
        return b"armed"

    def plain(data):
        return b"plain"

    def boom(data):
        raise RuntimeError("callback failed")

    for cb in (arm, plain, boom):
        slave.register_callback(cb)
    slave.setup_loop_callback(lambda: events.append("loop"))
    t = serve(slave)
    assert bytes(master.call("arm")) == b"armed"
    assert bytes(master.call("plain")) == b"plain"
    # The slave's stats and last_error are usable from inside a callback.
    assert events.count("scheduled") == 1
    assert "loop" in events
    assert master.call("boom", send_timeout=300, recv_timeout=100) is None
    t.thread.join(5)
    assert isinstance(t.error, RuntimeError)
    master.close()
    slave.close()


def test_streams_both_directions(port):
    master, slave = pair(port)
    frames = [bytes([i]) * (i * 997 % 70000) for i in range(1, 40)]

    def start_writing(data):
        return b"ok"

    slave.register_callback(start_writing)
    got = []
    errors = []

    def cam():
        try:
            assert slave.loop_once(2000, 2000) == "OK"
            queue = list(frames)
            slave.stream_writer(lambda: queue.pop(0) if queue else None)
            # Then the other direction: the cam reads what the computer writes.
            assert slave.loop_once(2000, 2000) == "OK"
            slave.stream_reader(lambda f: got.append(bytes(f)), queue_depth=3,
                                read_timeout_ms=2000)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=cam)
    t.start()
    assert master.call("start_writing") is not None
    received = []
    status = master.stream_reader(lambda f: received.append(bytes(f)), queue_depth=8,
                                  read_timeout_ms=2000)
    assert received == frames
    assert status in ("STREAM_TIMEOUT", "TRANSPORT_ERROR")
    assert master.call("start_writing") is not None
    queue = list(frames[:10])
    master.stream_writer(lambda: queue.pop(0) if queue else None)
    t.join(15)
    assert not errors, errors
    assert got == frames[:10]
    assert master.stats()["stream_frames"] == len(frames) + 10
    master.close()
    slave.close()


class SocketMaster(rpc.rpc_master):
    """The documented way to add a transport: override get_bytes/put_bytes/_flush."""

    def __init__(self, sock):
        rpc.rpc_master.__init__(self)
        self.sock = sock

    def _flush(self):
        self.sock.setblocking(False)
        try:
            while self.sock.recv(4096):
                pass
        except BlockingIOError:
            pass

    def get_bytes(self, buff, timeout_ms):
        self.sock.settimeout(timeout_ms / 1000)
        view = memoryview(buff)
        got = 0
        try:
            while got < len(view):
                n = self.sock.recv_into(view[got:])
                if not n:
                    return None
                got += n
        except socket.timeout:
            return None
        return buff

    def put_bytes(self, data, timeout_ms):
        self.sock.settimeout(timeout_ms / 1000)
        self.sock.sendall(data)


class SocketSlave(rpc.rpc_slave):
    __init__ = SocketMaster.__init__
    _flush = SocketMaster._flush
    get_bytes = SocketMaster.get_bytes
    put_bytes = SocketMaster.put_bytes

    def __init__(self, sock):  # noqa: F811
        rpc.rpc_slave.__init__(self)
        self.sock = sock


def test_python_transport_overrides(serve):
    a, b = socket.socketpair()
    master, slave = SocketMaster(a), SocketSlave(b)

    def add(data):
        x, y = struct.unpack("<ii", data)
        return struct.pack("<i", x + y)

    slave.register_callback(add)
    t = serve(slave)
    for i in range(50):
        r = master.call("add", struct.pack("<ii", i, 1000))
        assert r is not None, master.last_error
        assert struct.unpack("<i", r)[0] == i + 1000
    t.stop()


def test_logging_says_why(port, caplog):
    with rpc.rpc_network_master("127.0.0.2", my_ip="127.0.0.1", port=port) as m:
        with caplog.at_level(logging.DEBUG, logger="rpc"):
            assert m.call("echo", send_timeout=20) is None
    assert any("SEND_TIMEOUT" in r.getMessage() for r in caplog.records)


def test_a_rebooted_slave_is_found_again(port, serve):
    master, slave = pair(port)

    def echo(data):
        return bytes(data)

    slave.register_callback(echo)
    t = serve(slave)
    big = bytes(5000)
    assert bytes(master.call("echo", big)) == big  # opens the TCP connection
    t.stop()  # the cam goes away (its sockets close) ...
    assert master.call("echo", b"x", send_timeout=100, recv_timeout=100) is None
    slave2 = rpc.rpc_network_slave(my_ip="127.0.0.2", port=port)  # ... and boots again
    slave2.register_callback(echo)
    t2 = serve(slave2)
    ok = sum(master.call("echo", big) is not None for _ in range(5))
    assert ok >= 4, master.last_error
    t2.stop()
    master.close()


def test_a_slave_loop_in_a_daemon_thread_ends_cleanly_at_exit(port):
    script = (
        "import threading, time, rpc\n"
        "s = rpc.rpc_network_slave(my_ip='127.0.0.2', port=%d)\n"
        "threading.Thread(target=s.loop, daemon=True).start()\n"
        "time.sleep(0.3)\n"
        "print('exiting')\n" % port)
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "exiting", r.stderr
    assert "FATAL" not in r.stderr


def test_call_start_poll_result_cancel(port, serve):
    import time

    master, slave = pair(port)

    def slow(data):
        time.sleep(0.3)
        return b"done"

    slave.register_callback(slow)
    t = serve(slave)
    master.call_start("slow")
    with pytest.raises(RuntimeError):
        master.call_start("slow")
    polls = 0
    while not master.call_poll():
        polls += 1
        time.sleep(0.01)
    assert polls > 5  # it did not block
    assert bytes(master.call_result()) == b"done"
    # A call that gets no answer, given up on before its timeouts.
    t.stop()
    master.call_start("slow", send_timeout=5000, recv_timeout=5000)
    time.sleep(0.1)
    start = time.monotonic()
    master.call_cancel()
    assert time.monotonic() - start < 1.0
    assert master.last_error.startswith("CANCELLED")
    with pytest.raises(RuntimeError):
        master.call_poll()
    master.close()


def test_stream_interfaces_over_a_socket_pair_and_pipes(serve):
    import os

    a, b = socket.socketpair()
    master, slave = rpc.rpc_stream_master(a), rpc.rpc_stream_slave(b)

    def echo(data):
        return bytes(data)

    slave.register_callback(echo)
    t = serve(slave)
    arg = bytes(range(256)) * 100
    for _ in range(20):
        assert bytes(master.call("echo", arg)) == arg, master.last_error
    t.stop()
    a.close()
    b.close()

    to_slave, to_master = os.pipe(), os.pipe()
    files = [os.fdopen(fd, mode) for fd, mode in ((to_slave[0], "rb"), (to_slave[1], "wb"),
                                                  (to_master[0], "rb"), (to_master[1], "wb"))]
    master = rpc.rpc_stream_master(files[2], files[1])
    slave = rpc.rpc_stream_slave(files[0], files[3])
    slave.register_callback(echo)
    t = serve(slave)
    assert bytes(master.call("echo", b"through pipes")) == b"through pipes", master.last_error
    t.stop()
    for f in files:
        f.close()
