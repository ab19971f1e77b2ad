"""haloflow: chunked filters on N-D arrays, equal to ``scipy.ndimage`` whatever the
chunking, on NumPy arrays in memory and Zarr to Zarr.

In memory, with scipy.ndimage's names and defaults::

    import haloflow
    y = haloflow.gaussian_filter(x, 2)            # = scipy.ndimage.gaussian_filter(x, 2)
    m = haloflow.median_filter(x, size=3)

Chains, in one pass::

    p = haloflow.Pipeline([haloflow.ops.gaussian(2), haloflow.ops.threshold(above=100)])
    mask = p.apply(x)

Zarr to Zarr, bounded in memory, resumable, split across processes::

    report = haloflow.run("in.zarr", "out.zarr", p, chunks=64, part=(i, n))

The GIL is released while haloflow computes; every call takes ``threads=`` (default:
every core) and ``device=`` (``"cpu"``, ``"gpu"`` or ``"auto"``).
"""

from __future__ import annotations

import json
import os

import numpy as np

from . import _haloflow, ops
from .ops import Op

__all__ = [
    "Op", "Pipeline", "ops", "run", "init", "stats", "pyramid", "verify", "HaloflowError",
    "convert", "preview",
    "threshold", "clip", "gaussian", "gaussian_filter", "gaussian_laplace",
    "gaussian_gradient_magnitude", "convolve", "uniform", "uniform_filter", "median",
    "median_filter", "percentile", "percentile_filter", "minimum", "minimum_filter",
    "maximum", "maximum_filter", "downsample", "upsample", "project", "normalize",
    "anscombe", "inverse_anscombe", "richardson_lucy", "denoise_nl_means", "ndimage",
    "gaussian_filter1d", "correlate", "correlate1d", "convolve1d", "uniform_filter1d",
    "rank_filter", "minimum_filter1d", "maximum_filter1d", "affine_transform", "zoom", "rotate", "deskew",
    "label", "regionprops_table", "label_zarr", "objects_zarr",
]

HaloflowError = _haloflow.HaloflowError
__version__ = _haloflow.__version__


class Pipeline:
    """A chain of ops applied in order in one pass (no intermediate array), then an
    optional cast of the result to ``dtype``. Pickles (a plain list of dicts)."""

    def __init__(self, ops=(), dtype=None):
        ops = [ops] if isinstance(ops, Op) else list(ops)
        for op in ops:
            if not isinstance(op, Op):
                raise TypeError(f"a Pipeline holds haloflow.ops values, got {op!r}")
        self.ops = ops
        self.dtype = None if dtype is None else np.dtype(dtype).name

    def __repr__(self) -> str:
        extra = f", dtype={self.dtype!r}" if self.dtype else ""
        return f"haloflow.Pipeline({self.ops!r}{extra})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Pipeline) and (self.ops, self.dtype) == (other.ops, other.dtype)

    def to_json(self) -> str:
        """The pipeline as haloflow records it (``{"ops": [...], "dtype": ...}``)."""
        return json.dumps({"ops": [op.spec for op in self.ops], "dtype": self.dtype})

    @classmethod
    def from_json(cls, text: str) -> "Pipeline":
        """The pipeline recorded in ``text`` (e.g. an output's ``haloflow.pipeline``)."""
        spec = json.loads(text)
        return cls([Op(o) for o in spec.get("ops", [])], spec.get("dtype"))

    def apply(self, x, *, device: str = "cpu", threads: int | None = None) -> np.ndarray:
        """The pipeline on the array ``x`` (1 to 5 dimensions; uint8, uint16, uint32,
        uint64, int8, int16, int32, int64, float32 or float64), read in place: no copy
        is made but the result."""
        x = np.asarray(x)
        return _haloflow.apply(self.to_json(), x, device, threads)


def _one(op: Op, x, device, threads) -> np.ndarray:
    return Pipeline([op]).apply(x, device=device, threads=threads)


def threshold(x, above=None, *, otsu=False, percentile=None, device="cpu", threads=None):
    """``x > above`` as uint8 (or above Otsu's threshold, or a percentile)."""
    return _one(ops.threshold(above, otsu=otsu, percentile=percentile), x, device, threads)


