"""Both drivers of the engine, the MicroPython module (build/unix, in the unix port) and the
host package (the `rpc` CPython extension in .venv), against the facts the crate exports in
include/omv_rpc.h: the defaults each starts from, the counter names of stats(), and the
text of last_error for the same failure against the same silent peer. A driver that keeps
its own copy of a fact and lets it drift fails here."""
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MICROPYTHON = os.environ.get("MICROPYTHON", os.path.join(ROOT, ".venv", "bin", "micropython"))
HEADER = os.path.join(ROOT, "include", "omv_rpc.h")


def header():
    with open(HEADER) as f:
        return f.read()


def header_define(name):
    m = re.search(r"^#define %s\s+(\d+)u?\b" % name, header(), re.M)
    assert m, name
    return int(m.group(1))


def header_list(macro):
    """The names an X-macro of the header lists, in order."""
    text = header()
    start = text.index("#define %s(X)" % macro)
    body = []
    for line in text[start:].splitlines()[1:]:
        body.append(line)
        if not line.rstrip().endswith("\\"):
            break
    return re.findall(r"X\((\w+)\)", " ".join(body))


def expected_config(master):
    d = "OMV_RPC_DEFAULT_"
    return {
        "short_timeout_ms": header_define(d + ("MASTER" if master else "SLAVE") + "_SHORT_TIMEOUT_MS"),
        "long_timeout_ms": header_define(d + "LONG_TIMEOUT_MS"),
        "max_argument_len": header_define(d + "MAX_DATA_LEN"),
        "max_result_len": header_define(d + "MAX_DATA_LEN"),
        "max_frame_len": header_define(d + "MAX_DATA_LEN"),
        "max_queue_depth": header_define(d + "MAX_QUEUE_DEPTH"),
        "stream_timeout_ms": header_define(d + "STREAM_TIMEOUT_MS"),
    }


# The same script for both drivers: a master and a slave whose transport is a Python override
# (a silent peer: nothing ever comes, writes vanish), their config, and one call that fails.
SCRIPT = r"""
import json, sys
import rpc

class SilentMaster(rpc.rpc_master):
    def get_bytes(self, buff, timeout_ms):
        return None
    def put_bytes(self, data, timeout_ms):
        pass

class SilentSlave(rpc.rpc_slave):
    def get_bytes(self, buff, timeout_ms):
        return None
    def put_bytes(self, data, timeout_ms):
        pass

def engine_of(obj):
    return obj._engine if hasattr(obj, "_engine") else obj._session

m = SilentMaster()
s = SilentSlave()
out = {"master_config": engine_of(m).config(), "slave_config": engine_of(s).config()}
out["call"] = m.call("echo", b"hi", send_timeout=30, recv_timeout=30)
out["last_error"] = m.last_error
out["stats_names"] = sorted(engine_of(m).stats())
print(json.dumps(out))
"""


