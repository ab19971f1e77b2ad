"""scipy.ndimage's filters with scipy's signatures and semantics (issue 31's drop-in):
``output`` (an array written in place, or a dtype; by default the input's dtype, as
scipy's), ``mode`` per axis, ``origin``, ``axes``, the Gaussian's derivative ``order``
and ``radius``, every real NumPy dtype scipy takes (int64 and uint64 computed as float64,
byte-swapped arrays made native; float16 refused, as scipy refuses it), complex values,
and empty arrays.

The arithmetic runs in haloflow, then the result is cast to the output's dtype as scipy
casts it (a C cast: floats to integers truncate toward zero). The linear filters (the
Gaussian family, correlate, convolve, the uniform filter) compute in float64 on the CPU
for float64 input and for integers wider than 16 bits (as scipy computes every type in
double), and in float32 for the other types. The GPU has no float64: with
``device="gpu"``, float64 input is still filtered on the CPU in float64, with a warning
(once per process); pass float32 to filter on the GPU. The rank filters (median,
percentile, minimum, maximum) select values and are exact in every type. Where scipy stores each 1-D pass of a separable filter in the
output before the next (an integer output, or modes that differ per axis), the passes
run one at a time here too, with the same casts between them.

Complex input and weights run as scipy runs them, through real components, for the
linear filters (correlate, convolve, their 1-D forms, the uniform and Gaussian filters).
"""

from __future__ import annotations

import operator
import warnings

import numpy as np

from . import _haloflow, ops

# The dtypes haloflow's arrays take; others are converted before the call.
_NATIVE = {np.dtype(t) for t in ("uint8", "uint16", "uint32", "int8", "int16", "int32", "float32", "float64")}


_warned_float64_gpu = False


def _apply(op, x, device, threads):
    from . import Pipeline  # noqa: PLC0415 (the package imports this module)

    global _warned_float64_gpu
    if device == "gpu" and x.dtype == np.float64 and not _warned_float64_gpu:
        _warned_float64_gpu = True
        warnings.warn("float64 is filtered on the CPU in float64 (the GPU computes in float32); "
                      "pass float32 input to filter on the GPU", RuntimeWarning, stacklevel=3)
    return Pipeline([op]).apply(x, device=device, threads=threads)


def _input(input, linear=False):
    """The input as an array haloflow takes: native byte order, a supported dtype; for
    a ``linear`` filter, integers wider than 16 bits as float64 (computed in float64,
    where float32 would round their values)."""
    x = np.asarray(input)
    if np.iscomplexobj(x):
        raise TypeError("Complex type not supported")
    if x.dtype.kind not in "biuf":
        raise RuntimeError("array type not supported")
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    if x.dtype.kind == "f" and x.dtype.itemsize < 4:
        # scipy refuses float16 (its gh-8207); so does its drop-in.
        raise RuntimeError(f"array type {x.dtype} not supported")
    if x.dtype not in _NATIVE or (linear and x.dtype.kind in "iu" and x.dtype.itemsize > 2):
        x = x.astype(np.uint8 if x.dtype == np.bool_ else np.float64)
    return x


def _output(output, input, complex_output=False):
    """scipy's ``_get_output``: (the array to write or None, the result's dtype)."""
    x = np.asarray(input)
    if output is None:
        if complex_output:
            return None, np.promote_types(x.dtype, np.complex64)
        # scipy's `np.zeros(shape, dtype=input.dtype.name)`: native byte order.
        return None, np.dtype(x.dtype.name)
    if isinstance(output, (type, np.dtype)):
        dtype = np.dtype(output)
        if complex_output and dtype.kind != "c":
            warnings.warn("promoting specified output dtype to complex", stacklevel=3)
            dtype = np.promote_types(dtype, np.complex64)
        return None, dtype
    if isinstance(output, str):
        dtype = np.dtype(output)
        if complex_output and dtype.kind != "c":
            raise RuntimeError("output must have complex dtype")
        if not issubclass(dtype.type, np.number):
            raise RuntimeError("output must have numeric dtype")
        return None, dtype
    output = np.asarray(output)
    if output.shape != x.shape:
        raise RuntimeError("output shape not correct")
    if complex_output and output.dtype.kind != "c":
        raise RuntimeError("output must have complex dtype")
    return output, output.dtype


def _complex(func, x, weights, target, dtype, cval, **kwargs):
    """scipy's ``_complex_via_real_components``: a complex correlation as real ones."""
    out = np.zeros(x.shape, dtype) if target is None else target
    complex_input, complex_weights = x.dtype.kind == "c", weights.dtype.kind == "c"
    if complex_input and complex_weights:
        func(x.real, weights.real, output=out.real, cval=np.real(cval), **kwargs)
        out.real -= func(x.imag, weights.imag, output=None, cval=np.imag(cval), **kwargs)
        func(x.real, weights.imag, output=out.imag, cval=np.real(cval), **kwargs)
        out.imag += func(x.imag, weights.real, output=None, cval=np.imag(cval), **kwargs)
    elif complex_input:
        func(x.real, weights, output=out.real, cval=np.real(cval), **kwargs)
        func(x.imag, weights, output=out.imag, cval=np.imag(cval), **kwargs)
    else:
        if np.iscomplexobj(cval):
            raise ValueError("Cannot provide a complex-valued cval when the input is real.")
        func(x, weights.real, output=out.real, cval=cval, **kwargs)
        func(x, weights.imag, output=out.imag, cval=cval, **kwargs)
    return out


def _parts(func, x, target, dtype, cval, **kwargs):
    """A real filter of complex ``x``: its real and imaginary parts filtered in turn."""
    out = np.zeros(x.shape, dtype) if target is None else target
    func(x.real, output=out.real, cval=np.real(cval), **kwargs)
    func(x.imag, output=out.imag, cval=np.imag(cval), **kwargs)
    return out


