"""Operation constructors, named like the command's subcommands.

Each returns an :class:`Op`: a plain description (a dict, the form haloflow records in
its outputs' attributes) that pickles, so a dask or Ray task can carry it. Chain them
with :class:`haloflow.Pipeline`.
"""

from __future__ import annotations

import numpy as np

MODES = ("reflect", "mirror", "nearest", "constant", "wrap")


class Op:
    """One operation: ``Op({"op": "gaussian", "sigma": [2.0], ...})``."""

    __slots__ = ("spec",)

    def __init__(self, spec: dict):
        if not isinstance(spec, dict) or "op" not in spec:
            raise ValueError(f"an op is a dict with an 'op' key, got {spec!r}")
        self.spec = dict(spec)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec.items() if k != "op")
        return f"haloflow.ops.{self.spec['op']}({args})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Op) and self.spec == other.spec

    def __getstate__(self):
        return self.spec

    def __setstate__(self, state):
        self.spec = state


def _floats(v, what: str) -> list[float]:
    values = [float(x) for x in np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel()]
    if not values:
        raise ValueError(f"{what}: no values")
    return values


def _ints(v, what: str) -> list[int]:
    a = np.atleast_1d(np.asarray(v))
    if a.size == 0 or not np.all(a == np.round(a)):
        raise ValueError(f"{what}: expected whole numbers, got {v!r}")
    return [int(x) for x in a.ravel()]


def _mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def _modes(mode) -> dict:
    """``mode`` as an op's fields: one mode, or (a sequence) one per axis."""
    if isinstance(mode, str):
        return {"mode": _mode(mode)}
    modes = [_mode(m) for m in mode]
    if not modes:
        raise ValueError("mode: no values")
    return {"mode": modes[0], "modes": modes} if len(modes) > 1 else {"mode": modes[0]}


def _window(size, footprint) -> dict:
    """A rank filter's window: `size` (per axis) or a boolean `footprint`."""
    if footprint is not None:
        if size is not None:
            raise ValueError("give size or footprint, not both")
        f = np.asarray(footprint)
        return {"footprint": {"shape": list(f.shape), "mask": [bool(x) for x in f.ravel()]}}
    if size is None:
        raise ValueError("give size or footprint")
    return {"size": _ints(size, "size")}


def threshold(above: float | None = None, *, otsu: bool = False, percentile: float | None = None) -> Op:
    """``x > above`` as uint8; or above Otsu's threshold (``otsu=True``, scikit-image's
    ``threshold_otsu``) or a percentile of the whole input."""
    given = [above is not None, otsu, percentile is not None]
    if sum(given) != 1:
        raise ValueError("threshold: give exactly one of above, otsu=True, percentile")
    if otsu:
        return Op({"op": "threshold_otsu"})
    if percentile is not None:
        return Op({"op": "threshold_percentile", "percentile": float(percentile)})
    return Op({"op": "threshold", "above": float(above)})


def clip(min: float, max: float) -> Op:  # noqa: A002 (numpy's names)
    """``np.clip(x, min, max)``, dtype kept."""
    return Op({"op": "clip", "min": float(min), "max": float(max)})


def gaussian(sigma, mode="reflect", cval: float = 0.0, truncate: float = 4.0, order=None) -> Op:
    """``scipy.ndimage.gaussian_filter``: float32 out (float64 for float64 input);
    ``mode`` one or one per axis, ``order`` the derivative's, one or one per axis."""
    op = {"op": "gaussian", "sigma": _floats(sigma, "sigma"), **_modes(mode), "cval": float(cval),
          "truncate": float(truncate)}
    if order is not None:
        op["order"] = _ints(order, "order")
    return Op(op)


def gaussian_laplace(sigma, mode="reflect", cval: float = 0.0, truncate: float = 4.0) -> Op:
    """``scipy.ndimage.gaussian_laplace``: float32 out (float64 for float64 input);
    ``mode`` one or one per axis (axis a's term in mode a, as scipy's)."""
    return Op({"op": "gaussian_laplace", "sigma": _floats(sigma, "sigma"), **_modes(mode),
               "cval": float(cval), "truncate": float(truncate)})


def gaussian_gradient_magnitude(sigma, mode="reflect", cval: float = 0.0, truncate: float = 4.0) -> Op:
    """``scipy.ndimage.gaussian_gradient_magnitude``: float32 out (float64 for float64
    input); ``mode`` one or one per axis (axis a's term in mode a, as scipy's)."""
    return Op({"op": "gaussian_gradient_magnitude", "sigma": _floats(sigma, "sigma"),
               **_modes(mode), "cval": float(cval), "truncate": float(truncate)})


def convolve(weights, mode: str = "reflect", cval: float = 0.0, origin=None) -> Op:
    """``scipy.ndimage.convolve`` (weights on the trailing axes), float32 out; ``origin``
    one value or one per kernel axis, as scipy's."""
    w = np.asarray(weights, dtype=np.float64)
    op = {"op": "convolve", "kernel": {"shape": list(w.shape), "data": [float(x) for x in w.ravel()]},
          "mode": _mode(mode), "cval": float(cval)}
    if origin is not None:
        op["origin"] = _ints(origin, "origin")
    return Op(op)


