# The standard slave of the unix-port tests: `slave.py mod|ref SPEC`.
# Serves the callbacks below until the master calls "quit"; an exception raised in a
# callback ends loop() and this script with its traceback (that is what the tests check).
import sys
import json
from peer_lib import load_impl, make, stats_of, expected_frame, frame_size, sleep_ms

impl_name, spec = sys.argv[1], sys.argv[2]
rpc = load_impl(impl_name)
slave = make(rpc, "slave", spec)

counters = {"sched": 0, "loop": 0, "frames_in": 0, "bytes_in": 0, "bad_frames": 0,
            "frames_out": 0, "stream_error": None}


class Quit(Exception):
    pass


class StreamDone(Exception):
    pass


def echo(arg):
    return arg


def echo_copy(arg):
    return bytes(arg)


def big(arg):
    n = int(bytes(arg))
    return (bytes(range(256)) * (n // 256 + 1))[:n]


def none(arg):
    return None


def empty(arg):
    return b""


def fail(arg):
    raise ValueError("boom from the slave callback")


def sleep(arg):
    sleep_ms(int(bytes(arg)))
    return b"slept"


def _on_sched():
    counters["sched"] += 1


def sched(arg):
    slave.schedule_callback(_on_sched)
    return b"scheduled"


def _on_loop():
    counters["loop"] += 1


def loop_cb(arg):
    slave.setup_loop_callback(_on_loop)
    return b"loop set"


def count(arg):
    return json.dumps(counters).encode()


def stats(arg):
    s = stats_of(slave)
    return json.dumps(s).encode()


def stats_reset(arg):
    slave.stats_reset()
    return b"reset"


def _set_limits(limits):
    if hasattr(slave, "set_limits"):
        slave.set_limits(**limits)
    else:  # the reference peer: plain attributes
        for k in limits:
            setattr(slave, k, limits[k])


def set_limits(arg):
    """set_limits() inside the callback, while the command is being served."""
    _set_limits(json.loads(bytes(arg)))
    return b"ok"


def set_limits_later(arg):
    """set_limits() from a scheduled callback, once this call's result was sent."""
    limits = json.loads(bytes(arg))
    slave.schedule_callback(lambda: _set_limits(limits))
    return b"ok"


def _stream_out(n, size):
    sent = [0]

    def produce():
        i = sent[0]
        if i == n:
            raise StreamDone()
        sent[0] = i + 1
        counters["frames_out"] = sent[0]
        return expected_frame(i, size)

    def run():
        try:
            slave.stream_writer(produce)
        except StreamDone:
            pass
    return run


def stream_out(arg):
    """The slave writes n frames of about `size` bytes to the master's stream_reader."""
    a = json.loads(bytes(arg))
    counters["frames_out"] = 0
    slave.schedule_callback(_stream_out(a["n"], a["size"]))
    return b"writer scheduled"


def _stream_in(n, size, depth):
    def consume(frame):
        i = counters["frames_in"]
        if bytes(frame) != expected_frame(i, size):
            counters["bad_frames"] += 1
        counters["frames_in"] = i + 1
        counters["bytes_in"] += len(frame)

    def run():
        slave.stream_reader(consume, queue_depth=depth)
    return run


def stream_in(arg):
    """The slave reads frames from the master's stream_writer with queue depth `depth`."""
    a = json.loads(bytes(arg))
    counters["frames_in"] = 0
    counters["bytes_in"] = 0
    counters["bad_frames"] = 0
    slave.schedule_callback(_stream_in(a["n"], a["size"], a["depth"]))
    return b"reader scheduled"


def _quit():
    raise Quit()


def quit(arg):
    slave.schedule_callback(_quit)
    return b"bye"


for cb in (echo, echo_copy, big, none, empty, fail, sleep, sched, loop_cb, count, stats,
           stats_reset, set_limits, set_limits_later, stream_out, stream_in, quit):
    slave.register_callback(cb)

try:
    slave.loop(recv_timeout=int(sys.argv[3]) if len(sys.argv) > 3 else 1000)
except Quit:
    print("QUIT")
