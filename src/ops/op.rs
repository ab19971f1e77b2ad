//! [`Op`]: one operation as a user asks for it, its parameters and their JSON form.

use serde::{Deserialize, Serialize};

use crate::boundary::Boundary;
use crate::dtype::DType;
use crate::stage::{DownMethod, InterpMode, NoiseModel, ProjectMethod, UpMethod};

use super::convolve::Kernel;
use super::rank::Footprint;

fn default_truncate() -> f64 {
    4.0
}

fn default_patch_size() -> usize {
    7
}

fn default_patch_distance() -> usize {
    11
}

fn default_fast_mode() -> bool {
    true
}

fn default_true() -> bool {
    true
}

fn default_spline_order() -> usize {
    3
}

fn default_rotate_axes() -> [i64; 2] {
    [1, 0]
}

/// How the geometric ops interpolate: scipy's `order`, `mode`, `cval` and `prefilter`
/// (their JSON fields sit beside the op's own), with scipy's defaults: cubic splines,
/// `constant` 0, prefiltered.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interp {
    /// The spline's order, 0 (nearest) to 5; 1 is linear, 3 cubic.
    #[serde(default = "default_spline_order")]
    pub order: usize,
    /// How coordinates beyond the edge read (scipy's interpolation modes).
    #[serde(default)]
    pub mode: InterpMode,
    /// The value beyond the edge in the `constant` modes.
    #[serde(default)]
    pub cval: f64,
    /// Whether orders above 1 first apply the spline prefilter (scipy's `prefilter`).
    #[serde(default = "default_true")]
    pub prefilter: bool,
}

impl Default for Interp {
    fn default() -> Self {
        Interp {
            order: 3,
            mode: InterpMode::Constant,
            cval: 0.0,
            prefilter: true,
        }
    }
}

impl Interp {
    /// Spline `order` with scipy's other defaults.
    pub fn order(order: usize) -> Interp {
        Interp {
            order,
            ..Interp::default()
        }
    }
}

/// How a filter reads beyond the array's edge: scipy's `mode` and `cval`, one group
/// shared by every filter (its JSON fields sit beside the op's own).
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Edge {
    /// Boundary mode (scipy's default, `reflect`, when left out).
    #[serde(default)]
    pub mode: Boundary,
    /// Value beyond the edge in `constant` mode (cast to the element type by the
    /// filters that keep it).
    #[serde(default)]
    pub cval: f64,
}

impl Edge {
    /// `mode` with its constant `cval`.
    pub fn new(mode: Boundary, cval: f64) -> Edge {
        Edge { mode, cval }
    }
}

/// The neighbourhood a rank filter selects from: a box of `size`, or a `footprint`
/// (which wins where both are given), as scipy's `size` and `footprint`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Neighborhood {
    /// The box's extent per axis (one value for all axes, or one per axis).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub size: Vec<usize>,
    /// A footprint instead of a box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footprint: Option<Footprint>,
}

impl Neighborhood {
    /// A box of `size`.
    pub fn size(size: &[usize]) -> Neighborhood {
        Neighborhood {
            size: size.to_vec(),
            footprint: None,
        }
    }
}

