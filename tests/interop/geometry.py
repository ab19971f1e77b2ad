#!/usr/bin/env python3
"""End-to-end checks of the geometric ops of the `haloflow` command (affine, zoom,
rotate, deskew) against scipy.ndimage, on Zarr arrays written and read by
zarr-python, with output chunks smaller than each chunk's footprint and with one chunk.

    python tests/interop/geometry.py --haloflow target/debug/haloflow CHECK...

CHECKs: affine, zoom, rotate, deskew, deskew_rotate_mip, gpu, chains, parts, bad (default:
all). Exit status 1
on failure. The Rust test `tests/cli.rs` runs this with the freshly built binary.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import scipy.ndimage as ndi
import zarr

FAILURES = []
# Equal to scipy within this fraction of the input's range (the bar).
TOLERANCE = 1e-5


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print(f"FAIL {what}", flush=True)


def haloflow(bin_, *args, check_ok=True):
    run = subprocess.run([bin_, *map(str, args)], capture_output=True, text=True)
    if check_ok and run.returncode != 0:
        raise RuntimeError(f"haloflow {' '.join(map(str, args))} failed:\n{run.stderr}")
    return run


class Case:
    """An input array in a Zarr array of small chunks, and runs of haloflow on it."""

    def __init__(self, bin_, tmp, x, name):
        self.bin, self.tmp, self.x = bin_, tmp, x
        self.src = os.path.join(tmp, name + ".zarr")
        a = zarr.create_array(self.src, shape=x.shape, chunks=tuple(max(1, s // 3) for s in x.shape),
                              dtype=x.dtype)
        a[...] = x
        self.name = name
        self.runs = 0

    def run(self, op, *flags, chunks=None, extra=()):
        self.runs += 1
        dst = os.path.join(self.tmp, f"{self.name}-out{self.runs}.zarr")
        chunk_flags = ["--chunks", ",".join(map(str, chunks))] if chunks else []
        haloflow(self.bin, op, self.src, dst, *flags, *chunk_flags, "--quiet", *extra)
        return zarr.open_array(dst, mode="r")[...]

    def compare(self, what, got, want):
        """`got` equals scipy's `want` within TOLERANCE of the input's range, and is not
        trivially the constant."""
        if got.shape != want.shape or got.dtype != want.dtype:
            check(False, f"{what}: {got.shape} {got.dtype}, scipy {want.shape} {want.dtype}")
            return
        span = float(np.ptp(self.x)) or 1.0
        err = np.abs(got.astype(np.float64) - want.astype(np.float64)).max() / span
        check(err <= TOLERANCE, f"{what}: max error {err:.3g} of the range")
        check(np.ptp(want) > 0, f"{what}: scipy's result is constant, the case tests nothing")


def volume(rng, shape=(22, 30, 26), dtype=np.float32):
    """Smooth-ish data with structure at every scale, so interpolation errors show."""
    x = ndi.gaussian_filter(rng.random(shape), 1.0) * 1000 + rng.random(shape) * 50
    return x.astype(dtype)


def rotation_shear():
    c, s = np.cos(0.45), np.sin(0.45)
    rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    shear = np.array([[1, 0, 0], [0.15, 1, 0], [0, 0.1, 1]])
    return rot @ shear, np.array([1.5, -3.25, 4.0])


def affine(bin_, tmp):
    rng = np.random.default_rng(0)
    case = Case(bin_, tmp, volume(rng), "affine")
    m, off = rotation_shear()
    npy = os.path.join(tmp, "m.npy")
    np.save(npy, m)
    homogeneous = os.path.join(tmp, "m.json")
    h = np.eye(4)
    h[:3, :3], h[:3, 3] = m, off
    with open(homogeneous, "w") as f:
        f.write(str(h.tolist()))
    cases = [(o, mode) for o in (1, 3) for mode in
             ("constant", "nearest", "reflect", "mirror", "wrap", "grid-wrap", "grid-constant")]
    cases += [(0, "constant"), (0, "reflect"), (0, "grid-wrap")]
    for order, mode in cases:
        want = ndi.affine_transform(case.x, m, off, order=order, mode=mode, cval=3.0)
        flags = ["--matrix", npy, "--offset", ",".join(map(str, off)), "--order", order, "--mode", mode,
                 "--cval", "3"]
        # Chunks far smaller than a chunk's footprint (a rotation reads across chunks).
        case.compare(f"affine order {order} {mode} chunks 5,7,6", case.run("affine", *flags, chunks=(5, 7, 6)),
                     want)
    for order in (0, 1, 3):
        want = ndi.affine_transform(case.x, h, order=order, output_shape=(20, 33, 24))
        got = case.run("affine", "--matrix", homogeneous, "--order", order, "--output-shape", "20,33,24")
        case.compare(f"affine homogeneous order {order}, one chunk, output shape", got, want)
    # Integers: scipy rounds half away from zero and clamps.
    ints = Case(bin_, tmp, (volume(rng) * 40).astype(np.uint16), "affine-u16")
    want = ndi.affine_transform(ints.x, m, off, order=3)
    got = ints.run("affine", "--matrix", npy, "--offset", ",".join(map(str, off)), chunks=(7, 7, 7))
    ints.compare("affine uint16 order 3", got, want)


def zoom(bin_, tmp):
    rng = np.random.default_rng(1)
    case = Case(bin_, tmp, volume(rng, (17, 23, 20)), "zoom")
    for factor in (1.7, 0.6):
        for order in (0, 1, 3):
            for grid, mode in ((False, "constant"), (True, "grid-constant"), (False, "mirror"),
                               (True, "reflect")):
                want = ndi.zoom(case.x, factor, order=order, mode=mode, grid_mode=grid)
                flags = ["--factor", factor, "--order", order, "--mode", mode] + (["--grid-mode"] if grid else [])
                got = case.run("zoom", *flags, chunks=(4, 5, 6))
                case.compare(f"zoom {factor} order {order} {mode} grid_mode {grid}", got, want)
    # Per-axis factors, anisotropic to isotropic (z spacing 2, xy 0.4: z by 5).
    want = ndi.zoom(case.x, (2.5, 0.5, 0.5), order=1)
    case.compare("zoom 2.5,0.5,0.5", case.run("zoom", "--factor", "2.5,0.5,0.5", "--order", "1", chunks=(8, 8, 8)),
                 want)


def rotate(bin_, tmp):
    rng = np.random.default_rng(2)
    case = Case(bin_, tmp, volume(rng, (6, 31, 40)), "rotate")
    for reshape in (False, True):
        for order in (0, 1, 3):
            want = ndi.rotate(case.x, 30, axes=(1, 2), reshape=reshape, order=order)
            got = case.run("rotate", "--angle", "30", "--axes", "1,2", "--order", order,
                           *(["--reshape"] if reshape else []), chunks=(2, 9, 11))
            case.compare(f"rotate 30 axes 1,2 reshape {reshape} order {order}", got, want)
    want = ndi.rotate(case.x, -75, axes=(0, 2), reshape=True, order=1, mode="nearest")
    got = case.run("rotate", "--angle", "-75", "--axes", "0,-1", "--order", "1", "--mode", "nearest", "--reshape",
                   chunks=(5, 8, 8))
    case.compare("rotate -75 axes 0,-1 reshape nearest", got, want)


def deskew_matrix(shape, angle, step, pixel):
    s = step * np.cos(np.deg2rad(angle)) / pixel
    nz, ny, nx = shape
    return np.array([[1, 0, 0], [0, 1, 0], [-s, 0, 1]]), (nz, ny, nx + int(np.ceil((nz - 1) * s)))


def deskew(bin_, tmp):
    rng = np.random.default_rng(3)
    case = Case(bin_, tmp, (volume(rng, (12, 20, 32)) * 30).astype(np.uint16), "deskew")
    m, shape = deskew_matrix(case.x.shape, 31.8, 0.4, 0.104)
    want = ndi.affine_transform(case.x, m, output_shape=shape, order=1, mode="constant")
    got = case.run("deskew", "--angle", "31.8", "--scan-step", "0.4", "--pixel-size", "0.104", chunks=(3, 7, 9))
    case.compare("deskew uint16 (the documented affine_transform)", got, want)


def deskew_rotate_matrix(shape, angle, step, pixel):
    """The documented transform of `deskew --rotate`: output (h, y, u) on the pixel
    size's grid reads input x = h / sin, z = (u - h cot) * pixel / step."""
    t = np.deg2rad(angle)
    c, s, r = np.cos(t), np.sin(t), step / pixel
    nz, ny, nx = shape
    m = np.array([[-c / (s * r), 0, 1 / r], [0, 1, 0], [1 / s, 0, 0]])
    out = (1 + int(np.ceil((nx - 1) * s)), ny, 1 + int(np.ceil((nz - 1) * r + (nx - 1) * c)))
    return m, out


