# Scenarios of master.py that use our module's extensions (docs/python-api.md): stats, last_error,
# set_limits, set_timing and the non-blocking call. Only run with impl "mod" as master.
import json
from peer_lib import ticks_ms, ticks_diff, sleep_ms
def run(scenario, master, rpc, params, result):
    if scenario not in SCENARIOS:
        raise ValueError(scenario)
    SCENARIOS[scenario](master, rpc, result)


def limits_in_callback(m, rpc, result):
    r = m.call("echo", b"hi", send_timeout=5000, recv_timeout=5000)
    r = m.call("set_limits", json.dumps({"max_argument_len": 100}), send_timeout=2000, recv_timeout=2000)
    result["set_limits"] = text(r)
    result["set_limits_error"] = m.last_error
    r = m.call("echo", b"y" * 101, send_timeout=2000, recv_timeout=300)
    result["over_limit"] = r is None


def null_override(rpc):
    """A master whose transport is its Python get_bytes/put_bytes, moving nothing."""
    class Override(rpc.rpc_master):
        def get_bytes(self, buff, timeout_ms):
            return None

        def put_bytes(self, data, timeout_ms):
            pass

    return Override()


def text(r):
    return None if r is None else bytes(r).decode()


def api(m, rpc, result):
    result["first"] = text(m.call("echo", b"hi", send_timeout=5000, recv_timeout=5000))
    result["last_error_ok"] = m.last_error
    st = m.stats()
    result["stats_names"] = sorted(st.keys())
    result["stats_first"] = st
    m.stats_reset()
    result["stats_after_reset"] = m.stats()
    r = m.call("echo", b"x" * 10)
    result["stats_one_call"] = m.stats()
    # set_limits on the master: a result longer than max_result_len is refused cleanly.
    m.set_limits(max_result_len=1000)
    r = m.call("big", b"2000", send_timeout=1000, recv_timeout=300)
    result["big_limited"] = r is None
    result["big_limited_error"] = m.last_error
    result["stats_limited"] = m.stats()
    r = m.call("big", b"1000", send_timeout=3000, recv_timeout=1000)  # at the limit: accepted
    result["big_at_limit"] = None if r is None else len(r)
    m.set_limits(max_result_len=1 << 20)
    r = m.call("big", b"2000", send_timeout=3000, recv_timeout=1000)
    result["big_unlimited"] = None if r is None else len(r)
    # set_limits on the slave: an argument over its max_argument_len is refused (the call
    # fails in the command phase), the slave keeps serving.
    result["slave_limit_set"] = text(m.call("set_limits_later", json.dumps({"max_argument_len": 100})))
    r = m.call("echo", b"y" * 101, send_timeout=300, recv_timeout=300)
    result["arg_over_limit"] = r is None
    result["arg_over_limit_error"] = m.last_error
    r = m.call("echo", b"y" * 100, send_timeout=3000)
    result["arg_at_limit"] = None if r is None else len(r)
    st = m.call("stats", b"", send_timeout=3000)
    result["slave_stats"] = None if st is None else json.loads(bytes(st))
    m.call("set_limits_later", json.dumps({"max_argument_len": 1 << 20}), send_timeout=3000)
    # set_timing: slower, stretched timings still interoperate.
    m.set_timing(short_timeout_ms=20, long_timeout_ms=2000, bytes_per_s=1000000)
    r = m.call("echo", bytes(5000), send_timeout=3000, recv_timeout=3000)
    result["timing_call"] = None if r is None else len(r)
    m.set_timing(short_timeout_ms=3, long_timeout_ms=5000, bytes_per_s=None)
    # Wrong argument types: a clear TypeError, and the object still works afterwards.
    errors = {}
    for label, f in (("name_int", lambda: m.call(123)),
                     ("name_none", lambda: m.call(None)),
                     ("data_int", lambda: m.call("echo", 12345)),
                     ("data_str_list", lambda: m.call("echo", ["a"])),
                     ("send_timeout_str", lambda: m.call("echo", b"", "x")),
                     ("limits_str", lambda: m.set_limits(max_result_len="big")),
                     ("timing_str", lambda: m.set_timing(short_timeout_ms="fast")),
                     ("call_start_int", lambda: m.call_start(5)),
                     ("stream_depth_str", lambda: m.stream_reader(lambda f: None, queue_depth="x")),
                     # The engine's configure takes keywords only, and no unknown ones.
                     ("configure_positional", lambda: m._engine.configure(20)),
                     ("configure_unknown", lambda: m._engine.configure(short_timeout=20))):
        try:
            f()
            errors[label] = "no error"
        except TypeError as e:
            errors[label] = "TypeError"
        except Exception as e:
            errors[label] = "%s: %s" % (type(e).__name__, e)
    result["type_errors"] = errors
    result["after_errors"] = text(m.call("echo", b"still fine", send_timeout=3000))


