"""haloflow's scipy.ndimage drop-in (haloflow.ndimage) against scipy itself: scipy's
signatures (output, per-axis modes, origin, axes, order, radius), dtypes, complex
values, empty arrays and scipy's errors."""

import numpy as np
import pytest

import haloflow

ndimage = pytest.importorskip("scipy.ndimage")

RNG = np.random.default_rng(31)
VOLUME = (RNG.random((7, 9, 10)) * 100).astype(np.float32)


def same(got, want, rtol=1e-5):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    assert np.allclose(got, want, rtol=0, atol=rtol * scale), np.max(np.abs(got - want))


# Binary fractions: float32 sums of them are exact, so integer outputs truncate as
# scipy's float64 ones do (elsewhere float32 may land a whole number a hair below it,
# and an integer output one lower).
W3 = np.arange(24.0).reshape(3, 4, 2) / 256

CASES = [
    ("gaussian", lambda m, x: m.gaussian_filter(x, 1.5)),
    ("gaussian order", lambda m, x: m.gaussian_filter(x.astype(np.float64), 1.5, order=[0, 1, 2])),
    ("gaussian modes", lambda m, x: m.gaussian_filter(x, 1.5, mode=["reflect", "wrap", "constant"], cval=3)),
    ("gaussian axes", lambda m, x: m.gaussian_filter(x, [1.5, 2], axes=(2, 0))),
    ("gaussian radius", lambda m, x: m.gaussian_filter(x, 1.5, radius=2)),
    ("gaussian_filter1d", lambda m, x: m.gaussian_filter1d(x, 1.5, axis=1, order=1)),
    ("correlate", lambda m, x: m.correlate(x, W3, output=np.float64)),
    ("convolve origin", lambda m, x: m.convolve(x, W3, origin=[0, 1, -1])),
    ("correlate wrap", lambda m, x: m.correlate(x, W3, origin=[1, -1, 0],
                                                 mode="wrap")),
    ("correlate axes", lambda m, x: m.correlate(x, np.arange(6.0).reshape(3, 2) / 8, axes=(0, 2))),
    ("correlate1d", lambda m, x: m.correlate1d(x, [1, 2, 3, 4], axis=0, origin=1)),
    ("convolve1d", lambda m, x: m.convolve1d(x, [1, 2, 3, 4], axis=1, origin=-1)),
    ("uniform origin", lambda m, x: m.uniform_filter(x, [2, 3, 4], origin=[0, 1, -1])),
    ("uniform_filter1d", lambda m, x: m.uniform_filter1d(x, 4, axis=0, origin=-2)),
    ("uniform modes", lambda m, x: m.uniform_filter(x, 3, mode=["nearest", "mirror", "grid-wrap"])),
    ("median", lambda m, x: m.median_filter(x, 3, output=np.float64)),
    ("median axes", lambda m, x: m.median_filter(x, size=[3, 2], axes=(0, 2))),
    ("median origin", lambda m, x: m.median_filter(x, size=[3, 2, 3], origin=[1, -1, 0])),
    ("rank", lambda m, x: m.rank_filter(x, -2, size=3)),
    ("rank footprint origin", lambda m, x: m.rank_filter(x, 1, footprint=[[[1, 0, 1], [0, 1, 0]]],
                                                         origin=[0, -1, -1])),
    ("percentile", lambda m, x: m.percentile_filter(x, 30, footprint=np.ones((3, 1, 2)))),
    ("minimum modes", lambda m, x: m.minimum_filter(x, 3, mode=["nearest", "wrap", "constant"], cval=7)),
    ("maximum_filter1d", lambda m, x: m.maximum_filter1d(x, 4, axis=1, origin=1)),
    # A box minimum ignores the origin on an axis of size 1, as scipy's 1-D passes do.
    ("minimum origin", lambda m, x: m.minimum_filter(x, size=[3, 1, 3], origin=1)),
    ("laplace", lambda m, x: m.gaussian_laplace(x, 1.2)),
    ("laplace modes", lambda m, x: m.gaussian_laplace(x, 1.2, mode=["wrap", "reflect", "nearest"])),
    ("gradient magnitude", lambda m, x: m.gaussian_gradient_magnitude(x, 1.2)),
    ("int16 output", lambda m, x: m.gaussian_filter(x, 1, output=np.int16)),
]


