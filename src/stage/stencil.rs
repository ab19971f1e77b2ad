//! The stencil stage: an N-D correlation with a boundary mode, what a Gaussian's
//! passes and `convolve` lower to, and the input indices it reads.

use crate::boundary::Boundary;
use crate::region::AxisSet;

/// An N-D correlation: `out[i] = Σ_j w[j] · x[mode(i + j - centre)]`, computed in
/// float64 on float64 input (on the CPU) and in float32 on any other.
///
/// `shape` has one extent per array axis (1 on axes the stencil does not touch).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Stencil {
    pub shape: Vec<usize>,
    pub centre: Vec<usize>,
    /// Correlation weights in C order over `shape`, rounded to f32 (what the float32
    /// kernels and the device read) as [`round_weights`] rounds them.
    pub weights: Vec<f32>,
    pub mode: Boundary,
    /// `cval` rounded to f32.
    pub cval: f32,
    /// The weights as given, for the float64 kernels.
    pub weights64: Vec<f64>,
    /// `cval` as given.
    pub cval64: f64,
}

impl Stencil {
    /// A stencil from its weights and `cval` as given (float64), keeping their f32
    /// roundings beside them.
    pub fn new(
        shape: Vec<usize>,
        centre: Vec<usize>,
        weights: Vec<f64>,
        mode: Boundary,
        cval: f64,
    ) -> Self {
        Stencil {
            shape,
            centre,
            weights: round_weights(&weights),
            mode,
            cval: cval as f32,
            weights64: weights,
            cval64: cval,
        }
    }

    /// The same stencil with other weights (as given, float64).
    pub fn with_weights(&self, weights: Vec<f64>) -> Self {
        Stencil::new(
            self.shape.clone(),
            self.centre.clone(),
            weights,
            self.mode,
            self.cval64,
        )
    }

    /// The taps on `axis`, as offsets from the output index.
    pub fn offsets(&self, axis: usize) -> std::ops::Range<i64> {
        let c = self.centre[axis] as i64;
        -c..self.shape[axis] as i64 - c
    }
}

/// `weights` rounded to f32 so that their sum stays the exact weights' sum: each is
/// rounded to nearest, then the largest to the smallest (zeros kept) take up in turn
/// what the sum has drifted, so that it ends within half a unit in the last place of
/// the smallest. A filter whose weights sum to one (a Gaussian, a mean) then keeps an
/// image's mean in float32 too: rounded one by one, a Gaussian's 9 weights sum to
/// 1 + 2e-8, which biases the sum of a 10⁴-pixel image near 5·10⁷ by 2 over two passes.
fn round_weights(weights: &[f64]) -> Vec<f32> {
    let mut rounded: Vec<f32> = weights.iter().map(|&w| w as f32).collect();
    let target: f64 = weights.iter().sum();
    if !target.is_finite() {
        return rounded;
    }
    let mut sum: f64 = rounded.iter().map(|&w| f64::from(w)).sum();
    let mut order: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] != 0.0).collect();
    order.sort_by(|&a, &b| weights[b].abs().total_cmp(&weights[a].abs()));
    for i in order {
        let drift = target - sum;
        if drift == 0.0 {
            break;
        }
        let old = f64::from(rounded[i]);
        rounded[i] = (old + drift) as f32;
        sum += f64::from(rounded[i]) - old;
    }
    rounded
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Rounded weights keep the exact weights' sum far closer than rounding each alone
    /// does, stay within a rounding of the largest weight, and keep zeros and exact
    /// values.
    #[test]
    fn rounded_weights_keep_their_sum() {
        let gaussian: Vec<f64> = {
            let w: Vec<f64> = (-4..=4).map(|i| (-0.5 * f64::from(i * i)).exp()).collect();
            let total: f64 = w.iter().sum();
            w.iter().map(|v| v / total).collect()
        };
        let each: f64 = gaussian.iter().map(|&w| f64::from(w as f32)).sum();
        let rounded = round_weights(&gaussian);
        let kept: f64 = rounded.iter().map(|&w| f64::from(w)).sum();
        let target: f64 = gaussian.iter().sum();
        assert!(
            (each - target).abs() > 1e-8,
            "one by one they drift: {each}"
        );
        assert!((kept - target).abs() < 1e-11, "{kept} against {target}");
        // Each within a rounding of the largest weight.
        let ulp = gaussian.iter().copied().fold(0.0, f64::max) * f64::from(f32::EPSILON);
        for (&r, &w) in rounded.iter().zip(&gaussian) {
            assert!((f64::from(r) - w).abs() <= ulp, "{r} against {w}");
        }
        let exact = [0.0, 1.0, 0.5, 0.0, -0.25];
        assert_eq!(round_weights(&exact), vec![0.0, 1.0, 0.5, 0.0, -0.25]);
    }
}
