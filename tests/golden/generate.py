#!/usr/bin/env python3
"""Golden-reference generator for haloflow.

haloflow applies image filters chunk by chunk; whatever the chunking, its
result must equal the reference computed here on the *whole* array with
numpy / scipy.ndimage.

Usage (from the repository root):

    python tests/golden/generate.py

Requirements: numpy and scipy only (see tests/golden/requirements.txt).

The script deletes and rewrites ``tests/golden/data/`` and rewrites
``tests/golden/cases.json``.  It is fully deterministic: every input array is
drawn from ``np.random.default_rng(seed)`` with a seed derived (CRC32) from the
input's dtype, shape and kind, so re-running it gives byte-identical files for
the same numpy/scipy versions.

cases.json layout::

    {"generator": "tests/golden/generate.py", "numpy": "...", "scipy": "...",
     "cases": [{"name", "input", "ops", "dtype", "expected", "exact", "tol"}]}

* ``input`` / ``expected`` are paths (relative to tests/golden/) of plain
  ``.npy`` files (C order, little-endian).  Inputs are shared between cases.
* ``ops`` is the chain of operations, applied in order; ``dtype`` (or null) is
  a final cast applied after the chain.
* ``exact`` true: the result must match bit for bit.  Otherwise compare with
  the absolute tolerance ``tol = 2e-5 * max(ptp(input), ptp(expected), 1)``
  (both taken as float64; 1e-10 instead of 2e-5 where a float64 input gives a
  float64 result); ``tol`` is 0.0 for exact cases.

Reference semantics of the ops (x is the current array):

* threshold {"above": T}: ``(x.astype(f64) > T).astype(uint8)``.
* clip {"min": LO, "max": HI}: dtype kept.  Integers:
  ``cast(np.clip(x.astype(f64), LO, HI))``; floats: ``np.clip(x, dt(LO), dt(HI))``.
* gaussian {"sigma", "mode", "cval", "truncate"}:
  ``ndimage.gaussian_filter(x.astype(f64), ...).astype(f32)`` (float64 input:
  left float64, as every linear filter's).  sigma has
  length 1 (all axes) or ndim; sigma 0 leaves an axis untouched.
* convolve {"kernel": {"shape", "data"}, "mode", "cval"}:
  ``ndimage.convolve(x.astype(f64), k, ...).astype(f32)``, the kernel
  (ndim <= x.ndim) acting on the trailing axes.  With L = kernel length along
  an axis this is ``out[i] = sum_m k[m] * ext(x)[i - m + L // 2]`` (also for
  even L).
* downsample {"factor", "method"}: output shape ceil(n / f); window for output
  o is [o*f, min(o*f + f, n)).  mean (ints: cast(mean in f64); floats: f64
  mean cast to dtype), max, min, stride (``x[::f]``), mode (most frequent
  value, ties -> smallest value).
* upsample {"factor", "method"}: nearest = np.repeat; linear =
  ``ndimage.zoom(x.astype(f64), f, order=1, grid_mode=True, mode="nearest")``
  (ints: cast(), floats: astype(dtype)).  Output shape n * f.

``cast(v, dt)`` for an integer dt is ``np.clip(np.rint(v), min, max).astype(dt)``
(round half to even, saturate); for a float dt it is ``astype(dt)``.

Robustness check: for every non-exact case the chain is re-run with the
float-op outputs (gaussian, convolve, float mean/linear) shifted by +-1e-6 of
their magnitude (and randomly jittered).  The perturbed result may differ from
the expected one only by ``tol`` plus the jitter itself; this guarantees that
no threshold or integer rounding that follows a float op sits right on a
decision boundary.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy
from scipy import ndimage

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
CASES_JSON = HERE / "cases.json"
GENERATOR = "tests/golden/generate.py"

INT_DTYPES = ("uint8", "uint16", "uint32", "int8", "int16", "int32")
FLOAT_DTYPES = ("float32", "float64")
ALL_DTYPES = INT_DTYPES + FLOAT_DTYPES
MODES = ("reflect", "mirror", "nearest", "constant", "wrap")
SHORT = {"uint8": "u8", "uint16": "u16", "uint32": "u32", "int8": "i8",
         "int16": "i16", "int32": "i32", "float32": "f32", "float64": "f64"}

REL_TOL = 2e-5
# ... and where a float64 input stays float64 to the end (computed in float64).
REL_TOL64 = 1e-10
JITTER = 1e-6


# --------------------------------------------------------------------------
# numeric helpers
# --------------------------------------------------------------------------

def is_int(dtype) -> bool:
    return np.issubdtype(np.dtype(dtype), np.integer)


def cast(v, dtype) -> np.ndarray:
    """Final/intermediate cast: ints round half to even and saturate."""
    dtype = np.dtype(dtype)
    v = np.asarray(v, dtype=np.float64)
    if is_int(dtype):
        info = np.iinfo(dtype)
        return np.clip(np.rint(v), info.min, info.max).astype(dtype)
    return v.astype(dtype)


def per_axis(values, ndim: int) -> list:
    """Expand a length-1 parameter list to ndim entries."""
    values = list(values)
    if len(values) == 1:
        return values * ndim
    if len(values) != ndim:
        raise ValueError(f"parameter list {values} does not match ndim={ndim}")
    return values


def ptp64(a: np.ndarray) -> float:
    """The range of the finite values (NaN inputs have a finite range too)."""
    a = a.astype(np.float64)
    a = a[np.isfinite(a)]
    return float(np.ptp(a)) if a.size else 0.0


# --------------------------------------------------------------------------
# reference implementations of the ops
# --------------------------------------------------------------------------

def ref_threshold(x, above):
    return (x.astype(np.float64) > above).astype(np.uint8)


def ref_clip(x, lo, hi):
    if is_int(x.dtype):
        return cast(np.clip(x.astype(np.float64), lo, hi), x.dtype)
    dt = x.dtype.type
    return np.clip(x, dt(lo), dt(hi))


def linear_out(x, out):
    """A linear filter's result type: float64 for float64 input (computed in float64),
    else float32."""
    return out.astype(np.float64 if x.dtype == np.float64 else np.float32)


def ref_gaussian(x, sigma, mode, cval, truncate, order=0):
    sigma = per_axis(sigma, x.ndim)
    out = ndimage.gaussian_filter(x.astype(np.float64), sigma, order=order, mode=mode,
                                  cval=cval, truncate=truncate)
    return linear_out(x, out)


def ref_convolve(x, kernel, mode, cval):
    k = np.asarray(kernel["data"], dtype=np.float64).reshape(kernel["shape"])
    if not 1 <= k.ndim <= x.ndim:
        raise ValueError(f"kernel ndim {k.ndim} vs input ndim {x.ndim}")
    k = k.reshape((1,) * (x.ndim - k.ndim) + k.shape)
    out = ndimage.convolve(x.astype(np.float64), k, mode=mode, cval=cval)
    return linear_out(x, out)


def _windows(shape, factors):
    """Yield (output index, window slices) for a block downsample."""
    out_shape = tuple(-(-n // f) for n, f in zip(shape, factors))
    for o in np.ndindex(*out_shape):
        yield o, tuple(slice(i * f, min(i * f + f, n))
                       for i, f, n in zip(o, factors, shape))


def ref_downsample(x, factor, method):
    factors = per_axis(factor, x.ndim)
    if method == "stride":
        return np.ascontiguousarray(x[tuple(slice(None, None, f) for f in factors)])
    out_shape = tuple(-(-n // f) for n, f in zip(x.shape, factors))
    if method == "mean":
        acc = np.empty(out_shape, dtype=np.float64)
        for o, win in _windows(x.shape, factors):
            acc[o] = x[win].astype(np.float64).mean()
        return cast(acc, x.dtype)
    out = np.empty(out_shape, dtype=x.dtype)
    for o, win in _windows(x.shape, factors):
        w = x[win]
        if method == "max":
            out[o] = w.max()
        elif method == "min":
            out[o] = w.min()
        elif method == "mode":
            vals, cnt = np.unique(w, return_counts=True)
            out[o] = vals[np.argmax(cnt)]  # np.unique sorts: ties -> smallest
        else:
            raise ValueError(f"unknown downsample method {method!r}")
    return out


def check_linear_int_factors(factors):
    """Integer linear upsampling must not create ties that float math breaks.

    Along an axis with factor f the interpolation weights are multiples of
    1/(2f) (f even) or 1/f (f odd).  Powers of two give exact weights, so .5
    ties are computed exactly; odd factors never produce .5 ties.  Mixing them
    (e.g. [2, 3], or f = 6) gives exact mathematical ties such as k/12 = n + .5
    that are computed with inexact weights (1/3), so their rounding depends on
    the order of operations: scipy.zoom (direct N-D) and a separable
    implementation then disagree by 1.  Such cases are not golden material.
    """
    pow2 = all(f & (f - 1) == 0 for f in factors)
    odd = all(f % 2 == 1 for f in factors)
    if not (pow2 or odd):
        raise ValueError(f"integer linear upsample with factors {factors}: "
                         "use all powers of two or all odd factors")


def ref_upsample(x, factor, method):
    factors = per_axis(factor, x.ndim)
    want = tuple(n * f for n, f in zip(x.shape, factors))
    if method == "nearest":
        out = x
        for ax, f in enumerate(factors):
            out = np.repeat(out, f, axis=ax)
    elif method == "linear":
        if is_int(x.dtype):
            check_linear_int_factors(factors)
        v = ndimage.zoom(x.astype(np.float64), factors, order=1,
                         grid_mode=True, mode="nearest")
        out = cast(v, x.dtype)
    else:
        raise ValueError(f"unknown upsample method {method!r}")
    assert out.shape == want, (out.shape, want)
    return out


OP_KEYS = {
    "threshold": {"op", "above"},
    "clip": {"op", "min", "max"},
    "gaussian": {"op", "sigma", "mode", "cval", "truncate"},
    "convolve": {"op", "kernel", "mode", "cval"},
    "downsample": {"op", "factor", "method"},
    "upsample": {"op", "factor", "method"},
    "uniform": {"op", "size", "mode", "cval"},
    "project": {"op", "axis", "method", "keepdims"},
    "gaussian_laplace": {"op", "sigma", "mode", "cval", "truncate"},
    "gaussian_gradient_magnitude": {"op", "sigma", "mode", "cval", "truncate"},
    "median": {"op", "size", "footprint", "mode", "cval"},
    "percentile": {"op", "percentile", "size", "footprint", "mode", "cval"},
    "minimum": {"op", "size", "footprint", "mode", "cval"},
    "maximum": {"op", "size", "footprint", "mode", "cval"},
}

# Keys an op may have besides those: one mode per axis ("modes", scipy's sequence of
# modes, in place of "mode") and the Gaussian's derivative order per axis.
OPTIONAL_KEYS = {
    "gaussian": {"modes", "order"},
    "uniform": {"modes"},
    "gaussian_laplace": {"modes"},
    "gaussian_gradient_magnitude": {"modes"},
}


def ref_uniform(x, size, mode, cval):
    x_in, x = x, x.astype(np.float64)
    if np.isnan(x).any():
        # scipy's uniform_filter1d keeps a running sum, so a NaN spreads along the
        # rest of its row (NaN - NaN), far beyond its window; haloflow, like scipy's
        # own correlate and gaussian_filter, makes NaN exactly the outputs whose
        # window holds one: the same box as a correlation (same centre, size // 2).
        out = x
        for ax, s in enumerate(per_axis(size, x.ndim)):
            if s > 1:
                out = ndimage.correlate1d(out, np.full(s, 1.0 / s), axis=ax, mode=mode, cval=cval)
        return linear_out(x_in, out)
    out = ndimage.uniform_filter(x, per_axis(size, x.ndim), mode=mode, cval=cval)
    return linear_out(x_in, out)


def ref_rank(x, op):
    """scipy's rank filters, dtype kept: a box of `size` or a footprint (fewer
    dimensions than x act on the trailing axes)."""
    if op["footprint"] is not None:
        f = np.asarray(op["footprint"]["mask"], dtype=bool).reshape(op["footprint"]["shape"])
        f = f.reshape((1,) * (x.ndim - f.ndim) + f.shape)
        box = {"footprint": f}
    else:
        box = {"size": per_axis(op["size"], x.ndim)}
    common = dict(mode=op["mode"], cval=op["cval"], **box)
    kind = op["op"]
    if kind == "median":
        return ndimage.median_filter(x, **common)
    if kind == "percentile":
        return ndimage.percentile_filter(x, op["percentile"], **common)
    if kind == "minimum":
        return ndimage.minimum_filter(x, **common)
    return ndimage.maximum_filter(x, **common)


def apply_op(x, op):
    """Apply one op; return (result, exact) where exact=False marks float math."""
    kind = op["op"]
    if not OP_KEYS[kind] <= set(op) <= OP_KEYS[kind] | OPTIONAL_KEYS.get(kind, set()):
        raise ValueError(f"bad keys for {kind}: {sorted(op)}")
    floating_in = not is_int(x.dtype)
    if kind == "threshold":
        return ref_threshold(x, op["above"]), True
    if kind == "clip":
        return ref_clip(x, op["min"], op["max"]), True
    if kind == "gaussian":
        return ref_gaussian(x, op["sigma"], op.get("modes", op["mode"]), op["cval"], op["truncate"],
                            op.get("order", 0)), False
    if kind == "convolve":
        return ref_convolve(x, op["kernel"], op["mode"], op["cval"]), False
    if kind == "project":
        # max/min keep the type; mean/sum in float64 (integers stay float64, floats
        # are cast back: haloflow sums floats in f64, not numpy's pairwise float32).
        axis, keep, method = op["axis"], op["keepdims"], op["method"]
        if method in ("max", "min"):
            return getattr(np, method)(x, axis=axis, keepdims=keep), True
        out = getattr(np, method)(x.astype(np.float64), axis=axis, keepdims=keep)
        return (out, True) if is_int(x.dtype) else (out.astype(x.dtype), False)
    if kind in ("gaussian_laplace", "gaussian_gradient_magnitude"):
        f = ndimage.gaussian_laplace if kind == "gaussian_laplace" else ndimage.gaussian_gradient_magnitude
        out = f(x.astype(np.float64), per_axis(op["sigma"], x.ndim), mode=op.get("modes", op["mode"]),
                cval=op["cval"], truncate=op["truncate"])
        return linear_out(x, out), False
    if kind == "uniform":
        return ref_uniform(x, op["size"], op.get("modes", op["mode"]), op["cval"]), False
    if kind in ("median", "percentile", "minimum", "maximum"):
        return ref_rank(x, op), True
    if kind == "downsample":
        exact = not (op["method"] == "mean" and floating_in)
        return ref_downsample(x, op["factor"], op["method"]), exact
    if kind == "upsample":
        exact = not (op["method"] == "linear" and floating_in)
        return ref_upsample(x, op["factor"], op["method"]), exact
    raise ValueError(f"unknown op {kind!r}")


def run_chain(x, ops, dtype, jitter=None):
    """Apply ops then the optional final cast; return (result, exact)."""
    exact = True
    for op in ops:
        x, op_exact = apply_op(x, op)
        if not op_exact:
            exact = False
            if jitter is not None:
                x = jitter(x)
    if dtype is not None:
        x = cast(x, dtype)
    return x, exact


# --------------------------------------------------------------------------
# op constructors (the JSON objects)
# --------------------------------------------------------------------------

def threshold(above):
    return {"op": "threshold", "above": float(above)}


def clip(lo, hi):
    return {"op": "clip", "min": float(lo), "max": float(hi)}


def gaussian(sigma, mode="reflect", cval=0.0, truncate=4.0):
    sigma = [float(s) for s in (sigma if isinstance(sigma, (list, tuple)) else [sigma])]
    return {"op": "gaussian", "sigma": sigma, "mode": mode,
            "cval": float(cval), "truncate": float(truncate)}


def kernel(shape, data=None):
    """Kernel JSON; without data, deterministic asymmetric values in [-1, 1]."""
    shape = list(shape)
    if data is None:
        rng = np.random.default_rng(zlib.crc32(f"kernel{shape}".encode()))
        data = np.round(rng.uniform(-1.0, 1.0, size=math.prod(shape)), 3)
        data[0] += 0.5  # keep it asymmetric and non-degenerate
    data = [float(v) for v in np.asarray(data, dtype=np.float64).ravel()]
    assert len(data) == math.prod(shape)
    return {"shape": shape, "data": data}


def convolve(kern, mode="reflect", cval=0.0):
    return {"op": "convolve", "kernel": kern, "mode": mode, "cval": float(cval)}


def derivative(kind, sigma, mode="reflect", cval=0.0, truncate=4.0):
    op = gaussian(sigma, mode, cval, truncate)
    op["op"] = kind
    return op


def project(axis, method, keepdims=False):
    return {"op": "project", "axis": int(axis), "method": method, "keepdims": bool(keepdims)}


def uniform(size, mode="reflect", cval=0.0):
    return {"op": "uniform", "size": _factors(size), "mode": mode, "cval": float(cval)}


def rank(kind, size=None, footprint=None, mode="reflect", cval=0.0, percentile=None):
    """A rank filter's JSON: a box of `size`, or a boolean `footprint` array."""
    op = {"op": kind, "size": _factors(size) if size is not None else [],
          "footprint": None, "mode": mode, "cval": float(cval)}
    if footprint is not None:
        f = np.asarray(footprint, dtype=bool)
        op["footprint"] = {"shape": list(f.shape), "mask": [bool(v) for v in f.ravel()]}
    if kind == "percentile":
        op["percentile"] = float(percentile)
    return op


