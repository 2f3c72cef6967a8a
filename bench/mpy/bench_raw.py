# The raw link in the same interpreter, for the benchmark's ratios:
#   bench_raw.py server tcp|tcpspin|udp PORT       echoes what it is sent (the peer at 127.0.0.2)
#   bench_raw.py client tcp|tcpspin|udp PORT SECONDS
# tcpspin: TCP with both sides polling non-blocking sockets in a loop instead of sleeping in
# recv (what set_timing(spin_us=) does in our module, without its limits).
# The client measures (1) a ping-pong of four round trips with tiny payloads, the shape of
# one call's eight packets (12->4, 4+0->4, 4->8, 4->4 bytes), and (2, tcp only) a 64 KiB echo.
# Prints RESULT <json>.
import sys
import json
import socket
import time

role, kind, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
SLAVE = socket.getaddrinfo("127.0.0.2", port)[0][-1]
MASTER = socket.getaddrinfo("127.0.0.1", port)[0][-1]
# (request, reply) sizes of the four round trips of one call with an empty argument/result
ROUND_TRIPS = ((12, 4), (4, 4), (4, 8), (4, 4))
BIG = 65536


class Spinning:
    """A TCP socket set non-blocking and polled in a loop: the raw link with the waits of
    set_timing(spin_us=...) at their fastest (never asleep), for the benchmark's other ratio."""

    def __init__(self, s):
        s.setblocking(False)
        self.s = s

    def readinto(self, buf):
        """Asks again until buf is full (or the peer closed); never sleeps."""
        got = self.s.readinto(buf) or 0
        if got == len(buf):
            return got  # the usual case: no view to allocate
        mv = memoryview(buf)
        while got < len(buf):
            n = self.s.readinto(mv[got:])
            if n == 0:
                break  # the peer closed
            got += n or 0
        return got

    def write(self, data):
        """Asks again until all is written; never sleeps."""
        done = self.s.write(data) or 0
        mv = memoryview(data)
        while done < len(data):
            done += self.s.write(mv[done:]) or 0


def server_tcp(spin=False):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(SLAVE)
    ls.listen(1)
    print("READY")
    s = ls.accept()[0]
    s.setsockopt(6, 1, 1)
    if spin:
        s = Spinning(s)
    # The requests come in the order of ROUND_TRIPS; the first byte of a 12-byte request says
    # R (a round trip), B (a 64 KiB echo follows) or Q (quit).
    reqs = [(bytearray(q), bytes(r)) for q, r in ROUND_TRIPS]
    big = bytearray(BIG)
    i = 0
    while True:
        q, r = reqs[i]
        if s.readinto(q) != len(q) or q[0] == ord("Q"):
            return
        if q[0] == ord("B"):
            s.readinto(big)
            s.write(big)
            continue
        s.write(r)
        i = (i + 1) & 3


def round_trips_per_s(s, reqs, seconds):
    """The four request/reply round trips of reqs (request bytes, reply buffer), as many times
    as fit in seconds; how many times per second."""
    t0 = time.ticks_us()
    n = 0
    while time.ticks_diff(time.ticks_us(), t0) < seconds * 1000000:
        for q, r in reqs:
            s.write(q)
            s.readinto(r)
        n += 1
    return n * 1000000 / time.ticks_diff(time.ticks_us(), t0)


def client_tcp(seconds, spin=False):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    for _ in range(200):
        try:
            s.connect(SLAVE)
            break
        except OSError:
            time.sleep_ms(20)
    s.setsockopt(6, 1, 1)
    if spin:
        s = Spinning(s)
    reqs = [(b"R" + bytes(q - 1), bytearray(r)) for q, r in ROUND_TRIPS]
    res = {"rt4_per_s": round_trips_per_s(s, reqs, seconds)}
    big = bytearray(BIG)
    t0 = time.ticks_us()
    n = 0
    while time.ticks_diff(time.ticks_us(), t0) < seconds * 1000000:
        s.write(b"B" + bytes(11))
        s.write(big)
        s.readinto(big)
        n += 1
    res["echo64k_per_s"] = n * 1000000 / time.ticks_diff(time.ticks_us(), t0)
    s.write(b"Q" + bytes(11))
    return res


def server_udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(SLAVE)
    print("READY")
    buf = bytearray(1500)
    while True:
        data, addr = s.recvfrom(1500)
        if data[0] == ord("Q"):
            return
        s.sendto(bytes(data[1]), addr)


def client_udp(seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(MASTER)
    s.connect(SLAVE)
    reqs = []
    for q, r in ROUND_TRIPS:
        reqs.append((b"R" + bytes([r]) + bytes(q - 2), bytearray(r)))
    out = {"rt4_per_s": round_trips_per_s(s, reqs, seconds)}
    s.write(b"Q")
    return out


if role == "server":
    server_udp() if kind == "udp" else server_tcp(kind == "tcpspin")
else:
    seconds = float(sys.argv[4])
    res = client_udp(seconds) if kind == "udp" else client_tcp(seconds, kind == "tcpspin")
    print("RESULT " + json.dumps(res))
