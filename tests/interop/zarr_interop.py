#!/usr/bin/env python3
"""End-to-end checks of the `haloflow` command against the reference Zarr client.

Inputs are written by zarr-python (v2 with blosc, v3 with zstd, v3 sharded), the
haloflow command processes them, zarr-python reads the outputs back, and the results
are compared with scipy/numpy on the whole array (exact for integer-exact ops, within
2e-5 of the data range for float ops).

    python tests/interop/zarr_interop.py --haloflow target/debug/haloflow CHECK...

CHECKs: conformance, resume, parts, memory (default: all). `--device gpu` runs the
conformance on the GPU backend. Exit status 1 on failure.
The Rust test `tests/cli.rs` runs this with the freshly built binary.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numcodecs
import numpy as np
import scipy.ndimage as ndi
import zarr
import zarr.codecs

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print(f"FAIL {what}", flush=True)


def write_input(path, data, fmt, chunks, shards=None):
    if fmt == 2:
        import numcodecs

        arr = zarr.create_array(
            store=path, shape=data.shape, chunks=chunks, dtype=data.dtype, zarr_format=2,
            compressors=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE),
        )
    else:
        arr = zarr.create_array(
            store=path, shape=data.shape, chunks=chunks, shards=shards, dtype=data.dtype,
            zarr_format=3, compressors=zarr.codecs.ZstdCodec(level=3),
        )
    arr[...] = data
    return path


def haloflow(bin_, *args, check_ok=True, env=None):
    run = subprocess.run([bin_, *map(str, args)], capture_output=True, text=True,
                         env=None if env is None else {**os.environ, **env})
    if check_ok and run.returncode != 0:
        raise RuntimeError(f"haloflow {' '.join(map(str, args))} failed:\n{run.stderr}")
    return run


def cast(v, dtype):
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(v), info.min, info.max).astype(dtype)
    return v.astype(dtype)


def ref_downsample(x, f, method):
    out_shape = tuple(-(-n // k) for n, k in zip(x.shape, f))
    out = np.empty(out_shape, dtype=x.dtype)
    for idx in np.ndindex(*out_shape):
        w = x[tuple(slice(i * k, i * k + k) for i, k in zip(idx, f))]
        if method == "mean":
            v = w.astype(np.float64).mean()
            out[idx] = cast(np.array(v), x.dtype)
        elif method == "max":
            out[idx] = w.max()
        elif method == "min":
            out[idx] = w.min()
        else:
            raise ValueError(method)
    return out


DEVICE = ["--device", "cpu"]


def check_result(got, want, exact, data, what):
    """`got` has `want`'s dtype and shape, and equals it bit for bit (`exact`) or within
    2e-5 of the input `data`'s range."""
    check(got.dtype == want.dtype and got.shape == want.shape,
          f"{what}: {got.dtype}{got.shape} != {want.dtype}{want.shape}")
    if got.shape != want.shape:
        return
    if exact:
        check(np.array_equal(got, want), f"{what}: not equal")
    else:
        tol = 2e-5 * max(float(np.ptp(data.astype(np.float64))), 1.0)
        err = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
        check(err <= tol, f"{what}: max error {err} > {tol}")


