"""The haloflow Python package against scipy.ndimage and numpy.

- Every golden case of the Rust tests (tests/golden/cases.json: every op, mode and
  dtype, references computed by scipy and numpy on the whole array) through the
  scipy-named functions and haloflow.ops, with the same tolerances.
- Direct comparisons with scipy.ndimage on larger arrays, through strided views.
- Zarr to Zarr with haloflow.run (zarr-python reads the result back), parts, errors.
- Pickling of ops and pipelines; the GIL released (two threads overlap).
"""

import importlib
import json
import os
import pathlib
import pickle
import threading
import time
import zlib

import numpy as np
import pytest
import scipy.ndimage as ndi

import haloflow
from haloflow import ops

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "tests" / "golden"


def need(module):
    """Imports an optional reference package; without it the test is skipped, unless
    HALOFLOW_REQUIRE_PYTHON=1 (as in CI and scripts/test), where a missing package
    fails the test, as in the Rust tests."""
    if os.environ.get("HALOFLOW_REQUIRE_PYTHON") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module)


@pytest.fixture
def rng(request):
    """A generator seeded by the test's own name: a test's data do not depend on
    which tests ran before it."""
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def golden_cases():
    with open(GOLDEN / "cases.json") as f:
        return json.load(f)["cases"]


def window(o):
    if o.get("footprint"):
        f = o["footprint"]
        return dict(footprint=np.array(f["mask"], dtype=bool).reshape(f["shape"]))
    return dict(size=o["size"])


def constructor(o):
    """The haloflow.ops value for a golden case's op, through the public constructors."""
    kind = o["op"]
    if kind == "threshold":
        return ops.threshold(above=o["above"])
    if kind == "clip":
        return ops.clip(o["min"], o["max"])
    if kind in ("gaussian", "gaussian_laplace", "gaussian_gradient_magnitude"):
        # One mode per axis where the case has them, and the Gaussian's derivative orders.
        extra = {"order": o["order"]} if "order" in o else {}
        return getattr(ops, kind)(o["sigma"], o.get("modes", o["mode"]), o["cval"], o["truncate"], **extra)
    if kind == "convolve":
        k = o["kernel"]
        return ops.convolve(np.array(k["data"]).reshape(k["shape"]), o["mode"], o["cval"])
    if kind == "uniform":
        return ops.uniform(o["size"], o.get("modes", o["mode"]), o["cval"])
    if kind in ("median", "minimum", "maximum"):
        return getattr(ops, kind)(**window(o), mode=o["mode"], cval=o["cval"])
    if kind == "percentile":
        return ops.percentile(o["percentile"], **window(o), mode=o["mode"], cval=o["cval"])
    if kind == "downsample":
        return ops.downsample(o["factor"], o["method"])
    if kind == "upsample":
        return ops.upsample(o["factor"], o["method"])
    if kind == "project":
        return ops.project(o["axis"], o["method"], o["keepdims"])
    raise AssertionError(f"no constructor for {kind}")


def close(got, want, case):
    assert got.dtype == want.dtype, f"{case['name']}: dtype {got.dtype}, expected {want.dtype}"
    assert got.shape == want.shape, f"{case['name']}: shape {got.shape}, expected {want.shape}"
    if case["exact"]:
        assert got.tobytes() == want.tobytes(), f"{case['name']}: not bit-equal"
    else:
        # NaN exactly where the reference has NaN (numpy's propagation), the rest close.
        g, w = got.astype(np.float64), want.astype(np.float64)
        assert np.array_equal(np.isnan(g), np.isnan(w)), f"{case['name']}: NaN elsewhere than the reference"
        err = np.max(np.abs(g - w), initial=0.0, where=~np.isnan(w))
        assert err <= case["tol"], f"{case['name']}: max error {err} > {case['tol']}"


CASES = golden_cases()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_case(case):
    x = np.load(GOLDEN / case["input"])
    want = np.load(GOLDEN / case["expected"])
    pipeline = haloflow.Pipeline([constructor(o) for o in case["ops"]], dtype=case["dtype"])
    close(pipeline.apply(x), want, case)


