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


def haloflow(bin_, *args, check_ok=True):
    run = subprocess.run([bin_, *map(str, args)], capture_output=True, text=True)
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
        else:
            raise ValueError(method)
    return out


DEVICE = ["--device", "cpu"]


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
        ("convolve", ["--kernel", kpath, "--mode", "mirror"],
         lambda x: ndi.convolve(x.astype(np.float64), kernel, mode="mirror").astype(np.float32), False),
        ("downsample", ["--factor", "2,3,2", "--method", "mean"], lambda x: ref_downsample(x, (2, 3, 2), "mean"), None),
        ("downsample", ["--factor", "3", "--method", "max"], lambda x: ref_downsample(x, (3, 3, 3), "max"), True),
        ("upsample", ["--factor", "2", "--method", "linear"],
         lambda x: cast(ndi.zoom(x.astype(np.float64), 2, order=1, grid_mode=True, mode="nearest"), x.dtype), None),
        ("upsample", ["--factor", "1,2,3", "--method", "nearest"],
         lambda x: np.repeat(np.repeat(x, 2, axis=1), 3, axis=2), True),
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
                    what = f"{op} {' '.join(flags)} {dtype} {layout} -> v{out_fmt}"
                    check(got.dtype == want.dtype and got.shape == want.shape,
                          f"{what}: {got.dtype}{got.shape} != {want.dtype}{want.shape}")
                    if got.shape == want.shape:
                        if exact:
                            check(np.array_equal(got, want), f"{what}: not equal")
                        else:
                            tol = 2e-5 * max(float(np.ptp(data.astype(np.float64))), 1.0)
                            err = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
                            check(err <= tol, f"{what}: max error {err} > {tol}")
                    n += 1
    print(f"conformance ({' '.join(DEVICE)}): {n} runs checked", flush=True)


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


def resume(bin_, tmp):
    src, _ = big_input(tmp)
    args = ["gaussian", src, None, "--sigma", "2", "--quiet", "--chunks", "16,32,32", "--threads", "2"]
    ref_dst = os.path.join(tmp, "resume-ref.zarr")
    haloflow(bin_, *[ref_dst if a is None else a for a in args])
    want = tree_bytes(ref_dst)
    total = count_chunks(ref_dst)
    dst = os.path.join(tmp, "resume.zarr")
    rnd = random.Random(11)
    kills = 0
    # Kill with SIGKILL at random moments: once a random number of chunks is written.
    for target in sorted(rnd.sample(range(1, total), 6)):
        proc = subprocess.Popen([bin_, *[dst if a is None else a for a in args]],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and count_chunks(dst) < target:
            time.sleep(0.001)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    haloflow(bin_, *[dst if a is None else a for a in args])
    got = tree_bytes(dst)
    got = {k: v for k, v in got.items() if not k.startswith(".")}
    want = {k: v for k, v in want.items() if not k.startswith(".")}
    check(kills > 0, "resume: no run was killed mid-way")
    check(set(got) == set(want), f"resume: file sets differ: {sorted(set(got) ^ set(want))[:5]}")
    check(all(got.get(k) == v for k, v in want.items()), "resume: resumed output differs byte-wise")
    print(f"resume: {kills} kills of {total} chunks, output byte-identical: {got == want}", flush=True)


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
    print("parts: 3 concurrent parts == one run", flush=True)


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
    # memory (lavapipe maps LLVM) is not the run's data.
    run = haloflow(bin_, "gaussian", path, dst, "--sigma", "2", "--quiet", "--memory-limit", limit,
                   "--device", "cpu",
                   "--chunks", "32,64,64", "--report", report, check_ok=False)
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
    ap.add_argument("checks", nargs="*", default=["conformance", "codecs", "resume", "parts", "memory"])
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
