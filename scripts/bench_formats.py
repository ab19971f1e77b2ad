#!/usr/bin/env python3
"""Instrument files to OME-Zarr: `haloflow convert` against tifffile + zarr-python, and
the memory a conversion takes under a limit.

    .venv/bin/python scripts/bench_formats.py [--haloflow target/release/haloflow] [--gib 1]
        [--bioio-python PYTHON]

Cases:
- an uncompressed OME-TIFF of --gib GiB (uint16, 2048 x 1024 planes, one strip of 64
  rows each, as microscopes write), and the same zlib-compressed;
- both converted to an OME-Zarr image (chunks 16 x 1024 x 1024 for both tools, zstd
  level 3): `haloflow convert`, against tifffile reading the file as a Zarr
  store (`TiffFile.aszarr`, the streamed way) copied by zarr-python into an array of
  the same chunks and codec, plane block by plane block;
- a CZI of --gib GiB (2048 x 2048 planes, each a 2 x 2 mosaic of 1024-pixel tiles,
  zstd1 with the hi/lo packing, as ZEN writes), converted the same way by haloflow and
  by pylibCZIrw (libCZI) reading plane by plane into zarr-python;
- with --bioio-python (an interpreter with bioio, bioio-ome-tiff, bioio-czi and
  bioio-ome-zarr installed; they pin their own versions, so they live in their own
  environment), each file also converted the way the bioio tools do it:
  `BioImage(file).get_image_dask_data("ZYX")` written by bioio-ome-zarr's
  `OMEZarrWriter` (same chunks, zstd level 3, the physical sizes);
- peak RSS of `haloflow convert` of a 384 MiB TIFF with `--memory-limit 128M`.

Each timing is the best of --repeats runs of the whole process (wall seconds). The
outputs are compared for equality. Prints a Markdown table.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import tifffile
import zarr
import zarr.codecs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

REFERENCE = r"""
import sys, numpy as np, tifffile, zarr, zarr.codecs
src, dst, cz = sys.argv[1], sys.argv[2], int(sys.argv[3])
with tifffile.TiffFile(src) as t:
    store = t.series[0].aszarr()
    a = zarr.open_array(store, mode="r")
    out = zarr.create_array(store=dst, shape=a.shape, chunks=(cz, 1024, 1024),
                            dtype=a.dtype, compressors=zarr.codecs.ZstdCodec(level=3), overwrite=True)
    for z in range(0, a.shape[0], cz):
        out[z:z + cz] = a[z:z + cz]
"""


BIOIO_REFERENCE = r"""
import sys, zarr.codecs
from bioio import BioImage
from bioio_ome_zarr.writers import OMEZarrWriter
src, dst = sys.argv[1], sys.argv[2]
img = BioImage(src)
data = img.get_image_dask_data("ZYX")
ps = img.physical_pixel_sizes
w = OMEZarrWriter(dst, level_shapes=data.shape, dtype=data.dtype, chunk_shape=(16, 1024, 1024),
                  compressor=zarr.codecs.ZstdCodec(level=3), zarr_format=3, axes_names=["z", "y", "x"],
                  axes_types=["space"] * 3, axes_units=["micrometer"] * 3,
                  physical_pixel_size=[ps.Z or 1.0, ps.Y or 1.0, ps.X or 1.0])
