# Checks of our module that need no peer: `local_checks.py mutex|types`. Prints RESULT <json>.
import sys
import json

result = {}


def outcome(f):
    try:
        r = f()
        return "ok: %r" % (r,)
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e)


def mutex_checks():
    import mutex
    import time
    m = mutex.Mutex()
    result["is_oserror"] = issubclass(mutex.MutexException, OSError)
    result["release_free"] = outcome(m.release)
    result["test_free"] = m.test()
    result["test_held"] = m.test()
    result["release_held"] = outcome(m.release)
    result["release_again"] = outcome(m.release)
    with m:
        result["test_in_with"] = m.test()
    result["test_after_with"] = m.test()
    m.release()
    try:
        with m:
            raise KeyError("inside")
    except KeyError:
        pass
    result["released_after_exception"] = m.test()
    m.release()
    # Two threads: counts under the lock come out exact, and `with` waits for the holder.
    import _thread
    counter = [0, 0]
    n = 20000

    def worker():
        for _ in range(n):
            with m:
                v = counter[0]
                counter[0] = v + 1
        with m:
            counter[1] += 1
    _thread.start_new_thread(worker, ())
    _thread.start_new_thread(worker, ())
    t0 = time.ticks_ms()
    while counter[1] < 2 and time.ticks_diff(time.ticks_ms(), t0) < 30000:
        time.sleep_ms(5)
    result["threads_done"] = counter[1]
    result["threads_count"] = counter[0]
    result["threads_expected"] = 2 * n
    held = [0]

    def holder():
        with m:
            held[0] = 1
            time.sleep_ms(200)
        held[0] = 2
    _thread.start_new_thread(holder, ())
    while held[0] == 0:
        time.sleep_ms(1)
    result["test_while_other_holds"] = m.test()
    t0 = time.ticks_ms()
    with m:
        result["waited_ms"] = time.ticks_diff(time.ticks_ms(), t0)
        result["holder_state_when_acquired"] = held[0]
    time.sleep_ms(20)


def type_checks():
    import rpc
    result["name_hash"] = rpc.name_hash("snapshot")
    result["name_hash_bytes"] = rpc.name_hash(b"snapshot")
    result["crc16"] = rpc.crc16(b"123456789")
    result["crc16_mv"] = rpc.crc16(memoryview(b"xx123456789")[2:])
    import socket
    a = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s = rpc.rpc_stream_slave(a)
    m = rpc.rpc_stream_master(a)
    result["errors"] = {
        "name_hash_int": outcome(lambda: rpc.name_hash(5)),
        "crc16_int": outcome(lambda: rpc.crc16(5)),
        "crc16_str_list": outcome(lambda: rpc.crc16(["a"])),
        "register_int": outcome(lambda: s.register_callback(5)),
        "register_nameless": outcome(lambda: s.register_callback(object())),
        "loop_str": outcome(lambda: s.loop("x")),
        "call_int_name": outcome(lambda: m.call(5)),
        "call_data_int": outcome(lambda: m.call("echo", 5)),
        "call_timeout_str": outcome(lambda: m.call("echo", b"", "1000")),
        "limits_str": outcome(lambda: m.set_limits(max_argument_len="x")),
        "timing_str": outcome(lambda: m.set_timing(long_timeout_ms="x")),
        "stream_master_int": outcome(lambda: rpc.rpc_stream_master(5)),
        "network_master_ip_int": outcome(lambda: rpc.rpc_network_master(5)),
    }
    a.close()


def lying_stream_checks():
    """A stream whose poll always says ready but that never moves a byte (EAGAIN on every
    read and write): calls and a stream end at their timeouts instead of spinning forever."""
    import io
    import time
    import rpc

    class Liar(io.IOBase):
        def readinto(self, buf):
            return None  # EAGAIN

        def write(self, buf):
            return None  # EAGAIN

        def ioctl(self, req, arg):
            return arg if req == 3 else 0  # MP_STREAM_POLL: whatever is asked is ready

    for role in ("master", "slave"):
        obj = rpc.rpc_stream_master(Liar()) if role == "master" else rpc.rpc_stream_slave(Liar())
        t0 = time.ticks_ms()
        if role == "master":
            r = obj.call("echo", b"x" * 100, send_timeout=200, recv_timeout=200)
            result["master_result"] = r
        else:
            obj.set_timing(long_timeout_ms=300)
            result["writer"] = outcome(lambda: obj.stream_writer(lambda: b"frame", write_timeout_ms=300))
        result[role + "_ms"] = time.ticks_diff(time.ticks_ms(), t0)
        result[role + "_error"] = obj.last_error


{"mutex": mutex_checks, "types": type_checks, "lying_stream": lying_stream_checks}[sys.argv[1]]()
print("RESULT " + json.dumps(result))
