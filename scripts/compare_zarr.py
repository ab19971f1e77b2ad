#!/usr/bin/env python3
"""Zarr -> Zarr, haloflow vs dask / dask-image vs zarrs_tools, side by side on one machine.

Writes a 256x512x512 float32 Zarr v3 volume (zstd level 3, chunks 64x128x128) with
zarr-python, then times each op, median of --repeats runs, with each run's peak RSS:

- haloflow (the command, CPU backend, 2 threads), with its own per-stage times;
- dask / dask-image (2 threads, `store` into a zarr-python array of the same layout);
- zarrs_tools 0.8.1 (`zarrs_reencode`, `zarrs_filter`; 2 chunks in flight), where it
  installs: found on PATH or in target/zarrs_tools, else `cargo install`ed there.

Every tool writes the same layout (v3, chunks 64x128x128, zstd level 3). The table
gives ratios (peer seconds / haloflow seconds; haloflow op / haloflow copy) and how far
each peer's output is from haloflow's. With --markdown FILE it also replaces the
`compare_zarr` section of FILE (BENCHMARKS.md).

    python3 scripts/compare_zarr.py [--ops gaussian,threshold,...] [--repeats 3]
                                    [--zarrs-tools auto|skip] [--markdown BENCHMARKS.md]

Needs numpy, scipy, zarr, dask and dask-image (`pip install -r scripts/requirements.txt`)
and cargo (it builds haloflow in release mode). `scripts/compare` does all of it.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np
import zarr
import zarr.codecs

from machine import machine_line, run_polling_rss, versions, write_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE, CHUNKS = (256, 512, 512), (64, 128, 128)
ZARRS_TOOLS = "0.8.1"
ZSTD3 = json.dumps([{"name": "zstd", "configuration": {"level": 3, "checksum": False}}])

# op: (haloflow arguments, label, zarrs_tools command builder or None)
OPS = {
    "copy": (["copy"], "copy (decode + encode)",
             lambda z, s, d: [z("zarrs_reencode"), s, d, "--concurrent-chunks", "2"]),
    "threshold": (["threshold", "--above", "95"], "threshold x > 95 (uint8)", None),
    "clip": (["clip", "--min", "60", "--max", "120"], "clip [60, 120]",
             lambda z, s, d: [z("zarrs_filter"), "--chunk-limit", "2", "clamp", s, d, "60", "120"]),
    "downsample": (["downsample", "--factor", "2", "--method", "mean"], "downsample mean 2x2x2",
                   lambda z, s, d: [z("zarrs_filter"), "--chunk-limit", "2", "downsample", s, d, "2", "2", "2"]),
    "gaussian": (["gaussian", "--sigma", "2"], "gaussian sigma=2 truncate=4",
                 lambda z, s, d: [z("zarrs_filter"), "--chunk-limit", "2", "gaussian", s, d,
                                  "2,2,2", "8,8,8"]),
    "median": (["median", "--size", "3"], "median 3×3×3", None),
    # Sharded outputs (Zarr v3 sharding_indexed), one shard of 4×4×4 chunks: compare with
    # the unsharded rows (dask writes them unsharded).
    "copy-sharded": (["copy", "--shards", "256,512,512"], "copy, sharded (shards of 4×4×4 chunks)", None),
    "gaussian-sharded": (["gaussian", "--sigma", "2", "--shards", "256,512,512"],
                         "gaussian sigma=2, sharded (shards of 4×4×4 chunks)", None),
    # Not Zarr to Zarr: whole-array statistics (they decode and do not encode).
    "stats": (["stats"], "stats: min, max, mean, std (no output)", None),
    "stats-percentiles": (["stats", "--percentiles", "1,50,99.8"],
                          "stats + exact percentiles 1, 50, 99.8 (dask: approximate)", None),
}
# The statistics "ops" write nothing: no output to compare.
STATS = ("stats", "stats-percentiles")
# The first table's ops; `scripts/compare` runs the others (rank filters, statistics)
# into a table of their own, against dask alone.
DEFAULT_OPS = ("copy", "threshold", "clip", "downsample", "gaussian")
# What the zarrs_tools commands write: the same layout as the others.
ZARRS_LAYOUT = ["--chunk-shape", ",".join(map(str, CHUNKS)), "--bytes-to-bytes-codecs", ZSTD3]

DASK = r"""
import sys, dask, dask.array as da, numpy as np, zarr, zarr.codecs
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
elif op == "median":
    import dask_image.ndfilters
    y = dask_image.ndfilters.median_filter(x, size=3)
