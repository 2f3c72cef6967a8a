#!/usr/bin/env python3
"""Builds an OpenMV firmware image with omv-rpc in it, from a user's OpenMV checkout.

    firmware.py apply  --openmv DIR --target OPENMV4   edit the tree (marked, undoable)
    firmware.py undo   --openmv DIR                    restore the tree byte for byte
    firmware.py status --openmv DIR --target OPENMV4   the layout found and what is applied
    firmware.py build  --openmv DIR --target OPENMV4 [--make-args "..."] [--no-stock]
        builds the tree as it is (the stock image), applies, builds again, prints both sizes

The edits are those of docs/openmv-firmware.md, for the layout the tree has:
  - a link <micropython>/../omv-rpc to this repository (unless a checkout is already there),
  - a forwarder <user C modules>/omv_rpc/micropython.mk that includes mp_glue/micropython.mk,
  - `MICROPY_PY_OMV_RPC = 1` at the end of the board's config,
  - `include $(TOP_DIR)/lib/omv-rpc/mp_glue/openmv.mk` at the end of the port's config,
  - in the board's manifest, OpenMV's rpc.py/mutex.py freezes commented out and ours included.
Originals are kept in <tree>/.omv-rpc/ until `undo`. OpenMV's own source is never committed
anywhere by this: the tree stays the user's.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

OMV_RPC_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ".omv-rpc"
MARK = "omv-rpc"
LINK_NAME = "omv-rpc"
FORWARDER_DIR = "omv_rpc"
MANIFEST_INCLUDE = 'include("$(MPY_DIR)/../omv-rpc/frozen/manifest.py")'
FREEZE_RE = re.compile(r"""^\s*freeze\s*\(.*["'](rpc|mutex)\.py["']\s*\)\s*$""")


class ApplyError(Exception):
    pass


class Layout:
    """Where the files the guide edits are in one OpenMV tree, for one board."""

    def __init__(self, root, target):
        self.root = Path(root).resolve()
        self.target = target
        if (self.root / "src" / "Makefile").is_file() and (self.root / "src" / "omv").is_dir():
            # Before the 2025-04 restructure: everything under src/, modules under src/omv.
            self.base = self.root / "src"
            self.modules = self.base / "omv"
            self.era = "src/ (before 2025-04)"
        elif (self.root / "Makefile").is_file() and (self.root / "boards").is_dir():
            self.base = self.root
            self.modules = self.root
            self.era = None
        else:
            raise ApplyError(f"{self.root}: not an OpenMV firmware tree (no Makefile and boards/, "
                             "nor src/Makefile and src/omv/)")
        boards = self.modules / "boards"
        self.board_dir = boards / target
        if not self.board_dir.is_dir():
            known = sorted(p.name for p in boards.iterdir() if p.is_dir())
            raise ApplyError(f"no board {target} in {boards} (boards: {', '.join(known)})")
        self.board_config = first_file(self.board_dir, "board_config.mk", "omv_boardconfig.mk")
        self.manifest = self.board_dir / "manifest.py"
        if not self.manifest.is_file():
            raise ApplyError(f"{self.manifest}: missing")
        config = self.board_config.read_text()
        self.port = make_value(config, "PORT")
        self.cpu = make_value(config, "CPU")
        if not self.port:
            raise ApplyError(f"{self.board_config}: no PORT=")
        port_dir = self.modules / "ports" / self.port
        if self.port == "rp2":
            raise ApplyError(f"{target}: the rp2 port builds through MicroPython's cmake "
                             "(port_config.cmake); this command does make-based ports only")
        self.port_config = first_file(port_dir, "port_config.mk", "omv_portconfig.mk")
        # The Alif port's config only runs a make per core; the image is linked in <port>.mk.
        own = port_dir / f"{self.port}.mk"
        if own.is_file() and "micropy.mk" in own.read_text():
            self.port_config = own
        self.micropython = self.base / "lib" / "micropython"
        if not (self.micropython / "py" / "py.mk").is_file():
            raise ApplyError(f"{self.micropython}: no MicroPython (git submodule update --init)")
        micropy_mk = self.base / "common" / "micropy.mk"
        rules = self.port_config.read_text()
        if micropy_mk.is_file():
            rules += micropy_mk.read_text()
        self.libmicropython = "libmicropython.a" in rules
        if self.era is None:
            self.era = ("root, libmicropython.a (2026-04 on)" if self.libmicropython
                        else "root, object lists (2025-04 to 2026-04)")
        self.link = self.micropython.parent / LINK_NAME
        self.forwarder = self.modules / FORWARDER_DIR / "micropython.mk"
        self.rust_target = ("thumbv8m.main-none-eabihf" if self.cpu in ("cortex-m55", "cortex-m85")
                            else "thumbv7em-none-eabihf")

    def rel(self, path):
        return str(Path(path).relative_to(self.root))

    def describe(self):
        return "\n".join([
            f"tree:         {self.root}",
            f"layout:       {self.era}",
            f"board:        {self.target} (PORT={self.port}, CPU={self.cpu}, engine {self.rust_target})",
            f"board config: {self.rel(self.board_config)}",
            f"port config:  {self.rel(self.port_config)}",
            f"manifest:     {self.rel(self.manifest)}",
            f"omv-rpc at:   {self.rel(self.link)}",
            f"forwarder:    {self.rel(self.forwarder)}",
        ])


def first_file(directory, *names):
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise ApplyError(f"{directory}: none of {', '.join(names)}")


def make_value(text, name):
    m = re.search(rf"^\s*{name}\s*[:?]?=\s*(\S+)", text, re.M)
    return m.group(1) if m else None


# The edits, each a pure function of the original text.

def edit_board_config(text):
    return ensure_newline(text) + f"# {MARK}: build the rpc module in (make openmv-firmware-undo removes this)\n" \
        "MICROPY_PY_OMV_RPC = 1\n"


def edit_port_config(text):
    return ensure_newline(text) + f"# {MARK}: its engine, link inputs and sub-make flags " \
        "(make openmv-firmware-undo removes this)\n" \
        "include $(TOP_DIR)/lib/omv-rpc/mp_glue/openmv.mk\n"


def edit_manifest(text):
    lines = []
    for line in ensure_newline(text).splitlines(keepends=True):
        lines.append(f"# {MARK}: {line}" if FREEZE_RE.match(line) else line)
    lines.append(f"# {MARK}: rpc.py, rpc_bus.py and mutex.py from omv-rpc instead of OpenMV's\n")
    lines.append(MANIFEST_INCLUDE + "\n")
    return "".join(lines)


def forwarder_text(layout):
    rel = os.path.relpath(layout.link / "mp_glue", layout.forwarder.parent)
    return (f"# {MARK}'s glue as a user C module (added by make openmv-firmware; "
            "make openmv-firmware-undo removes it).\n"
            "# USERMOD_DIR names mp_glue itself: the glue finds its sources and include/ from it.\n"
            f"USERMOD_DIR := $(abspath $(USERMOD_DIR)/{rel})\n"
            "include $(USERMOD_DIR)/micropython.mk\n")


def ensure_newline(text):
    return text if not text or text.endswith("\n") else text + "\n"


class State:
    """The record of what apply changed, in <tree>/.omv-rpc/."""

    def __init__(self, root):
        self.dir = Path(root) / STATE_DIR
        self.file = self.dir / "state.json"
        self.entries = json.loads(self.file.read_text())["entries"] if self.file.is_file() else {}

    def save(self):
        self.dir.mkdir(exist_ok=True)
        self.file.write_text(json.dumps({"entries": self.entries}, indent=1, sort_keys=True) + "\n")

    def backup_path(self, rel):
        return self.dir / "orig" / rel


def apply(root, target, quiet=False):
    layout = Layout(root, target)
    state = State(layout.root)
    changed = []

    # 1. omv-rpc itself, where the manifest and the include lines expect it.
    link_rel = layout.rel(layout.link)
    if os.path.lexists(layout.link):
        if not (layout.link / "mp_glue" / "openmv.mk").is_file():
            raise ApplyError(f"{layout.link} exists and is not omv-rpc (no mp_glue/openmv.mk)")
    else:
        os.symlink(OMV_RPC_ROOT, layout.link)
        state.entries[link_rel] = {"action": "symlink"}
        changed.append(link_rel)

    # 2. The forwarder: a new file.
    fwd_rel = layout.rel(layout.forwarder)
    want = forwarder_text(layout)
    if layout.forwarder.is_file():
        if layout.forwarder.read_text() != want:
            raise ApplyError(f"{layout.forwarder} exists with other content")
    else:
        made_dir = not layout.forwarder.parent.exists()
        layout.forwarder.parent.mkdir(parents=True, exist_ok=True)
        layout.forwarder.write_text(want)
        state.entries[fwd_rel] = {"action": "created", "dir": made_dir}
        changed.append(fwd_rel)

    # 3. Edits of existing files, each computed from the original.
    for path, edit in ((layout.board_config, edit_board_config),
                       (layout.port_config, edit_port_config),
                       (layout.manifest, edit_manifest)):
        rel = layout.rel(path)
        current = path.read_bytes()
        if path == layout.manifest:
            manifest_original = (state.backup_path(rel).read_text() if rel in state.entries
                                 else current.decode())
        if rel in state.entries:
            original = state.backup_path(rel).read_bytes()
        else:
            original = current
        new = edit(original.decode()).encode()
        if current == new:
            continue
        if rel in state.entries:
            raise ApplyError(f"{rel} changed since omv-rpc edited it: run make openmv-firmware-undo "
                             "(it restores the original) and apply again")
        if MARK.encode() + b":" in original:
            raise ApplyError(f"{rel} already has {MARK} lines that this tree's state does not "
                             "record: remove them by hand first")
        backup = state.backup_path(rel)
        backup.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, backup)
        state.entries[rel] = {"action": "edited", "sha256": hashlib.sha256(new).hexdigest()}
        state.save()  # the backup is recorded before the file changes
        path.write_bytes(new)
        changed.append(rel)

    if changed:
        state.save()
    if not quiet:
        print(layout.describe())
        print("applied: " + (", ".join(changed) if changed else "nothing to do (already applied)"))
        if not any(FREEZE_RE.match(line) for line in manifest_original.splitlines()):
            print(f"note: {layout.rel(layout.manifest)} froze no rpc.py/mutex.py of OpenMV's")
    return layout, changed


def undo(root, quiet=False):
    root = Path(root).resolve()
    state = State(root)
    if not state.file.is_file():
        if not quiet:
            print(f"{root}: nothing applied")
        return []
    restored = []
    for rel, entry in sorted(state.entries.items(), reverse=True):
        path = root / rel
        if entry["action"] == "edited":
            if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
                print(f"note: {rel} was changed after omv-rpc edited it; the original is restored")
            shutil.copy2(state.backup_path(rel), path)
        elif entry["action"] == "created":
            if path.exists():
                path.unlink()
            if entry.get("dir") and path.parent.is_dir() and not any(path.parent.iterdir()):
                path.parent.rmdir()
        elif entry["action"] == "symlink":
            if path.is_symlink():
                path.unlink()
        restored.append(rel)
    shutil.rmtree(state.dir)
    if not quiet:
        print("restored: " + ", ".join(sorted(restored)))
    return restored


def status(root, target):
    layout = Layout(root, target)
    state = State(layout.root)
    print(layout.describe())
    print("applied: " + (", ".join(sorted(state.entries)) if state.entries else "nothing"))


# Building.

def clean_env():
    """The environment for OpenMV's make: none of our own make's flags or variables."""
    env = dict(os.environ)
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GNUMAKEFLAGS"):
        env.pop(name, None)
    return env


def run_logged(cmd, log, cwd=None, env=None):
    print("+ " + " ".join(str(c) for c in cmd), flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        rc = subprocess.call(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT)
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        print("\n".join(tail))
        raise ApplyError(f"failed (exit {rc}); the whole log: {log}")
    return log.read_text(errors="replace")


def elf_size(elf):
    out = subprocess.run(["arm-none-eabi-size", "-B", str(elf)], check=True,
                         capture_output=True, text=True).stdout.splitlines()[1].split()
    text, data, bss = (int(v) for v in out[:3])
    return {"text": text, "data": data, "bss": bss, "flash": text + data}


def frozen_names(build):
    """Names of the frozen modules in a MicroPython build (its frozen_content.c)."""
    path = Path(build) / "lib" / "micropython" / "frozen_content.c"
    if not path.is_file():
        return None
    text = path.read_text(errors="replace")
    m = re.search(r"mp_frozen_names\[\]\s*=\s*\{(.*?)\};", text, re.S)
    if not m:
        return None
    return re.findall(r'"([^"\\]+)\\0"', m.group(1))


def map_sizes(map_file):
    """Bytes each part puts in the image's flash (code, constants, initialised data), from the
    linker map: the engine object, the glue's objects, the frozen Python."""
    parts = {"engine": 0, "glue": 0, "frozen": 0}
    if not Path(map_file).is_file():
        return None
    text = Path(map_file).read_text(errors="replace")
    body = text[text.find("Linker script and memory map"):]
    section = None
    for line in body.splitlines():
        m = re.match(r"^ (\.\S+)(?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+))?\s*$", line)
        if m:
            section = m.group(1)
            if not m.group(2):
                continue
            addr, size, obj = m.group(2), m.group(3), m.group(4)
        else:
            m = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+\.o)\s*$", line)
            if not m or section is None:
                continue
            addr, size, obj = m.groups()
        if int(addr, 16) < 0x08000000 or section.startswith((".bss", "COMMON", ".debug")):
            continue  # not in flash (.data, listed at its RAM address, is left out)
        key = ("engine" if obj.endswith("omv_rpc_engine.o") else
               "glue" if "/omv-rpc/mp_glue/" in obj else
               "frozen" if obj.endswith("frozen_content.o") else None)
        if key:
            parts[key] += int(size, 16)
    return parts


def link_warnings(log_text):
    return [line for line in log_text.splitlines()
            if "warning:" in line and ("ld:" in line or "ld.bfd" in line or "/ld" in line)]


def build(root, target, make_args, stock=True, jobs=2, out=None):
    layout = Layout(root, target)
    out = Path(out or OMV_RPC_ROOT / "build" / "openmv" / target)
    env = clean_env()
    mpy_cross = layout.micropython / "mpy-cross" / "build" / "mpy-cross"
    if not mpy_cross.exists():
        # OpenMV's make exports its Cortex-M CFLAGS, so mpy-cross is built on its own first.
        run_logged(["make", "-C", str(layout.micropython / "mpy-cross"), f"-j{jobs}"],
                   out / "mpy-cross.log", env=env)
    firmware = {}
    variants = (["stock"] if stock else []) + ["omv-rpc"]
    for variant in variants:
        if variant == "stock":
            undo(layout.root, quiet=True)
        else:
            apply(layout.root, target)
        build_dir = out / variant
        cmd = ["make", "-C", str(layout.base), f"-j{jobs}", f"TARGET={target}",
               f"BUILD={build_dir}"] + make_args
        try:
            log = run_logged(cmd, out / f"{variant}.log", env=env)
        except ApplyError:
            if layout.libmicropython:
                raise
            # These trees list MicroPython's objects with $(wildcard) before MicroPython is
            # built, and make's directory cache keeps the lists short in the same run: a build
            # from scratch links at the second run.
            print("(first build in this directory: OpenMV's make links at its second run)")
            log = run_logged(cmd, out / f"{variant}-2.log", env=env)
        elf = build_dir / "bin" / "firmware.elf"
        if not elf.is_file():
            raise ApplyError(f"{elf}: not built")
        firmware[variant] = {"size": elf_size(elf), "warnings": link_warnings(log),
                             "frozen": frozen_names(build_dir), "elf": elf,
                             "parts": map_sizes(build_dir / "firmware.map")}
    report(layout, firmware)
    return firmware


def report(layout, firmware):
    print()
    print(f"{layout.target} ({layout.era}): {layout.root}")
    rows = [("", "flash (text+data)", "text", "data", "bss")]
    for name, fw in firmware.items():
        s = fw["size"]
        rows.append((name, f"{s['flash']:,}", f"{s['text']:,}", f"{s['data']:,}", f"{s['bss']:,}"))
    if "stock" in firmware:
        a, b = firmware["stock"]["size"], firmware["omv-rpc"]["size"]
        rows.append(("difference", *(f"{b[k] - a[k]:+,}" for k in ("flash", "text", "data", "bss"))))
    for row in rows:
        print(f"  {row[0]:<11}" + "".join(f"{c:>19}" for c in row[1:]))
    ours = firmware["omv-rpc"]
    print(f"  image: {ours['elf']}")
    frozen = ours["frozen"]
    if frozen is not None:
        counts = {name: frozen.count(name) for name in ("rpc.py", "mutex.py", "rpc_bus.py")}
        print("  frozen: " + ", ".join(f"{n} x{c}" for n, c in counts.items()))
    for name, fw in firmware.items():
        if fw["parts"]:
            print(f"  in flash ({name}): " + ", ".join(f"{k} {v:,} B" for k, v in fw["parts"].items()))
    for name, fw in firmware.items():
        print(f"  linker warnings ({name}): {len(fw['warnings'])}")
        for w in fw["warnings"]:
            print("    " + w)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["apply", "undo", "status", "build"])
    ap.add_argument("--openmv", required=True, help="the OpenMV firmware checkout")
    ap.add_argument("--target", default="OPENMV4")
    ap.add_argument("--make-args", default="", help="more arguments for OpenMV's make")
    ap.add_argument("--no-stock", action="store_true", help="do not build the stock image")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    try:
        if args.command == "apply":
            apply(args.openmv, args.target)
        elif args.command == "undo":
            undo(args.openmv)
        elif args.command == "status":
            status(args.openmv, args.target)
        else:
            build(args.openmv, args.target, args.make_args.split(), stock=not args.no_stock,
                  jobs=args.jobs)
    except ApplyError as e:
        print(f"openmv-firmware: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