def _cast(result, dtype):
    """``result`` as ``dtype``, the way scipy's C code stores it (floats to integers
    truncate toward zero). Where haloflow computed in float32 (inputs of 16 bits or
    fewer) and the exact value lies within float32's rounding of a whole number, an
    integer output may differ from scipy's by one."""
    result = np.asarray(result)
    if result.dtype == dtype:
        return result
    with np.errstate(invalid="ignore", over="ignore"):
        if result.dtype.kind == "f" and dtype.kind in "iu" and dtype.itemsize < 8:
            # C's cast on x86-64: truncated to 64 bits, the low bits kept (a value
            # beyond the type wraps around, as scipy's stores do; numpy's own cast of
            # such a float is undefined and differs).
            return result.astype(np.int64).astype(dtype)
        return result.astype(dtype)


def _finish(result, target, dtype):
    result = _cast(result, dtype)
    if target is None:
        return result
    target[...] = result
    return target


def _axes(axes, ndim):
    """scipy's ``_check_axes``: the filtered axes, non-negative, in the given order."""
    if axes is None:
        return tuple(range(ndim))
    if np.isscalar(axes):
        axes = (axes,)
    if not all(isinstance(a, (int, np.integer)) for a in axes):
        raise ValueError("axes must be an integer, iterable of integers, or None")
    axes = tuple(int(a) + ndim if a < 0 else int(a) for a in axes)
    if any(a < 0 or a >= ndim for a in axes):
        raise ValueError("axes must be < ndim and >= -ndim")
    if len(set(axes)) != len(axes):
        raise ValueError("axes must be unique")
    return axes


def _sequence(value, n):
    """scipy's ``_normalize_sequence``: one value for all ``n`` axes, or one each."""
    if isinstance(value, str) or not np.iterable(value):
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise RuntimeError("sequence argument must have length equal to input rank")
    return value


def _full(values, axes, ndim, fill):
    """Per-axis ``values`` over ``axes`` spread to all ``ndim`` axes, ``fill`` elsewhere."""
    out = [fill] * ndim
    for a, v in zip(axes, values):
        out[a] = v
    return out


# scipy's filters read 'grid-constant' as 'constant', 'grid-mirror' as 'reflect' and
# 'grid-wrap' as 'wrap' (the grid modes differ from those only in interpolation).
_ALIASES = {"grid-constant": "constant", "grid-mirror": "reflect", "grid-wrap": "wrap"}


def _mode(mode):
    """scipy's boundary mode as haloflow's."""
    mode = _ALIASES.get(mode, mode)
    if mode not in ops.MODES:
        raise RuntimeError("boundary mode not supported")
    return mode


def _check_origin(origin, size):
    if size // 2 + origin < 0 or size // 2 + origin >= size:
        raise ValueError("invalid origin")


def _empty(x, target, dtype):
    return _finish(np.zeros(x.shape, dtype=dtype), target, dtype)


# --- Gaussian filters -------------------------------------------------------------------


def _gaussian_kernel1d(sigma, order, radius):
    """scipy's ``_gaussian_kernel1d``: the Gaussian's ``order``-th derivative over
    ``-radius..radius`` (correlation weights, reversed)."""
    if order < 0:
        raise ValueError("order must be non-negative")
    exponent_range = np.arange(order + 1)
    sigma2 = sigma * sigma
    x = np.arange(-radius, radius + 1)
    phi_x = np.exp(-0.5 / sigma2 * x ** 2)
    phi_x = phi_x / phi_x.sum()
    if order == 0:
        return phi_x
    q = np.zeros(order + 1)
    q[0] = 1
    d = np.diag(exponent_range[1:], 1)
    p = np.diag(np.ones(order) / -sigma2, -1)
    q_deriv = d + p
    for _ in range(order):
        q = q_deriv.dot(q)
    q = (x[:, None] ** exponent_range).dot(q)
    return q * phi_x


def _radius(sigma, truncate, radius):
    lw = int(truncate * float(sigma) + 0.5) if radius is None else radius
    if not isinstance(lw, (int, np.integer)) or lw < 0:
        raise ValueError("Radius must be a nonnegative integer.")
    return int(lw)


def gaussian_filter1d(input, sigma, axis=-1, order=0, output=None, mode="reflect", cval=0.0, truncate=4.0, *,
                      radius=None, device="cpu", threads=None):
    """``scipy.ndimage.gaussian_filter1d``: computed as the module says, stored as ``output``."""
    x = np.asarray(input)
    if x.dtype.kind == "c":
        target, dtype = _output(output, x, complex_output=True)
        return _parts(gaussian_filter1d, x, target, dtype, cval, sigma=sigma, axis=axis, order=order, mode=mode,
                      truncate=truncate, radius=radius, device=device, threads=threads)
    x = _input(x, linear=True)
    target, dtype = _output(output, input)
    axis = operator.index(axis)
    axis = _axes(axis, x.ndim)[0]
    lw = _radius(sigma, truncate, radius)
    if order < 0:
        raise ValueError("order must be non-negative")
    if x.size == 0:
        return _empty(x, target, dtype)
    if radius is None or sigma > 1e-15:
        # A radius is the truncate that rounds to it (int(truncate * sigma + 0.5)), so
        # both give the same weights, as in scipy.
        truncate = truncate if radius is None else lw / sigma
        op = ops.gaussian(_full([sigma], [axis], x.ndim, 0.0), _mode(mode), cval, truncate,
                          order=_full([int(order)], [axis], x.ndim, 0))
        result = _apply(op, x, device, threads)
    else:
        weights = _gaussian_kernel1d(float(sigma), int(order), lw)[::-1]
        result = _correlate1d(x, weights, axis, mode, cval, 0, device, threads)
    return _finish(result, target, dtype)