def uniform(size=3, mode="reflect", cval: float = 0.0, origin=None) -> Op:
    """``scipy.ndimage.uniform_filter``: float32 out (float64 for float64 input);
    ``mode`` and ``origin`` one value or one per axis, as scipy's."""
    op = {"op": "uniform", "size": _ints(size, "size"), **_modes(mode), "cval": float(cval)}
    if origin is not None:
        op["origin"] = _ints(origin, "origin")
    return Op(op)


def _rank(name: str, size, footprint, mode: str, cval: float, origin, **extra) -> Op:
    op = {"op": name, **extra, **_window(size, footprint), "mode": _mode(mode), "cval": float(cval)}
    if origin is not None:
        op["origin"] = _ints(origin, "origin")
    return Op(op)


def median(size=None, footprint=None, mode: str = "reflect", cval: float = 0.0, origin=None) -> Op:
    """``scipy.ndimage.median_filter``, dtype kept; ``origin`` as scipy's."""
    return _rank("median", size, footprint, mode, cval, origin)


def percentile(percentile: float, size=None, footprint=None, mode: str = "reflect", cval: float = 0.0,
               origin=None) -> Op:
    """``scipy.ndimage.percentile_filter``, dtype kept; ``origin`` as scipy's."""
    return _rank("percentile", size, footprint, mode, cval, origin, percentile=float(percentile))


def minimum(size=None, footprint=None, mode: str = "reflect", cval: float = 0.0, origin=None) -> Op:
    """``scipy.ndimage.minimum_filter`` (grey erosion), dtype kept; ``origin`` as scipy's."""
    return _rank("minimum", size, footprint, mode, cval, origin)


def maximum(size=None, footprint=None, mode: str = "reflect", cval: float = 0.0, origin=None) -> Op:
    """``scipy.ndimage.maximum_filter`` (grey dilation), dtype kept; ``origin`` as scipy's."""
    return _rank("maximum", size, footprint, mode, cval, origin)


def downsample(factor, method: str = "mean") -> Op:
    """Reduce by integer factors (``mean``, ``max``, ``min``, ``stride``, ``mode``);
    ``ceil(n / f)`` out, dtype kept."""
    return Op({"op": "downsample", "factor": _ints(factor, "factor"), "method": method})


def upsample(factor, method: str = "nearest") -> Op:
    """Enlarge by integer factors (``nearest``: ``np.repeat``; ``linear``), dtype kept."""
    return Op({"op": "upsample", "factor": _ints(factor, "factor"), "method": method})


def project(axis: int, method: str = "max", keepdims: bool = False) -> Op:
    """numpy's ``x.max(axis)`` (``min``, ``mean``, ``sum``); last in a chain unless
    ``keepdims``."""
    return Op({"op": "project", "axis": int(axis), "method": method, "keepdims": bool(keepdims)})


def normalize(percentiles=(1.0, 99.8), clip: bool = False) -> Op:
    """CSBDeep's ``(x - p_lo) / (p_hi - p_lo)`` from the whole input's percentiles,
    float32 out."""
    lo, hi = _floats(percentiles, "percentiles")
    return Op({"op": "normalize", "percentiles": [lo, hi], "clip": bool(clip)})


def deconvolve(psf=None, iterations: int = 50, filter_epsilon=None, clip: bool = False,
               psf_sigma=None, overlap=None) -> Op:
    """Richardson-Lucy deconvolution (``skimage.restoration.richardson_lucy``) with the
    point-spread function ``psf`` (an array; its axes are the data's last ones) or a
    Gaussian one of ``psf_sigma`` (pixels, normalised, over +-4 sigma), float32 out."""
    if (psf is None) == (psf_sigma is None):
        raise ValueError("give psf or psf_sigma, one of them")
    op = {"op": "deconvolve", "iterations": int(iterations), "clip": bool(clip)}
    if psf is not None:
        k = np.asarray(psf, dtype=np.float64)
        if not np.all(np.isfinite(k)):
            raise ValueError("deconvolve: the psf holds a non-finite value")
        op["psf"] = {"shape": list(k.shape), "data": k.ravel().tolist()}
    else:
        op["psf_sigma"] = _floats(psf_sigma, "psf_sigma")
    if filter_epsilon is not None:
        op["filter_epsilon"] = float(filter_epsilon)
    if overlap is not None:
        # Approximate: each block deconvolved on its own, grown by `overlap` pixels.
        op["overlap"] = int(overlap)
    return Op(op)


