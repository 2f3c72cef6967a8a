"""`make openmv-firmware` (openmv/firmware.py, mp_glue/openmv.mk) on miniature OpenMV trees of
each layout (tests/openmv/minitree.py), the engine object it links, and the manifest include
under MicroPython's own manifest tool. No OpenMV checkout is needed."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "openmv"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import firmware  # noqa: E402
import minitree  # noqa: E402

MPY_DIR = Path(os.environ.get("MPY_DIR", ROOT / "build" / "micropython"))
ENGINE_DIR = ROOT / "build" / "openmv-engine" / "thumbv7em-none-eabihf"
ENGINE_OBJ = ENGINE_DIR / "omv_rpc_engine.o"
CPU_FLAGS = ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"]


def sources():
    """The glue's C files, as mp_glue/sources.mk lists them (without .c)."""
    glue = ROOT / "mp_glue"
    script = (f"OMV_RPC_GLUE_DIR := {glue}\ninclude {glue}/sources.mk\n"
              "all:\n\t@echo $(OMV_RPC_GLUE_SRC) $(OMV_RPC_MUTEX_SRC)\n")
    out = subprocess.run(["make", "-s", "--no-print-directory", "-f", "-"], input=script,
                         capture_output=True, text=True, check=True).stdout.split()
    names = [n[:-2] for n in out]
    assert "modrpc" in names and "modmutex" in names and "transport_stream" in names
    return names


GLUE = sources()


