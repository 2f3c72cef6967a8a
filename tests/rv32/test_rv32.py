"""The engine on rv32imc (the ESP32-C3's architecture), bare metal on qemu-system-riscv32
-M virt: the recorded wire vectors replayed through it (src/main.rs). Not the native module:
the pinned MicroPython v1.23 core's dynruntime.mk and mpy_ld.py have no RISC-V architecture
(no rv32imc relocations), so there is no rv32imc rpc.mpy to load (README)."""
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build", "rv32")
TARGET = "riscv32imc-unknown-none-elf"


def build_and_run(vectors_name, corrupt=False):
    os.makedirs(BUILD, exist_ok=True)
    vectors = os.path.join(BUILD, vectors_name)
    target_dir = os.path.join(BUILD, "target-" + vectors_name.split(".")[0])
    subprocess.run(["python3", os.path.join(HERE, "gen_vectors.py"), vectors] + (["--corrupt"] if corrupt else []),
                   check=True)
    env = dict(os.environ, OMV_RV32_VECTORS=vectors, RUSTFLAGS="-C link-arg=-T" + os.path.join(HERE, "link.x"))
    subprocess.run(["cargo", "build", "-j2", "--locked", "--quiet", "--release", "--target", TARGET,
                    "--target-dir", target_dir], cwd=HERE, env=env, check=True)
    elf = os.path.join(target_dir, TARGET, "release", "omv_rpc_rv32")
    out = subprocess.run(["qemu-system-riscv32", "-M", "virt", "-bios", "none", "-display", "none",
                          "-monitor", "none", "-serial", "stdio", "-kernel", elf],
                         capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout


def test_vectors_on_rv32imc():
    rc, out = build_and_run("vectors.rs")
    assert "rv32imc engine: crc 6/6, name hash 8/8, calls replayed as master and slave 5/5" in out
    assert rc == 0


def test_a_wrong_byte_fails_on_rv32imc():
    rc, out = build_and_run("vectors-corrupt.rs", corrupt=True)
    assert "calls replayed as master and slave 4/5" in out
    assert rc == 1
