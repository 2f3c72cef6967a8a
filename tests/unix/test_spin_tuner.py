"""The spin tuner of the glue (mp_glue/rpc_spin.h), driven with a synthetic clock by
tests/unix/c/spin_tuner.c: it keeps spinning where spinning moves clearly more packets (an idle
machine), turns to sleeping where sleeping does at least about as well (a busy machine), backs
off its tries, takes spinning back when the machine frees up, judges nothing on a quiet link,
and two tuners on one clock try the other mode in the same epochs. Built with the host's C
compiler (the one that builds the natmod's C)."""
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def test_spin_tuner(tmp_path):
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    assert cc, "no C compiler (gcc) on PATH"
    exe = str(tmp_path / "spin_tuner")
    subprocess.run([cc, "-O1", "-Wall", "-Wextra", "-Werror", "-I", os.path.join(ROOT, "mp_glue"),
                    "-o", exe, os.path.join(HERE, "c", "spin_tuner.c")], check=True)
    run = subprocess.run([exe], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("13 checks, 0 failed"), run.stdout