def conformance(bin_, tmp):
    rng = np.random.default_rng(7)
    shape = (23, 37, 19)
    inputs = {
        "float32": (rng.random(shape, dtype=np.float32) * 200 - 50).astype(np.float32),
        "uint16": rng.integers(0, 60000, shape).astype(np.uint16),
    }
    kernel = np.arange(18, dtype=np.float64).reshape(2, 3, 3) / 50.0 - 0.1
    kpath = os.path.join(tmp, "k.npy")
    np.save(kpath, kernel)
    # A footprint that is not a box: a cross in two planes, one corner added.
    footprint = np.zeros((2, 3, 3), dtype=bool)
    footprint[:, 1, :] = footprint[:, :, 1] = True
    footprint[1, 0, 0] = True
    fpath = os.path.join(tmp, "fp.npy")
    np.save(fpath, footprint)
    layouts = [
        ("v2-blosc", 2, (8, 10, 7), None),
        ("v3-zstd", 3, (8, 10, 7), None),
        ("v3-sharded", 3, (4, 5, 7), (8, 10, 14)),
    ]
    cases = [
        ("copy", [], lambda x: x, True),
        ("threshold", ["--above", "40"], lambda x: (x.astype(np.float64) > 40).astype(np.uint8), True),
        ("clip", ["--min", "10.5", "--max", "3000.5"],
         lambda x: cast(np.clip(x.astype(np.float64), 10.5, 3000.5), x.dtype) if x.dtype.kind in "ui"
         else np.clip(x, np.float32(10.5), np.float32(3000.5)), True),
        ("gaussian", ["--sigma", "2"], lambda x: ndi.gaussian_filter(x.astype(np.float64), 2).astype(np.float32), False),
        ("gaussian", ["--sigma", "1,0,1.5", "--mode", "constant", "--cval", "3"],
         lambda x: ndi.gaussian_filter(x.astype(np.float64), (1, 0, 1.5), mode="constant", cval=3).astype(np.float32), False),
        ("gaussian", ["--sigma", "1.2", "--mode", "wrap"],
         lambda x: ndi.gaussian_filter(x.astype(np.float64), 1.2, mode="wrap").astype(np.float32), False),
        ("uniform", ["--size", "3,4,1"],
         lambda x: ndi.uniform_filter(x.astype(np.float64), (3, 4, 1)).astype(np.float32), False),
        ("uniform", ["--size", "5", "--mode", "constant", "--cval", "-2"],
         lambda x: ndi.uniform_filter(x.astype(np.float64), 5, mode="constant", cval=-2).astype(np.float32), False),
        # scipy's origin: the window shifted against each axis.
        ("uniform", ["--size", "4,3,2", "--origin", "-2,1,0"],
         lambda x: ndi.uniform_filter(x.astype(np.float64), (4, 3, 2), origin=(-2, 1, 0)).astype(np.float32), False),
        # One mode per axis, and the Gaussian's derivatives.
        ("gaussian", ["--sigma", "1.2,0.8,1.5", "--mode", "wrap,constant,nearest", "--cval", "2",
                      "--order", "0,1,2"],
         lambda x: ndi.gaussian_filter(x.astype(np.float64), (1.2, 0.8, 1.5), order=(0, 1, 2),
                                       mode=("wrap", "constant", "nearest"), cval=2).astype(np.float32), False),
        ("uniform", ["--size", "3", "--mode", "reflect,wrap,constant"],
         lambda x: ndi.uniform_filter(x.astype(np.float64), 3,
                                      mode=("reflect", "wrap", "constant")).astype(np.float32), False),
        ("gaussian-laplace", ["--sigma", "1", "--mode", "nearest,wrap,mirror"],
         lambda x: ndi.gaussian_laplace(x.astype(np.float64), 1,
                                        mode=("nearest", "wrap", "mirror")).astype(np.float32), False),
        ("gaussian-laplace", ["--sigma", "1.5"],
         lambda x: ndi.gaussian_laplace(x.astype(np.float64), 1.5).astype(np.float32), False),
        ("gaussian-gradient-magnitude", ["--sigma", "2,0,1", "--mode", "constant", "--cval", "3"],
         lambda x: ndi.gaussian_gradient_magnitude(x.astype(np.float64), (2, 0, 1), mode="constant",
                                                   cval=3).astype(np.float32), False),
        ("median", ["--size", "3"], lambda x: ndi.median_filter(x, 3), True),
        ("median", ["--size", "2,3,1", "--mode", "constant", "--cval", "7"],
         lambda x: ndi.median_filter(x, (2, 3, 1), mode="constant", cval=7), True),
        ("percentile", ["--percentile", "30", "--size", "3", "--mode", "wrap"],
         lambda x: ndi.percentile_filter(x, 30, 3, mode="wrap"), True),
        ("percentile", ["--percentile", "-20", "--footprint", fpath, "--mode", "mirror"],
         lambda x: ndi.percentile_filter(x, -20, footprint=footprint, mode="mirror"), True),
        ("median", ["--size", "3", "--origin", "1,-1,0", "--mode", "wrap"],
         lambda x: ndi.median_filter(x, 3, origin=(1, -1, 0), mode="wrap"), True),
        ("minimum", ["--size", "3,1,4", "--mode", "nearest"],
         lambda x: ndi.minimum_filter(x, (3, 1, 4), mode="nearest"), True),
        ("maximum", ["--footprint", fpath, "--mode", "constant", "--cval", "5"],
         lambda x: ndi.maximum_filter(x, footprint=footprint, mode="constant", cval=5), True),
        ("convolve", ["--kernel", kpath, "--mode", "mirror"],
         lambda x: ndi.convolve(x.astype(np.float64), kernel, mode="mirror").astype(np.float32), False),
        ("convolve", ["--kernel", kpath, "--origin", "-1,1,0"],
         lambda x: ndi.convolve(x.astype(np.float64), kernel, origin=(-1, 1, 0)).astype(np.float32), False),
        ("project", ["--axis", "1", "--method", "max", "--keepdims"], lambda x: x.max(axis=1, keepdims=True), True),
        ("project", ["--axis", "0", "--method", "mean", "--keepdims"],
         lambda x: x.astype(np.float64).mean(axis=0, keepdims=True).astype(
             np.float64 if x.dtype.kind in "ui" else x.dtype), None),
        ("downsample", ["--factor", "2,3,2", "--method", "mean"], lambda x: ref_downsample(x, (2, 3, 2), "mean"), None),
        ("downsample", ["--factor", "3", "--method", "max"], lambda x: ref_downsample(x, (3, 3, 3), "max"), True),
        ("upsample", ["--factor", "2", "--method", "linear"],
         lambda x: cast(ndi.zoom(x.astype(np.float64), 2, order=1, grid_mode=True, mode="nearest"), x.dtype), None),
        ("upsample", ["--factor", "1,2,3", "--method", "nearest"],
         lambda x: np.repeat(np.repeat(x, 2, axis=1), 3, axis=2), True),
        # A final cast: rounded half to even and saturated (uint16's 60000 to 32767,
        # float32's -50.3 to -50), and a mask as float32.
        ("copy", ["--dtype", "int16"], lambda x: cast(x.astype(np.float64), np.int16), True),
        ("threshold", ["--above", "40", "--dtype", "float32"],
         lambda x: (x.astype(np.float64) > 40).astype(np.float32), True),
        ("median", ["--size", "2", "--dtype", "uint8"], lambda x: cast(ndi.median_filter(x, 2), np.uint8), True),
    ]
    n = 0
    for dtype, data in inputs.items():
        for layout, fmt, chunks, shards in layouts:
            src = write_input(os.path.join(tmp, f"in-{dtype}-{layout}.zarr"), data, fmt, chunks, shards)
            for i, (op, flags, ref, exact) in enumerate(cases):
                if exact is None:
                    exact = data.dtype.kind in "ui"
                for out_fmt, out_chunks in ((3, "5,6,7"), (2, None)):
                    dst = os.path.join(tmp, f"out-{dtype}-{layout}-{i}-{out_fmt}.zarr")
                    args = [op, src, dst, *flags, "--quiet", "--zarr-format", out_fmt, *DEVICE]
                    if out_chunks:
                        args += ["--chunks", out_chunks]
                    haloflow(bin_, *args)
                    got = zarr.open_array(dst, mode="r")[...]
                    want = ref(data)
                    check_result(got, want, exact, data, f"{op} {' '.join(flags)} {dtype} {layout} -> v{out_fmt}")
                    n += 1
    # Chains (`run`, ops joined by +) against scipy and numpy applied op after op on the
    # whole array, not against haloflow's own in-memory pipeline.
    chains = 0
    for dtype, data in inputs.items():
        smooth = ndi.gaussian_filter(data.astype(np.float64), 1.5)
        # A threshold midway in the widest gap between smoothed values near the 70th
        # percentile, so that float32 rounding cannot move a value across it.
        near = np.sort(smooth.ravel())[int(0.7 * smooth.size) - 50:int(0.7 * smooth.size) + 50]
        gap = int(np.argmax(np.diff(near)))
        t = float((near[gap] + near[gap + 1]) / 2)
        check(near[gap + 1] - near[gap] > 1e-4 * float(np.ptp(smooth)), f"chain threshold {t}: no wide gap")
        lo, hi = (0.5, 100.5) if dtype == "float32" else (1000.5, 50000.5)
        clipped = (lambda x: np.clip(x, np.float32(lo), np.float32(hi))) if dtype == "float32" else (
            lambda x: cast(np.clip(x.astype(np.float64), lo, hi), x.dtype))
        cases = [
            (["gaussian", "--sigma", "1.5", "+", "threshold", "--above", repr(t), "+",
              "downsample", "--factor", "2", "--method", "max"],
             ref_downsample((smooth > t).astype(np.uint8), (2, 2, 2), "max"), True, "5,6,7"),
            (["median", "--size", "3", "+", "clip", "--min", str(lo), "--max", str(hi), "+",
              "upsample", "--factor", "2,1,3", "--method", "nearest"],
             np.repeat(np.repeat(clipped(ndi.median_filter(data, 3)), 2, axis=0), 3, axis=2), True, "5,6,7"),
            # The projection drops axis 0: chunks of the 2-D result.
            (["uniform", "--size", "3", "--mode", "wrap", "+", "project", "--axis", "0", "--method", "max"],
             ndi.uniform_filter(data.astype(np.float64), 3, mode="wrap").astype(np.float32).max(axis=0), False,
             "6,7"),
        ]
        for layout, fmt, chunks, shards in layouts:
            src = os.path.join(tmp, f"in-{dtype}-{layout}.zarr")
            for i, (chain, want, exact, out_chunks) in enumerate(cases):
                dst = os.path.join(tmp, f"chain-{dtype}-{layout}-{i}.zarr")
                haloflow(bin_, "run", src, dst, "--quiet", "--chunks", out_chunks, *DEVICE, *chain)
                got = zarr.open_array(dst, mode="r")[...]
                check_result(got, want, exact, data, f"run {' '.join(chain)} {dtype} {layout}")
                chains += 1
    # Rank filters whose halo (up to 4) is wider than the input's chunks (2 x 3 x 2) and
    # the output's (3 x 2 x 3): each job's footprint spans chunks beyond its neighbours'.
    for dtype, data in inputs.items():
        src = write_input(os.path.join(tmp, f"in-{dtype}-tiny.zarr"), data, 3, (2, 3, 2))
        for i, (op, flags, ref) in enumerate([
            # 105 taps: within the GPU's rank kernel (125), halos 2 x 1 x 3.
            ("percentile", ["--percentile", "80", "--size", "5,3,7", "--mode", "wrap"],
             lambda x: ndi.percentile_filter(x, 80, (5, 3, 7), mode="wrap")),
            ("percentile", ["--percentile", "10", "--footprint", fpath, "--mode", "constant", "--cval", "3"],
             lambda x: ndi.percentile_filter(x, 10, footprint=footprint, mode="constant", cval=3)),
            ("minimum", ["--size", "7,9,5", "--mode", "reflect"],
             lambda x: ndi.minimum_filter(x, (7, 9, 5), mode="reflect")),
        ]):
            dst = os.path.join(tmp, f"tiny-{dtype}-{i}.zarr")
            haloflow(bin_, op, src, dst, *flags, "--quiet", "--chunks", "3,2,3", *DEVICE)
            got = zarr.open_array(dst, mode="r")[...]
            check(np.array_equal(got, ref(data)), f"{op} {' '.join(flags)} {dtype} on 2x3x2 chunks: not equal")
            chains += 1
    print(f"conformance ({' '.join(DEVICE)}): {n} runs and {chains} chains and small-chunk runs checked",
          flush=True)


