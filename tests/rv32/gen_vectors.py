"""Writes the recorded wire vectors (tests/vectors/rpc-wire-vectors.json) as Rust constants
for the rv32 program: python gen_vectors.py OUT.rs [--corrupt]
(--corrupt flips one byte of the first call's recorded slave bytes: the program must fail)."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "vectors", "rpc-wire-vectors.json")


def arr(data):
    return "&[" + ",".join(str(b) for b in data) + "]"


def main(out, corrupt=False):
    with open(VECTORS) as f:
        v = json.load(f)
    if corrupt:
        s2m = bytearray(bytes.fromhex(v["calls"][0]["slave_to_master_hex"]))
        s2m[len(s2m) // 2] ^= 0x01
        v["calls"][0]["slave_to_master_hex"] = s2m.hex()
    lines = ["pub const CRC: &[(&[u8], u16)] = &["]
    lines += ["    (%s, %d)," % (arr(bytes.fromhex(c["hex"])), c["crc"]) for c in v["crc16"]]
    lines += ["];", "pub const HASH: &[(&[u8], u32)] = &["]
    lines += ["    (%s, %d)," % (arr(h["name"].encode()), h["hash"]) for h in v["hash"]]
    lines += ["];", "pub const CALLS: &[Call] = &["]
    for c in v["calls"]:
        lines.append("    Call { name: %s, arg: %s, registered: %s, result: %s, m2s: %s, s2m: %s }," % (
            arr(c["name"].encode()), arr(bytes.fromhex(c["arg_hex"])), "true" if c["registered"] else "false",
            arr(bytes.fromhex(c["result_hex"])), arr(bytes.fromhex(c["master_to_slave_hex"])),
            arr(bytes.fromhex(c["slave_to_master_hex"]))))
    lines.append("];")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], "--corrupt" in sys.argv[2:])