def gaussian_filter(input, sigma, order=0, output=None, mode="reflect", cval=0.0, truncate=4.0, *, radius=None,
                    axes=None, device="cpu", threads=None):
    """``scipy.ndimage.gaussian_filter``: computed as the module says (one pass for all axes
    where scipy's passes would keep float values; else pass by pass, cast between them as
    scipy stores them), stored as ``output``."""
    x = np.asarray(input)
    if x.dtype.kind == "c":
        target, dtype = _output(output, x)
        return _parts(gaussian_filter, x, target, dtype, cval, sigma=sigma, order=order, mode=mode,
                      truncate=truncate, radius=radius, axes=axes, device=device, threads=threads)
    x = _input(x, linear=True)
    target, dtype = _output(output, input)
    axes = _axes(axes, x.ndim)
    n = len(axes)
    sigmas, orders, modes = _sequence(sigma, n), _sequence(order, n), _sequence(mode, n)
    truncates, radii = _sequence(truncate, n), _sequence(radius, n)
    modes = [_mode(m) for m in modes]
    passes = [(a, s, o, m, t, r) for a, s, o, m, t, r in zip(axes, sigmas, orders, modes, truncates, radii)
              if s > 1e-15]
    for a, s, o, m, t, r in passes:
        _radius(s, t, r)
    if x.size == 0:
        return _empty(x, target, dtype)
    if not passes:
        return _finish(x, target, dtype)
    # One op where scipy's passes keep float values (a float output), whatever the
    # modes and orders; derivatives, which do not commute with another axis's constant
    # mode, only where haloflow's axis order is scipy's.
    in_order = [a for a, *_ in passes] == sorted(a for a, *_ in passes)
    one_pass = (dtype.kind == "f" and all(r is None for *_, r in passes)
                and len({t for *_, t, _ in passes}) == 1
                and (in_order or all(o == 0 for _, _, o, *_ in passes)))
    if one_pass:
        filtered = [a for a, *_ in passes]
        full = _full([s for _, s, *_ in passes], filtered, x.ndim, 0.0)
        modes = _full([m for _, _, _, m, _, _ in passes], filtered, x.ndim, passes[0][3])
        orders = _full([o for _, _, o, *_ in passes], filtered, x.ndim, 0)
        op = ops.gaussian(full, modes, cval, passes[0][4], order=orders)
        return _finish(_apply(op, x, device, threads), target, dtype)
    current = x
    for a, s, o, m, t, r in passes:
        current = gaussian_filter1d(current, s, a, o, dtype, m, cval, t, radius=r, device=device,
                                    threads=threads)
    return _finish(current, target, dtype)


def _derivatives(input, sigma, output, mode, cval, axes, device, threads, kwargs, order, op):
    """scipy's ``generic_laplace`` (``order`` 2) and ``generic_gradient_magnitude``
    (``order`` 1) over Gaussian derivatives: each axis's term a Gaussian filter of that
    order along it, in that axis's mode on every axis, summed (squared, then the root,
    for the magnitude) in the output's dtype; or ``op`` (haloflow's op of the same
    name) in one pass where nothing of that shows."""
    x = np.asarray(input)
    if x.dtype.kind != "c":
        x = _input(x, linear=True)
    target, dtype = _output(output, input)
    axes = _axes(axes, x.ndim)
    n = len(axes)
    sigmas, modes = _sequence(sigma, n), [_mode(m) for m in _sequence(mode, n)]
    if x.size == 0:
        return _empty(x, target, dtype)
    simple = (dtype.kind == "f" and x.dtype.kind != "c" and axes == tuple(range(x.ndim))
              and set(kwargs) <= {"truncate"})
    if simple:
        result = _apply(op(sigmas, modes, cval, kwargs.get("truncate", 4.0)), x, device, threads)
        return _finish(result, target, dtype)
    total = None
    for i in range(n):
        orders = [0] * n
        orders[i] = order
        term = gaussian_filter(x, sigmas, orders, dtype, modes[i], cval, axes=axes, device=device,
                               threads=threads, **kwargs)
        if order == 1:
            term = _cast(term * term, dtype)
        total = term if total is None else _cast(total + term, dtype)
    if order == 1:
        with np.errstate(invalid="ignore"):
            total = np.sqrt(total)
    return _finish(total, target, dtype)


def gaussian_laplace(input, sigma, output=None, mode="reflect", cval=0.0, *, axes=None, device="cpu",
                     threads=None, **kwargs):
    """``scipy.ndimage.gaussian_laplace``: the sum over axes of the second derivatives,
    each a Gaussian filter of order 2 along one axis, stored as ``output``."""
    return _derivatives(input, sigma, output, mode, cval, axes, device, threads, kwargs, 2, ops.gaussian_laplace)


def gaussian_gradient_magnitude(input, sigma, output=None, mode="reflect", cval=0.0, *, axes=None,
                                device="cpu", threads=None, **kwargs):
    """``scipy.ndimage.gaussian_gradient_magnitude``: the root of the sum over axes of
    the squared first derivatives, stored as ``output``."""
    return _derivatives(input, sigma, output, mode, cval, axes, device, threads, kwargs, 1,
                        ops.gaussian_gradient_magnitude)


# --- Correlation and convolution --------------------------------------------------------


