#!/usr/bin/env python3
"""In-memory median filters, haloflow vs scipy.ndimage, side by side on one machine.

Makes a 256x512x512 uint16 volume (or --shape; normal, mean 1000, sd 200, seed 0),
times `scipy.ndimage.median_filter(x, size)` (one thread: scipy has no other) and
haloflow's in-memory pipeline on every core (`examples/gpu_time --device cpu`) for
sizes 3 and 5, checks that the results are equal bit for bit, and prints a table.
scipy's 5x5x5 median takes minutes on the full volume: it runs once.

    python3 scripts/compare_rank.py [--shape 256,512,512] [--repeats 3]
                                    [--markdown BENCHMARKS.md]

With --markdown FILE the table also replaces the `compare_rank` section of FILE.
Needs numpy and scipy (`pip install -r scripts/requirements.txt`) and cargo.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.ndimage as ndi

from machine import machine_line, versions, write_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="256,512,512")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--markdown", help="replace the compare_rank section of this Markdown file with the table")
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    rng = np.random.default_rng(0)
    x = rng.normal(1000, 200, shape).clip(0, 65535).astype(np.uint16)

    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "gpu_time"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "examples", "gpu_time")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.npy"), os.path.join(tmp, "out.npy")
        np.save(src, x)
        for size in (3, 5):
            scipy_s = []
            for _ in range(args.repeats if size == 3 else 1):
                t = time.perf_counter()
                ref = ndi.median_filter(x, size)
                scipy_s.append(time.perf_counter() - t)
            pipeline = {"ops": [{"op": "median", "size": [size]}]}
            run = subprocess.run(
                [exe, src, "--pipeline", json.dumps(pipeline), "--device", "cpu", "--runs", str(args.repeats),
                 "--out", dst],
                check=True, capture_output=True, text=True)
            report = json.loads(run.stdout.strip().splitlines()[-1])
            hf = statistics.median(r["wall_s"] for r in report["runs"])
            if not np.array_equal(np.load(dst), ref):
                sys.exit(f"median {size}: haloflow differs from scipy")
            rows.append((size, statistics.median(scipy_s), len(scipy_s), hf, report["threads"]))

    lines = [
        f"Machine: {machine_line()}. Versions: {versions(('numpy', 'scipy'))}.",
        "",
        f"Command: `scripts/compare` (`python3 scripts/compare_rank.py --repeats {args.repeats}`): "
        f"`scipy.ndimage.median_filter(x, size)` (reflect) on a {'×'.join(map(str, shape))} uint16 volume "
        "(normal, mean 1000, sd 200), against haloflow's in-memory pipeline on the CPU backend "
        "(`examples/gpu_time --device cpu`, after one warm-up run); median of the runs. "
        "Both results are equal bit for bit.",
        "",
        "| filter | scipy s (1 thread) | haloflow s | threads | speedup over scipy |",
        "|---|---|---|---|---|",
    ]
    for size, sp, n, hf, threads in rows:
        note = "" if n > 1 else " (1 run)"
        lines.append(f"| median {size}×{size}×{size} | {sp:.2f}{note} | {hf:.3f} | {threads} | {sp / hf:.0f}× |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        write_section(args.markdown, "compare_rank", text)


if __name__ == "__main__":
    main()
