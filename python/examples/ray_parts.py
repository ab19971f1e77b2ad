"""A haloflow run split into parts, as Ray tasks.

    pip install ray
    python ray_parts.py IN.zarr OUT.zarr [--parts 8] [--workers 2]

Each task runs one part (`part=(i, n)`) with one thread; the pickled pipeline travels
to the workers. On a cluster, point `ray.init(address=...)` at it: the parts only need
the input and output on a filesystem every node sees.
"""

import argparse

import ray

import haloflow
from haloflow import ops


@ray.remote(num_cpus=1)
def part(src, dst, pipeline, i, n):
    return haloflow.run(src, dst, pipeline, part=(i, n), threads=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--parts", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    pipeline = haloflow.Pipeline([ops.gaussian(2.0)])
    haloflow.init(args.input, args.output, pipeline)  # create the output once
    ray.init(num_cpus=args.workers, include_dashboard=False)
    reports = ray.get([part.remote(args.input, args.output, pipeline, i, args.parts) for i in range(args.parts)])
    print(f"{sum(r['jobs_done'] for r in reports)} jobs in {args.parts} Ray tasks on {args.workers} CPUs")


if __name__ == "__main__":
    main()