def _correlate1d(x, weights, axis, mode, cval, origin, device, threads):
    """scipy's ``correlate1d`` as haloflow's convolve: the weights reversed along
    ``axis``, the origin moved as scipy's ``convolve1d`` moves it."""
    w = np.asarray(weights, dtype=np.float64)
    shape = [1] * (x.ndim - axis)
    shape[0] = w.size
    kernel = w[::-1].reshape(shape)
    # correlate's centre tap is n // 2 + origin; convolve's is n - 1 - n // 2 - origin'.
    conv_origin = [0] * len(shape)
    conv_origin[0] = -origin - (1 - w.size % 2)
    return _apply(ops.convolve(kernel, _mode(mode), cval, conv_origin), x, device, threads)


def correlate1d(input, weights, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *, device="cpu",
                threads=None):
    """``scipy.ndimage.correlate1d``: computed as the module says, stored as ``output``."""
    x, weights = np.asarray(input), np.asarray(weights)
    if x.dtype.kind == "c" or weights.dtype.kind == "c":
        if weights.dtype.kind == "c":
            weights = weights.conj().astype(np.complex128, copy=False)
        target, dtype = _output(output, x, complex_output=True)
        return _complex(correlate1d, x, weights, target, dtype, cval, axis=axis, mode=mode, origin=origin,
                        device=device, threads=threads)
    x = _input(x, linear=True)
    target, dtype = _output(output, input)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or weights.shape[0] < 1:
        raise RuntimeError("no filter weights given")
    axis = _axes(operator.index(axis), x.ndim)[0]
    origin = operator.index(origin)
    _check_origin(origin, weights.size)
    if x.size == 0:
        return _empty(x, target, dtype)
    return _finish(_correlate1d(x, weights, axis, mode, cval, origin, device, threads), target, dtype)


def convolve1d(input, weights, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *, device="cpu",
               threads=None):
    """``scipy.ndimage.convolve1d``: computed as the module says, stored as ``output``."""
    weights = np.asarray(weights)[::-1]
    origin = -operator.index(origin)
    if not weights.shape[0] & 1:
        origin -= 1
    if weights.dtype.kind == "c":
        # Pre-conjugated, as correlate1d conjugates complex weights.
        weights = weights.conj()
    return correlate1d(input, weights, axis, output, mode, cval, origin, device=device, threads=threads)


def _correlate_or_convolve(input, weights, output=None, mode="reflect", cval=0.0, origin=0, convolution=False,
                           axes=None, device="cpu", threads=None):
    x, weights = np.asarray(input), np.asarray(weights)
    if x.dtype.kind == "c" or weights.dtype.kind == "c":
        if weights.dtype.kind == "c" and not convolution:
            # As numpy's correlate, the weights conjugated rather than the input.
            weights = weights.conj()
        target, dtype = _output(output, x, complex_output=True)
        return _complex(_correlate_or_convolve, x, weights, target, dtype, cval, mode=mode, origin=origin,
                        convolution=convolution, axes=axes, device=device, threads=threads)
    x = _input(x, linear=True)
    target, dtype = _output(output, input)
    weights = np.asarray(weights, dtype=np.float64)
    axes = _axes(axes, x.ndim)
    if weights.ndim != len(axes) or any(s == 0 for s in weights.shape):
        raise RuntimeError("filter weights array has incorrect shape.")
    if not isinstance(mode, str):
        raise RuntimeError("A sequence of modes is not supported")
    origins = [operator.index(o) for o in _sequence(origin, len(axes))]
    # As correlation weights over the filtered axes, scipy's way.
    if convolution:
        weights = weights[(slice(None, None, -1),) * weights.ndim]
        origins = [-o - (1 - s % 2) for o, s in zip(origins, weights.shape)]
    for o, s in zip(origins, weights.shape):
        _check_origin(o, s)
    if x.size == 0:
        return _empty(x, target, dtype)
    # Spread to every axis from the first filtered one, in order.
    order = sorted(range(len(axes)), key=lambda i: axes[i])
    weights = np.transpose(weights, order)
    origins = [origins[i] for i in order]
    sorted_axes = [axes[i] for i in order]
    first = sorted_axes[0]
    shape = [1] * (x.ndim - first)
    full_origin = [0] * (x.ndim - first)
    for a, s, o in zip(sorted_axes, weights.shape, origins):
        shape[a - first] = s
        full_origin[a - first] = o
    kernel = weights.reshape(shape)[tuple(slice(None, None, -1) for _ in shape)]
    conv_origin = [-o - (1 - s % 2) for o, s in zip(full_origin, shape)]
    op = ops.convolve(kernel, _mode(mode), cval, conv_origin)
    return _finish(_apply(op, x, device, threads), target, dtype)


def correlate(input, weights, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None, device="cpu",
              threads=None):
    """``scipy.ndimage.correlate``: computed as the module says, stored as ``output``."""
    return _correlate_or_convolve(input, weights, output, mode, cval, origin, False, axes, device, threads)


def convolve(input, weights, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None, device="cpu",
             threads=None):
    """``scipy.ndimage.convolve``: computed as the module says, stored as ``output``."""
    return _correlate_or_convolve(input, weights, output, mode, cval, origin, True, axes, device, threads)


# --- Uniform filters --------------------------------------------------------------------