elif op.startswith("stats"):
    todo = [x.min(), x.max(), x.mean(), x.std()]
    if op == "stats-percentiles":
        # dask's percentiles are approximate (per-chunk percentiles merged).
        todo.append(da.percentile(x.ravel(), [1, 50, 99.8]))
    dask.compute(*todo)
    y = None
else:
    y = x
if y is not None:
    out = zarr.create_array(store=dst, shape=y.shape, chunks=(64, 128, 128), dtype=y.dtype,
                            zarr_format=3, compressors=zarr.codecs.ZstdCodec(level=3), overwrite=True)
    y.rechunk((64, 128, 128)).store(out, lock=False)
with open("/proc/self/status") as f:
    print([l.split()[1] for l in f if l.startswith("VmHWM")][0])
"""


def write_volume(path):
    """Writes the benchmark volume at path: SHAPE float32, values 50 + 90 U(0, 1) (seed 0),
    Zarr v3, chunks CHUNKS, zstd 3; returns path."""
    arr = zarr.create_array(store=path, shape=SHAPE, chunks=CHUNKS, dtype=np.float32, zarr_format=3,
                            compressors=zarr.codecs.ZstdCodec(level=3))
    rng = np.random.default_rng(0)
    for z in range(0, SHAPE[0], CHUNKS[0]):
        arr[z:z + CHUNKS[0]] = (50 + 90 * rng.random((CHUNKS[0], *SHAPE[1:]), dtype=np.float32))
    return path


def zarrs_tools(mode):
    """A function naming a zarrs_tools executable, or None if they are not to be had."""
    if mode == "skip":
        return None
    local = os.path.join(ROOT, "target", "zarrs_tools")
    for where in [os.path.join(local, "bin"), *os.environ.get("PATH", "").split(os.pathsep)]:
        if os.path.exists(os.path.join(where, "zarrs_filter")) and os.path.exists(os.path.join(where, "zarrs_reencode")):
            return lambda name, where=where: os.path.join(where, name)
    print(f"installing zarrs_tools {ZARRS_TOOLS} into {local} (a few minutes) ...", file=sys.stderr)
    run = subprocess.run(["cargo", "install", "--quiet", "zarrs_tools", "--version", ZARRS_TOOLS,
                          "--features", "filter", "--root", local])
    if run.returncode != 0:
        print("zarrs_tools did not install: its column stays empty", file=sys.stderr)
        return None
    return lambda name: os.path.join(local, "bin", name)


def timed(cmd, rss_from_stdout=None):
    """Runs cmd; (seconds, peak RSS MiB). The RSS is the one the process reports on its
    stdout if rss_from_stdout says how to read it, else polled from /proc."""
    seconds, run, polled = run_polling_rss(cmd)
    if run.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{run.stderr}")
    rss = rss_from_stdout(run.stdout) if rss_from_stdout else polled
    return seconds, rss / 2**20


def max_diff(a_path, b_path):
    """max |a - b| over two arrays of the same shape (None if the shapes differ)."""
    a, b = zarr.open_array(a_path, mode="r"), zarr.open_array(b_path, mode="r")
    if a.shape != b.shape:
        return None
    worst = 0.0
    for z in range(0, a.shape[0], CHUNKS[0]):
        da_, db_ = a[z:z + CHUNKS[0]].astype(np.float64), b[z:z + CHUNKS[0]].astype(np.float64)
        worst = max(worst, float(np.max(np.abs(da_ - db_))))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", default=",".join(DEFAULT_OPS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--zarrs-tools", choices=["auto", "skip"], default="auto")
    ap.add_argument("--markdown", help="replace the --section section of this Markdown file with the table")
    ap.add_argument("--section", default="compare_zarr", help="the Markdown section to replace")
    args = ap.parse_args()
    ops = args.ops.split(",")
    if unknown := [op for op in ops if op not in OPS]:
        sys.exit(f"unknown ops {unknown}; choose from {list(OPS)}")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "haloflow"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "haloflow")
    zt = zarrs_tools(args.zarrs_tools)
    tmp = tempfile.mkdtemp(prefix="haloflow-compare-")
    try:
        src = write_volume(os.path.join(tmp, "volume.zarr"))
        rows = {}
        for op in ops:
            flags, label, zcmd = OPS[op]
            hf, stages, dk, zr = [], [], [], []
            out = {tool: os.path.join(tmp, f"{tool}-{op}.zarr") for tool in ("hf", "dask", "zarrs")}
            # Rounds interleave the tools, so that a slow spell of the machine hits all.
            for _ in range(args.repeats):
                shutil.rmtree(out["hf"], ignore_errors=True)
                report = os.path.join(tmp, "report.json")

                def reported(_stdout):
                    with open(report) as f:
                        r = json.load(f)
                    stages.append(r["stages"])
                    return r["peak_rss_bytes"]

                if op in STATS:
                    hf.append(timed([exe, "stats", src, *flags[1:], "--threads", "2"]))
                    stages.append(dict(read=0.0, compute=0.0, write=0.0))
                else:
                    hf.append(timed([exe, flags[0], src, out["hf"], *flags[1:], "--quiet", "--threads",
                                     "2", "--device", "cpu", "--report", report], reported))
                shutil.rmtree(out["dask"], ignore_errors=True)
                dk.append(timed([sys.executable, "-c", DASK, op.removesuffix("-sharded"), src, out["dask"]],
                                lambda stdout: int(stdout.strip().splitlines()[-1]) * 1024))
                if zt and zcmd:
                    shutil.rmtree(out["zarrs"], ignore_errors=True)
                    zr.append(timed([*zcmd(zt, src, out["zarrs"]), *ZARRS_LAYOUT]))
            med = lambda runs: statistics.median(s for s, _ in runs) if runs else None
            peak = lambda runs: max(m for _, m in runs) if runs else None
            stage = {k: statistics.median(s[k] for s in stages) for k in ("read", "compute", "write")}
            rows[op] = dict(label=label, hf=med(hf), hf_rss=peak(hf), stages=stage, dask=med(dk), dask_rss=peak(dk),
                            zarrs=med(zr), zarrs_rss=peak(zr),
                            dask_diff=None if op in STATS else max_diff(out["dask"], out["hf"]),
                            zarrs_diff=max_diff(out["zarrs"], out["hf"]) if zr else None)
            for path in out.values():
                shutil.rmtree(path, ignore_errors=True)
        command = " ".join(sys.argv[1:]).replace(f" --markdown {args.markdown}", "") or f"--repeats {args.repeats}"
        text = table(rows, args.repeats, command)
        print(text)
        if args.markdown:
            write_section(args.markdown, args.section, text)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def table(rows, repeats, command):
    f = lambda v, fmt: "–" if v is None else format(v, fmt)
    ratio = lambda a, b: "–" if a is None or b is None else f"{a / b:.2f}×"
    copy = rows.get("copy", {}).get("hf")
    lines = [
        f"Machine: {machine_line()}. Versions: {versions()}, zarrs_tools {ZARRS_TOOLS}.",
        "",
        f"Command: `scripts/compare` (`python3 scripts/compare_zarr.py {command}`). Volume "
        f"{'×'.join(map(str, SHAPE))} float32, Zarr v3, zstd level 3, chunks {'×'.join(map(str, CHUNKS))}, "
        "written by zarr-python; every tool writes the same layout; page cache warm, dirty pages written back before each run (`os.sync`); median of "
        f"{repeats} interleaved rounds; peak RSS is each process's own VmHWM (the largest of the rounds). "
        "haloflow: `--threads 2 --device cpu` (no GPU adapter used). dask: 2 threads. zarrs_tools: "
        "2 chunks in flight.",
        "",
        "| op (zarr→zarr) | haloflow s | haloflow / copy | haloflow read · compute · write core-s | "
        "haloflow RSS MiB | dask s | dask / haloflow | dask RSS MiB | max \\|dask − haloflow\\| | "
        "zarrs_tools s | zarrs_tools / haloflow | zarrs_tools RSS MiB | max \\|zarrs_tools − haloflow\\| |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows.values():
        s = r["stages"]
        lines.append(
            f"| {r['label']} | {r['hf']:.2f} | {ratio(r['hf'], copy)} | "
            f"{s['read']:.2f} · {s['compute']:.2f} · {s['write']:.2f} | {r['hf_rss']:.0f} | "
            f"{r['dask']:.2f} | {ratio(r['dask'], r['hf'])} | {r['dask_rss']:.0f} | {f(r['dask_diff'], '.2g')} | "
            f"{f(r['zarrs'], '.2f')} | {ratio(r['zarrs'], r['hf'])} | {f(r['zarrs_rss'], '.0f')} | "
            f"{f(r['zarrs_diff'], '.2g')} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
