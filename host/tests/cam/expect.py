"""What the cam-side test callbacks (cam_slave.py) answer, for the host to check."""

import struct


def pattern(seed, n):
    return bytes((seed + i) & 0xFF for i in range(n))


def frame(i):
    n = 100 + (i * 37) % 900
    return struct.pack("<II", i, n) + pattern(i, n)
