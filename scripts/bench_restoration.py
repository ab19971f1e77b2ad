#!/usr/bin/env python3
"""Restoration on the CPU backend against scikit-image: the command, Zarr to Zarr on one
chunk (GNU time-like wall seconds of the whole process), and the scikit-image call in
memory, each the best of --repeats runs, with the largest difference over the range.

    .venv/bin/python scripts/bench_restoration.py [--haloflow target/release/haloflow]

Cases (32x128x128 float32, the issue's): non-local means, patch 5, distance 6, fast
mode, on smooth structure plus noise (h 0.3 and 10: scikit-image skips the weights of
far patches, so its time depends on h; haloflow's does not); Richardson-Lucy with a
9x9x9 Gaussian PSF (sigma 1.5), 5, 10 and 12 iterations; the same with chunks of
4x16x16 (every job's halo is N x 2 x 4 pixels) and with --overlap 16; and 10 iterations
with a 9x9x9 PSF that is not separable (its axial width grows off axis, as a widefield
PSF's does: FFT correlations). Prints a Markdown table.
"""
import argparse
import os
import shutil
import subprocess
import tempfile
import time

import numpy as np
import zarr
from scipy import ndimage
from skimage.restoration import denoise_nl_means, richardson_lucy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def best(f, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--haloflow", default=os.path.join(ROOT, "target/release/haloflow"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(4)
    shape = (32, 128, 128)
    blobs = (ndimage.gaussian_filter(rng.random(shape), 2) * 4 + rng.normal(0, 0.2, shape)).astype(np.float32)
    counts = (rng.random(shape) * 1000).astype(np.float32)
    r = np.arange(-4, 5)
    g = np.exp(-r**2 / (2 * 1.5**2))
    psf = g[:, None, None] * g[None, :, None] * g[None, None, :]
    psf /= psf.sum()
    z, y, x = np.meshgrid(r, r, r, indexing="ij")
    widefield = np.exp(-(y**2 + x**2) / (2 * 1.2**2) - z**2 / (2 * (2.0 + 0.3 * np.abs(y))**2))
    widefield /= widefield.sum()
    scratch = tempfile.mkdtemp()
    try:
        np.save(os.path.join(scratch, "psf.npy"), psf)
        np.save(os.path.join(scratch, "widefield.npy"), widefield)

        def haloflow(x, op_args, chunks=None):
            src, dst = os.path.join(scratch, "in.zarr"), os.path.join(scratch, "out.zarr")
            shutil.rmtree(src, ignore_errors=True)
            zarr.create_array(src, shape=x.shape, chunks=chunks or x.shape, dtype=x.dtype)[...] = x

            def once():
                shutil.rmtree(dst, ignore_errors=True)
                subprocess.run([args.haloflow, *op_args[:1], src, dst, *op_args[1:], "--quiet", "--device", "cpu"],
                               check=True)
                return zarr.open_array(dst)[...]
            return best(once, args.repeats)

        rows = []
        for h in (0.3, 10.0):
            t_sk, want = best(lambda: denoise_nl_means(blobs, patch_size=5, patch_distance=6, h=h, sigma=0.1,
                                                       fast_mode=True, preserve_range=True), 1)
            t_hf, got = haloflow(blobs, ["denoise", "--patch-size", "5", "--patch-distance", "6", "--h", str(h),
                                         "--sigma", "0.1"])
            rows.append((f"nl-means fast, h {h:g}", "one chunk", t_hf, t_sk, np.abs(got - want).max() / np.ptp(want)))
        for n in (5, 10, 12):
            t_sk, want = best(lambda: richardson_lucy(counts, psf, num_iter=n, clip=False), args.repeats)
            rl = ["deconvolve", "--psf", os.path.join(scratch, "psf.npy"), "--iterations", str(n)]
            for label, chunks, extra in [("one chunk", None, []), ("4x16x16 chunks", (4, 16, 16), []),
                                         ("4x16x16 chunks, --overlap 16", (4, 16, 16), ["--overlap", "16"])]:
                if n != 10 and extra:
                    continue
                t_hf, got = haloflow(counts, rl + extra, chunks)
                rows.append((f"Richardson-Lucy 9^3, {n} iterations", label, t_hf, t_sk,
                             np.abs(got - want).max() / np.ptp(want)))
        t_sk, want = best(lambda: richardson_lucy(counts, widefield, num_iter=10, clip=False), args.repeats)
        t_hf, got = haloflow(counts, ["deconvolve", "--psf", os.path.join(scratch, "widefield.npy"),
                                      "--iterations", "10"])
        rows.append(("Richardson-Lucy 9^3 not separable, 10 iterations", "one chunk", t_hf, t_sk,
                     np.abs(got - want).max() / np.ptp(want)))
        print("| case | haloflow | haloflow s | scikit-image s | scikit-image / haloflow | max error / range |")
        print("|---|---|---|---|---|---|")
        for case, label, t_hf, t_sk, err in rows:
            print(f"| {case} | {label} | {t_hf:.2f} | {t_sk:.2f} | {t_sk / t_hf:.1f}x | {err:.1e} |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
