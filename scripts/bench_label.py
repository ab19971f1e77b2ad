#!/usr/bin/env python3
"""Connected-component labelling in memory: ``haloflow.label`` against
``scipy.ndimage.label`` on the same mask and structure, from Python.

    .venv/bin/python scripts/bench_label.py [--repeats 5] [--shape3 256,512,512] [--shape2 8192,8192]

Cases: random masks (each voxel set with the given probability, the hardest case for
run-based labelling: runs of one or two voxels) at 10 %, 30 % and 60 %, in 3-D with
connectivity 1 and 3 and in 2-D with connectivity 1 and 2, and blobs (smoothed noise
thresholded, what a real threshold gives). Each case runs scipy and haloflow in turn
``--repeats`` times (alternating, so a noisy minute hits both); the table gives the
medians and the range of the per-repeat speed-ups. Every output is checked equal to
scipy's, numbering included. Prints a Markdown table.
"""
import argparse
import os
import sys
import time

import numpy as np
from scipy import ndimage

import haloflow

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402


def cases(shape3, shape2):
    rng = np.random.default_rng(0)
    for name, shape, conns in (("3-D", shape3, (1, 3)), ("2-D", shape2, (1, 2))):
        for p in (0.1, 0.3, 0.6):
            mask = rng.random(shape, dtype=np.float32) < p
            for k in conns:
                yield f"{name} random {p:.0%}", mask, k
        noise = ndimage.uniform_filter(rng.random(shape, dtype=np.float32), 5)
        mask = noise > 0.52
        for k in conns:
            yield f"{name} blobs", mask, k


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--shape3", default="256,512,512")
    ap.add_argument("--shape2", default="8192,8192")
    args = ap.parse_args()
    shape3 = tuple(int(v) for v in args.shape3.split(","))
    shape2 = tuple(int(v) for v in args.shape2.split(","))
    print(f"{machine.machine_line()}; {machine.versions(('numpy', 'scipy'))}, haloflow {haloflow.__version__}")
    print()
    print("| mask | shape | connectivity | objects | scipy (s) | haloflow (s) | speed-up (range) |")
    print("|---|---|---|---|---|---|---|")
    for name, mask, k in cases(shape3, shape2):
        structure = ndimage.generate_binary_structure(mask.ndim, k)
        want, count = ndimage.label(mask, structure)
        got, got_count = haloflow.label(mask, structure)
        if got_count != count or not np.array_equal(got, want):
            raise SystemExit(f"{name}, connectivity {k}: haloflow differs from scipy")
        del want, got
        ts, th = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            ndimage.label(mask, structure)
            ts.append(time.perf_counter() - t)
            t = time.perf_counter()
            haloflow.label(mask, structure)
            th.append(time.perf_counter() - t)
        ratios = [s / h for s, h in zip(ts, th)]
        shape = "×".join(str(n) for n in mask.shape)
        print(f"| {name} | {shape} | {k} | {count} | {np.median(ts):.3f} | {np.median(th):.3f} | "
              f"{np.median(ts) / np.median(th):.2f}× ({min(ratios):.2f}–{max(ratios):.2f}) |", flush=True)


if __name__ == "__main__":
    main()
