//! Stages: the primitive kernels every operation lowers to.
//! (Layer: stages; see the layer map in `docs/ARCHITECTURE.md`.)
//!
//! An [`Op`](crate::Op) is what a user asks for; a stage is what a backend runs. A
//! Gaussian lowers to one 1-D `Stencil` per filtered axis (each pads its own input,
//! as scipy does), a convolution to one N-D stencil, and so on. The planner maps an
//! output block backwards through the stages to the input each one needs.

mod deconvolve;
mod geometry;
mod interp_mode;
mod label;
mod nlmeans;
mod rank;
mod resample;
mod stencil;
mod tables;

use crate::dtype::DType;
use crate::region::AxisSet;

pub use geometry::overlap;
pub(crate) use geometry::{
    Geometric, Interpolation, Map, Resolved, Transform, first_tap, floor, poles, spline_weights,
    zoom_coordinate,
};
pub use interp_mode::InterpMode;
pub(crate) use label::RowStep;
pub use label::{Foreground, Structure};
pub(crate) use rank::{Comparator, Rank};
#[cfg(test)]
use resample::linear_weights;
pub use resample::{DownMethod, UpMethod};

/// How `project` reduces an axis (numpy's reductions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectMethod {
    /// `x.max(axis)`: the type kept; a NaN wins.
    Max,
    /// `x.min(axis)`: the type kept; a NaN wins.
    Min,
    /// `x.mean(axis)`: float64 for integers (exact sum), float32 for float32.
    Mean,
    /// `x.sum(axis)`: float64 for integers (numpy's int64, exact below 2^53),
    /// the type kept for floats.
    Sum,
}

impl ProjectMethod {
    /// The element type a projection of `input` writes.
    pub fn out_dtype(self, input: DType) -> DType {
        match self {
            ProjectMethod::Max | ProjectMethod::Min => input,
            ProjectMethod::Mean | ProjectMethod::Sum if input.is_float() => input,
            ProjectMethod::Mean | ProjectMethod::Sum => DType::F64,
        }
    }
}
pub(crate) use deconvolve::{Deconvolution, Iteration};
pub(crate) use nlmeans::NlMeans;
pub(crate) use resample::{denominator, linear_source};
pub(crate) use stencil::Stencil;
use stencil::stencil_input;
pub(crate) use tables::{Corners, Offset, TapTable, Window, corners, tap_table, windows};

/// A camera's Poisson–Gaussian noise model, what the Anscombe transforms take: photon
/// counts times `gain`, plus `offset`, plus Gaussian read noise of standard deviation
/// `read_noise`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NoiseModel {
    /// The gain (data units per photon), > 0.
    pub gain: f64,
    /// The offset (the value of no light).
    #[serde(default)]
    pub offset: f64,
    /// The standard deviation of the read noise, in data units, >= 0.
    #[serde(default)]
    pub read_noise: f64,
}

impl NoiseModel {
    /// The forward transform's constants in f32, `(gain, add, scale)`: it is
    /// `scale · sqrt(max(gain·x + add, 0))`, `add = 3/8·gain² + read_noise² − gain·offset`
    /// and `scale = 2/gain` (computed in f64 first).
    pub(crate) fn forward(&self) -> [f32; 3] {
        let (g, o, s) = (self.gain, self.offset, self.read_noise);
        [
            g as f32,
            (0.375 * g * g + s * s - g * o) as f32,
            (2.0 / g) as f32,
        ]
    }

    /// The inverse's constants in f32, `(gain, offset, subtract)`: `subtract = 1/8 +
    /// (read_noise/gain)²`.
    pub(crate) fn inverse(&self) -> [f32; 3] {
        let (g, o, s) = (self.gain, self.offset, self.read_noise);
        [g as f32, o as f32, (0.125 + (s / g) * (s / g)) as f32]
    }
}

/// One primitive kernel.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Stage {
    /// `x > above` as uint8.
    Threshold { above: f64 },
    /// Clamp to `[min, max]` (bounds cast to the element type first).
    Clip { min: f64, max: f64 },
    /// A correlation with boundary handling.
    Stencil(Stencil),
    /// An order statistic over a footprint with boundary handling (type kept).
    Rank(Rank),
    /// Reduce windows of `factor` elements.
    Downsample {
        factor: Vec<usize>,
        method: DownMethod,
    },
    /// Expand each element by `factor`.
    Upsample {
        factor: Vec<usize>,
        method: UpMethod,
    },
    /// Convert to another element type (round half to even, saturate).
    Cast(DType),
    /// `(x - low) / (high - low + 1e-20)` in float32, clipped to `[0, 1]` if `clip`.
    Normalize { low: f32, high: f32, clip: bool },
    /// Richardson–Lucy deconvolution (all its iterations), in float32.
    Deconvolve(Box<Deconvolution>),
    /// Non-local means denoising, float32 out.
    NlMeans(NlMeans),
    /// The generalized Anscombe transform, in float32.
    Anscombe(NoiseModel),
    /// Its closed-form unbiased inverse, in float32.
    InverseAnscombe(NoiseModel),
    /// A reduction along `axis` to one element (numpy's `x.max(axis, keepdims=True)`,
    /// and so on); the other axes are untouched.
    Project { axis: usize, method: ProjectMethod },
    /// A sum of separable filters, each term a chain of 1-D stencils (every one reading
    /// the stage's input): `Σ_t term_t` (the Laplacian of a Gaussian), or with
    /// `magnitude`, `sqrt(Σ_t term_t²)` (the gradient magnitude of a Gaussian).
    Derivatives {
        terms: Vec<Vec<Stencil>>,
        magnitude: bool,
    },
    /// Spline interpolation at transformed coordinates (scipy's `affine_transform`,
    /// `zoom`): the element type kept, the shape the transform's.
    Geometric(Box<Geometric>),
}

