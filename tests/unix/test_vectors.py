"""Byte-exact against tests/vectors/rpc-wire-vectors.json over a lossless in-memory link
(the five recorded calls in both roles, the stream in both directions, crc16, name_hash):
our module in the unix port, and the reference peer in the unix port and in CPython."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, VECTORS, MPY_SCRIPTS


@pytest.mark.parametrize("impl", ["mod", "ref"])
def test_vectors_unix_port(spawn, impl):
    p = spawn("vectors_check.py", impl, VECTORS)
    assert p.finish(timeout=60) == 0, (p.out, p.stderr())
    assert p.out[-1] == "ALL OK", p.out
    assert sum(line.startswith("call ok") for line in p.out) == 5


def test_vectors_ref_cpython():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "bench"), MPY_SCRIPTS]))
    p = subprocess.run([sys.executable, os.path.join(MPY_SCRIPTS, "vectors_check.py"), "ref", VECTORS],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert p.stdout.splitlines()[-1] == "ALL OK"