def stats(bin_, tmp):
    """`stats` equals numpy on the whole array: exact percentiles (np.nanpercentile,
    linear), np.histogram's counts and edges, min and max; mean and std within float64
    rounding; per index along an axis. `threshold --otsu` equals
    skimage.filters.threshold_otsu, `threshold --percentile` np.percentile, and
    `normalize` CSBDeep's float32 formula, each recording the value it used."""
    from skimage.filters import threshold_otsu

    rng = np.random.default_rng(3)
    shape = (17, 33, 29)
    arrays = {
        "uint16": rng.integers(0, 60000, shape).astype(np.uint16),
        "float32": rng.normal(10, 3, shape).astype(np.float32),
        "int8": rng.integers(-128, 128, shape).astype(np.int8),
        "uint32": rng.integers(0, 2**32 - 1, shape, dtype=np.uint64).astype(np.uint32),
        "float64": rng.normal(0, 1e3, shape),
        "uint8-levels": rng.integers(0, 5, shape).astype(np.uint8),
    }
    arrays["float32-nan"] = arrays["float32"].copy()
    arrays["float32-nan"][3, 4:9] = np.nan
    arrays["uint16-constant"] = np.full(shape, 7, dtype=np.uint16)
    percentiles = [0, 1, 33.3, 50, 99.8, 100]
    n = 0
    for name, x in arrays.items():
        src = write_input(os.path.join(tmp, f"stats-{name}.zarr"), x, 3, (5, 8, 7), None)
        run = haloflow(bin_, "stats", src, "--percentiles", ",".join(map(str, percentiles)),
                       "--histogram", "7", "--json", "-")
        s = json.loads(run.stdout)["summaries"][0]
        finite = x[~np.isnan(x)] if x.dtype.kind == "f" else x
        want_p = np.nanpercentile(x, percentiles).tolist()
        got_p = [p["value"] for p in s["percentiles"]]
        check(got_p == want_p, f"stats {name}: percentiles {got_p} != {want_p}")
        # Without a histogram, 32- and 64-bit types resolve percentiles from the values
        # the first pass keeps near its guess; keeping none, by refining passes.
        for keep in ([], ["--keep-decoded", "0"]):
            run = haloflow(bin_, "stats", src, "--percentiles", ",".join(map(str, percentiles)), *keep,
                           "--json", "-")
            alone = [p["value"] for p in json.loads(run.stdout)["summaries"][0]["percentiles"]]
            check(alone == want_p, f"stats {name} {keep}: percentiles {alone} != {want_p}")
            n += 1
        counts, edges = np.histogram(finite, 7)
        check(s["histogram"]["counts"] == counts.tolist(), f"stats {name}: histogram counts differ")
        check(s["histogram"]["edges"] == edges.astype(np.float64).tolist(), f"stats {name}: edges differ")
        check(s["min"] == float(np.nanmin(x)) and s["max"] == float(np.nanmax(x)), f"stats {name}: min/max")
        check(s["count"] == finite.size and s["nan_count"] == x.size - finite.size, f"stats {name}: counts")
        mean, std = float(np.mean(finite, dtype=np.float64)), float(np.std(finite, dtype=np.float64))
        check(abs(s["mean"] - mean) <= 1e-12 * max(abs(mean), 1.0) * 1e3, f"stats {name}: mean {s['mean']} != {mean}")
        check(abs(s["std"] - std) <= 1e-9 * max(std, 1.0), f"stats {name}: std {s['std']} != {std}")
        run = haloflow(bin_, "stats", src, "--axis", "1", "--percentiles", "50", "--json", "-")
        per = json.loads(run.stdout)["summaries"]
        want = np.nanpercentile(x, 50, axis=(0, 2))
        check(len(per) == shape[1] and all(per[i]["percentiles"][0]["value"] == want[i] for i in range(shape[1])),
              f"stats {name}: per-axis medians differ")
        n += 2
        if name == "uint32":
            # One bin per integer over 2^32 values: refused clearly, as skimage would
            # need 32 GiB for it.
            dst = os.path.join(tmp, "stats-otsu-u32.zarr")
            run = haloflow(bin_, "threshold", src, dst, "--otsu", "--quiet", *DEVICE, check_ok=False)
            check(run.returncode != 0 and "too many" in run.stderr and not os.path.exists(dst),
                  f"stats: otsu on a wide uint32 range: {run.returncode} {run.stderr}")
            continue
        for flags, ref, key in (
            (["--otsu"], lambda x: threshold_otsu(finite) if finite.min() != finite.max() else finite.min(), "otsu"),
            (["--percentile", "90"], lambda x: np.nanpercentile(x, [90])[0], "percentiles"),
        ):
            dst = os.path.join(tmp, f"stats-thr-{name}-{key}.zarr")
            report = os.path.join(tmp, f"stats-thr-{name}-{key}.json")
            haloflow(bin_, "threshold", src, dst, *flags, "--quiet", "--report", report, *DEVICE)
            t = ref(x)
            got = zarr.open_array(dst, mode="r")
            check(np.array_equal(got[...], (x.astype(np.float64) > t).astype(np.uint8)),
                  f"threshold {' '.join(flags)} {name}: differs from x > {t}")
            if key == "otsu" and name == "uint16":
                run = haloflow(bin_, "info", src, "threshold", "--otsu")
                check(f'"otsu":{float(t)}' in run.stdout.replace(" ", ""), f"info threshold --otsu: {run.stdout}")
            used = json.load(open(report))["statistics"]
            recorded = got.attrs["haloflow"]["statistics"]
            value = used["otsu"] if key == "otsu" else used["percentiles"][0][1]
            check(value == float(t) and recorded == used, f"threshold {' '.join(flags)} {name}: recorded {used}, want {t}")
            n += 1
        for clip in (False, True):
            dst = os.path.join(tmp, f"stats-norm-{name}-{clip}.zarr")
            haloflow(bin_, "normalize", src, dst, "--percentiles", "2,99.5", *(["--clip"] if clip else []),
                     "--quiet", *DEVICE)
            lo, hi = (np.float32(v) for v in np.nanpercentile(x, [2, 99.5]))
            want = (x.astype(np.float32) - lo) / (hi - lo + np.float32(1e-20))
            if clip:
                want = np.clip(want, 0, 1)
            got = zarr.open_array(dst, mode="r")[...]
            if DEVICE[1] == "cpu":
                check(np.array_equal(got, want, equal_nan=True), f"normalize {name} clip={clip}: not equal")
            else:
                err = float(np.nanmax(np.abs(got.astype(np.float64) - want)))
                check(err <= 1e-5 * max(float(np.nanmax(np.abs(want))), 1.0), f"normalize {name}: max error {err}")
            n += 1
    print(f"stats: {n} runs checked ({' '.join(DEVICE)})", flush=True)


