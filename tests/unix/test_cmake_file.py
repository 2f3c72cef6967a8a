"""mp_glue/micropython.cmake cannot be built here (no cmake-based port and no cmake among the
dependencies), so this checks what can be checked without cmake: that it compiles the same C
sources, with the same include directories and the same default Rust target, as the make
build that the virtual cam's firmware and the native modules use (micropython.mk, sources.mk),
so that a file added to one is not missing from the other."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GLUE = os.path.join(ROOT, "mp_glue")


def read(name):
    with open(os.path.join(GLUE, name)) as f:
        return f.read()


def without_comments(text):
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def make_sources():
    """The C files of sources.mk: its named files plus what its transport_*.c wildcard finds."""
    text = without_comments(read("sources.mk")).replace("\\\n", " ")
    names = set()
    for var in ("OMV_RPC_GLUE_SRC", "OMV_RPC_MUTEX_SRC"):
        value = re.search(r"^%s\s*=(.*)$" % var, text, re.M).group(1)
        names.update(re.findall(r"(?<![\w*/])(\w+\.c)\b", value))
        if "transport_*.c" in value:
            names.update(f for f in os.listdir(GLUE) if re.fullmatch(r"transport_\w+\.c", f))
    return names


def cmake_sources():
    text = without_comments(read("micropython.cmake"))
    names = set(re.findall(r"\$\{OMV_RPC_GLUE_DIR\}/(\w+\.c)", text))
    assert re.search(r"file\(GLOB OMV_RPC_TRANSPORT_SRC \$\{OMV_RPC_GLUE_DIR\}/transport_\*\.c\)", text)
    assert "${OMV_RPC_TRANSPORT_SRC}" in text.split("target_sources(usermod_omv_rpc", 1)[1].split(")", 1)[0]
    names.update(f for f in os.listdir(GLUE) if re.fullmatch(r"transport_\w+\.c", f))
    return names


def test_cmake_compiles_the_same_sources_as_make():
    make = make_sources()
    assert {"modrpc.c", "rpc_port.c", "rpc_stream.c", "modmutex.c", "transport_stream.c"} <= make, make
    assert cmake_sources() == make
    # And every .c file of the glue is in the build (none forgotten by both).
    assert {f for f in os.listdir(GLUE) if f.endswith(".c")} == make


def test_cmake_uses_the_same_include_dirs_and_rust_target():
    cmake = without_comments(read("micropython.cmake"))
    mk = without_comments(read("micropython.mk"))
    includes = cmake.split("target_include_directories(usermod_omv_rpc INTERFACE", 1)[1].split(")", 1)[0].split()
    assert includes == ["${OMV_RPC_GLUE_DIR}", "${OMV_RPC_ROOT}/include"]
    assert "CFLAGS_USERMOD += -I$(OMV_RPC_GLUE_DIR) -I$(OMV_RPC_ROOT)/include" in mk
    cmake_target = re.search(r'set\(OMV_RPC_RUST_TARGET "([\w-]+)"', cmake).group(1)
    mk_target = re.search(r"^OMV_RPC_RUST_TARGET \?= ([\w-]+)$", mk, re.M).group(1)
    assert cmake_target == mk_target == "thumbv7em-none-eabihf"
    # Both link the engine into the port's user modules.
    assert "target_link_libraries(usermod INTERFACE usermod_omv_rpc)" in cmake
    assert "LDFLAGS_USERMOD += $(OMV_RPC_RUST_OBJ)" in mk
