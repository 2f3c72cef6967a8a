# The cam side of the host tests: an rpc slave with test callbacks. Runs under MicroPython
# (this project's rpc module, unix port) and under CPython (the host package, as a stand-in
# cam with the reference timing when given "reference").
#
#   cam_slave.py net MY_IP PORT [reference]
#   cam_slave.py serial PATH|fd:N [reference] [ref]
# "ref": bench/ref_rpc.py (the independent peer) instead of the rpc module.
import struct
import sys
import time

MICROPYTHON = sys.implementation.name == "micropython"
args = sys.argv[1:] if len(sys.argv) > 1 else ["preset"]
if "ref" in args:
    import ref_rpc as rpc  # bench/ref_rpc.py, the independent peer
else:
    import rpc


def open_line(where):
    # "fd:N": an inherited non-blocking fd (what ref_rpc's stream transport needs).
    if where.startswith("fd:"):
        if MICROPYTHON:
            return open(int(where[3:]), "r+b")
        return open(int(where[3:]), "r+b", buffering=0)
    return open(where, "r+b")


try:
    interface  # set in front of this script (the virtual cam: rpc_uart_slave on UART3)
except NameError:
    interface = None
if interface is not None:
    pass
elif args[0] == "net":
    interface = rpc.rpc_network_slave(my_ip=args[1], port=int(args[2]))
elif MICROPYTHON or "ref" in args:
    interface = rpc.rpc_stream_slave(open_line(args[1]))
else:
    interface = rpc.rpc_usb_vcp_slave(args[1])
if "reference" in args and not MICROPYTHON:
    interface.set_timing(adaptive=False)


def pattern(seed, n):
    # The same bytes as host/tests/cam/expect.py: seed, seed+1, ... mod 256.
    return bytes((seed + i) & 0xFF for i in range(n))


def echo(data):
    return bytes(data)


def sized(data):
    seed, n = struct.unpack("<II", data)
    return pattern(seed, n)


def slow(data):
    # A callback slower than the master's short timeouts (a snapshot, a detection).
    ms = struct.unpack("<I", data)[0]
    if MICROPYTHON:
        time.sleep_ms(ms)
    else:
        time.sleep(ms / 1000)
    return struct.pack("<I", ms)


BLOB = bytes(256 * 1024)


def blob(data):
    # For the benchmark: n bytes that cost the cam nothing to make.
    n = struct.unpack("<I", data)[0]
    return memoryview(BLOB)[:n]


stream_count = [0]


def frames():
    # Endless: the reader (the host) ends the stream by no longer acking; the writer then
    # times out waiting for an ack and the slave goes back to its loop.
    i = stream_count[0]
    stream_count[0] = i + 1
    n = 100 + (i * 37) % 900
    return struct.pack("<II", i, n) + pattern(i, n)


def stream_out(data):
    stream_count[0] = 0
    interface.schedule_callback(lambda: interface.stream_writer(frames, 2000))
    return b"ok"


def stream_in(data):
    got = []

    def keep(frame):
        got.append(bytes(frame))

    interface.schedule_callback(lambda: interface.stream_reader(keep, 4, 2000))
    return b"ok"


for cb in (echo, sized, slow, blob, stream_out, stream_in):
    interface.register_callback(cb)
print("READY")
try:
    sys.stdout.flush()
except AttributeError:
    pass
interface.loop(1000, 1000)