def test_every_golden_op_is_covered():
    kinds = {o["op"] for c in CASES for o in c["ops"]}
    assert {"gaussian", "median", "percentile", "minimum", "maximum", "uniform", "convolve",
            "gaussian_laplace", "gaussian_gradient_magnitude", "project", "downsample",
            "upsample", "threshold", "clip"} <= kinds


VOLUME = (np.random.default_rng(1).random((24, 40, 36)) * 1000).astype(np.float32)
VOLUME_U16 = (np.random.default_rng(2).random((24, 40, 36)) * 4000).astype(np.uint16)


@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "constant", "wrap"])
def test_scipy_named_filters_equal_scipy(mode, rng):
    x = VOLUME
    tol = 2e-5 * 1000
    for ours, theirs, args in [
        (haloflow.gaussian_filter, ndi.gaussian_filter, dict(sigma=(1.0, 2.0, 1.5))),
        (haloflow.gaussian_laplace, ndi.gaussian_laplace, dict(sigma=1.5)),
        (haloflow.gaussian_gradient_magnitude, ndi.gaussian_gradient_magnitude, dict(sigma=1.5)),
        (haloflow.uniform_filter, ndi.uniform_filter, dict(size=(3, 5, 3))),
        (haloflow.convolve, ndi.convolve, dict(weights=rng.random((3, 3, 3)))),
    ]:
        got = ours(x, mode=mode, cval=3.5, **args)
        want = theirs(x.astype(np.float64), mode=mode, cval=3.5, **args).astype(np.float32)
        assert got.dtype == np.float32
        assert np.max(np.abs(got - want)) <= tol, (ours.__name__, mode)
    for ours, theirs, args in [
        (haloflow.median_filter, ndi.median_filter, dict(size=3)),
        (haloflow.percentile_filter, ndi.percentile_filter, dict(percentile=30, size=(3, 1, 5))),
        (haloflow.minimum_filter, ndi.minimum_filter, dict(footprint=ndi.generate_binary_structure(3, 1))),
        (haloflow.maximum_filter, ndi.maximum_filter, dict(size=4)),
    ]:
        for x in (VOLUME, VOLUME_U16):
            got = ours(x, mode=mode, cval=7, **args)
            want = theirs(x, mode=mode, cval=7, **args)
            assert got.dtype == x.dtype and np.array_equal(got, want), (ours.__name__, mode, x.dtype)


def test_views_are_read_in_place_whatever_their_strides(rng):
    base = (rng.random((30, 50, 60)) * 100).astype(np.float32)
    for view in (base[::2, 5:45, ::-3], base.transpose(2, 0, 1), np.asfortranarray(base)):
        got = haloflow.gaussian_filter(view, 1.5)
        want = ndi.gaussian_filter(np.ascontiguousarray(view).astype(np.float64), 1.5).astype(np.float32)
        assert np.max(np.abs(got - want)) <= 2e-5 * 100


def test_numpy_reductions_and_thresholds():
    x = VOLUME_U16
    assert np.array_equal(haloflow.project(x, 1, "max"), x.max(axis=1))
    assert np.array_equal(haloflow.project(x, 0, "min", keepdims=True), x.min(axis=0, keepdims=True))
    assert np.allclose(haloflow.project(x, 2, "mean"), x.mean(axis=2))
    assert np.array_equal(haloflow.threshold(x, above=2000), (x > 2000).astype(np.uint8))
    assert np.array_equal(haloflow.clip(x, 100, 3000), np.clip(x, 100, 3000))
    t = np.percentile(x, 90)
    assert np.array_equal(haloflow.threshold(x, percentile=90), (x > t).astype(np.uint8))
    skimage = need("skimage.filters")
    t = skimage.threshold_otsu(x)
    assert np.array_equal(haloflow.threshold(x, otsu=True), (x > t).astype(np.uint8))
    lo, hi = np.percentile(VOLUME, [1, 99.8])
    want = (VOLUME - np.float32(lo)) / (np.float32(hi) - np.float32(lo) + np.float32(1e-20))
    assert np.allclose(haloflow.normalize(VOLUME), want, atol=1e-6)


