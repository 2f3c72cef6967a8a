# One simulated board of the bus tests (MicroPython unix port, stand-in machine/pyb on the
# path). Set up by environment variables:
#   BUS   i2c | spi | can
#   ROLE  master | slave
#   IMPL  native (the rpc_<bus>_master/slave classes) | python (pybus.py: get_bytes/put_bytes
#         overrides of our rpc_master/rpc_slave) | ref (pybus.py's bus code on
#         bench/ref_rpc.py, the independent pure-Python reference peer)
#   PLAN  (master) JSON list of steps; one JSON line of results is printed per step.
#   TIMING (optional) "short_ms" for set_timing(short_timeout_ms=...)
#   SEND_TIMEOUT (optional, slave) loop(send_timeout=...): how long the slave tries to hand
#         over a result (1000 ms by default; a 64 KiB result takes 0.5 s on 1 MHz SPI)
# A slave prints "ready" once its callbacks are registered, then serves forever.
import json
import os
import sys
import time

BUS = os.getenv("BUS")
ROLE = os.getenv("ROLE")
IMPL = os.getenv("IMPL") or "native"


def pattern(n, seed):
    """n bytes that depend on their position and the seed (a lost or moved byte shows)."""
    base = bytes((i * 7 + seed) & 0xFF for i in range(256))
    return (base * (n // 256 + 1))[:n]


def make():
    if IMPL in ("python", "ref"):
        import pybus
        if IMPL == "ref":
            import ref_rpc as rpc_module
        else:
            import rpc as rpc_module
        return pybus.classes(rpc_module)[(BUS, ROLE)]()
    import rpc
    return getattr(rpc, "rpc_%s_%s" % (BUS, ROLE))()


def timing(obj):
    short = os.getenv("TIMING")
    if not short:
        return
    if hasattr(obj, "set_timing"):
        obj.set_timing(short_timeout_ms=int(short))
    else:  # bench/ref_rpc.py: the first short timeout is a class attribute
        obj._short_timeout_start = int(short)


class StopStream(Exception):
    pass


# ---- slave ----

def serve():
    slave = make()
    timing(slave)
    frames_in = []

    def echo(arg):
        return bytes(arg)

    def size(arg):
        # arg: u32 length, u8 seed -> that many pattern bytes
        return pattern(int.from_bytes(bytes(arg[:4]), "little"), arg[4])

    def check(arg):
        # the argument must be pattern(len, seed) with the seed in its first byte's place
        seed = arg[0] if len(arg) else 0
        return b"ok" if bytes(arg) == pattern(len(arg), seed) else b"bad"

    def empty(arg):
        return None

    def stream_out(arg):
        count, length = int.from_bytes(bytes(arg[:4]), "little"), int.from_bytes(bytes(arg[4:8]), "little")
        sent = [0]

        def frame():
            n = sent[0]
            sent[0] += 1
            if n >= count:
                raise StopStream()
            return pattern(length + n % 7, n)

        def writer():
            try:
                slave.stream_writer(frame, write_timeout_ms=5000)
            except StopStream:
                pass

        slave.schedule_callback(writer)
        return b"go"

    def stream_in(arg):
        # The argument is only valid during the callback: read it now.
        count = int.from_bytes(bytes(arg[:4]), "little")
        depth = int.from_bytes(bytes(arg[4:8]), "little")
        del frames_in[:]

        def got(frame):
            frames_in.append(bytes(frame))
            if len(frames_in) >= count:
                raise StopStream()

        def reader():
            try:
                slave.stream_reader(got, queue_depth=depth, read_timeout_ms=5000)
            except StopStream:
                pass

        slave.schedule_callback(reader)
        return b"go"

    def stream_report(arg):
        good = sum(1 for n, f in enumerate(frames_in) if f == pattern(len(f), n))
        return json.dumps({"frames": len(frames_in), "good": good}).encode()

    for cb in (echo, size, check, empty, stream_out, stream_in, stream_report):
        slave.register_callback(cb)
    print("ready")
    sys.stdout.flush() if hasattr(sys.stdout, "flush") else None
    slave.loop(send_timeout=int(os.getenv("SEND_TIMEOUT") or 1000))


# ---- master ----

def step_calls(master, step):
    """Echo (or size/check) calls; counts right results, None results and wrong results."""
    name = step.get("name", "echo")
    sizes = step["sizes"]
    repeat = step.get("repeat", 1)
    send_timeout = step.get("send_timeout", 1000)
    recv_timeout = step.get("recv_timeout", 1000)
    ok = none = wrong = 0
    errors = []
    times = []
    for r in range(repeat):
        for i, n in enumerate(sizes):
            seed = (r * 31 + i) & 0xFF
            if name == "size":
                arg, want = n.to_bytes(4, "little") + bytes([seed]), pattern(n, seed)
            elif name == "check":
                arg, want = pattern(n, seed), b"ok"
            else:
                arg = pattern(n, seed)
                want = arg
            start = time.ticks_ms()
            result = master.call(name, arg, send_timeout=send_timeout, recv_timeout=recv_timeout)
            times.append(time.ticks_diff(time.ticks_ms(), start))
            if result is None:
                none += 1
                if len(errors) < 5:
                    errors.append(str(master.last_error) if hasattr(master, "last_error") else "None")
            elif bytes(result) == want:
                ok += 1
            else:
                wrong += 1
                if len(errors) < 5:
                    errors.append("wrong %d bytes for %d" % (len(result), n))
    return {"ok": ok, "none": none, "wrong": wrong, "errors": errors, "ms": times}


def step_calls_polled(master, step):
    """Echo calls through call_start/call_poll/call_result: counts right, None and wrong
    results, and the call_poll() calls that returned False (the call was not done yet)."""
    ok = none = wrong = waits = 0
    for i, n in enumerate(step["sizes"]):
        arg = pattern(n, i)
        master.call_start("echo", arg)
        while not master.call_poll():
            waits += 1
        result = master.call_result()
        if result is None:
            none += 1
        elif bytes(result) == arg:
            ok += 1
        else:
            wrong += 1
    return {"ok": ok, "none": none, "wrong": wrong, "waits": waits}


def step_unknown(master, step):
    result = master.call("no_such_callback", b"abc")
    return {"result": None if result is None else list(bytes(result))}


def step_stream_from_slave(master, step):
    count, length = step["frames"], step["length"]
    go = master.call("stream_out", count.to_bytes(4, "little") + length.to_bytes(4, "little"))
    if go is None or bytes(go) != b"go":
        return {"setup": False}
    frames = []

    def got(frame):
        frames.append(bytes(frame))
        if len(frames) >= count:
            raise StopStream()

    try:
        master.stream_reader(got, queue_depth=step.get("queue_depth", 4), read_timeout_ms=5000)
    except StopStream:
        pass
    good = sum(1 for n, f in enumerate(frames) if f == pattern(length + n % 7, n))
    return {"setup": True, "frames": len(frames), "good": good}


def step_stream_to_slave(master, step):
    count, length = step["frames"], step["length"]
    arg = count.to_bytes(4, "little") + step.get("queue_depth", 4).to_bytes(4, "little")
    go = master.call("stream_in", arg)
    if go is None or bytes(go) != b"go":
        return {"setup": False}
    sent = [0]

    def frame():
        n = sent[0]
        if n >= count:
            raise StopStream()
        sent[0] += 1
        return pattern(length + n % 5, n)

    time.sleep_ms(20)  # the slave's reader starts after its result went out
    try:
        master.stream_writer(frame, write_timeout_ms=5000)
    except StopStream:
        pass
    report = None
    for _ in range(20):
        report = master.call("stream_report")
        if report is not None:
            break
    return {"setup": True, "sent": sent[0], "report": None if report is None else json.loads(bytes(report))}


def step_until_ok(master, step):
    """Small echo calls until one succeeds (a slave that starts late or restarted)."""
    within = step.get("within_ms", 15000)
    start = time.ticks_ms()
    tries = none = wrong = 0
    while True:
        tries += 1
        arg = pattern(5, tries & 0xFF)
        result = master.call("echo", arg, send_timeout=step.get("send_timeout", 300),
                             recv_timeout=step.get("recv_timeout", 300))
        if result is None:
            none += 1
        elif bytes(result) == arg:
            return {"ok": True, "tries": tries, "none": none, "wrong": wrong}
        else:
            wrong += 1
        if time.ticks_diff(time.ticks_ms(), start) >= within:
            return {"ok": False, "tries": tries, "none": none, "wrong": wrong}


def step_stats(master, step):
    return master.stats() if hasattr(master, "stats") else {}


STEPS = {
    "calls": step_calls,
    "calls_polled": step_calls_polled,
    "unknown": step_unknown,
    "stream_from_slave": step_stream_from_slave,
    "stream_to_slave": step_stream_to_slave,
    "until_ok": step_until_ok,
    "stats": step_stats,
}


def run_plan():
    master = make()
    timing(master)
    print(json.dumps({"step": "made"}))
    for step in json.loads(os.getenv("PLAN") or "[]"):
        result = STEPS[step["op"]](master, step)
        result["step"] = step["op"]
        print(json.dumps(result))


if ROLE == "slave":
    serve()
else:
    run_plan()