w.write_full_volume(data)
"""


def best(cmd, repeats, clean):
    times = []
    for _ in range(repeats):
        clean()
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return min(times)


def compare(args, tmp, src, references):
    """(haloflow's seconds, then per reference (its name, its seconds, whether its output
    equals haloflow's)) for converting `src`. `references` are (name, command) pairs;
    THEIRS in a command is where it writes, a Zarr array or an OME-Zarr image."""
    ours, theirs = os.path.join(tmp, "ours.ome.zarr"), os.path.join(tmp, "theirs.zarr")
    cmd = [args.haloflow, "convert", src, ours, "--quiet", "--device", "cpu", "--chunks", "16,1024,1024"]

    def clean():
        for p in (ours, theirs):
            shutil.rmtree(p, ignore_errors=True)
    t_ours = best(cmd, args.repeats, clean)
    results = []
    for name, reference in references:
        reference = [theirs if a == "THEIRS" else a for a in reference]
        t_ref = best(reference, args.repeats, clean)
        subprocess.run(cmd, check=True)
        subprocess.run(reference, check=True)
        a = zarr.open_group(ours, mode="r")["0"]
        b = zarr.open(theirs, mode="r")
        b = b["0"] if isinstance(b, zarr.Group) else b
        same = a.shape == b.shape and all(np.array_equal(a[z:z + 16], b[z:z + 16])
                                          for z in range(0, a.shape[0], 16))
        clean()
        results.append((name, t_ref, same))
    return t_ours, results


def write_tiff(path, planes, compression, rng):
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as w:
        def gen():
            for _ in range(planes):
                yield (rng.integers(0, 4096, (2048, 1024), dtype=np.uint16))
        w.write(gen(), shape=(planes, 2048, 1024), dtype=np.uint16, rowsperstrip=64,
                compression=compression, metadata={"axes": "ZYX", "PhysicalSizeZ": 2.0,
                                                   "PhysicalSizeX": 0.4, "PhysicalSizeY": 0.4})


CZI_REFERENCE = r"""
import sys, numpy as np, zarr, zarr.codecs
from pylibCZIrw import czi as pyczi
src, dst, nz = sys.argv[1], sys.argv[2], int(sys.argv[3])
with pyczi.open_czi(src) as r:
    box = r.total_bounding_rectangle
    out = zarr.create_array(store=dst, shape=(nz, box.h, box.w), chunks=(16, 1024, 1024), dtype=np.uint16,
                            compressors=zarr.codecs.ZstdCodec(level=3), overwrite=True)
    for z0 in range(0, nz, 16):
        out[z0:z0 + 16] = np.stack([r.read(plane={"T": 0, "C": 0, "Z": z})[..., 0] for z in range(z0, min(nz, z0 + 16))])
"""


def write_czi(path, planes, rng):
    """A CZI of `planes` planes of 2048 x 2048 uint16, each a 2 x 2 mosaic of 1024 x 1024
    tiles, zstd1 with the hi/lo packing (as Zeiss ZEN writes)."""
    from pylibCZIrw import czi as pyczi

    with pyczi.create_czi(path, exist_ok=True,
                          compression_options="zstd1:ExplicitLevel=1;PreProcess=HiLoByteUnpack") as w:
        for z in range(planes):
            for ty in range(2):
                for tx in range(2):
                    tile = rng.integers(0, 4096, (1024, 1024), dtype=np.uint16)
                    w.write(tile[..., None], location=(tx * 1024, ty * 1024), plane={"T": 0, "C": 0, "Z": z})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--haloflow", default=os.path.join(ROOT, "target/release/haloflow"))
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--bioio-python", help="an interpreter with the bioio tools: adds them as a reference")
    args = ap.parse_args()

    def bioio(src):
        if not args.bioio_python:
            return []
        return [("bioio + bioio-ome-zarr", [args.bioio_python, "-c", BIOIO_REFERENCE, src, "THEIRS"])]
    tmp = tempfile.mkdtemp(prefix="haloflow-bench-formats-")
    rng = np.random.default_rng(0)
    rows = []
    try:
        planes = int(args.gib * (1 << 30) / (2048 * 1024 * 2))
        for compression in [None, "zlib"]:
            src = os.path.join(tmp, f"scan-{compression}.ome.tif")
            write_tiff(src, planes, compression, rng)
            size = os.path.getsize(src) / (1 << 30)
            name = f"OME-TIFF {compression or 'uncompressed'}, {planes}x2048x1024 uint16 ({size:.2f} GiB on disk)"
            refs = [("tifffile aszarr + zarr-python", [sys.executable, "-c", REFERENCE, src, "THEIRS", "16"])]
            rows.append((name, *compare(args, tmp, src, refs + bioio(src))))
            os.remove(src)
        # CZI: a mosaic stack, zstd1.
        planes = int(args.gib * (1 << 30) / (2048 * 2048 * 2))
        src = os.path.join(tmp, "scan.czi")
        write_czi(src, planes, rng)
        size = os.path.getsize(src) / (1 << 30)
        name = f"CZI zstd1 mosaic, {planes}x2048x2048 uint16 ({size:.2f} GiB on disk)"
        refs = [("pylibCZIrw + zarr-python", [sys.executable, "-c", CZI_REFERENCE, src, "THEIRS", str(planes)])]
        rows.append((name, *compare(args, tmp, src, refs + bioio(src))))
        os.remove(src)
        # Memory: 384 MiB through 128 MiB.
        src = os.path.join(tmp, "mem.tif")
        write_tiff(src, 96, None, rng)
        report = os.path.join(tmp, "report.json")
        subprocess.run([args.haloflow, "convert", src, os.path.join(tmp, "mem.ome.zarr"), "--quiet",
                        "--device", "cpu", "--memory-limit", "128M", "--report", report], check=True)
        peak = json.load(open(report))["peak_rss_bytes"] >> 20
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores")
    print("| conversion to OME-Zarr (zstd 3) | haloflow convert | reference | its time | speedup | equal |")
    print("|---|---|---|---|---|---|")
    for name, a, results in rows:
        for ref, b, same in results:
            print(f"| {name} | {a:.2f} s | {ref} | {b:.2f} s | {b / a:.1f}x | {same} |")
    print(f"\npeak RSS of `haloflow convert` of a 384 MiB TIFF with --memory-limit 128M: {peak} MiB")


if __name__ == "__main__":
    main()