def codecs(bin_, tmp):
    """Arrays compressed the ways other tools write them are read (zlib, bz2 and gzip
    from numcodecs on v2, gzip on v3); lzma, which zarrs lacks, is refused clearly."""
    import numcodecs

    rng = np.random.default_rng(11)
    data = rng.integers(0, 4000, (9, 21, 17)).astype(np.uint16)
    readable = [
        ("v2-zlib", 2, numcodecs.Zlib(level=5)),
        ("v2-bz2", 2, numcodecs.BZ2(level=5)),
        ("v2-gzip", 2, numcodecs.GZip(level=5)),
        ("v3-gzip", 3, zarr.codecs.GzipCodec(level=5)),
    ]
    for name, fmt, compressor in readable:
        src = os.path.join(tmp, f"codec-{name}.zarr")
        arr = zarr.create_array(store=src, shape=data.shape, chunks=(4, 8, 8), dtype=data.dtype,
                                zarr_format=fmt, compressors=compressor)
        arr[...] = data
        for op, flags, ref in (("copy", [], data),
                               ("gaussian", ["--sigma", "1"],
                                ndi.gaussian_filter(data.astype(np.float64), 1).astype(np.float32))):
            dst = os.path.join(tmp, f"codec-{name}-{op}.zarr")
            haloflow(bin_, op, src, dst, *flags, "--quiet", *DEVICE)
            got = zarr.open_array(dst, mode="r")[...]
            if op == "copy":
                check(np.array_equal(got, ref), f"codec {name}: copy differs")
            else:
                err = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
                check(err <= 1e-2, f"codec {name}: gaussian max error {err}")
        run = haloflow(bin_, "info", src)
        check(run.returncode == 0, f"codec {name}: info failed")
    src = os.path.join(tmp, "codec-v2-lzma.zarr")
    arr = zarr.create_array(store=src, shape=data.shape, chunks=(4, 8, 8), dtype=data.dtype,
                            zarr_format=2, compressors=numcodecs.LZMA())
    arr[...] = data
    dst = os.path.join(tmp, "codec-lzma-out.zarr")
    run = haloflow(bin_, "copy", src, dst, "--quiet", *DEVICE, check_ok=False)
    check(run.returncode != 0 and "lzma" in run.stderr and not os.path.exists(dst),
          f"codec lzma: expected a clear refusal, got {run.returncode}: {run.stderr}")
    print(f"codecs: {len(readable)} codecs read, lzma refused", flush=True)


def check_ome_valid(path, what):
    """Checks that ome-zarr-models accepts the image group at path."""
    from ome_zarr_models import open_ome_zarr

    try:
        open_ome_zarr(zarr.open_group(path, mode="r"))
    except Exception as e:  # the validator's message says what is wrong
        check(False, f"{what}: ome-zarr-models rejects it: {e}")


def ome_multiscale(path):
    """(version, multiscales[0], omero) of an image group, as written."""
    g = zarr.open_group(path, mode="r")
    attrs = g.attrs.asdict()
    if "ome" in attrs:
        return "0.5", attrs["ome"]["multiscales"][0], attrs["ome"].get("omero")
    return attrs["multiscales"][0]["version"], attrs["multiscales"][0], attrs.get("omero")


def transforms(ms, i=0):
    scale, trans = None, None
    for t in ms["datasets"][i]["coordinateTransformations"]:
        if t["type"] == "scale":
            scale = t["scale"]
        if t["type"] == "translation":
            trans = t["translation"]
    return np.array(scale, float), np.array(trans if trans is not None else [0.0] * len(scale), float)