def _factors(factor):
    return [int(f) for f in (factor if isinstance(factor, (list, tuple)) else [factor])]


def down(factor, method):
    return {"op": "downsample", "factor": _factors(factor), "method": method}


def up(factor, method):
    return {"op": "upsample", "factor": _factors(factor), "method": method}


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------
# kinds:
#   wide   ints: uniform over the whole dtype range, first/last element set to
#               the dtype min/max.  floats: uniform in [-50, 150].
#   small  small integers (0..9 unsigned, -5..5 signed/float): makes .5 ties
#          in mean / linear upsampling.
#   levels few distinct values with uneven frequencies (mode ties/majorities).
#   big    floats uniform in [-100, 400] (saturating casts to uint8).
#   nan    floats uniform in [-50, 150], about one in eight NaN (numpy's NaN
#          propagation: sums, means, max/min, linear filters; comparisons false).

def level_values(dtype):
    if is_int(dtype):
        info = np.iinfo(dtype)
        if info.min < 0:
            return [info.min, -1, 0, 5, info.max]
        return [0, 1, 7, info.max]
    return [-2.5, 0.0, 0.5, 7.25, 100.0]


def make_input(dtype: str, shape: tuple, kind: str) -> np.ndarray:
    dt = np.dtype(dtype)
    rng = np.random.default_rng(zlib.crc32(f"{dtype}|{shape}|{kind}".encode()))
    if kind == "wide":
        if is_int(dt):
            info = np.iinfo(dt)
            a = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)
            if a.size >= 2:
                a.flat[0], a.flat[-1] = info.min, info.max
        else:
            a = rng.uniform(-50.0, 150.0, size=shape).astype(dt)
    elif kind == "small":
        lo = 0 if (is_int(dt) and np.iinfo(dt).min == 0) else -5
        a = rng.integers(lo, lo + 10, size=shape, endpoint=True).astype(dt)
    elif kind == "levels":
        vals = np.array(level_values(dt), dtype=dt)
        p = np.linspace(1.0, 2.0, len(vals))
        a = rng.choice(vals, size=shape, p=p / p.sum())
    elif kind == "nan":
        # floats uniform in [-50, 150] with about one value in eight a NaN, in runs
        # and alone, the first element among them.
        assert not is_int(dt)
        a = rng.uniform(-50.0, 150.0, size=shape).astype(dt)
        a[rng.random(shape) < 0.12] = np.nan
        a.flat[0] = np.nan
    elif kind == "big":
        assert not is_int(dt)
        a = rng.uniform(-100.0, 400.0, size=shape).astype(dt)
    else:
        raise ValueError(f"unknown input kind {kind!r}")
    return np.ascontiguousarray(a, dtype=dt)


