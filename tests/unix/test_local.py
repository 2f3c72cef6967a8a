"""Our module without a peer: mutex semantics (also across two threads of the unix port),
the protocol helpers, and clear errors for wrong argument types."""
import json


def run(spawn, what):
    p = spawn("local_checks.py", what)
    res = p.result(timeout=60)
    assert p.finish() == 0, (p.out, p.stderr())
    return res


def test_mutex(spawn):
    res = run(spawn, "mutex")
    assert res["is_oserror"] is True
    assert res["release_free"].startswith("MutexException"), res["release_free"]
    assert res["test_free"] is True and res["test_held"] is False
    assert res["release_held"].startswith("ok")
    assert res["release_again"].startswith("MutexException")
    assert res["test_in_with"] is False and res["test_after_with"] is True
    assert res["released_after_exception"] is True, "`with` must release when the block raises"
    assert res["threads_done"] == 2
    assert res["threads_count"] == res["threads_expected"], "increments lost under the mutex"
    assert res["test_while_other_holds"] is False
    assert res["holder_state_when_acquired"] == 2, "`with` went in while another thread held the lock"
    assert res["waited_ms"] >= 100, res["waited_ms"]


def test_helpers_and_type_errors(spawn):
    res = run(spawn, "types")
    assert res["name_hash"] == res["name_hash_bytes"] == 1332983881
    assert res["crc16"] == res["crc16_mv"] == 0x29B1
    for label, outcome in res["errors"].items():
        # A wrong type is a TypeError; a wrong kind of object for a transport may be an
        # OSError that says which operation it lacks. Never a crash or a silent success.
        allowed = {"stream_master_int": ("TypeError", "OSError"), "network_master_ip_int": ("TypeError", "OSError"),
                   "register_nameless": ("TypeError", "AttributeError")}.get(label, ("TypeError",))
        assert outcome.split(":")[0] in allowed, (label, outcome)
        assert len(outcome) > len(outcome.split(":")[0]) + 3, ("an error says what is wrong", label, outcome)


def test_a_stream_that_says_ready_but_moves_nothing_times_out(spawn):
    """A stream object whose poll always says ready while every read and write would block
    (a misbehaving driver): the call fails at its timeouts and the stream writer ends, instead
    of the C loops spinning forever (they did before: only a wait that said "not ready" was
    checked against the clock)."""
    res = run(spawn, "lying_stream")
    assert res["master_result"] is None
    assert res["master_error"].startswith("SEND_TIMEOUT: COMMAND_HEADER timeout"), res["master_error"]
    assert res["writer"].startswith("ok"), res["writer"]
    assert res["slave_error"].startswith("STREAM_TIMEOUT: STREAM_SETUP"), res["slave_error"]