/// The input indices each pass of `term` reads, from the last pass back: entry `j` is
/// what pass `j` reads, the last entry `out` itself.
pub(crate) fn term_sets(
    term: &[Stencil],
    out: &[AxisSet],
    in_shape: &[usize],
) -> Vec<Vec<AxisSet>> {
    let mut sets = vec![out.to_vec()];
    for st in term.iter().rev() {
        let next = (0..out.len())
            .map(|a| stencil_input(st, a, &sets[0][a], in_shape[a]))
            .collect();
        sets.insert(0, next);
    }
    sets
}

impl Stage {
    /// Whether each output element depends on the input element at its own index
    /// alone (threshold, clip, cast, normalise).
    pub(crate) fn is_pointwise(&self) -> bool {
        matches!(
            self,
            Stage::Threshold { .. }
                | Stage::Clip { .. }
                | Stage::Cast(_)
                | Stage::Normalize { .. }
                | Stage::Anscombe(_)
                | Stage::InverseAnscombe(_)
        )
    }

    /// The element type this stage writes, given the one it reads.
    pub fn out_dtype(&self, input: DType) -> DType {
        match self {
            Stage::Threshold { .. } => DType::U8,
            // Float64 is correlated in float64 (on the CPU; the device's float32
            // stencils never write it: see `gpu::placement`).
            Stage::Stencil(_) | Stage::Derivatives { .. } if input == DType::F64 => DType::F64,
            Stage::Stencil(_)
            | Stage::Normalize { .. }
            | Stage::Derivatives { .. }
            | Stage::Anscombe(_)
            | Stage::InverseAnscombe(_)
            | Stage::Deconvolve(_)
            | Stage::NlMeans(_) => DType::F32,
            Stage::Project { method, .. } => method.out_dtype(input),
            Stage::Cast(d) => *d,
            Stage::Clip { .. }
            | Stage::Rank(_)
            | Stage::Geometric(_)
            | Stage::Downsample { .. }
            | Stage::Upsample { .. } => input,
        }
    }

    /// The array shape this stage writes, given the one it reads.
    pub fn out_shape(&self, input: &[usize]) -> Vec<usize> {
        match self {
            Stage::Project { axis, .. } => {
                let mut shape = input.to_vec();
                shape[*axis] = 1;
                shape
            }
            Stage::Downsample { factor, .. } => input
                .iter()
                .zip(factor)
                .map(|(n, f)| n.div_ceil(*f))
                .collect(),
            Stage::Upsample { factor, .. } => {
                input.iter().zip(factor).map(|(n, f)| n * f).collect()
            }
            Stage::Geometric(g) => g.out_shape(input),
            _ => input.to_vec(),
        }
    }

    /// The input indices, per axis, that the output indices `out` depend on, for an
    /// input array of shape `in_shape`. Indices past the edge are mapped through the
    /// boundary mode; the constant mode needs no input there.
    pub fn input_sets(&self, out: &[AxisSet], in_shape: &[usize]) -> Vec<AxisSet> {
        match self {
            Stage::Threshold { .. }
            | Stage::Clip { .. }
            | Stage::Cast(_)
            | Stage::Normalize { .. }
            | Stage::Anscombe(_)
            | Stage::InverseAnscombe(_) => out.to_vec(),
            Stage::Deconvolve(d) => d.input_sets(out, in_shape),
            Stage::NlMeans(nl) => nl.input_sets(out, in_shape),
            Stage::Geometric(g) => g.input_sets(out, in_shape),
            Stage::Stencil(s) | Stage::Rank(Rank { window: s, .. }) => (0..out.len())
                .map(|a| stencil_input(s, a, &out[a], in_shape[a]))
                .collect(),
            Stage::Project { axis, .. } => {
                let mut sets = out.to_vec();
                sets[*axis] = AxisSet::from_range(0..in_shape[*axis]);
                sets
            }
            Stage::Derivatives { terms, .. } => {
                // The union of what every term's first pass reads.
                let firsts: Vec<Vec<AxisSet>> = terms
                    .iter()
                    .map(|t| term_sets(t, out, in_shape).swap_remove(0))
                    .collect();
                (0..out.len())
                    .map(|a| {
                        AxisSet::from_ranges(
                            firsts.iter().flat_map(|f| f[a].runs().iter().cloned()),
                        )
                    })
                    .collect()
            }
            Stage::Downsample { factor, .. } => (0..out.len())
                .map(|a| {
                    let (f, n) = (factor[a], in_shape[a]);
                    AxisSet::from_ranges(
                        out[a]
                            .runs()
                            .iter()
                            .map(|r| r.start * f..(r.end * f).min(n)),
                    )
                })
                .collect(),
            Stage::Upsample { factor, method } => (0..out.len())
                .map(|a| {
                    let (f, n) = (factor[a], in_shape[a]);
                    AxisSet::from_ranges(out[a].runs().iter().map(|r| {
                        let (lo, hi) = match method {
                            UpMethod::Nearest => (r.start / f, (r.end - 1) / f),
                            UpMethod::Linear => {
                                let (lo, _) = linear_source(r.start, f, n);
                                let (_, hi) = linear_source(r.end - 1, f, n);
                                (lo, hi)
                            }
                        };
                        lo..hi + 1
                    }))
                })
                .collect(),
        }
    }

