# Byte-exact check of one implementation against tests/vectors/rpc-wire-vectors.json over a
# lossless in-memory link whose peer is the recorded byte stream (both roles, five calls and
# the stream). Runs in MicroPython and CPython: `vectors_check.py mod|ref VECTORS_PATH`.
# Prints one line per check; exits non-zero (AssertionError) on the first mismatch.
import sys
import json
import struct
from peer_lib import load_impl

impl_name, vectors_path = sys.argv[1], sys.argv[2]
rpc = load_impl(impl_name)
with open(vectors_path) as f:
    vectors = json.load(f)


def unhex(s):
    return bytes(int(s[i:i + 2], 16) for i in range(0, len(s), 2))


def split_call_master(stream):
    # COMMAND_HEADER(12) COMMAND_DATA(n+4) RESULT_HEADER request(4) RESULT_DATA request(4)
    n = struct.unpack_from("<I", stream, 6)[0]
    sizes = [12, n + 4, 4, 4]
    return chunks(stream, sizes)


def split_call_slave(stream):
    # acks(4, 4) RESULT_HEADER(8) RESULT_DATA(n+4)
    n = struct.unpack_from("<I", stream, 10)[0]
    return chunks(stream, [4, 4, 8, n + 4])


def chunks(stream, sizes):
    out, at = [], 0
    for s in sizes:
        out.append(stream[at:at + s])
        at += s
    assert at == len(stream), "vector stream length %d != %d" % (len(stream), at)
    return out


class Done(Exception):
    pass


class Link:
    """The side under test writes; each time its output crosses the end of one of its
    recorded packets, the recorded peer's next chunk is put in flight. Bytes in flight
    arrive when the side under test next waits (get_bytes), so a flush drops only bytes
    that had already arrived, as on a real lossless wire."""

    def __init__(self, own_sizes, peer_chunks, initial):
        self.written = bytearray()
        self.pending = bytearray()
        self.in_flight = bytearray()
        self.boundaries = []
        at = 0
        for s in own_sizes:
            at += s
            self.boundaries.append(at)
        self.peer_chunks = list(peer_chunks)
        for _ in range(initial):
            self.in_flight += self.peer_chunks.pop(0)
        self.flushed = 0

    def get(self, buff, timeout_ms):
        self.pending += self.in_flight
        self.in_flight = bytearray()
        n = len(buff)
        if len(self.pending) < n:
            return None
        buff[:] = self.pending[:n]
        self.pending = self.pending[n:]
        return buff

    def put(self, data, timeout_ms):
        self.written += bytes(data)
        while self.boundaries and len(self.written) >= self.boundaries[0]:
            self.boundaries.pop(0)
            if self.peer_chunks:
                self.in_flight += self.peer_chunks.pop(0)

    def flush(self):
        self.flushed += len(self.pending)
        self.pending = bytearray()


def link_master(link):
    class M(rpc.rpc_master):
        def get_bytes(self, buff, timeout_ms):
            return link.get(buff, timeout_ms)

        def put_bytes(self, data, timeout_ms):
            link.put(data, timeout_ms)

        def _flush(self):
            link.flush()
    return M()


def link_slave(link):
    class S(rpc.rpc_slave):
        def get_bytes(self, buff, timeout_ms):
            return link.get(buff, timeout_ms)

        def put_bytes(self, data, timeout_ms):
            link.put(data, timeout_ms)

        def _flush(self):
            link.flush()
    return S()


for v in vectors["crc16"]:
    assert rpc.crc16(unhex(v["hex"])) == v["crc"], v
print("crc16 ok", len(vectors["crc16"]))
for v in vectors["hash"]:
    assert rpc.name_hash(v["name"]) == v["hash"], v
    assert rpc.name_hash(v["name"].encode()) == v["hash"], v
print("name_hash ok", len(vectors["hash"]))

for v in vectors["calls"]:
    m2s = unhex(v["master_to_slave_hex"])
    s2m = unhex(v["slave_to_master_hex"])
    arg = unhex(v["arg_hex"])
    result = unhex(v["result_hex"])
    # The master under test against the recorded slave.
    link = Link([len(c) for c in split_call_master(m2s)], split_call_slave(s2m), 0)
    m = link_master(link)
    got = m.call(v["name"], arg)
    assert got is not None, "master %s: no result" % v["name"]
    assert bytes(got) == result, "master %s: result differs" % v["name"]
    if not result:
        assert got == b"" and isinstance(got, bytes), "master %s: empty result must be b''" % v["name"]
    else:
        assert isinstance(got, memoryview), "master %s: result must be a memoryview" % v["name"]
    assert bytes(link.written) == m2s, "master %s: bytes written differ:\n%s\n%s" % (
        v["name"], bytes(link.written), m2s)
    # The slave under test against the recorded master.
    link = Link([len(c) for c in split_call_slave(s2m)], split_call_master(m2s), 1)
    s = link_slave(link)
    seen = []
    if v["registered"]:
        # A callback is keyed by its __name__, which a MicroPython function cannot change.
        ns = {"seen": seen, "result": result}
        exec("def %s(arg):\n    seen.append(bytes(arg))\n    return result if result else None\n" % v["name"], ns)
        s.register_callback(ns[v["name"]])

    def stop():
        raise Done()
    s.setup_loop_callback(stop)
    try:
        s.loop()
    except Done:
        pass
    assert bytes(link.written) == s2m, "slave %s: bytes written differ:\n%s\n%s" % (
        v["name"], bytes(link.written), s2m)
    if v["registered"]:
        assert seen == [arg], "slave %s: callback argument differs" % v["name"]
    print("call ok", v["name"], len(arg), len(result))

st = vectors["stream"]
frames = [unhex(h) for h in st["frames_hex"]]
r2w = unhex(st["reader_to_writer_hex"])
w2r = unhex(st["writer_to_reader_hex"])
depth = st["queue_depth"]
n_acks = len(r2w) - 8

# The writer under test: the recorded reader sends STREAM_SETUP, then one ack per frame.
w_sizes = []
for fr in frames:
    w_sizes += [8, len(fr)]
reader_chunks = [r2w[:8]]
for i in range(n_acks):
    reader_chunks += [b"", r2w[8 + i:9 + i]]  # an ack after each frame (not after its header)
link = Link(w_sizes, reader_chunks, 1)
w = link_master(link)
queue = list(frames)


def produce():
    if not queue:
        raise Done()
    return queue.pop(0)


try:
    w.stream_writer(produce)
except Done:
    pass
assert bytes(link.written) == w2r, "stream writer: bytes differ"
print("stream writer ok", len(frames))

# The reader under test: the recorded writer's whole output arrives after the setup.
link = Link([8], [w2r], 0)
r = link_slave(link)
got_frames = []


def consume(frame):
    got_frames.append(bytes(frame))
    if len(got_frames) == len(frames):
        raise Done()


try:
    r.stream_reader(consume, queue_depth=depth)
except Done:
    pass
assert got_frames == frames, "stream reader: frames differ"
assert bytes(link.written) == r2w, "stream reader: bytes differ %s %s" % (bytes(link.written), r2w)
print("stream reader ok", len(frames))
print("ALL OK")
