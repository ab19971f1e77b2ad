//! The stencil stage: an N-D correlation with a boundary mode, what a Gaussian's
//! passes and `convolve` lower to, and the input indices it reads.

use crate::boundary::Boundary;
use crate::region::AxisSet;

/// An N-D correlation: `out[i] = Σ_j w[j] · x[mode(i + j - centre)]`, with f32 output.
///
/// `shape` has one extent per array axis (1 on axes the stencil does not touch).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Stencil {
    pub shape: Vec<usize>,
    pub centre: Vec<usize>,
    /// Correlation weights in C order over `shape`.
    pub weights: Vec<f32>,
    pub mode: Boundary,
    pub cval: f32,
}

impl Stencil {
    /// The taps on `axis`, as offsets from the output index.
    pub fn offsets(&self, axis: usize) -> std::ops::Range<i64> {
        let c = self.centre[axis] as i64;
        -c..self.shape[axis] as i64 - c
    }
}

/// The input indices along `axis` that the output indices `out` of `s` read, on an
/// axis of length `n` (taps beyond the edge mapped through the boundary mode).
pub(crate) fn stencil_input(s: &Stencil, axis: usize, out: &AxisSet, n: usize) -> AxisSet {
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
