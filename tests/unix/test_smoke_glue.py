"""Smoke test of the glue (mp_glue/ + frozen/) in the real unix port: `make unix`, then two
micropython processes talk over UDP/TCP loopback (127.0.0.1 master, 127.0.0.2 slave), over a
stream (a TCP socket, a pty pair) and through a Python subclass transport. The full suite
lives beside this file; this one checks that the module is wired end to end."""

import json
import os
import pty
import select
import socket
import subprocess
import threading
import tty
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MICROPYTHON = ROOT / ".venv" / "bin" / "micropython"
UNIX_DIR = ROOT / "build" / "unix"

# The slave side: callbacks, and the transport named on the command line.
SLAVE = r"""
import sys, rpc
kind, where = sys.argv[1], sys.argv[2]
if kind == "net":
    s = rpc.rpc_network_slave(my_ip="127.0.0.2", port=int(where))
elif kind == "tcp":
    import socket
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(socket.getaddrinfo("127.0.0.2", int(where))[0][-1])
    l.listen(1)
    print("listening")
    conn = l.accept()[0]
    s = rpc.rpc_stream_slave(conn)
else:
    s = rpc.rpc_stream_slave(open(where, "r+b"))

def echo(data):
    return data

def reverse(data):
    return bytes(reversed(bytes(data)))

def nothing(data):
    return None

def frame(i):
    return bytes([i % 256]) * (100 + 37 * i)

def stream_frames(data):
    count = [0]
    def writer():
        count[0] += 1
        return frame(count[0] - 1)
    s.schedule_callback(lambda: s.stream_writer(writer, 1000))
    return b"ok"

if kind != "net":
    # Serial-style links get the network's short timeouts (docs/PROTOCOL.md's 2/3 ms assume
    # real-time peers; this machine is shared and loaded).
    s.set_timing(short_timeout_ms=20)

for cb in (echo, reverse, nothing, stream_frames):
    s.register_callback(cb)
print("serving")
s.loop()
"""

