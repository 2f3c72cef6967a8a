# Shared by the MicroPython-side scripts of the unix-port tests: pick the implementation
# under test and build its transports.
#   impl "mod": our module (`import rpc`, from MICROPYPATH=build/unix)
#   impl "ref": the independent pure-Python peer bench/ref_rpc.py
import sys


def load_impl(name):
    if name == "mod":
        import rpc
        if not hasattr(rpc, "rpc_master"):
            raise ImportError("module rpc has no rpc_master: %r" % rpc)
        return rpc
    if name == "ref":
        import ref_rpc
        return ref_rpc
    raise ValueError("impl must be mod or ref, not %r" % name)


try:
    from time import ticks_ms, ticks_diff, sleep_ms
except ImportError:  # CPython
    from ref_rpc import ticks_ms, ticks_diff, sleep_ms

MASTER_IP = "127.0.0.1"
SLAVE_IP = "127.0.0.2"

# Frame i of a test stream: PATTERN[i % 256 : i % 256 + size]; sizes vary to test framing.
PATTERN = bytes(range(256)) * 17


def frame_size(i, size):
    return size - (i * 37) % (size // 2 + 1) if size > 1 else size


def expected_frame(i, size):
    start = i % 256
    return PATTERN[start:start + frame_size(i, size)]


def _socket():
    import socket
    return socket


def _addr(ip, port):
    return _socket().getaddrinfo(ip, port)[0][-1]


def tcp_listen(port):
    socket = _socket()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(_addr(SLAVE_IP, port))
    s.listen(1)
    return s


def tcp_accept(listener):
    conn = listener.accept()[0]
    conn.setsockopt(6, 1, 1)  # TCP_NODELAY
    return conn


def tcp_connect(port, timeout_ms=10000):
    socket = _socket()
    start = ticks_ms()
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.connect(_addr(SLAVE_IP, port))
            s.setsockopt(6, 1, 1)
            return s
        except OSError:
            s.close()
            if ticks_diff(ticks_ms(), start) > timeout_ms:
                raise
            sleep_ms(20)


def python_transport_class(base, sock):
    """A subclass of base (rpc_master or rpc_slave) whose transport is Python code over a
    socket: the documented way to add a transport (get_bytes/put_bytes/_flush overrides)."""
    import select
    sock.setblocking(False)
    poll_in = select.poll()
    poll_in.register(sock, select.POLLIN)
    scratch = bytearray(512)

    class PySocket(base):
        def get_bytes(self, buff, timeout_ms):
            mv = memoryview(buff)
            got = 0
            start = ticks_ms()
            while got < len(mv):
                left = timeout_ms - ticks_diff(ticks_ms(), start)
                if left < 0 or not poll_in.poll(left):
                    return None
                k = sock.readinto(mv[got:])
                if k == 0:
                    raise OSError("closed")
                if k:
                    got += k
            return buff

        def put_bytes(self, data, timeout_ms):
            mv = memoryview(data)
            sent = 0
            while sent < len(mv):
                k = sock.write(mv[sent:])
                if k:
                    sent += k
                else:
                    sleep_ms(1)

        def _flush(self):
            while poll_in.poll(0):
                if not sock.readinto(scratch):
                    return

    return PySocket


def make(rpc, role, spec):
    """make_transport() with optional ",short=N", ",pipeline" and ",spin=US" suffixes on spec:
    the first short timeout (ms) of this side instead of the reference's 3 (master) / 2
    (slave); a master that pipelines all its requests (set_timing(pipeline="all"), our module
    only); how long this side's waits check readiness before sleeping (set_timing(spin_us=))."""
    spec, *options = spec.split(",")
    obj = make_transport(rpc, role, spec)
    for option in options:
        if option.startswith("short="):
            short = int(option[6:])
            if hasattr(obj, "set_timing"):
                obj.set_timing(short_timeout_ms=short)
            else:
                obj._short_timeout_start = short
        elif option == "pipeline":
            obj.set_timing(pipeline="all")
        elif option.startswith("spin="):
            obj.set_timing(spin_us=int(option[5:]))
        else:
            raise ValueError("bad option %r in %r" % (option, spec))
    return obj


def make_transport(rpc, role, spec):
    """The rpc object of this side. spec: net:PORT (network transport, master 127.0.0.1,
    slave 127.0.0.2), tcp:PORT (stream transport over a TCP socket; the slave listens on
    127.0.0.2), py:PORT (a Python get_bytes/put_bytes subclass over a TCP socket), fd:N (stream
    transport over an inherited pty fd). Prints READY when the other side may start."""
    kind, _, arg = spec.partition(":")
    if kind == "net":
        port = int(arg)
        if role == "master":
            obj = rpc.rpc_network_master(slave_ip=SLAVE_IP, my_ip=MASTER_IP, port=port)
        else:
            obj = rpc.rpc_network_slave(my_ip=SLAVE_IP, port=port)
        print("READY")
        return obj
    if kind in ("tcp", "py"):
        port = int(arg)
        if role == "master":
            sock = tcp_connect(port)
        else:
            listener = tcp_listen(port)
            print("READY")
            sock = tcp_accept(listener)
            listener.close()
        if kind == "tcp":
            if role == "master":
                return rpc.rpc_stream_master(sock)
            return rpc.rpc_stream_slave(sock)
        base = rpc.rpc_master if role == "master" else rpc.rpc_slave
        return python_transport_class(base, sock)()
    if kind == "vcp":
        # rpc_usb_vcp_master/slave over the stand-in pyb.USB_VCP (tests/unix/stand_in_vcp) on
        # an inherited pty fd.
        sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/stand_in_vcp")
        import pyb
        pyb.VCP_FD = int(arg)
        obj = rpc.rpc_usb_vcp_master() if role == "master" else rpc.rpc_usb_vcp_slave()
        if obj._usb.interrupt != -1 or obj._usb.setinterrupt_calls != 1:
            raise AssertionError("USB_VCP Ctrl-C interception left on: %r" % obj._usb.interrupt)
        print("READY")
        return obj
    if kind == "fd":
        f = open(int(arg), "r+b")
        obj = rpc.rpc_stream_master(f) if role == "master" else rpc.rpc_stream_slave(f)
        print("READY")
        return obj
    raise ValueError("bad transport spec %r" % spec)


def stats_of(obj):
    s = getattr(obj, "stats", None)
    if s is None:
        return {}
    return s() if callable(s) else s