def test_richardson_lucy_equals_skimage_on_one_chunk_and_small_ones(tmp_path):
    restoration = need("skimage.restoration")
    zarr = need("zarr")
    rng = np.random.default_rng(6)
    image = (rng.random((10, 18, 21)) * 100).astype(np.float32)
    x = np.arange(-2, 3)
    g = np.exp(-x**2 / 2.0)
    psf = g[:, None, None] * g[None, :, None] * g[None, None, :]
    psf /= psf.sum()
    for num_iter, clip, eps in [(5, True, None), (12, False, None), (5, False, 1e-3)]:
        want = restoration.richardson_lucy(image, psf, num_iter=num_iter, clip=clip, filter_epsilon=eps)
        got = haloflow.richardson_lucy(image, psf, num_iter=num_iter, clip=clip, filter_epsilon=eps)
        assert got.dtype == np.float32
        assert np.max(np.abs(got - want)) <= 1e-4 * np.ptp(want), (num_iter, clip, eps)
    # Zarr to Zarr in chunks far smaller than the halo (12 iterations x 2 x radius 2).
    src = tmp_path / "in.zarr"
    zarr.create_array(store=src, shape=image.shape, chunks=(4, 6, 7), dtype=image.dtype)[...] = image
    want = restoration.richardson_lucy(image, psf, num_iter=12, clip=False)
    report = haloflow.run(src, tmp_path / "out.zarr", ops.deconvolve(psf, 12), chunks=(4, 6, 7))
    got = zarr.open_array(tmp_path / "out.zarr")[...]
    assert np.max(np.abs(got - want)) <= 1e-4 * np.ptp(want)
    # The jobs were grown from one chunk each (3 x 3 x 3 = 27), so that they do not each
    # deconvolve nearly the whole image; the approximate runs below keep one per chunk.
    assert 1 <= report["jobs_total"] < 27, report["jobs_total"]
    # Approximate, each chunk deconvolved on its own grown by the overlap: the error
    # falls as the overlap grows (the PSF's radius is 2).
    errors = []
    for overlap in (1, 12):
        out = tmp_path / f"overlap{overlap}.zarr"
        approximate = haloflow.run(src, out, ops.deconvolve(psf, 12, overlap=overlap), chunks=(4, 6, 7))
        assert approximate["jobs_total"] == 27
        errors.append(np.max(np.abs(zarr.open_array(out)[...] - want)) / np.ptp(want))
    assert errors[1] <= 1e-3 < errors[0], errors
    # A PSF that is not separable (the Gaussian one above runs as three 1-D passes).
    skewed = psf.copy()
    skewed[0, 1, 3] += 0.05
    skewed /= skewed.sum()
    want = restoration.richardson_lucy(image, skewed, num_iter=5, clip=False)
    got = haloflow.richardson_lucy(image, skewed, num_iter=5, clip=False)
    assert np.max(np.abs(got - want)) <= 1e-4 * np.ptp(want)
    with pytest.raises(haloflow.HaloflowError, match="iterations must be >= 1"):
        haloflow.richardson_lucy(image, psf, num_iter=0)
    with pytest.raises(ValueError, match="psf holds a non-finite value"):
        haloflow.richardson_lucy(image, np.full((3, 3), np.nan))


def _noisy_blobs(shape, seed):
    """Smooth structure plus Gaussian noise, float32: what non-local means is for."""
    ndimage = need("scipy.ndimage")
    rng = np.random.default_rng(seed)
    clean = ndimage.gaussian_filter(rng.random(shape), 2) * 4
    return (clean + rng.normal(0, 0.2, shape)).astype(np.float32)