def nonblocking(m, rpc, result):
    result["first"] = text(m.call("echo", b"hi", send_timeout=5000, recv_timeout=5000))
    # call_start returns at once; call_poll does what it can and returns; the result comes
    # with the same convention as call().
    t0 = ticks_ms()
    m.call_start("sleep", b"300", send_timeout=1000, recv_timeout=2000)
    start_ms = ticks_diff(ticks_ms(), t0)
    polls, longest = 0, 0
    while True:
        t = ticks_ms()
        done = m.call_poll()
        longest = max(longest, ticks_diff(ticks_ms(), t))
        polls += 1
        if done:
            break
        if ticks_diff(ticks_ms(), t0) > 10000:
            break
        sleep_ms(1)
    result["nb_polls"] = polls
    result["nb_longest_poll_ms"] = longest
    result["nb_start_ms"] = start_ms
    result["nb_result"] = text(m.call_result())
    result["nb_total_ms"] = ticks_diff(ticks_ms(), t0)
    # Two non-blocking echo calls in a row, of each size.
    for n in (0, 1024, 65536):
        data = bytes((i * 13) & 255 for i in range(n))
        for _ in range(3):  # tried again on None, and recorded, like master.call() in master.py
            m.call_start("echo", data, send_timeout=3000, recv_timeout=3000)
            while not m.call_poll():
                pass
            r = m.call_result()
            if r is not None:
                break
            result.setdefault("retried", []).append("nb echo %d: %s" % (n, m.last_error))
        result["nb_echo_%d" % n] = r is not None and bytes(r) == data
        if r is None:
            result["nb_echo_%d_error" % n] = m.last_error
    # Unknown name: b"" (tried again like master.call() on a None: see master.py).
    for _ in range(3):
        m.call_start("no_such", b"", send_timeout=2000, recv_timeout=2000)
        while not m.call_poll():
            pass
        r = m.call_result()
        if r is not None:
            break
        result.setdefault("retried", []).append("no_such: %s" % m.last_error)
    result["nb_unknown"] = None if r is None else [type(r).__name__, len(r)]
    # A call cancelled half-way: the master is idle again and the next call works.
    m.call_start("sleep", b"200", send_timeout=1000, recv_timeout=1000)
    for _ in range(3):
        m.call_poll()
    m.call_cancel()
    sleep_ms(1500)  # the slave gives up delivering the cancelled call's result
    result["after_cancel"] = text(m.call("echo", b"after cancel", send_timeout=3000, recv_timeout=3000))
    # A timeout in the non-blocking call: None and last_error as for call().
    m.call_start("sleep", b"500", send_timeout=1000, recv_timeout=100)
    while not m.call_poll():
        sleep_ms(1)
    result["nb_timeout"] = m.call_result()
    result["nb_timeout_error"] = m.last_error
    sleep_ms(1600)


def hostile_master(m, rpc, result):
    """Against the test's fake slave (test_hostile.py): a RESULT_HEADER claiming ~4 GiB, an
    honest call, then stream headers with a bad crc and with a ~4 GiB length."""
    import gc
    gc.collect()
    free = gc.mem_free()
    r = m.call("hostile", b"abc", send_timeout=2000, recv_timeout=500)
    result["hostile"] = None if r is None else bytes(r).decode()
    result["hostile_error"] = m.last_error
    result["hostile_stats"] = m.stats()
    r = m.call("honest", b"abc", send_timeout=2000, recv_timeout=2000)
    result["honest"] = None if r is None else bytes(r).decode()
    frames = []
    for label in ("bad_crc_header", "huge_header"):
        m.stream_reader(lambda f: frames.append(bytes(f)), queue_depth=4, read_timeout_ms=500)
        result[label + "_error"] = m.last_error
    result["frames"] = len(frames)
    gc.collect()
    result["heap_lost"] = free - gc.mem_free()
    result["slave_ended"] = True


