"""Issue 29's speed bars: `haloflow.affine_transform(order=1)` in memory against scipy's,
and `haloflow deskew` of a Zarr stack against `haloflow copy` of it.

    .venv/bin/python scripts/bench_geometry.py [--haloflow target/release/haloflow]
        [--stack 256,1024,2048] [--skip-deskew]

The affine: a rotation of 0.3 rad with a shear and an offset, on 128×256×256 float32
(`default_rng(0)`), scipy once then haloflow three times; prints the times, the ratio to
haloflow's best and the largest difference. The deskew: a uint16 stack (camera offset
100 plus Poisson counts of a smooth pattern; 256×1024×2048 is 1 GiB), chunks 32×256×256
with haloflow's default compression, written once under /tmp; then `copy`, `deskew
--angle 31.8 --scan-step 0.4 --pixel-size 0.104`, the same with `--mip` (the maximum
projections in the same pass) and with `--rotate` (to the coverslip) in turn three
times, each after `sync`.
"""

import argparse
import os
import shutil
import subprocess
import time

import numpy as np
import scipy.ndimage as ndi

import haloflow


def affine():
    x = np.random.default_rng(0).random((128, 256, 256), dtype=np.float32)
    c, s = np.cos(0.3), np.sin(0.3)
    m = np.array([[1.0, 0.0, 0.0], [0.1 * c, c, -s], [0.1 * s, s, c]])
    offset = [2.0, -5.0, 10.0]
    t = time.perf_counter()
    want = ndi.affine_transform(x, m, offset, order=1)
    theirs = time.perf_counter() - t
    ours = []
    for _ in range(3):
        t = time.perf_counter()
        got = haloflow.affine_transform(x, m, offset, order=1)
        ours.append(time.perf_counter() - t)
    print(f"affine_transform order 1, 128x256x256 float32: scipy {theirs:.3f} s, haloflow "
          f"{[round(o, 3) for o in ours]} s, {theirs / min(ours):.1f}x, max |diff| {np.abs(got - want).max():.2g}")


def stack(path, shape):
    import zarr
    if os.path.exists(path):
        return
    z = zarr.create_array(path, shape=shape, chunks=(32, 256, 256), dtype="u2")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:shape[1], 0:shape[2]]
    pattern = (200 * (1 + np.sin(xx / 37.0) * np.cos(yy / 53.0))).astype(np.float32)
    for i in range(0, shape[0], 32):
        planes = np.arange(i, min(i + 32, shape[0]))[:, None, None]
        z[i:i + len(planes)] = 100 + rng.poisson(pattern[None] * (1 + 0.2 * np.sin(planes / 9.0)))


def timed(args):
    subprocess.run(["sync"], check=True)
    t = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - t


def deskew(haloflow_bin, shape):
    src = f"/tmp/bench_geometry_{'x'.join(map(str, shape))}.zarr"
    stack(src, shape)
    lls = ["--angle", "31.8", "--scan-step", "0.4", "--pixel-size", "0.104"]
    cases = [("copy", "copy", []), ("deskew", "deskew", lls), ("deskew --mip", "deskew", [*lls, "--mip"]),
             ("deskew --rotate", "deskew", [*lls, "--rotate"])]
    for run in range(3):
        for i, (label, op, extra) in enumerate(cases):
            out = f"/tmp/bench_geometry_{i}.zarr"
            shutil.rmtree(out, ignore_errors=True)
            took = timed([haloflow_bin, op, src, out, "-q", *extra])
            print(f"run {run + 1}: {label} {took:.2f} s")
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(f"/tmp/bench_geometry_{i}_mip.zarr", ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--haloflow", default="target/release/haloflow")
    ap.add_argument("--stack", default="256,1024,2048")
    ap.add_argument("--skip-deskew", action="store_true")
    args = ap.parse_args()
    affine()
    if not args.skip_deskew:
        deskew(args.haloflow, tuple(int(n) for n in args.stack.split(",")))


if __name__ == "__main__":
    main()
