#!/usr/bin/env python3
"""In-memory Gaussian, haloflow vs scipy.ndimage, side by side on one machine.

Makes a 256x512x512 float32 volume (or --shape), times
`scipy.ndimage.gaussian_filter(x, sigma, truncate=4)` and haloflow's in-memory
pipeline on the same data (median of --repeats runs each), checks that the two
results agree within 2e-5 of the data range, and prints a table.

    python3 scripts/compare_scipy.py [--shape 256,512,512] [--sigma 2] [--repeats 3]

Needs numpy and scipy (`pip install -r tests/golden/requirements.txt`) and cargo.
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
import scipy
import scipy.ndimage as ndi

from machine import cpu_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="256,512,512")
    ap.add_argument("--sigma", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))

    rng = np.random.default_rng(0)
    x = (50 + 90 * rng.random(shape, dtype=np.float32)).astype(np.float32)

    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--example", "time_pipeline"],
        cwd=ROOT,
        check=True,
    )
    exe = os.path.join(ROOT, "target", "release", "examples", "time_pipeline")

    scipy_s = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        ref = ndi.gaussian_filter(x, args.sigma, mode="reflect", truncate=4.0)
        scipy_s.append(time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.npy"), os.path.join(tmp, "out.npy")
        np.save(src, x)
        pipeline = {"ops": [{"op": "gaussian", "sigma": [args.sigma], "mode": "reflect", "truncate": 4.0}]}
        run = subprocess.run(
            [exe, src, dst, json.dumps(pipeline), str(args.repeats)],
            check=True,
            capture_output=True,
            text=True,
        )
        report = json.loads(run.stdout.strip().splitlines()[-1])
        got = np.load(dst)

    err = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
    tol = 2e-5 * float(np.ptp(x))
    hf = statistics.median(report["seconds"])
    sp = statistics.median(scipy_s)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; numpy {np.__version__}, scipy {scipy.__version__}")
    print(f"gaussian sigma={args.sigma} truncate=4 reflect on {'x'.join(map(str, shape))} float32, median of {args.repeats}")
    print(f"| implementation | seconds | speedup |")
    print(f"|---|---|---|")
    print(f"| scipy.ndimage.gaussian_filter (1 thread) | {sp:.3f} | 1.0x |")
    print(f"| haloflow in-memory CPU ({report['threads']} threads) | {hf:.3f} | {sp / hf:.1f}x |")
    print(f"max |haloflow - scipy| = {err:.3g} (tolerance {tol:.3g})")
    if not err <= tol:
        sys.exit("results differ beyond the tolerance")


if __name__ == "__main__":
    main()
