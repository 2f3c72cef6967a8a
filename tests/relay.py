"""A relay process between an rpc master and an rpc slave that loses, corrupts, truncates and
delays packets, for the recovery tests and the lossy benchmark (CPython, standard library only).

    python tests/relay.py udp  PORT [options]   network transport: the master sends its UDP to
        127.0.0.3:PORT (its slave_ip), the relay sends on to the slave at 127.0.0.2:PORT from
        127.0.0.4:PORT (the address the slave learns); the slave's TCP connection to
        127.0.0.4:PORT is passed through unharmed to the master at 127.0.0.1:PORT
    python tests/relay.py tcp  PORT [options]   stream transport over TCP: the master connects
        to 127.0.0.3:PORT, the relay connects on to the slave listening at 127.0.0.2:PORT
    python tests/relay.py pty  FD_M FD_S [options]   stream transport over two pty pairs: FD_M
        and FD_S are the pty master ends (inherited) whose other ends the master and the slave
        hold
options:
    --faults JSON   a list of single faults: {"call": c, "packet": k, "kind": K}: the first copy
                    of packet k (0-7, see PACKETS) of call c (calls are counted from 0 by
                    COMMAND_HEADERs that differ from the one before) gets fault K (drop,
                    corrupt: one bit flipped, truncate: only the first half sent, delay:
                    sent DELAY ms late)
    --drop P --flip P --truncate P --lag P   per packet, drawn in this order from a
                    random.Random(--seed): the chance of each fault (default 0)
    --dirs m2s,s2m  the directions the random faults apply to (default both)
    --delay MS      the delay of a delay fault (default 20)
    --seed N        the seed of the random faults (default 1)
    --log 1         also print "PKT {json}" for every unit passed on (for tracing)
Prints READY when both sides may start, one line "FAULT {json}" per fault carried out, and
"STATS {json}" when stdin closes or on SIGTERM, then exits.

Packets are found by the protocol's own framing: the first two bytes of a packet are its
magic, and its length follows from the magic, the direction and the lengths announced by the
last COMMAND_HEADER and RESULT_HEADER. On UDP each datagram is one packet. Bytes that are no
packet (stream frames and acks) pass one at a time, untouched by single faults.
"""
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time

MASTER_IP, SLAVE_IP, RELAY_M_IP, RELAY_S_IP = "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"
COMMAND_HEADER, COMMAND_DATA, RESULT_HEADER, RESULT_DATA = 0x1209, 0xABD1, 0x9021, 0x1DBA
STREAM_SETUP, STREAM_HEADER = 0xEDF6, 0x542E

# The eight packets of a call, in order, with their direction.
PACKETS = [
    ("m2s", COMMAND_HEADER, "COMMAND_HEADER"),
    ("s2m", COMMAND_HEADER, "COMMAND_HEADER ack"),
    ("m2s", COMMAND_DATA, "COMMAND_DATA"),
    ("s2m", COMMAND_DATA, "COMMAND_DATA ack"),
    ("m2s", RESULT_HEADER, "RESULT_HEADER request"),
    ("s2m", RESULT_HEADER, "RESULT_HEADER"),
    ("m2s", RESULT_DATA, "RESULT_DATA request"),
    ("s2m", RESULT_DATA, "RESULT_DATA"),
]
PACKET_INDEX = {(d, m): i for i, (d, m, _) in enumerate(PACKETS)}
KINDS = ("drop", "corrupt", "truncate", "delay")