def mips(path):
    group = zarr.open_group(path, mode="r")
    return {name: group[name][...] for name in ("z", "y", "x")}


def deskew_rotate_mip(bin_, tmp):
    rng = np.random.default_rng(7)
    case = Case(bin_, tmp, volume(rng, (10, 12, 24)), "rotmip")
    m, shape = deskew_rotate_matrix(case.x.shape, 31.8, 0.4, 0.104)
    want = ndi.affine_transform(case.x, m, output_shape=shape, order=1, mode="constant")
    flags = ["--angle", "31.8", "--scan-step", "0.4", "--pixel-size", "0.104"]
    for chunks in [(3, 5, 7), want.shape]:
        got = case.run("deskew", *flags, "--rotate", chunks=chunks)
        case.compare(f"deskew --rotate chunks {chunks} (the documented affine_transform)", got, want)
    # --mip: the maximum projections of the deskewed array, in the same pass.
    u = (case.x * 30).astype(np.uint16)
    case16 = Case(bin_, tmp, u, "mip16")
    m, shape = deskew_matrix(u.shape, 31.8, 0.4, 0.104)
    skewed = ndi.affine_transform(u, m, output_shape=shape, order=1, mode="constant")
    dst = os.path.join(tmp, "mip-out.zarr")
    run = haloflow(bin_, "deskew", case16.src, dst, *flags, "--chunks", "3,5,7", "--mip", "--report",
                   os.path.join(tmp, "mip.json"))
    got = zarr.open_array(dst, mode="r")[...]
    case16.compare("deskew --mip: the deskewed array", got, skewed)
    projections = mips(os.path.join(tmp, "mip-out_mip.zarr"))
    for axis, name in enumerate("zyx"):
        check(np.array_equal(projections[name], got.max(axis=axis)),
              f"deskew --mip: {name} differs from the deskewed array's max along {name}")
    check("maximum projections along z, y, x" in run.stderr, f"deskew --mip summary: {run.stderr!r}")
    # Resumed: chunks found written are read back, and the projections are whole.
    shutil.rmtree(os.path.join(tmp, "mip-out_mip.zarr"))
    for chunk in ["0.0.0", "1.2.1"]:
        os.remove(os.path.join(dst, "c", *chunk.split(".")))
    mip_dir = os.path.join(tmp, "resumed-mips.zarr")
    haloflow(bin_, "deskew", case16.src, dst, *flags, "--chunks", "3,5,7", "--mip", mip_dir, "--quiet")
    projections = mips(mip_dir)
    for axis, name in enumerate("zyx"):
        check(np.array_equal(projections[name], got.max(axis=axis)),
              f"deskew --mip resumed: {name} differs from the max along {name}")
    # A projections' group inside the output is refused before anything is written.
    inside = os.path.join(tmp, "mip-inside.zarr")
    run = haloflow(bin_, "deskew", case16.src, inside, *flags, "--mip", os.path.join(inside, "m"), check_ok=False)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    check(run.returncode != 0 and len(lines) == 1 and "mip" in lines[0] and not os.path.exists(inside),
          f"deskew --mip inside the output: exit {run.returncode}, stderr {run.stderr!r}")
    # In 3 parts: the projections are whole once every part has finished.
    dst = os.path.join(tmp, "mip-parts.zarr")
    for i in (0, 1, 2):
        haloflow(bin_, "deskew", case16.src, dst, *flags, "--chunks", "3,5,7", "--mip", "--part", f"{i}/3",
                 "--quiet")
    projections = mips(os.path.join(tmp, "mip-parts_mip.zarr"))
    for axis, name in enumerate("zyx"):
        check(np.array_equal(projections[name], got.max(axis=axis)),
              f"deskew --mip in 3 parts: {name} differs from the max along {name}")


