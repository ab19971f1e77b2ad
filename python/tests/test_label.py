"""haloflow.label against scipy.ndimage.label (numbering included), regionprops_table
against scikit-image, and the Zarr versions through the whole-array API."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.measure as skm
import zarr

import haloflow

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("shape", [(50,), (31, 37), (13, 17, 19), (5, 6, 7, 8)])
@pytest.mark.parametrize("density", [0.1, 0.3, 0.6])
def test_label_equals_scipy_for_every_connectivity(shape, density):
    mask = RNG.random(shape) < density
    for k in range(1, len(shape) + 1):
        s = ndi.generate_binary_structure(len(shape), k)
        want, n = ndi.label(mask, s)
        got, m = haloflow.label(mask, s)
        assert got.dtype == want.dtype == np.int32
        assert m == n
        np.testing.assert_array_equal(got, want)


def test_label_takes_scipy_inputs_and_outputs():
    x = (RNG.random((40, 41)) < 0.4) * RNG.integers(1, 9, (40, 41))
    want, n = ndi.label(x)
    for v in (x.astype(np.int64), x.astype(np.float16), x.astype(">i4"), x.astype(bool), x.T.copy().T,
              x.tolist()):
        got, m = haloflow.label(v)
        assert m == n
        np.testing.assert_array_equal(got, want)
    out = np.zeros(x.shape, np.uint16)
    assert haloflow.label(x, output=out) == n
    np.testing.assert_array_equal(out, want)
    got, m = haloflow.label(x, output=np.int64)
    assert got.dtype == np.int64 and m == n
    # A structure without row neighbours (only vertical ones).
    s = np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]], bool)
    np.testing.assert_array_equal(haloflow.label(x, s)[0], ndi.label(x, s)[0])
    # Scalars and empty arrays, as scipy.
    assert haloflow.label(np.array(3))[1] == ndi.label(np.array(3))[1] == 1
    assert haloflow.label(np.zeros((0, 4)))[1] == 0


def test_label_refuses_what_scipy_refuses():
    x = np.ones((4, 4))
    with pytest.raises(RuntimeError, match="equal rank"):
        haloflow.label(x, np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="equal to 3"):
        haloflow.label(x, np.ones((3, 5)))
    with pytest.raises(TypeError, match="Complex"):
        haloflow.label(x + 1j)
    with pytest.raises(ValueError, match="output shape"):
        haloflow.label(x, output=np.zeros((3, 3), np.int32))
    many = np.zeros((40, 40))
    many[::2, ::2] = 1
    with pytest.raises(RuntimeError, match="insufficient bit-depth"):
        haloflow.label(many, output=np.uint8)


def test_sixty_four_bit_labels():
    x = RNG.random((20, 30, 25)) < 0.15
    want, n = ndi.label(x)
    for t in (np.int64, np.uint64):
        got, m = haloflow.label(x, output=t)
        assert got.dtype == t and m == n
        np.testing.assert_array_equal(got, want)
    # 64-bit arrays are read in place by any pipeline, exactly where the op is exact.
    wide = RNG.integers(-(1 << 62), 1 << 62, (9, 10, 11))
    for t in (np.int64, np.uint64):
        v = (wide if t == np.int64 else wide + (1 << 62)).astype(t)
        # scipy's rank filters of 64-bit integers pass through float64 (their values
        # end in rounded bits); the exact references sort each 3x3x3 window.
        windows = np.lib.stride_tricks.sliding_window_view(np.pad(v, 1, mode="symmetric"), (3, 3, 3))
        ranked = np.sort(windows.reshape(*v.shape, 27), axis=-1)
        for op, k in ((haloflow.ops.maximum(3), 26), (haloflow.ops.median(3), 13)):
            got = haloflow.Pipeline([op]).apply(v)
            assert got.dtype == t
            np.testing.assert_array_equal(got, ranked[..., k])
    # Labels 2**60 + 2k, which float64 would merge: their table is exact.
    big = np.where(want > 0, np.uint64(1 << 60) + 2 * want.astype(np.uint64), 0).astype(np.uint64)
    got = haloflow.regionprops_table(big, properties=("label", "area", "centroid"))
    ref = skm.regionprops_table(want, properties=("label", "area", "centroid"))
    np.testing.assert_array_equal(got["label"], np.uint64(1 << 60) + 2 * ref["label"].astype(np.uint64))
    for k in ("area", "centroid-0", "centroid-2"):
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-12, err_msg=k)


def test_regionprops_table_equals_skimage():
    mask = ndi.gaussian_filter(RNG.random((30, 60, 50)), 2) > 0.52
    lab, n = ndi.label(mask)
    assert n > 10
    img = (RNG.random(lab.shape) * 1000).astype(np.float32)
    props = ("label", "area", "centroid", "bbox", "intensity_mean", "intensity_min", "intensity_max")
    want = skm.regionprops_table(lab, img, properties=props)
    got = haloflow.regionprops_table(lab, img, properties=props)
    assert list(got) == list(want)
    for k in want:
        assert got[k].dtype.kind == want[k].dtype.kind, k
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6, err_msg=k)
    with pytest.raises(ValueError, match="not a property"):
        haloflow.regionprops_table(lab, properties=("eccentricity",))
    with pytest.raises(AttributeError):
        haloflow.regionprops_table(lab, properties=("intensity_mean",))


def test_label_zarr_in_parts_equals_scipy(tmp_path):
    mask = (ndi.gaussian_filter(RNG.random((24, 40, 36)), 1.5) > 0.52).astype(np.uint8)
    src = tmp_path / "mask.zarr"
    zarr.create_array(src, shape=mask.shape, chunks=(8, 8, 8), dtype=np.uint8)[...] = mask
    dst = tmp_path / "labels.zarr"
    for i in range(3):
        r = haloflow.label_zarr(src, dst, connectivity=3, part=(i, 3))
        assert r["objects"] is None and r["chunks_labelled"] > 0
    r = haloflow.label_zarr(src, dst, connectivity=3, merge=True)
    want, n = ndi.label(mask, np.ones((3, 3, 3)))
    assert r["objects"] == n
    np.testing.assert_array_equal(zarr.open_array(dst)[...], want)
    img = zarr.create_array(tmp_path / "img.zarr", shape=mask.shape, chunks=(5, 7, 9), dtype=np.uint16)
    values = RNG.integers(0, 4000, mask.shape).astype(np.uint16)
    img[...] = values
    table = haloflow.objects_zarr(dst, tmp_path / "img.zarr", table=tmp_path / "objects.parquet")
    ref = skm.regionprops_table(want, values, properties=("label", "area", "centroid", "bbox", "intensity_mean"))
    for k in ref:
        np.testing.assert_allclose(table[k], ref[k], rtol=1e-9, err_msg=k)
    import pyarrow.parquet as pq
    written = pq.read_table(tmp_path / "objects.parquet")
    assert written.column_names == list(table)
    for k in table:
        np.testing.assert_array_equal(written.column(k).to_numpy(), table[k], err_msg=k)
    with pytest.raises(haloflow.HaloflowError, match="CSV or Parquet"):
        haloflow.objects_zarr(dst, table=tmp_path / "objects.xlsx")
    # A chain: gaussian then label above a threshold.
    x = (RNG.random((16, 30, 30)) * 100).astype(np.float32)
    zarr.create_array(tmp_path / "x.zarr", shape=x.shape, chunks=(8, 8, 8), dtype=np.float32)[...] = x
    g = ndi.gaussian_filter(x, 1.0)
    v = np.sort(g.ravel())
    i = len(v) // 2 + int(np.argmax(np.diff(v[len(v) // 2: len(v) // 2 + 500])))
    t = float(v[i] + v[i + 1]) / 2
    r = haloflow.label_zarr(tmp_path / "x.zarr", tmp_path / "xl.zarr", haloflow.ops.gaussian(1.0), above=t)
    want, n = ndi.label(g > t)
    assert r["objects"] == n
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "xl.zarr")[...], want)