def pipeline(m, rpc, result):
    """set_timing(pipeline=True): the same results with requests sent back to back."""
    result["first"] = text(m.call("echo", b"hi", send_timeout=5000, recv_timeout=5000))
    calls = bad = 0
    ok = failed = 0
    for mode in (True, "all"):
        m.set_timing(pipeline=mode)  # zeroes the counters
        for n in (0, 1, 7, 8, 12, 100, 1024, 65536):
            data = bytes((i * 11 + n) & 255 for i in range(n))
            for _ in range(3):
                r = m.call("echo", data, send_timeout=3000, recv_timeout=3000)
                calls += 1
                if r is None or bytes(r) != data:
                    bad += 1
                    result.setdefault("bad_errors", []).append((mode, n, m.last_error))
        st = m.stats()
        ok, failed = ok + st["calls_ok"], failed + st["calls_failed"]
        result["packets_received_" + str(mode)] = st["packets_received"]
    result["echo_calls"], result["echo_bad"] = calls, bad
    result["echo_ok"], result["echo_failed"] = ok, failed
    try:
        m.set_timing(pipeline="some")
        result["bad_mode"] = "no error"
    except ValueError as e:
        result["bad_mode"] = "ValueError: %s" % e
    r = m.call("big", b"60000", send_timeout=3000, recv_timeout=3000)
    result["big"] = None if r is None else len(r)
    result["unknown"] = text(m.call("not_registered", b"x", send_timeout=3000, recv_timeout=3000))
    # A callback slower than the slave's short timeout: the slave drops the requests that came
    # during it, and the master's retry is answered.
    result["slept"] = text(m.call("sleep", b"30", send_timeout=3000, recv_timeout=3000))
    m.set_timing(pipeline=False)
    result["after_off"] = text(m.call("echo", b"off", send_timeout=3000, recv_timeout=3000))
    m.set_timing(pipeline="all")
    result["after_on"] = text(m.call("echo", b"on again", send_timeout=3000, recv_timeout=3000))

    try:
        null_override(rpc).set_timing(pipeline=True)
        result["override_pipeline"] = "no error"
    except ValueError as e:
        result["override_pipeline"] = "ValueError: %s" % e


def call_into(m, rpc, result):
    """call_into(name, data, buffer): the result lands in the caller's buffer (nothing
    allocated per call), with call()'s return conventions."""
    import gc
    result["first"] = text(m.call("echo", b"hi", send_timeout=5000, recv_timeout=5000))
    buf = bytearray(65536 + 4)
    checks = {}
    for n in (0, 1, 100, 1024, 65536):
        data = bytes((i * 5 + n) & 255 for i in range(n))
        r = m.call_into("echo", data, buf, send_timeout=3000, recv_timeout=3000)
        checks[str(n)] = None if r is None else [type(r).__name__, len(r), bytes(r) == data]
    result["echo"] = checks
    # The result is a view on the buffer.
    buf[0] ^= 0xFF
    result["is_view"] = r[0] == buf[0]
    # Heap per call: the memoryview alone, not the 64 KiB.
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(10):
        r = m.call_into("echo", data, buf, send_timeout=3000, recv_timeout=3000)
    result["heap_per_call"] = (gc.mem_alloc() - before) / 10
    result["last_ok"] = r is not None and bytes(r) == data
    result["unknown"] = text(m.call_into("not_registered", b"x", buf))
    # A buffer too small for the result: a clean failure that says why, and the link goes on.
    r = m.call_into("echo", bytes(200), bytearray(100), send_timeout=300, recv_timeout=300)
    result["small"] = r is None
    result["small_error"] = m.last_error
    result["after_small"] = text(m.call("echo", b"again", send_timeout=3000, recv_timeout=3000))
    try:
        m.call_into("echo", b"x", b"read-only bytes")
        result["read_only"] = "no error"
    except TypeError:
        result["read_only"] = "TypeError"


def spin(m, rpc, result):
    """set_timing(spin_us=N): how long a wait checks readiness before it sleeps. Every setting
    gives the same results (the bytes on the wire are the same, only read sooner); bad values
    are refused and leave the setting as it was."""
    result["first"] = text(m.call("echo", b"hi", send_timeout=5000, recv_timeout=5000))
    checks = {}
    for spin_us in (0, 1, 100000, 100):
        m.set_timing(spin_us=spin_us)
        bad = []
        for n in (0, 1, 1024, 65536):
            data = bytes((i * 3 + n) & 255 for i in range(n))
            for _ in range(3):
                r = m.call("echo", data, send_timeout=3000, recv_timeout=3000)
                if r is None or bytes(r) != data:
                    bad.append((n, m.last_error))
        st = m.stats()
        checks[str(spin_us)] = [st["calls_ok"], st["calls_failed"], bad]
    result["calls"] = checks
    errors = {}
    for label, value in (("negative", -1), ("too_long", 100001), ("str", "x")):
        try:
            m.set_timing(spin_us=value)
            errors[label] = "no error"
        except (ValueError, TypeError) as e:
            errors[label] = "%s: %s" % (type(e).__name__, e)
    result["errors"] = errors
    result["after_errors"] = text(m.call("echo", b"still", send_timeout=3000, recv_timeout=3000))

    # A Python-override transport has no stream to wait on: the setting is taken and unused.
    null_override(rpc).set_timing(spin_us=0)
    result["override_spin"] = "taken"


# run()'s scenarios, by the name the tests give.
SCENARIOS = {
    "limits_in_callback": limits_in_callback,
    "hostile_master": hostile_master,
    "api": api,
    "nonblocking": nonblocking,
    "pipeline": pipeline,
    "call_into": call_into,
    "spin": spin,
}