def test_denoise_nl_means_equals_skimage_on_one_chunk_and_small_ones(tmp_path):
    restoration = need("skimage.restoration")
    zarr = need("zarr")
    image2 = _noisy_blobs((40, 50), 7)
    volume = _noisy_blobs((12, 20, 24), 8)
    # Fast mode in 2-D and 3-D, classic mode in 2-D and 3-D; an even patch size.
    for x, s, d, h, sigma, fast in [(image2, 5, 6, 0.3, 0.1, True), (image2, 4, 3, 0.2, 0.0, False),
                                    (volume, 5, 3, 0.3, 0.1, True), (volume, 3, 2, 0.3, 0.1, False),
                                    # An offset far larger than the range (a camera's baseline).
                                    (volume + 1000, 5, 3, 0.3, 0.1, True)]:
        want = restoration.denoise_nl_means(x, patch_size=s, patch_distance=d, h=h, sigma=sigma,
                                            fast_mode=fast, preserve_range=True)
        got = haloflow.denoise_nl_means(x, patch_size=s, patch_distance=d, h=h, sigma=sigma,
                                        fast_mode=fast, preserve_range=True)
        assert got.dtype == np.float32
        assert np.max(np.abs(got - want)) <= 1e-4 * np.ptp(want), (x.shape, s, d, fast)
        # Zarr to Zarr in chunks smaller than the halo (distance + patch radius).
        src = tmp_path / f"in{x.ndim}{s}{fast}{x.mean() > 500}.zarr"
        chunks = (3, 4, 5)[-x.ndim:]
        zarr.create_array(store=src, shape=x.shape, chunks=chunks, dtype=x.dtype)[...] = x
        out = tmp_path / f"out{x.ndim}{s}{fast}{x.mean() > 500}.zarr"
        haloflow.run(src, out, ops.denoise(patch_size=s, patch_distance=d, h=h, sigma=sigma,
                                           fast_mode=fast), chunks=chunks)
        got = zarr.open_array(out)[...]
        assert np.max(np.abs(got - want)) <= 1e-4 * np.ptp(want), (x.shape, s, d, fast, chunks)
    # The leading axes of a 4-D array are filtered one volume at a time.
    stack = np.stack([volume, volume[::-1]])
    want = np.stack([restoration.denoise_nl_means(v, patch_size=3, patch_distance=2, h=0.3,
                                                  preserve_range=True) for v in stack])
    got = haloflow.Pipeline([ops.denoise(patch_size=3, patch_distance=2, h=0.3)]).apply(stack)
    assert np.max(np.abs(got - want)) <= 1e-4 * np.ptp(want)
    # Integer images are scaled as skimage's img_as_float does, unless preserve_range.
    counts = (volume * 1000).clip(0, 65535).astype(np.uint16)
    want = restoration.denoise_nl_means(counts, patch_size=3, patch_distance=2, h=0.01)
    got = haloflow.denoise_nl_means(counts, patch_size=3, patch_distance=2, h=0.01)
    assert np.max(np.abs(got - want)) <= 1e-4 * np.ptp(want)
    with pytest.raises(haloflow.HaloflowError, match="patch-distance must be >= 1"):
        haloflow.denoise_nl_means(volume, patch_distance=0)
    with pytest.raises(haloflow.HaloflowError, match="2-D images and 3-D volumes"):
        haloflow.denoise_nl_means(volume[0, 0])


def test_denoise_with_a_poisson_gaussian_model_is_the_anscombe_chain():
    g, o, s = 2.0, 100.0, 3.0
    rng = np.random.default_rng(9)
    counts = (rng.poisson(_noisy_blobs((8, 16, 18), 10).clip(0) * 20) * g + o
              + rng.normal(0, s, (8, 16, 18))).astype(np.float32)
    chain = haloflow.Pipeline([ops.anscombe(g, o, s), ops.denoise(patch_size=3, patch_distance=2, h=1.0),
                               ops.inverse_anscombe(g, o, s)]).apply(counts)
    wrapped = haloflow.Pipeline([ops.denoise(patch_size=3, patch_distance=2, h=1.0, noise="poisson-gaussian",
                                             gain=g, offset=o, read_noise=s)]).apply(counts)
    assert np.array_equal(chain, wrapped)
    # And it is scikit-image's denoiser between the transforms.
    restoration = need("skimage.restoration")
    stable = haloflow.anscombe(counts, gain=g, offset=o, read_noise=s)
    denoised = restoration.denoise_nl_means(stable, patch_size=3, patch_distance=2, h=1.0, preserve_range=True)
    want = haloflow.inverse_anscombe(denoised.astype(np.float32), gain=g, offset=o, read_noise=s)
    assert np.max(np.abs(wrapped - want)) <= 1e-4 * np.ptp(want)