def shape_str(shape) -> str:
    return "x".join(str(n) for n in shape)


# --------------------------------------------------------------------------
# case table
# --------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    dtype_in: str
    shape: tuple
    kind: str
    ops: list
    dtype: str | None = None
    # A reference of its own, x -> (expected, tol): for cases whose reference is not
    # the ops' float64 semantics above (numpy's float32 sums, exact rationals).
    reference: object = None

    @property
    def input_file(self) -> str:
        return f"data/in_{SHORT[self.dtype_in]}_{shape_str(self.shape)}_{self.kind}.npy"


CASES: list[Case] = []


def case(label, dtype_in, shape, ops, kind="wide", dtype=None, reference=None):
    name = f"{label}_{SHORT[dtype_in]}_{shape_str(shape)}"
    if kind != "wide":
        name += f"_{kind}"
    if dtype is not None:
        name += f"_to_{SHORT[dtype]}"
    CASES.append(Case(name, dtype_in, tuple(shape), kind, list(ops), dtype, reference))


def threshold_for(dtype):
    """A non-integer threshold roughly 40% into the value range of 'wide' data."""
    if is_int(dtype):
        info = np.iinfo(dtype)
        return math.floor(info.min + 0.4 * (int(info.max) - int(info.min))) + 0.5
    return 50.0