def grid_zoom(x):
    """scipy's zoom by 2.5 on the grid in `constant` mode (which it warns against, and
    computes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return ndi.zoom(x, 2.5, order=1, grid_mode=True, mode="constant")


def gpu(bin_, tmp):
    """On the device (`--device gpu`: matrix maps and zooms at orders 0 and 1 in
    `constant` mode run in float64 there): equal to the CPU's output, which equals scipy's. Without an
    adapter this is skipped, unless HALOFLOW_REQUIRE_GPU=1."""
    rng = np.random.default_rng(8)
    case = Case(bin_, tmp, (volume(rng, (12, 20, 24)) * 30).astype(np.uint16), "gpu")
    lls = ["--angle", "31.8", "--scan-step", "0.4", "--pixel-size", "0.104"]
    m, shape = deskew_matrix(case.x.shape, 31.8, 0.4, 0.104)
    rm, rshape = deskew_rotate_matrix(case.x.shape, 31.8, 0.4, 0.104)
    cases = [
        (["deskew", *lls], ndi.affine_transform(case.x, m, output_shape=shape, order=1)),
        (["deskew", *lls, "--rotate"], ndi.affine_transform(case.x, rm, output_shape=rshape, order=1)),
        (["rotate", "--angle", "30", "--axes", "1,2", "--reshape", "--order", "1"],
         ndi.rotate(case.x, 30, axes=(1, 2), order=1)),
        (["rotate", "--angle", "45", "--axes", "0,2", "--order", "0", "--cval", "5"],
         ndi.rotate(case.x, 45, axes=(0, 2), reshape=False, order=0, cval=5)),
        (["zoom", "--factor", "1.7,0.6,1.3", "--order", "1"], ndi.zoom(case.x, (1.7, 0.6, 1.3), order=1)),
        (["zoom", "--factor", "2.5", "--order", "1", "--grid-mode", "--mode", "constant"], grid_zoom(case.x)),
    ]
    probe = haloflow(bin_, "devices", check_ok=False)
    if "vulkan" not in probe.stdout.lower() and os.environ.get("HALOFLOW_REQUIRE_GPU") != "1":
        print("NOTICE: no GPU adapter, the gpu check is skipped (HALOFLOW_REQUIRE_GPU=1 fails instead)")
        return
    for args, want in cases:
        for chunks in [(4, 8, 8), want.shape]:
            got = case.run(*args, chunks=chunks, extra=["--device", "gpu"])
            cpu = case.run(*args, chunks=chunks, extra=["--device", "cpu"])
            case.compare(f"{' '.join(args)} on the GPU, chunks {chunks}", got, want)
            check(np.array_equal(got, cpu), f"{' '.join(args)}: the GPU's output differs from the CPU's")


def chains(bin_, tmp):
    rng = np.random.default_rng(4)
    case = Case(bin_, tmp, volume(rng, (14, 26, 22)), "chains")
    dst = os.path.join(tmp, "chain.zarr")
    haloflow(bin_, "run", case.src, dst, "--chunks", "6,7,8", "--quiet",
             "zoom", "--factor", "1.5", "--order", "1", "+", "gaussian", "--sigma", "1.2")
    want = ndi.gaussian_filter(ndi.zoom(case.x, 1.5, order=1), 1.2)
    case.compare("zoom + gaussian", zarr.open_array(dst, mode="r")[...], want)
    m, shape = deskew_matrix(case.x.shape, 40, 0.3, 0.1)
    dst = os.path.join(tmp, "chain2.zarr")
    haloflow(bin_, "run", case.src, dst, "--chunks", "5,9,9", "--quiet",
             "deskew", "--angle", "40", "--scan-step", "0.3", "--pixel-size", "0.1", "+",
             "downsample", "--factor", "2", "--method", "max")
    skewed = ndi.affine_transform(case.x, m, output_shape=shape, order=1)
    pad = [(0, -s % 2) for s in skewed.shape]
    want = np.pad(skewed, pad, constant_values=-np.inf).reshape(
        [v for s in np.add(skewed.shape, [p[1] for p in pad]) for v in (s // 2, 2)]).max(axis=(1, 3, 5))
    case.compare("deskew + downsample max", zarr.open_array(dst, mode="r")[...], want)


def parts(bin_, tmp):
    rng = np.random.default_rng(5)
    case = Case(bin_, tmp, volume(rng, (16, 24, 24)), "parts")
    whole = case.run("rotate", "--angle", "45", "--axes", "1,2", "--reshape", "--order", "3", chunks=(4, 8, 8))
    dst = os.path.join(tmp, "in-parts.zarr")
    haloflow(bin_, "init", "rotate", case.src, dst, "--angle", "45", "--axes", "1,2", "--reshape", "--chunks",
             "4,8,8", "--quiet")
    for i in (0, 1, 2):
        haloflow(bin_, "rotate", case.src, dst, "--angle", "45", "--axes", "1,2", "--reshape", "--chunks",
                 "4,8,8", "--part", f"{i}/3", "--quiet")
    got = zarr.open_array(dst, mode="r")[...]
    check(np.array_equal(got, whole), "rotate in 3 parts differs from one run")


def bad(bin_, tmp):
    rng = np.random.default_rng(6)
    case = Case(bin_, tmp, volume(rng, (4, 6, 8)), "bad")
    wrong = os.path.join(tmp, "wrong.npy")
    np.save(wrong, np.eye(2))
    nan = os.path.join(tmp, "nan.json")
    with open(nan, "w") as f:
        f.write("[[1, 0, 0], [0, NaN, 0], [0, 0, 1]]")
    refused = [
        (["affine", "--matrix", wrong], "matrix"),
        (["affine", "--matrix", nan], "matrix"),
        (["zoom", "--factor", "0"], "zoom"),
        (["zoom", "--factor", "-1.5"], "zoom"),
        (["rotate", "--angle", "nan"], "angle"),
        (["rotate", "--angle", "inf"], "angle"),
        (["rotate", "--angle", "10", "--axes", "1,1"], "axes"),
        (["deskew", "--angle", "nan", "--scan-step", "0.4", "--pixel-size", "0.1"], "angle"),
        (["deskew", "--angle", "30", "--scan-step", "0", "--pixel-size", "0.1"], "scan-step"),
        (["affine", "--matrix", wrong, "--order", "7"], "matrix"),
        (["zoom", "--factor", "2", "--order", "6"], "order"),
    ]
    for i, (args, name) in enumerate(refused):
        dst = os.path.join(tmp, f"bad{i}.zarr")
        run = haloflow(bin_, args[0], case.src, dst, *args[1:], check_ok=False)
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        check(run.returncode != 0 and len(lines) == 1 and name in lines[0],
              f"{' '.join(args)}: exit {run.returncode}, stderr {run.stderr!r} (one line naming {name})")
        check(not os.path.exists(dst), f"{' '.join(args)}: left {dst} behind")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--haloflow", required=True)
    ap.add_argument("checks", nargs="*", default=["affine", "zoom", "rotate", "deskew", "deskew_rotate_mip", "gpu",
                                                "chains", "parts", "bad"])
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="haloflow-geometry-")
    try:
        for name in args.checks:
            globals()[name](os.path.abspath(args.haloflow), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print(f"{len(FAILURES)} failures", file=sys.stderr)
        sys.exit(1)
    print("all geometry checks passed")


if __name__ == "__main__":
    main()
