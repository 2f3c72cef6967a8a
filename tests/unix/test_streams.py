"""stream_reader/stream_writer in both directions with queue depths 1, 2, 8 and 255, between
our module and itself and the reference peer, over the three transports."""
import pytest

from conftest import PAIRS, PAIR_IDS, start_pair

DEPTHS = [1, 2, 8, 255]


@pytest.mark.parametrize("transport", ["tcp", "net", "pty"])
@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_streams(spawn, pty_relay, port, pair, transport):
    n, size = 300, 700
    master, slave = start_pair(spawn, pty_relay, pair[0], pair[1], transport, port, "streams",
                               {"depths": DEPTHS, "n": n, "size": size})
    res = master.result(timeout=120)
    for depth in DEPTHS:
        out = res["out_%d" % depth]
        assert out == {"started": True, "frames": n, "bad": 0, "ended_by": "done"}, (depth, out, res)
        inn = res["in_%d" % depth]
        assert inn["started"] and inn["sent"] == n and inn["ended_by"] == "done", (depth, inn, res.get("diag_%d" % depth))
        assert inn["slave_frames"] == n and inn["slave_bad"] == 0, (depth, inn, res.get("diag_%d" % depth))
        assert inn["slave_bytes"] == inn["expected_bytes"], (depth, inn)
    assert res["quit"] == "bye", (res.get("quit_error"), res.get("quit_stats"))
    assert master.finish() == 0, master.stderr()
    assert slave.finish() == 0, slave.stderr()


def test_streams_python_transport(spawn, pty_relay, port):
    """Streams over subclasses that override get_bytes/put_bytes/_flush, on both sides."""
    test_streams(spawn, pty_relay, port, ("mod", "mod"), "py")
