#!/usr/bin/env python3
"""Runs the libFuzzer targets one after the other, each for --seconds, from a working copy of
the committed corpus (build/fuzz/corpus/<target>, kept between runs so coverage builds up),
and prints per target: inputs tried, rate, coverage (libFuzzer's cov/ft), crashes, hangs
(libFuzzer timeouts, -timeout=10 s per input), out-of-memory; then the totals.

    python3 fuzz/run_fuzz.py --seconds 60 --bin-dir target/fuzz/<host>/release decode master

Artifacts land in build/fuzz/artifacts/<target>/. A crash stops that target (libFuzzer's
rule); the script goes on with the next one and exits 1 at the end if any target found one.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("targets", nargs="+")
    a = ap.parse_args()
    totals = {"runs": 0, "crashes": 0, "hangs": 0, "ooms": 0}
    rows = []
    for t in a.targets:
        work = os.path.join(ROOT, "build/fuzz/corpus", t)
        arts = os.path.join(ROOT, "build/fuzz/artifacts", t)
        os.makedirs(work, exist_ok=True)
        os.makedirs(arts, exist_ok=True)
        for d in ("fuzz/corpus", "fuzz/regressions"):
            src = os.path.join(ROOT, d, t)
            if os.path.isdir(src):
                for f in os.listdir(src):
                    shutil.copy(os.path.join(src, f), os.path.join(work, f))
        before = set(os.listdir(arts))
        cmd = [
            os.path.join(a.bin_dir, t), work,
            f"-max_total_time={a.seconds}", f"-seed={a.seed}", "-max_len=4096", "-timeout=10",
            "-rss_limit_mb=2048", "-print_final_stats=1", f"-artifact_prefix={arts}/",
        ]
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        wall = time.monotonic() - t0
        out = p.stdout
        with open(os.path.join(ROOT, "build/fuzz", f"{t}.log"), "w") as f:
            f.write(out)
        m = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
        runs = int(m.group(1)) if m else 0
        covs = re.findall(r"cov: (\d+) ft: (\d+)", out)
        cov, ft = covs[-1] if covs else ("?", "?")
        new = sorted(set(os.listdir(arts)) - before)
        crashes = [f for f in new if f.startswith("crash-")]
        hangs = [f for f in new if f.startswith("timeout-")]
        ooms = [f for f in new if f.startswith("oom-")]
        corpus = len(os.listdir(work))
        rows.append((t, runs, wall, cov, ft, corpus, len(crashes), len(hangs), len(ooms)))
        totals["runs"] += runs
        totals["crashes"] += len(crashes)
        totals["hangs"] += len(hangs)
        totals["ooms"] += len(ooms)
        line = (f"fuzz {t}: {runs} inputs in {wall:.0f} s ({runs / max(wall, 1e-9):.0f}/s), "
                f"cov {cov} ft {ft}, corpus {corpus}, crashes {len(crashes)}, hangs {len(hangs)}, "
                f"oom {len(ooms)}, exit {p.returncode}")
        print(line, flush=True)
        for f in crashes + hangs + ooms:
            print(f"  artifact: build/fuzz/artifacts/{t}/{f}  (replay: {cmd[0]} build/fuzz/artifacts/{t}/{f})")
        if p.returncode != 0 and not (crashes or hangs or ooms):
            print(out[-3000:])
            totals["crashes"] += 1
    print(f"fuzz total: {totals['runs']} inputs across {len(rows)} targets, "
          f"{totals['crashes']} crashes, {totals['hangs']} hangs, {totals['ooms']} out-of-memory")
    sys.exit(1 if totals["crashes"] or totals["hangs"] or totals["ooms"] else 0)


if __name__ == "__main__":
    main()
