"""Benchmark of the I2C, SPI and CAN classes on the simulated buses at their nominal speeds
(100 kHz I2C, 1 MHz SPI, 250 kbit/s CAN): payload throughput of 64 KiB calls as a fraction
of the bus's raw bit rate, and the latency of 0 B calls; the same figures for a transport
written in Python the documented way (get_bytes/put_bytes overrides, tests/bus/boards/
pybus.py) on both sides, measured in the same run, as the baseline.

Run: make bus-bench (or .venv/bin/python tests/bus/bench_bus.py [i2c spi can])."""
import statistics
import sys

from harness import Board
from sim import Simulator, can_frame_bits

RAW_BIT_RATE = {"i2c": 100000, "spi": 1000000, "can": 250000}
BIG = 65536
LATENCY_CALLS = 60


def best_payload_fraction(bus):
    """The most payload the bus framing allows, as a fraction of its raw bit rate."""
    if bus == "i2c":
        return 8 / 9  # every byte takes a ninth clock for its ACK
    if bus == "spi":
        return 1.0
    frames = [can_frame_bits(0x7FF, bytes([(i * 7) & 0xFF] * 8)) for i in range(256)]
    return 64 / statistics.mean(frames)  # 8 bytes per standard frame, stuffing included


def run(bus, impl, plan, timeout):
    sim = Simulator().start()
    try:
        slave = Board(sim, "slave", bus, "slave", impl, timing=50 if impl == "python" else None,
                      send_timeout=30000)
        slave.wait_for("ready")
        master = Board(sim, "master", bus, "master", impl, plan=plan,
                       timing=50 if impl == "python" else None)
        try:
            return master.results(timeout)
        finally:
            master.kill()
            slave.kill()
    finally:
        sim.stop()


def measure(bus, impl, big):
    plan = [
        {"op": "calls", "sizes": [0] * LATENCY_CALLS},
        {"op": "calls", "name": "size", "sizes": [big], "recv_timeout": 30000},
        {"op": "calls", "name": "check", "sizes": [big], "send_timeout": 30000},
    ]
    latency, result, argument = run(bus, impl, plan, timeout=180)
    out = {"latency_ms": None, "fraction": None, "failed": latency["none"] + latency["wrong"]}
    if latency["ok"]:
        out["latency_ms"] = statistics.median(latency["ms"])
    moved = [r["ms"][0] for r in (result, argument) if r["ok"] == 1]
    out["failed"] += 2 - len(moved)
    if moved:
        seconds = statistics.mean(moved) / 1000
        out["fraction"] = big * 8 / seconds / RAW_BIT_RATE[bus]
    return out


def main(buses):
    print("bus-bench: simulated buses at nominal speed; throughput = payload bits of one call"
          " / its time / raw bit rate")
    print("%-4s %-26s %12s %16s %16s %10s" % ("bus", "transport", "64 KiB calls", "of bus best",
                                              "0 B call (ms)", "failed"))
    for bus in buses:
        best = best_payload_fraction(bus)
        # The Python baseline moves 8 KiB (its reads are not split at 65535 bytes).
        for impl, big, label in (("native", BIG, "rpc_%s_* (C)" % bus),
                                 ("python", 8192, "Python overrides (8 KiB)")):
            figures = measure(bus, impl, big)
            fraction = figures["fraction"]
            print("%-4s %-26s %11s%% %15s%% %16s %10d" % (
                bus, label,
                "-" if fraction is None else "%.1f" % (100 * fraction),
                "-" if fraction is None else "%.1f" % (100 * fraction / best),
                "-" if figures["latency_ms"] is None else "%.1f" % figures["latency_ms"],
                figures["failed"]))
            sys.stdout.flush()
    print("(of bus best: against the most payload the framing allows: 8/9 on I2C for the ACK"
          " bits, 100%% on SPI, %.1f%% on CAN for 8-byte standard frames)" % (100 * best_payload_fraction("can")))


if __name__ == "__main__":
    main(sys.argv[1:] or ["i2c", "spi", "can"])
