# One side of a call through tests/relay.py (the recovery tests and bench/lossy_bench.py):
#   relay_peer.py master|slave mod|ref TIMING udp:PORT|tcp:PORT|fd:N [JSON]
# (or dev:PATH, a serial device, for impl "host": the host package in CPython).
# TIMING: "default" for our module; bench/ref_rpc.py's use_timing() mode for "ref", optionally
# with ",short=N" (its first short timeout).
# Addresses (see tests/relay.py): the master sends UDP to / connects to the relay at
# 127.0.0.3; the slave listens at 127.0.0.2; on UDP it learns the relay's 127.0.0.4.
# JSON: inline or @PATH of a file holding it.
# The slave serves echo, work (a callback that works "work_ms" of the JSON before echoing)
# and stats until it is killed, with loop()'s defaults.
# The master makes one call a size of JSON "sizes" (an echo, or "work" if JSON "name" says so)
# with default timeouts unless JSON gives send_timeout/recv_timeout, prints
#   CALL [size, outcome, ms, last_error]
# as each ends, then RESULT {"first": ..., "stats": {...}}
# outcome: "right", "none" (None) or "wrong" (data that is not the argument). With JSON
# "count": calls/s of that many calls of size sizes[0] instead ("rate").
import sys
import json
from peer_lib import load_impl, stats_of, ticks_ms, ticks_diff, sleep_ms

try:
    from time import ticks_us
except ImportError:
    ticks_us = None

RELAY_IP = "127.0.0.3"
SLAVE_IP = "127.0.0.2"
MASTER_IP = "127.0.0.1"

role, impl_name, timing, spec = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
# JSON comes in a file (@PATH): in this unix port, loading a native module (rpc.mpy,
# mutex.mpy) while an argv element is 256 bytes or longer ends in "FATAL: uncaught NLR".
params = {}
if len(sys.argv) > 5:
    arg = sys.argv[5]
    if arg.startswith("@"):
        with open(arg[1:]) as f:
            arg = f.read()
    params = json.loads(arg)
if impl_name == "host":  # the host package (host/), in CPython
    import rpc
else:
    rpc = load_impl(impl_name)


def _socket():
    import socket
    return socket


def _addr(ip, port):
    return _socket().getaddrinfo(ip, port)[0][-1]


def make():
    kind, _, arg = spec.partition(":")
    if kind == "udp":
        port = int(arg)
        if role == "master":
            return rpc.rpc_network_master(slave_ip=RELAY_IP, my_ip=MASTER_IP, port=port)
        return rpc.rpc_network_slave(my_ip=SLAVE_IP, port=port)
    if kind == "tcp":
        socket = _socket()
        port = int(arg)
        if role == "master":
            start = ticks_ms()
            while True:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.connect(_addr(RELAY_IP, port))
                    break
                except OSError:
                    s.close()
                    if ticks_diff(ticks_ms(), start) > 10000:
                        raise
                    sleep_ms(20)
            s.setsockopt(6, 1, 1)
            return rpc.rpc_stream_master(s)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(_addr(SLAVE_IP, port))
        listener.listen(1)
        print("READY")
        s = listener.accept()[0]
        s.setsockopt(6, 1, 1)
        listener.close()
        return rpc.rpc_stream_slave(s)
    if kind == "dev":  # a serial device by path (the host package's pyserial door)
        if role == "master":
            return rpc.rpc_uart_master(arg, baudrate=115200)
        return rpc.rpc_uart_slave(arg, baudrate=115200)
    if kind == "fd":
        f = open(int(arg), "r+b")
        return rpc.rpc_stream_master(f) if role == "master" else rpc.rpc_stream_slave(f)
    raise ValueError("bad spec %r" % spec)


timing, _, short = timing.partition(",short=")
obj = make()
if timing != "default":
    obj.use_timing(timing)
if short:  # the first short timeout (ms) of bench/ref_rpc.py instead of its 3 / 2
    obj._short_timeout_start = int(short)


def payload(n, seed):
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = x >> 16 & 0xFF
    return bytes(out)


def run_slave():
    work_ms = params.get("work_ms", 0)

    def echo(arg):
        return bytes(arg)

    def work(arg):
        if work_ms:
            sleep_ms(work_ms)
        return bytes(arg)

    def stats(arg):
        return json.dumps(stats_of(obj)).encode()

    for cb in (echo, work, stats):
        obj.register_callback(cb)
    if not spec.startswith("tcp:"):
        print("READY")
    obj.loop()


def timed_call(name, data, kw):
    t0 = ticks_ms()
    r = obj.call(name, data, **kw)
    ms = ticks_diff(ticks_ms(), t0)
    if r is None:
        return "none", ms
    return ("right" if bytes(r) == data else "wrong"), ms


def run_master():
    name = params.get("name", "echo")
    kw = {}
    for k in ("send_timeout", "recv_timeout"):
        if k in params:
            kw[k] = params[k]
    # The first call waits out a slave that is still starting up (tried up to three times on
    # a loaded machine); it is not counted.
    for _ in range(3):
        first = obj.call(name, b"start", send_timeout=5000, recv_timeout=5000)
        if first is not None:
            break
    out = {"first": first is not None and bytes(first) == b"start"}
    if "count" in params:
        data = payload(params["sizes"][0], 7)
        n = params["count"]
        outcomes = {"right": 0, "none": 0, "wrong": 0}
        t0 = ticks_ms()
        for i in range(n):
            outcome, _ = timed_call(name, data, kw)
            outcomes[outcome] += 1
        ms = ticks_diff(ticks_ms(), t0)
        out["rate"] = {"calls": n, "ms": ms, "outcomes": outcomes}
    else:
        # One line a call, printed as it ends (10,000 calls kept in a list would fill the
        # unix port's heap).
        for i, n in enumerate(params["sizes"]):
            data = payload(n, i + 1)
            outcome, ms = timed_call(name, data, kw)
            err = getattr(obj, "last_error", None) if outcome != "right" else None
            print("CALL " + json.dumps([n, outcome, ms, err]))
    out["stats"] = stats_of(obj)
    print("RESULT " + json.dumps(out))


if role == "master":
    run_master()
else:
    run_slave()
