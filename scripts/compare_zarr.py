#!/usr/bin/env python3
"""Zarr -> Zarr, haloflow vs dask / dask-image, side by side on one machine.

Writes a 256x512x512 float32 Zarr v3 volume (zstd level 3, chunks 64x128x128) with
zarr-python, then times each op with the haloflow command and with dask (2 threads,
`to_zarr` into the same layout), median of --repeats runs, with each run's peak RSS,
and prints a Markdown table (ratios: dask seconds / haloflow seconds).

    python3 scripts/compare_zarr.py [--ops gaussian,threshold,...] [--repeats 3]

Needs numpy, scipy, zarr, dask and dask-image (`pip install -r scripts/requirements.txt`)
and cargo (it builds haloflow in release mode).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import zarr
import zarr.codecs

from machine import cpu_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE, CHUNKS = (256, 512, 512), (64, 128, 128)

OPS = {
    "copy": (["copy"], "copy (decode + encode)"),
    "threshold": (["threshold", "--above", "95"], "x > 95"),
    "clip": (["clip", "--min", "60", "--max", "120"], "np.clip(x, 60, 120)"),
    "downsample": (["downsample", "--factor", "2", "--method", "mean"], "coarsen mean 2x2x2"),
    "gaussian": (["gaussian", "--sigma", "2"], "gaussian sigma=2 truncate=4"),
}

DASK = r"""
import sys, time, dask, dask.array as da, numpy as np, zarr, zarr.codecs
op, src, dst = sys.argv[1:4]
dask.config.set(scheduler="threads", num_workers=2)
x = da.from_zarr(src)
if op == "threshold":
    y = (x > 95).astype(np.uint8)
elif op == "clip":
    y = da.clip(x, 60, 120)
elif op == "downsample":
    y = da.coarsen(np.mean, x, {0: 2, 1: 2, 2: 2}, trim_excess=False).astype(x.dtype)
elif op == "gaussian":
    import dask_image.ndfilters
    y = dask_image.ndfilters.gaussian_filter(x, 2.0, truncate=4.0)
else:
    y = x
out = zarr.create_array(store=dst, shape=y.shape, chunks=(64, 128, 128), dtype=y.dtype,
                        zarr_format=3, compressors=zarr.codecs.ZstdCodec(level=3), overwrite=True)
y.rechunk((64, 128, 128)).store(out, lock=False)
with open("/proc/self/status") as f:
    print([l.split()[1] for l in f if l.startswith("VmHWM")][0])
"""


def timed(cmd, peak_rss):
    """Runs cmd; returns (seconds, peak RSS MiB as the process itself saw it: a parent's
    rusage would count the Python image the child was forked from)."""
    t = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if run.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{run.stderr}")
    return seconds, peak_rss(run.stdout) / 2**20


def report_rss(path):
    def read(_stdout):
        with open(path) as f:
            return json.load(f)["peak_rss_bytes"]
    return read


def vmhwm_rss(stdout):
    return int(stdout.strip().splitlines()[-1]) * 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "haloflow"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "haloflow")
    tmp = tempfile.mkdtemp(prefix="haloflow-compare-")
    try:
        src = os.path.join(tmp, "volume.zarr")
        arr = zarr.create_array(store=src, shape=SHAPE, chunks=CHUNKS, dtype=np.float32, zarr_format=3,
                                compressors=zarr.codecs.ZstdCodec(level=3))
        rng = np.random.default_rng(0)
        for z in range(0, SHAPE[0], CHUNKS[0]):
            arr[z:z + CHUNKS[0]] = (50 + 90 * rng.random((CHUNKS[0], *SHAPE[1:]), dtype=np.float32))
        rows = []
        for op in args.ops.split(","):
            flags, label = OPS[op]
            hf, dk = [], []
            for r in range(args.repeats):
                dst = os.path.join(tmp, f"hf-{op}.zarr")
                shutil.rmtree(dst, ignore_errors=True)
                report = os.path.join(tmp, "report.json")
                hf.append(timed([exe, flags[0], src, dst, *flags[1:], "--quiet", "--threads", "2", "--device", "cpu",
                                 "--report", report], report_rss(report)))
                dst = os.path.join(tmp, f"dask-{op}.zarr")
                shutil.rmtree(dst, ignore_errors=True)
                dk.append(timed([sys.executable, "-c", DASK, op, src, dst], vmhwm_rss))
            h = statistics.median(s for s, _ in hf)
            d = statistics.median(s for s, _ in dk)
            rows.append((label, h, max(m for _, m in hf), d, max(m for _, m in dk)))
        print(f"machine: {cpu_name()}, {os.cpu_count()} cores; volume {'x'.join(map(str, SHAPE))} float32, "
              f"zarr v3 zstd-3, chunks {'x'.join(map(str, CHUNKS))}; median of {args.repeats}; page cache warm; "
              f"haloflow on the CPU backend (no GPU adapter used)")
        print("| op (zarr->zarr) | haloflow s | haloflow peak RSS MiB | dask s | dask peak RSS MiB | dask / haloflow |")
        print("|---|---|---|---|---|---|")
        for label, h, hm, d, dm in rows:
            print(f"| {label} | {h:.2f} | {hm:.0f} | {d:.2f} | {dm:.0f} | {d / h:.2f}x |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
