"""Instrument files (TIFF, OME-TIFF, NIfTI) through the Python package: haloflow.run
straight from a file, haloflow.convert with its metadata, haloflow.preview. The files
are written by tifffile and nibabel, and values compared with what they read back."""

import json

import nibabel as nib
import numpy as np
import pytest
import scipy.ndimage as ndi
import tifffile
import zarr
from PIL import Image

import haloflow
from haloflow import ops


def test_run_from_an_ome_tiff_equals_scipy_on_what_tifffile_reads(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4000, (3, 2, 40, 50), dtype=np.uint16)
    src = tmp_path / "scan.ome.tif"
    tifffile.imwrite(src, data, compression="zlib", tile=(16, 16),
                     metadata={"axes": "ZCYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    want = np.moveaxis(tifffile.imread(src), 1, 0)  # c, z, y, x
    out = tmp_path / "out.ome.zarr"
    haloflow.run(src, out, ops.gaussian([0, 0, 1.5, 1.5]), chunks=(1, 2, 16, 16))
    got = zarr.open_group(out, mode="r")["0"][...]
    ref = ndi.gaussian_filter(want.astype(np.float32), (0, 0, 1.5, 1.5))
    assert got.shape == want.shape
    assert np.abs(got - ref).max() <= 2e-5 * np.ptp(want)


def test_convert_carries_spacing_and_channels_and_plain_gives_an_array(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 255, (2, 5, 20, 30), dtype=np.uint8)
    src = tmp_path / "cells.ome.tif"
    tifffile.imwrite(src, data, metadata={"axes": "CZYX", "PhysicalSizeZ": 2.0, "PhysicalSizeX": 0.3,
                                          "PhysicalSizeY": 0.3, "Channel": {"Name": ["nuclei", "membrane"]}})
    out = tmp_path / "cells.ome.zarr"
    haloflow.convert(src, out, pyramid=2)
    attrs = json.loads((out / "zarr.json").read_text())["attributes"]["ome"]
    scale = attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert np.allclose(scale, [1, 2.0, 0.3, 0.3])
    assert [c["label"] for c in attrs["omero"]["channels"]] == ["nuclei", "membrane"]
    assert np.array_equal(zarr.open_group(out, mode="r")["0"][...], data)
    plain = tmp_path / "plain.zarr"
    haloflow.convert(src, plain, plain=True, chunks=(1, 2, 8, 8))
    assert np.array_equal(zarr.open_array(plain, mode="r")[...], data)


def test_convert_of_a_gzipped_nifti_reverses_nibabels_axes(tmp_path):
    rng = np.random.default_rng(2)
    vol = rng.normal(size=(12, 14, 6)).astype(np.float32)
    img = nib.Nifti1Image(vol, np.diag([0.8, 0.8, 3.0, 1]))
    img.header.set_xyzt_units("mm")
    src = tmp_path / "brain.nii.gz"
    nib.save(img, src)
    out = tmp_path / "brain.zarr"
    haloflow.convert(src, out, plain=True)
    assert np.array_equal(zarr.open_array(out, mode="r")[...], vol.T)


def test_preview_draws_the_projection_pillow_reads(tmp_path):
    rng = np.random.default_rng(3)
    vol = ndi.gaussian_filter(rng.random((10, 32, 48), dtype=np.float32), 2)
    src = tmp_path / "vol.tif"
    tifffile.imwrite(src, vol)
    png = tmp_path / "mip.png"
    drawn = haloflow.preview(src, png, colormap="viridis", contrast=(float(vol.min()), float(vol.max())))
    assert drawn["picture"] == [32, 48] and drawn["axis"] == 0
    pic = Image.open(png)
    assert pic.mode == "RGB" and pic.size == (48, 32)
    grey = tmp_path / "mean.png"
    haloflow.preview(src, grey, method="mean", size=24)
    assert Image.open(grey).size == (24, 16)
    with pytest.raises(haloflow.HaloflowError, match="axis"):
        haloflow.preview(src, tmp_path / "bad.png", axis="q")


def test_a_czi_scene_converts_as_pylibczirw_reads_it(tmp_path):
    from pylibCZIrw import czi as pyczi

    rng = np.random.default_rng(4)
    src = tmp_path / "scan.czi"
    planes = {}
    with pyczi.create_czi(str(src), exist_ok=True,
                          compression_options="zstd1:ExplicitLevel=1;PreProcess=HiLoByteUnpack") as w:
        for s, x0 in enumerate([0, 500]):
            for z in range(3):
                planes[s, z] = rng.integers(0, 60000, (40, 50), dtype=np.uint16)
                w.write(planes[s, z][..., None], location=(x0, 0), plane={"T": 0, "C": 0, "Z": z}, scene=s)
        w.write_metadata(scale_x=0.5e-6, scale_y=0.5e-6, scale_z=1e-6)
    out = tmp_path / "scene1.zarr"
    haloflow.convert(src, out, scene=1, plain=True)
    want = np.stack([planes[1, z] for z in range(3)])
    assert np.array_equal(zarr.open_array(out, mode="r")[...], want)
    with pytest.raises(haloflow.HaloflowError, match="scene 2 is out of range"):
        haloflow.convert(src, tmp_path / "none.zarr", scene=2)