class Faults:
    """Decides, packet by packet, what happens to it."""

    def __init__(self, plan, rates, dirs, delay_ms, seed):
        self.plan = [dict(f) for f in plan]
        for f in self.plan:
            if f["kind"] not in KINDS or not 0 <= f["packet"] < len(PACKETS):
                raise ValueError("bad fault %r" % f)
            f["done"] = False
        self.rates = rates
        self.dirs = dirs
        self.delay_ms = delay_ms
        self.rng = random.Random(seed)
        self.call = -1
        self.last_command_header = None
        self.stats = {"packets": 0, "raw_bytes": 0, "calls": 0,
                      "drop": 0, "corrupt": 0, "truncate": 0, "delay": 0}

    def decide(self, direction, data):
        """(kind or None, packet index or None) for one unit of bytes."""
        index = None
        if len(data) >= 4:
            index = PACKET_INDEX.get((direction, struct.unpack_from("<H", data, 0)[0]))
        if index is None:
            self.stats["raw_bytes"] += len(data)
        else:
            self.stats["packets"] += 1
        if index == 0 and data != self.last_command_header:
            self.last_command_header = bytes(data)
            self.call += 1
            self.stats["calls"] = self.call + 1
        if index is not None:
            for f in self.plan:
                if not f["done"] and f["call"] == self.call and f["packet"] == index:
                    f["done"] = True
                    return f["kind"], index
        if direction in self.dirs:
            for kind in ("drop", "corrupt", "truncate", "delay"):
                p = self.rates.get(kind, 0.0)
                if p and self.rng.random() < p:
                    return kind, index
        return None, index

    def apply(self, kind, data):
        """(bytes to send, delay in ms) after fault `kind`; None: nothing is sent."""
        if kind is None:
            return data, 0
        self.stats[kind] += 1
        if kind == "drop":
            return None
        if kind == "corrupt":
            b = bytearray(data)
            bit = self.rng.randrange(len(b) * 8)
            b[bit // 8] ^= 1 << (bit % 8)
            return bytes(b), 0
        if kind == "truncate":
            return data[:len(data) // 2], 0
        return data, self.delay_ms


class Framer:
    """Cuts one direction of a byte stream into packets (see the module's docstring)."""

    def __init__(self, direction):
        self.direction = direction
        self.buf = bytearray()
        self.lengths = {COMMAND_DATA: 0, RESULT_DATA: 0}

    def _length(self, magic):
        d = self.direction
        if d == "m2s":
            return {COMMAND_HEADER: 12, COMMAND_DATA: self.lengths[COMMAND_DATA] + 4,
                    RESULT_HEADER: 4, RESULT_DATA: 4, STREAM_SETUP: 8, STREAM_HEADER: 8}.get(magic)
        return {COMMAND_HEADER: 4, COMMAND_DATA: 4, RESULT_HEADER: 8,
                RESULT_DATA: self.lengths[RESULT_DATA] + 4, STREAM_SETUP: 8, STREAM_HEADER: 8}.get(magic)

    def feed(self, data, lengths_from):
        """Appends data; returns the whole units now available. lengths_from: the Framer of
        the other direction (the slave's RESULT_HEADER announces the RESULT_DATA length the
        slave sends; the master's COMMAND_HEADER the COMMAND_DATA length it sends)."""
        self.buf += data
        units = []
        while len(self.buf) >= 2:
            magic = struct.unpack_from("<H", self.buf, 0)[0]
            n = self._length(magic)
            if n is None:
                units.append(bytes(self.buf[:1]))
                del self.buf[:1]
                continue
            if len(self.buf) < n:
                break
            unit = bytes(self.buf[:n])
            del self.buf[:n]
            self._learn(unit)
            units.append(unit)
        return units

    def _learn(self, unit):
        magic = struct.unpack_from("<H", unit, 0)[0]
        if self.direction == "m2s" and magic == COMMAND_HEADER:
            self.lengths[COMMAND_DATA] = struct.unpack_from("<I", unit, 6)[0]
        elif self.direction == "s2m" and magic == RESULT_HEADER:
            self.lengths[RESULT_DATA] = struct.unpack_from("<I", unit, 2)[0]


class Relay:
    def __init__(self, faults):
        self.faults = faults
        self.delayed = []  # (release time, seq, direction, data)
        self.seq = 0
        self.log = False

    def log_fault(self, kind, index, direction, data):
        line = {"call": self.faults.call, "packet": index, "kind": kind, "dir": direction,
                "len": len(data), "t": round(time.monotonic(), 4)}
        print("FAULT " + json.dumps(line), flush=True)

    def handle(self, direction, data):
        """A unit from the peer on `direction`'s sending side: sent on now, later or never."""
        kind, index = self.faults.decide(direction, data)
        if kind is not None:
            self.log_fault(kind, index, direction, data)
        if self.log:
            print("PKT " + json.dumps({"t": round(time.monotonic() * 1000, 1), "dir": direction,
                                       "packet": index, "len": len(data), "fault": kind}), flush=True)
        out = self.faults.apply(kind, data)
        if out is None:
            return
        data, delay = out
        if delay:
            self.seq += 1
            self.delayed.append((time.monotonic() + delay / 1000, self.seq, direction, data))
            self.delayed.sort()
        elif self.ordered and any(d == direction for _, _, d, _ in self.delayed):
            # A byte stream keeps its order: what follows a delayed packet waits behind it.
            self.seq += 1
            release = max(t for t, _, d, _ in self.delayed if d == direction)
            self.delayed.append((release, self.seq, direction, data))
            self.delayed.sort()
        else:
            self.send(direction, data)

    def release_due(self):
        now = time.monotonic()
        while self.delayed and self.delayed[0][0] <= now:
            _, _, direction, data = self.delayed.pop(0)
            self.send(direction, data)

    def next_timeout(self, default=0.05):
        if not self.delayed:
            return default
        return max(0.0, min(default, self.delayed[0][0] - time.monotonic()))


class StreamRelay(Relay):
    """Two byte streams (pty fds or TCP sockets), packet-aware."""
    ordered = True

    def __init__(self, faults, master_fd, slave_fd):
        Relay.__init__(self, faults)
        self.fd = {"m": master_fd, "s": slave_fd}
        self.framers = {"m2s": Framer("m2s"), "s2m": Framer("s2m")}
        self.out = {"m": bytearray(), "s": bytearray()}  # bytes waiting to be written to a side
        for fd in (master_fd, slave_fd):
            os.set_blocking(fd, False)

    def send(self, direction, data):
        self.out["s" if direction == "m2s" else "m"] += data
        self.flush_out()

    def flush_out(self):
        for side in ("m", "s"):
            buf = self.out[side]
            while buf:
                try:
                    n = os.write(self.fd[side], buf)
                except (BlockingIOError, InterruptedError):
                    break
                del buf[:n]

    def step(self, extra_fds=()):
        want_w = [self.fd[s] for s in ("m", "s") if self.out[s]]
        r, w, _ = select.select([self.fd["m"], self.fd["s"]] + list(extra_fds), want_w, [],
                                self.next_timeout())
        for side, direction in (("m", "m2s"), ("s", "s2m")):
            if self.fd[side] in r:
                try:
                    data = os.read(self.fd[side], 65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:  # a pty whose other end is closed (EIO)
                    data = b""
                if not data:
                    return False
                other = self.framers["s2m" if direction == "m2s" else "m2s"]
                for unit in self.framers[direction].feed(data, other):
                    self.handle(direction, unit)
        self.release_due()
        self.flush_out()
        return r


class UdpRelay(Relay):
    """The network transport: UDP datagrams (each one packet), TCP passed through."""
    ordered = False

    def __init__(self, faults, port):
        Relay.__init__(self, faults)
        self.port = port
        self.to_master = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the master sends here
        self.to_master.bind((RELAY_M_IP, port))
        self.to_slave = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # the slave sees this
        self.to_slave.bind((RELAY_S_IP, port))
        self.master_addr = None
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((RELAY_S_IP, port))
        self.listener.listen(1)
        self.pipes = {}  # socket -> socket (TCP pass-through, both ways)

    def send(self, direction, data):
        try:
            if direction == "m2s":
                self.to_slave.sendto(data, (SLAVE_IP, self.port))
            elif self.master_addr is not None:
                self.to_master.sendto(data, self.master_addr)
        except OSError:
            pass

    def step(self, extra_fds=()):
        socks = [self.to_master, self.to_slave, self.listener] + list(self.pipes)
        r, _, _ = select.select(socks + list(extra_fds), [], [], self.next_timeout())
        if self.to_master in r:
            data, addr = self.to_master.recvfrom(65536)
            self.master_addr = addr
            self.handle("m2s", data)
        if self.to_slave in r:
            data, _ = self.to_slave.recvfrom(65536)
            self.handle("s2m", data)
        if self.listener in r:
            conn, _ = self.listener.accept()
            up = socket.create_connection((MASTER_IP, self.port))
            for s in (conn, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.pipes[conn], self.pipes[up] = up, conn
        for s in list(self.pipes):
            if s in r:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                peer = self.pipes.get(s)
                if not data:
                    for x in (s, peer):
                        self.pipes.pop(x, None)
                        if x is not None:
                            x.close()
                    continue
                peer.sendall(data)
        self.release_due()
        return r


def parse_args(argv):
    mode, rest = argv[0], argv[1:]
    positional, opts = [], {}
    i = 0
    while i < len(rest):
        if rest[i].startswith("--"):
            opts[rest[i][2:]] = rest[i + 1]
            i += 2
        else:
            positional.append(rest[i])
            i += 1
    return mode, positional, opts


def main(argv):
    mode, positional, opts = parse_args(argv)
    rates = {k: float(opts.get(o, 0)) for k, o in
             (("drop", "drop"), ("corrupt", "flip"), ("truncate", "truncate"), ("delay", "lag"))}
    faults = Faults(json.loads(opts.get("faults", "[]")), rates,
                    set(opts.get("dirs", "m2s,s2m").split(",")),
                    int(opts.get("delay", 20)), int(opts.get("seed", 1)))
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    if mode == "udp":
        relay = UdpRelay(faults, int(positional[0]))
        print("READY", flush=True)
    elif mode == "tcp":
        port = int(positional[0])
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((RELAY_M_IP, port))
        listener.listen(1)
        print("READY", flush=True)
        r, _, _ = select.select([listener, sys.stdin], [], [])
        if listener not in r:
            return
        m, _ = listener.accept()
        deadline = time.monotonic() + 10
        while True:
            try:
                s = socket.create_connection((SLAVE_IP, port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        for x in (m, s):
            x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        relay = StreamRelay(faults, m.fileno(), s.fileno())
        relay.keep = (m, s, listener)
    elif mode == "pty":
        relay = StreamRelay(faults, int(positional[0]), int(positional[1]))
        print("READY", flush=True)
    else:
        raise SystemExit("mode must be udp, tcp or pty")
    relay.log = opts.get("log") == "1"
    stdin = sys.stdin.fileno()
    try:
        while not stop:
            r = relay.step(extra_fds=(stdin,))
            if r is False:
                break
            if r and stdin in r and not os.read(stdin, 4096):
                break
    finally:
        stats = dict(faults.stats)
        stats["single_not_done"] = [f for f in faults.plan if not f["done"]]
        print("STATS " + json.dumps(stats), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
