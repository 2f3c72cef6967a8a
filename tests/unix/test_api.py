"""Our module's extensions in the real unix port: stats(), last_error, set_limits(),
set_timing(), the non-blocking call, wrong argument types; against our own slave and the
reference peer."""
import os
import re

import pytest

from conftest import start_pair

from conftest import ROOT


def header_stats_names():
    """The counters of omv_rpc_stats_t in include/omv_rpc.h: the one list every door's
    stats() must give (the crate's Stats::FIELDS is checked against the header by
    tests/c_abi.rs)."""
    with open(os.path.join(ROOT, "include", "omv_rpc.h")) as f:
        text = f.read()
    body = text[text.index("typedef struct omv_rpc_stats {"):text.index("} omv_rpc_stats_t;")]
    return re.findall(r"uint32_t (\w+);", body)


@pytest.mark.parametrize("slave_impl,transport", [("mod", "tcp"), ("mod", "net"), ("ref", "tcp")])
def test_api(spawn, pty_relay, port, slave_impl, transport):
    master, slave = start_pair(spawn, pty_relay, "mod", slave_impl, transport, port, "api", {"module": True})
    res = master.result(timeout=60)
    assert res["first"] == "hi"
    assert res["last_error_ok"] is None
    assert res["stats_names"] == sorted(header_stats_names())
    assert res["stats_first"]["calls_ok"] == 1 and res["stats_first"]["packets_sent"] >= 4
    assert all(v == 0 for v in res["stats_after_reset"].values()), res["stats_after_reset"]
    one = res["stats_one_call"]
    assert one["calls_ok"] == 1 and one["packets_sent"] >= 4 and one["packets_received"] >= 4, one
    # max_result_len on the master
    assert res["big_limited"] is True
    # last_error names the last failed attempt: too_long, or a timeout when the slave was
    # still out of step after the refused header.
    assert res["big_limited_error"].startswith("RECV_TIMEOUT: RESULT_HEADER "), res["big_limited_error"]
    assert res["stats_limited"]["too_long"] >= 1 and res["stats_limited"]["calls_failed"] >= 1
    assert res["big_at_limit"] == 1000
    assert res["big_unlimited"] == 2000
    # max_argument_len on the slave (our slave has set_limits; the reference peer's slave
    # callback uses the same name for its attribute-based limit).
    if slave_impl == "mod":
        assert res["slave_limit_set"] == "ok", (slave.out, slave.stderr())
        assert res["arg_over_limit"] is True
        assert res["arg_over_limit_error"].startswith("SEND_TIMEOUT: COMMAND_HEADER"), res["arg_over_limit_error"]
        assert res["arg_at_limit"] == 100
        assert res["slave_stats"]["too_long"] >= 1, res["slave_stats"]
    assert res["timing_call"] == 5000, res
    for label, outcome in res["type_errors"].items():
        assert outcome == "TypeError", (label, outcome)
    assert res["after_errors"] == "still fine"
    assert res["quit"] == "bye", (res.get("quit_error"), res.get("quit_stats"))
    assert master.finish() == 0
    assert slave.finish() == 0


@pytest.mark.parametrize("slave_impl,transport", [("mod", "tcp"), ("mod", "net"), ("mod", "pty"),
                                                  ("ref", "tcp")])
def test_nonblocking_call(spawn, pty_relay, port, slave_impl, transport):
    master, slave = start_pair(spawn, pty_relay, "mod", slave_impl, transport, port, "nonblocking",
                               {"module": True})
    res = master.result(timeout=60)
    assert res["first"] == "hi"
    assert res["nb_result"] == "slept"
    assert res["nb_polls"] > 10, "call_poll() returned before the slave's 300 ms were over"
    # Not a speed target: a poll that blocked for the whole call would take >= 300 ms.
    assert res["nb_longest_poll_ms"] < 150 and res["nb_start_ms"] < 150, res
    for n in (0, 1024, 65536):
        assert res["nb_echo_%d" % n] is True, (n, res.get("nb_echo_%d_error" % n))
    assert res["nb_unknown"] == ["bytes", 0]
    assert res["after_cancel"] == "after cancel"
    assert res["nb_timeout"] is None
    assert res["nb_timeout_error"].startswith("RECV_TIMEOUT: RESULT_HEADER"), res["nb_timeout_error"]
    assert res["quit"] == "bye", (res.get("quit_error"), res.get("quit_stats"))
    assert master.finish() == 0
    assert slave.finish() == 0


