"""A haloflow run split into parts with joblib (loky worker processes).

    python joblib_parts.py IN.zarr OUT.zarr [--parts 8] [--jobs 2]

The seeds' pattern -- joblib over chunk slices, each worker reading its chunk with a
halo, filtering, trimming and writing -- becomes joblib over parts of one run.
"""

import argparse

from joblib import Parallel, delayed

import haloflow
from haloflow import ops


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--parts", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    pipeline = haloflow.Pipeline([ops.median(size=3), ops.gaussian(1.0)])
    haloflow.init(args.input, args.output, pipeline)  # create the output once
    reports = Parallel(n_jobs=args.jobs)(
        delayed(haloflow.run)(args.input, args.output, pipeline, part=(i, args.parts), threads=1)
        for i in range(args.parts))
    print(f"{sum(r['jobs_done'] for r in reports)} jobs in {args.parts} parts")


if __name__ == "__main__":
    main()