def run_module():
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "build", "unix"))
    p = subprocess.run([MICROPYTHON, "-c", SCRIPT], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_host():
    p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def both():
    return {"module": run_module(), "host": run_host()}


@pytest.mark.parametrize("driver", ["module", "host"])
def test_defaults_are_the_crates(both, driver):
    got = both[driver]
    assert got["master_config"] == expected_config(True), driver
    assert got["slave_config"] == expected_config(False), driver


@pytest.mark.parametrize("driver", ["module", "host"])
def test_stats_names_are_the_crates(both, driver):
    assert both[driver]["stats_names"] == sorted(header_list("OMV_RPC_STATS_FIELDS"))


def test_the_same_failure_reads_the_same(both):
    statuses = header_list("OMV_RPC_STATUS_NAMES")
    packets = header_list("OMV_RPC_PACKET_NAMES")
    reasons = header_list("OMV_RPC_REASON_NAMES")
    texts = {}
    for driver, got in both.items():
        assert got["call"] is None, driver
        m = re.fullmatch(r"(\w+): (\w+) (\w+) \((\d+) attempts?\)", got["last_error"])
        assert m, (driver, got["last_error"])
        status, packet, reason, attempts = m.groups()
        assert status in statuses and packet in packets and reason in reasons, got["last_error"]
        assert (int(attempts) == 1) == got["last_error"].endswith("(1 attempt)"), got["last_error"]
        # How many attempts fit in the phase depends on the machine; the rest may not differ.
        texts[driver] = (status, packet, reason)
    assert texts["module"] == texts["host"] == ("SEND_TIMEOUT", "COMMAND_HEADER", "timeout")


# The same scripted peer for both drivers: a master whose get_bytes hands out, in order, the
# bytes the reference slave sent in each recorded call (tests/vectors), and whose put_bytes
# and _flush are recorded. Both drivers must write the reference master's bytes, return the
# recorded results, and agree on every counter.
# The scripted peer's transport, the same in every script below: get_bytes hands out the
# recorded bytes in order (None once they run out), put_bytes and _flush are recorded.
PEER_METHODS = """    def script(self, peer):
        self.peer = peer
        self.at = 0
        self.written = []
        self.flushes = []
    def get_bytes(self, buff, timeout_ms):
        n = len(buff)
        if self.at + n > len(self.peer):
            return None
        buff[:] = self.peer[self.at:self.at + n]
        self.at += n
        return buff
    def put_bytes(self, data, timeout_ms):
        self.written.append(bytes(data).hex())
    def _flush(self):
        self.flushes.append(self.at)"""

SCRIPTED = r"""
import json, sys
import rpc

with open(sys.argv[-1]) as f:
    vectors = json.load(f)

class Scripted(rpc.rpc_master):
PEER_METHODS

def engine_of(obj):
    return obj._engine if hasattr(obj, "_engine") else obj._session

m = Scripted()
out = []
for c in vectors["calls"]:
    m.script(bytes.fromhex(c["slave_to_master_hex"]))
    result = m.call(c["name"], bytes.fromhex(c["arg_hex"]), send_timeout=1000, recv_timeout=1000)
    out.append({
        "name": c["name"],
        "result": None if result is None else bytes(result).hex(),
        "written": "".join(m.written),
        "flushes": m.flushes,
        "read_all": m.at == len(m.peer),
        "last_error": m.last_error,
    })
out.append({"stats": engine_of(m).stats()})
print(json.dumps(out))
""".replace("PEER_METHODS", PEER_METHODS)

VECTORS = os.path.join(ROOT, "tests", "vectors", "rpc-wire-vectors.json")


def run_scripted(cmd, env=None):
    p = subprocess.run(cmd + ["-c", SCRIPTED, VECTORS], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def scripted():
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "build", "unix"))
    return {"module": run_scripted([MICROPYTHON], env), "host": run_scripted([sys.executable])}


def test_scripted_master_writes_the_reference_bytes_in_both_drivers(scripted):
    with open(VECTORS) as f:
        calls = json.load(f)["calls"]
    for driver, got in scripted.items():
        assert len(got) == len(calls) + 1
        for c, g in zip(calls, got):
            assert g["result"] == c["result_hex"], (driver, c["name"], g["last_error"])
            assert g["written"] == c["master_to_slave_hex"], (driver, c["name"])
            assert g["read_all"], (driver, c["name"])
        assert got[-1]["stats"]["calls_ok"] == len(calls), driver


def test_scripted_master_behaves_the_same_in_both_drivers(scripted):
    assert scripted["module"] == scripted["host"]


# The same scripted writer for both drivers' stream readers: the recorded stream (six frames,
# queue depth 4). A reader callback that returns False stops the stream before that frame's
# ack (the host package's documented rule, now the module's too); None goes on (the reference
# ignores the return value).
SCRIPTED_READER = r"""
import json, sys
import rpc

with open(sys.argv[-1]) as f:
    stream = json.load(f)["stream"]

class Scripted(rpc.rpc_slave):
PEER_METHODS

s = Scripted()
out = {}
for stop_after in (3, None):
    s.script(bytes.fromhex(stream["writer_to_reader_hex"]))
    frames = []
    def cb(frame):
        frames.append(bytes(frame).hex())
        if stop_after is not None and len(frames) == stop_after:
            return False
    s.stream_reader(cb, queue_depth=stream["queue_depth"], read_timeout_ms=100)
    out[str(stop_after)] = {"frames": frames, "written": "".join(s.written)}
print(json.dumps(out))
""".replace("PEER_METHODS", PEER_METHODS)


def test_a_stream_reader_callback_returning_false_stops_the_stream_in_both_drivers():
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "build", "unix"))
    got = {}
    for driver, cmd, e in (("module", [MICROPYTHON], env), ("host", [sys.executable], None)):
        p = subprocess.run(cmd + ["-c", SCRIPTED_READER, VECTORS], capture_output=True, text=True,
                           timeout=120, env=e)
        assert p.returncode == 0, (driver, p.stderr)
        got[driver] = json.loads(p.stdout.strip().splitlines()[-1])
    with open(VECTORS) as f:
        stream = json.load(f)["stream"]
    for driver, runs in got.items():
        assert runs["None"]["frames"] == stream["frames_hex"], driver
        # The recording ends before the last frame's ack; ours sends it.
        assert runs["None"]["written"].startswith(stream["reader_to_writer_hex"]), driver
        assert runs["3"]["frames"] == stream["frames_hex"][:3], driver
        # STREAM_SETUP and the acks of the first two frames only.
        assert runs["3"]["written"] == stream["reader_to_writer_hex"][:2 * (8 + 2)], driver
    assert got["module"] == got["host"]
