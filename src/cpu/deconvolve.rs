//! Richardson–Lucy deconvolution on the CPU: each iteration's two convolutions by the
//! stencil kernel over the index sets `Deconvolution::iterations` gives, the ratio and
//! the product elementwise, all in f32 (scikit-image's float32 arithmetic).

use std::borrow::Cow;
use std::ops::Range;

use rayon::prelude::*;

use super::fft::{FftFrame, Spectrum, row_offsets};
use super::pointwise::map;
use super::stencil::stencil;
use crate::block::Block;
use crate::region::AxisSet;
use crate::stage::{Deconvolution, Iteration, Stencil};

/// scikit-image's guard against dividing by zero.
const EPSILON: f32 = 1e-12;

/// scikit-image's ratio of the observed value `x` to the blurred estimate `b`: `x / (b
/// + ε)`, 0 where `b + ε` is below `filter_epsilon`.
fn ratio_of(x: f32, b: f32, filter_epsilon: Option<f32>) -> f32 {
    let b = b + EPSILON;
    match filter_epsilon {
        Some(e) if b < e => 0.0,
        _ => x / b,
    }
}

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

/// Richardson–Lucy by FFT correlations over one frame, the first iteration's estimate:
/// every array in the frame's layout, each allocated once.
struct Transform {
    /// The frame's first index per axis.
    origin: Vec<usize>,
    frame: FftFrame,
    psf: Spectrum,
    mirror: Spectrum,
}

impl Transform {
    /// The transform for `iterations` of `d`, where its PSF is not separable, every
    /// index set is one box, and the FFT costs less than the stencil would.
    fn new(iterations: &[Iteration], d: &Deconvolution) -> Option<Self> {
        if !d.passes.is_empty() {
            return None;
        }
        let boxes = iterations.iter().all(|it| {
            [&it.estimate, &it.ratio, &it.next]
                .iter()
                .all(|sets| sets.iter().all(|s| s.runs().len() == 1))
        });
        if !boxes {
            return None;
        }
        let first = &iterations[0].estimate;
        let lens: Vec<usize> = first.iter().map(AxisSet::len).collect();
        let frame = FftFrame::new(&lens, &[&d.psf, &d.mirror]);
        let len = |s: &[AxisSet]| s.iter().map(AxisSet::len).product::<usize>() as f64;
        let taps = d.psf.weights.len() as f64;
        let direct: f64 = iterations
            .iter()
            .map(|it| (len(&it.ratio) + len(&it.next)) * taps)
            .sum();
        if 2.0 * iterations.len() as f64 * frame.cost() >= direct {
            return None;
        }
        Some(Self::on(frame, first, d))
    }

    /// The transform over `frame`, of the box `first`, for `d`'s PSF.
    fn on(frame: FftFrame, first: &[AxisSet], d: &Deconvolution) -> Self {
        Transform {
            origin: first.iter().map(|s| s.bounds().start).collect(),
            psf: frame.spectrum(&d.psf),
            mirror: frame.spectrum(&d.mirror),
            frame,
        }
    }

    /// The box of `sets` in frame coordinates.
    fn local(&self, sets: &[AxisSet]) -> Vec<Range<usize>> {
        sets.iter()
            .zip(&self.origin)
            .map(|(s, &o)| s.bounds().start - o..s.bounds().end - o)
            .collect()
    }

    /// The iterations on `image` (holding the frame), and the estimate at `out`.
    fn run(
        &self,
        image: &Block<'_, f32>,
        iterations: &[Iteration],
        out: &[AxisSet],
        d: &Deconvolution,
    ) -> Block<'static, f32> {
        let whole = &iterations[0].estimate;
        let extents: Vec<usize> = whole.iter().map(AxisSet::len).collect();
        let observed = map(image, whole, |x: f32| x);
        let mut estimate = vec![0.5f32; observed.data.len()];
        let mut ratio = vec![0f32; estimate.len()];
        let mut correction = vec![0f32; estimate.len()];
        let mut spec = Vec::new();
        for it in iterations {
            let held = self.local(&it.estimate);
            let at = self.local(&it.ratio);
            self.frame
                .correlate(&estimate, &held, &self.psf, &at, &mut ratio, &mut spec);
            rows(&mut ratio, &extents, &at, |i, blurred| {
                for (b, &x) in blurred.iter_mut().zip(&observed.data[i..]) {
                    *b = ratio_of(x, *b, d.filter_epsilon);
                }
            });
            let next = self.local(&it.next);
            self.frame
                .correlate(&ratio, &at, &self.mirror, &next, &mut correction, &mut spec);
            rows(&mut estimate, &extents, &next, |i, u| {
                u.iter_mut()
                    .zip(&correction[i..])
                    .for_each(|(u, c)| *u *= c);
            });
        }
        let done = Block::new(whole.to_vec(), Cow::Owned(estimate));
        map(&done, out, |x: f32| x)
    }
}

