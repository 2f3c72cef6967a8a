# The cam as rpc slave on UART3, for tests/qemu/test_rpc.py. Runs on the virtual cam.
import gc
import struct

import rpc

interface = rpc.rpc_uart_slave(baudrate=115200)

# Large results come from one pattern buffer (made once), so a call does not spend its
# time building bytes: result n is PATTERN[:n].
PATTERN = bytes(i * 7 & 0xFF for i in range(65536))


def echo(data):
    return bytes(data)


def pattern(data):
    (n,) = struct.unpack("<I", data)
    return memoryview(PATTERN)[:n]


def heap(data):
    gc.collect()
    return struct.pack("<I", gc.mem_free())


def counters(data):
    s = interface.stats()
    return struct.pack("<5I", s["bad_magic"], s["bad_crc"], s["too_long"], s["commands_served"],
                       s["stream_frames"])


def frames(data):
    # The host asks for `count` frames of `size` bytes; they go out after this call's result.
    count, size = struct.unpack("<II", data)
    sent = [0]

    def next_frame():
        i = sent[0]
        sent[0] = i + 1
        frame = bytearray(memoryview(PATTERN)[i % 256:i % 256 + size])
        frame[0:4] = struct.pack("<I", i)
        return frame

    def start_stream():
        interface.stream_writer(next_frame)

    interface.schedule_callback(start_stream)
    return struct.pack("<II", count, size)


for cb in (echo, pattern, heap, counters, frames):
    interface.register_callback(cb)

print("READY")
interface.loop()