def ome(bin_, tmp):
    """OME-Zarr images written by ome-zarr-py (NGFF 0.4 and 0.5, 4-D CZYX and 5-D
    TCZYX) in, OME-Zarr images out: each output validates with ome-zarr-models, reads
    with ome-zarr-py's reader, has the scale and translation the op implies, keeps
    axes, units and channels, and holds the values of the same op on the plain array."""
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader
    from ome_zarr.writer import write_image

    rng = np.random.default_rng(5)
    images = [
        ("v04-czyx", FormatV04(), ["c", "z", "y", "x"], (2, 9, 20, 18), (1, 5, 8, 8)),
        ("v05-tczyx", FormatV05(), ["t", "c", "z", "y", "x"], (2, 2, 7, 16, 15), (1, 1, 4, 8, 8)),
    ]
    n = 0
    for name, fmt, axes, shape, chunks in images:
        data = (rng.random(shape) * 1000).astype(np.uint16)
        src = os.path.join(tmp, f"ome-{name}.zarr")
        g = zarr.open_group(src, mode="w", zarr_format=fmt.zarr_format)
        scale0 = [1.0] * (len(axes) - 3) + [2.0, 0.4, 0.4]
        trans0 = [0.0] * (len(axes) - 3) + [10.0, -3.0, 5.0]
        axis_meta = [{"name": a, "type": {"t": "time", "c": "channel"}.get(a, "space"),
                      **({"unit": "micrometer"} if a in "zyx" else {})} for a in axes]
        write_image(data, g, axes=[{k: v for k, v in a.items() if k != "unit"} for a in axis_meta],
                    fmt=fmt, scale_factors=(2,), scale=dict(zip(axes, scale0)),
                    axes_units={a: "micrometer" for a in "zyx"}, storage_options=dict(chunks=chunks))
        omero = {"channels": [{"label": f"ch{i}", "color": "00FF00", "active": True,
                               "window": {"start": 0, "end": 1000, "min": 0, "max": 65535}}
                              for i in range(2)], "rdefs": {"model": "color"}}
        attrs = g.attrs.asdict()
        ome_attrs = attrs["ome"] if "ome" in attrs else attrs
        ome_attrs["omero"] = omero
        # A translation on level 0, as a registered image has.
        for t in ome_attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"]:
            if t["type"] == "translation":
                t["translation"] = trans0
        g.attrs.update(attrs)
        _, ms_in, _ = ome_multiscale(src)
        check(np.allclose(transforms(ms_in)[0], scale0), f"ome {name}: the writer's scale {ms_in}")
        check(any(a.get("unit") == "micrometer" for a in ms_in["axes"]), f"ome {name}: the writer's units")
        level = os.path.join(src, ms_in["datasets"][0]["path"])
        plain = os.path.join(tmp, f"plain-{name}.zarr")
        zarr.create_array(store=plain, shape=shape, chunks=chunks, dtype=data.dtype,
                          zarr_format=3)[...] = data
        ones = ["1"] * (len(axes) - 3)
        kernel_path = os.path.join(tmp, f"kernel-{name}.npy")
        f = np.array([1] * (len(axes) - 3) + [1, 2, 3], float)
        cases = [
            ("gaussian", ["--sigma", ",".join(["0"] * (len(axes) - 3) + ["1", "1.5", "1.5"])],
             scale0, trans0, True),
            ("downsample", ["--factor", ",".join(ones + ["1", "2", "3"]), "--method", "mean"],
             np.array(scale0) * f, np.array(trans0) + (f - 1) / 2 * np.array(scale0), True),
            ("downsample", ["--factor", ",".join(ones + ["1", "2", "3"]), "--method", "stride"],
             np.array(scale0) * f, trans0, True),
            ("upsample", ["--factor", ",".join(ones + ["1", "2", "3"]), "--method", "linear"],
             np.array(scale0) / f, np.array(trans0) - (f - 1) / 2 * np.array(scale0) / f, True),
            ("threshold", ["--above", "500"], scale0, trans0, False),
            ("clip", ["--min", "100", "--max", "900"], scale0, trans0, True),
            ("convolve", ["--kernel", kernel_path], scale0, trans0, True),
            # A chain: a filter, a threshold, then a downsampling: the transform of the last.
            ("run", ["gaussian", "--sigma", ",".join(["0"] * (len(axes) - 3) + ["1", "1", "1"]), "+",
                     "threshold", "--above", "500", "+",
                     "downsample", "--factor", ",".join(ones + ["1", "2", "3"]), "--method", "max"],
             np.array(scale0) * f, np.array(trans0) + (f - 1) / 2 * np.array(scale0), False),
        ]
        kernel = np.zeros((3,) * len(axes))
        kernel[(1,) * (len(axes) - 1) + (slice(None),)] = [0.25, 0.5, 0.25]
        np.save(kernel_path, kernel)
        for i, (op, flags, want_scale, want_trans, same_dtype) in enumerate(cases):
            for version in (None, "0.4", "0.5"):
                dst = os.path.join(tmp, f"ome-out-{name}-{i}-{version}.zarr")
                extra = ["--ngff-version", version] if version else []
                if op == "run":  # the run's flags go before its chain
                    haloflow(bin_, op, src, dst, "--quiet", *DEVICE, *extra, *flags)
                else:
                    haloflow(bin_, op, src, dst, *flags, "--quiet", *DEVICE, *extra)
                what = f"ome {name} {op} {' '.join(flags)} -> {version or 'same'}"
                got_version, ms, got_omero = ome_multiscale(dst)
                check(got_version == (version or fmt.version), f"{what}: NGFF {got_version}")
                check_ome_valid(dst, what)
                node = list(Reader(parse_url(dst))())[0]
                s, t = transforms(ms)
                check(np.allclose(s, want_scale) and np.allclose(t, want_trans),
                      f"{what}: scale {s} translation {t}, expected {want_scale} {want_trans}")
                check([a["name"] for a in ms["axes"]] == axes, f"{what}: axes {ms['axes']}")
                check(all(a.get("unit") == "micrometer" for a in ms["axes"] if a["name"] in "zyx"),
                      f"{what}: units lost")
                first_op = flags[0] if op == "run" else op
                check(ms["metadata"]["pipeline"]["ops"][0]["op"] == first_op, f"{what}: chain not recorded")
                check(got_omero is not None and [c["label"] for c in got_omero["channels"]] == ["ch0", "ch1"],
                      f"{what}: channels lost: {got_omero}")
                check(same_dtype or all(c["window"]["end"] == 1 for c in got_omero["channels"]),
                      f"{what}: a mask's display window is not 0 to 1: {got_omero}")
                arr = zarr.open_array(os.path.join(dst, "0"), mode="r")
                if got_version == "0.5":
                    check(list(arr.metadata.dimension_names or []) == axes, f"{what}: dimension_names")
                plain_out = os.path.join(tmp, f"ome-plain-{name}-{i}.zarr")
                if not os.path.exists(plain_out):
                    if op == "run":
                        haloflow(bin_, op, plain, plain_out, "--quiet", *DEVICE, *flags)
                    else:
                        haloflow(bin_, op, plain, plain_out, *flags, "--quiet", *DEVICE)
                check(np.array_equal(np.asarray(node.data[0]), zarr.open_array(plain_out, mode="r")[...]),
                      f"{what}: values differ from the plain array's")
                n += 1
        # A maximum-intensity projection along z drops the axis from the metadata.
        z = len(axes) - 3
        for version in ("0.4", "0.5"):
            dst = os.path.join(tmp, f"ome-mip-{name}-{version}.zarr")
            haloflow(bin_, "project", src, dst, "--axis", str(z), "--method", "max", "--ngff-version", version,
                     "--quiet", *DEVICE)
            what = f"ome {name} project z -> {version}"
            check_ome_valid(dst, what)
            got_version, ms, got_omero = ome_multiscale(dst)
            s, t = transforms(ms)
            keep = [a for a in range(len(axes)) if a != z]
            check([a["name"] for a in ms["axes"]] == [axes[a] for a in keep], f"{what}: axes {ms['axes']}")
            check(np.allclose(s, np.array(scale0)[keep]) and np.allclose(t, np.array(trans0)[keep]),
                  f"{what}: scale {s} translation {t}")
            check(got_omero is not None and len(got_omero["channels"]) == 2, f"{what}: channels lost")
            node = list(Reader(parse_url(dst))())[0]
            check(np.array_equal(np.asarray(node.data[0]), data.max(axis=z)), f"{what}: values differ from numpy")
            n += 1
        # A level by its path or by --level: the same output.
        a, b = os.path.join(tmp, f"lvl-a-{name}.zarr"), os.path.join(tmp, f"lvl-b-{name}.zarr")
        haloflow(bin_, "copy", level, a, "--quiet", *DEVICE)
        haloflow(bin_, "copy", src, b, "--level", "0", "--quiet", *DEVICE)
        check(np.array_equal(zarr.open_array(os.path.join(a, "0"))[...], zarr.open_array(os.path.join(b, "0"))[...]),
              f"ome {name}: level path and --level differ")
        run = haloflow(bin_, "info", src)
        check("OME-Zarr image" in run.stdout and "channels: ch0" in run.stdout, f"ome {name}: info: {run.stdout}")
        # Sigma in physical units: 0.8 um is 2 pixels in y and x (0.4 um) and 0.4 in z (2 um).
        lead = ["0"] * (len(axes) - 3)
        a, b = os.path.join(tmp, f"phys-a-{name}.zarr"), os.path.join(tmp, f"phys-b-{name}.zarr")
        haloflow(bin_, "gaussian", src, a, "--sigma", ",".join(lead + ["800nm", "0.8um", "0.0008mm"]),
                 "--quiet", *DEVICE)
        haloflow(bin_, "gaussian", src, b, "--sigma", ",".join(lead + ["0.4", "2", "2"]), "--quiet", *DEVICE)
        check(np.array_equal(zarr.open_array(os.path.join(a, "0"))[...], zarr.open_array(os.path.join(b, "0"))[...]),
              f"ome {name}: a sigma in micrometers differs from the same sigma in pixels")
        run = haloflow(bin_, "gaussian", src, os.path.join(tmp, "phys-c.zarr"), "--sigma", "1um", "--quiet",
                       *DEVICE, check_ok=False)
        check(run.returncode != 0 and "no length unit" in run.stderr, f"ome {name}: 1um on a channel axis: {run.stderr}")
    # Images written by ngff-zarr (levels nested as scale0/image), by the group or by
    # a level's path.
    import ngff_zarr as nz

    x = (rng.random((10, 24, 20)) * 1000).astype(np.uint16)
    image = nz.to_ngff_image(x, dims=["z", "y", "x"], scale={"z": 2.0, "y": 0.5, "x": 0.5},
                             translation={"z": 1.0, "y": 0.0, "x": 0.0},
                             axes_units={a: "micrometer" for a in "zyx"})
    multiscales = nz.to_multiscales(image, scale_factors=[2], chunks=(5, 8, 8))
    for version in ("0.4", "0.5"):
        src = os.path.join(tmp, f"ngff-zarr-{version}.zarr")
        nz.to_ngff_zarr(src, multiscales, version=version)
        for given in (src, os.path.join(src, "scale1", "image")):
            dst = os.path.join(tmp, f"ngff-zarr-out-{version}-{len(given)}.zarr")
            haloflow(bin_, "downsample", given, dst, "--factor", "2", "--quiet", *DEVICE)
            what = f"ngff-zarr {version} input {os.path.relpath(given, tmp)}"
            check_ome_valid(dst, what)
            got_version, ms, _ = ome_multiscale(dst)
            s, t = transforms(ms)
            level1 = given != src
            want_s = np.array([2.0, 0.5, 0.5]) * (4 if level1 else 2)
            base_t = np.array([2.0, 0.25, 0.25]) if level1 else np.array([1.0, 0.0, 0.0])
            base_s = np.array([4.0, 1.0, 1.0]) if level1 else np.array([2.0, 0.5, 0.5])
            check(got_version == version and np.allclose(s, want_s) and np.allclose(t, base_t + base_s / 2),
                  f"{what}: NGFF {got_version}, scale {s}, translation {t}")
    # A plain 2-D array made an image with --ome.
    src = os.path.join(tmp, "plain2d.zarr")
    zarr.create_array(store=src, shape=(30, 40), chunks=(16, 16), dtype="float32", zarr_format=2)[...] = \
        rng.random((30, 40)).astype(np.float32)
    for version in ("0.4", "0.5"):
        dst = os.path.join(tmp, f"plain2d-{version}.zarr")
        haloflow(bin_, "downsample", src, dst, "--factor", "2", "--ome", "--axes", "y,x", "--scale", "0.5,0.25",
                 "--units", "micrometer,micrometer", "--ngff-version", version, "--quiet", *DEVICE)
        check_ome_valid(dst, f"--ome {version}")
        _, ms, _ = ome_multiscale(dst)
        s, t = transforms(ms)
        check(np.allclose(s, [1.0, 0.5]) and np.allclose(t, [0.25, 0.125]), f"--ome {version}: {s} {t}")
    print(f"ome: {n} outputs validated and read", flush=True)


