#!/usr/bin/env python3
"""End-to-end checks of `haloflow label` against scipy.ndimage.label, numbering
included, on Zarr arrays written and read by zarr-python, with chunks of 8 per axis.

    python tests/interop/label.py --haloflow target/debug/haloflow CHECK...

CHECKs: random, shapes, parts, chains, objects, ome, bad, wide (default: all). Exit status 1 on failure.
The Rust test `tests/cli.rs` runs this with the freshly built binary.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import scipy.ndimage as ndi
import zarr

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print(f"FAIL {what}", flush=True)


def haloflow(bin_, *args, check_ok=True):
    run = subprocess.run([bin_, *map(str, args)], capture_output=True, text=True)
    if check_ok and run.returncode != 0:
        raise RuntimeError(f"haloflow {' '.join(map(str, args))} failed:\n{run.stderr}")
    return run


def write(tmp, name, x, chunks=None):
    path = os.path.join(tmp, name + ".zarr")
    a = zarr.create_array(path, shape=x.shape, chunks=chunks or tuple(min(8, s) for s in x.shape),
                          dtype=x.dtype, overwrite=True)
    a[...] = x
    return path


def read(path):
    return zarr.open_array(path, mode="r")[...]


def expect_labels(what, got, mask, connectivity, dtype=np.uint32):
    want, n = ndi.label(mask, ndi.generate_binary_structure(mask.ndim, connectivity))
    check(got.dtype == dtype, f"{what}: dtype {got.dtype}")
    same = got.shape == want.shape and np.array_equal(got, want)
    check(same, f"{what}: labels differ from scipy ({n} objects, "
                f"{0 if not same and got.shape != want.shape else int((got != want).sum())} voxels differ)")
    return n


def check_random(bin_, tmp):
    rng = np.random.default_rng(1)
    for shape in [(40, 44), (20, 22, 19)]:
        for density in [0.1, 0.3, 0.6]:
            mask = (rng.random(shape) < density).astype(np.uint8)
            src = write(tmp, "random", mask)
            for k in range(1, len(shape) + 1):
                dst = os.path.join(tmp, f"random-{len(shape)}-{density}-{k}.zarr")
                haloflow(bin_, "label", src, dst, "--connectivity", k, "--quiet")
                expect_labels(f"random {shape} density {density} connectivity {k}", read(dst), mask, k)


def spiral(n):
    """A one-pixel-wide square spiral on an n×n grid, with gaps of one pixel between
    its turns: one object that crosses the chunk faces dozens of times."""
    x = np.zeros((n, n), np.uint8)
    r = c = 0
    x[0, 0] = 1
    dirs = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    d = turns = 0
    inside = lambda a, b: 0 <= a < n and 0 <= b < n
    while turns < 2:
        dr, dc = dirs[d]
        q, q2 = (r + dr, c + dc), (r + 2 * dr, c + 2 * dc)
        if inside(*q) and not x[q] and (not inside(*q2) or not x[q2]):
            r, c = q
            x[q] = 1
            turns = 0
        else:
            d = (d + 1) % 4
            turns += 1
    return x


def check_shapes(bin_, tmp):
    # A spiral: every turn crosses chunk faces.
    s = spiral(61)
    src = write(tmp, "spiral", s)
    for k in (1, 2):
        dst = os.path.join(tmp, f"spiral-{k}.zarr")
        haloflow(bin_, "label", src, dst, "--connectivity", k, "--quiet")
        n = expect_labels(f"spiral connectivity {k}", read(dst), s, k)
        check(n == 1, f"spiral: {n} objects, not one")
    # A 3-D helix of blobs stacked so that each touches the next only at a corner.
    x = np.zeros((24, 24, 24), np.uint8)
    for i in range(0, 23):
        x[i, i, 23 - i] = 1
    # Objects touching only diagonally across a chunk corner (8, 8) and (8, 8, 8).
    x[7, 7, 7] = x[8, 8, 8] = 1
    x[7, 8, 7] = x[8, 7, 8] = 1
    x[15, 16, 16] = x[16, 15, 15] = 1
    src = write(tmp, "corners", x)
    for k in (1, 2, 3):
        dst = os.path.join(tmp, f"corners-{k}.zarr")
        haloflow(bin_, "label", src, dst, "--connectivity", k, "--quiet")
        expect_labels(f"corners connectivity {k}", read(dst), x, k)
    y = np.zeros((16, 16), np.uint8)
    y[7, 7] = y[8, 8] = y[7, 8] = 1
    y[8, 6] = y[9, 5] = 1
    src = write(tmp, "corner2", y)
    for k in (1, 2):
        dst = os.path.join(tmp, f"corner2-{k}.zarr")
        haloflow(bin_, "label", src, dst, "--connectivity", k, "--quiet")
        expect_labels(f"2-D corner connectivity {k}", read(dst), y, k)
    # A 4-D mask, a float input with --above, and uneven chunks.
    rng = np.random.default_rng(4)
    m4 = (rng.random((5, 6, 7, 9)) < 0.4).astype(np.uint16) * 7
    src = write(tmp, "four", m4, chunks=(2, 3, 4, 4))
    dst = os.path.join(tmp, "four-4.zarr")
    haloflow(bin_, "label", src, dst, "--connectivity", 4, "--quiet")
    expect_labels("4-D connectivity 4", read(dst), m4 != 0, 4)
    f = rng.normal(size=(30, 31, 29)).astype(np.float32)
    src = write(tmp, "float", f, chunks=(7, 8, 9))
    dst = os.path.join(tmp, "float-above.zarr")
    haloflow(bin_, "label", src, dst, "--above", 0.8, "--connectivity", 2, "--quiet")
    expect_labels("float --above 0.8", read(dst), f > 0.8, 2)
    dst = os.path.join(tmp, "float-one-chunk.zarr")
    haloflow(bin_, "label", src, dst, "--above", 0.8, "--chunks", "30,31,29", "--quiet")
    expect_labels("float --above 0.8, one chunk", read(dst), f > 0.8, 1)


def check_parts(bin_, tmp):
    rng = np.random.default_rng(2)
    mask = (ndi.gaussian_filter(rng.random((32, 40, 36)), 1.5) > 0.52).astype(np.uint8)
    src = write(tmp, "parts", mask)
    whole = os.path.join(tmp, "parts-whole.zarr")
    haloflow(bin_, "label", src, whole, "--connectivity", 3, "--quiet")
    n = expect_labels("parts: one process", read(whole), mask, 3)
    check(n > 20, f"parts: only {n} objects")
    dst = os.path.join(tmp, "parts-3.zarr")
    # Two of three parts: the merge must refuse, naming what is missing.
    for i in (0, 2):
        haloflow(bin_, "label", src, dst, "--connectivity", 3, "--part", f"{i}/3", "--quiet")
    early = haloflow(bin_, "label", src, dst, "--connectivity", 3, "--merge", "--quiet", check_ok=False)
    check(early.returncode != 0 and "has not been labelled yet" in early.stderr,
          f"merge before every part: {early.returncode} {early.stderr!r}")
    haloflow(bin_, "label", src, dst, "--connectivity", 3, "--part", "1/3", "--quiet")
    # The merge in three processes, each writing its part.
    procs = [subprocess.Popen([bin_, "label", src, dst, "--connectivity", "3", "--merge",
                               "--part", f"{i}/3", "--quiet"], stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    for p in procs:
        _, err = p.communicate()
        check(p.returncode == 0, f"merge part failed: {err}")
    check(np.array_equal(read(dst), read(whole)), "3 parts + merge differ from one process")
    # Every chunk file byte for byte.
    for root, _, files in os.walk(whole):
        if ".haloflow-label" in root:
            continue
        for f in files:
            a = os.path.join(root, f)
            b = os.path.join(dst, os.path.relpath(a, whole))
            with open(a, "rb") as fa, open(b, "rb") as fb:
                check(fa.read() == fb.read(), f"parts: {os.path.relpath(a, whole)} differs")
    # A rerun of a finished labelling does nothing and changes nothing.
    again = haloflow(bin_, "label", src, whole, "--connectivity", 3)
    check("already done" in again.stderr and f"{n} objects" in again.stderr,
          f"rerun: {again.stderr!r}")
    check(np.array_equal(read(whole), read(dst)), "rerun changed the labels")


def check_chains(bin_, tmp):
    rng = np.random.default_rng(3)
    x = (rng.random((24, 40, 40)) * 1000).astype(np.float32)
    g = ndi.gaussian_filter(x, 1.0)
    # A threshold with no smoothed value near it, so float rounding cannot flip a voxel.
    v = np.sort(g.ravel())
    i = len(v) // 2 + int(np.argmax(np.diff(v[len(v) // 2: len(v) // 2 + 2000])))
    t = float(v[i] + v[i + 1]) / 2
    src = write(tmp, "chain", x)
    dst = os.path.join(tmp, "chain-label.zarr")
    haloflow(bin_, "run", src, dst, "--quiet", "gaussian", "--sigma", 1, "+", "threshold", "--above", t,
             "+", "label", "--connectivity", 3)
    expect_labels("gaussian + threshold + label", read(dst), g > t, 3)
    dst = os.path.join(tmp, "chain-label2.zarr")
    haloflow(bin_, "run", src, dst, "--quiet", "gaussian", "--sigma", 1, "+", "label", "--above", t)
    expect_labels("gaussian + label --above", read(dst), g > t, 1)
    # Label after denoise, as scikit-image denoises.
    from skimage.restoration import denoise_nl_means
    y = (ndi.gaussian_filter(rng.random((12, 40, 40)), 2) * 10 + rng.normal(0, 0.05, (12, 40, 40))).astype(np.float32)
    d = denoise_nl_means(y, patch_size=3, patch_distance=2, h=0.1, fast_mode=True, preserve_range=True)
    v = np.sort(d.ravel())
    i = len(v) * 3 // 5 + int(np.argmax(np.diff(v[len(v) * 3 // 5: len(v) * 3 // 5 + 500])))
    t = float(v[i] + v[i + 1]) / 2
    src = write(tmp, "denoise", y)
    dst = os.path.join(tmp, "denoise-label.zarr")
    haloflow(bin_, "run", src, dst, "--quiet", "denoise", "--patch-size", 3, "--patch-distance", 2, "--h", 0.1,
             "+", "label", "--above", t, "--connectivity", 2)
    expect_labels("denoise + label --above", read(dst), d > t, 2)


def check_bad(bin_, tmp):
    rng = np.random.default_rng(5)
    mask = np.zeros((40, 40), np.uint8)
    mask[::2, ::2] = 1  # 400 objects
    src = write(tmp, "bad", mask)
    f = write(tmp, "badf", rng.random((20, 20)).astype(np.float32))
    for args, words in [
        (["label", src, os.path.join(tmp, "b1.zarr"), "--connectivity", "3"], "connectivity 3 is out of range"),
        (["label", src, os.path.join(tmp, "b2.zarr"), "--connectivity", "0"], "connectivity 0 is out of range"),
        (["label", f, os.path.join(tmp, "b3.zarr")], "not a mask"),
        (["label", src, os.path.join(tmp, "b4.zarr"), "--dtype", "uint8"], "do not fit in uint8"),
        (["label", src, os.path.join(tmp, "b5.zarr"), "--dtype", "float32"], "not a label type"),
    ]:
        r = haloflow(bin_, *args, check_ok=False)
        lines = r.stderr.strip().splitlines()
        check(r.returncode != 0 and len(lines) == 1 and words in r.stderr,
              f"{' '.join(args[3:]) or 'float input'}: exit {r.returncode}, {r.stderr!r}")
    # A uint8 label array too small for the count: no chunk is written.
    out = os.path.join(tmp, "b4.zarr")
    check(read(out).max() == 0, "a labelling refused for its type wrote labels")


def check_objects(bin_, tmp):
    import csv
    import skimage.measure as skm
    rng = np.random.default_rng(6)
    mask = (ndi.gaussian_filter(rng.random((30, 50, 44)), 1.5) > 0.53).astype(np.uint8)
    img = (rng.random(mask.shape) * 4000).astype(np.uint16)
    src = write(tmp, "objects-mask", mask)
    inten = write(tmp, "objects-image", img, chunks=(7, 9, 11))
    labels = os.path.join(tmp, "objects-labels.zarr")
    haloflow(bin_, "label", src, labels, "--quiet", "--connectivity", 2)
    lab = read(labels)
    table = os.path.join(tmp, "objects.csv")
    haloflow(bin_, "objects", labels, "--intensity", inten, "--table", table, "--quiet")
    with open(table) as f:
        rows = list(csv.DictReader(f))
    want = skm.regionprops_table(lab, img, properties=("label", "area", "centroid", "bbox", "intensity_mean",
                                                        "intensity_max", "intensity_min"))
    check(len(rows) == len(want["label"]) and len(rows) > 10, f"objects: {len(rows)} rows, skimage {len(want['label'])}")
    for key, values in want.items():
        got = np.array([float(r[key]) for r in rows])
        check(np.allclose(got, values, rtol=1e-9, atol=0), f"objects: column {key} differs from skimage")
    sums = ndi.sum_labels(img, lab, want["label"])
    check(np.allclose([float(r["intensity_sum"]) for r in rows], sums, rtol=1e-12), "objects: intensity_sum")
    # The same table as Parquet, read by pyarrow: the same columns and values, labels,
    # areas and boxes as uint64.
    import pyarrow.parquet as pq
    pq_path = os.path.join(tmp, "objects.parquet")
    haloflow(bin_, "objects", labels, "--intensity", inten, "--table", pq_path, "--quiet")
    pt = pq.read_table(pq_path)
    check(pt.column_names == list(rows[0].keys()), f"objects .parquet: columns {pt.column_names}")
    for key, values in want.items():
        got = pt.column(key).to_numpy() if key in pt.column_names else np.array([])
        check(np.allclose(got, values, rtol=1e-9, atol=0), f"objects .parquet: column {key} differs from skimage")
    for key in ("label", "area", "bbox-0", "bbox-5"):
        check(str(pt.schema.field(key).type) == "uint64", f"objects .parquet: {key} is {pt.schema.field(key).type}")
    check(np.array_equal(pt.column("intensity_sum").to_numpy(), [float(r["intensity_sum"]) for r in rows]),
          "objects .parquet: intensity_sum differs from the CSV's")
    bad = haloflow(bin_, "objects", labels, "--table", os.path.join(tmp, "t.xlsx"), check_ok=False)
    check(bad.returncode != 0 and "CSV or Parquet" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
          and not os.path.exists(os.path.join(tmp, "t.xlsx")), f"objects .xlsx: {bad.stderr!r}")


def check_wide(bin_, tmp):
    """64-bit labels: `label --dtype uint64|int64` equals scipy, and `objects` reads
    uint64 labels beyond 2**53 exactly (float64 would merge neighbouring labels)."""
    import csv
    import skimage.measure as skm
    rng = np.random.default_rng(9)
    mask = (rng.random((18, 21, 20)) < 0.2).astype(np.uint8)
    src = write(tmp, "wide-mask", mask)
    for dtype in (np.uint64, np.int64):
        out = os.path.join(tmp, f"wide-{np.dtype(dtype).name}.zarr")
        haloflow(bin_, "label", src, out, "--dtype", np.dtype(dtype).name, "--quiet")
        expect_labels(f"--dtype {np.dtype(dtype).name}", read(out), mask, 1, dtype)
    lab = ndi.label(mask)[0].astype(np.uint64)
    # Labels 2**60 + 2k: adjacent ones round to the same float64.
    big = np.where(lab > 0, np.uint64(1 << 60) + 2 * lab, 0).astype(np.uint64)
    img = rng.random(mask.shape).astype(np.float32)
    labels = write(tmp, "wide-labels", big)
    inten = write(tmp, "wide-image", img)
    table = os.path.join(tmp, "wide.csv")
    haloflow(bin_, "objects", labels, "--intensity", inten, "--table", table, "--quiet")
    with open(table) as f:
        rows = list(csv.DictReader(f))
    # skimage sizes its tables by the largest label: its reference is of the small
    # labels, renumbered as `big` numbers them.
    want = skm.regionprops_table(lab, img, properties=("label", "area", "centroid", "intensity_max"))
    want["label"] = np.uint64(1 << 60) + 2 * want["label"].astype(np.uint64)
    check([int(r["label"]) for r in rows] == [int(v) for v in want["label"]],
          "objects of uint64 labels beyond 2**53: the labels differ from skimage's")
    import pyarrow.parquet as pq
    haloflow(bin_, "objects", labels, "--table", os.path.join(tmp, "wide.parquet"), "--quiet")
    got = pq.read_table(os.path.join(tmp, "wide.parquet")).column("label").to_numpy()
    check(got.dtype == np.uint64 and np.array_equal(got, want["label"]),
          "objects of uint64 labels as Parquet: the labels differ from skimage's")
    for key in ("area", "centroid-0", "centroid-2", "intensity_max"):
        got = np.array([float(r[key]) for r in rows])
        check(got.shape == want[key].shape and np.allclose(got, want[key], rtol=1e-9, atol=0),
              f"objects of uint64 labels: column {key} differs from skimage")


def check_ome(bin_, tmp):
    from ome_zarr_models import open_ome_zarr
    rng = np.random.default_rng(8)
    x = (ndi.gaussian_filter(rng.random((20, 40, 44)), 1.5) * 1000).astype(np.uint16)
    raw = write(tmp, "ome-raw", x)
    for version in ("0.5", "0.4"):
        img = os.path.join(tmp, f"image-{version}.ome.zarr")
        haloflow(bin_, "convert", raw, img, "--ome", "--axes", "z,y,x", "--scale", "2,0.5,0.5", "--units",
                 "micrometer,micrometer,micrometer", "--ngff-version", version, "--quiet")
        t = float(np.quantile(x, 0.7))
        for name in ("cells", "nuclei"):
            haloflow(bin_, "label", img, os.path.join(img, "labels", name), "--above", t, "--quiet")
        try:
            node = open_ome_zarr(zarr.open_group(img, mode="r"))
            labels = node.labels if hasattr(node, "labels") else None
            check(labels is not None, f"OME {version}: ome-zarr-models sees no labels group")
        except Exception as e:
            check(False, f"OME {version}: ome-zarr-models rejects the image: {e}")
        for name in ("cells", "nuclei"):
            path = os.path.join(img, "labels", name)
            try:
                kind = type(open_ome_zarr(zarr.open_group(path, mode="r"))).__name__
                check(kind == "ImageLabel", f"OME {version}: {name} validates as {kind}, not ImageLabel")
            except Exception as e:
                check(False, f"OME {version}: ome-zarr-models rejects the label image {name}: {e}")
            g = zarr.open_group(path, mode="r").attrs.asdict()
            meta = g.get("ome", g)
            il = meta.get("image-label", {})
            want, n = ndi.label(x > t)
            check(len(il.get("colors", [])) == n, f"OME {version}: {len(il.get('colors', []))} colours, {n} labels")
            scale = meta["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
            check(scale == [2.0, 0.5, 0.5], f"OME {version}: label scale {scale}")
            check(np.array_equal(read(os.path.join(path, "0")), want), f"OME {version}: labels differ from scipy")
        lg = zarr.open_group(os.path.join(img, "labels"), mode="r").attrs.asdict()
        check(lg.get("ome", lg).get("labels") == ["cells", "nuclei"], f"OME {version}: labels group {lg}")
    # A pyramid of labels: mode or stride, never a mean.
    cells = os.path.join(tmp, "image-0.5.ome.zarr", "labels", "cells")
    r = haloflow(bin_, "pyramid", cells, os.path.join(tmp, "cells-mean.ome.zarr"), check_ok=False)
    check(r.returncode != 0 and "label image" in r.stderr and "mode" in r.stderr,
          f"pyramid of labels by mean: {r.returncode} {r.stderr!r}")
    haloflow(bin_, "pyramid", cells, os.path.join(tmp, "cells-mode.ome.zarr"), "--method", "mode", "--quiet")
    lab = read(os.path.join(cells, "0"))
    level1 = read(os.path.join(tmp, "cells-mode.ome.zarr", "1"))
    check(set(np.unique(level1)) <= set(np.unique(lab)), "pyramid of labels by mode invents labels")
    table = os.path.join(tmp, "ome-objects.csv")
    haloflow(bin_, "objects", os.path.join(tmp, "image-0.5.ome.zarr", "labels", "cells"), "--table", table, "--quiet")
    import csv
    with open(table) as f:
        rows = list(csv.DictReader(f))
    check(rows and abs(float(rows[0]["centroid_physical-0"]) - 2 * float(rows[0]["centroid-0"])) < 1e-9,
          "objects of an OME label image: physical centroids")


CHECKS = {
    "ome": check_ome,
    "objects": check_objects,
    "random": check_random,
    "shapes": check_shapes,
    "parts": check_parts,
    "chains": check_chains,
    "bad": check_bad,
    "wide": check_wide,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--haloflow", required=True)
    p.add_argument("checks", nargs="*", default=list(CHECKS))
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.checks:
            CHECKS[name](a.haloflow, tmp)
            print(f"{name}: done", flush=True)
    if FAILURES:
        print(f"{len(FAILURES)} failures", flush=True)
        sys.exit(1)
    print("all label checks passed")


if __name__ == "__main__":
    main()
