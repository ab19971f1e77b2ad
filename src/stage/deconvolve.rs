//! Richardson–Lucy deconvolution as one stage (scikit-image's `richardson_lucy`): its
//! two convolutions per iteration and the index sets each iteration reads and writes.

use crate::region::AxisSet;

use super::stencil::{Stencil, stencil_input};

/// Richardson–Lucy deconvolution: `iterations` times, `u ← u · (x / (u ⊛ psf + ε)) ⊛
/// psf*` from `u = 0.5`, each convolution scipy.signal's `mode='same'` (zero outside
/// the array), `ε = 1e-12`; ratios where `u ⊛ psf + ε < filter_epsilon` are 0; the
/// result clipped to `[-1, 1]` if `clip`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Deconvolution {
    /// The PSF as a correlation stencil (weights flipped, `same`'s centring, constant 0).
    pub psf: Stencil,
    /// The mirrored PSF, likewise (its weights are the PSF's as given).
    pub mirror: Stencil,
    /// Where the PSF is separable (a Gaussian is): its 1-D factors' stencils, `(psf,
    /// mirror)` per axis, whose passes in turn are its convolutions (empty where it is
    /// not).
    pub passes: Vec<(Stencil, Stencil)>,
    /// Iterations, at least 1.
    pub iterations: usize,
    /// Ratios where the blurred estimate is below this are 0 (`None`: never).
    pub filter_epsilon: Option<f32>,
    /// Clip the result to `[-1, 1]`.
    pub clip: bool,
    /// Approximate: each block deconvolved as an image of its own, its bounds grown by
    /// this much (clipped to the array), not by every iteration's halo.
    pub overlap: Option<usize>,
}

/// One iteration's index sets: the estimate it reads, the ratio it forms, the estimate
/// it writes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Iteration {
    pub estimate: Vec<AxisSet>,
    pub ratio: Vec<AxisSet>,
    pub next: Vec<AxisSet>,
}

impl Deconvolution {
    /// The iterations' index sets, first to last, for the output indices `out` of an
    /// array of `shape`: the last writes `out`; each reads the estimate where its
    /// ratio's blur needs it, and forms the ratio where the mirrored blur needs it.
    pub(crate) fn iterations(&self, out: &[AxisSet], shape: &[usize]) -> Vec<Iteration> {
        let grow = |s: &Stencil, sets: &[AxisSet]| -> Vec<AxisSet> {
            (0..sets.len())
                .map(|a| stencil_input(s, a, &sets[a], shape[a]))
                .collect()
        };
        let mut next = out.to_vec();
        let mut all = Vec::with_capacity(self.iterations);
        for _ in 0..self.iterations {
            let ratio = grow(&self.mirror, &next);
            // The estimate is read where the ratio's blur needs it; where it is
            // multiplied too, a subset (each stencil's centre is one of its taps).
            let estimate = grow(&self.psf, &ratio);
            all.push(Iteration {
                estimate: estimate.clone(),
                ratio,
                next,
            });
            next = estimate;
        }
        all.reverse();
        all
    }

    /// With an overlap, the box a block of output `out` is deconvolved in: its bounds
    /// grown by the overlap, clipped to the array of `shape`.
    pub(crate) fn window(
        &self,
        out: &[AxisSet],
        shape: &[usize],
    ) -> Option<Vec<std::ops::Range<usize>>> {
        let k = self.overlap?;
        Some(
            out.iter()
                .zip(shape)
                .map(|(s, &n)| {
                    let b = s.bounds();
                    b.start.saturating_sub(k)..(b.end + k).min(n)
                })
                .collect(),
        )
    }

    /// The input indices the output indices `out` need: the first iteration's estimate,
    /// which holds every later one's and every ratio (where the image is read); with an
    /// overlap, its window.
    pub(crate) fn input_sets(&self, out: &[AxisSet], shape: &[usize]) -> Vec<AxisSet> {
        if let Some(window) = self.window(out, shape) {
            return window.into_iter().map(AxisSet::from_range).collect();
        }
        let mut iterations = self.iterations(out, shape);
        iterations.swap_remove(0).estimate
    }
}
