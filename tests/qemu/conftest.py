import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from vcam import FIRMWARE, VirtualCam  # noqa: E402


@pytest.fixture(scope="session")
def booted_cam():
    if not os.path.exists(FIRMWARE):
        pytest.fail("no firmware at %s: run `make qemu` first" % FIRMWARE)
    cam = VirtualCam().start()
    yield cam
    cam.close()


@pytest.fixture
def cam(booted_cam):
    """The virtual cam, soft-reset before each test (fresh heap, UARTs 1-4 closed)."""
    booted_cam.soft_reset()
    return booted_cam