def pyramid(bin_, tmp):
    """`haloflow pyramid` on a 5-D TCZYX image (NGFF 0.5) and a 3-D one (0.4): every
    level equals numpy's downsampling of the previous level (exactly for mean, max,
    min, mode and stride; for gaussian scipy's float64 value rounded, either neighbour
    only within float32 rounding of a half), its metadata is right, the image
    validates and reads back, and a killed run resumes to identical bytes."""
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader
    from ome_zarr.writer import write_image

    rng = np.random.default_rng(9)
    images = [
        ("tczyx", FormatV05(), ["t", "c", "z", "y", "x"], (2, 2, 9, 22, 19), (1, 1, 4, 8, 8), (1, 1, 2, 2, 2)),
        ("zyx", FormatV04(), ["z", "y", "x"], (13, 30, 27), (5, 8, 8), (2, 2, 2)),
    ]
    for name, fmt, axes, shape, chunks, f in images:
        data = rng.integers(0, 6, shape).astype(np.uint16) * 1000 + rng.integers(0, 999, shape).astype(np.uint16)
        src = os.path.join(tmp, f"pyr-in-{name}.zarr")
        g = zarr.open_group(src, mode="w", zarr_format=fmt.zarr_format)
        write_image(data, g, axes=axes, fmt=fmt, scale_factors=(), storage_options=dict(chunks=chunks),
                    scale={a: s for a, s in zip(axes, [1.0] * (len(axes) - 3) + [2.0, 0.5, 0.5])})
        _, ms_in, _ = ome_multiscale(src)
        scale0, trans0 = transforms(ms_in)
        for method in ("mean", "max", "min", "mode", "stride", "gaussian"):
            dst = os.path.join(tmp, f"pyr-{name}-{method}.zarr")
            haloflow(bin_, "pyramid", src, dst, "--levels", "3", "--method", method, "--quiet", *DEVICE)
            what = f"pyramid {name} {method}"
            version, ms, _ = ome_multiscale(dst)
            check(version == fmt.version, f"{what}: NGFF {version}")
            check(len(ms["datasets"]) == 3 and ms["type"] == method, f"{what}: {len(ms['datasets'])} levels, {ms['type']}")
            check_ome_valid(dst, what)
            node = list(Reader(parse_url(dst))())[0]
            check(len(node.data) == 3, f"{what}: ome-zarr-py reads {len(node.data)} levels")
            prev = zarr.open_array(os.path.join(dst, "0"), mode="r")[...]
            check(np.array_equal(prev, data), f"{what}: level 0 differs from the input")
            fa = np.array(f, float)
            for k in (1, 2):
                got = zarr.open_array(os.path.join(dst, str(k)), mode="r")[...]
                if method in ("mean", "max", "min"):
                    want = ref_downsample(prev, f, method)
                elif method == "stride":
                    want = prev[tuple(slice(None, None, s) for s in f)]
                elif method == "mode":
                    want = ref_mode(prev, f)
                else:
                    sigma = [s / 3 if s > 1 else 0 for s in f]
                    smooth = ndi.gaussian_filter(prev.astype(np.float64), sigma, mode="reflect")
                    exact_mean = ref_downsample(smooth, f, "mean")
                    want = cast(exact_mean, prev.dtype)
                if method == "gaussian":
                    # The rounding rule (half to even, saturating) on scipy's float64
                    # value, exactly; only where that value lies within float32's
                    # rounding of a half (a few ulps of each of the ~30 float32 sums
                    # and products behind it: 4e-6 of the value) may either
                    # neighbour come out.
                    ok = got.shape == want.shape
                    if ok:
                        half = np.abs(exact_mean - np.floor(exact_mean) - 0.5) <= 4e-6 * np.maximum(np.abs(exact_mean), 1)
                        lo, hi = cast(np.floor(exact_mean), prev.dtype), cast(np.ceil(exact_mean), prev.dtype)
                        good = np.where(half, (got == lo) | (got == hi), got == want)
                        ok = bool(good.all())
                        err = int(np.max(np.abs(got.astype(np.int64) - want.astype(np.int64))))
                    check(ok, f"{what}: level {k} differs from the rounded float64 mean "
                              f"(max error {err if got.shape == want.shape else 'shape'}, "
                              f"{int(half.sum()) if got.shape == want.shape else 0} values near a half)")
                else:
                    check(got.shape == want.shape and np.array_equal(got, want), f"{what}: level {k} differs")
                s, t = transforms(ms, k)
                want_t = trans0 + (0 if method == "stride" else 1) * (fa ** k - 1) / 2 * scale0
                check(np.allclose(s, scale0 * fa ** k) and np.allclose(t, want_t),
                      f"{what}: level {k} scale {s} translation {t}")
                prev = got
    # Level 0 stored as the input encodes it: where the output's codecs are the input's
    # (bytes, zstd 3, haloflow's default), each chunk is copied byte for byte and a
    # chunk the input lacks is written from its values (the fill value); from an
    # uncompressed input level 0 is encoded again. Level 1 is right either way.
    data = rng.random((20, 24, 24)).astype(np.float32) + 1
    data[8:16, 8:16, 0:8] = 0  # one chunk equal to the fill value: zarr-python omits it
    for label, level in (("same codecs", 3), ("other codecs", None)):
        src = os.path.join(tmp, f"pyr-encoded-{level}.zarr")
        zarr.create_array(store=src, shape=data.shape, chunks=(8, 8, 8), dtype="float32", zarr_format=3,
                          compressors=level and zarr.codecs.ZstdCodec(level=level), fill_value=0.0)[...] = data
        if level:
            # Frames that carry a checksum (which the metadata does not ask for, and
            # which decoders verify and accept): bytes no zstd 3 encode of the values
            # makes, so only a copy of the stored chunk can give them.
            for k in tree_bytes(src):
                if k.startswith("c"):
                    path = os.path.join(src, k)
                    with open(path, "rb") as fh:
                        raw = numcodecs.Zstd().decode(fh.read())
                    with open(path, "wb") as fh:
                        fh.write(numcodecs.Zstd(level=3, checksum=True).encode(raw))
        dst = os.path.join(tmp, f"pyr-encoded-{level}-out.zarr")
        haloflow(bin_, "pyramid", src, dst, "--levels", "2", "--method", "mean", "--quiet", *DEVICE)
        what = f"pyramid level 0, {label}"
        got = zarr.open_array(os.path.join(dst, "0"), mode="r")[...]
        check(np.array_equal(got, data), f"{what}: values differ from the input")
        level1 = zarr.open_array(os.path.join(dst, "1"), mode="r")[...]
        want = ref_downsample(data, (2, 2, 2), "mean")
        check(np.allclose(level1, want, rtol=1e-6, atol=0), f"{what}: level 1 differs")
        chunks_in = {k: v for k, v in tree_bytes(src).items() if k.startswith("c")}
        chunks_out = {k: v for k, v in tree_bytes(os.path.join(dst, "0")).items() if k.startswith("c")}
        absent = os.path.join("c", "1", "1", "0")
        check(absent not in chunks_in and absent in chunks_out,
              f"{what}: the chunk equal to the fill value is {'absent' if absent not in chunks_out else 'written'}")
        same = [k for k in chunks_in if chunks_out.get(k) == chunks_in[k]]
        if level == 3:
            check(len(same) == len(chunks_in) == len(chunks_out) - 1,
                  f"{what}: {len(same)} of {len(chunks_in)} chunks copied as encoded ({len(chunks_out)} written)")
        else:
            check(not same, f"{what}: {len(same)} chunks kept uncompressed")
    # A killed run resumes to the same bytes: with output chunks of their own, and
    # with the input's chunks and codecs (level 0 copied as encoded).
    src, _ = big_input(tmp)
    kills, total = 0, 0
    for n, extra in enumerate((["--chunks", "16,32,32"], [])):
        args = ["pyramid", src, None, "--levels", "4", *extra, "--threads", "2", "--quiet"]
        ref = os.path.join(tmp, f"pyr-ref-{n}.zarr")
        haloflow(bin_, *[ref if a is None else a for a in args])
        chunks = count_chunks(ref)
        dst = os.path.join(tmp, f"pyr-resumed-{n}.zarr")
        killed = killed_runs(bin_, args, dst, chunks, random.Random(4 + n), 4)
        haloflow(bin_, *[dst if a is None else a for a in args])
        # Temporaries of killed runs (in .haloflow-tmp, removed once stale) do not count.
        visible = lambda tree: {k: v for k, v in tree.items() if not any(p.startswith(".") for p in k.split(os.sep))}
        got, want = visible(tree_bytes(dst)), visible(tree_bytes(ref))
        check(killed > 0, f"pyramid resume {extra}: no run was killed mid-way")
        check(got == want, f"pyramid resume {extra}: differs from one run ({sorted(set(got) ^ set(want))[:5]})")
        kills, total = kills + killed, total + chunks
    print(f"pyramid: 2 images x 5 methods checked; {kills} kills of {total} chunks resumed identically", flush=True)


