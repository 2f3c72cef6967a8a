"""Fixtures of the bus tests: the simulator, and simulated boards (MicroPython processes)."""
import pytest

from harness import Board
from sim import Simulator


@pytest.fixture
def sim():
    simulator = Simulator().start()
    yield simulator
    simulator.stop()


@pytest.fixture
def boards():
    started = []

    def start(*args, **kwargs):
        board = Board(*args, **kwargs)
        started.append(board)
        return board

    yield start
    for board in started:
        board.kill()
        if board.proc.stdout:
            board.proc.stdout.close()