def clip_bounds_for(dtype):
    """Non-integer bounds inside the range (exercises ties-to-even rounding)."""
    return {"uint8": (10.5, 200.5), "uint16": (1000.5, 60000.5),
            "uint32": (1e9 + 0.5, 3e9 + 0.5), "int8": (-100.5, 99.5),
            "int16": (-20000.5, 30001.5), "int32": (-2e9 - 0.5, 1.5e9 + 0.5),
            "float32": (-10.3, 120.7), "float64": (-10.3, 120.7)}[dtype]


def saturating_clip_for(dtype):
    """Bounds beyond the dtype range on one or both sides."""
    if is_int(dtype):
        info = np.iinfo(dtype)
        return (float(info.min) - 1000.0, float(info.max) * 0.5 + 0.5)
    return (-1e30, 1e30)


# shape used for the per-dtype sweep
DTYPE_SHAPES = {"uint8": (5, 9), "uint16": (3, 11, 6), "uint32": (13,),
                "int8": (2, 3, 5, 7), "int16": (7,), "int32": (2, 1, 3, 4, 5),
                "float32": (3, 11, 6), "float64": (5, 9)}
# second shape for the downsample sweep
DTYPE_SHAPES2 = {"uint8": (13,), "uint16": (5, 9), "uint32": (1, 1, 1),
                 "int8": (7,), "int16": (3, 11, 6), "int32": (5, 9),
                 "float32": (2, 3, 5, 7), "float64": (2, 1, 3, 4, 5)}
# small shapes for the upsample sweep (outputs grow by f**ndim)
UP_SHAPES = {"uint8": (13,), "uint16": (5, 9), "uint32": (1, 1, 1),
             "int8": (7,), "int16": (2, 5, 3), "int32": (3, 1, 2, 2),
             "float32": (3, 4), "float64": (2, 1, 3)}


def numpy_float32_reduction(axis, method):
    """numpy's own float32 sum or mean along `axis` (pairwise where the axis is the
    contiguous one, row after row otherwise), with the tolerance that any order of
    summation implies: n terms summed in float32 in any order are within
    (n - 1) * u * sum(|x|) of the exact sum (u = 2**-24, Higham's bound), and
    haloflow's result (summed exactly enough in f64 or in compensated f32 pairs,
    then rounded once) within u * |sum| of it; the case's tol is the largest of
    those bounds over the outputs (over n for a mean)."""
    def reference(x):
        assert x.dtype == np.float32
        got = getattr(np, method)(x, axis=axis)
        assert got.dtype == np.float32
        n = x.shape[axis]
        u = 2.0 ** -24
        magnitude = np.abs(x.astype(np.float64)).sum(axis=axis)
        exact = x.astype(np.float64).sum(axis=axis)
        bound = (n - 1) * u * magnitude + u * np.abs(exact)
        if method == "mean":
            bound = bound / n + u * np.abs(exact / n)
        return got, float(bound.max())
    return reference


def exact_linear_upsample(factors):
    """Integer linear upsampling (zoom order 1, grid_mode, mode nearest) computed in
    exact integer arithmetic and rounded half to even: output o along an axis of
    factor f sits at input coordinate (2o + 1 - f) / (2f), so every weight is a
    multiple of 1 / (2f) and the N-D value a multiple of 1 / prod(2f). Checked
    against scipy's float64 zoom: equal wherever scipy's value is not within 1e-9
    of a half (there its float rounding picks either side, and this one is exact)."""
    def reference(x):
        assert is_int(x.dtype)
        v = x.astype(np.int64)  # at most 2**32 * prod(2f): far from int64's range
        for ax, f in enumerate(factors):
            n = x.shape[ax]
            o = np.arange(n * f)
            p = 2 * o + 1 - f
            i0 = np.floor_divide(p, 2 * f)
            r = p - i0 * 2 * f  # weight of i0 + 1, in units of 1 / (2f)
            lo, hi = np.clip(i0, 0, n - 1), np.clip(i0 + 1, 0, n - 1)
            a = np.take(v, lo, axis=ax)
            b = np.take(v, hi, axis=ax)
            shape = [1] * x.ndim
            shape[ax] = n * f
            w1 = r.reshape(shape)
            v = a * (2 * f - w1) + b * w1
        d = 1
        for f in factors:
            d *= 2 * f
        q, rem = np.divmod(v, d)
        up = (2 * rem > d) | ((2 * rem == d) & (q % 2 == 1))
        rounded = q + up
        info = np.iinfo(x.dtype)
        out = np.clip(rounded, info.min, info.max).astype(x.dtype)
        scipy_v = ndimage.zoom(x.astype(np.float64), factors, order=1, grid_mode=True, mode="nearest")
        ties = np.abs(scipy_v - np.floor(scipy_v) - 0.5) <= 1e-9
        assert np.array_equal(out[~ties], cast(scipy_v, x.dtype)[~ties]), "exact and scipy differ off ties"
        assert np.all(np.abs(out.astype(np.int64) - cast(scipy_v, x.dtype).astype(np.int64)) <= 1)
        assert ties.any(), f"factors {factors}: no tie to test"
        return out, 0.0
    return reference