def clip(x, min, max, *, device="cpu", threads=None):  # noqa: A002
    """``np.clip(x, min, max)``, dtype kept."""
    return _one(ops.clip(min, max), x, device, threads)


def downsample(x, factor, method="mean", *, device="cpu", threads=None):
    """Reduce by integer factors (mean, max, min, stride, mode), dtype kept."""
    return _one(ops.downsample(factor, method), x, device, threads)


def upsample(x, factor, method="nearest", *, device="cpu", threads=None):
    """Enlarge by integer factors (nearest, linear), dtype kept."""
    return _one(ops.upsample(factor, method), x, device, threads)


def project(x, axis, method="max", keepdims=False, *, device="cpu", threads=None):
    """numpy's ``x.max(axis)`` (min, mean, sum)."""
    return _one(ops.project(axis, method, keepdims), x, device, threads)


def normalize(x, percentiles=(1.0, 99.8), clip=False, *, device="cpu", threads=None):
    """CSBDeep's percentile normalisation, float32 out."""
    return _one(ops.normalize(percentiles, clip), x, device, threads)


def richardson_lucy(image, psf, num_iter=50, clip=True, filter_epsilon=None, *, device="cpu",
                    threads=None):
    """``skimage.restoration.richardson_lucy`` with its names and defaults: Richardson-Lucy
    deconvolution, float32 out, its convolutions zero outside the image."""
    op = ops.deconvolve(psf, num_iter, filter_epsilon=filter_epsilon, clip=clip)
    return _one(op, image, device, threads)


def denoise_nl_means(image, patch_size=7, patch_distance=11, h=0.1, fast_mode=True, sigma=0.0, *,
                     preserve_range=False, channel_axis=None, device="cpu", threads=None):
    """``skimage.restoration.denoise_nl_means`` with its names and defaults: non-local
    means on a 2-D image or a 3-D volume (4-D and 5-D arrays one volume of the last three
    axes at a time), float32 out. As scikit-image, integer images are first scaled to
    [0, 1] ([-1, 1] if signed) unless ``preserve_range``; multichannel images
    (``channel_axis``) are not supported."""
    if channel_axis is not None:
        raise ValueError("denoise_nl_means: channel_axis is not supported (each channel "
                         "would be filtered on its own, unlike scikit-image); give one image")
    x = np.asarray(image)
    if not preserve_range and np.issubdtype(x.dtype, np.integer):
        # skimage's img_as_float.
        info = np.iinfo(x.dtype)
        x = x.astype(np.float64) / info.max
        if info.min < 0:
            x = np.maximum(x, -1.0)
    op = ops.denoise(patch_size=patch_size, patch_distance=patch_distance, h=h, sigma=sigma,
                     fast_mode=fast_mode)
    return _one(op, x, device, threads)


def anscombe(x, gain=1.0, offset=0.0, read_noise=0.0, *, device="cpu", threads=None):
    """The generalized Anscombe transform of Poisson-Gaussian data (counts times
    ``gain``, plus ``offset``, plus Gaussian read noise of standard deviation
    ``read_noise``), float32 out: unit-variance noise."""
    return _one(ops.anscombe(gain, offset, read_noise), x, device, threads)


def inverse_anscombe(x, gain=1.0, offset=0.0, read_noise=0.0, *, device="cpu", threads=None):
    """Makitalo and Foi's closed-form unbiased inverse of :func:`anscombe`, float32 out."""
    return _one(ops.inverse_anscombe(gain, offset, read_noise), x, device, threads)


# The command's names, for those who know it.
from . import ndimage  # noqa: E402 (it imports Pipeline from here)
from .ndimage import (  # noqa: E402
    affine_transform,
    convolve,
    convolve1d,
    correlate,
    correlate1d,
    gaussian_filter,
    gaussian_filter1d,
    gaussian_gradient_magnitude,
    gaussian_laplace,
    label,
    maximum_filter,
    maximum_filter1d,
    median_filter,
    minimum_filter,
    minimum_filter1d,
    percentile_filter,
    rank_filter,
    regionprops_table,
    rotate,
    uniform_filter,
    uniform_filter1d,
    zoom,
)

gaussian = gaussian_filter
uniform = uniform_filter
median = median_filter
percentile = percentile_filter
minimum = minimum_filter
maximum = maximum_filter