def test_anscombe_and_its_inverse_equal_their_formulas():
    g, o, s = 2.5, 100.0, 3.0
    x = VOLUME_U16.astype(np.float64)
    want = 2 / g * np.sqrt(np.maximum(g * x + 3 / 8 * g * g + s * s - g * o, 0))
    got = haloflow.anscombe(VOLUME_U16, gain=g, offset=o, read_noise=s)
    assert got.dtype == np.float32
    assert np.max(np.abs(got - want)) <= 1e-5 * np.ptp(want)
    d = np.maximum(want, 1.0)
    r = np.sqrt(1.5)
    inverse = g * np.maximum(0, d**2 / 4 + r / (4 * d) - 11 / (8 * d**2) + 5 * r / (8 * d**3)
                             - 1 / 8 - (s / g) ** 2) + o
    back = haloflow.inverse_anscombe(got, gain=g, offset=o, read_noise=s)
    assert np.max(np.abs(back - inverse)) <= 1e-5 * np.ptp(inverse)
    # In a chain, and on the GPU where there is one, the same values.
    p = haloflow.Pipeline([ops.anscombe(g, o, s), ops.inverse_anscombe(g, o, s)])
    assert np.max(np.abs(p.apply(VOLUME_U16) - inverse)) <= 1e-5 * np.ptp(inverse)
    with pytest.raises(haloflow.HaloflowError, match="gain must be finite and > 0"):
        haloflow.anscombe(VOLUME_U16, gain=0)


def test_a_chain_equals_its_ops_one_at_a_time():
    p = haloflow.Pipeline([ops.gaussian(1.0), ops.downsample(2, "mean"), ops.threshold(above=500)])
    step = haloflow.downsample(haloflow.gaussian_filter(VOLUME, 1.0), 2)
    assert np.array_equal(p.apply(VOLUME), haloflow.threshold(step, above=500))
    assert np.array_equal(p.apply(VOLUME, threads=1), p.apply(VOLUME, threads=2))


def test_ops_and_pipelines_pickle():
    p = haloflow.Pipeline([ops.median(footprint=np.ones((3, 3), bool)), ops.gaussian(2, mode="nearest")],
                          dtype="uint16")
    back = pickle.loads(pickle.dumps(p))
    assert back == p and back.to_json() == p.to_json()
    assert np.array_equal(back.apply(VOLUME_U16), p.apply(VOLUME_U16))
    assert haloflow.Pipeline.from_json(p.to_json()) == p


def test_bad_input_raises_with_the_message():
    # The scipy-named functions raise as scipy does (test_ndimage.py); haloflow's own
    # ops name the parameter.
    with pytest.raises(haloflow.HaloflowError, match="sigma"):
        haloflow.Pipeline([haloflow.ops.gaussian(-1)]).apply(VOLUME)
    with pytest.raises(TypeError, match="unsupported array type"):
        haloflow.Pipeline([haloflow.ops.gaussian(1)]).apply(VOLUME.astype(np.complex64))
    with pytest.raises(ValueError, match="mode"):
        haloflow.ops.gaussian(1, mode="bogus")
    with pytest.raises(RuntimeError, match="boundary mode not supported"):
        haloflow.gaussian_filter(VOLUME, 1, mode="bogus")
    with pytest.raises(ValueError, match="device"):
        haloflow.gaussian_filter(VOLUME, 1, device="tpu")