/// Calls `f(offset, row)` on every row of the box `ranges` of `data` (an array of
/// `extents`, C order), `offset` the row's first element's in `data`, in parallel.
fn rows(
    data: &mut [f32],
    extents: &[usize],
    ranges: &[Range<usize>],
    f: impl Fn(usize, &mut [f32]) + Sync,
) {
    let nd = extents.len();
    let last = ranges[nd - 1].clone();
    let inside = row_offsets(&extents[..nd - 1], &ranges[..nd - 1], &extents[..nd - 1]);
    data.par_chunks_mut(extents[nd - 1])
        .zip(inside)
        .enumerate()
        .for_each(|(r, (row, inside))| {
            if inside.is_some() {
                f(r * extents[nd - 1] + last.start, &mut row[last.clone()]);
            }
        });
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
    let estimate = match Transform::new(&iterations, d) {
        Some(t) => t.run(image, &iterations, out, d),
        None => direct(image, &iterations, shape, d),
    };
    if d.clip {
        // scikit-image's `u[u > 1] = 1; u[u < -1] = -1` (NaN stays NaN, as in clamp).
        let clipped = estimate.data.iter().map(|&u| u.clamp(-1.0, 1.0)).collect();
        return Block::new(estimate.sets.clone(), Cow::Owned(clipped));
    }
    estimate
}

/// The iterations by the stencil kernel (or its separable passes) over the index sets
/// each needs.
fn direct(
    image: &Block<'_, f32>,
    iterations: &[Iteration],
    shape: &[usize],
    d: &Deconvolution,
) -> Block<'static, f32> {
    let first = &iterations[0].estimate;
    let len = |s: &[AxisSet]| s.iter().map(AxisSet::len).product::<usize>();
    let mut estimate = Block::new(first.clone(), Cow::Owned(vec![0.5f32; len(first)]));
    for it in iterations {
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
            .map(|(&b, &x)| ratio_of(x, b, d.filter_epsilon))
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
    estimate
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Kernel;

    /// The FFT's iterations equal the stencil's where the frame's edges lie inside the
    /// array (its zeros there are wrong, and nothing the output needs may see them)
    /// and where they are the array's (its zeros are scikit-image's).
    #[test]
    fn fft_iterations_equal_the_stencils() {
        let shape = [12usize, 30, 34];
        let n: usize = shape.iter().product();
        let image: Vec<f32> = (0..n)
            .map(|i| 50.0 + 40.0 * ((i * 7919 % 1009) as f32 / 1009.0))
            .collect();
        let whole: Vec<AxisSet> = shape.iter().map(|&n| AxisSet::from_range(0..n)).collect();
        let image = Block::new(whole, Cow::Owned(image));
        // A PSF that is not separable.
        let weights: Vec<f64> = (0..125).map(|i| 1.0 + ((i * 37) % 11) as f64).collect();
        let total: f64 = weights.iter().sum();
        let psf = Kernel::new(vec![5, 5, 5], weights.iter().map(|w| w / total).collect());
        assert!(psf.separable_factors().is_none());
        let (stencil, mirror) = psf.same_stencils(3).unwrap();
        let d = Deconvolution {
            psf: stencil,
            mirror,
            passes: Vec::new(),
            iterations: 2,
            filter_epsilon: Some(1e-3),
            clip: false,
            overlap: None,
        };
        for out in [
            [4..8, 12..18, 13..20],
            [0..12, 0..30, 0..34],
            [9..12, 25..30, 0..3],
        ] {
            let out: Vec<AxisSet> = out.into_iter().map(AxisSet::from_range).collect();
            let iterations = d.iterations(&out, &shape);
            let first = &iterations[0].estimate;
            let lens: Vec<usize> = first.iter().map(AxisSet::len).collect();
            let t = Transform::on(FftFrame::new(&lens, &[&d.psf, &d.mirror]), first, &d);
            let got = t.run(&image, &iterations, &out, &d);
            let want = direct(&image, &iterations, &shape, &d);
            assert_eq!(got.sets, want.sets);
            let range = want.data.iter().fold(0f32, |m, &w| m.max(w.abs()));
            for (g, w) in got.data.iter().zip(want.data.iter()) {
                assert!((g - w).abs() <= 1e-5 * range, "{g} vs {w}");
            }
        }
    }
}
