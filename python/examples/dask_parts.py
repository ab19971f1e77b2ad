"""A haloflow run split into parts, as dask.delayed tasks on worker processes.

    python dask_parts.py IN.zarr OUT.zarr [--parts 8] [--workers 2] [--check OTHER.zarr]

Each task runs `haloflow.run(..., part=(i, n))`: the parts share no chunk, so the tasks
need no lock and a failed task is simply run again (it skips the chunks done). The
pipeline pickles, so it travels to the worker processes as it is. With --check, the
result is compared with another output of the same pipeline (e.g. the command's).
"""

import argparse

import dask
import numpy as np
import zarr

import haloflow
from haloflow import ops


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--parts", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--check", help="an output to compare with, value for value")
    args = ap.parse_args()

    pipeline = haloflow.Pipeline([ops.gaussian(2.0)])
    # The output's metadata first, once: then the parts only add chunks.
    haloflow.init(args.input, args.output, pipeline)
    tasks = [dask.delayed(haloflow.run)(args.input, args.output, pipeline, part=(i, args.parts), threads=1)
             for i in range(args.parts)]
    reports = dask.compute(*tasks, scheduler="processes", num_workers=args.workers)
    done = sum(r["jobs_done"] + r["jobs_skipped"] for r in reports)
    print(f"{args.parts} parts on {args.workers} worker processes: {done} jobs")
    if args.check:
        a, b = zarr.open_array(args.output), zarr.open_array(args.check)
        same = all(np.array_equal(a[z:z + 64], b[z:z + 64]) for z in range(0, a.shape[0], 64))
        print(f"equal to {args.check}: {same}")
        raise SystemExit(0 if same else 1)


if __name__ == "__main__":
    main()