def denoise(patch_size: int = 7, patch_distance: int = 11, h: float = 0.1, sigma: float = 0.0,
            fast_mode: bool = True, noise=None, gain: float = 1.0, offset: float = 0.0,
            read_noise: float = 0.0) -> Op:
    """Non-local means (``skimage.restoration.denoise_nl_means``, ``preserve_range=True``)
    on the last two axes of a 2-D array, the last three of others, float32 out. With
    ``noise="poisson-gaussian"``, in the generalized Anscombe domain of ``gain``,
    ``offset`` and ``read_noise`` (``h`` and ``sigma`` then in that domain)."""
    op = {"op": "denoise", "patch_size": int(patch_size), "patch_distance": int(patch_distance),
          "h": float(h), "sigma": float(sigma), "fast_mode": bool(fast_mode)}
    if noise is not None:
        if noise != "poisson-gaussian":
            raise ValueError(f"denoise: noise must be 'poisson-gaussian' or None, got {noise!r}")
        op["noise"] = {"gain": float(gain), "offset": float(offset), "read_noise": float(read_noise)}
    return Op(op)


def anscombe(gain: float = 1.0, offset: float = 0.0, read_noise: float = 0.0) -> Op:
    """The generalized Anscombe transform of Poisson-Gaussian data, float32 out:
    ``2/gain * sqrt(max(gain*x + 3/8*gain**2 + read_noise**2 - gain*offset, 0))``."""
    return Op({"op": "anscombe", "gain": float(gain), "offset": float(offset),
               "read_noise": float(read_noise)})


def inverse_anscombe(gain: float = 1.0, offset: float = 0.0, read_noise: float = 0.0) -> Op:
    """The closed-form unbiased inverse of :func:`anscombe` (Makitalo and Foi, 2013),
    float32 out."""
    return Op({"op": "inverse_anscombe", "gain": float(gain), "offset": float(offset),
               "read_noise": float(read_noise)})


def cast(dtype) -> Op:
    """Convert the element type (round half to even, saturate)."""
    return Op({"op": "cast", "dtype": np.dtype(dtype).name})



_INTERP_MODES = ("constant", "grid-constant", "nearest", "reflect", "grid-mirror", "mirror", "wrap", "grid-wrap")


def _interp(order, mode, cval, prefilter) -> dict:
    if mode not in _INTERP_MODES:
        raise ValueError(f"mode must be one of {', '.join(_INTERP_MODES)}, got {mode!r}")
    return {"order": int(order), "mode": "reflect" if mode == "grid-mirror" else mode, "cval": float(cval),
            "prefilter": bool(prefilter)}


def affine(matrix, offset=0.0, output_shape=None, order: int = 3, mode: str = "constant", cval: float = 0.0,
           prefilter: bool = True) -> Op:
    """``scipy.ndimage.affine_transform``: the output at index ``o`` is the input
    interpolated (splines of ``order`` 0 to 5) at ``matrix @ o + offset``; element type
    kept. ``matrix`` is N×N, N×(N+1) or (N+1)×(N+1) homogeneous, or 1-D (a diagonal)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim == 1:
        m = np.diag(m)
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(offset))):
        raise ValueError("affine: matrix and offset values must be finite")
    op = {"op": "affine", "matrix": m.tolist(), "offset": _floats(offset, "offset"),
          **_interp(order, mode, cval, prefilter)}
    if output_shape is not None:
        op["output_shape"] = _ints(output_shape, "output_shape")
    return Op(op)


def zoom(zoom, order: int = 3, mode: str = "constant", cval: float = 0.0, prefilter: bool = True,
         grid_mode: bool = False) -> Op:
    """``scipy.ndimage.zoom`` by ``zoom`` (one factor or one per axis): output
    ``round(n * zoom)`` per axis, element type kept."""
    return Op({"op": "zoom", "zoom": _floats(zoom, "zoom"), "grid_mode": bool(grid_mode),
               **_interp(order, mode, cval, prefilter)})


def rotate(angle: float, axes=(1, 0), reshape: bool = True, order: int = 3, mode: str = "constant",
           cval: float = 0.0, prefilter: bool = True) -> Op:
    """``scipy.ndimage.rotate`` by ``angle`` degrees in the plane of ``axes``."""
    a, b = (int(v) for v in axes)
    return Op({"op": "rotate", "angle": float(angle), "axes": [a, b], "reshape": bool(reshape),
               **_interp(order, mode, cval, prefilter)})


def deskew(angle: float, scan_step: float, pixel_size: float, rotate: bool = False) -> Op:
    """Lattice light-sheet / oblique-plane deskew of the last three axes (z, y, x): with
    ``s = scan_step * cos(angle) / pixel_size``, ``out[z, y, x] = in[z, y, x - z*s]``
    (linear, 0 outside), x grown by ``ceil((nz - 1) * s)``: ``affine_transform`` with
    ``[[1, 0, 0], [0, 1, 0], [-s, 0, 1]]``, order 1, mode ``constant``. With
    ``rotate``, also the rotation to the coverslip in the same transform: output
    ``(h, y, u)`` on the pixel size's grid reads ``x = h / sin(angle)``,
    ``z = (u - h * cot(angle)) * pixel_size / scan_step``."""
    body = {"op": "deskew", "angle": float(angle), "scan_step": float(scan_step),
            "pixel_size": float(pixel_size)}
    if rotate:
        body["rotate"] = True
    return Op(body)
