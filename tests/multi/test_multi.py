"""Many slaves under one master (tests/multi/board.py): on the bus simulator one I2C master
and 8 slaves at 8 addresses, one CAN controller and 8 slaves on 8 ids, one SPI master and 4
slaves on 4 chip selects; on loopback one network master and 8 slaves on 127.0.0.10-17. Every
slave answers with its own tag and a transform of the argument that depends on it, so a
result from the wrong slave, or for another call, is seen (wrong, and crosstalk when it
names another slave). 500 blocking calls spread over the slaves in a seeded random order, then
rounds of call_start on every slave at once, finished with call_poll.
"""
import pytest

from harness import ADDRESSES, Run

CALLS = 500
ROUNDS = 10


def check(tally, n, total):
    assert tally["wrong"] == [0] * n
    assert tally["crosstalk"] == [0] * n
    assert tally["none"] == [0] * n
    assert sum(tally["ok"]) == total
    assert all(tally["ok"]), tally["ok"]     # every slave had its share


@pytest.mark.parametrize("bus", ["i2c", "can", "spi", "network"])
def test_many_slaves(bus):
    n = len(ADDRESSES[bus])
    with Run(bus, seed=15) as run:
        out = run.master(calls=CALLS, rounds=ROUNDS, seed=15)
    check(out["blocking"], n, CALLS)
    check(out["together"], n, ROUNDS * n)


def test_a_misaddressed_master_sees_crosstalk():
    # The checks can fail: a master whose address list is rotated by one calls slave i+1 where
    # it means slave i, and every answer is counted wrong and as crosstalk.
    addrs = ADDRESSES["network"]
    with Run("network", seed=15) as run:
        out = run.master(calls=40, seed=15, master_addrs=addrs[1:] + addrs[:1])
    tally = out["blocking"]
    assert sum(tally["ok"]) == 0
    assert sum(tally["crosstalk"]) == sum(tally["wrong"]) == 40
