#!/usr/bin/env python3
"""Writes the seed corpus fuzz/corpus/<target>/ from the recorded wire vectors
(tests/vectors/rpc-wire-vectors.json). Run from the repository root; the output is committed.

decode: every packet of the five recorded calls and of the recorded stream, cut at the lengths
PROTOCOL.md gives, and the CRC check inputs. The other targets read their input as a tape of
choices (fuzz/src/lib.rs): their seeds are quiet tapes (all zeros: a peer that answers every
packet right with short lengths), short patterns, and the recorded byte streams themselves.
"""
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
V = json.load(open(os.path.join(ROOT, "tests/vectors/rpc-wire-vectors.json")))
OUT = os.path.join(ROOT, "fuzz/corpus")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def cut(stream, lengths):
    out, at = [], 0
    for n in lengths:
        out.append(stream[at:at + n])
        at += n
    assert at == len(stream), (at, len(stream))
    return out


streams = []
for i, c in enumerate(V["calls"]):
    m2s = bytes.fromhex(c["master_to_slave_hex"])
    s2m = bytes.fromhex(c["slave_to_master_hex"])
    arg = len(bytes.fromhex(c["arg_hex"]))
    res = len(bytes.fromhex(c["result_hex"]))
    for j, p in enumerate(cut(m2s, [12, arg + 4, 4, 4]) + cut(s2m, [4, 4, 8, res + 4])):
        write("decode", f"call{i}-packet{j}", p)
    streams += [m2s, s2m]
for i, c in enumerate(V["crc16"]):
    write("decode", f"crc{i}", bytes.fromhex(c["hex"]))
s = V["stream"]
r2w = bytes.fromhex(s["reader_to_writer_hex"])
w2r = bytes.fromhex(s["writer_to_reader_hex"])
write("decode", "stream-setup", r2w[:8])
at, k = 0, 0
for frame in s["frames_hex"]:
    n = len(bytes.fromhex(frame))
    write("decode", f"stream-header{k}", w2r[at:at + 8])
    at += 8 + n
    k += 1
streams += [r2w, w2r]

for target in ["master", "slave", "stream_reader", "stream_writer"]:
    write(target, "quiet-short", bytes(24))
    write(target, "quiet-long", bytes(512))
    write(target, "ones", bytes([1]) * 256)
    write(target, "split-reads", bytes([16]) + bytes(255))
    write(target, "pipeline", bytes(9) + bytes([3]) + bytes(246))
    write(target, "hostile-lengths", bytes([2, 0, 0, 5, 6, 8, 0, 0, 0]) + bytes([1, 4]) * 120)
    for i, st in enumerate(streams):
        write(target, f"recorded{i}", st)
print("corpus written to", OUT)