def env():
    e = {k: v for k, v in os.environ.items()
         if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    e["MPY_REAL"] = str(MPY_DIR)
    return e


def base_of(tree):
    return tree / "src" if (tree / "src" / "Makefile").is_file() else tree


def make(tree, target="OPENMV4", *args, check=True):
    p = subprocess.run(["make", "--no-print-directory", "-C", str(base_of(tree)),
                        f"TARGET={target}", *args],
                       env=env(), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"make failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def link_line(tree, target="OPENMV4"):
    return (base_of(tree) / "build" / target / "bin" / "link.txt").read_text().split()


def submake(tree, target="OPENMV4"):
    text = (base_of(tree) / "build" / target / "lib" / "micropython" / "submake.txt").read_text()
    return dict(line.split("=", 1) for line in text.splitlines())


@pytest.fixture(params=sorted(minitree.LAYOUTS))
def tree(request, tmp_path):
    return minitree.LAYOUTS[request.param](tmp_path / request.param)


def test_layouts_detected(tmp_path):
    want = {"src": ("src/ (before 2025-04)", "src/omv/boards/OPENMV4/omv_boardconfig.mk",
                    "src/omv/ports/stm32/omv_portconfig.mk", "src/lib/omv-rpc",
                    "src/omv/omv_rpc/micropython.mk"),
            "objects": ("root, object lists (2025-04 to 2026-04)",
                        "boards/OPENMV4/omv_boardconfig.mk", "ports/stm32/omv_portconfig.mk",
                        "lib/omv-rpc", "omv_rpc/micropython.mk"),
            "lib": ("root, libmicropython.a (2026-04 on)", "boards/OPENMV4/board_config.mk",
                    "ports/stm32/port_config.mk", "lib/omv-rpc", "omv_rpc/micropython.mk")}
    for name, make_tree in minitree.LAYOUTS.items():
        layout = firmware.Layout(make_tree(tmp_path / name), "OPENMV4")
        got = (layout.era, layout.rel(layout.board_config), layout.rel(layout.port_config),
               layout.rel(layout.link), layout.rel(layout.forwarder))
        assert got == want[name], name
    with pytest.raises(firmware.ApplyError, match="not an OpenMV firmware tree"):
        firmware.Layout(tmp_path, "OPENMV4")
    with pytest.raises(firmware.ApplyError, match="no board NOPE"):
        firmware.Layout(tmp_path / "lib", "NOPE")


def test_apply_reapply_undo_byte_for_byte(tree):
    before = minitree.snapshot(tree)
    _, changed = firmware.apply(tree, "OPENMV4", quiet=True)
    assert len(changed) == 5  # link, forwarder, board config, port config, manifest
    applied = minitree.snapshot(tree)
    assert applied != before
    _, changed = firmware.apply(tree, "OPENMV4", quiet=True)
    assert changed == []
    assert minitree.snapshot(tree) == applied
    firmware.undo(tree, quiet=True)
    assert minitree.snapshot(tree) == before
    assert firmware.undo(tree, quiet=True) == []


def test_edits_are_marked_and_minimal(tree):
    layout = firmware.Layout(tree, "OPENMV4")
    originals = {p: p.read_text() for p in (layout.board_config, layout.port_config, layout.manifest)}
    firmware.apply(tree, "OPENMV4", quiet=True)
    for path, original in originals.items():
        new = path.read_text()
        # Lines are only added or commented out, and each added line follows a marker comment.
        kept = [line for line in new.splitlines() if not line.startswith(f"# {firmware.MARK}")]
        added = [line for line in kept if line not in original.splitlines()]
        assert len(added) == 1, (path, added)
    assert layout.link.is_symlink() and layout.link.resolve() == ROOT
    assert "USERMOD_DIR := $(abspath $(USERMOD_DIR)/" in layout.forwarder.read_text()


def test_stock_build_has_no_omv_rpc(tree):
    make(tree)
    line = link_line(tree)
    assert not any("omv-rpc" in w or "omv_rpc" in w for w in line), line
    assert submake(tree)["omv_rpc"] == ""


def test_build_links_engine_and_glue(tree):
    firmware.apply(tree, "OPENMV4", quiet=True)
    make(tree)
    line = link_line(tree)
    engines = [w for w in line if w.endswith("omv_rpc_engine.o")]
    assert engines == [str(ENGINE_OBJ)], line
    assert not any("libomv_rpc.a" in w for w in line)
    if (base_of(tree) / "common" / "micropy.mk").is_file() and \
            "libmicropython" in (base_of(tree) / "common" / "micropy.mk").read_text():
        archive = [w for w in line if w.endswith("libmicropython.a")]
        members = Path(archive[0]).read_text().split()
    else:
        members = line
    glue = [w for w in members if "/omv-rpc/mp_glue/" in w]
    assert sorted(Path(w).stem for w in glue) == sorted(GLUE), glue
    assert all(Path(w).is_file() for w in glue)
    sub = submake(tree)
    assert (sub["omv_rpc"], sub["cargo"]) == ("1", "0")
    assert "/omv-rpc/mp_glue" in sub["cflags_usermod"] and "/omv-rpc/include" in sub["cflags_usermod"]
    # micropython.mk names the glue's objects as py.mk does (its order-only rule uses them).
    glue_obj = sub["glue_obj"].split()
    assert glue_obj and set(glue_obj) <= set(sub["usermod_obj"].split())
    # The engine object as linked is the stripped one.
    assert sections(ENGINE_OBJ)["exidx"] == sections(ENGINE_OBJ)["note"] == 0


def test_undo_then_stock_build_again(tree):
    firmware.apply(tree, "OPENMV4", quiet=True)
    make(tree)
    firmware.undo(tree, quiet=True)
    shutil.rmtree(base_of(tree) / "build")
    make(tree)
    assert not any("omv-rpc" in w or "omv_rpc" in w for w in link_line(tree))


def test_changed_file_is_not_overwritten(tmp_path):
    tree = minitree.make_lib_tree(tmp_path / "t")
    layout = firmware.Layout(tree, "OPENMV4")
    original = layout.board_config.read_bytes()
    firmware.apply(tree, "OPENMV4", quiet=True)
    with open(layout.board_config, "a") as f:
        f.write("MICROPY_PY_FIR = 1\n")
    with pytest.raises(firmware.ApplyError, match="changed since omv-rpc edited it"):
        firmware.apply(tree, "OPENMV4", quiet=True)
    firmware.undo(tree, quiet=True)
    assert layout.board_config.read_bytes() == original


def test_unrecorded_marker_lines_refused(tmp_path):
    tree = minitree.make_lib_tree(tmp_path / "t")
    layout = firmware.Layout(tree, "OPENMV4")
    firmware.apply(tree, "OPENMV4", quiet=True)
    shutil.rmtree(tree / firmware.STATE_DIR)  # the record lost, the edits still there
    layout.link.unlink()
    layout.forwarder.unlink()
    with pytest.raises(firmware.ApplyError, match="does not record"):
        firmware.apply(tree, "OPENMV4", quiet=True)


def test_boards_rt1060_and_n6(tmp_path):
    tree = minitree.make_lib_tree(tmp_path / "t")
    before = minitree.snapshot(tree)
    for board in ("OPENMV4", "OPENMV_RT1060", "OPENMV_N6"):
        firmware.apply(tree, board, quiet=True)
    assert "mp_glue/openmv.mk" in (tree / "ports" / "mimxrt" / "port_config.mk").read_text()
    make(tree, "OPENMV_RT1060")
    assert [w for w in link_line(tree, "OPENMV_RT1060") if w.endswith("omv_rpc_engine.o")]
    target = make(tree, "OPENMV_N6", "print-OMV_RPC_RUST_TARGET").stdout.split()[-1]
    assert target == "thumbv8m.main-none-eabihf"
    assert make(tree, "OPENMV4", "print-OMV_RPC_RUST_TARGET").stdout.split()[-1] == \
        "thumbv7em-none-eabihf"
    n6 = (tree / "boards" / "OPENMV_N6" / "manifest.py").read_text()
    assert '# omv-rpc: freeze ("$(OMV_LIB_DIR)/", "rpc.py")' in n6
    firmware.undo(tree, quiet=True)
    assert minitree.snapshot(tree) == before


def test_alif_links_in_its_own_makefile_and_rp2_is_refused(tmp_path):
    tree = minitree.make_lib_tree(tmp_path / "t")
    port_config = (tree / "ports" / "alif" / "port_config.mk").read_bytes()
    layout, _ = firmware.apply(tree, "OPENMV_AE3", quiet=True)
    assert layout.rel(layout.port_config) == "ports/alif/alif.mk"
    assert (tree / "ports" / "alif" / "port_config.mk").read_bytes() == port_config
    assert layout.rust_target == "thumbv8m.main-none-eabihf"
    # Built with the Cortex-M7 engine: the Armv8-M target's core library is not installed here.
    make(tree, "OPENMV_AE3", "OMV_RPC_RUST_TARGET=thumbv7em-none-eabihf")
    engines = [w for w in link_line(tree, "OPENMV_AE3") if w.endswith("omv_rpc_engine.o")]
    assert engines == [str(ENGINE_OBJ)]
    with pytest.raises(firmware.ApplyError, match="cmake"):
        firmware.apply(tree, "RPI_PICO", quiet=True)


def test_archive_in_libs_is_refused(tmp_path):
    tree = minitree.make_lib_tree(tmp_path / "t")
    firmware.apply(tree, "OPENMV4", quiet=True)
    port_config = tree / "ports" / "stm32" / "port_config.mk"
    text = port_config.read_text().replace(
        "include $(TOP_DIR)/lib/omv-rpc/mp_glue/openmv.mk",
        "LIBS += $(TOP_DIR)/lib/omv-rpc/build/libomv_rpc.a\n"
        "include $(TOP_DIR)/lib/omv-rpc/mp_glue/openmv.mk")
    port_config.write_text(text)
    p = make(tree, check=False)
    assert p.returncode != 0
    assert "not libomv_rpc.a" in p.stderr


# The manifest, read by MicroPython's manifest tool as OpenMV's build runs it.

def manifest_tool():
    sys.path.insert(0, str(MPY_DIR / "tools"))
    import manifestfile
    return manifestfile


def frozen(tree, manifest):
    manifestfile = manifest_tool()
    layout = firmware.Layout(tree, "OPENMV4")
    m = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {
        "MPY_DIR": str(layout.micropython), "MPY_LIB_DIR": "", "PORT_DIR": "", "BOARD_DIR": "",
        "MICROPY_MANIFEST_OMV_LIB_DIR": str(tree / "scripts" / "libraries"),
        "OMV_LIB_DIR": str(tree / "scripts" / "libraries")})
    cwd = os.getcwd()
    try:
        m.execute(str(manifest))
    finally:
        os.chdir(cwd)
    return [(Path(f.full_path).resolve(), f.target_path) for f in m.files()]


def test_manifest_freezes_ours_once(tmp_path):
    tree = minitree.make_objects_tree(tmp_path / "t")
    manifest = tree / "boards" / "OPENMV4" / "manifest.py"
    stock = frozen(tree, manifest)
    assert [t for _, t in stock].count("rpc.py") == 1
    firmware.apply(tree, "OPENMV4", quiet=True)
    files = frozen(tree, manifest)
    targets = [t for _, t in files]
    for name in ("rpc.py", "mutex.py", "rpc_bus.py"):
        assert targets.count(name) == 1, targets
        (path,) = [p for p, t in files if t == name]
        assert path == ROOT / "frozen" / name
    assert "rtsp.py" in targets and "_boot.py" in targets


def test_manifest_top_dir_form_fails(tmp_path):
    # The old guide's include: OpenMV does not pass TOP_DIR to the manifest tool, and an unknown
    # $(...) stays as text, so the path is looked up literally.
    tree = minitree.make_objects_tree(tmp_path / "t")
    firmware.apply(tree, "OPENMV4", quiet=True)
    manifest = tree / "boards" / "OPENMV4" / "manifest.py"
    manifest.write_text(manifest.read_text().replace(
        firmware.MANIFEST_INCLUDE, 'include("$(TOP_DIR)/lib/omv-rpc/frozen/manifest.py")'))
    manifestfile = manifest_tool()
    with pytest.raises(manifestfile.ManifestFileError, match=r"\$\(TOP_DIR\)/lib/omv-rpc"):
        frozen(tree, manifest)


# The engine object.

def sections(obj):
    out = subprocess.run(["arm-none-eabi-readelf", "-S", "-W", str(obj)], check=True,
                         capture_output=True, text=True).stdout
    return {"exidx": len(re.findall(r"\.ARM\.(exidx|extab)", out)),
            "note": out.count(".note.GNU-stack"), "text": out.count(" .text.")}


def link(tmp_path, obj):
    """Links obj with two objects of arm-none-eabi-gcc's, which carry no .note.GNU-stack (as
    none of OpenMV's do): the linker's warnings and the image's GNU_STACK header, if any."""
    for name, code in (("main", "int f(void);\nint main(void) { return f(); }\n"),
                       ("f", "int f(void) { return 1; }\n")):
        (tmp_path / f"{name}.c").write_text(code)
        subprocess.run(["arm-none-eabi-gcc", *CPU_FLAGS, "-O2", "-c", str(tmp_path / f"{name}.c"),
                        "-o", str(tmp_path / f"{name}.o")], check=True)
    objs = [str(tmp_path / "main.o"), str(tmp_path / "f.o")] + ([str(obj)] if obj else [])
    p = subprocess.run(["arm-none-eabi-gcc", *CPU_FLAGS, "-nostdlib", "-Wl,--entry=main",
                        "-Wl,--unresolved-symbols=ignore-all", *objs, "-o", str(tmp_path / "x.elf")],
                       capture_output=True, text=True, check=True)
    phdrs = subprocess.run(["arm-none-eabi-readelf", "-l", "-W", str(tmp_path / "x.elf")],
                           capture_output=True, text=True, check=True).stdout
    return p.stderr, [line.split() for line in phdrs.splitlines() if "GNU_STACK" in line]


@pytest.fixture(scope="module")
def engine_obj():
    subprocess.run(["make", "-s", "-f", str(ROOT / "mp_glue" / "rust.mk"), f"OMV_RPC_ROOT={ROOT}",
                    "OMV_RPC_RUST_TARGET=thumbv7em-none-eabihf", f"OMV_RPC_CARGO_DIR={ENGINE_DIR}",
                    str(ENGINE_OBJ)], env=env(), check=True)
    return ENGINE_OBJ


def raw_object(tmp_path):
    """The crate's object as rustc wrote it, from the archive."""
    lib = ENGINE_DIR / "thumbv7em-none-eabihf" / "release" / "libomv_rpc.a"
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    names = subprocess.run(["ar", "t", str(lib)], capture_output=True, text=True,
                           check=True).stdout.split()
    (name,) = [n for n in names if n.startswith("omv_rpc-") and n.endswith(".o")]
    subprocess.run(["ar", "x", str(lib), name], cwd=raw_dir, check=True)
    return raw_dir / name


def test_engine_object_sections(engine_obj, tmp_path):
    s = sections(engine_obj)
    assert (s["exidx"], s["note"]) == (0, 0)
    raw = sections(raw_object(tmp_path))
    assert raw["exidx"] > 0 and raw["note"] == 1
    assert s["text"] == raw["text"] > 0  # the code itself untouched


def test_engine_object_links_like_gcc_objects(engine_obj, tmp_path):
    assert link(tmp_path, None) == ("", [])
    warnings, stack = link(tmp_path, engine_obj)
    assert (warnings, stack) == ("", []), warnings
    # The object as rustc wrote it: the warning, and an executable stack for the image.
    warnings, stack = link(tmp_path, raw_object(tmp_path))
    assert "missing .note.GNU-stack section implies executable stack" in warnings
    assert stack and stack[0][-2] == "RWE"
