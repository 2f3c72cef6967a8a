"""make arch-bench (2 of 2): many slaves under one master, per bus: the aggregate calls/s of
blocking calls spread over all slaves, of call_start on every slave at once (finished with
call_poll), and of blocking calls to one slave alone, measured in one run each (the
simulator paces I2C at 100 kHz, SPI at 1 MHz, CAN at 250 kbit/s; the network is loopback)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ADDRESSES, Run  # noqa: E402

CALLS = 400
ROUNDS = 40


def rate(tally, calls):
    return calls * 1000.0 / max(1, tally["ms"])


def main():
    print("many slaves under one master: aggregate calls/s (0-64 B arguments)")
    print("  %-8s %6s %16s %18s %12s %10s %10s" % ("bus", "slaves", "blocking spread",
                                                   "call_start/poll", "one alone", "spread/1", "start/1"))
    for bus in ("i2c", "spi", "can", "network"):
        n = len(ADDRESSES[bus])
        with Run(bus, seed=7) as run:
            out = run.master(calls=CALLS, rounds=ROUNDS // n * 8, alone=CALLS, seed=7)
        bad = sum(sum(out[k]["wrong"]) + sum(out[k]["none"]) for k in out)
        spread = rate(out["blocking"], CALLS)
        together = rate(out["together"], ROUNDS // n * 8 * n)
        alone = rate(out["alone"], CALLS)
        print("  %-8s %6d %16.0f %18.0f %12.0f %9.2fx %9.2fx%s" % (
            bus, n, spread, together, alone, spread / alone, together / alone,
            "" if bad == 0 else "   (%d calls wrong or failed)" % bad))


if __name__ == "__main__":
    main()
