"""make mip: build/mip/<arch>/package.json (MicroPython's package format, as `mpremote mip
install` and the on-board `mip` read it) beside that architecture's rpc.mpy and mutex.mpy.

    python tests/mip/make_mip.py build/mip
    mpremote mip install build/mip/armv7emsp/package.json      # from a local directory
    mpremote mip install --target /flash/lib <url>/armv7emsp/package.json

A native module only runs on its own architecture, and mip's index layout has no place for
one (it is keyed by the .mpy version alone), so there is one package.json per architecture.
Only `urls`, relative to the package.json: mip fetches the files in `hashes` from its index
(micropython.org), where these are not.
"""
import json
import os
import shutil
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# architecture -> the directory `make` builds its modules into
ARCHS = {
    "x64": "build/unix",
    "armv6m": "build/natmod-armv6m",
    "armv7m": "build/natmod-armv7m",
    "armv7emsp": "build/natmod-armv7emsp",
    "armv7emdp": "build/natmod-armv7emdp",
}
MODULES = ("rpc.mpy", "mutex.mpy")
VERSION = "1.0.0"


def build(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for arch, src in ARCHS.items():
        arch_dir = os.path.join(out_dir, arch)
        os.makedirs(arch_dir, exist_ok=True)
        for name in MODULES:
            shutil.copyfile(os.path.join(ROOT, src, name), os.path.join(arch_dir, name))
        package = {"urls": [[name, name] for name in MODULES], "version": VERSION, "deps": []}
        with open(os.path.join(arch_dir, "package.json"), "w") as f:
            json.dump(package, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    build(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "mip"))
