# The demo's cam script (make demo): the virtual cam exposes what the OpenMV "remote
# device" examples expose, over rpc on UART3. There is no sensor: the "camera" renders a
# scene with a moving colour blob and an AprilTag-like marker, and its "JPEG" frames are
# JPEG-shaped (SOI, JFIF APP0, SOF0, SOS, entropy-coded-looking bytes, EOI).
import math
import struct
import time

import rpc

interface = rpc.rpc_uart_slave(baudrate=115200)

# Entropy-looking bytes for the JPEG bodies, made once (xorshift16, small ints only). 0xFF
# is kept out of the body, so that no marker appears inside it.
BODY_MAX = 60 * 1024
body = bytearray(BODY_MAX)
x = 0xACE1
for i in range(BODY_MAX):
    x ^= (x << 7) & 0xFFFF
    x ^= x >> 9
    x ^= (x << 8) & 0xFFFF
    body[i] = (x & 0xFF) % 0xFF
frame_buffer = bytearray(BODY_MAX + 64)
frame_count = 0
boot_ms = time.ticks_ms()


def scene_time():
    return time.ticks_diff(time.ticks_ms(), boot_ms) / 1000


def jpeg_frame(width, height, quality):
    """A JPEG-like frame of about width * height * quality / 256 bytes, in frame_buffer."""
    global frame_count
    frame_count += 1
    size = min(BODY_MAX, max(512, width * height * quality // 256))
    header = (b"\xff\xd8"                                        # SOI
              + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"   # APP0
              + b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", height, width)       # SOF0
              + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
              + b"\xff\xfe\x00\x06" + struct.pack(">I", frame_count)              # COM: frame no.
              + b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00")      # SOS
    start = frame_count * 97 % (BODY_MAX - size + 1)
    n = len(header)
    frame_buffer[:n] = header
    frame_buffer[n:n + size] = memoryview(body)[start:start + size]
    frame_buffer[n + size:n + size + 2] = b"\xff\xd9"            # EOI
    return memoryview(frame_buffer)[:n + size + 2]


def jpeg_image_snapshot(data):
    width, height, quality = struct.unpack("<HHH", data) if data else (320, 240, 90)
    return jpeg_frame(width, height, quality)


def color_detection(data):
    # data: LAB thresholds (l_min, l_max, a_min, a_max, b_min, b_max) as in the examples.
    thresholds = struct.unpack("<6b", data)
    if thresholds[2] > 60:
        return bytes()  # nothing that red in this scene
    t = scene_time()
    cx = int(160 + 90 * math.cos(t))
    cy = int(120 + 60 * math.sin(t))
    w, h = 40, 30
    # x, y, w, h, pixels, cx, cy of the largest blob.
    return struct.pack("<HHHHIHH", cx - w // 2, cy - h // 2, w, h, w * h * 3 // 4, cx, cy)


def apriltag_detection(data):
    t = scene_time()
    tags = []
    for tag_id, phase in ((7, 0.0), (23, 2.1)):
        cx = 160 + 100 * math.cos(t / 2 + phase)
        cy = 120 + 50 * math.sin(t / 3 + phase)
        rotation = (t / 4 + phase) % (2 * math.pi)
        # id, family (16 = TAG36H11 in OpenMV's image module), cx, cy, rotation (rad)
        tags.append(struct.pack("<HHfff", tag_id, 16, cx, cy, rotation))
    return b"".join(tags)


def jpeg_image_stream(data):
    width, height, quality = struct.unpack("<HHH", data)

    def next_frame():
        return jpeg_frame(width, height, quality)

    def start_stream():
        interface.stream_writer(next_frame)

    # The stream starts once this call's result is delivered, as in the OpenMV example.
    interface.schedule_callback(start_stream)
    return bytes()


for cb in (jpeg_image_snapshot, color_detection, apriltag_detection, jpeg_image_stream):
    interface.register_callback(cb)

print("READY")
interface.loop()
