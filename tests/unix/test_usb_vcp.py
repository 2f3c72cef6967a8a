"""rpc_usb_vcp_master/slave in the real unix port, over a stand-in pyb.USB_VCP
(tests/unix/stand_in_vcp/pyb.py: a Python io.IOBase stream on a pty, non-blocking reads and
ioctl polling like the cam's USB_VCP) on both ends of a pty pair: the documented classes
build, turn Ctrl-C interception off (checked in peer_lib.make_transport), and carry calls
of every size, unknown names and streams through the C stream driver. A real USB device is
not tried here."""
from conftest import start_pair


def test_calls_over_usb_vcp(spawn, pty_relay, port):
    master, slave = start_pair(spawn, pty_relay, "mod", "mod", "vcp", port, "calls",
                               {"sizes": [0, 1, 1024, 3000, 65536]})
    res = master.result(timeout=120)
    assert res["first"] == "hello"
    for n in (0, 1, 1024, 3000, 65536):
        assert res["echo_%d_equal" % n] is True, (n, res.get("errors"))
        assert res["echo_copy_%d_equal" % n] is True, (n, res.get("errors"))
    assert res["big_equal"] is True
    assert res["no_such_callback"] == {"type": "bytes", "value": ""}
    assert res["quit"] == "bye", (res.get("quit_error"), res.get("quit_stats"))
    assert master.finish() == 0
    assert slave.finish() == 0


def test_streams_over_usb_vcp(spawn, pty_relay, port):
    master, slave = start_pair(spawn, pty_relay, "mod", "mod", "vcp", port, "streams",
                               {"depths": [1, 8], "n": 30, "size": 500})
    res = master.result(timeout=120)
    for depth in (1, 8):
        out = res["out_%d" % depth]
        assert out == {"started": True, "frames": 30, "bad": 0, "ended_by": "done"}, (depth, out)
        inn = res["in_%d" % depth]
        assert inn["sent"] == 30 and inn["ended_by"] == "done", (depth, inn, res.get("diag_%d" % depth))
        assert inn["slave_frames"] == 30 and inn["slave_bad"] == 0, (depth, inn)
        assert inn["slave_bytes"] == inn["expected_bytes"], (depth, inn)
    assert res["quit"] == "bye"
    assert master.finish() == 0
    assert slave.finish() == 0