    /// For a stencil or rank stage, the padding each side of every axis that the output set
    /// `out` needs beyond an input axis of length `in_shape` (zero elsewhere).
    pub fn edge_padding(&self, out: &[AxisSet], in_shape: &[usize]) -> Vec<(usize, usize)> {
        match self {
            // Separable passes: each axis's padding is its own pass's.
            Stage::Derivatives { terms, .. } => terms
                .iter()
                .flatten()
                .map(|st| Stage::Stencil(st.clone()).edge_padding(out, in_shape))
                .fold(vec![(0, 0); out.len()], |acc, p| {
                    acc.iter()
                        .zip(&p)
                        .map(|(a, b)| (a.0.max(b.0), a.1.max(b.1)))
                        .collect()
                }),
            Stage::Stencil(s) | Stage::Rank(Rank { window: s, .. }) => (0..out.len())
                .map(|a| {
                    if out[a].is_empty() {
                        return (0, 0);
                    }
                    let b = out[a].bounds();
                    let taps = s.offsets(a);
                    let lo = b.start as i64 + taps.start;
                    let hi = b.end as i64 - 1 + taps.end - 1;
                    let n = in_shape[a] as i64;
                    ((-lo).max(0) as usize, (hi - (n - 1)).max(0) as usize)
                })
                .collect(),
            _ => vec![(0, 0); out.len()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boundary::Boundary;

    fn stencil_1d(k: usize, centre: usize, mode: Boundary) -> Stage {
        Stage::Stencil(Stencil::new(vec![k], vec![centre], vec![1.0; k], mode, 0.0))
    }

    #[test]
    fn stencil_footprint_grows_by_the_halo_and_clamps() {
        let s = stencil_1d(5, 2, Boundary::Reflect);
        let out = [AxisSet::from_range(4..8)];
        assert_eq!(s.input_sets(&out, &[20])[0], AxisSet::from_range(2..10));
        // At the edge, reflect needs only in-array data near the edge.
        let out = [AxisSet::from_range(0..3)];
        assert_eq!(s.input_sets(&out, &[20])[0], AxisSet::from_range(0..5));
        assert_eq!(s.edge_padding(&out, &[20]), vec![(2, 0)]);
    }

    #[test]
    fn wrap_footprint_reaches_the_far_side() {
        let s = stencil_1d(5, 2, Boundary::Wrap);
        let out = [AxisSet::from_range(0..3)];
        assert_eq!(s.input_sets(&out, &[20])[0].runs(), &[0..5, 18..20]);
        let s = stencil_1d(5, 2, Boundary::Constant);
        assert_eq!(s.input_sets(&out, &[20])[0], AxisSet::from_range(0..5));
    }

    #[test]
    fn resampling_footprints() {
        let down = Stage::Downsample {
            factor: vec![3],
            method: DownMethod::Mean,
        };
        assert_eq!(down.out_shape(&[10]), vec![4]);
        let out = [AxisSet::from_range(3..4)];
        assert_eq!(down.input_sets(&out, &[10])[0], AxisSet::from_range(9..10));
        let up = Stage::Upsample {
            factor: vec![2],
            method: UpMethod::Linear,
        };
        assert_eq!(up.out_shape(&[5]), vec![10]);
        // Output 0 sits at source -0.25: clamped to 0; output 3 at 1.25: reads 1 and 2.
        assert_eq!(linear_weights(0, 2), (-1, 3));
        assert_eq!(linear_weights(3, 2), (1, 1));
        let out = [AxisSet::from_range(3..4)];
        assert_eq!(up.input_sets(&out, &[5])[0], AxisSet::from_range(1..3));
    }
}