def deskew(x, angle, scan_step, pixel_size, *, rotate=False, device="cpu", threads=None):
    """Lattice light-sheet / oblique-plane deskew of the last three axes (z, y, x; z the
    scan axis): with ``s = scan_step * cos(angle) / pixel_size`` voxels per plane,
    ``out[z, y, x] = x[z, y, x - z*s]`` by linear interpolation, 0 outside, x grown by
    ``ceil((nz - 1) * s)``. This is ``affine_transform(x, [[1, 0, 0], [0, 1, 0],
    [-s, 0, 1]], output_shape=..., order=1, mode='constant')``; element type kept.
    With ``rotate``, the rotation to the coverslip is folded into the same transform
    (see ``ops.deskew``): output ``(h, y, u)`` on an isotropic grid of ``pixel_size``."""
    return _one(ops.deskew(angle, scan_step, pixel_size, rotate), x, device, threads)


def stats(x, *, axis=None, histogram=None, percentiles=(), threads=None, level=None, scene=None) -> dict:
    """Whole-array statistics of a NumPy array, or of a Zarr array or OME-Zarr image
    given by its path (streamed, as ``haloflow stats``): min, max, mean, std (ddof 0)
    and NaN count; exact percentiles (numpy's ``linear`` method, as
    ``np.nanpercentile``); ``np.histogram``'s ``histogram`` bins; per index along
    ``axis`` if given. Returns the report as a dict (``summaries``: one per index, or
    one for the whole array)."""
    percentiles = [float(p) for p in np.atleast_1d(percentiles)] if np.size(percentiles) else []
    options = json.dumps({"axis": None if axis is None else int(axis),
                          "histogram": None if histogram is None else int(histogram),
                          "percentiles": percentiles})
    if isinstance(x, (str, os.PathLike)):
        return json.loads(_haloflow.statistics_of_path(_input(x, scene), options, threads, level))
    return json.loads(_haloflow.statistics(np.asarray(x), options, threads))


def _input(path, scene):
    """The path haloflow reads: ``path``, or scene ``scene`` of a CZI file."""
    path = os.fspath(path)
    return path if not scene else f"{path}#scene={int(scene)}"


def _pipeline(pipeline):
    if isinstance(pipeline, Op):
        pipeline = Pipeline([pipeline])
    if not isinstance(pipeline, Pipeline):
        raise TypeError(f"pipeline: a haloflow.Pipeline or Op, got {pipeline!r}")
    return pipeline.to_json()


def _options(*, chunks=None, shards=None, part=None, memory_limit=None, overwrite=False, device="cpu",
             adapter=None, gpu_timeout=None, threads=None, compression=None, zarr_format=None, level=None, ngff_version=None,
             axes=None, scale=None, units=None, mip=None):
    """The keywords of run, init and pyramid as the options the extension reads (an
    unknown keyword is a TypeError, as in any call)."""
    per_axis = lambda v, cast: None if v is None else [cast(c) for c in np.atleast_1d(v)]
    if part is not None and not isinstance(part, str):
        part = [int(part[0]), int(part[1])]
    return {
        "chunks": per_axis(chunks, int), "shards": per_axis(shards, int), "part": part,
        "memory_limit": memory_limit if memory_limit is None or isinstance(memory_limit, str)
        else int(memory_limit),
        "overwrite": bool(overwrite), "device": device, "adapter": adapter,
        "gpu_timeout": None if gpu_timeout is None else float(gpu_timeout),
        "threads": None if threads is None else int(threads),
        "compression": None if compression is None else str(compression),
        "zarr_format": None if zarr_format is None else int(zarr_format),
        "level": None if level is None else int(level),
        "ngff_version": None if ngff_version is None else str(ngff_version),
        "axes": None if axes is None else [str(a) for a in axes], "scale": per_axis(scale, float),
        "units": None if units is None else [u or "-" for u in units],
        "mip": None if mip is None else os.fspath(mip),
    }


