"""rpc over a Protocol V2 channel, through the official package's Camera: our host master
against the cam's rpc_channel_slave, and the cam's rpc_channel_master against our host slave."""
import random

import pytest
import rpc

from conftest import Stdout, cam_script, has_channel, wait_for


@pytest.fixture(scope="module")
def slave_cam(camera):
    out = Stdout(camera)
    camera.exec(cam_script("rpc_slave.py"))
    assert out.wait_for("rpc slave ready")
    assert wait_for(lambda: has_channel(camera, "rpc"))
    yield camera
    camera.stop()
    assert wait_for(lambda: not camera.read_status()["stdin"])


def master(camera):
    m = rpc.rpc_omv_camera_master(camera, channel="rpc")
    # The virtual cam's UART takes about 13 KB/s: let the waits cover the wire time.
    m.set_timing(bytes_per_s=8000)
    return m


@pytest.mark.parametrize("size", [0, 1, 100, 4000, 20000])
def test_host_master_calls_the_cam(slave_cam, size):
    m = master(slave_cam)
    data = bytes(random.Random(size).getrandbits(8) for _ in range(size))
    r = m.call("echo", data, send_timeout=30000, recv_timeout=30000)
    assert r is not None, m.last_error
    assert bytes(r) == data
    if size <= 20000:
        r = m.call("length", data, send_timeout=30000, recv_timeout=30000)
        assert r is not None, m.last_error
        assert bytes(r) == str(size).encode()


def test_unknown_name_answers_empty(slave_cam):
    m = master(slave_cam)
    r = m.call("no_such_function", b"abc", send_timeout=5000, recv_timeout=5000)
    assert r is not None and bytes(r) == b""


def test_stream_from_the_cam(slave_cam):
    m = master(slave_cam)
    assert bytes(m.call("frames", b"5", send_timeout=5000, recv_timeout=5000)) == b"ok"
    got = []

    class Enough(Exception):
        pass

    def keep(frame):
        got.append(bytes(frame))
        if len(got) == 5:
            raise Enough()

    with pytest.raises(Enough):
        m.stream_reader(keep, queue_depth=1, read_timeout_ms=5000)
    assert got == [b"frame %d " % i * 20 for i in range(1, 6)]


# Known limit: a cam-master call with a 20000-byte argument needs many rpc retries here and
# often runs out ("SEND_TIMEOUT: COMMAND_DATA timeout"), even with set_timing(bytes_per_s=
# 2000); see docs/protocol-v2.md. The sizes below complete without that.
def test_cam_master_calls_the_host(camera):
    out = Stdout(camera)
    out.read()
    camera.exec(cam_script("rpc_master.py"))
    assert wait_for(lambda: has_channel(camera, "rpc"))
    s = rpc.rpc_omv_camera_slave(camera, channel="rpc")
    s.set_timing(bytes_per_s=8000)

    def echo(data):
        return bytes(data)

    s.register_callback(echo)
    for _ in range(60):
        s.loop_once(recv_timeout=3000, send_timeout=5000)
        if "DONE" in out.read():
            break
    text = out.text
    assert "DONE" in text, text
    for size in (0, 1, 1000):
        assert "echo %d True" % size in text, text
    assert "unknown True" in text, text


def test_our_host_role_master_calls_the_cam(vcam, camera):
    """rpc.rpc_omv_master(port): the host package's own Protocol V2 host role (no `openmv`)."""
    out = Stdout(camera)
    camera.exec(cam_script("rpc_slave.py"))
    assert out.wait_for("rpc slave ready")
    assert wait_for(lambda: has_channel(camera, "rpc"))
    camera.disconnect()
    m = rpc.rpc_omv_master(vcam.uart_paths[4], channel="rpc")
    try:
        m.set_timing(bytes_per_s=8000)
        for size in (0, 1, 100, 4000, 20000):
            data = bytes(random.Random(size + 7).getrandbits(8) for _ in range(size))
            r = m.call("echo", data, send_timeout=30000, recv_timeout=30000)
            assert r is not None, m.last_error
            assert bytes(r) == data
        r = m.call("no_such_function", b"abc", send_timeout=5000, recv_timeout=5000)
        assert r is not None and bytes(r) == b""
        sent, received, checksum, _ = m.link.host.stats()
        assert sent > 0 and received > 0 and checksum == 0
    finally:
        m.close()
        camera.connect()
        camera.stop()
