"""The virtual cam with Protocol V2 on UART4 (build/qemu-proto/firmware.elf, make qemu-proto)
and the official `openmv` package connected to it. Run with the Python 3.12 venv that has the
package (make protocol-cam-test)."""
import os
import random
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "qemu"))

from vcam import VirtualCam  # noqa: E402

FIRMWARE = os.path.join(REPO, "build", "qemu-proto", "firmware.elf")
# UART0 the REPL, UART4 Protocol V2.
SERIAL = ["pty", "null", "null", "null", "pty"]


def cam_script(name):
    with open(os.path.join(HERE, "cam", name)) as f:
        return f.read()


def connect(port, **kw):
    import openmv

    kw.setdefault("timeout", 1.0)
    cam = openmv.Camera(port, **kw)
    cam.connect()
    return cam


def wait_for(predicate, timeout=20.0, pause=0.05):
    """Polls predicate() until it returns something true; returns that (None on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(pause)
    return None


@pytest.fixture(scope="module")
def vcam():
    cam = VirtualCam(firmware=FIRMWARE, serial=SERIAL).start()
    try:
        yield cam
    finally:
        cam.kill()


@pytest.fixture(scope="module")
def camera(vcam):
    random.seed(14)
    # 3 s: a machine shared with other builds can hold an answer back past the package's 1 s.
    c = connect(vcam.uart_paths[4], timeout=3.0)
    yield c
    c.disconnect()


class Stdout:
    """What the cam printed, accumulated across read_stdout() calls."""

    def __init__(self, camera):
        self.camera = camera
        self.text = ""

    def read(self):
        self.text += self.camera.read_stdout() or ""
        return self.text

    def wait_for(self, marker, timeout=30.0):
        return wait_for(lambda: marker in self.read() and self.text, timeout)


def has_channel(camera, name):
    """Whether the cam has registered `name`: a CHANNEL_POLL first, so that the package
    takes the CHANNEL_REGISTERED events that came (it reads events only with an answer)."""
    camera.read_status()
    return camera.has_channel(name)