def test_a_call_does_not_wait_for_another_threads_call(rng):
    """Two threads can be inside haloflow at once: while one thread runs a long call
    (a 5x5x5 median of a few tenths of a second or more), a small call from another
    thread returns before the long one does. Were the GIL held, or a lock shared by
    calls, the small call would wait for the long one. No speed is compared: the small
    call is a thousandth of the long one's work, so only a scheduler that starved it
    for the whole long call could fail this."""
    x = (rng.random((32, 256, 256)) * 100).astype(np.float32)
    small = (rng.random((8, 8, 8)) * 100).astype(np.float32)
    want = ndi.median_filter(small, size=5)
    haloflow.median_filter(small, size=5, threads=1)
    started = threading.Event()
    ends = {}

    def long_call():
        started.set()
        haloflow.median_filter(x, size=5, threads=1)
        ends["long"] = time.perf_counter()

    t = threading.Thread(target=long_call)
    t.start()
    try:
        started.wait()
        time.sleep(0.02)
        got = haloflow.median_filter(small, size=5, threads=1)
        ends["small"] = time.perf_counter()
    finally:
        t.join()
    assert np.array_equal(got, want)
    assert ends["small"] < ends["long"], "the small call waited for the long one"


def test_other_python_threads_run_during_a_call(rng):
    """A Python thread that ticks in a loop keeps ticking while another thread is inside
    a call: it ticks in the middle half of the call. Were the GIL held, the ticker could
    tick only at the call's edges, never in its middle. The call (a 5x5x5 median of
    2 M values on one thread) lasts about a second in the tests' build; no duration is
    asserted, only that ticks happened while it ran."""
    x = (rng.random((32, 256, 256)) * 100).astype(np.float32)
    ticks, done = [], threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        while not ticks:  # the ticker runs before the call starts
            time.sleep(0.001)
        start = time.perf_counter()
        haloflow.median_filter(x, size=5, threads=1)
        stop = time.perf_counter()
    finally:
        done.set()
        t.join()
    quarter = (stop - start) / 4
    middle = [s for s in ticks if start + quarter <= s <= stop - quarter]
    assert middle, (f"no tick in the middle half of a {stop - start:.3f} s call "
                    f"({sum(start <= s <= stop for s in ticks)} during it): the GIL was held")