def uniform_filter1d(input, size, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *, device="cpu",
                     threads=None):
    """``scipy.ndimage.uniform_filter1d``: computed as the module says, stored as ``output``."""
    x = np.asarray(input)
    if x.dtype.kind == "c":
        target, dtype = _output(output, x, complex_output=True)
        return _parts(uniform_filter1d, x, target, dtype, cval, size=size, axis=axis, mode=mode, origin=origin,
                      device=device, threads=threads)
    x = _input(x, linear=True)
    target, dtype = _output(output, input)
    axis = _axes(operator.index(axis), x.ndim)[0]
    size = operator.index(size)
    if size < 1:
        raise RuntimeError("incorrect filter size")
    origin = operator.index(origin)
    _check_origin(origin, size)
    if x.size == 0:
        return _empty(x, target, dtype)
    if dtype.kind in "biu":
        # scipy divides the window's sum by its size, so a window of equal integers
        # gives that integer exactly, which a sum of value/size may miss by a rounding
        # and an integer output then truncates (gh-6930).
        total = _correlate1d(x, np.ones(size), axis, mode, cval, origin, device, threads)
        return _finish(np.asarray(total, dtype=np.float64) / size, target, dtype)
    op = ops.uniform(_full([size], [axis], x.ndim, 1), _mode(mode), cval, _full([origin], [axis], x.ndim, 0))
    return _finish(_apply(op, x, device, threads), target, dtype)


def uniform_filter(input, size=3, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None, device="cpu",
                   threads=None):
    """``scipy.ndimage.uniform_filter``: computed as the module says (one pass, or pass by pass
    where scipy's integer output or per-axis modes make the casts between passes show),
    stored as ``output``."""
    x = np.asarray(input)
    if x.dtype.kind == "c":
        target, dtype = _output(output, x, complex_output=True)
        return _parts(uniform_filter, x, target, dtype, cval, size=size, mode=mode, origin=origin, axes=axes,
                      device=device, threads=threads)
    x = _input(x, linear=True)
    target, dtype = _output(output, input)
    axes = _axes(axes, x.ndim)
    n = len(axes)
    sizes, modes = _sequence(size, n), [_mode(m) for m in _sequence(mode, n)]
    origins = [operator.index(o) for o in _sequence(origin, n)]
    for s, o in zip(sizes, origins):
        # scipy skips sizes of 1 and below rather than refusing them.
        if s > 1:
            _check_origin(o, s)
    if x.size == 0:
        return _empty(x, target, dtype)
    passes = [(a, s, m, o) for a, s, m, o in zip(axes, sizes, modes, origins) if s > 1]
    if not passes:
        return _finish(x, target, dtype)
    if dtype.kind == "f":
        filtered = [a for a, *_ in passes]
        op = ops.uniform(_full([s for _, s, _, _ in passes], filtered, x.ndim, 1),
                         _full([m for _, _, m, _ in passes], filtered, x.ndim, passes[0][2]), cval,
                         _full([o for *_, o in passes], filtered, x.ndim, 0))
        return _finish(_apply(op, x, device, threads), target, dtype)
    current = x
    for a, s, m, o in passes:
        current = uniform_filter1d(current, s, a, dtype, m, cval, o, device=device, threads=threads)
    return _finish(current, target, dtype)


# --- Rank filters -----------------------------------------------------------------------


def _window(x, size, footprint, axes):
    """scipy's size/footprint rules over ``axes``: (a size per array axis, None) for a
    box (a footprint of all ones is one), or (None, a footprint over every array axis)."""
    n = len(axes)
    if footprint is None:
        if size is None:
            raise RuntimeError("no footprint or filter size provided")
        sizes = [operator.index(s) for s in _sequence(size, n)]
        if any(s < 1 for s in sizes):
            raise RuntimeError("incorrect filter size")
        return _full(sizes, axes, x.ndim, 1), None
    footprint = np.asarray(footprint, dtype=bool)
    if footprint.ndim != n:
        raise RuntimeError("footprint array has incorrect shape.")
    if not footprint.any():
        raise ValueError("All-zero footprint is not supported.")
    if footprint.all():
        return _full(list(footprint.shape), axes, x.ndim, 1), None
    order = sorted(range(n), key=lambda i: axes[i])
    footprint = np.transpose(footprint, order)
    shape = [1] * x.ndim
    for i, a in zip(range(n), sorted(axes)):
        shape[a] = footprint.shape[i]
    return None, footprint.reshape(shape)


def _rank_op(name, size, footprint, mode, cval, origin, percentile=None):
    if name == "percentile":
        return ops.percentile(percentile, size, footprint, mode, cval, origin)
    return getattr(ops, name)(size, footprint, mode, cval, origin)


def _rank(name, input, size, footprint, output, mode, cval, origin, axes, device, threads, percentile=None):
    x = _input(input)
    target, dtype = _output(output, input)
    axes = _axes(axes, x.ndim)
    sizes, fp = _window(x, size, footprint, axes)
    sequence = isinstance(mode, (list, tuple))
    if sequence and (fp is not None or name not in ("minimum", "maximum")):
        raise RuntimeError("A sequence of modes is not supported for non-separable footprints")
    modes = [_mode(m) for m in _sequence(mode, len(axes))]
    origins = _full([operator.index(o) for o in _sequence(origin, len(axes))], axes, x.ndim, 0)
    extents = sizes if fp is None else list(fp.shape)
    if fp is None and name in ("minimum", "maximum"):
        # scipy's box minimum and maximum run as 1-D filters on the axes longer than
        # 1 only: an origin elsewhere is never looked at.
        origins = [o if e > 1 else 0 for o, e in zip(origins, extents)]
    for o, e in zip(origins, extents):
        _check_origin(o, e)
    if x.size == 0:
        return _empty(x, target, dtype)
    if len(set(modes)) > 1:
        # Separable: one axis at a time, as scipy's minimum/maximum filters run.
        current = x
        for a, m in zip(axes, modes):
            if sizes[a] > 1:
                op = _rank_op(name, _full([sizes[a]], [a], x.ndim, 1), None, m, cval,
                              _full([origins[a]], [a], x.ndim, 0))
                current = _cast(_apply(op, current, device, threads), dtype)
        return _finish(current, target, dtype)
    result = _apply(_rank_op(name, sizes, fp, modes[0], cval, origins, percentile), x, device, threads)
    return _finish(result, target, dtype)


