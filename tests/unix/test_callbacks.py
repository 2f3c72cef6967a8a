"""Slave callbacks: schedule_callback runs once after the result was sent, the loop callback
runs after every loop turn, and an exception raised in a callback ends loop() with that
exception (the master's call then gets no result: None)."""
import pytest

from conftest import PAIRS, PAIR_IDS, start_pair


@pytest.mark.parametrize("transport", ["tcp", "net"])
@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_callbacks(spawn, pty_relay, port, pair, transport):
    # The slave loops with recv_timeout=100, so an idle slave turns its loop ~10 times/s.
    master, slave = start_pair(spawn, pty_relay, pair[0], pair[1], transport, port, "callbacks",
                               slave_args=("100",))
    res = master.result(timeout=60)
    assert res["before"]["sched"] == 0 and res["before"]["loop"] == 0
    assert res["sched_result"] == "scheduled"
    assert res["after_sched"]["sched"] == 1
    assert res["after_echo"]["sched"] == 1, "a scheduled callback runs once"
    assert res["loop_result"] == "loop set"
    c1, c2 = res["loop_counts"]
    assert c1 >= 1, "the loop callback runs after the turn that set it"
    assert c2 >= c1 + 2, "idle loop turns (recv_timeout 100 ms, 600 ms apart) run the loop callback"
    if pair[0] == "ref" and transport == "tcp":  # the reference peer raises when the socket closes
        assert res["fail"] is None or res["fail"].startswith("closed"), res["fail"]
    else:
        assert res["fail"] is None, "a slave whose callback raised sends no result"
    if pair[0] == "mod":
        assert res["fail_last_error"].startswith("RECV_TIMEOUT: RESULT_HEADER"), res["fail_last_error"]
    assert master.finish() == 0, master.stderr()
    rc = slave.finish()
    assert rc != 0, "loop() must end with the callback's exception"
    err = "\n".join(slave.out) + slave.stderr()  # MicroPython prints a traceback on stdout
    assert "ValueError: boom from the slave callback" in err, err
    assert "QUIT" not in slave.out


@pytest.mark.parametrize("transport", ["tcp", "net", "pty"])
@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_timeouts(spawn, pty_relay, port, pair, transport):
    """A slave busier than the master's recv_timeout: call() returns None within about that
    time (our module says why), and the next call works."""
    master, slave = start_pair(spawn, pty_relay, pair[0], pair[1], transport, port, "timeouts")
    res = master.result(timeout=60)
    assert res["sleep"] is None
    assert res["sleep_ms"] < 1000 + 400, res["sleep_ms"]  # bounded by the phases, not the 5 s data wait
    assert res["again"] == "again", (res, slave.out, slave.stderr())
    if pair[0] == "mod":
        assert res["sleep_last_error"].startswith("RECV_TIMEOUT: RESULT_HEADER timeout ("), res["sleep_last_error"]
        assert res["again_last_error"] is None
        st = res["stats"]
        assert st["calls_failed"] >= 1 and st["recv_phase_timeouts"] >= 1 and st["calls_ok"] >= 2, st
    assert res["quit"] == "bye", (res.get("quit_error"), res.get("quit_stats"))
    assert master.finish() == 0, master.stderr()
    assert slave.finish() == 0, slave.stderr()