def test_zarr_to_zarr(tmp_path):
    zarr = need("zarr")
    src = tmp_path / "in.zarr"
    zarr.create_array(store=src, shape=VOLUME.shape, chunks=(8, 16, 16), dtype=VOLUME.dtype)[...] = VOLUME
    p = haloflow.Pipeline([ops.gaussian(1.5), ops.clip(0, 400)])
    report = haloflow.run(src, tmp_path / "out.zarr", p, chunks=(8, 20, 12))
    assert report["jobs_done"] == report["jobs_total"] > 1
    got = zarr.open_array(tmp_path / "out.zarr")[...]
    assert np.array_equal(got, p.apply(VOLUME))
    # Three parts, then a rerun that finds everything done; sharded output.
    for i in range(3):
        haloflow.run(src, tmp_path / "parts.zarr", p, chunks=8, shards=16, part=(i, 3))
    again = haloflow.run(src, tmp_path / "parts.zarr", p, chunks=8, shards=16)
    assert again["jobs_done"] == 0 and again["jobs_skipped"] == again["jobs_total"]
    assert np.array_equal(zarr.open_array(tmp_path / "parts.zarr")[...], got)
    # init creates the output and says how a run splits; a callable hears every job.
    summary = haloflow.init(src, tmp_path / "heard.zarr", p, chunks=(8, 20, 12), part=(1, 2))
    assert summary["jobs"] == report["jobs_total"] and summary["part"] == [1, 2]
    assert summary["part_jobs"] in (summary["jobs"] // 2, -(-summary["jobs"] // 2))
    heard = []
    done = haloflow.run(src, tmp_path / "heard.zarr", p, chunks=(8, 20, 12),
                        progress=lambda n, total, nbytes: heard.append((n, total, nbytes)))
    assert heard[-1][0] == heard[-1][1] == done["jobs_total"] and heard[-1][2] == done["bytes_written"]
    assert np.array_equal(zarr.open_array(tmp_path / "heard.zarr")[...], got)

    def fails(n, total, nbytes):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        haloflow.run(src, tmp_path / "raised.zarr", p, progress=fails)
    with pytest.raises(haloflow.HaloflowError, match="no such file"):
        haloflow.run(tmp_path / "missing.zarr", tmp_path / "x.zarr", p)
    with pytest.raises(haloflow.HaloflowError, match="shard"):
        haloflow.run(src, tmp_path / "bad.zarr", p, chunks=8, shards=12)
    with pytest.raises(ValueError, match="gpu_timeout: must be > 0 seconds"):
        haloflow.run(src, tmp_path / "bad.zarr", p, gpu_timeout=0)
    # The report's gpu object is there only for a GPU run.
    assert "gpu" not in report


def test_statistics_equal_numpy_in_memory_and_from_zarr(tmp_path, rng):
    x = (rng.random((12, 30, 40)) * 100).astype(np.float32)
    x[3, 4, 5] = np.nan
    q = [0, 1, 50, 99.8, 100]
    for s in (haloflow.stats(x, percentiles=q, histogram=7),):
        (whole,) = s["summaries"]
        finite = x[~np.isnan(x)]
        assert whole["nan_count"] == 1 and whole["count"] == finite.size
        assert whole["min"] == finite.min() and whole["max"] == finite.max()
        assert np.isclose(whole["mean"], finite.astype(np.float64).mean(), rtol=1e-12)
        assert np.isclose(whole["std"], finite.astype(np.float64).std(), rtol=1e-9)
        assert [p["value"] for p in whole["percentiles"]] == list(np.nanpercentile(x, q))
        counts, edges = np.histogram(finite, 7)
        assert whole["histogram"]["counts"] == list(counts)
        assert np.array_equal(whole["histogram"]["edges"], edges.astype(np.float32).astype(np.float64))
    u = VOLUME_U16
    per = haloflow.stats(u, axis=0, percentiles=[25, 75])["summaries"]
    assert len(per) == u.shape[0]
    for i, s in enumerate(per):
        assert [p["value"] for p in s["percentiles"]] == list(np.percentile(u[i], [25, 75]))
        assert s["max"] == u[i].max()
    zarr = need("zarr")
    path = tmp_path / "s.zarr"
    zarr.create_array(store=path, shape=u.shape, chunks=(5, 16, 16), dtype=u.dtype)[...] = u
    from_zarr = haloflow.stats(path, axis=0, percentiles=[25, 75])["summaries"]
    in_memory = haloflow.stats(u, axis=0, percentiles=[25, 75])["summaries"]
    for a, b in zip(from_zarr, in_memory, strict=True):
        # Exact but for the moments, merged in another order (a chunk at a time).
        for key in ("index", "count", "nan_count", "min", "max", "percentiles"):
            assert a[key] == b[key], key
        assert np.isclose(a["mean"], b["mean"], rtol=1e-12) and np.isclose(a["std"], b["std"], rtol=1e-12)


def test_pyramid_and_verify(tmp_path):
    zarr = need("zarr")
    x = VOLUME_U16
    src = tmp_path / "img.zarr"
    zarr.create_array(store=src, shape=x.shape, chunks=(8, 16, 16), dtype=x.dtype)[...] = x
    out = tmp_path / "pyr.ome.zarr"
    report = haloflow.pyramid(src, out, levels=3, method="max", axes=["z", "y", "x"], scale=[2.0, 0.5, 0.5],
                              units=["micrometer"] * 3)
    assert report["jobs_done"] > 0
    level = x
    for k in range(3):
        got = zarr.open_array(out / str(k))[...]
        assert np.array_equal(got, level), k
        # The next level: numpy's 2x2x2 max, partial windows at the edges.
        pad = [(0, (-n) % 2) for n in level.shape]
        padded = np.pad(level, pad, mode="edge")
        level = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2, padded.shape[2] // 2, 2).max(axis=(1, 3, 5))
    attrs = zarr.open_group(out).attrs.asdict()
    scales = [d["coordinateTransformations"][0]["scale"] for d in attrs["ome"]["multiscales"][0]["datasets"]]
    assert scales == [[2.0, 0.5, 0.5], [4.0, 1.0, 1.0], [8.0, 2.0, 2.0]]
    done = haloflow.verify(out)
    assert done["complete"] and len(done["arrays"]) == 3
    # An incomplete run: one part of three, then verify names what is missing.
    partial = tmp_path / "partial.zarr"
    haloflow.run(src, partial, ops.gaussian(1.0), chunks=8, part=(0, 3))
    found = haloflow.verify(partial)
    assert not found["complete"] and found["arrays"][0]["missing"]
    assert found["arrays"][0]["jobs_done"] == found["arrays"][0]["jobs_total"] - len(found["arrays"][0]["missing"])


def gpu_or_skip():
    """Whether the GPU tests run: an adapter must exist with HALOFLOW_REQUIRE_GPU=1 (as in
    CI, on Mesa's lavapipe); without it they skip."""
    try:
        haloflow.gaussian_filter(np.zeros((2, 2), np.float32), 1.0, device="gpu")
    except haloflow.HaloflowError as e:
        if os.environ.get("HALOFLOW_REQUIRE_GPU") == "1":
            raise AssertionError(f"HALOFLOW_REQUIRE_GPU=1 but device='gpu' failed: {e}") from e
        pytest.skip(f"no GPU adapter: {e}")


def test_device_gpu_equals_scipy_and_the_cpu(rng):
    """device="gpu" runs the WGSL kernels (lavapipe on CI): each result equals scipy's
    (within float32 rounding for the filters, exactly for the rest) and the CPU's."""
    gpu_or_skip()
    x = (rng.random((9, 20, 17)) * 1000).astype(np.float32)
    u = (rng.random((9, 20, 17)) * 4000).astype(np.uint16)
    for name, got, want, tol in [
        ("gaussian_filter", haloflow.gaussian_filter(x, (1.0, 2.0, 1.5), mode="wrap", device="gpu"),
         ndi.gaussian_filter(x.astype(np.float64), (1.0, 2.0, 1.5), mode="wrap").astype(np.float32), 2e-5 * 1000),
        ("uniform_filter", haloflow.uniform_filter(u, 3, np.float32, mode="constant", cval=5, device="gpu"),
         ndi.uniform_filter(u.astype(np.float64), 3, mode="constant", cval=5).astype(np.float32), 2e-5 * 4000),
        ("median_filter", haloflow.median_filter(u, size=3, device="gpu"), ndi.median_filter(u, size=3), 0),
        ("maximum_filter", haloflow.maximum_filter(x, size=(1, 3, 2), mode="nearest", device="gpu"),
         ndi.maximum_filter(x, size=(1, 3, 2), mode="nearest"), 0),
        ("threshold", haloflow.threshold(u, above=2000, device="gpu"), (u > 2000).astype(np.uint8), 0),
        ("project", haloflow.project(u, 0, "max", device="gpu"), u.max(axis=0), 0),
    ]:
        assert got.dtype == want.dtype and got.shape == want.shape, name
        err = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
        assert err <= tol, f"{name}: max error {err} > {tol}"
    # A chain, against the CPU backend: within float32 rounding (a GPU may fuse
    # multiply-adds; lavapipe gives the same bits).
    p = haloflow.Pipeline([ops.gaussian(1.0), ops.clip(200, 800), ops.downsample(2, "max")])
    gpu, cpu = p.apply(x, device="gpu"), p.apply(x, device="cpu")
    assert gpu.dtype == cpu.dtype == np.float32 and gpu.shape == cpu.shape
    assert np.max(np.abs(gpu - cpu)) <= 1e-5 * 800