def test_set_limits_inside_a_callback(spawn, pty_relay, port):
    """A slave callback that changes its own limits still returns its result."""
    master, slave = start_pair(spawn, pty_relay, "mod", "mod", "tcp", port, "limits_in_callback",
                               {"module": True})
    res = master.result(timeout=60)
    assert res["set_limits"] == "ok", res["set_limits_error"]
    assert res["over_limit"] is True
    assert res["quit"] == "bye"


@pytest.mark.parametrize("slave_impl,transport", [("mod", "tcp"), ("mod", "net"), ("mod", "pty"),
                                                  ("ref", "tcp"), ("ref", "net")])
def test_pipelined_calls(spawn, pty_relay, port, slave_impl, transport):
    """set_timing(pipeline=True / "all") on our master: every call gives the same result against
    our slave and the reference peer (which needs no option: the bytes are the same, only sent
    earlier); refused on a Python-override transport and for an unknown mode."""
    master, slave = start_pair(spawn, pty_relay, "mod", slave_impl, transport, port, "pipeline",
                               {"module": True})
    res = master.result(timeout=90)
    assert res["first"] == "hi"
    assert (res["echo_calls"], res["echo_bad"]) == (48, 0), res.get("bad_errors")
    assert (res["echo_ok"], res["echo_failed"]) == (48, 0), res
    # Four answers read per call (two acks, RESULT_HEADER, RESULT_DATA), in each mode.
    assert res["packets_received_True"] >= 4 * 24 and res["packets_received_all"] >= 4 * 24, res
    assert res["bad_mode"].startswith("ValueError: pipeline must be"), res["bad_mode"]
    assert res["big"] == 60000
    assert res["unknown"] == ""
    assert res["slept"] == "slept"
    assert res["after_off"] == "off" and res["after_on"] == "on again"
    assert res["override_pipeline"].startswith("ValueError: pipeline needs a transport that buffers"), res["override_pipeline"]
    assert res["quit"] == "bye", (res.get("quit_error"), res.get("quit_stats"))
    assert master.finish() == 0
    assert slave.finish() == 0


@pytest.mark.parametrize("slave_impl,transport", [("mod", "tcp"), ("mod", "net"), ("ref", "tcp")])
def test_call_into(spawn, pty_relay, port, slave_impl, transport):
    """call_into(): results of 0 B to 64 KiB in the caller's buffer, a view on it, about no heap
    per call, call()'s conventions (b"" for an unknown name), and a clean failure for a buffer
    too small."""
    master, slave = start_pair(spawn, pty_relay, "mod", slave_impl, transport, port, "call_into",
                               {"module": True})
    res = master.result(timeout=90)
    assert res["first"] == "hi"
    assert res["echo"]["0"] == ["bytes", 0, True]
    for n in ("1", "100", "1024", "65536"):
        assert res["echo"][n] == ["memoryview", int(n), True], (n, res["echo"][n])
    assert res["is_view"] is True
    assert res["last_ok"] is True
    assert res["heap_per_call"] < 200, res["heap_per_call"]  # a memoryview, not 64 KiB
    assert res["unknown"] == ""
    assert res["small"] is True
    assert "longer than the buffer" in res["small_error"], res["small_error"]
    assert res["after_small"] == "again"
    assert res["read_only"] == "TypeError"
    assert res["quit"] == "bye", (res.get("quit_error"), res.get("quit_stats"))
    assert master.finish() == 0
    assert slave.finish() == 0


@pytest.mark.parametrize("slave_impl,transport", [("mod", "tcp"), ("mod", "net"), ("mod", "pty"), ("ref", "tcp")])
def test_spin(spawn, pty_relay, port, slave_impl, transport):
    """set_timing(spin_us=): calls of 0 B to 64 KiB give the right bytes whether the master's
    waits sleep at once (0), check for 1 us, for the longest window (100 ms) or the default; a
    bad value is a clear error that changes nothing."""
    master, slave = start_pair(spawn, pty_relay, "mod", slave_impl, transport, port, "spin",
                               {"module": True})
    res = master.result(timeout=90)
    assert res["first"] == "hi"
    for spin_us in ("0", "1", "100000", "100"):
        assert res["calls"][spin_us] == [12, 0, []], (spin_us, res["calls"][spin_us])
    assert res["errors"]["negative"] == "ValueError: spin_us must be 0 to 100000", res["errors"]
    assert res["errors"]["too_long"] == "ValueError: spin_us must be 0 to 100000", res["errors"]
    assert res["errors"]["str"].startswith("TypeError"), res["errors"]
    assert res["after_errors"] == "still"
    assert res["override_spin"] == "taken"
    assert res["quit"] == "bye", (res.get("quit_error"), res.get("quit_stats"))
    assert master.finish() == 0
    assert slave.finish() == 0
