# Calls per second and heap bytes per call of one master against the echo slave:
#   bench_calls.py mod|into|ref SPEC SECONDS SIZE [SIZE...]
# SPEC as in tests/unix/mpy/peer_lib.make (net:PORT, tcp:PORT, py:PORT). Prints RESULT <json>.
import sys
import json
import gc
import time
import array
from peer_lib import load_impl, make

impl_name, spec, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
sizes = [int(a) for a in sys.argv[4:]]
# impl "into": our module, each call made with call_into() into one preallocated buffer.
into = bytearray(max(sizes) + 4) if impl_name == "into" else None
rpc = load_impl("mod" if into is not None else impl_name)
m = make(rpc, "master", spec)
if into is not None:
    m.call = lambda name, data, send_timeout, recv_timeout: m.call_into(name, data, into, send_timeout, recv_timeout)
if m.call("echo", b"warm up", send_timeout=5000, recv_timeout=5000) is None:
    raise SystemExit("no slave")
res = {}
MAX_SAMPLES = 30000
for n in sizes:
    data = bytes((i * 7) & 255 for i in range(n))
    for _ in range(3):
        m.call("echo", data, send_timeout=3000, recv_timeout=3000)
    calls, failed, errors = 0, 0, []
    durations = array.array("I", bytes(4 * MAX_SAMPLES))  # per-call microseconds, no allocation
    t0 = time.ticks_us()
    while time.ticks_diff(time.ticks_us(), t0) < seconds * 1000000:
        t1 = time.ticks_us()
        r = m.call("echo", data, send_timeout=3000, recv_timeout=3000)
        if calls < MAX_SAMPLES:
            durations[calls] = time.ticks_diff(time.ticks_us(), t1)
        if r is None or len(r) != n:
            failed += 1
            if len(errors) < 3:
                errors.append(getattr(m, "last_error", None))
        calls += 1
    dt = time.ticks_diff(time.ticks_us(), t0)
    r = None
    gc.collect()  # the last results are garbage: room for the sorted copy of the samples
    sample = sorted(durations[:min(calls, MAX_SAMPLES)])
    median_us = sample[len(sample) // 2]
    # Heap bytes allocated per call, with the collector off so nothing is freed meanwhile.
    k = 4 if n > 4096 else 100
    r = None
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    try:
        for _ in range(k):
            r = m.call("echo", data, send_timeout=3000, recv_timeout=3000)
        heap = (gc.mem_alloc() - before) / k
    except MemoryError:  # more than the whole heap for k calls
        heap = None
    gc.enable()
    r = None
    gc.collect()
    res[str(n)] = {"calls_per_s": calls * 1000000 / dt, "failed": failed, "calls": calls,
                   "median_per_s": 1000000 / max(median_us, 1), "errors": errors,
                   "heap_per_call": heap}
m.call("quit", b"", send_timeout=3000, recv_timeout=3000)
print("RESULT " + json.dumps(res))
