# One board of the many-slave runs (MicroPython unix port; on I2C, SPI and CAN with the
# stand-in machine/pyb of tests/bus/stand_in on the path). Set up by environment variables:
#   BUS    i2c | spi | can | network
#   ROLE   slave: SLAVE is this slave's index; it serves forever after printing "ready"
#          master: N slaves, PLAN a JSON object (see run_master); prints one JSON line
#   ADDRS  JSON list, the address of slave i: I2C address, CAN id, SPI CS pin name, or IP
#   PORT   (network) the UDP/TCP port every slave listens on
import json
import os
import sys
import time

import rpc

BUS = os.getenv("BUS")
ADDRS = json.loads(os.getenv("ADDRS"))
# (master, tests only) the slaves this master believes it talks to, in its own order: a
# permutation of ADDRS makes every answer come from another slave than expected.
MASTER_ADDRS = json.loads(os.getenv("MASTER_ADDRS") or "null") or ADDRS
PORT = int(os.getenv("PORT") or 0x1DBA)


def controller_ip(i):
    # The documented master binds its own address at the slave's port: one loopback address
    # per master, beside the slaves' 127.0.0.x.
    return "127.0.1.%d" % (10 + i)


def expected(i, arg):
    """What slave i answers to `arg`: its own tag, then the argument's bytes reversed and
    each added to i (a slave answering in another's place, or a result meant for another
    call, does not match)."""
    return b"S%d:" % i + bytes((b + i) & 0xFF for b in reversed(arg))


def tag_of(result):
    """The slave index a result names, or None."""
    if result[:1] != b"S" or b":" not in result[:4]:
        return None
    try:
        return int(result[1:result.index(b":")])
    except ValueError:
        return None


def make(role, i):
    addr = (ADDRS if role == "slave" else MASTER_ADDRS)[i]
    if BUS == "i2c":
        return getattr(rpc, "rpc_i2c_" + role)(slave_addr=addr)
    if BUS == "can":
        return getattr(rpc, "rpc_can_" + role)(message_id=addr)
    if BUS == "spi":
        return getattr(rpc, "rpc_spi_" + role)(cs_pin=addr)
    if role == "slave":
        return rpc.rpc_network_slave(my_ip=addr, port=PORT)
    return rpc.rpc_network_master(addr, my_ip=controller_ip(i), port=PORT)


def serve(i):
    slave = make("slave", i)

    def work(arg):
        return expected(i, arg)

    slave.register_callback(work)
    print("ready")
    slave.loop()


class Lcg:
    """A seeded generator (the unix port's random module is not relied upon)."""

    def __init__(self, seed):
        self.state = seed & 0x7FFFFFFF

    def next(self, n):
        self.state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.state >> 8) % n


class Tally:
    def __init__(self, n):
        self.ok = [0] * n
        self.none = [0] * n
        self.wrong = [0] * n
        self.crosstalk = [0] * n

    def count(self, i, arg, result):
        if result is None:
            self.none[i] += 1
            return
        result = bytes(result)
        if result == expected(i, arg):
            self.ok[i] += 1
            return
        self.wrong[i] += 1
        tag = tag_of(result)
        if tag is not None and tag != i:
            self.crosstalk[i] += 1

    def report(self, **extra):
        out = {"ok": self.ok, "none": self.none, "wrong": self.wrong, "crosstalk": self.crosstalk}
        out.update(extra)
        return out


def argument(rng, n):
    return bytes(rng.next(256) for _ in range(rng.next(n + 1)))


def make_masters(n):
    if BUS == "can":
        # One shared controller (canhub.py): a native rpc_can_master owns its controller.
        import canhub
        hub = canhub.CanHub(MASTER_ADDRS)
        return [canhub.hub_master(hub, MASTER_ADDRS[i]) for i in range(n)]
    return [make("master", i) for i in range(n)]


def run_master(plan):
    """plan: {"calls": blocking calls spread over the slaves in a seeded random order,
    "rounds": rounds of call_start on every slave at once, then call_poll until all are done,
    "alone": blocking calls to slave 0 only (the one-slave rate), "seed", "max_arg"}."""
    n = len(ADDRS)
    masters = make_masters(n)
    rng = Lcg(plan.get("seed", 1))
    max_arg = plan.get("max_arg", 64)
    timeouts = {"send_timeout": 2000, "recv_timeout": 2000}
    # Link up: a first call to each (a slave process may still be starting).
    for i, m in enumerate(masters):
        for _ in range(20):
            if m.call("work", b"up", **timeouts) is not None:
                break
        else:
            raise SystemExit("slave %d never answered" % i)
    if plan.get("up_only"):
        print(json.dumps({"up": n}))
        return

    blocking = Tally(n)
    start = time.ticks_ms()
    for _ in range(plan.get("calls", 0)):
        i = rng.next(n)
        arg = argument(rng, max_arg)
        blocking.count(i, arg, masters[i].call("work", arg, **timeouts))
    blocking_ms = time.ticks_diff(time.ticks_ms(), start)

    together = Tally(n)
    polls = 0
    start = time.ticks_ms()
    for _ in range(plan.get("rounds", 0)):
        args = [argument(rng, max_arg) for _ in range(n)]
        for i, m in enumerate(masters):
            m.call_start("work", args[i], **timeouts)
        pending = set(range(n))
        while pending:
            for i in sorted(pending):
                polls += 1
                if masters[i].call_poll():
                    together.count(i, args[i], masters[i].call_result())
                    pending.discard(i)
    together_ms = time.ticks_diff(time.ticks_ms(), start)

    alone = Tally(n)
    start = time.ticks_ms()
    for _ in range(plan.get("alone", 0)):
        arg = argument(rng, max_arg)
        alone.count(0, arg, masters[0].call("work", arg, **timeouts))
    alone_ms = time.ticks_diff(time.ticks_ms(), start)

    print(json.dumps({"blocking": blocking.report(ms=blocking_ms),
                      "together": together.report(ms=together_ms, polls=polls),
                      "alone": alone.report(ms=alone_ms)}))


if os.getenv("ROLE") == "slave":
    serve(int(os.getenv("SLAVE")))
else:
    run_master(json.loads(os.getenv("PLAN")))
