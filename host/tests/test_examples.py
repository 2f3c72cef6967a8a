"""The three controller examples end to end, against their cam-side scripts on the virtual cam
(QEMU, UART3 on a pty) and in the MicroPython unix port over the network."""

import os
import subprocess
import sys

import pytest

from conftest import HOST, REPO

EXAMPLES = HOST / "examples"
FIRMWARE = REPO / "build" / "qemu" / "firmware.elf"


class CamSide:
    def __init__(self, script, *where):
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "run_cam_side.py"), *where, str(EXAMPLES / "cam" / script)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.uart3 = None
        lines = []
        for line in self.proc.stdout:
            lines.append(line)
            if line.startswith("UART3 "):
                self.uart3 = line.split()[1]
            if line.strip() == "READY":
                return
        raise RuntimeError("cam side did not start:\n" + "".join(lines))

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(params=["qemu", "unix"])
def cam_side(request, port):
    opened = []

    def start(script):
        if request.param == "qemu":
            assert FIRMWARE.exists(), "make qemu first"
            c = CamSide(script, "--qemu")
            link = ["--uart", c.uart3, "--baud", "115200"]
        else:
            c = CamSide(script, "--unix-net", "127.0.0.2", str(port))
            link = ["--net", "127.0.0.2", "--my-ip", "127.0.0.1", "--port", str(port)]
        opened.append(c)
        return link

    yield start
    for c in opened:
        c.close()


def run(example, *args, timeout=120):
    r = subprocess.run([sys.executable, str(EXAMPLES / example), *args], capture_output=True,
                       text=True, timeout=timeout, cwd=str(EXAMPLES))
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def is_jpeg(data, width, height):
    """A whole baseline JPEG of that size (SOI, SOF0 with the size, EOI)."""
    if data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":
        return False
    sof = data.find(b"\xff\xc0")
    return sof > 0 and data[sof + 5:sof + 9] == bytes([height >> 8, height & 255, width >> 8, width & 255])


def test_image_transfer(cam_side, tmp_path):
    link = cam_side("image_transfer_jpg_as_the_remote_device.py")
    out = run("image_transfer_jpg_as_the_controller_device.py", *link, "--frames", "4",
              "--framesize", "QVGA", "--out", str(tmp_path))
    assert "frame 4:" in out
    files = sorted(tmp_path.iterdir())
    assert len(files) == 4
    assert all(is_jpeg(f.read_bytes(), 320, 240) for f in files)


def test_image_streaming(cam_side, tmp_path):
    link = cam_side("image_transfer_jpg_streaming_as_the_remote_device.py")
    out = run("image_transfer_jpg_streaming_as_the_controller_device.py", *link, "--frames", "30",
              "--out", str(tmp_path))
    assert "30 frames" in out
    files = sorted(tmp_path.iterdir())
    assert len(files) == 30
    assert all(is_jpeg(f.read_bytes(), 160, 120) for f in files)
    # Each frame is a new picture (the synthetic scene numbers its frames).
    assert len({f.read_bytes() for f in files}) == 30


def test_popular_features(cam_side, tmp_path):
    link = cam_side("popular_features_as_the_remote_device.py")
    snapshot = tmp_path / "snap.jpg"
    out = run("popular_features_as_the_controller_device.py", *link, "--rounds", "2",
              "--snapshot", str(snapshot))
    for name in ("face_detection", "apriltag_detection", "qrcode_detection",
                 "datamatrix_detection", "barcode_detection", "color_detection"):
        assert out.count(name) == 2, out
    assert "no answer" not in out
    assert "id=7 rotation=" in out and "synthetic QR code" in out
    assert is_jpeg(snapshot.read_bytes(), 320, 240)
