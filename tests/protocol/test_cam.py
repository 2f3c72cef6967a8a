"""The official `openmv` package (1.0.7) drives the virtual cam over Protocol V2."""
import random
import struct

from conftest import Stdout, cam_script, connect, has_channel, wait_for


def test_connect_version_and_system_info(camera):
    assert camera.version() == {
        "protocol_version": (1, 0, 2),
        "bootloader_version": (1, 0, 0),
        "firmware_version": (5, 0, 0),
    }
    info = camera.system_info()
    assert info["cpu_id"] >> 24 == 0x41                      # Arm
    assert (info["cpu_id"] >> 4) & 0xFFF == 0xC27            # Cortex-M7
    assert (info["usb_vid"], info["usb_pid"]) == (0x1209, 0xABD1)
    assert info["chip_id"][0] == 0x7725
    assert info["jpeg_present"] and info["crc_present"] and not info["npu_present"]
    assert (info["flash_size_kb"], info["ram_size_kb"]) == (2048, 1024)
    names = {ch["name"] for ch in camera.channels_by_id.values()}
    assert {"stdin", "stdout", "stream"} <= names
    assert camera.channels_by_name["stdin"] == 1 and camera.channels_by_name["stream"] == 3


def test_exec_prints_to_stdout_and_stop_ends_a_running_script(camera):
    out = Stdout(camera)
    out.read()
    camera.exec("print('sum', sum(range(10)))\n")
    assert out.wait_for("sum 45")
    camera.exec("import time\nprint('looping')\nwhile True:\n    time.sleep_ms(10)\n")
    assert out.wait_for("looping")
    assert wait_for(lambda: camera.read_status()["stdin"])    # a script is running
    camera.stop()
    assert out.wait_for("KeyboardInterrupt")
    assert wait_for(lambda: not camera.read_status()["stdin"])
    # A new script replaces the old one.
    camera.exec("print('second', 2 * 21)\n")
    assert out.wait_for("second 42")


def test_device_and_host_stats_count_packets(camera):
    before = camera.device_stats()
    for _ in range(5):
        camera.version()
    after = camera.device_stats()
    # Each version() is one command in and one answer out, plus the STATS exchange itself.
    assert after["received"] - before["received"] == 6
    assert after["sent"] - before["sent"] == 6
    assert after["checksum"] == before["checksum"]
    host = camera.host_stats()
    assert host["received"] > 0 and host["sent"] > 0 and host["checksum"] == 0


def test_custom_channels_read_write_size_status(camera):
    out = Stdout(camera)
    camera.exec(cam_script("channels.py"))
    assert out.wait_for("channels")
    assert wait_for(lambda: has_channel(camera, "buffer"))
    assert camera.channel_size("static") == 11
    assert camera.channel_read("static") == b"HelloWorld!"
    assert camera.read_status()["buffer"] is False
    data = bytes(random.Random(1).getrandbits(8) for _ in range(5000))
    assert camera.channel_write("buffer", data)
    assert camera.channel_size("buffer") == 5000
    assert camera.channel_read("buffer") == data
    assert camera.channel_read("buffer", 100) == data[:100]
    assert camera.read_status()["buffer"] is True
    assert camera.channel_write("nothere", b"x") is False
    camera.stop()


def test_stream_frames(camera):
    camera.streaming(True)
    frames = []
    for _ in range(200):
        f = camera.read_frame()
        if f:
            frames.append(f)
        if len(frames) == 4:
            break
    camera.streaming(False)
    assert len(frames) == 4
    for f in frames:
        assert (f["width"], f["height"], f["format"]) == (160, 120, 0x08020001)
        assert len(f["data"]) == 160 * 120 * 3 and f["raw_size"] == 160 * 120
    # The frame number is in the first pixels of the last row; frames follow each other.
    numbers = [struct.unpack_from("<I", bytes(f["data"][0::3]), 119 * 160)[0] for f in frames]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4
    assert frames[0]["data"] != frames[1]["data"]             # the square moved


def test_drop_rate_5_percent_every_call_right(vcam, camera):
    """The package drops 5% of the packets it parses and of the ACKs it owes (seeded):
    every call that returns is right, and each one completes within a few attempts.
    (connect() itself runs without drops: the package's resync accepts a late SYNC ACK as
    the answer to GET_CAPS and fails with a TypeError, whatever the device does.)"""
    camera.disconnect()
    lossy = connect(vcam.uart_paths[4], timeout=1.0)
    random.seed(5)
    lossy.drop_rate = 0.05                  # for the Transport of every resync
    lossy.transport.drop_rate = 0.05

    data = bytes(range(256)) * 8
    wrong = done = 0
    try:
        out = ""
        lossy.exec(cam_script("channels.py"))
        assert wait_for(lambda: has_channel(lossy, "buffer"))
        for i in range(25):
            for attempt in range(4):
                try:
                    v = lossy.version()
                    wrong += v["firmware_version"] != (5, 0, 0)
                    assert lossy.channel_write("buffer", data)
                    back = lossy.channel_read("buffer", len(data))
                    wrong += back != data
                    done += 1
                    break
                except Exception:           # OMVException, or the package's resync TypeError
                    continue
        lossy.stop()
        out = lossy.read_stdout() or ""
    finally:
        lossy.disconnect()
        camera.connect()
    assert wrong == 0
    assert done == 25, out


def test_reset_and_reconnect(vcam, camera):
    camera.reset()                      # SYS_RESET: the board boots again; the package disconnects
    assert not camera.is_connected()
    again = wait_for(lambda: _try_connect(vcam.uart_paths[4]), timeout=30)
    assert again
    assert again.version()["protocol_version"] == (1, 0, 2)
    again.disconnect()
    camera.connect()


def _try_connect(port):
    try:
        return connect(port)
    except Exception:
        return None