def build_cases():
    # --- 1. every dtype x the basic ops -----------------------------------
    for dt in ALL_DTYPES:
        s, s2, su = DTYPE_SHAPES[dt], DTYPE_SHAPES2[dt], UP_SHAPES[dt]
        case("threshold", dt, s, [threshold(threshold_for(dt))])
        case("clip", dt, s, [clip(*clip_bounds_for(dt))])
        case("clipsat", dt, s, [clip(*saturating_clip_for(dt))])
        case("gaussian", dt, s, [gaussian(1.0)])
        case("down_mean2", dt, s, [down(2, "mean")], kind="small")
        case("down_mean3", dt, s2, [down(3, "mean")])
        case("down_max", dt, s2, [down(3, "max")])
        case("down_min", dt, s2, [down(2, "min")])
        case("down_stride", dt, s2, [down(3, "stride")])
        case("down_mode", dt, s, [down(2, "mode")], kind="levels")
        case("up_nearest", dt, su, [up(3, "nearest")])
        case("up_linear2", dt, su, [up(2, "linear")])
        case("up_linear4", dt, su, [up(4, "linear")], kind="small")
        case("up_linear3", dt, su, [up(3, "linear")], kind="small")
        if is_int(dt):
            # gaussian cast back to the input dtype (round + saturate)
            case("gaussian_s0.8", dt, s, [gaussian(0.8, "nearest")], dtype=dt)

    # --- 2. every boundary mode on f32 and u16 (and a few more dtypes) ----
    for mode in MODES:
        cv = {"constant": -7.0}.get(mode, 0.0)
        case(f"gaussian_{mode}", "float32", (9, 17, 10), [gaussian([1.5, 2.0, 0.8], mode, cv)])
        case(f"gaussian_{mode}", "uint16", (5, 9), [gaussian(1.2, mode, 1.5 if mode == "constant" else 0.0)])
        case(f"gaussian_{mode}", "float64", (13,), [gaussian(1.7, mode, 1.5 if mode == "constant" else 0.0)])
        case(f"gaussian_{mode}", "int16", (2, 3, 5, 7), [gaussian([0.6, 1.0, 0.0, 1.3], mode, cv)])
        case(f"convolve_{mode}_k2x3x4", "float32", (3, 11, 6), [convolve(kernel([2, 3, 4]), mode, cv)])
        case(f"convolve_{mode}_k4", "uint16", (13,), [convolve(kernel([4]), mode, 1.5 if mode == "constant" else 0.0)])
        case(f"convolve_{mode}_k3x2", "uint16", (5, 9), [convolve(kernel([3, 2]), mode, cv)])
        case(f"convolve_{mode}_k5", "int32", (2, 1, 3, 4, 5), [convolve(kernel([5]), mode, cv)])

    # --- 3. halos larger than the axis --------------------------------------
    for mode in MODES:
        cv = {"constant": 1.5}.get(mode, 0.0)
        for shape in [(1, 2, 3), (3, 2, 1)]:
            case(f"halo_gaussian_s2_{mode}", "float32", shape, [gaussian(2.0, mode, cv)])
        case(f"halo_gaussian_s2_{mode}", "float64", (1,), [gaussian(2.0, mode, cv)])
        case(f"halo_gaussian_s2_{mode}", "uint16", (2,), [gaussian(2.0, mode, cv)])
        case(f"halo_convolve_k5x4_{mode}", "float32", (3, 2), [convolve(kernel([5, 4]), mode, cv)])
        case(f"halo_convolve_k7_{mode}", "uint16", (2,), [convolve(kernel([7]), mode, cv)])
        case(f"halo_convolve_k2x6x3_{mode}", "float32", (1, 2, 3), [convolve(kernel([2, 6, 3]), mode, cv)])

    # --- 4. per-axis sigma with zeros, truncate -------------------------------
    # One mode per axis (scipy's sequence of modes) and the Gaussian's derivatives: the
    # passes with a derivative run in scipy's axis order (they do not commute with a
    # constant mode on another axis).
    case("gaussian_modes", "float32", (9, 17, 10),
         [dict(gaussian([1.5, 2.0, 0.8], "reflect", 1.5), modes=["reflect", "wrap", "constant"])])
    case("gaussian_order_012_constant", "float64", (9, 17, 10),
         [dict(gaussian([1.2, 0.8, 1.5], "constant", 0.5), order=[0, 1, 2])])
    case("gaussian_order_modes", "float32", (5, 9),
         [dict(gaussian([1.0, 1.7], "nearest"), modes=["nearest", "constant"], order=[1, 0])])
    case("uniform_modes", "float32", (3, 11, 6), [dict(uniform([2, 3, 4], "reflect", -1.0),
                                                       modes=["reflect", "constant", "wrap"])])
    case("laplace_modes", "float64", (5, 9), [dict(derivative("gaussian_laplace", 1.0), modes=["nearest", "wrap"])])
    case("gradmag_modes", "float32", (9, 17, 10),
         [dict(derivative("gaussian_gradient_magnitude", [1.0, 0.0, 1.5], cval=2.0),
               modes=["constant", "mirror", "reflect"])])
    case("gaussian_s0_1.5_0.7_t2.5", "float32", (3, 11, 6), [gaussian([0, 1.5, 0.7], truncate=2.5)])
    case("gaussian_s0_1.5_0.7_t2.5_constant", "uint16", (3, 11, 6),
         [gaussian([0, 1.5, 0.7], "constant", -7.0, truncate=2.5)])
    case("gaussian_s0.5_0_3_mirror", "float32", (9, 17, 10), [gaussian([0.5, 0, 3.0], "mirror")])
    case("gaussian_s1_0_0.8_0_1.2_wrap", "float32", (2, 1, 3, 4, 5),
         [gaussian([1.0, 0, 0.8, 0, 1.2], "wrap")])
    case("gaussian_sigma0_identity", "float64", (5, 9), [gaussian(0.0)])
    case("gaussian_sigma0_identity", "uint32", (7,), [gaussian([0.0])])
    case("gaussian_s0.3_radius1", "float32", (13,), [gaussian(0.3, "nearest")])
    case("gaussian_t1.0", "float32", (5, 9), [gaussian(1.0, truncate=1.0)])
    case("gaussian_t6.0_s0.9", "uint8", (5, 9), [gaussian(0.9, "constant", 1.5, truncate=6.0)])
    case("gaussian_t2.5_s3", "int8", (13,), [gaussian(3.0, "reflect", truncate=2.5)])
    case("gaussian_s4_big_halo", "float32", (7,), [gaussian(4.0, "mirror")])
    case("gaussian_s1_3d", "float32", (1, 1, 1), [gaussian(1.0)])

    # --- 5. convolve kernel variety ----------------------------------------
    case("convolve_k1", "float32", (13,), [convolve(kernel([1], [2.5]))])
    case("convolve_k2_diff", "float32", (13,), [convolve(kernel([2], [1.0, -1.0]), "nearest")])
    case("convolve_k2", "float32", (5, 9), [convolve(kernel([2], [0.25, 0.75]), "reflect")])
    case("convolve_k3_asym", "float64", (7,), [convolve(kernel([3], [1.0, 2.0, -0.5]), "mirror")])
    case("convolve_k4", "float32", (2, 3, 5, 7), [convolve(kernel([4], [1.0, -2.0, 0.5, 3.0]), "wrap")])
    case("convolve_k4x1", "float32", (5, 9), [convolve(kernel([4, 1]), "constant", 1.5)])
    case("convolve_k1x2", "int16", (5, 9), [convolve(kernel([1, 2]), "reflect")])
    case("convolve_k3x3", "float32", (2, 3, 5, 7), [convolve(kernel([3, 3]), "nearest")])
    case("convolve_k2x2x3", "float32", (2, 1, 3, 4, 5), [convolve(kernel([2, 2, 3]), "mirror")])
    case("convolve_k3x1x2", "uint8", (3, 11, 6), [convolve(kernel([3, 1, 2]), "wrap")])
    case("convolve_k2x4x2", "float32", (9, 17, 10), [convolve(kernel([2, 4, 2]), "constant", -7.0)])
    case("convolve_k3", "float32", (1,), [convolve(kernel([3]), "reflect")])
    case("convolve_k2x2", "float64", (1, 1, 1), [convolve(kernel([2, 2]), "constant", 1.5)])

    # --- 6. downsample variety (per-axis factors, factor > axis, identity) ---
    for method in ("mean", "max", "min", "stride", "mode"):
        kind = "levels" if method == "mode" else "wide"
        case(f"down_{method}_2_3_1", "float32", (3, 11, 6), [down([2, 3, 1], method)], kind=kind)
        case(f"down_{method}_4_2", "uint16", (5, 9), [down([4, 2], method)], kind=kind)
        case(f"down_{method}_5", "uint16", (3, 11, 6), [down(5, method)], kind=kind)
        case(f"down_{method}_2_1_2_3_2", "float32", (2, 1, 3, 4, 5),
             [down([2, 1, 2, 3, 2], method)], kind=kind)
        case(f"down_{method}_4_5_3", "uint16", (9, 17, 10), [down([4, 5, 3], method)], kind=kind)
    case("down_mean_identity", "float32", (5, 9), [down(1, "mean")])
    case("down_max_factor_gt_axis", "int16", (1, 1, 1), [down(4, "max")])
    case("down_mode_factor_gt_axis", "uint8", (7,), [down(8, "mode")], kind="levels")
    case("down_mean_2x2_ties", "uint8", (5, 9), [down([2, 2], "mean")], kind="small")
    case("down_mean_4_ties", "int8", (13,), [down(4, "mean")], kind="small")

    # --- 7. upsample variety -------------------------------------------------
    for method in ("nearest", "linear"):
        case(f"up_{method}_2_1_3", "float32", (3, 11, 6), [up([2, 1, 3], method)])
        case(f"up_{method}_2_1_4", "uint16", (3, 11, 6), [up([2, 1, 4], method)])
        case(f"up_{method}_3_1_3", "int32", (3, 5, 2), [up([3, 1, 3], method)], kind="small")
        case(f"up_{method}_4", "uint16", (1, 1, 1), [up(4, method)])
        case(f"up_{method}_3", "float32", (7,), [up(3, method)])
        case(f"up_{method}_2", "uint16", (1,), [up(2, method)])
        case(f"up_{method}_1_2_1_4_2", "uint16", (2, 1, 3, 4, 5), [up([1, 2, 1, 4, 2], method)],
             kind="small")
        case(f"up_{method}_4_2", "float32", (5, 9), [up([4, 2], method)])
    case("up_linear_1_identity", "uint16", (5, 9), [up(1, "linear")])
    case("up_linear_2x2_ties", "uint8", (5, 9), [up([2, 2], "linear")], kind="small")
    case("up_linear_4_ties", "int16", (13,), [up(4, "linear")], kind="small")

    # --- 8. uniform and rank filters: every dtype, every mode, footprints ------
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
    ring = np.ones((3, 3, 3), dtype=bool)
    ring[1, 1, 1] = False
    for dt in ALL_DTYPES:
        s = DTYPE_SHAPES[dt]
        case("median3", dt, s, [rank("median", 3)], kind="levels")
        case("percentile25_3", dt, s, [rank("percentile", 3, percentile=25)])
        case("minimum_cross", dt, s, [rank("minimum", footprint=cross[:, 1] if len(s) == 1 else cross)])
        case("maximum_2_3", dt, s, [rank("maximum", [2] if len(s) == 1 else [2] + [3] * (len(s) - 1))])
        case("uniform3", dt, s, [uniform(3)])
        case("laplace1", dt, s, [derivative("gaussian_laplace", 1.0)])
        for m in ("max", "min", "mean", "sum"):
            case(f"project_{m}", dt, s, [project(len(s) - 1, m, keepdims=len(s) == 1)])
            case(f"project_{m}_keep", dt, s, [project(0, m, True)])
        case("gradmag1", dt, s, [derivative("gaussian_gradient_magnitude", 1.0)])
    for mode in MODES:
        cv = {"constant": 7.0}.get(mode, 0.0)
        case(f"median_{mode}", "uint16", (9, 17, 10), [rank("median", [3, 4, 3], mode=mode, cval=cv)],
             kind="levels")
        case(f"median5_{mode}", "float32", (5, 9), [rank("median", 5, mode=mode, cval=-cv)])
        case(f"percentile_{mode}", "int16", (3, 11, 6),
             [rank("percentile", footprint=ring, mode=mode, cval=cv, percentile=-30)])
        case(f"minimum_{mode}", "float32", (2, 3, 5, 7), [rank("minimum", [2, 1, 3, 2], mode=mode, cval=cv)])
        case(f"maximum_{mode}", "uint8", (3, 11, 6), [rank("maximum", footprint=cross, mode=mode, cval=cv)])
        case(f"uniform_{mode}", "float32", (3, 11, 6), [uniform([2, 3, 4], mode, -cv)])
        case(f"laplace_{mode}", "float32", (9, 17, 10),
             [derivative("gaussian_laplace", [1.5, 0.0, 0.8], mode, cv)])
        case(f"gradmag_{mode}", "uint16", (3, 11, 6),
             [derivative("gaussian_gradient_magnitude", [0.7, 1.2, 2.0], mode, cv, truncate=3.0)])
        # halos longer than the axis
        case(f"halo_median5_{mode}", "float32", (3, 2), [rank("median", 5, mode=mode, cval=1.5)])
        case(f"halo_maximum6_{mode}", "uint16", (2,), [rank("maximum", 6, mode=mode, cval=3)])
    case("median_4_even", "float64", (13,), [rank("median", 4)])
    case("percentile100", "int32", (5, 9), [rank("percentile", 3, percentile=100)])
    case("percentile0_1x1", "uint16", (5, 9), [rank("percentile", [1, 1], percentile=0)])
    case("chain_median_thr", "uint16", (9, 17, 10), [rank("median", 3), threshold(30000.5)])
    case("chain_gauss_project_max", "float32", (9, 17, 10), [gaussian(1.0), project(0, "max")])
    case("chain_project_keep_gauss", "uint16", (9, 17, 10), [project(1, "mean", True), gaussian(1.0)])
    case("chain_gauss_maximum", "float32", (3, 11, 6), [gaussian(1.0), rank("maximum", 3, mode="nearest")])

    # --- 9. chains and final casts -------------------------------------------
    case("chain_gauss_thr_downmax", "float32", (9, 17, 10),
         [gaussian(1.5), threshold(52.0), down(2, "max")])
    case("chain_gauss_thr_downmax", "uint16", (3, 11, 6),
         [gaussian([0, 1.0, 1.0], "nearest"), threshold(30000.5), down([1, 3, 2], "max")])
    case("chain_gauss_downmean", "float32", (3, 11, 6), [gaussian(1.0, "mirror"), down(2, "mean")])
    case("chain_gauss_downmean", "uint16", (9, 17, 10), [gaussian(0.7, "wrap"), down([3, 2, 4], "mean")])
    case("chain_clip_uplinear", "uint16", (5, 9), [clip(1000.5, 50000.5), up(2, "linear")])
    case("chain_clip_uplinear", "float32", (7,), [clip(-10.3, 120.7), up(3, "linear")])
    case("chain_clip_uplinear", "int8", (13,), [clip(-3.5, 4.5), up(4, "linear")], kind="small")
    case("chain_convolve_clip", "float32", (5, 9), [convolve(kernel([3, 2])), clip(0.0, 60.5)])
    case("chain_convolve_clip", "uint16", (3, 11, 6),
         [convolve(kernel([4], [0.25, 0.25, 0.25, 0.25]), "nearest"), clip(10000.0, 50000.0)])
    case("chain_thr_downmean", "uint8", (9, 17, 10), [threshold(127.5), down(2, "mean")])
    case("chain_thr_downmean", "float32", (5, 9), [threshold(50.0), down([2, 2], "mean")])
    case("chain_thr_uplinear", "int16", (13,), [threshold(0.0), up(2, "linear")])
    case("chain_downmode_upnearest", "uint16", (3, 11, 6),
         [down(2, "mode"), up(2, "nearest")], kind="levels")
    case("chain_uplinear_downmean", "uint8", (5, 9), [up(2, "linear"), down(2, "mean")], kind="small")
    case("chain_uplinear_downmean", "float32", (2, 3, 5, 7), [up(3, "linear"), down(3, "mean")])
    case("chain_downmax_gauss", "uint16", (9, 17, 10), [down(3, "max"), gaussian(1.0, "reflect")])
    case("chain_gauss_gauss", "float32", (5, 9), [gaussian(0.8, "constant", 1.5), gaussian(1.3, "wrap")])
    case("chain_gauss_clip_downmin", "float32", (3, 11, 6),
         [gaussian([1.0, 0.5, 0], "mirror"), clip(20.0, 80.0), down(3, "min")])
    case("chain_downstride_convolve_thr", "float32", (9, 17, 10),
         [down(2, "stride"), convolve(kernel([2, 3])), threshold(0.5)])
    case("chain_clip_downmode_uplinear", "int32", (5, 9),
         [clip(-1.5, 6.5), down(2, "mode"), up(2, "linear")], kind="levels")
    # final casts
    case("gaussian", "uint16", (3, 11, 6), [gaussian(1.0)], dtype="uint16")
    case("gaussian_sat", "float32", (5, 9), [gaussian(0.5, "nearest")], kind="big", dtype="uint8")
    case("gaussian_sat", "uint16", (7,), [gaussian(1.0)], dtype="uint8")
    case("gaussian_sat", "int16", (13,), [gaussian(0.6, "constant", -7.0)], dtype="int8")
    case("clip", "uint16", (5, 9), [clip(1000.5, 60000.5)], dtype="float64")
    case("clip", "float64", (3, 11, 6), [clip(-10.3, 120.7)], dtype="float32")
    case("clip", "float32", (13,), [clip(-10.25, 120.75)], kind="big", dtype="int16")
    case("clip_f32_to_u8_ties", "float32", (13,), [clip(-3.5, 4.5)], kind="small", dtype="uint8")
    case("convolve", "float32", (5, 9), [convolve(kernel([3]))], kind="big", dtype="int8")
    case("downmean", "float64", (7,), [down(2, "mean")], kind="small", dtype="int32")
    case("downmax", "int32", (5, 9), [down(2, "max")], dtype="int16")
    case("uplinear", "float32", (13,), [up(2, "linear")], dtype="uint32")
    case("threshold", "uint32", (1,), [threshold(0.5)], dtype="float32")
    case("threshold", "float64", (2, 1, 3, 4, 5), [threshold(-1.0)], dtype="int8")

    # --- 9b. rank filters whose halo is wider than the blocks (the tests cut blocks of
    # 1 and 3: a halo of 4 reaches past the next block, into the one after it)
    cross9 = np.zeros((9, 9), dtype=bool)
    cross9[4, :] = cross9[:, 4] = True
    for mode in ("reflect", "constant", "wrap"):
        cv = 9.0 if mode == "constant" else 0.0
        case(f"halo4_percentile9_{mode}", "float32", (13, 11), [rank("percentile", 9, mode=mode, cval=cv,
                                                                      percentile=70)])
        case(f"halo4_percentile_1x7x9_{mode}", "int16", (3, 11, 6),
             [rank("percentile", [1, 7, 9], mode=mode, cval=cv, percentile=20)])
        case(f"halo4_minimum_9x7_{mode}", "float32", (13, 11), [rank("minimum", [9, 7], mode=mode, cval=cv)])
        case(f"halo4_minimum_cross9_{mode}", "uint8", (9, 17, 10),
             [rank("minimum", footprint=cross9[None], mode=mode, cval=cv)])

    # --- 10. NaN, as numpy and scipy propagate it --------------------------------
    # Sums and means (linear filters, mean windows, interpolation, projections) give
    # NaN wherever a NaN has a weight; max and min give NaN where the window holds
    # one (np.max); comparisons with NaN are false (threshold 0); clip keeps NaN.
    # Rank filters are left out: scipy's selection with NaN depends on its order of
    # comparisons, not on a rule.
    for dt, s in (("float32", (3, 11, 6)), ("float64", (5, 9))):
        case("nan_gaussian", dt, s, [gaussian(1.0)], kind="nan")
        case("nan_gaussian_constant", dt, s, [gaussian([1.0, 0.7] + [0.0] * (len(s) - 2), "constant", 2.0)],
             kind="nan")
        case("nan_uniform", dt, s, [uniform(3, "wrap")], kind="nan")
        case("nan_convolve", dt, s, [convolve(kernel([3, 2]), "mirror")], kind="nan")
        case("nan_laplace", dt, s, [derivative("gaussian_laplace", 1.0)], kind="nan")
        case("nan_threshold", dt, s, [threshold(50.0)], kind="nan")
        case("nan_clip", dt, s, [clip(0.0, 100.0)], kind="nan")
        for m in ("mean", "max", "min", "stride"):
            case(f"nan_down_{m}", dt, s, [down(2, m)], kind="nan")
        case("nan_up_linear", dt, s, [up(2, "linear")], kind="nan")
        case("nan_up_nearest", dt, s, [up([1] * (len(s) - 1) + [2], "nearest")], kind="nan")
        for m in ("max", "min", "mean", "sum"):
            case(f"nan_project_{m}", dt, s, [project(0, m)], kind="nan")
            case(f"nan_project_{m}_last", dt, s, [project(len(s) - 1, m, True)], kind="nan")
    case("nan_chain_gauss_thr", "float32", (9, 17, 10), [gaussian(1.0), threshold(40.0)], kind="nan")

    # --- 11. numpy's own float32 sums and means ------------------------------------
    # The reference is np.sum / np.mean on the float32 array (not float64 cast back),
    # with the tolerance any summation order implies (numpy_float32_reduction).
    for m in ("sum", "mean"):
        case(f"np32_project_{m}_axis0", "float32", (40, 11, 6), [project(0, m)],
             reference=numpy_float32_reduction(0, m))
        case(f"np32_project_{m}_last", "float32", (5, 300), [project(1, m)], kind="big",
             reference=numpy_float32_reduction(1, m))

    # --- 12. integer linear upsampling with mixed factors ----------------------------
    # Exact ties (k/12 = n + 1/2) that scipy's float weights break either way: the
    # reference is exact rational arithmetic rounded half to even (haloflow's rule).
    for dt, s, f in (("uint16", (5, 9), [2, 3]), ("int8", (7, 4), [6, 1]), ("int16", (3, 4, 5), [2, 3, 4]),
                     ("uint8", (4, 5), [3, 4])):
        case("up_linear_mixed_" + "_".join(map(str, f)), dt, s, [up(f, "linear")], kind="small",
             reference=exact_linear_upsample(f))


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def save_npy(path: Path, arr: np.ndarray):
    arr = np.ascontiguousarray(arr)
    assert arr.dtype.name in ALL_DTYPES, arr.dtype
    assert arr.dtype.byteorder in "=<|" and sys.byteorder == "little"
    np.save(path, arr, allow_pickle=False)