@pytest.mark.parametrize("name,call", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_signatures_equal_scipy(name, call, dtype):
    x = VOLUME.astype(dtype)
    same(call(haloflow, x), call(ndimage, x))


def test_output_array_is_written_and_returned():
    out = np.zeros(VOLUME.shape, np.int16)
    got = haloflow.gaussian_filter(VOLUME, 1, output=out)
    assert got is out
    assert np.array_equal(out, ndimage.gaussian_filter(VOLUME, 1, output=np.int16))
    # Integer output: scipy truncates each pass's float values; so does haloflow.
    x = np.array([[0, 0, 10, 0, 0]] * 3, np.uint8)
    assert np.array_equal(haloflow.gaussian_filter(x, 1), ndimage.gaussian_filter(x, 1))


@pytest.mark.parametrize("dtype", [np.int64, np.uint64, ">f4", ">i2", np.int8, np.uint32])
def test_dtypes_scipy_takes(dtype):
    x = (RNG.random((6, 8)) * 50).astype(dtype)
    same(haloflow.gaussian_filter(x, 1), ndimage.gaussian_filter(x, 1))
    same(haloflow.median_filter(x, 3), ndimage.median_filter(x, 3))
    # A view that is not contiguous.
    view = x[::2, ::-1]
    same(haloflow.uniform_filter(view, 3), ndimage.uniform_filter(view, 3))


def test_complex_values_run_through_real_components():
    z = (RNG.random((6, 7)) + 1j * RNG.random((6, 7))).astype(np.complex64)
    w = RNG.random((3, 2)) - 1j * RNG.random((3, 2))
    same(haloflow.correlate(z, w), ndimage.correlate(z, w))
    same(haloflow.convolve(VOLUME[0], w), ndimage.convolve(VOLUME[0], w))
    same(haloflow.correlate1d(z, [1 + 1j, 2, 3j], axis=0), ndimage.correlate1d(z, [1 + 1j, 2, 3j], axis=0))
    same(haloflow.gaussian_filter(z, 1.2), ndimage.gaussian_filter(z, 1.2))
    same(haloflow.uniform_filter(z, 3, mode="constant", cval=1 + 2j),
         ndimage.uniform_filter(z, 3, mode="constant", cval=1 + 2j))
    with pytest.raises(TypeError, match="Complex type not supported"):
        haloflow.median_filter(z, 3)


def test_empty_arrays_return_what_scipy_returns():
    for shape in [(0,), (0, 3), (4, 0, 2)]:
        x = np.zeros(shape, np.float64)
        same(haloflow.gaussian_filter(x, 1), ndimage.gaussian_filter(x, 1))
        same(haloflow.maximum_filter(x, 2), ndimage.maximum_filter(x, 2))


def test_errors_are_scipys():
    with pytest.raises(ValueError, match="invalid origin"):
        haloflow.correlate1d(VOLUME, [1, 2, 3], origin=2)
    with pytest.raises(ValueError, match="invalid origin"):
        haloflow.median_filter(VOLUME, 3, origin=2)
    with pytest.raises(RuntimeError, match="output shape not correct"):
        haloflow.gaussian_filter(VOLUME, 1, output=np.zeros((2, 2), np.float32))
    with pytest.raises(RuntimeError, match="boundary mode not supported"):
        haloflow.uniform_filter(VOLUME, 3, mode="bogus")
    with pytest.raises(RuntimeError, match="sequence argument must have length equal to input rank"):
        haloflow.gaussian_filter(VOLUME, [1, 2])
    with pytest.raises(ValueError, match="axes must be unique"):
        haloflow.gaussian_filter(VOLUME, 1, axes=(0, 0))
    with pytest.raises(RuntimeError, match="no filter weights given"):
        haloflow.correlate1d(VOLUME, [])
    with pytest.raises(RuntimeError, match="incorrect filter size"):
        haloflow.uniform_filter1d(VOLUME, 0)
    with pytest.raises(RuntimeError, match="rank not within filter footprint size"):
        haloflow.rank_filter(VOLUME, 27, size=3)
    with pytest.raises(RuntimeError, match="A sequence of modes is not supported"):
        haloflow.median_filter(VOLUME, 3, mode=["reflect", "wrap", "nearest"])


FLOAT64_CASES = [
    ("gaussian", lambda m, x: m.gaussian_filter(x, 1.5)),
    ("gaussian order modes", lambda m, x: m.gaussian_filter(x, [1.5, 1, 2], order=[2, 0, 1],
                                                              mode=["constant", "wrap", "mirror"], cval=0.3)),
    ("uniform", lambda m, x: m.uniform_filter(x, [2, 3, 4], mode="nearest")),
    ("correlate", lambda m, x: m.correlate(x, W3 * np.pi)),
    ("laplace", lambda m, x: m.gaussian_laplace(x, 1.2)),
    ("gradient magnitude", lambda m, x: m.gaussian_gradient_magnitude(x, [1.2, 0.7, 1.0])),
]


@pytest.mark.parametrize("name,call", FLOAT64_CASES, ids=[c[0] for c in FLOAT64_CASES])
def test_float64_is_computed_in_float64(name, call):
    # Values with more digits than float32 holds: float32 arithmetic would miss by
    # about 1e-7 of their scale, far beyond the 1e-12 asked here.
    x = VOLUME.astype(np.float64) + RNG.random(VOLUME.shape) * 1e-3
    got, want = call(haloflow, x), call(ndimage, x)
    assert got.dtype == want.dtype == np.float64
    scale = float(np.max(np.abs(want)))
    assert np.max(np.abs(got - want)) <= 1e-12 * scale


def test_integers_wider_than_16_bits_are_exact():
    # uint32 values near 2^32 lose their low bits in float32; scipy's double sums and
    # wrapping casts are matched exactly.
    x = np.array([[3, 2, 5, 1, 4], [5, 8, 3, 7, 1], [5, 6, 9, 3, 5]], np.uint32) + np.uint32(4_000_000_000)
    for m in (haloflow, ndimage):
        assert m.correlate1d(x, [-1.0, 0.0, 1.0], 0).dtype == np.uint32
    assert np.array_equal(haloflow.correlate1d(x, [-1.0, 0.0, 1.0], 0), ndimage.correlate1d(x, [-1.0, 0.0, 1.0], 0))
    assert np.array_equal(haloflow.uniform_filter1d(x, 3), ndimage.uniform_filter1d(x, 3))


def test_float32_weights_keep_the_mean():
    # scipy's test_gauss03: a 1e4-pixel ramp near 5e7 in sum keeps its sum to the unit.
    x = np.arange(100 * 100, dtype=np.float32).reshape(100, 100)
    out = haloflow.gaussian_filter(x, [1.0, 1.0])
    assert out.dtype == np.float32
    assert abs(out.sum(dtype="d") - x.sum(dtype="d")) < 0.5


def test_float64_on_the_gpu_warns_once_and_is_computed_on_the_cpu():
    import warnings

    import haloflow.ndimage as hn

    hn._warned_float64_gpu = False
    x = VOLUME.astype(np.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            first = haloflow.gaussian_filter(x, 1.0, device="gpu")
        except Exception as e:  # no adapter here: the warning came first all the same
            first = None
            assert "gpu" in str(e).lower() or "adapter" in str(e).lower(), e
        if first is not None:
            haloflow.gaussian_filter(x, 1.0, device="gpu")
    warned = [w for w in caught if issubclass(w.category, RuntimeWarning) and "float64" in str(w.message)]
    assert len(warned) == 1
    if first is not None:
        assert first.dtype == np.float64
        assert np.max(np.abs(first - ndimage.gaussian_filter(x, 1.0))) <= 1e-12 * float(np.max(x))
