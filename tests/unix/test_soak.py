"""Calls through a pty relay that injects noise bursts into both directions: every result
that comes back must be right (zero wrong results); calls hit by noise may fail cleanly."""
import random
import threading
import time

import pytest

from conftest import start_pair


@pytest.mark.parametrize("pair", [("mod", "mod"), ("mod", "ref"), ("ref", "mod")],
                         ids=["mod-mod", "modmaster-refslave", "refmaster-modslave"])
def test_noise_soak(spawn, pty_relay, port, pair):
    relays = []

    def make_relay():
        r = pty_relay()
        relays.append(r)
        return r
    make_relay.keep = pty_relay.keep
    master, slave = start_pair(spawn, make_relay, pair[0], pair[1], "ptyrelay", port, "soak",
                               {"calls": 1500 if pair == ("mod", "mod") else 200})
    stop = threading.Event()
    injected = [0]

    def inject():
        rng = random.Random(11)
        while not stop.is_set() and injected[0] < 60:
            side = rng.choice(("master", "slave"))
            relays[0].inject(side, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
            injected[0] += 1
            time.sleep(0.01)
    t = threading.Thread(target=inject, daemon=True)
    t.start()
    try:
        res = master.result(timeout=240)
    finally:
        stop.set()
        t.join(2)
    assert injected[0] >= 10, "the noise did not overlap the calls"
    assert res["wrong"] == 0, res
    assert res["failed"] <= 30, res
    assert res["quit"] == "bye", (res.get("quit_error"), res.get("quit_stats"))
    assert slave.finish() == 0, (slave.out, slave.stderr())
    if pair[0] == "mod":
        assert res["stats"]["bad_magic"] + res["stats"]["bad_crc"] + res["stats"]["timeouts"] > 0, res["stats"]
