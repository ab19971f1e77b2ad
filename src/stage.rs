//! Stages: the primitive kernels every operation lowers to.
//!
//! An [`Op`](crate::Op) is what a user asks for; a stage is what a backend runs. A
//! Gaussian lowers to one 1-D [`Stencil`] per filtered axis (each pads its own input,
//! as scipy does), a convolution to one N-D stencil, and so on. The planner maps an
//! output block backwards through the stages to the input each one needs.

use crate::boundary::Mode;
use crate::dtype::DType;
use crate::region::AxisSet;

/// How `downsample` reduces each window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DownMethod {
    /// Arithmetic mean (integers rounded to nearest, ties to even).
    Mean,
    /// Largest value (NaN wins, as in numpy).
    Max,
    /// Smallest value (NaN wins, as in numpy).
    Min,
    /// The window's first element: `x[::f]`.
    Stride,
    /// Most frequent value, ties to the smallest (for label images).
    Mode,
}

/// How `upsample` fills the new samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpMethod {
    /// Each sample repeated `f` times (`np.repeat`).
    Nearest,
    /// Linear interpolation with pixel centres aligned
    /// (`scipy.ndimage.zoom(order=1, grid_mode=True, mode='nearest')`).
    Linear,
}

/// An N-D correlation: `out[i] = Σ_j w[j] · x[mode(i + j - centre)]`, with f32 output.
///
/// `shape` has one extent per array axis (1 on axes the stencil does not touch).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Stencil {
    pub shape: Vec<usize>,
    pub centre: Vec<usize>,
    /// Correlation weights in C order over `shape`.
    pub weights: Vec<f32>,
    pub mode: Mode,
    pub cval: f32,
}

impl Stencil {
    /// The taps on `axis`, as offsets from the output index.
    pub fn offsets(&self, axis: usize) -> std::ops::Range<i64> {
        let c = self.centre[axis] as i64;
        -c..self.shape[axis] as i64 - c
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
}

impl Stage {
    /// The element type this stage writes, given the one it reads.
    pub fn out_dtype(&self, input: DType) -> DType {
        match self {
            Stage::Threshold { .. } => DType::U8,
            Stage::Stencil(_) => DType::F32,
            Stage::Cast(d) => *d,
            Stage::Clip { .. } | Stage::Downsample { .. } | Stage::Upsample { .. } => input,
        }
    }

    /// The array shape this stage writes, given the one it reads.
    pub fn out_shape(&self, input: &[usize]) -> Vec<usize> {
        match self {
            Stage::Downsample { factor, .. } => input
                .iter()
                .zip(factor)
                .map(|(n, f)| n.div_ceil(*f))
                .collect(),
            Stage::Upsample { factor, .. } => {
                input.iter().zip(factor).map(|(n, f)| n * f).collect()
            }
            _ => input.to_vec(),
        }
    }

    /// The input indices, per axis, that the output indices `out` depend on, for an
    /// input array of shape `in_shape`. Indices past the edge are mapped through the
    /// boundary mode; the constant mode needs no input there.
    pub fn input_sets(&self, out: &[AxisSet], in_shape: &[usize]) -> Vec<AxisSet> {
        match self {
            Stage::Threshold { .. } | Stage::Clip { .. } | Stage::Cast(_) => out.to_vec(),
            Stage::Stencil(s) => (0..out.len())
                .map(|a| stencil_input(s, a, &out[a], in_shape[a]))
                .collect(),
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

    /// For a stencil stage, the padding each side of every axis that the output set
    /// `out` needs beyond an input axis of length `in_shape` (zero elsewhere).
    pub fn edge_padding(&self, out: &[AxisSet], in_shape: &[usize]) -> Vec<(usize, usize)> {
        match self {
            Stage::Stencil(s) => (0..out.len())
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

/// The two input indices (clamped to the axis) a linear upsample reads for output `o`.
pub(crate) fn linear_source(o: usize, f: usize, n: usize) -> (usize, usize) {
    let (i0, _) = linear_weights(o, f);
    let last = n as i64 - 1;
    (i0.clamp(0, last) as usize, (i0 + 1).clamp(0, last) as usize)
}

/// For output index `o` of a linear upsample by `f`: the lower source index (may be
/// -1) and the weight numerator `m` of the upper one; weights are `(2f - m, m) / 2f`.
pub(crate) fn linear_weights(o: usize, f: usize) -> (i64, i64) {
    // Source coordinate of the output pixel centre: (o + 0.5) / f - 0.5 = (2o + 1 - f) / 2f.
    let num = 2 * o as i64 + 1 - f as i64;
    let den = 2 * f as i64;
    (num.div_euclid(den), num.rem_euclid(den))
}

fn stencil_input(s: &Stencil, axis: usize, out: &AxisSet, n: usize) -> AxisSet {
    let taps = s.offsets(axis);
    if taps == (0..1) {
        return out.clone();
    }
    let mut ranges = Vec::new();
    for r in out.runs() {
        let lo = r.start as i64 + taps.start;
        let hi = r.end as i64 - 1 + taps.end; // exclusive
        let inside = lo.max(0)..hi.min(n as i64);
        if !inside.is_empty() {
            ranges.push(inside.start as usize..inside.end as usize);
        }
        let outside = (lo..hi.min(0)).chain(lo.max(n as i64)..hi);
        for i in outside {
            if let Some(j) = s.mode.map(i, n) {
                ranges.push(j..j + 1);
            }
        }
    }
    AxisSet::from_ranges(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stencil_1d(k: usize, centre: usize, mode: Mode) -> Stage {
        Stage::Stencil(Stencil {
            shape: vec![k],
            centre: vec![centre],
            weights: vec![1.0; k],
            mode,
            cval: 0.0,
        })
    }

    #[test]
    fn stencil_footprint_grows_by_the_halo_and_clamps() {
        let s = stencil_1d(5, 2, Mode::Reflect);
        let out = [AxisSet::from_range(4..8)];
        assert_eq!(s.input_sets(&out, &[20])[0], AxisSet::from_range(2..10));
        // At the edge, reflect needs only in-array data near the edge.
        let out = [AxisSet::from_range(0..3)];
        assert_eq!(s.input_sets(&out, &[20])[0], AxisSet::from_range(0..5));
        assert_eq!(s.edge_padding(&out, &[20]), vec![(2, 0)]);
    }

    #[test]
    fn wrap_footprint_reaches_the_far_side() {
        let s = stencil_1d(5, 2, Mode::Wrap);
        let out = [AxisSet::from_range(0..3)];
        assert_eq!(s.input_sets(&out, &[20])[0].runs(), &[0..5, 18..20]);
        let s = stencil_1d(5, 2, Mode::Constant);
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