def run(input, output, pipeline, *, progress=False, scene=None, **options) -> dict:
    """Runs ``pipeline`` (a :class:`Pipeline` or one :class:`Op`) from the Zarr array,
    OME-Zarr image or instrument file (TIFF, OME-TIFF, ImageJ TIFF, NIfTI, or scene
    ``scene`` of a CZI) ``input`` to ``output``, as ``haloflow run`` does (the library's
    ``zarr::Run``, called directly), and returns its report (jobs, bytes, seconds per
    stage, peak memory) as a dict.

    Options (keywords): ``chunks`` and ``shards``, the output's chunk and shard shapes
    (one value or one per axis); ``part=(i, n)``, only part i of n (``"auto"`` reads a
    scheduler's array task); ``memory_limit`` in bytes or as ``"2G"``; ``overwrite``;
    ``device`` (``"cpu"``, ``"gpu"``, ``"auto"``) and ``adapter``; ``gpu_timeout``, the
    seconds one GPU submission may take before the rest runs on the CPU; ``threads``;
    ``compression`` (``"zstd:3"``, ``"none"``); ``zarr_format``; ``level`` (of an
    OME-Zarr input); ``ngff_version``; ``axes``, ``scale`` and ``units`` to make an
    OME-Zarr image of a plain array; ``mip``, a path where the output's maximum
    projections along its last three axes are also written, in the same pass (a Zarr
    group of arrays ``z``, ``y``, ``x``; the report's ``mip`` says whether they are
    complete). ``progress``: ``True`` draws a bar on stderr, a
    callable is called with ``(done, total, bytes)`` after each job. A killed run
    resumes when run again. On a GPU the report's ``gpu`` entry says what crossed the
    link, and which fault (if any) sent jobs to the CPU. Errors raise :class:`HaloflowError` with the command's
    message."""
    report = _haloflow.run(_input(input, scene), os.fspath(output), _pipeline(pipeline),
                           json.dumps(_options(**options)), progress or None)
    return json.loads(report)


def label_zarr(input, output, pipeline=None, *, connectivity=1, above=None, dtype="uint32", merge=False,
               progress=False, scene=None, **options) -> dict:
    """``haloflow label``: the connected components of ``input`` (or of what ``pipeline``
    computes from it) written to the Zarr array ``output``, numbered as
    ``scipy.ndimage.label`` numbers them whatever the chunking. ``connectivity`` as
    ``generate_binary_structure``'s; ``above``: objects are the voxels above it (else the
    non-zero ones). With ``part=(i, n)`` only part i's chunks are labelled; then one call
    with ``merge=True`` numbers and writes them all. Options as :func:`run`'s. Returns
    the report (``objects``, chunks labelled and written, seconds, peak memory)."""
    pipe = Pipeline() if pipeline is None else pipeline
    report = _haloflow.label_zarr(_input(input, scene), os.fspath(output), _pipeline(pipe), int(connectivity),
                                  None if above is None else float(above), np.dtype(dtype).name, bool(merge),
                                  json.dumps(_options(**options)), progress or None)
    return json.loads(report)


def objects_zarr(labels, intensity=None, *, threads=None, table=None) -> dict:
    """``haloflow objects``: the table of the label array ``labels`` (a Zarr array),
    streamed chunk by chunk, as :func:`regionprops_table` gives it (every column:
    label, area, centroid, bbox, and with ``intensity`` (a Zarr array of the same
    shape) its mean, min, max and sum per object). With ``table`` (a path ending in
    ``.csv`` or ``.parquet``), the table is also written there, as ``objects
    --table`` writes it."""
    columns, ndim, spacing = _haloflow.objects_zarr(os.fspath(labels),
                                                     None if intensity is None else os.fspath(intensity), threads,
                                                     None if table is None else os.fspath(table))
    wanted = ["label", "area", "centroid", "bbox"]
    if intensity is not None:
        wanted += ["intensity_mean", "intensity_min", "intensity_max", "intensity_sum"]
    return ndimage._object_columns(columns, ndim, wanted, spacing)


def init(input, output, pipeline, *, scene=None, **options) -> dict:
    """Creates the output of ``run(input, output, pipeline, **options)`` without
    computing it (``haloflow init``): run it once before starting the parts of a
    distributed run. Returns what it set up: ``jobs`` (of the whole run), ``part_jobs``,
    the output's ``chunk`` and ``shard`` shapes, and ``memory_bytes``, about what a task
    of ``threads`` workers holds."""
    summary = _haloflow.run(_input(input, scene), os.fspath(output), _pipeline(pipeline),
                            json.dumps(_options(**options)), None, True)
    return json.loads(summary)


