# A camera for cams without one (the virtual cam, the unix port): a grey scene with a bright
# square that moves, as real (baseline, greyscale) JPEG files, and made-up detections of it.
# The examples' runner (examples/run_cam_side.py) puts this in front of a cam script when
# `import sensor` fails there. Runs under MicroPython and CPython.
import struct
import time

_start_ms = time.ticks_ms() if hasattr(time, "ticks_ms") else int(time.time() * 1000)


def scene_ms():
    if hasattr(time, "ticks_ms"):
        return time.ticks_diff(time.ticks_ms(), _start_ms)
    return int(time.time() * 1000) - _start_ms


def square(width, height):
    """(x, y, w, h) of the bright square now: it goes round the frame every 4 s."""
    t = (scene_ms() % 4000) / 4000.0
    side = max(16, min(width, height) // 4)
    span_x, span_y = width - side, height - side
    if t < 0.25:
        x, y = int(span_x * t * 4), 0
    elif t < 0.5:
        x, y = span_x, int(span_y * (t - 0.25) * 4)
    elif t < 0.75:
        x, y = int(span_x * (0.75 - t) * 4), span_y
    else:
        x, y = 0, int(span_y * (1.0 - t) * 4)
    return x & ~7, y & ~7, side, side


# Baseline JPEG, one greyscale component, every 8x8 block flat (DC only): the standard
# luminance DC Huffman table, an AC table whose one code ("0") is end-of-block.
_DC_BITS = bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
_DC_CODES = [(0b00, 2), (0b010, 3), (0b011, 3), (0b100, 3), (0b101, 3), (0b110, 3),
             (0b1110, 4), (0b11110, 5), (0b111110, 6), (0b1111110, 7), (0b11111110, 8),
             (0b111111110, 9)]


def _segment(marker, body):
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


class _Bits:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value, n):
        self.acc = (self.acc << n) | (value & ((1 << n) - 1))
        self.n += n
        while self.n >= 8:
            self.n -= 8
            b = (self.acc >> self.n) & 0xFF
            self.out.append(b)
            if b == 0xFF:
                self.out.append(0)  # byte stuffing
        self.acc &= (1 << self.n) - 1

    def close(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)
        return self.out


def jpeg(width, height, frame_no=0):
    """The scene now as a JPEG (width and height are rounded down to multiples of 8)."""
    width, height = width & ~7, height & ~7
    sx, sy, sw, sh = square(width, height)
    bits = _Bits()
    prev = 0
    for by in range(0, height, 8):
        for bx in range(0, width, 8):
            inside = sx <= bx < sx + sw and sy <= by < sy + sh
            level = 235 if inside else 40 + (bx * 120) // max(width, 1) + (by * 40) // max(height, 1)
            dc = level - 128
            diff = dc - prev
            prev = dc
            size = 0
            magnitude = -diff if diff < 0 else diff
            while magnitude >> size:
                size += 1
            code, n = _DC_CODES[size]
            bits.put(code, n)
            if size:
                bits.put(diff if diff >= 0 else diff + (1 << size) - 1, size)
            bits.put(0, 1)  # end of block
    head = (b"\xff\xd8"
            + _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
            + _segment(0xFE, b"omv-rpc synthetic scene, frame " + str(frame_no).encode())
            + _segment(0xDB, b"\x00" + bytes([8] * 64))
            + _segment(0xC0, b"\x08" + struct.pack(">HH", height, width) + b"\x01\x01\x11\x00")
            + _segment(0xC4, b"\x00" + _DC_BITS + bytes(range(12)))
            + _segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")
            + _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"))
    return head + bits.close() + b"\xff\xd9"


FRAME_SIZES = {"QQVGA": (160, 120), "QVGA": (320, 240), "VGA": (640, 480), "QQQVGA": (80, 60)}


def frame_size(spec):
    """(w, h) from an argument like "sensor.RGB565,sensor.QQVGA" (the examples' convention)."""
    for part in bytes(spec).decode().split(","):
        name = part.strip().split(".")[-1]
        if name in FRAME_SIZES:
            return FRAME_SIZES[name]
    return FRAME_SIZES["QQVGA"]