/// One operation, with the semantics of its scipy/numpy counterpart (the contract in
/// `docs/ARCHITECTURE.md`).
///
/// Per-axis lists (`sigma`, `factor`) hold one value for all axes or one per axis.
/// The JSON form (`{"op": "gaussian", "sigma": [2.0], ...}`) is what output arrays
/// record in their attributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `x > above` as uint8 0/1.
    Threshold {
        /// The threshold.
        above: f64,
    },
    /// `np.clip(x, min, max)`, element type kept (integer bounds rounded half to even).
    Clip {
        /// Lower bound.
        min: f64,
        /// Upper bound (≥ `min`).
        max: f64,
    },
    /// `scipy.ndimage.gaussian_filter(x, sigma, order, mode=mode, cval=cval,
    /// truncate=truncate)`, float32 out (float64 for float64 input).
    Gaussian {
        /// Standard deviation per axis (0 leaves the axis untouched).
        sigma: Vec<f64>,
        /// How it reads beyond the array's edge.
        #[serde(flatten)]
        edge: Edge,
        /// Radius in standard deviations: radius = `int(truncate * sigma + 0.5)`.
        #[serde(default = "default_truncate")]
        truncate: f64,
        /// Boundary mode per axis where they differ (scipy's sequence of modes): one per
        /// axis, in place of `mode`; empty: `mode` on every axis.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        modes: Vec<Boundary>,
        /// The order of the Gaussian's derivative per axis (one for all; empty: 0, the
        /// Gaussian itself), as scipy's `order`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        order: Vec<u32>,
    },
    /// `scipy.ndimage.convolve(x, kernel, mode=mode, cval=cval)`, float32 out; a kernel
    /// with fewer dimensions than the array applies to the trailing axes.
    Convolve {
        /// The kernel.
        kernel: Kernel,
        /// How it reads beyond the array's edge.
        #[serde(flatten)]
        edge: Edge,
        /// scipy's `origin`, per kernel axis (one value for all; empty: 0): the kernel's
        /// placement, shifted against the axis by each.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        origin: Vec<i64>,
    },
    /// Reduce by integer factors; output size `ceil(n / f)`, edge windows partial.
    Downsample {
        /// Factor per axis (≥ 1).
        factor: Vec<usize>,
        /// How each window is reduced.
        method: DownMethod,
    },
    /// Enlarge by integer factors; output size `n * f`.
    Upsample {
        /// Factor per axis (≥ 1).
        factor: Vec<usize>,
        /// How new samples are made.
        method: UpMethod,
    },
    /// `scipy.ndimage.gaussian_laplace(x, sigma, mode=mode, cval=cval, truncate=truncate)`
    /// computed on `x` as float64, float32 out: the sum over the axes of the Gaussian
    /// with its second derivative along that axis.
    GaussianLaplace {
        /// Standard deviation per axis (0 leaves the axis untouched).
        sigma: Vec<f64>,
        /// How it reads beyond the array's edge.
        #[serde(flatten)]
        edge: Edge,
        /// Radius in standard deviations.
        #[serde(default = "default_truncate")]
        truncate: f64,
        /// One mode per axis (empty: `mode`): as scipy's, axis `a`'s term (its second
        /// derivative) is filtered in mode `a` on every axis.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        modes: Vec<Boundary>,
    },
    /// `scipy.ndimage.gaussian_gradient_magnitude(x, sigma, ...)` on `x` as float64,
    /// float32 out: the root of the sum over the axes of the squared Gaussian first
    /// derivatives.
    GaussianGradientMagnitude {
        /// Standard deviation per axis (0 leaves the axis untouched).
        sigma: Vec<f64>,
        /// How it reads beyond the array's edge.
        #[serde(flatten)]
        edge: Edge,
        /// Radius in standard deviations.
        #[serde(default = "default_truncate")]
        truncate: f64,
        /// One mode per axis (empty: `mode`): as scipy's, axis `a`'s term (its first
        /// derivative) is filtered in mode `a` on every axis.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        modes: Vec<Boundary>,
    },
    /// `scipy.ndimage.uniform_filter(x, size, mode=mode, cval=cval)`: the mean over a
    /// box of `size` voxels (1 leaves an axis untouched), float32 out.
    Uniform {
        /// The box's extent per axis (one value for all axes, or one per axis).
        size: Vec<usize>,
        /// How it reads beyond the array's edge.
        #[serde(flatten)]
        edge: Edge,
        /// scipy's `origin`, per axis (one value for all; empty: 0): the box's
        /// placement, shifted against the axis by each.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        origin: Vec<i64>,
        /// Boundary mode per axis where they differ (scipy's sequence of modes): one per
        /// axis, in place of `mode`; empty: `mode` on every axis.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        modes: Vec<Boundary>,
    },
    /// `scipy.ndimage.median_filter(x, size, footprint, mode=mode, cval=cval)`, element
    /// type kept.
    Median {
        /// The neighbourhood: a box or a footprint.
        #[serde(flatten)]
        neighborhood: Neighborhood,
        /// How it reads beyond the array's edge.
        #[serde(flatten)]
        edge: Edge,
        /// scipy's `origin`, per axis (one value for all; empty: 0): the window's
        /// placement, shifted against the axis by each.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        origin: Vec<i64>,
    },
    /// `scipy.ndimage.percentile_filter(x, size, footprint, mode=mode, cval=cval)` (which also covers `rank_filter`), element
    /// type kept.
    Percentile {
        /// The percentile, -100 to 100 (negative counts from 100).
        percentile: f64,
        /// The neighbourhood: a box or a footprint.
        #[serde(flatten)]
        neighborhood: Neighborhood,
        /// How it reads beyond the array's edge.
        #[serde(flatten)]
        edge: Edge,
        /// scipy's `origin`, per axis (one value for all; empty: 0): the window's
        /// placement, shifted against the axis by each.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        origin: Vec<i64>,
    },
    /// `scipy.ndimage.minimum_filter(x, size, footprint, mode=mode, cval=cval)`, element
    /// type kept.
    Minimum {
        /// The neighbourhood: a box or a footprint.
        #[serde(flatten)]
        neighborhood: Neighborhood,
        /// How it reads beyond the array's edge.
        #[serde(flatten)]
        edge: Edge,
        /// scipy's `origin`, per axis (one value for all; empty: 0): the window's
        /// placement, shifted against the axis by each.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        origin: Vec<i64>,
    },
    /// `scipy.ndimage.maximum_filter(x, size, footprint, mode=mode, cval=cval)`, element
    /// type kept.
    Maximum {
        /// The neighbourhood: a box or a footprint.
        #[serde(flatten)]
        neighborhood: Neighborhood,
        /// How it reads beyond the array's edge.
        #[serde(flatten)]
        edge: Edge,
        /// scipy's `origin`, per axis (one value for all; empty: 0): the window's
        /// placement, shifted against the axis by each.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        origin: Vec<i64>,
    },
    /// `x > t` as uint8, `t` being `skimage.filters.threshold_otsu` of the whole input
    /// (see [`stats::otsu`](crate::stats::otsu)). The statistic is computed first
    /// ([`Pipeline::resolve`](super::Pipeline::resolve)); the op must come first in its chain.
    ThresholdOtsu {},
    /// `x > t` as uint8, `t` being `np.nanpercentile(input, percentile)` of the whole
    /// input (resolved first, as [`Op::ThresholdOtsu`]).
    ThresholdPercentile {
        /// The percentile, 0 to 100.
        percentile: f64,
    },
    /// `(x - lo) / (hi - lo + 1e-20)` in float32, `lo` and `hi` being percentiles of
    /// the whole input (CSBDeep's `normalize`, computed as its float32 arithmetic does),
    /// optionally clipped to `[0, 1]`. The percentiles' values are filled in by
    /// [`Pipeline::resolve`](super::Pipeline::resolve); the op must come first in its chain.
    Normalize {
        /// The low and high percentiles (CSBDeep's defaults: 1 and 99.8).
        percentiles: [f64; 2],
        /// Clip the result to `[0, 1]`.
        #[serde(default)]
        clip: bool,
        /// The percentiles' values, once resolved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        values: Option<[f64; 2]>,
    },
    /// numpy's `x.max(axis)`, `x.min(axis)`, `x.mean(axis)` or `x.sum(axis)`: the
    /// axis is dropped (kept at size 1 with `keepdims`). Max and min keep the type;
    /// mean and sum give float64 for integers (exact: numpy's sum would be int64)
    /// and keep float types (summed in f64). Without `keepdims` it must come last in
    /// a chain.
    Project {
        /// The axis reduced.
        axis: usize,
        /// The reduction.
        method: ProjectMethod,
        /// Keep the axis, at size 1.
        #[serde(default)]
        keepdims: bool,
    },
    /// scikit-image's `richardson_lucy(x, psf, num_iter=iterations, clip=clip,
    /// filter_epsilon=filter_epsilon)`: Richardson–Lucy deconvolution in float32, its
    /// convolutions scipy.signal's `mode='same'` (zero outside the array); exact
    /// whatever the chunking (the halo of every iteration is planned).
    Deconvolve {
        /// The point-spread function (1 to the array's dimensions: the trailing axes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        psf: Option<Kernel>,
        /// Or a Gaussian one of these sigmas in pixels (one value or one per axis; see
        /// [`Kernel::gaussian`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        psf_sigma: Option<Vec<f64>>,
        /// Iterations (scikit-image's `num_iter`), at least 1.
        iterations: usize,
        /// Ratios where the blurred estimate is below this are 0 (scikit-image's
        /// `filter_epsilon`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter_epsilon: Option<f64>,
        /// Clip the result to `[-1, 1]` (scikit-image's default; the command's is off).
        #[serde(default)]
        clip: bool,
        /// Approximate instead of exact: each block of output is deconvolved as an
        /// image of its own, grown by this many pixels each side (dask's `map_overlap`
        /// with this depth), instead of by the halo every iteration needs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        overlap: Option<usize>,
    },
    /// scikit-image's `denoise_nl_means(x, patch_size, patch_distance, h, fast_mode,
    /// sigma, preserve_range=True)`: non-local means on the last two axes of a 2-D
    /// array, the last three of any other (the leading ones one volume at a time), NumPy's
    /// `reflect` padding; float32 out, exact whatever the chunking (the halo is the
    /// search window's and the patch's radii). With a `noise` model, wrapped in the
    /// generalized Anscombe transform and its inverse (`h` and `sigma` then in the
    /// stabilized domain, where the noise has unit variance).
    Denoise {
        /// The patch's extent (an even one is made odd by adding 1, as scikit-image does).
        #[serde(default = "default_patch_size")]
        patch_size: usize,
        /// The search window's radius.
        #[serde(default = "default_patch_distance")]
        patch_distance: usize,
        /// The cut-off distance: patches this far apart weigh `e^-1`, about.
        h: f64,
        /// The noise's standard deviation (subtracted from patch distances).
        #[serde(default)]
        sigma: f64,
        /// scikit-image's fast mode (uniform patch weights); else classic mode
        /// (Gaussian patch weights, far slower).
        #[serde(default = "default_fast_mode")]
        fast_mode: bool,
        /// A Poisson–Gaussian noise model: denoise in its Anscombe domain.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        noise: Option<NoiseModel>,
    },
    /// The generalized Anscombe transform of Poisson–Gaussian data (counts times `gain`,
    /// plus `offset`, plus Gaussian read noise of standard deviation `read_noise`):
    /// `2/gain · sqrt(max(gain·x + 3/8·gain² + read_noise² − gain·offset, 0))` in
    /// float32, whose noise has unit variance: what denoisers that assume Gaussian
    /// noise need.
    Anscombe {
        /// The camera's noise model.
        #[serde(flatten)]
        model: NoiseModel,
    },
    /// The inverse of [`Op::Anscombe`], in float32: Mäkitalo and Foi's closed-form
    /// approximation of the exact unbiased inverse (2013), `gain · max(0, D²/4 +
    /// √(3/2)/(4D) − 11/(8D²) + 5√(3/2)/(8D³) − 1/8 − (read_noise/gain)²) + offset`,
    /// with `D` taken as at least 1 (as their reference code does).
    InverseAnscombe {
        /// The noise model the forward transform was given.
        #[serde(flatten)]
        model: NoiseModel,
    },
    /// `scipy.ndimage.affine_transform(x, matrix, offset, output_shape, order, mode,
    /// cval, prefilter)`: the output at index `o` is the input interpolated at
    /// `matrix · o + offset`. Element type kept (integers rounded as scipy's).
    Affine {
        /// N×N (row `h`: input coordinate `h`), N×(N+1) or (N+1)×(N+1) homogeneous (its
        /// last column the offset).
        matrix: Vec<Vec<f64>>,
        /// The offset (one value for all axes, or one per axis; empty: 0).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        offset: Vec<f64>,
        /// The output's shape (empty: the input's).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        output_shape: Vec<usize>,
        /// The interpolation.
        #[serde(flatten)]
        interp: Interp,
    },
    /// `scipy.ndimage.zoom(x, zoom, order, mode, cval, prefilter, grid_mode)`: output
    /// shape `round(n · zoom)` per axis, element type kept.
    Zoom {
        /// The factor per axis (one value for all), > 0.
        zoom: Vec<f64>,
        /// scipy's `grid_mode`: align the pixels' outer edges rather than the outermost
        /// pixels' centres.
        #[serde(default)]
        grid_mode: bool,
        /// The interpolation.
        #[serde(flatten)]
        interp: Interp,
    },
    /// `scipy.ndimage.rotate(x, angle, axes, reshape, order, mode, cval, prefilter)`:
    /// a rotation by `angle` degrees in the plane of `axes`, of every such plane.
    Rotate {
        /// The angle in degrees.
        angle: f64,
        /// The plane's two axes (negative counts from the end), scipy's default (1, 0).
        #[serde(default = "default_rotate_axes")]
        axes: [i64; 2],
        /// Grow the output to hold the whole rotated input (scipy's default).
        #[serde(default = "default_true")]
        reshape: bool,
        /// The interpolation.
        #[serde(flatten)]
        interp: Interp,
    },
    /// Lattice light-sheet and oblique-plane deskew of the last three axes (z, y, x; z
    /// the scan axis), as pycudadecon and napari-lattice shear: with `s = scan_step ·
    /// cos(angle) / pixel_size` voxels per plane, the output has the shape
    /// `(nz, ny, nx + ceil((nz − 1) · s))` and `out[z, y, x] = in[z, y, x − z·s]`,
    /// linear, 0 outside: scipy's `affine_transform` with the matrix
    /// `[[1, 0, 0], [0, 1, 0], [−s, 0, 1]]`, order 1, mode `constant`. Element type
    /// kept.
    Deskew {
        /// The light sheet's angle to the coverslip, degrees, in (0, 90).
        angle: f64,
        /// The stage's (or scan mirror's) step between planes, in the pixel size's unit.
        scan_step: f64,
        /// The camera pixel's size in the sample.
        pixel_size: f64,
        /// Also rotate to the coverslip, in the same transform: the output is
        /// `(h, y, u)` on an isotropic grid of `pixel_size`, `h` the height (along the
        /// detection axis' projection, growing with the input's x) and `u` the
        /// position along the coverslip (the scan direction). Output `(h, y, u)` reads
        /// input `z = (u − h·cos(angle)/sin(angle)) · pixel_size / scan_step`,
        /// `x = h / sin(angle)`; the shape is `(1 + ceil((nx − 1)·sin(angle)), ny,
        /// 1 + ceil((nz − 1)·scan_step/pixel_size + (nx − 1)·cos(angle)))`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        rotate: bool,
    },
    /// Convert to another element type inside a chain (round half to even,
    /// saturate; `x.astype` after `np.rint` for integers), as `Pipeline::with_dtype`
    /// does at its end.
    Cast {
        /// The element type.
        dtype: DType,
    },
}

mod build;
#[cfg(test)]
mod tests;