def ref_mode(x, f):
    """Most frequent value of each window, ties to the smallest (haloflow's rule)."""
    out_shape = tuple(-(-n // k) for n, k in zip(x.shape, f))
    out = np.empty(out_shape, dtype=x.dtype)
    for idx in np.ndindex(*out_shape):
        w = x[tuple(slice(i * k, i * k + k) for i, k in zip(idx, f))].ravel()
        values, counts = np.unique(w, return_counts=True)
        out[idx] = values[np.argmax(counts)]
    return out


def tree_bytes(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def big_input(tmp, shape=(64, 256, 256), chunks=(16, 64, 64)):
    rng = np.random.default_rng(3)
    data = (rng.random(shape, dtype=np.float32) * 100).astype(np.float32)
    path = os.path.join(tmp, "big.zarr")
    if not os.path.exists(path):
        write_input(path, data, 3, chunks)
    return path, data


def count_chunks(root):
    n = 0
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        n += sum(1 for f in files if not f.startswith(".") and f not in ("zarr.json", ".zarray", ".zattrs"))
    return n


def killed_runs(bin_, args, dst, total, rnd, n):
    """Starts `haloflow *args` (None standing for `dst`) n times, each killed with SIGKILL
    once a random number of the output's `total` chunks exist; returns how many runs
    were killed before they finished."""
    kills = 0
    for target in sorted(rnd.sample(range(1, total), n)):
        proc = subprocess.Popen([bin_, *[dst if a is None else a for a in args]],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and count_chunks(dst) < target:
            time.sleep(0.001)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    return kills


def resume(bin_, tmp):
    src, _ = big_input(tmp)
    args = ["gaussian", src, None, "--sigma", "2", "--quiet", "--chunks", "16,32,32", "--threads", "2", *DEVICE]
    ref_dst = os.path.join(tmp, "resume-ref.zarr")
    haloflow(bin_, *[ref_dst if a is None else a for a in args])
    want = tree_bytes(ref_dst)
    total = count_chunks(ref_dst)
    dst = os.path.join(tmp, "resume.zarr")
    kills = killed_runs(bin_, args, dst, total, random.Random(11), 6)
    haloflow(bin_, *[dst if a is None else a for a in args])
    got = tree_bytes(dst)
    got = {k: v for k, v in got.items() if not k.startswith(".")}
    want = {k: v for k, v in want.items() if not k.startswith(".")}
    check(kills > 0, "resume: no run was killed mid-way")
    check(set(got) == set(want), f"resume: file sets differ: {sorted(set(got) ^ set(want))[:5]}")
    check(all(got.get(k) == v for k, v in want.items()), "resume: resumed output differs byte-wise")
    print(f"resume ({DEVICE[1]}): {kills} kills of {total} chunks, output byte-identical: {got == want}", flush=True)


def parts(bin_, tmp):
    src, _ = big_input(tmp)
    base = ["gaussian", src, None, "--sigma", "1.5", "--quiet", "--chunks", "16,64,64", "--threads", "1"]
    one = os.path.join(tmp, "part-one.zarr")
    haloflow(bin_, *[one if a is None else a for a in base])
    dst = os.path.join(tmp, "part-three.zarr")
    procs = [subprocess.Popen([bin_, *[dst if a is None else a for a in base], "--part", f"{i}/3"],
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
    errs = [p.communicate()[1] for p in procs]
    check(all(p.returncode == 0 for p in procs), f"parts: a part failed: {errs}")
    check(tree_bytes(dst) == tree_bytes(one), "parts: three parts differ from one run")
    # --part auto: the parts of a SLURM array (--array=1-3) and an SGE one (-t 2-6:2),
    # as their schedulers set the environment.
    envs = {
        "slurm": [{"SLURM_ARRAY_TASK_ID": str(t), "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "3"}
                  for t in (1, 2, 3)],
        "sge": [{"SGE_TASK_ID": str(t), "SGE_TASK_FIRST": "2", "SGE_TASK_LAST": "6", "SGE_TASK_STEPSIZE": "2"}
                for t in (2, 4, 6)],
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SGE_", "JOB_COMPLETION"))}
    for name, tasks in envs.items():
        dst = os.path.join(tmp, f"part-auto-{name}.zarr")
        for i, env in enumerate(tasks):
            run = subprocess.run([bin_, *[dst if a is None else a for a in base if a != "--quiet"], "--part", "auto"],
                                 capture_output=True, text=True, env={**clean, **env})
            check(run.returncode == 0 and f"part {i}/3" in run.stderr, f"parts: auto {name} task {i}: {run.stderr}")
        check(tree_bytes(dst) == tree_bytes(one), f"parts: --part auto ({name}) differs from one run")
    run = subprocess.run([bin_, *[os.path.join(tmp, "part-none.zarr") if a is None else a for a in base],
                          "--part", "auto"], capture_output=True, text=True, env=clean)
    check(run.returncode != 0 and "no array task" in run.stderr and not os.path.exists(os.path.join(tmp, "part-none.zarr")),
          f"parts: --part auto outside a scheduler: {run.returncode} {run.stderr}")
    print("parts: 3 concurrent parts == one run; --part auto from SLURM and SGE variables too", flush=True)


def shards(bin_, tmp):
    """Sharded outputs (--shards): the content of the unsharded output, read back with
    zarr-python and tensorstore; a shard file for every shard, all-fill ones included;
    a killed run resumes to identical bytes; three concurrent parts equal one run;
    init creates the output and verify tells done from missing."""
    import tensorstore as ts

    rng = np.random.default_rng(8)
    shape = (40, 200, 150)
    data = (rng.random(shape, dtype=np.float32) * 100).astype(np.float32)
    data[:32, :64, :64] = 0  # one whole shard of zeros: its inner chunks are all fill
    src = write_input(os.path.join(tmp, "shards-in.zarr"), data, 3, (16, 64, 64))
    grid = [-(-n // s) for n, s in zip(shape, (32, 64, 64))]
    for name, op in (("copy", ["copy"]), ("gaussian", ["gaussian", "--sigma", "1.5", "--mode", "constant"])):
        plain = os.path.join(tmp, f"shards-plain-{name}.zarr")
        sharded = os.path.join(tmp, f"shards-{name}.zarr")
        haloflow(bin_, op[0], src, plain, *op[1:], "--chunks", "16,32,32", "--quiet")
        haloflow(bin_, op[0], src, sharded, *op[1:], "--chunks", "16,32,32", "--shards", "32,64,64", "--quiet")
        want = zarr.open_array(plain)[...]
        arr = zarr.open_array(sharded)
        check(arr.shards == (32, 64, 64) and arr.chunks == (16, 32, 32),
              f"shards {name}: shards {arr.shards}, chunks {arr.chunks}")
        check(arr[...].tobytes() == want.tobytes(), f"shards {name}: zarr-python reads other values than unsharded")
        store = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": sharded}}).result()
        check(store.read().result().tobytes() == want.tobytes(), f"shards {name}: tensorstore reads other values")
        files = count_chunks(sharded)
        check(files == int(np.prod(grid)), f"shards {name}: {files} shard files, expected {np.prod(grid)}")
    # The all-zero shard of the copy holds only its index: 2 x 2 x 2 empty entries and a CRC.
    empty = os.path.getsize(os.path.join(tmp, "shards-copy.zarr", "c", "0", "0", "0"))
    check(empty == 8 * 16 + 4, f"shards: the all-fill shard has {empty} bytes, expected the index only (132)")

    # init creates the output and counts its jobs; verify fails until every part ran.
    big, _ = big_input(tmp)
    args = ["gaussian", big, None, "--sigma", "2", "--quiet", "--chunks", "16,32,32", "--shards", "16,64,64"]
    one = os.path.join(tmp, "shards-one.zarr")
    haloflow(bin_, *[one if a is None else a for a in args], "--threads", "2")
    want = tree_bytes(one)
    total = count_chunks(one)
    three = os.path.join(tmp, "shards-three.zarr")
    init = haloflow(bin_, "init", *[three if a is None else a for a in args if a != "--quiet"])
    check(f"jobs      {total} (shards of [16, 64, 64])" in init.stdout, f"shards: init says {init.stdout!r}")
    check(count_chunks(three) == 0, "shards: init wrote chunks")
    check(haloflow(bin_, "verify", three, check_ok=False).returncode != 0, "shards: verify passed on an empty output")
    procs = [subprocess.Popen([bin_, *[three if a is None else a for a in args], "--threads", "1", "--part", f"{i}/3"],
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
    errs = [p.communicate()[1] for p in procs]
    check(all(p.returncode == 0 for p in procs), f"shards: a part failed: {errs}")
    check(tree_bytes(three) == want, "shards: three concurrent parts differ from one run")
    report = json.loads(haloflow(bin_, "verify", three, "--json").stdout)
    check(report["complete"] and report["arrays"][0]["jobs_done"] == total, f"shards: verify says {report}")

    # A killed run resumes shard by shard to the same bytes.
    dst = os.path.join(tmp, "shards-resumed.zarr")
    kills = killed_runs(bin_, [*args, "--threads", "2"], dst, total, random.Random(12), 4)
    haloflow(bin_, *[dst if a is None else a for a in args])
    got = {k: v for k, v in tree_bytes(dst).items() if not k.startswith(".")}
    check(kills > 0, "shards: no run was killed mid-way")
    check(got == {k: v for k, v in want.items() if not k.startswith(".")}, "shards: resumed output differs byte-wise")
    print(f"shards: copy and gaussian equal unsharded (zarr-python, tensorstore); {kills} kills of {total} shards "
          "resumed identically; 3 parts == one run; init and verify", flush=True)


def memory(bin_, tmp):
    # A 256 MiB volume through a 64 MiB limit.
    shape, chunks = (256, 512, 512), (32, 128, 128)
    path = os.path.join(tmp, "mem.zarr")
    arr = zarr.create_array(store=path, shape=shape, chunks=chunks, dtype=np.float32,
                            zarr_format=3, compressors=zarr.codecs.ZstdCodec(level=1))
    rng = np.random.default_rng(5)
    for z in range(0, shape[0], chunks[0]):
        arr[z:z + chunks[0]] = rng.random((chunks[0], *shape[1:]), dtype=np.float32)
    limit = 64 << 20
    dst = os.path.join(tmp, "mem-out.zarr")
    report = os.path.join(tmp, "mem-report.json")
    # The peak comes from the process itself (VmHWM): a parent's rusage would count
    # the Python image the child was forked from. On the CPU: a GPU driver's own
    # memory (lavapipe maps LLVM) is not the run's data. Two workers and two codec
    # threads, as on the CI machine, whatever this machine's cores: the limit bounds
    # memory per job in flight, and more cores would ask for more (a run refuses a
    # limit below what its workers need).
    run = haloflow(bin_, "gaussian", path, dst, "--sigma", "2", "--quiet", "--memory-limit", limit,
                   "--device", "cpu", "--threads", 2,
                   "--chunks", "32,64,64", "--report", report, check_ok=False,
                   env={"RAYON_NUM_THREADS": "2"})
    check(run.returncode == 0, f"memory: run failed: {run.stderr}")
    with open(report) as f:
        peak = json.load(f)["peak_rss_bytes"]
    check(peak > 0, "memory: the report has no peak RSS")
    slack = 48 << 20
    check(peak <= limit + slack, f"memory: peak RSS {peak >> 20} MiB > limit {limit >> 20} MiB + {slack >> 20} MiB")
    print(f"memory: volume {np.prod(shape) * 4 >> 20} MiB, limit {limit >> 20} MiB, peak RSS {peak >> 20} MiB", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--haloflow", required=True)
    ap.add_argument("--device", default="cpu", help="--device for the conformance runs")
    ap.add_argument("checks", nargs="*", default=["conformance", "stats", "codecs", "ome", "pyramid", "resume", "parts", "shards", "memory"])
    args = ap.parse_args()
    DEVICE[1] = args.device
    tmp = tempfile.mkdtemp(prefix="haloflow-interop-")
    try:
        for name in args.checks:
            globals()[name](os.path.abspath(args.haloflow), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print(f"{len(FAILURES)} failures", file=sys.stderr)
        sys.exit(1)
    print("all interop checks passed")


if __name__ == "__main__":
    main()
