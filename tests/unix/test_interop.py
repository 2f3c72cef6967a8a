"""Calls between two micropython processes: our module against itself and against the
independent peer bench/ref_rpc.py in both roles, over the network transport (UDP/TCP on
127.0.0.1/127.0.0.2), the stream transport over a TCP socket and over a pty pair, and a
Python-level transport (get_bytes/put_bytes overrides) over a socket."""
import pytest

from conftest import PAIRS, PAIR_IDS, start_pair

SIZES = (0, 1, 1024, 1400, 1401, 3000, 65536)


def check_calls(res):
    assert res["first"] == "hello"
    for n in SIZES:
        assert res["echo_%d" % n] is not None, "echo of %d bytes failed: %s" % (n, res.get("errors"))
        assert res["echo_%d_equal" % n], "echo of %d bytes came back different" % n
        assert res["echo_copy_%d_equal" % n], "echo_copy of %d bytes came back different" % n
    assert res["bytes_name"] == "name as bytes"
    assert res["big"] == {"type": "memoryview", "len": 100000}
    assert res["big_equal"]
    # Empty results (an unknown name, a callback returning None or b"") are b"", not None.
    for name in ("no_such_callback", "none", "empty"):
        assert res[name] == {"type": "bytes", "value": ""}, name
    assert res["quit"] == "bye", (res.get("quit_error"), res.get("quit_stats"))


@pytest.mark.parametrize("transport", ["net", "tcp", "pty"])
@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_calls(spawn, pty_relay, port, pair, transport):
    master, slave = start_pair(spawn, pty_relay, pair[0], pair[1], transport, port, "calls")
    res = master.result(timeout=90)
    check_calls(res)
    # A result is a memoryview; our module also reports why nothing failed.
    assert res["echo_1024"]["type"] == "memoryview"
    if pair[0] == "mod":
        assert res["last_error_after_ok"] is None
    assert master.finish() == 0, master.stderr()
    assert slave.finish() == 0, slave.stderr()
    assert "QUIT" in slave.out


@pytest.mark.parametrize("pair", [("mod", "mod"), ("mod", "ref"), ("ref", "mod")],
                         ids=["pymaster-modslave", "pymaster-refslave", "refmaster-pyslave"])
def test_python_transport_subclass(spawn, pty_relay, port, pair):
    """Subclasses of rpc_master/rpc_slave that override get_bytes/put_bytes/_flush (the
    documented way to add a transport) carry calls of every size."""
    master_impl, slave_impl = pair
    m_transport = "py" if master_impl == "mod" else "tcp"
    s_transport = "py" if slave_impl == "mod" and master_impl == "ref" else "tcp"
    slave = spawn("slave.py", slave_impl, "%s:%d" % (s_transport, port), name="slave")
    slave.wait_line("READY")
    master = spawn("master.py", master_impl, "%s:%d" % (m_transport, port), "calls", name="master")
    check_calls(master.result(timeout=90))
    assert master.finish() == 0, master.stderr()
    assert slave.finish() == 0, slave.stderr()