def stability_check(c: Case, x, expected, tol):
    """Jitter float-op outputs; the result must stay within tol."""
    rng = np.random.default_rng(zlib.crc32(c.name.encode()))
    amps = []

    def shifter(sign):
        def jitter(y):
            amp = JITTER * max(1.0, float(np.abs(y.astype(np.float64)).max()))
            amps.append(amp)
            d = sign * amp if sign else rng.uniform(-amp, amp, size=y.shape)
            return (y.astype(np.float64) + d).astype(y.dtype)
        return jitter

    for sign in (1.0, -1.0, 0):
        amps.clear()
        got, _ = run_chain(x, c.ops, c.dtype, jitter=shifter(sign))
        err = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64)),
                           initial=0.0))
        # the jitter itself may pass through (plus float32 rounding of it);
        # only jumps (threshold flips, rounding flips) are failures
        if err > tol + 2.0 * sum(amps):
            raise SystemExit(f"{c.name}: unstable under float jitter "
                             f"(err {err:g} > tol {tol:g}); pick other parameters")


def main():
    build_cases()
    names = [c.name for c in CASES]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise SystemExit(f"duplicate case names: {dups}")

    if DATA_DIR.exists():
        shutil.rmtree(DATA_DIR)
    DATA_DIR.mkdir(parents=True)

    inputs: dict[str, np.ndarray] = {}
    out_cases = []
    for c in CASES:
        if c.input_file not in inputs:
            inputs[c.input_file] = make_input(c.dtype_in, c.shape, c.kind)
            save_npy(HERE / c.input_file, inputs[c.input_file])
        x = inputs[c.input_file]

        if c.reference is not None:
            expected, tol = c.reference(x)
            exact = tol == 0.0
            again, _ = c.reference(x)
        else:
            expected, exact = run_chain(x, c.ops, c.dtype)
            tol = 0.0
            if not exact:
                rel = REL_TOL64 if x.dtype == expected.dtype == np.float64 else REL_TOL
                tol = rel * max(ptp64(x), ptp64(expected), 1.0)
                stability_check(c, x, expected, tol)
            # running twice must give identical bits (no hidden nondeterminism)
            again, _ = run_chain(x, c.ops, c.dtype)
        assert again.dtype == expected.dtype and np.array_equal(again, expected, equal_nan=True)

        expected_file = f"data/{c.name}_out.npy"
        save_npy(HERE / expected_file, expected)
        out_cases.append({"name": c.name, "input": c.input_file, "ops": c.ops,
                          "dtype": c.dtype, "expected": expected_file,
                          "exact": exact, "tol": tol})

    # one case per line: readable and diff-friendly, still plain JSON
    header = {"generator": GENERATOR, "numpy": np.__version__, "scipy": scipy.__version__}
    lines = [json.dumps(header)[:-1] + ', "cases": [']
    lines += [" " + json.dumps(c) + "," for c in out_cases]
    lines[-1] = lines[-1].rstrip(",")
    lines.append("]}")
    CASES_JSON.write_text("\n".join(lines) + "\n")
    assert json.loads(CASES_JSON.read_text())["cases"] == out_cases

    size = sum(p.stat().st_size for p in DATA_DIR.iterdir())
    n_exact = sum(c["exact"] for c in out_cases)
    print(f"wrote {len(out_cases)} cases ({n_exact} exact, {len(out_cases) - n_exact} "
          f"tolerance), {len(inputs)} inputs, {size / 1024:.1f} KiB in "
          f"{DATA_DIR.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    main()