def median_filter(input, size=None, footprint=None, output=None, mode="reflect", cval=0.0, origin=0, *,
                  axes=None, device="cpu", threads=None):
    """``scipy.ndimage.median_filter``, stored as ``output``."""
    return _rank("median", input, size, footprint, output, mode, cval, origin, axes, device, threads)


def _percentile_of_rank(rank, count):
    """A percentile whose scipy rank (``int(count * p / 100)``) is ``rank``."""
    return (rank + 0.5) * 100.0 / count


def percentile_filter(input, percentile, size=None, footprint=None, output=None, mode="reflect", cval=0.0,
                      origin=0, *, axes=None, device="cpu", threads=None):
    """``scipy.ndimage.percentile_filter``, stored as ``output``."""
    p = float(percentile)
    if p < 0.0:
        p += 100.0
    if p < 0.0 or p > 100.0:
        raise RuntimeError("invalid percentile")
    return _rank("percentile", input, size, footprint, output, mode, cval, origin, axes, device, threads,
                 percentile=p)


def rank_filter(input, rank, size=None, footprint=None, output=None, mode="reflect", cval=0.0, origin=0, *,
                axes=None, device="cpu", threads=None):
    """``scipy.ndimage.rank_filter``, stored as ``output``."""
    x = np.asarray(input)
    sizes, fp = _window(x, size, footprint, _axes(axes, x.ndim))
    count = int(np.prod(sizes)) if fp is None else int(fp.sum())
    rank = operator.index(rank)
    if rank < 0:
        rank += count
    if rank < 0 or rank >= count:
        raise RuntimeError("rank not within filter footprint size")
    return _rank("percentile", input, size, footprint, output, mode, cval, origin, axes, device, threads,
                 percentile=_percentile_of_rank(rank, count))


def minimum_filter(input, size=None, footprint=None, output=None, mode="reflect", cval=0.0, origin=0, *,
                   axes=None, device="cpu", threads=None):
    """``scipy.ndimage.minimum_filter``, stored as ``output``."""
    return _rank("minimum", input, size, footprint, output, mode, cval, origin, axes, device, threads)


def maximum_filter(input, size=None, footprint=None, output=None, mode="reflect", cval=0.0, origin=0, *,
                   axes=None, device="cpu", threads=None):
    """``scipy.ndimage.maximum_filter``, stored as ``output``."""
    return _rank("maximum", input, size, footprint, output, mode, cval, origin, axes, device, threads)


def minimum_filter1d(input, size, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *, device="cpu",
                     threads=None):
    """``scipy.ndimage.minimum_filter1d``, stored as ``output``."""
    if operator.index(size) < 1:
        raise RuntimeError("incorrect filter size")
    return _rank("minimum", input, size, None, output, mode, cval, origin, operator.index(axis), device,
                 threads)


def maximum_filter1d(input, size, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *, device="cpu",
                     threads=None):
    """``scipy.ndimage.maximum_filter1d``, stored as ``output``."""
    if operator.index(size) < 1:
        raise RuntimeError("incorrect filter size")
    return _rank("maximum", input, size, None, output, mode, cval, origin, operator.index(axis), device,
                 threads)


# --- Geometric transforms ---------------------------------------------------------------


def _interp_checks(order, mode):
    if order < 0 or order > 5:
        raise RuntimeError("spline order not supported")
    if mode not in ops._INTERP_MODES:
        raise RuntimeError("boundary mode not supported")


def _interp_store(t, dtype):
    """scipy's store of interpolated values: integers rounded half away from zero
    (unsigned: negatives to 0) and clamped to the type."""
    if dtype.kind not in "iub":
        return t.astype(dtype)
    t = np.asarray(t, dtype=np.float64)
    if dtype.kind == "b":
        return t != 0
    info = np.iinfo(dtype)
    r = np.where(t > 0, t + 0.5, t - 0.5 if dtype.kind == "i" else 0.0)
    return np.clip(np.trunc(r), info.min, info.max).astype(dtype)


def _geometric(op_of, input, output, shape, cval, device, threads):
    """The geometric op ``op_of(cval)`` on ``input``, stored as scipy stores it in
    ``output`` (an array of ``shape``, a dtype, or None: the input's dtype)."""
    x = np.asarray(input)
    if x.dtype.kind == "c":
        dtype = np.promote_types(x.dtype, np.complex64) if output is None or isinstance(output, (type, np.dtype, str)) \
            else np.asarray(output).dtype
        out = np.zeros(shape, dtype) if output is None or isinstance(output, (type, np.dtype, str)) else output
        out.real[...] = _geometric(op_of, x.real, None, shape, np.real(cval), device, threads)
        out.imag[...] = _geometric(op_of, x.imag, None, shape, np.imag(cval), device, threads)
        return out
    if np.iscomplexobj(cval):
        raise ValueError("Cannot provide a complex-valued cval when the input is real.")
    target = None
    if output is None:
        dtype = np.dtype(x.dtype.name)
    elif isinstance(output, (type, np.dtype, str)):
        dtype = np.dtype(output)
    else:
        target = output
        if target.shape != tuple(shape):
            raise RuntimeError("output shape not correct")
        dtype = target.dtype
    x = _input(x)
    if x.size == 0 or 0 in shape:
        result = np.full(shape, cval, dtype=np.float64)
    elif dtype == x.dtype:
        result = _apply(op_of(cval), x, device, threads)
    else:
        # Computed in float64 and stored in the asked type, as scipy's double `t`.
        result = _apply(op_of(cval), x.astype(np.float64), device, threads)
    result = _interp_store(result, dtype) if result.dtype != dtype else result
    if target is None:
        return result
    target[...] = result
    return target


