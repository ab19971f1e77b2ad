#!/usr/bin/env python3
"""Multiscale pyramids, haloflow vs ngff-zarr, side by side on one machine.

Writes the benchmark volume (256x512x512 float32, Zarr v3, chunks 64x128x128, zstd 3)
with zarr-python, then times, median of --repeats runs, with each run's peak RSS:

- `haloflow copy` of level 0 (the I/O yardstick), run before each pyramid run: the
  ratio to the copy is the median of the per-pair ratios;
- `haloflow pyramid --levels 4` with mean, stride and gaussian;
- ngff-zarr's `to_multiscales` (scale factors 2, 4, 8; chunks 64x128x128) and
  `to_ngff_zarr` (NGFF 0.5) with the matching method: DASK_BIN_SHRINK (the window
  mean), DASK_IMAGE_NEAREST (every f-th voxel) and DASK_IMAGE_GAUSSIAN, on dask's
  threaded scheduler with 2 workers, as haloflow runs with 2 threads.

With --markdown FILE it replaces the `compare_pyramid` section of FILE.

    python3 scripts/compare_pyramid.py [--repeats 3] [--markdown BENCHMARKS.md]

Needs numpy, zarr and ngff-zarr[dask-image] (scripts/requirements.txt) and cargo.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import shutil


from compare_zarr import timed, write_volume
from machine import machine_line, versions, write_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NGFF = r"""
import sys, dask, dask.array as da, ngff_zarr as nz
method, src, dst = sys.argv[1:4]
dask.config.set(scheduler="threads", num_workers=2)
image = nz.to_ngff_image(da.from_zarr(src), dims=["z", "y", "x"])
multiscales = nz.to_multiscales(image, scale_factors=[2, 4, 8], method=nz.Methods[method],
                                chunks=(64, 128, 128))
nz.to_ngff_zarr(dst, multiscales, version="0.5")
"""

# (label, haloflow method, ngff-zarr method)
CASES = [
    ("mean of each window", "mean", "DASK_BIN_SHRINK"),
    ("every f-th voxel", "stride", "DASK_IMAGE_NEAREST"),
    ("gaussian, then subsample", "gaussian", "DASK_IMAGE_GAUSSIAN"),
]


def paired_runs(cmd, base, repeats, clean):
    """`cmd` and `base` in turn, `repeats` times each, `clean` before each run: (median
    seconds of cmd, its peak RSS MiB, the median of the per-pair ratios cmd / base, the
    base's seconds). Pairing keeps the ratio true while the machine's speed drifts."""
    runs, bases = [], []
    for _ in range(repeats):
        clean()
        bases.append(timed(base)[0])
        clean()
        runs.append(timed(cmd))
    ratios = [s / b for (s, _), b in zip(runs, bases)]
    return (statistics.median(s for s, _ in runs), max(rss for _, rss in runs),
            statistics.median(ratios), bases)


def median_run(cmd, repeats, clean):
    """(median seconds, peak RSS MiB of that set) of `repeats` runs, `clean` before each."""
    runs = []
    for _ in range(repeats):
        clean()
        runs.append(timed(cmd))
    return statistics.median(s for s, _ in runs), max(rss for _, rss in runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--markdown")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "haloflow"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "haloflow")
    try:
        import ngff_zarr  # noqa: F401
        have_ngff = True
    except ImportError as e:
        print(f"ngff-zarr does not import ({e}): its column stays empty", file=sys.stderr)
        have_ngff = False
    tmp = tempfile.mkdtemp(prefix="haloflow-pyramid-")
    try:
        src = write_volume(os.path.join(tmp, "volume.zarr"))
        dst = os.path.join(tmp, "out.zarr")
        clean = lambda: shutil.rmtree(dst, ignore_errors=True)
        threads = ["--threads", "2", "--device", "cpu", "--quiet"]
        copy = [exe, "copy", src, dst, *threads]
        # One copy first: a warm-up, and its peak memory.
        _, copy_rss = median_run(copy, 1, clean)
        copies = []
        rows = []
        for label, method, ngff_method in CASES:
            hf_s, hf_rss, hf_x, bases = paired_runs(
                [exe, "pyramid", src, dst, "--levels", "4", "--method", method, *threads],
                copy, args.repeats, clean)
            copies += bases
            ng_s = ng_rss = None
            if have_ngff:
                ng_s, ng_rss = median_run([sys.executable, "-c", NGFF, ngff_method, src, dst],
                                          args.repeats, clean)
            rows.append((label, method, ngff_method, hf_s, hf_rss, hf_x, ng_s, ng_rss))
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    fmt = lambda s: "—" if s is None else f"{s:.2f}"
    lines = [
        f"{machine_line()}; {versions(('numpy', 'zarr', 'dask', 'ngff_zarr'))}; median of {args.repeats} runs.",
        "",
        f"4 levels of the 256×512×512 float32 volume (chunks 64×128×128, zstd 3). `haloflow copy` of level 0: "
        f"{statistics.median(copies):.2f} s (median of {len(copies)}), {copy_rss:.0f} MiB. Each pyramid run "
        "follows a copy run: × copy is the median of the per-pair ratios.",
        "",
        "| method | haloflow `pyramid` s (MiB) | × copy (paired) | ngff-zarr method | ngff-zarr s (MiB) | ngff-zarr / haloflow |",
        "|---|---|---|---|---|---|",
    ]
    for label, method, ngff_method, hf_s, hf_rss, hf_x, ng_s, ng_rss in rows:
        ratio = "—" if ng_s is None else f"{ng_s / hf_s:.2f}×"
        ng = "—" if ng_s is None else f"{ng_s:.2f} ({ng_rss:.0f})"
        lines.append(f"| {label} (`{method}`) | {hf_s:.2f} ({hf_rss:.0f}) | {hf_x:.2f}× | "
                     f"`{ngff_method}` | {ng} | {ratio} |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        write_section(args.markdown, "compare_pyramid", table)


if __name__ == "__main__":
    main()
