#!/usr/bin/env python3
"""In-memory Gaussian, haloflow vs scipy.ndimage, side by side on one machine.

Makes a 256x512x512 float32 volume (or --shape), times
`scipy.ndimage.gaussian_filter(x, sigma, truncate=4)` and haloflow's in-memory
pipeline on the same data (median of --repeats rounds, each round running every
implementation once, so that a slow spell of a shared machine hits them all alike),
checks that the results agree within 2e-5 of the data range, and prints a table.

    python3 scripts/compare_scipy.py [--shape 256,512,512] [--sigma 2] [--repeats 3]
                                     [--markdown BENCHMARKS.md]

haloflow runs on one thread and on every core, each run after a second of warm-up
in its own process, and from Python if the package is installed. With --markdown FILE the
table also replaces the `compare_scipy` section of FILE.

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

# haloflow's timed runs per round (the round's figure is their median), each dropping
# the previous result first, as the Rust runs do.
PER_ROUND = 3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="256,512,512")
    ap.add_argument("--sigma", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--markdown", help="replace the compare_scipy section of this Markdown file with the table")
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

    # The Python package, if installed (`pip install ./python`): the same call from
    # Python on the same array, every core, after one warm-up run.
    try:
        import haloflow
    except ImportError:
        haloflow = None
    if haloflow is not None:
        haloflow.gaussian_filter(x, args.sigma)

    # Rounds interleave scipy, haloflow on one thread and on every core, and the Python
    # package, so that a slow spell of a shared machine hits them all alike.
    scipy_s = []
    py_s = [] if haloflow is not None else None
    runs = {}
    tol = 2e-5 * float(np.ptp(x))
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.npy"), os.path.join(tmp, "out.npy")
        np.save(src, x)
        pipeline = {"ops": [{"op": "gaussian", "sigma": [args.sigma], "mode": "reflect", "truncate": 4.0}]}
        for _ in range(args.repeats):
            t = time.perf_counter()
            ref = ndi.gaussian_filter(x, args.sigma, mode="reflect", truncate=4.0)
            scipy_s.append(time.perf_counter() - t)
            # One thread (scipy's footing), then every core; each run after its own
            # warm-up (time_pipeline's).
            for threads in ["1", str(os.cpu_count())]:
                run = subprocess.run(
                    [exe, src, dst, json.dumps(pipeline), str(PER_ROUND)],
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "RAYON_NUM_THREADS": threads},
                )
                report = json.loads(run.stdout.strip().splitlines()[-1])
                runs.setdefault(report["threads"], []).append(statistics.median(report["seconds"]))
                got = np.load(dst)
                err = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
                if not err <= tol:
                    sys.exit(f"results differ beyond the tolerance: {err} > {tol}")
            if haloflow is not None:
                del got
                calls = []
                for _ in range(PER_ROUND):
                    got = None
                    t = time.perf_counter()
                    got = haloflow.gaussian_filter(x, args.sigma, mode="reflect", truncate=4.0)
                    calls.append(time.perf_counter() - t)
                py_s.append(statistics.median(calls))
                py_err = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
                if not py_err <= tol:
                    sys.exit(f"the Python package differs beyond the tolerance: {py_err} > {tol}")
                del got
    runs = {threads: statistics.median(seconds) for threads, seconds in runs.items()}
    sp = statistics.median(scipy_s)
    lines = [
        f"Machine: {machine_line()}. Versions: {versions(('numpy', 'scipy'))}.",
        "",
        f"Command: `scripts/compare` (`python3 scripts/compare_scipy.py --repeats {args.repeats}`): "
        f"`scipy.ndimage.gaussian_filter(x, {args.sigma:g}, truncate=4)`, reflect, on a "
        f"{'×'.join(map(str, shape))} float32 volume uniform in [50, 140], against haloflow's "
        f"in-memory `Pipeline::apply` (CPU); median of {args.repeats} interleaved rounds.",
        "",
        "| implementation | seconds | speedup over scipy |",
        "|---|---|---|",
        f"| scipy.ndimage.gaussian_filter (1 thread) | {sp:.3f} | 1.0× |",
    ]
    for threads, hf in sorted(runs.items()):
        lines.append(f"| haloflow in memory, {threads} thread{'s' if threads > 1 else ''} | {hf:.3f} | {sp / hf:.1f}× |")
    if py_s is not None:
        py = statistics.median(py_s)
        every = max(runs)
        lines.append(f"| haloflow from Python (`haloflow.gaussian_filter`), {every} threads | {py:.3f} | "
                     f"{sp / py:.1f}× |")
    lines += ["", f"Both haloflow runs agree with scipy within {err:.2g} (tolerance: 2e-5 of the range, {tol:.2g})."]
    if py_s is not None:
        lines.append(f"From Python the call takes {py / runs[every]:.2f}× the Rust in-memory time on "
                     f"{every} threads (the array is read in place and the result handed to NumPy "
                     "without a copy).")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        write_section(args.markdown, "compare_scipy", text)


if __name__ == "__main__":
    main()