def affine_transform(input, matrix, offset=0.0, output_shape=None, output=None, order=3, mode="constant",
                     cval=0.0, prefilter=True, *, device="cpu", threads=None):
    """``scipy.ndimage.affine_transform``: the output at index ``o`` is the input
    interpolated at ``matrix @ o + offset`` (splines of ``order`` 0 to 5, prefiltered),
    computed in float64 as scipy's, stored as ``output``."""
    x = np.asarray(input)
    _interp_checks(order, mode)
    if output_shape is None:
        output_shape = output.shape if isinstance(output, np.ndarray) else x.shape
    if x.ndim < 1 or len(output_shape) < 1:
        raise RuntimeError("input and output rank must be > 0")
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim not in (1, 2) or m.shape[0] < 1:
        raise RuntimeError("no proper affine matrix provided")
    if m.ndim == 2 and m.shape[1] == x.ndim + 1 and m.shape[0] in (x.ndim, x.ndim + 1):
        if m.shape[0] == x.ndim + 1 and not np.all(m[x.ndim] == [0] * x.ndim + [1]):
            raise ValueError(f"Expected homogeneous transformation matrix with shape {m.shape} for image shape "
                             f"{x.shape}, but bottom row was not equal to {[0] * x.ndim + [1]}")
        offset, m = m[:x.ndim, x.ndim], m[:x.ndim, :x.ndim]
    if m.shape[0] != x.ndim:
        raise RuntimeError("affine matrix has wrong number of rows")
    if m.ndim == 2 and m.shape[1] != len(output_shape):
        raise RuntimeError("affine matrix has wrong number of columns")
    offset = np.asarray(_sequence(offset, x.ndim), dtype=np.float64)
    shape = tuple(int(s) for s in output_shape)
    if m.ndim == 2 and len(shape) != x.ndim:
        return _across_ranks(x, m, offset, shape, output, order, mode, cval, prefilter, device, threads)
    return _geometric(lambda c: ops.affine(m, offset, shape, order, mode, float(c), prefilter), x, output, shape,
                      cval, device, threads)


def _across_ranks(x, m, offset, shape, output, order, mode, cval, prefilter, device, threads):
    """An affine transform between ranks (``m`` is n×k, n the input's rank, k the
    output's), as one of equal ranks: a lower output rank gets trailing axes of length
    1 that the matrix ignores; a higher one gets input axes of length 1, sampled at 0."""
    n, k = m.shape
    if k < n:
        square = np.hstack([m, np.zeros((n, n - k))])
        padded = shape + (1,) * (n - k)
        source = x
    else:
        square = np.vstack([m, np.zeros((k - n, k))])
        offset = np.concatenate([offset, np.zeros(k - n)])
        padded = shape
        source = x.reshape(x.shape + (1,) * (k - n))
    dtype = output if output is None or isinstance(output, (type, np.dtype, str)) else output.dtype
    result = affine_transform(source, square, offset, padded, dtype, order, mode, cval, prefilter, device=device,
                              threads=threads).reshape(shape)
    if isinstance(output, np.ndarray):
        if output.shape != shape:
            raise RuntimeError("output shape not correct")
        output[...] = result
        return output
    return result


def zoom(input, zoom, output=None, order=3, mode="constant", cval=0.0, prefilter=True, *, grid_mode=False,
         device="cpu", threads=None):
    """``scipy.ndimage.zoom``: output ``round(n * zoom)`` per axis, the outermost samples'
    centres aligned (their outer edges with ``grid_mode``)."""
    x = np.asarray(input)
    _interp_checks(order, mode)
    if x.ndim < 1:
        raise RuntimeError("input and output rank must be > 0")
    factors = [float(z) for z in _sequence(zoom, x.ndim)]
    shape = tuple(int(round(n * z)) for n, z in zip(x.shape, factors))
    if all(z == 1 for z in factors) and prefilter:
        return _geometric(lambda c: ops.zoom([1.0], 1, mode, float(c)), x, output, shape, cval, device, threads)
    if grid_mode and mode in ("constant", "wrap"):
        warnings.warn(f"It is recommended to use mode = grid-{mode} instead of {mode} when grid_mode is True.",
                      stacklevel=2)
    return _geometric(lambda c: ops.zoom(factors, order, mode, float(c), prefilter, grid_mode), x, output,
                      shape, cval, device, threads)


