"""The drop-in's speed bar (issue 31): `haloflow.gaussian_filter(x, 2.0)` three times
against `scipy.ndimage.gaussian_filter(x, 2.0)` once, in memory, on
`default_rng(0).random((256, 512, 512))` as float32 and as float64; prints haloflow's
times, scipy's, the ratio to haloflow's best and the largest difference.

    .venv/bin/python scripts/bench_dropin.py [--shape 256,512,512]
"""

import argparse
import time

import numpy as np
import scipy.ndimage as nd

import haloflow.ndimage as hn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="256,512,512")
    args = parser.parse_args()
    shape = tuple(int(n) for n in args.shape.split(","))
    rng = np.random.default_rng(0)
    for dtype in ("float32", "float64"):
        x = rng.random(shape).astype(dtype)
        ours = []
        for _ in range(3):
            t = time.perf_counter()
            got = hn.gaussian_filter(x, 2.0)
            ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        want = nd.gaussian_filter(x, 2.0)
        theirs = time.perf_counter() - t
        diff = float(np.abs(got.astype(np.float64) - want).max())
        print(f"{dtype}: haloflow {[round(s, 3) for s in ours]} s, scipy {theirs:.2f} s, "
              f"{theirs / min(ours):.1f}x, max |diff| {diff:.2g}, out {got.dtype}")


if __name__ == "__main__":
    main()
