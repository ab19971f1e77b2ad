//! Richardson–Lucy deconvolution on the CPU: each iteration's two convolutions by the
//! stencil kernel over the index sets `Deconvolution::iterations` gives, the ratio and
//! the product elementwise, all in f32 (scikit-image's float32 arithmetic).

use std::borrow::Cow;

use super::pointwise::map;
use super::stencil::stencil;
use crate::block::Block;
use crate::region::AxisSet;
use crate::stage::{Deconvolution, Stencil};

/// scikit-image's guard against dividing by zero.
const EPSILON: f32 = 1e-12;

/// `full`'s correlation of `input` at `out`, or, where the PSF is separable, its 1-D
/// `passes` in turn (each leaving the sets of the axes it has not yet reached as the
/// input's).
fn convolve<'s>(
    input: &Block<'_, f32>,
    out: &[AxisSet],
    shape: &[usize],
    full: &Stencil,
    passes: impl ExactSizeIterator<Item = &'s Stencil>,
) -> Block<'static, f32> {
    if passes.len() == 0 {
        return stencil(input, out, shape, full);
    }
    let mut current: Option<Block<'static, f32>> = None;
    for pass in passes {
        let from = current.as_ref().map_or(&input.sets, |b| &b.sets);
        let sets: Vec<AxisSet> = (0..out.len())
            .map(|a| {
                if pass.shape[a] > 1 {
                    out[a].clone()
                } else {
                    from[a].clone()
                }
            })
            .collect();
        let next = match &current {
            None => stencil(input, &sets, shape, pass),
            Some(b) => stencil(b, &sets, shape, pass),
        };
        current = Some(next);
    }
    let done = current.expect("at least one pass");
    if done.sets == out {
        return done;
    }
    // Axes no pass reached (1 in the PSF) keep the input's sets: cut them to `out`.
    map(&done, out, |x: f32| x)
}

/// The deconvolution of `image` (holding at least the stage's input sets) at the
/// output indices `out` of an array of `shape`.
pub(crate) fn deconvolve(
    image: &Block<'_, f32>,
    out: &[AxisSet],
    shape: &[usize],
    d: &Deconvolution,
) -> Block<'static, f32> {
    if let Some(window) = d.window(out, shape) {
        // The window as an image of its own: indices from 0, zero outside it.
        let local = |sets: &[AxisSet]| -> Vec<AxisSet> {
            sets.iter()
                .zip(&window)
                .map(|(s, w)| {
                    AxisSet::from_ranges(
                        s.runs().iter().map(|r| r.start - w.start..r.end - w.start),
                    )
                })
                .collect()
        };
        let whole: Vec<AxisSet> = window
            .iter()
            .map(|w| AxisSet::from_range(w.clone()))
            .collect();
        let mine = map(image, &whole, |x: f32| x);
        let moved = Block::new(local(&whole), mine.data);
        let exact = Deconvolution {
            overlap: None,
            ..d.clone()
        };
        let lens: Vec<usize> = window.iter().map(ExactSizeIterator::len).collect();
        let done = deconvolve(&moved, &local(out), &lens, &exact);
        return Block::new(out.to_vec(), done.data);
    }
    let iterations = d.iterations(out, shape);
    let first = &iterations[0].estimate;
    let len = |s: &[AxisSet]| s.iter().map(AxisSet::len).product::<usize>();
    let mut estimate = Block::new(first.clone(), Cow::Owned(vec![0.5f32; len(first)]));
    for it in &iterations {
        let blurred = convolve(
            &estimate,
            &it.ratio,
            shape,
            &d.psf,
            d.passes.iter().map(|p| &p.0),
        );
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
        let correction = convolve(
            &ratio,
            &it.next,
            shape,
            &d.mirror,
            d.passes.iter().map(|p| &p.1),
        );
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
