# Hunts rare failed or slow calls between two native peers (how the lost calls of the
# stream transport were found and checked): echo calls of 0 B, 1 KiB and 64 KiB in turns of
# 500, a gc.collect() per turn, for SECONDS; every call that fails or takes over 20 ms is
# printed with its last_error and the master's counters for that call.
#   MICROPYPATH=build/unix:tests/unix/mpy .venv/bin/micropython tests/unix/mpy/slave.py mod tcp:7781 &
#   MICROPYPATH=build/unix:tests/unix/mpy .venv/bin/micropython bench/mpy/slow_calls.py tcp:7781 60
# Load the machine (busy loops) to make stalls likely; point MICROPYPATH at an RPC_TRACE build
# (make -C mp_glue natmod ... OMV_RPC_CFLAGS=-DRPC_TRACE) to log every io action on both sides.
import sys
import time
import gc
from peer_lib import load_impl, make, stats_of

rpc = load_impl("mod")
m = make(rpc, "master", sys.argv[1])
seconds = float(sys.argv[2])
if m.call("echo", b"warm up", send_timeout=5000, recv_timeout=5000) is None:
    raise SystemExit("no slave")
datas = [bytes((i * 7) & 255 for i in range(n)) for n in (0, 1024, 65536)]
before = dict(stats_of(m))
t0 = time.ticks_ms()
calls = failed = slow = 0
while time.ticks_diff(time.ticks_ms(), t0) < seconds * 1000:
    data = datas[(calls // 500) % 3]
    if calls % 500 == 0:
        gc.collect()
    t1 = time.ticks_us()
    r = m.call("echo", data, send_timeout=3000, recv_timeout=3000)
    us = time.ticks_diff(time.ticks_us(), t1)
    calls += 1
    bad = r is None or bytes(r) != data
    if bad or us > 20000:
        after = stats_of(m)
        delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
        failed += bad
        slow += not bad
        print("call %d, %d B: %s in %d us: %s %s" % (calls, len(data), "FAILED" if bad else "ok", us,
                                                   m.last_error, delta))
    before = dict(stats_of(m))
print("calls %d failed %d slow %d" % (calls, failed, slow))
m.call("quit", b"", send_timeout=3000, recv_timeout=3000)
