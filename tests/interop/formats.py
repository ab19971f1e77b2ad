#!/usr/bin/env python3
"""End-to-end checks of instrument files read by the `haloflow` command, and its
pictures.

Files are written by the reference writers (tifffile: plain, tiled, BigTIFF, ImageJ
hyperstacks, OME-TIFF, with every compression it offers; nibabel: NIfTI-1 and
NIfTI-2, plain and gzipped; pylibCZIrw: CZI mosaics of two scenes, raw, zstd0 and
zstd1), haloflow converts them or filters them, zarr-python reads the results back,
and they are compared with what those libraries read (exactly) and with scipy on that
array. Pictures are read back with Pillow.

    python tests/interop/formats.py --haloflow target/debug/haloflow CHECK...

CHECKs: tiff, nifti, czi, metadata, preview, bad, memory (default: all). Exit status 1 on
failure. The Rust test `tests/cli.rs` runs this with the freshly built binary.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np
import scipy.ndimage as ndi
import tifffile
import zarr
from PIL import Image

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


def level0(path):
    """Level 0 of an OME-Zarr image, or the plain array at path."""
    node = zarr.open(path, mode="r")
    return node["0"][...] if isinstance(node, zarr.Group) else node[...]


def tiff_cases(tmp, rng):
    """(name, path, the array tifffile reads moved to haloflow's axis order)."""
    cases = []

    def add(name, data, moved=None, **kw):
        path = os.path.join(tmp, name + (".ome.tif" if kw.pop("ome", False) else ".tif"))
        tifffile.imwrite(path, data, **kw)
        read = tifffile.imread(path)
        cases.append((name, path, read if moved is None else moved(read)))

    u16 = rng.integers(0, 60000, (9, 70, 83), dtype=np.uint16)
    f32 = rng.random((7, 100, 90), dtype=np.float32)
    add("plain-u16", u16)
    add("plain-2d-i16", u16[0].astype(np.int16))
    add("tiled-deflate-predictor-f32", f32, tile=(32, 48), compression="zlib", predictor=True)
    add("strips-lzw-u16", u16, compression="lzw", rowsperstrip=11)
    add("strips-zstd-u8", (u16 >> 8).astype(np.uint8), compression="zstd", predictor=True)
    add("packbits-u8", (u16 >> 8).astype(np.uint8), compression="packbits")
    add("bigtiff-i32", u16.astype(np.int32) - 30000, bigtiff=True, tile=(16, 16))
    add("float64", f32.astype(np.float64), compression="zlib")
    # 64-bit integers beyond 2**53, both byte orders: read exactly.
    wide = rng.integers(-(1 << 62), 1 << 62, (3, 20, 30))
    add("tiled-i64-big-endian", wide.astype(">i8"), tile=(16, 16), compression="zlib")
    add("u64", (wide + (1 << 62)).astype(np.uint64), compression="zstd")
    add("rgb-lzw", rng.integers(0, 255, (50, 61, 3), dtype=np.uint8), photometric="rgb",
        compression="lzw", moved=lambda a: np.moveaxis(a, -1, 0))
    hyper = rng.integers(0, 4000, (2, 5, 3, 40, 50), dtype=np.uint16)
    add("imagej-tzcyx", hyper, imagej=True, resolution=(1 / 0.4, 1 / 0.4),
        metadata={"spacing": 2.0, "unit": "um", "axes": "TZCYX", "finterval": 3.0},
        moved=lambda a: np.moveaxis(a, 2, 1))
    add("ome-tczyx-zstd", rng.integers(0, 255, (2, 3, 4, 30, 40), dtype=np.uint8), ome=True,
        compression="zstd",
        metadata={"axes": "TCZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2,
                  "PhysicalSizeZ": 1.5, "Channel": {"Name": ["DAPI", "GFP", "RFP"]}})
    add("ome-zcyx-tiled", rng.integers(0, 9999, (6, 2, 64, 64), dtype=np.uint16), ome=True,
        tile=(32, 32), compression="zlib",
        metadata={"axes": "ZCYX", "PhysicalSizeZ": 0.5}, moved=lambda a: np.moveaxis(a, 1, 0))
    return cases


def tiff(bin_, tmp):
    rng = np.random.default_rng(1)
    cases = tiff_cases(tmp, rng)
    for name, path, want in cases:
        dst = os.path.join(tmp, name + ".zarr")
        haloflow(bin_, "convert", path, dst, "--plain", "--quiet", "--chunks",
                 ",".join(str(max(1, s // 2)) for s in want.shape))
        got = level0(dst)
        check(got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want),
              f"tiff {name}: convert differs from tifffile ({got.shape} {got.dtype} vs {want.shape} {want.dtype})")
    # A Gaussian straight from a TIFF, on chunks smaller than its footprint, equals
    # scipy's on the array tifffile reads.
    name, path, want = cases[2]
    dst = os.path.join(tmp, "gauss-from-tiff.zarr")
    haloflow(bin_, "gaussian", path, dst, "--sigma", "1.5", "--chunks", "3,16,16", "--quiet")
    ref = ndi.gaussian_filter(want.astype(np.float32), 1.5, mode="reflect")
    err = np.abs(level0(dst) - ref).max()
    check(err <= 2e-5 * np.ptp(want), f"tiff gaussian: max error {err}")
    # A series of single-plane files from a glob pattern: one z stack, in sorted order.
    series = os.path.join(tmp, "series")
    os.makedirs(series)
    planes = rng.integers(0, 60000, (6, 33, 41), dtype=np.uint16)
    for i, plane in enumerate(planes):
        tifffile.imwrite(os.path.join(series, f"plane_{i:03d}.tif"), plane, compression="zlib")
    dst = os.path.join(tmp, "series.zarr")
    haloflow(bin_, "convert", os.path.join(series, "plane_*.tif"), dst, "--plain", "--quiet", "--chunks", "4,16,16")
    got = level0(dst)
    check(np.array_equal(got, planes), f"tiff series: {got.shape} differs from the planes {planes.shape}")
    tifffile.imwrite(os.path.join(series, "plane_999.tif"), planes[0, :20])
    run = haloflow(bin_, "convert", os.path.join(series, "plane_*.tif"), dst + "2", "--quiet", check_ok=False)
    check(run.returncode != 0 and "plane_999.tif" in run.stderr, f"tiff series of unequal planes: {run.stderr}")
    print(f"tiff: {len(cases)} files and a series of planes equal tifffile's reading; a Gaussian from a TIFF "
          f"equals scipy's (max error {err:.2e})", flush=True)


def nifti(bin_, tmp):
    rng = np.random.default_rng(2)
    vol = rng.normal(size=(30, 40, 12)).astype(np.float32)
    img = nib.Nifti1Image(vol, np.diag([0.5, 0.6, 2.0, 1]))
    img.header.set_xyzt_units("mm")
    one = os.path.join(tmp, "vol.nii.gz")
    nib.save(img, one)
    ints = rng.integers(-300, 3000, (30, 40, 12, 3)).astype(np.int16)
    img2 = nib.Nifti2Image(ints, np.eye(4))
    img2.header.set_slope_inter(0.5, 10)
    two = os.path.join(tmp, "vol2.nii")
    nib.save(img2, two)
    big_endian = os.path.join(tmp, "be.nii")
    img3 = nib.Nifti1Image(ints[..., 0].astype(">u2"), np.eye(4))
    nib.save(img3, big_endian)
    wide = os.path.join(tmp, "wide.nii.gz")
    nib.save(nib.Nifti1Image(rng.integers(-(1 << 62), 1 << 62, (9, 10, 11)), np.eye(4), dtype=np.int64), wide)
    for path, exact in [(one, True), (two, False), (big_endian, True), (wide, True)]:
        want = np.asarray(nib.load(path).dataobj).T  # nibabel's axes reversed: t, z, y, x
        dst = path + ".zarr"
        haloflow(bin_, "convert", path, dst, "--quiet", "--chunks", "2,7,9" if want.ndim == 3 else "1,2,7,9")
        got = level0(dst)
        # Scaled voxels are float32 (nibabel's float64 rounded); the others exact.
        same = got.shape == want.shape and (
            got.dtype == want.dtype and np.array_equal(got, want) if exact else np.allclose(got, want, rtol=1e-6))
        check(same, f"nifti {os.path.basename(path)}: differs from nibabel ({got.shape} {got.dtype} vs {want.shape} {want.dtype})")
    ms = json.load(open(os.path.join(one + ".zarr", "zarr.json")))["attributes"]["ome"]["multiscales"][0]
    scale = ms["datasets"][0]["coordinateTransformations"][0]["scale"]
    check(np.allclose(scale, [2.0, 0.6, 0.5]) and ms["axes"][0]["unit"] == "millimeter",
          f"nifti: OME-Zarr scale {scale} and units {ms['axes']} are not the header's")
    # A Gaussian in physical units on the header's voxel size: 1.2 mm is 2 voxels in x.
    dst = os.path.join(tmp, "nii-gauss.zarr")
    haloflow(bin_, "gaussian", one, dst, "--sigma", "2.4mm,1.2mm,1.2mm", "--chunks", "4,16,16", "--quiet")
    ref = ndi.gaussian_filter(vol.T, (1.2, 2.0, 2.4))
    err = np.abs(level0(dst) - ref).max()
    check(err <= 2e-5 * np.ptp(vol), f"nifti gaussian in mm: max error {err}")
    print(f"nifti: NIfTI-1 (gzipped), NIfTI-2 (scaled), big-endian and int64 equal nibabel; Gaussian in mm error {err:.2e}",
          flush=True)


def write_czi(path, rng, compression):
    """A CZI of two scenes, each a 2×2 mosaic of overlapping tiles (T 2, C 2, Z 3,
    uint16), written by pylibCZIrw; returns the scenes as (t, c, z, y, x) arrays as
    pylibCZIrw reads them back."""
    from pylibCZIrw import czi as pyczi

    with pyczi.create_czi(path, exist_ok=True, compression_options=compression) as w:
        for s, (ox, oy) in enumerate([(0, 0), (1000, 500)]):
            for t in range(2):
                for c in range(2):
                    for z in range(3):
                        for ty in range(2):
                            for tx in range(2):
                                tile = rng.integers(0, 60000, (48, 64), dtype=np.uint16)
                                w.write(tile[..., None], location=(ox + tx * 56, oy + ty * 40),
                                        plane={"T": t, "C": c, "Z": z}, scene=s)
        w.write_metadata(document_name="test", channel_names={0: "DAPI", 1: "GFP"},
                         scale_x=0.65e-6, scale_y=0.65e-6, scale_z=2e-6)
    scenes = []
    with pyczi.open_czi(path) as r:
        for s in range(2):
            scenes.append(np.stack([np.stack([np.stack([r.read(plane={"T": t, "C": c, "Z": z}, scene=s)[..., 0]
                                                        for z in range(3)]) for c in range(2)]) for t in range(2)]))
    return scenes


def czi(bin_, tmp):
    from pylibCZIrw import czi as pyczi

    rng = np.random.default_rng(7)
    for compression in ["zstd1:ExplicitLevel=2;PreProcess=HiLoByteUnpack", "zstd0:ExplicitLevel=1", None]:
        path = os.path.join(tmp, f"scan-{(compression or 'raw')[:5]}.czi")
        scenes = write_czi(path, rng, compression)
        for s, want in enumerate(scenes):
            dst = os.path.join(tmp, f"czi-{s}.zarr")
            haloflow(bin_, "convert", path, dst, "--scene", s, "--plain", "--quiet", "--chunks", "1,1,2,50,50",
                     "--overwrite")
            got = level0(dst)
            check(got.shape == want.shape and np.array_equal(got, want),
                  f"czi {compression} scene {s}: {got.shape} differs from pylibCZIrw's {want.shape}")
    # The OME-Zarr image: spacing in micrometers and the channel names.
    dst = os.path.join(tmp, "czi.ome.zarr")
    haloflow(bin_, "convert", path, dst, "--scene", 1, "--quiet")
    attrs = json.load(open(os.path.join(dst, "zarr.json")))["attributes"]["ome"]
    scale = attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
    labels = [c["label"] for c in attrs.get("omero", {}).get("channels", [])]
    check(np.allclose(scale, [1, 1, 2.0, 0.65, 0.65]) and labels == ["DAPI", "GFP"],
          f"czi metadata: scale {scale}, channels {labels}")
    # A Gaussian straight from the CZI on small chunks equals scipy's.
    out = os.path.join(tmp, "czi-gauss.zarr")
    haloflow(bin_, "gaussian", path, out, "--scene", 1, "--sigma", "0,0,1,2,2", "--chunks", "1,1,3,32,32", "--quiet")
    ref = ndi.gaussian_filter(scenes[1].astype(np.float32), (0, 0, 1, 2, 2))
    err = np.abs(level0(out) - ref).max()
    check(err <= 2e-5 * 60000, f"czi gaussian: max error {err}")
    # BGR pixels: three channels in RGB order.
    rgb = os.path.join(tmp, "rgb.czi")
    bgr = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    with pyczi.create_czi(rgb, exist_ok=True) as w:
        w.write(bgr, location=(0, 0))
    with pyczi.open_czi(rgb) as r:
        read = r.read()
    dst = os.path.join(tmp, "rgb.zarr")
    haloflow(bin_, "convert", rgb, dst, "--plain", "--quiet")
    got = level0(dst)
    check(np.array_equal(got, np.moveaxis(read[..., ::-1], -1, 0)), f"czi rgb: {got.shape} differs")
    # Bad: a scene out of range, a truncated file.
    run = haloflow(bin_, "convert", path, os.path.join(tmp, "none.zarr"), "--scene", 7, "--quiet", check_ok=False)
    check(run.returncode != 0 and "scene 7" in run.stderr and path in run.stderr, f"czi scene 7: {run.stderr}")
    cut = os.path.join(tmp, "cut.czi")
    raw = open(path, "rb").read()
    open(cut, "wb").write(raw[: len(raw) // 3])
    run = haloflow(bin_, "convert", cut, os.path.join(tmp, "cut-czi.zarr"), "--quiet", check_ok=False)
    check(run.returncode != 0 and cut in run.stderr, f"czi truncated: {run.returncode}: {run.stderr}")
    print(f"czi: zstd1, zstd0 and raw mosaics of two scenes equal pylibCZIrw's reading; BGR; metadata; "
          f"Gaussian error {err:.2e}; bad scene and truncated file refused", flush=True)


def metadata(bin_, tmp):
    from ome_zarr_models import open_ome_zarr

    rng = np.random.default_rng(3)
    data = rng.integers(0, 255, (2, 3, 4, 30, 40), dtype=np.uint8)
    src = os.path.join(tmp, "meta.ome.tif")
    tifffile.imwrite(src, data, metadata={"axes": "TCZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.25,
                                          "PhysicalSizeZ": 1.5,
                                          "Channel": {"Name": ["DAPI", "GFP", "RFP"],
                                                      # OME's signed RGBA: blue, green, red.
                                                      "Color": [65535, 16711935, -16776961]}})
    info = haloflow(bin_, "info", src).stdout
    check("OME-TIFF" in info and "DAPI, GFP, RFP" in info and "1.5 micrometer" in info,
          f"metadata: info does not show the file's metadata:\n{info}")
    dst = os.path.join(tmp, "meta.ome.zarr")
    haloflow(bin_, "convert", src, dst, "--pyramid", "2", "--quiet")
    try:
        open_ome_zarr(zarr.open_group(dst, mode="r"))
    except Exception as e:
        check(False, f"metadata: ome-zarr-models rejects the converted image: {e}")
    attrs = json.load(open(os.path.join(dst, "zarr.json")))["attributes"]["ome"]
    ms = attrs["multiscales"][0]
    names = [a["name"] for a in ms["axes"]]
    scale0 = ms["datasets"][0]["coordinateTransformations"][0]["scale"]
    labels = [c["label"] for c in attrs.get("omero", {}).get("channels", [])]
    colours = [c["color"] for c in attrs.get("omero", {}).get("channels", [])]
    check(names == ["t", "c", "z", "y", "x"] and np.allclose(scale0, [1, 1, 1.5, 0.25, 0.2]),
          f"metadata: axes {names} scale {scale0}")
    check(labels == ["DAPI", "GFP", "RFP"], f"metadata: channel names {labels}")
    check(colours == ["0000FF", "00FF00", "FF0000"], f"metadata: channel colours {colours}")
    check(len(ms["datasets"]) == 2 and np.array_equal(level0(dst), data), "metadata: pyramid level 0 differs")
    # The physical sigma on the file's spacing: 0.5 µm is 2.5 pixels in x, 2 in y.
    out = os.path.join(tmp, "meta-gauss.ome.zarr")
    haloflow(bin_, "gaussian", src, out, "--sigma", "0,0,0,0.5um,0.5um", "--quiet")
    ref = ndi.gaussian_filter(data.astype(np.float32), (0, 0, 0, 2.0, 2.5))
    err = np.abs(level0(out) - ref).max()
    check(err <= 2e-5 * 255, f"metadata: physical sigma max error {err}")
    print("metadata: info, OME-Zarr axes, scale, channel names and a pyramid from an OME-TIFF; "
          f"physical sigma error {err:.2e}", flush=True)


def preview(bin_, tmp):
    rng = np.random.default_rng(4)
    vol = ndi.gaussian_filter(rng.random((24, 90, 70), dtype=np.float32), 3)
    src = os.path.join(tmp, "pv.tif")
    tifffile.imwrite(src, vol, tile=(32, 32))
    png = os.path.join(tmp, "mip.png")
    haloflow(bin_, "preview", src, png)
    pic = np.asarray(Image.open(png)).astype(float)
    mip = vol.max(0)
    r = np.corrcoef(pic.ravel(), mip.ravel())[0, 1] if pic.shape == mip.shape else 0
    check(pic.shape == mip.shape and r > 0.98, f"preview: {pic.shape} vs {mip.shape}, correlation {r}")
    # Along y, of a Zarr array written in chunks, in magma: RGB of shape (z, x).
    z = zarr.create_array(store=os.path.join(tmp, "pv.zarr"), shape=vol.shape, chunks=(5, 16, 16), dtype=vol.dtype)
    z[...] = vol
    png2 = os.path.join(tmp, "side.png")
    haloflow(bin_, "preview", os.path.join(tmp, "pv.zarr"), png2, "--axis", "y", "--colormap", "magma",
             "--method", "mean")
    side = Image.open(png2)
    check(side.mode == "RGB" and side.size == (70, 24), f"preview side: {side.mode} {side.size}")
    # A slice with a fixed window is exact: the PNG's grey levels are the window's.
    png3 = os.path.join(tmp, "slice.png")
    haloflow(bin_, "preview", src, png3, "--method", "slice", "--index", "5", "--contrast", "0,1")
    want = np.round(np.clip(vol[5], 0, 1) * 255)
    check(np.array_equal(np.asarray(Image.open(png3)).astype(float), want), "preview slice: grey levels differ")
    # On a pyramid: the level nearest the size asked.
    pyr = os.path.join(tmp, "pv.ome.zarr")
    haloflow(bin_, "pyramid", os.path.join(tmp, "pv.zarr"), pyr, "--levels", "3", "--quiet")
    run = haloflow(bin_, "preview", pyr, os.path.join(tmp, "small.png"), "--size", "40")
    small = Image.open(os.path.join(tmp, "small.png"))
    check("level 1" in run.stdout and max(small.size) == 40, f"preview pyramid: {run.stdout} {small.size}")
    # The histogram plot.
    hist = os.path.join(tmp, "hist.png")
    haloflow(bin_, "stats", src, "--plot", hist, "--quiet")
    h = Image.open(hist)
    check(h.size == (800, 400) and "Percentiles" in h.text, f"stats --plot: {h.size} {h.text}")
    print(f"preview: MIP correlation {r:.4f} with NumPy's; side view, slice, pyramid level and histogram read by Pillow",
          flush=True)


def bad(bin_, tmp):
    rng = np.random.default_rng(5)
    data = rng.integers(0, 60000, (8, 64, 64), dtype=np.uint16)
    good = os.path.join(tmp, "good.tif")
    tifffile.imwrite(good, data, compression="zlib")
    raw = open(good, "rb").read()
    # Truncated: the header survives, the last pages' strips and directories do not.
    cut = os.path.join(tmp, "cut.tif")
    open(cut, "wb").write(raw[: len(raw) // 2])
    # Corrupt: the compressed strips of the last pages overwritten with noise.
    with tifffile.TiffFile(good) as t:
        offsets = [(p.dataoffsets[0], p.databytecounts[0]) for p in t.pages]
    corrupt = os.path.join(tmp, "corrupt.tif")
    mangled = bytearray(raw)
    for off, n in offsets[6:]:
        mangled[off:off + n] = rng.integers(0, 255, n, dtype=np.uint8).tobytes()
    open(corrupt, "wb").write(bytes(mangled))
    for path in [cut, corrupt]:
        dst = os.path.join(tmp, os.path.basename(path) + ".zarr")
        run = haloflow(bin_, "convert", path, dst, "--plain", "--chunks", "2,64,64", "--quiet", check_ok=False)
        lines = [l for l in run.stderr.strip().splitlines() if l.strip()]
        check(run.returncode != 0 and path in run.stderr and len(lines) <= 2,
              f"bad {os.path.basename(path)}: expected one clear line naming the file, got {run.returncode}: {run.stderr}")
        if path == corrupt and os.path.exists(dst):
            # Chunks the run finished before the failure stay, and are right.
            got = zarr.open_array(dst, mode="r")
            first = got[0:2]
            check(np.array_equal(first, data[0:2]) or not os.path.exists(os.path.join(dst, "c", "0")),
                  "bad corrupt: a finished chunk was damaged")
    nii = os.path.join(tmp, "cut.nii")
    nib.save(nib.Nifti1Image(data.T.astype(np.float32), np.eye(4)), nii)
    raw = open(nii, "rb").read()
    open(nii, "wb").write(raw[: len(raw) - 1000])
    run = haloflow(bin_, "convert", nii, os.path.join(tmp, "cut-nii.zarr"), "--quiet", check_ok=False)
    check(run.returncode != 0 and "truncated" in run.stderr and nii in run.stderr,
          f"bad nifti: {run.returncode}: {run.stderr}")
    czi = os.path.join(tmp, "scan.czi")
    open(czi, "wb").write(b"ZISRAWFILE" + bytes(100))
    run = haloflow(bin_, "info", czi, check_ok=False)
    check(run.returncode != 0 and "CZI" in run.stderr and czi in run.stderr, f"bad czi: {run.returncode}: {run.stderr}")
    print("bad: truncated and corrupt TIFFs, a truncated NIfTI and a CZI header alone each refused in one line naming the file",
          flush=True)


def memory(bin_, tmp):
    # A 96 MiB striped TIFF through a 32 MiB limit (the bar's 384 MiB through 128 MiB,
    # scaled down for the test's time).
    shape = (48, 1024, 1024)
    path = os.path.join(tmp, "mem.tif")
    rng = np.random.default_rng(6)
    with tifffile.TiffWriter(path) as w:
        for z in range(shape[0]):
            w.write(rng.integers(0, 60000, shape[1:], dtype=np.uint16), contiguous=True)
    report = os.path.join(tmp, "mem-report.json")
    limit = 32 << 20
    run = haloflow(bin_, "convert", path, os.path.join(tmp, "mem.ome.zarr"), "--memory-limit", limit,
                   "--device", "cpu", "--threads", 2, "--chunks", "2,512,512", "--report", report, "--quiet", check_ok=False)
    check(run.returncode == 0, f"memory: convert failed: {run.stderr}")
    peak = json.load(open(report))["peak_rss_bytes"]
    slack = 48 << 20
    check(peak <= limit + slack, f"memory: peak RSS {peak >> 20} MiB > {limit >> 20} MiB + {slack >> 20} MiB")
    print(f"memory: TIFF of {np.prod(shape) * 2 >> 20} MiB converted under {limit >> 20} MiB: peak RSS {peak >> 20} MiB",
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--haloflow", required=True)
    ap.add_argument("checks", nargs="*", default=["tiff", "nifti", "czi", "metadata", "preview", "bad", "memory"])
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="haloflow-formats-")
    try:
        for name in args.checks:
            globals()[name](os.path.abspath(args.haloflow), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print(f"{len(FAILURES)} failures", file=sys.stderr)
        sys.exit(1)
    print("all format checks passed")


if __name__ == "__main__":
    main()
