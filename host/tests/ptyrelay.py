"""A serial line between two ptys that behaves like a bad USB-serial link.

    python ptyrelay.py [--latency-ms 16] [--jitter-ms 4] [--loss 0.001] [--latency-timer-ms 16]

prints "HOST <path>" and "CAM <path>" (two pty slave paths, raw mode) and relays bytes between
them until stdin closes or it is killed: every byte is delayed by `latency` plus a uniform
jitter (order kept, like a real line), lost with probability `loss`, and in the cam-to-host
direction held until the next tick of a `latency-timer` (what an FTDI adapter does with its
16 ms latency timer). It prints "STATS <bytes relayed> <bytes dropped>" on exit.
"""

import argparse
import collections
import os
import random
import select
import signal
import sys
import time
import tty


def open_pty():
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


class Direction:
    trace = None

    def __init__(self, src, dst, latency, jitter, loss, timer, rng, name=""):
        self.name = name
        self.src, self.dst = src, dst
        self.latency, self.jitter, self.loss, self.timer = latency, jitter, loss, timer
        self.rng = rng
        self.queue = collections.deque()  # (due, bytes)
        self.last_due = 0.0
        self.relayed = 0
        self.dropped = 0

    def take(self, now):
        try:
            data = os.read(self.src, 65536)
        except (BlockingIOError, OSError):
            return
        if self.loss:
            kept = bytearray()
            for b in data:
                if self.rng.random() < self.loss:
                    self.dropped += 1
                else:
                    kept.append(b)
            data = bytes(kept)
        if not data:
            return
        if Direction.trace:
            Direction.trace.write("%.6f %s %s\n" % (now, self.name, data.hex()))
        due = now + self.latency + (self.rng.uniform(0, self.jitter) if self.jitter else 0.0)
        if self.timer:
            due = (int(due / self.timer) + 1) * self.timer
        due = max(due, self.last_due)
        self.last_due = due
        self.queue.append((due, data))

    def give(self, now):
        while self.queue and self.queue[0][0] <= now:
            _, data = self.queue.popleft()
            try:
                n = os.write(self.dst, data)
            except BlockingIOError:
                n = 0
            except OSError:
                n = len(data)  # nobody at that end: the bytes are lost, as on a real line
            self.relayed += n
            if n < len(data):
                self.queue.appendleft((now, data[n:]))
                return

    def next_due(self):
        return self.queue[0][0] if self.queue else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--jitter-ms", type=float, default=0.0)
    ap.add_argument("--loss", type=float, default=0.0, help="probability a byte is lost")
    ap.add_argument("--latency-timer-ms", type=float, default=0.0,
                    help="cam-to-host bytes wait for the next tick of this timer")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trace", help="log every chunk read (time, direction, hex) to this file")
    ap.add_argument("--cam-path", help="relay to this existing tty (e.g. the virtual cam's "
                    "UART3 pty) instead of making a pty for the cam")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    if a.trace:
        Direction.trace = open(a.trace, "w")
    host_m, host_s, host_path = open_pty()
    if a.cam_path:
        cam_m = os.open(a.cam_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(cam_m)
        cam_s, cam_path = None, a.cam_path
    else:
        cam_m, cam_s, cam_path = open_pty()
    print("HOST", host_path)
    print("CAM", cam_path, flush=True)
    to_cam = Direction(host_m, cam_m, a.latency_ms / 1e3, a.jitter_ms / 1e3, a.loss, 0.0, rng, ">cam")
    to_host = Direction(cam_m, host_m, a.latency_ms / 1e3, a.jitter_ms / 1e3, a.loss,
                        a.latency_timer_ms / 1e3, rng, "<cam")
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    poller = select.poll()
    poller.register(host_m, select.POLLIN)
    poller.register(cam_m, select.POLLIN)
    poller.register(sys.stdin.fileno(), select.POLLIN | select.POLLHUP)
    # The slave fds stay open here so that a cam process that dies and restarts (a reboot)
    # finds the same line, and the masters never see a hang-up.
    while running[0]:
        now = time.monotonic()
        dues = [d for d in (to_cam.next_due(), to_host.next_due()) if d is not None]
        wait = max(0.0, min(dues) - now) if dues else 0.5
        for fd, ev in poller.poll(wait * 1000.0):
            if fd == sys.stdin.fileno():
                if ev & (select.POLLHUP | select.POLLIN) and not os.read(fd, 1024):
                    running[0] = False
            elif fd == host_m:
                to_cam.take(time.monotonic())
            elif fd == cam_m:
                to_host.take(time.monotonic())
        now = time.monotonic()
        to_cam.give(now)
        to_host.give(now)
    print("STATS", to_cam.relayed + to_host.relayed, to_cam.dropped + to_host.dropped, flush=True)
    for fd in (host_m, host_s, cam_m, cam_s):
        if fd is not None:
            os.close(fd)


if __name__ == "__main__":
    main()