def pyramid(input, output, *, levels=None, factor=None, method="mean", progress=False, scene=None,
            **options) -> dict:
    """Writes a multiscale pyramid of ``input`` (level 0 of an OME-Zarr image, or a plain
    array) as an OME-Zarr image, as ``haloflow pyramid`` does: every level in one
    streamed pass over level 0, each the previous one reduced by ``factor`` (default 2 on
    space axes) with ``method`` (``mean``, ``max``, ``min``, ``mode``, ``stride`` or
    ``gaussian``). ``axes``, ``scale`` and ``units`` describe a plain array's axes. Takes
    :func:`run`'s options; returns the report as a dict."""
    extra = {"levels": None if levels is None else int(levels),
             "factor": None if factor is None else [int(f) for f in np.atleast_1d(factor)],
             "method": str(method)}
    report = _haloflow.pyramid(_input(input, scene), os.fspath(output),
                               json.dumps({**_options(**options), **extra}), progress or None)
    return json.loads(report)


def convert(input, output, *, plain=False, pyramid=None, progress=False, scene=None, **options) -> dict:
    """Converts ``input`` (a TIFF, OME-TIFF or ImageJ TIFF, a NIfTI file, a Zeiss CZI
    file's ``scene``, or any Zarr array) to an OME-Zarr image at ``output`` in one streamed pass, as ``haloflow
    convert`` does: the file's axes, pixel sizes, units and channel names go into the
    image's metadata. ``plain=True`` writes a plain Zarr array instead; ``pyramid``
    (``True``, or a number of levels) also writes lower resolution levels (means of
    2×2(×2) blocks). Takes :func:`run`'s options; returns the report as a dict."""
    if pyramid is not None and pyramid is not False:
        if plain:
            raise ValueError("convert: plain=True has no pyramid")
        levels = None if pyramid is True else int(pyramid)
        return globals()["pyramid"](input, output, levels=levels, progress=progress, scene=scene, **options)
    report = _haloflow.run(_input(input, scene), os.fspath(output), Pipeline().to_json(),
                           json.dumps({**_options(**options), "plain": bool(plain)}),
                           progress or None)
    return json.loads(report)


def preview(input, output, *, axis=None, method="max", index=None, channel=None, contrast="auto",
            colormap="gray", size=None, level=None, threads=None, scene=None) -> dict:
    """Writes a PNG picture of ``input`` (a Zarr array, OME-Zarr image, TIFF or NIfTI
    file) at ``output``, as ``haloflow preview`` does: the ``max`` or ``mean`` along
    ``axis`` (a number or a name such as ``"z"``; by default the third from last), or
    the ``slice`` at ``index``; the channel ``channel`` of a ``c`` axis; the contrast
    ``"auto"`` (0.1st to 99.9th percentiles) or ``(lo, hi)``; ``colormap`` ``gray``,
    ``magma`` or ``viridis``; ``size`` pixels on the longer side (on a pyramid, read
    from the level nearest it). Streamed chunk by chunk. Returns what it drew: the
    ``level`` read, the array's ``shape``, the projected ``axis``, the ``picture``'s
    rows and columns and the contrast ``window``."""
    if not isinstance(contrast, str):
        lo, hi = contrast
        contrast = f"{float(lo)!r},{float(hi)!r}"
    options = {"axis": None if axis is None else str(axis), "method": str(method),
               "index": None if index is None else int(index),
               "channel": None if channel is None else int(channel), "contrast": contrast,
               "colormap": str(colormap), "size": None if size is None else int(size),
               "level": None if level is None else int(level),
               "threads": None if threads is None else int(threads)}
    return json.loads(_haloflow.preview(_input(input, scene), os.fspath(output), json.dumps(options)))


def verify(output) -> dict:
    """Which jobs of a run's output (an array, or every level of an OME-Zarr image) are
    done, as ``haloflow verify --json``: ``{"complete": bool, "arrays": [...]}``, each
    array with ``jobs_total``, ``jobs_done`` and the keys of the first missing chunks
    (shards)."""
    arrays = json.loads(_haloflow.verify(os.fspath(output)))
    return {"path": os.fspath(output), "complete": all(a["jobs_done"] == a["jobs_total"] for a in arrays),
            "arrays": arrays}
