//! Richardson–Lucy deconvolution on the CPU: each iteration's two convolutions by the
//! stencil kernel over the index sets `Deconvolution::iterations` gives, the ratio and
//! the product elementwise, all in f32 (scikit-image's float32 arithmetic).

use std::borrow::Cow;

use super::pointwise::map;
use super::stencil::stencil;
use crate::block::Block;
use crate::region::AxisSet;
use crate::stage::Deconvolution;

/// scikit-image's guard against dividing by zero.
const EPSILON: f32 = 1e-12;

/// The deconvolution of `image` (holding at least the stage's input sets) at the
/// output indices `out` of an array of `shape`.
pub(crate) fn deconvolve(
    image: &Block<'_, f32>,
    out: &[AxisSet],
    shape: &[usize],
    d: &Deconvolution,
) -> Block<'static, f32> {
    let iterations = d.iterations(out, shape);
    let first = &iterations[0].estimate;
    let len = |s: &[AxisSet]| s.iter().map(AxisSet::len).product::<usize>();
    let mut estimate = Block::new(first.clone(), Cow::Owned(vec![0.5f32; len(first)]));
    for it in &iterations {
        let blurred = stencil(&estimate, &it.ratio, shape, &d.psf);
        let observed = map(image, &it.ratio, |x: f32| x);
        let ratio: Vec<f32> = blurred
            .data
            .iter()
            .zip(observed.data.iter())
            .map(|(&b, &x)| {
                let b = b + EPSILON;
                match d.filter_epsilon {
                    Some(e) if b < e => 0.0,
                    _ => x / b,
                }
            })
            .collect();
        let ratio = Block::new(it.ratio.clone(), Cow::Owned(ratio));
        let correction = stencil(&ratio, &it.next, shape, &d.mirror);
        let kept = map(&estimate, &it.next, |x: f32| x);
        let next: Vec<f32> = kept
            .data
            .iter()
            .zip(correction.data.iter())
            .map(|(&u, &c)| u * c)
            .collect();
        estimate = Block::new(it.next.clone(), Cow::Owned(next));
    }
    if d.clip {
        // scikit-image's `u[u > 1] = 1; u[u < -1] = -1` (NaN stays NaN, as in clamp).
        let clipped = estimate.data.iter().map(|&u| u.clamp(-1.0, 1.0)).collect();
        estimate = Block::new(estimate.sets.clone(), Cow::Owned(clipped));
    }
    estimate
}
