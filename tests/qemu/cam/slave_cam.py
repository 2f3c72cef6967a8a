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


sink_state = {"frames": 0, "bad": 0}


def sink(data):
    # The host streams frames to the cam: frame i is 4 bytes of i, then PATTERN[i % 256 + 4:].
    sink_state["frames"] = sink_state["bad"] = 0

    def on_frame(frame):
        i = struct.unpack("<I", frame[:4])[0]
        if i != sink_state["frames"] or frame[4:] != memoryview(PATTERN)[i % 256 + 4:i % 256 + len(frame)]:
            sink_state["bad"] += 1
        sink_state["frames"] += 1

    def start_stream():
        interface.stream_reader(on_frame, queue_depth=4, read_timeout_ms=5000)

    interface.schedule_callback(start_stream)
    return bytes()


def sink_result(data):
    return struct.pack("<II", sink_state["frames"], sink_state["bad"])


for cb in (echo, pattern, heap, counters, frames, sink, sink_result):
    interface.register_callback(cb)

print("READY")
interface.loop()