# The master side: runs the checks and prints what it saw as one JSON line.
MASTER = r"""
import sys, json, rpc
kind, where = sys.argv[1], sys.argv[2]
if kind == "net":
    m = rpc.rpc_network_master("127.0.0.2", my_ip="127.0.0.1", port=int(where))
elif kind == "tcp" or kind == "override":
    import socket
    sock = socket.socket()
    sock.connect(socket.getaddrinfo("127.0.0.2", int(where))[0][-1])
    sock.setsockopt(6, 1, 1)
    if kind == "tcp":
        m = rpc.rpc_stream_master(sock)
    else:
        import select, time
        class socket_master(rpc.rpc_master):
            # The documented way to add a transport: override get_bytes/put_bytes.
            def __init__(self, sock):
                self.sock = sock
                self.poller = select.poll()
                self.poller.register(sock, select.POLLIN)
                self.io_calls = 0
                super().__init__()
            def get_bytes(self, buff, timeout_ms):
                self.io_calls += 1
                got = 0
                start = time.ticks_ms()
                while got < len(buff):
                    left = timeout_ms - time.ticks_diff(time.ticks_ms(), start)
                    if left <= 0 or not self.poller.poll(left):
                        return None
                    chunk = self.sock.recv(len(buff) - got)
                    if not chunk:
                        return None
                    buff[got:got + len(chunk)] = chunk
                    got += len(chunk)
                return buff
            def put_bytes(self, data, timeout_ms):
                self.io_calls += 1
                self.sock.write(data)
            def _flush(self):
                self.io_calls += 1
                while self.poller.poll(0):
                    if not self.sock.recv(4096):
                        break
        m = socket_master(sock)
else:
    m = rpc.rpc_stream_master(open(where, "r+b"))

if kind != "net":
    m.set_timing(short_timeout_ms=30)  # as the slave does

out = {}
def call(name, data=b"", **kw):
    r = m.call(name, data, send_timeout=3000, recv_timeout=3000, **kw)
    return None if r is None else list(bytes(r)), m.last_error

out["echo"] = call("echo", b"hello")
payload = bytes(range(256)) * 20  # 5120 bytes: TCP on the network transport
r = m.call("echo", payload, send_timeout=3000, recv_timeout=3000)
out["echo_5k"] = r is not None and bytes(r) == payload
out["echo_type"] = type(r).__name__
out["reverse"] = call("reverse", b"abc")
out["nothing"] = call("nothing", b"abc")
out["unknown"] = call("no_such_callback", b"abc")
out["unknown_type"] = type(m.call("no_such_callback", b"abc", send_timeout=3000, recv_timeout=3000)).__name__

m.call_start("echo", b"non-blocking", send_timeout=3000, recv_timeout=3000)
polls = 1
while not m.call_poll():
    polls += 1
r = m.call_result()
out["call_poll"] = bytes(r) == b"non-blocking"

ok = 0
errors = []
for i in range(100):
    r = m.call("echo", bytes([i]) * i, send_timeout=3000, recv_timeout=3000)
    ok += r is not None and bytes(r) == bytes([i]) * i
    if r is None:
        errors.append(m.last_error)
out["hundred_calls"] = ok
out["hundred_errors"] = errors

if kind != "override":
    out["stream_start"] = call("stream_frames")
    frames = []
    class Enough(Exception):
        pass
    def reader(frame):
        frames.append(bytes(frame))
        if len(frames) == 12:
            raise Enough()
    try:
        m.stream_reader(reader, queue_depth=4, read_timeout_ms=3000)
        out["stream_end"] = "returned"
    except Enough:
        out["stream_end"] = "raised"
    out["stream_ok"] = [f == bytes([i % 256]) * (100 + 37 * i) for i, f in enumerate(frames)]
    # After the stream the link resynchronises and calls go on.
    out["after_stream"] = call("echo", b"again")
else:
    out["override_io_calls"] = m.io_calls

stats = m.stats()
out["calls_ok"] = stats["calls_ok"]
out["name_hash"] = rpc.name_hash("echo")
out["crc16"] = rpc.crc16(b"123456789")
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    subprocess.run(["make", "unix"], cwd=ROOT, check=True, timeout=900, capture_output=True)
    assert (UNIX_DIR / "rpc.mpy").is_file() and (UNIX_DIR / "mutex.mpy").is_file()
    d = tmp_path_factory.mktemp("scripts")
    (d / "slave.py").write_text(SLAVE)
    (d / "master.py").write_text(MASTER)
    return d


def free_port():
    # A port free for UDP and TCP on both loopback addresses.
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            for ip in ("127.0.0.1", "127.0.0.2"):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as t:
                        t.bind((ip, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def micropython(script, *args):
    env = dict(os.environ, MICROPYPATH=str(UNIX_DIR))
    return subprocess.Popen(
        [str(MICROPYTHON), str(script), *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_line(proc, text, timeout=20):
    ready = select.select([proc.stdout], [], [], timeout)[0]
    assert ready, "slave did not start"
    line = proc.stdout.readline()
    assert text in line, line + proc.stderr.read()


def run_pair(scripts, kind, where, wait_for="serving"):
    slave = micropython(scripts / "slave.py", kind, where)
    try:
        wait_line(slave, "listening" if kind == "tcp" else wait_for)
        master = micropython(scripts / "master.py", "override" if kind == "override" else kind, where)
        if kind == "tcp":
            wait_line(slave, "serving")
        out, err = master.communicate(timeout=120)
        assert master.returncode == 0, err
        return json.loads(out.strip().splitlines()[-1])
    finally:
        slave.kill()
        slave.wait()


def check_calls(out):
    assert out["echo"] == [list(b"hello"), None]
    assert out["echo_5k"] is True
    assert out["echo_type"] == "memoryview"
    assert out["reverse"] == [list(b"cba"), None]
    # A callback returning None and an unknown name both give an empty result, not None.
    assert out["nothing"] == [[], None]
    assert out["unknown"] == [[], None]
    assert out["unknown_type"] == "bytes"
    assert out["call_poll"] is True
    assert out["hundred_calls"] == 100, out["hundred_errors"]
    assert out["name_hash"] == djb2_xor(b"echo")
    assert out["crc16"] == 0x29B1


def djb2_xor(data):
    h = 5381
    for b in data:
        h = ((h * 33) ^ b) & 0xFFFFFFFF
    return h


def check_stream(out):
    assert out["stream_start"] == [list(b"ok"), None]
    assert out["stream_end"] == "raised"
    assert out["stream_ok"] == [True] * 12
    assert out["after_stream"] == [list(b"again"), None]


def test_network_udp_and_tcp(built):
    out = run_pair(built, "net", free_port())
    check_calls(out)
    check_stream(out)
    assert out["calls_ok"] == 107 + 2  # the calls above, the stream's start, after_stream


def test_stream_over_tcp_socket(built):
    out = run_pair(built, "tcp", free_port())
    check_calls(out)
    check_stream(out)


def test_python_override_transport(built):
    # The master moves bytes in Python (get_bytes/put_bytes over a socket); the slave is the
    # native stream transport on the other end of the same connection.
    port = free_port()
    slave = micropython(built / "slave.py", "tcp", port)
    try:
        wait_line(slave, "listening")
        master = micropython(built / "master.py", "override", port)
        wait_line(slave, "serving")
        out, err = master.communicate(timeout=120)
        assert master.returncode == 0, err
        out = json.loads(out.strip().splitlines()[-1])
    finally:
        slave.kill()
        slave.wait()
    check_calls(out)
    # Every packet of the 107 calls went through the Python methods (8 packets per call).
    assert out["override_io_calls"] >= 8 * 107


def test_stream_over_pty_pair(built):
    # Two ptys joined back to back by a relay thread: each micropython opens one pty's slave
    # end as a file, like a serial port.
    ends = []
    for _ in range(2):
        master_fd, slave_fd = pty.openpty()
        tty.setraw(slave_fd)
        ends.append((master_fd, slave_fd, os.ttyname(slave_fd)))
    stop = threading.Event()

    def relay():
        a, b = ends[0][0], ends[1][0]
        while not stop.is_set():
            for fd in select.select([a, b], [], [], 0.1)[0]:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    continue
                os.write(b if fd == a else a, data)

    t = threading.Thread(target=relay, daemon=True)
    t.start()
    try:
        slave = micropython(built / "slave.py", "pty", ends[0][2])
        try:
            wait_line(slave, "serving")
            master = micropython(built / "master.py", "pty", ends[1][2])
            out, err = master.communicate(timeout=120)
            assert master.returncode == 0, err
            out = json.loads(out.strip().splitlines()[-1])
        finally:
            slave.kill()
            slave.wait()
    finally:
        stop.set()
        t.join()
        for master_fd, slave_fd, _ in ends:
            os.close(master_fd)
            os.close(slave_fd)
    check_calls(out)
    check_stream(out)


def test_callback_exception_ends_loop(built, tmp_path):
    port = free_port()
    script = tmp_path / "raising_slave.py"
    script.write_text(
        "import rpc\n"
        "s = rpc.rpc_network_slave(my_ip='127.0.0.2', port=%d)\n"
        "def fail(data):\n"
        "    raise ValueError('callback failed: ' + bytes(data).decode())\n"
        "s.register_callback(fail)\n"
        "print('serving')\n"
        "s.loop()\n" % port
    )
    master_script = tmp_path / "one_call.py"
    master_script.write_text(
        "import rpc\n"
        "m = rpc.rpc_network_master('127.0.0.2', my_ip='127.0.0.1', port=%d)\n"
        "print(m.call('fail', b'xyz', send_timeout=2000, recv_timeout=300))\n"
        "print(m.last_error)\n" % port
    )
    slave = micropython(script)
    try:
        wait_line(slave, "serving")
        master = micropython(master_script)
        out, err = master.communicate(timeout=60)
        slave_out, slave_err = slave.communicate(timeout=30)
    finally:
        slave.kill()
        slave.wait()
    assert master.returncode == 0, err
    lines = out.strip().splitlines()
    # The slave never answered: the master's result phase ran out of time, and says so.
    assert lines[0] == "None"
    assert lines[1].startswith("RECV_TIMEOUT: RESULT_HEADER")
    # The exception propagated out of loop() and ended the slave.
    assert slave.returncode != 0
    assert "ValueError: callback failed: xyz" in slave_out + slave_err


def test_mutex(built, tmp_path):
    script = tmp_path / "mutex_check.py"
    script.write_text(
        "import mutex, json\n"
        "m = mutex.Mutex()\n"
        "out = [m.test(), m.test()]\n"
        "m.release()\n"
        "try:\n"
        "    m.release()\n"
        "    out.append('no error')\n"
        "except mutex.MutexException as e:\n"
        "    out.append(isinstance(e, OSError))\n"
        "with m:\n"
        "    out.append(m.test())\n"
        "out.append(m.test())\n"
        "print(json.dumps(out))\n"
    )
    proc = micropython(script)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json.loads(out) == [True, False, True, False, True]


def test_network_slave_restart(built, tmp_path):
    # The master keeps its sockets while the slave process is replaced: calls (UDP) and large
    # calls (a new TCP connection) go on with the new slave.
    port = free_port()
    script = tmp_path / "restart_master.py"
    script.write_text(
        "import rpc, sys\n"
        "m = rpc.rpc_network_master('127.0.0.2', my_ip='127.0.0.1', port=%d)\n"
        "d = bytes(range(256)) * 20\n"
        "def big():\n"
        "    r = m.call('echo', d, send_timeout=3000, recv_timeout=3000)\n"
        "    return r is not None and bytes(r) == d\n"
        "print('before', big())\n"
        "sys.stdin.readline()\n"
        "print('after', [big() for i in range(3)], m.last_error)\n" % port
    )
    first = micropython(built / "slave.py", "net", port)
    second = None
    env = dict(os.environ, MICROPYPATH=str(UNIX_DIR))
    master = subprocess.Popen([str(MICROPYTHON), str(script)], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_line(first, "serving")
        wait_line(master, "before True")
        first.kill()
        first.wait()
        second = micropython(built / "slave.py", "net", port)
        wait_line(second, "serving")
        out, err = master.communicate("go\n", timeout=60)
    finally:
        for p in (first, second, master):
            if p is not None:
                p.kill()
                p.wait()
    assert master.returncode == 0, err
    assert out.strip() == "after [True, True, True] None"


def test_slow_callback_every_flush_carried_out(built, tmp_path):
    # A 30 ms callback outlasts the master's short timeout (3 ms on a stream): while it runs,
    # the master asks for the RESULT_HEADER again and again. The engine has the slave flush
    # those stale requests before answering; a door that skips the FLUSH (the glue once kept
    # its own "in sync" rule) answers a stale copy, crosses the master's retry and fails the
    # call after the slave's 5 s data wait.
    port = free_port()
    slave_script = tmp_path / "slow_slave.py"
    slave_script.write_text(
        "import rpc, socket, time\n"
        "l = socket.socket()\n"
        "l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "l.bind(socket.getaddrinfo('127.0.0.2', %d)[0][-1])\n"
        "l.listen(1)\n"
        "print('listening')\n"
        "s = rpc.rpc_stream_slave(l.accept()[0])\n"
        "def slow_echo(data):\n"
        "    time.sleep_ms(30)\n"
        "    return data\n"
        "s.register_callback(slow_echo)\n"
        "print('serving')\n"
        "s.loop()\n" % port
    )
    master_script = tmp_path / "slow_master.py"
    master_script.write_text(
        "import rpc, socket, json\n"
        "sock = socket.socket()\n"
        "sock.connect(socket.getaddrinfo('127.0.0.2', %d)[0][-1])\n"
        "sock.setsockopt(6, 1, 1)\n"
        "m = rpc.rpc_stream_master(sock)\n"
        "results = []\n"
        "for i in range(20):\n"
        "    data = bytes([i]) * (i + 1)\n"
        "    r = m.call('slow_echo', data, send_timeout=1000, recv_timeout=1000)\n"
        "    results.append(r is not None and bytes(r) == data)\n"
        "    if not results[-1]:\n"
        "        break  # one failure is enough (each costs the slave's 5 s wait)\n"
        "print(json.dumps([results, m.last_error, m.stats()['calls_ok']]))\n" % port
    )
    slave = micropython(slave_script)
    try:
        wait_line(slave, "listening")
        master = micropython(master_script)
        wait_line(slave, "serving")
        out, err = master.communicate(timeout=120)
    finally:
        slave.kill()
        slave.wait()
    assert master.returncode == 0, err
    results, last_error, calls_ok = json.loads(out.strip().splitlines()[-1])
    assert results == [True] * 20, last_error
    assert last_error is None
    assert calls_ok == 20


def crc16(data):
    # CRC-16/CCITT-FALSE (docs/PROTOCOL.md), written out so this peer is independent of the module.
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def packet(magic, payload=b""):
    head = magic.to_bytes(2, "little") + payload
    return head + crc16(head).to_bytes(2, "little")


class LateRequestSlave:
    """A slave in CPython over a TCP stream that answers every RESULT_HEADER request but
    ignores the first RESULT_DATA request of each call: what the master sees when its request
    reached a reference slave after the slave's short timeout (the slave went back to waiting
    for a RESULT_HEADER request). Its callback reverses the argument."""

    def __init__(self, port):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.2", port))
        self.listener.listen(1)
        self.dropped = 0
        self.error = None
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def read(self, conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def serve(self):
        self.listener.settimeout(30)
        try:
            conn = self.listener.accept()[0]
        except OSError as e:
            self.error = repr(e)
            return
        conn.settimeout(30)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        result, drop = b"", True
        try:
            while True:
                magic = int.from_bytes(self.read(conn, 2), "little")
                if magic == 0x1209:  # COMMAND_HEADER(hash, len)
                    rest = self.read(conn, 10)
                    length = int.from_bytes(rest[4:8], "little")
                    conn.sendall(packet(0x1209))
                elif magic == 0xABD1:  # COMMAND_DATA(argument)
                    data = self.read(conn, length + 2)
                    result, drop = bytes(reversed(data[:length])), True
                    conn.sendall(packet(0xABD1))
                elif magic == 0x9021:  # RESULT_HEADER request
                    self.read(conn, 2)
                    conn.sendall(packet(0x9021, len(result).to_bytes(4, "little")))
                elif magic == 0x1DBA:  # RESULT_DATA request
                    self.read(conn, 2)
                    if drop:
                        drop = False
                        self.dropped += 1
                    else:
                        conn.sendall(packet(0x1DBA, result))
                else:
                    self.error = "unexpected magic %04x" % magic
                    return
        except (EOFError, OSError):
            pass
        finally:
            conn.close()

    def close(self):
        self.listener.close()
        self.thread.join(timeout=10)


def test_unanswered_result_data_request_is_retried_within_recv_timeout(tmp_path):
    # Before the first-byte limit (io.start_timeout_ms) the master sat out the 5000 ms long
    # timeout on a RESULT_DATA that would never come, and the call failed past its 1000 ms
    # recv_timeout; now it gives up on the first byte within half the phase and retries.
    subprocess.run(["make", "unix"], cwd=ROOT, check=True, timeout=900, capture_output=True)
    port = free_port()
    master_script = tmp_path / "late_request_master.py"
    master_script.write_text(
        "import rpc, socket, json, time\n"
        "sock = socket.socket()\n"
        "sock.connect(socket.getaddrinfo('127.0.0.2', %d)[0][-1])\n"
        "sock.setsockopt(6, 1, 1)\n"
        "m = rpc.rpc_stream_master(sock)\n"
        "m.set_timing(short_timeout_ms=30)  # a loaded machine; the slave is a Python thread\n"
        "out = []\n"
        "t = time.ticks_ms()\n"
        "r = m.call('reverse', b'blocking call', send_timeout=1000, recv_timeout=1000)\n"
        "out.append([None if r is None else bytes(r).decode(), m.last_error, time.ticks_diff(time.ticks_ms(), t)])\n"
        "t = time.ticks_ms()\n"
        "m.call_start('reverse', b'non-blocking call', send_timeout=1000, recv_timeout=1000)\n"
        "while not m.call_poll():\n"
        "    time.sleep_ms(1)\n"
        "r = m.call_result()\n"
        "out.append([None if r is None else bytes(r).decode(), m.last_error, time.ticks_diff(time.ticks_ms(), t)])\n"
        "out.append(m.stats()['retries'])\n"
        "print(json.dumps(out))\n" % port
    )
    slave = LateRequestSlave(port)
    try:
        master = micropython(master_script)
        out, err = master.communicate(timeout=60)
    finally:
        slave.close()
    assert master.returncode == 0, err
    blocking, non_blocking, retries = json.loads(out.strip().splitlines()[-1])
    print("blocking call:", blocking, "non-blocking call:", non_blocking, "retries:", retries)
    assert slave.error is None, slave.error
    assert slave.dropped == 2, "each call's first RESULT_DATA request went unanswered"
    for (result, last_error, elapsed_ms), argument in ((blocking, "blocking call"), (non_blocking, "non-blocking call")):
        assert result == argument[::-1], last_error
        assert last_error is None
        assert elapsed_ms < 2000, "within recv_timeout, not after the 5 s long timeout"
    assert retries >= 2