def rotate(input, angle, axes=(1, 0), reshape=True, output=None, order=3, mode="constant", cval=0.0,
           prefilter=True, *, device="cpu", threads=None):
    """``scipy.ndimage.rotate`` by ``angle`` degrees in the plane of ``axes``, the output
    grown to hold the whole rotated input where ``reshape``."""
    x = np.asarray(input)
    _interp_checks(order, mode)
    if x.ndim < 2:
        raise ValueError("input array should be at least 2D")
    axes = list(axes)
    if len(axes) != 2:
        raise ValueError("axes should contain exactly two values")
    if not all(float(a).is_integer() for a in axes):
        raise ValueError("axes should contain only integer values")
    axes = [int(a) + x.ndim if a < 0 else int(a) for a in axes]
    if any(a < 0 or a >= x.ndim for a in axes):
        raise ValueError("invalid rotation plane specified")
    axes.sort()
    if not np.isfinite(angle):
        raise ValueError(f"angle must be finite, got {angle}")
    # The output's shape, as scipy computes it (the op computes the same).
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    if float(angle) % 90 == 0:
        c, s = [(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)][int(float(angle) % 360 // 90)]
    shape = list(x.shape)
    if reshape:
        iy, ix = x.shape[axes[0]], x.shape[axes[1]]
        bounds = np.array([[c, s], [-s, c]]) @ [[0, 0, iy, iy], [0, ix, 0, ix]]
        shape[axes[0]], shape[axes[1]] = (np.ptp(bounds, axis=1) + 0.5).astype(int)
    return _geometric(lambda cv: ops.rotate(angle, axes, reshape, order, mode, float(cv), prefilter), x, output,
                      tuple(shape), cval, device, threads)


_LABEL_TYPES = {np.dtype(t) for t in ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64")}


def label(input, structure=None, output=None, *, threads=None):
    """``scipy.ndimage.label``: the connected components of the non-zero voxels, joined
    through ``structure`` (default: faces only), numbered from 1 in raster order of
    each object's first voxel; returns ``(labels, num_features)`` (int32 labels), or
    ``num_features`` when ``output`` is an array (written in place). The array is cut
    into slabs labelled on ``threads`` threads and merged, as ``haloflow label`` merges
    chunks. A structure must be centrosymmetric (scipy assumes it)."""
    x = np.asarray(input)
    if np.iscomplexobj(x):
        raise TypeError("Complex type not supported")
    if structure is not None:
        structure = np.asarray(structure, dtype=bool)
        if structure.ndim != x.ndim:
            raise RuntimeError("structure and input must have equal rank")
        if any(n != 3 for n in structure.shape):
            raise ValueError("structure dimensions must be equal to 3")
    provided = isinstance(output, np.ndarray)
    if provided and output.shape != x.shape:
        raise ValueError("output shape not correct")
    dtype = output.dtype if provided else np.dtype(np.int32 if output is None else output)
    if x.ndim == 0 or x.size == 0:
        count = int(x != 0) if x.ndim == 0 else 0
        result = np.full(x.shape, count, dtype)
        if provided:
            output[...] = result
            return count
        return result, count
    if x.dtype == np.bool_:
        x = x.view(np.uint8)  # the same bytes, 0 and 1
    elif x.dtype not in _NATIVE or x.dtype.kind == "f":
        x = (x != 0).view(np.uint8)
    kind = dtype if dtype in _LABEL_TYPES else np.dtype(np.int32)
    flat = None if structure is None else structure.ravel().tolist()
    try:
        labels, count = _haloflow.label(x, flat, None, kind.name, threads)
    except _haloflow.HaloflowError as e:
        if "do not fit" in str(e):
            raise RuntimeError("insufficient bit-depth in requested output type") from e
        raise
    if kind != dtype:
        labels = labels.astype(dtype)
    if provided:
        output[...] = labels
        return count
    return labels, count


_OBJECT_PROPERTIES = ("label", "area", "num_pixels", "centroid", "bbox", "intensity_mean", "intensity_min",
                      "intensity_max", "intensity_sum")


def regionprops_table(label_image, intensity_image=None, properties=("label", "bbox"), *, threads=None):
    """``skimage.measure.regionprops_table`` for the properties haloflow tabulates while
    streaming: ``label``, ``area`` (= ``num_pixels``: voxels), ``centroid``, ``bbox``
    and, with an intensity image of the same shape, ``intensity_mean``,
    ``intensity_min``, ``intensity_max`` and ``intensity_sum``. Returns a dict of
    columns named as skimage names them (``centroid-0``, ``bbox-3`` ...), one row per
    label in increasing order; 0 is background."""
    labels = np.asarray(label_image)
    if labels.dtype.kind not in "iub":
        raise TypeError("Non-integer image types are ambiguous")
    wanted = [properties] if isinstance(properties, str) else list(properties)
    for p in wanted:
        if p not in _OBJECT_PROPERTIES:
            raise ValueError(f"{p!r} is not a property haloflow tabulates (it has {', '.join(_OBJECT_PROPERTIES)})")
        if p.startswith("intensity") and intensity_image is None:
            raise AttributeError(f"Attribute {p!r} unavailable when `intensity_image` has not been specified.")
    if labels.dtype not in _LABEL_TYPES:
        labels = labels.astype(np.uint8)  # bool
    intensity = None
    if intensity_image is not None:
        intensity = np.ascontiguousarray(intensity_image, dtype=np.float64)
        if intensity.shape != labels.shape:
            raise ValueError("Label and intensity image shapes must match, except for channel (last) axis.")
    return _object_columns(_haloflow.objects(labels, intensity, threads), labels.ndim, wanted)


def _object_columns(columns, ndim, wanted, spacing=None):
    """The dict of ``wanted`` columns (skimage's names) of an object table as the
    extension returns it; with ``spacing``, ``centroid`` brings ``centroid_physical-*``."""
    names, area, centroid, bbox, values = columns
    n = len(names)
    centroid = np.asarray(centroid, dtype=np.float64).reshape(n, ndim)
    bbox = np.asarray(bbox, dtype=np.int64).reshape(n, 2 * ndim)
    out = {}
    for p in wanted:
        if p == "label":
            wide = n and max(names) >= 1 << 63  # uint64 labels beyond int64
            out["label"] = np.asarray(names, dtype=np.uint64 if wide else np.int64)
        elif p in ("area", "num_pixels"):
            out[p] = np.asarray(area, dtype=np.float64 if p == "area" else np.int64)
        elif p == "centroid":
            out.update({f"centroid-{a}": centroid[:, a] for a in range(ndim)})
            if spacing is not None:
                out.update({f"centroid_physical-{a}": centroid[:, a] * spacing[a] for a in range(ndim)})
        elif p == "bbox":
            out.update({f"bbox-{a}": bbox[:, a] for a in range(2 * ndim)})
        else:
            k = ("intensity_mean", "intensity_min", "intensity_max", "intensity_sum").index(p)
            out[p] = np.asarray(values, dtype=np.float64).reshape(n, 4)[:, k]
    return out
