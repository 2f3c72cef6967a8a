"""The unix-port benchmark of issue 3, in one run on loopback: calls/s of our module's native
network and stream transports (0 B, 1 KiB, 64 KiB echo calls) next to the raw link measured
in the same run, our module over a Python-level transport (get_bytes/put_bytes overrides),
the pure-Python reference peer bench/ref_rpc.py as the baseline, and heap bytes allocated per
call. Prints a table. Run: `make unix-bench` (or .venv/bin/python bench/unix_bench.py [SECONDS])."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "unix"))
from conftest import MPy, free_port, MICROPYPATH  # noqa: E402  (the tests' process harness)

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
SIZES = (0, 1024, 65536)


def bench_path(name):
    return os.path.join(HERE, "mpy", name)


def run_pair(what, server_argv, client_argv, timeout):
    """Starts the server side (a script and its arguments), waits for its READY, runs the client
    side to its RESULT and returns that; both processes end (or are killed)."""
    server = MPy(*server_argv, name=what + "-server")
    try:
        server.wait_line("READY")
        client = MPy(*client_argv, name=what + "-client")
        res = client.result(timeout=timeout)
        client.finish()
        server.finish()
        return res
    finally:
        server.kill()


def raw(kind):
    port = free_port()
    return run_pair("raw", (bench_path("bench_raw.py"), "server", kind, port),
                    (bench_path("bench_raw.py"), "client", kind, port, SECONDS), 60 + 4 * SECONDS)


def calls(master_impl, slave_impl, transport, slave_transport=None):
    """One benchmark pair. transport is the master's "kind[,option...]" (peer_lib.make);
    slave_transport the slave's, when it differs (default: the master's kind, no options)."""
    port = free_port()
    kind, _, options = transport.partition(",")
    slave_kind, _, slave_options = (slave_transport or kind).partition(",")
    spec = lambda k, o: "%s:%d%s" % (k, port, "," + o if o else "")
    return run_pair("calls", ("slave.py", slave_impl, spec(slave_kind, slave_options)),
                    (bench_path("bench_calls.py"), master_impl, spec(kind, options), SECONDS) + SIZES,
                    120 + 10 * SECONDS)


# The rows: (key, label, master impl, slave impl, master transport, slave transport or None).
# "ratio" rows are also shown as a ratio to the raw link.
ROWS = (
    ("net", "ours, network transport (UDP <=1400 B, TCP above)", "mod", "mod", "net", None),
    ("tcp", "ours, stream transport over a TCP socket", "mod", "mod", "tcp", None),
    ("net_sleep", "ours, network transport, set_timing(spin_us=0) both sides", "mod", "mod", "net,spin=0", "net,spin=0"),
    ("tcp_sleep", "ours, stream transport (TCP), set_timing(spin_us=0) both", "mod", "mod", "tcp,spin=0", "tcp,spin=0"),
    ("net_pipe", "ours, network transport, set_timing(pipeline=\"all\")", "mod", "mod", "net,pipeline", "net"),
    ("tcp_pipe", "ours, stream transport (TCP), set_timing(pipeline=\"all\")", "mod", "mod", "tcp,pipeline", "tcp"),
    ("net_into", "ours, network, pipeline=\"all\", call_into(buffer)", "into", "mod", "net,pipeline", "net"),
    ("tcp_into", "ours, stream (TCP), pipeline=\"all\", call_into(buffer)", "into", "mod", "tcp,pipeline", "tcp"),
    ("py", "ours, Python transport (get_bytes/put_bytes subclass, TCP)", "mod", "mod", "py", "tcp"),
    ("ref_net", "reference peer bench/ref_rpc.py, network", "ref", "ref", "net", None),
    ("ref_tcp", "reference peer bench/ref_rpc.py, TCP stream", "ref", "ref", "tcp", None),
)
RATIO_ROWS = ("net", "tcp", "net_sleep", "tcp_sleep", "net_pipe", "tcp_pipe", "net_into", "tcp_into")


def main():
    print("unix-port benchmark: loopback, %.1f s per figure, one run (machine shared, figures noisy)" % SECONDS)
    raw_tcp = raw("tcp")
    raw_udp = raw("udp")
    raw_spin = raw("tcpspin")
    results = {key: calls(*args) for key, _, *args in ROWS}
    rows = [(label, results[key]) for key, label, *_ in ROWS]
    label_of = {key: label for key, label, *_ in ROWS}
    print()
    print("raw link, same interpreter: 4 round trips (the 8-packet exchange, tiny payloads):")
    print("  TCP %9.0f /s    UDP %9.0f /s" % (raw_tcp["rt4_per_s"], raw_udp["rt4_per_s"]))
    print("raw link: 64 KiB echo over TCP: %9.0f /s" % raw_tcp["echo64k_per_s"])
    print("raw link, TCP, both sides polling non-blocking sockets (never asleep): 4 round trips %.0f /s,"
          " 64 KiB echo %.0f /s" % (raw_spin["rt4_per_s"], raw_spin["echo64k_per_s"]))
    print()
    header = "%-62s %12s %12s %12s" % ("echo calls per second", "0 B", "1 KiB", "64 KiB")
    print(header)
    print("-" * len(header))
    for label, res in rows:
        print("%-62s %12.0f %12.0f %12.0f" % ((label,) + tuple(res[str(n)]["calls_per_s"] for n in SIZES)))
    print()
    print("the same, from the median call time (1 / median; not skewed by a rare failed call)")
    for label, res in rows:
        print("%-62s %12.0f %12.0f %12.0f" % ((label,) + tuple(res[str(n)]["median_per_s"] for n in SIZES)))
    print()
    print("ratio to the raw link (target >= 40%): 0 B and 1 KiB against the 4-round-trip ping-pong")
    print("(UDP for the network transport, TCP for the stream), 64 KiB against the 64 KiB TCP echo")
    for key, what in (("calls_per_s", "calls/s"), ("median_per_s", "1/median")):
        for row in RATIO_ROWS:
            label, res = label_of[row], results[row]
            rt = raw_udp["rt4_per_s"] if row.startswith("net") else raw_tcp["rt4_per_s"]
            print("%-62s %11.0f%% %11.0f%% %11.0f%%" % (
                "%s [%s]" % (label[:50], what), 100 * res["0"][key] / rt, 100 * res["1024"][key] / rt,
                100 * res["65536"][key] / raw_tcp["echo64k_per_s"]))
    print()
    print("ratio to the raw TCP link whose two sides poll and never sleep (calls/s): our waits spin")
    print("before they sleep (set_timing(spin_us=), default 100 us), the plain raw link sleeps in recv")
    for row in RATIO_ROWS:
        res = results[row]
        print("%-62s %11.0f%% %11.0f%% %11.0f%%" % (
            label_of[row], 100 * res["0"]["calls_per_s"] / raw_spin["rt4_per_s"],
            100 * res["1024"]["calls_per_s"] / raw_spin["rt4_per_s"],
            100 * res["65536"]["calls_per_s"] / raw_spin["echo64k_per_s"]))
    print()
    print("ours against the reference peer (same transport, same run, calls/s)")
    for ours, ref in (("net", "ref_net"), ("tcp", "ref_tcp")):
        print("%-62s %11.1fx %11.1fx %11.1fx" % ((label_of[ours],) + tuple(
            results[ours][str(n)]["calls_per_s"] / results[ref][str(n)]["calls_per_s"] for n in SIZES)))
    print("ours over a Python transport against the reference peer over TCP (the engine's own cost)")
    print("%-62s %11.1fx %11.1fx %11.1fx" % (("python transport / reference, TCP",) + tuple(
        results["py"][str(n)]["calls_per_s"] / results["ref_tcp"][str(n)]["calls_per_s"] for n in SIZES)))
    print()
    print("heap bytes allocated per call on the master (gc off; the result alone is the target)")
    for label, res in rows:
        print("%-62s %12s %12s %12s" % ((label,) + tuple(
            "%.0f" % h if h is not None else "heap full" for h in (res[str(n)]["heap_per_call"] for n in SIZES))))
    failed = [(label, n, res[str(n)]) for label, res in rows for n in SIZES if res[str(n)]["failed"]]
    print()
    for label, n, r in failed:
        print("note: %s, %d B: %d of %d calls failed (3 s phases): %s" % (
            label, n, r["failed"], r["calls"], r["errors"]))
    if not failed:
        print("no call failed")


if __name__ == "__main__":
    main()
