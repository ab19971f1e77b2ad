//! A segment's kernel launches: one per device stage, the pointwise stages right after
//! a stencil fused into its store, a sum of separable filters (Laplacian, gradient
//! magnitude) expanded into each term's passes and its accumulation.

use std::ops::Range;

use super::dispatch::{AXES, Dispatch, len, pad, pad_sets};
use super::geometry;
use super::nlmeans;
use super::pointwise;
use super::rank;
use super::resample;
use super::shader::Fused;
use super::stencil;
use crate::dtype::DType;
use crate::plan::Plan;
use crate::region::AxisSet;
use crate::stage::{Rank, Stage, Stencil, term_sets};

/// `st` with leading axes of extent 1 up to five axes.
pub(super) fn padded(st: &Stencil) -> Stencil {
    Stencil {
        shape: pad(&st.shape, 1),
        centre: pad(&st.centre, 0),
        ..st.clone()
    }
}

/// The kernel launch for device stage `k`, reading elements of `input` over `sets[k]`;
/// every per-axis quantity is padded to five axes.
pub(super) fn dispatch(plan: &Plan, k: usize, input: DType, sets: &[Vec<AxisSet>]) -> Dispatch {
    let count = len(&sets[k + 1]) as u32;
    let (in_sets, out) = (&pad_sets(&sets[k]), &pad_sets(&sets[k + 1]));
    let in_shape = &pad(plan.shape_at(k), 1);
    match &plan.stages()[k] {
        Stage::Threshold { above } => pointwise::threshold(input, *above, count),
        Stage::Clip { min, max } => pointwise::clip(input, *min, *max, count),
        Stage::Cast(_) => pointwise::cast(count),
        Stage::Normalize { low, high, clip } => pointwise::normalize(*low, *high, *clip, count),
        Stage::Anscombe(v) => pointwise::anscombe(v, false, count),
        Stage::InverseAnscombe(v) => pointwise::anscombe(v, true, count),
        Stage::Stencil(st) => stencil::stencil(&padded(st), in_sets, out, in_shape),
        Stage::Derivatives { .. } => unreachable!("expanded by `launches`"),
        Stage::Deconvolve(_) => unreachable!("deconvolution runs on the host"),
        Stage::Geometric(g) => geometry::geometric(
            g,
            in_sets,
            out,
            plan.shape_at(k),
            input,
            plan.dtype_at(k + 1),
        ),
        Stage::NlMeans(nl) => nlmeans::nl_means(nl, in_sets, out, in_shape),
        Stage::Project { axis, method } => pointwise::project(
            in_sets,
            out,
            axis + (AXES - plan.shape_at(k).len()),
            *method,
        ),
        Stage::Rank(r) => {
            let r = Rank {
                window: padded(&r.window),
                ..r.clone()
            };
            rank::rank(&r, in_sets, out, in_shape, input)
        }
        Stage::Downsample { factor, method } => {
            resample::downsample(in_sets, out, in_shape, &pad(factor, 1), *method)
        }
        Stage::Upsample { factor, method } => {
            resample::upsample(in_sets, out, in_shape, &pad(factor, 1), *method)
        }
    }
}

/// The pointwise stages after stencil `k` (before `end`) that can be fused into its
/// store: clips of its f32 result, then at most one threshold or cast, each over the
/// same indices.
pub(super) fn fusable(plan: &Plan, k: usize, end: usize, sets: &[Vec<AxisSet>]) -> Vec<Fused> {
    let mut fused = Vec::new();
    if !matches!(plan.stages()[k], Stage::Stencil(_)) {
        return fused;
    }
    for j in k + 1..end {
        if sets[j + 1] != sets[k + 1] {
            break;
        }
        match &plan.stages()[j] {
            Stage::Clip { min, max } => {
                let (lo, hi) = pointwise::clip_bounds(DType::F32, *min, *max);
                fused.push(Fused::Clip { lo, hi });
            }
            Stage::Threshold { above } => {
                let (always, above) = pointwise::threshold_in(DType::F32, *above);
                fused.push(Fused::Threshold { always, above });
                break;
            }
            Stage::Cast(_) => {
                fused.push(Fused::Cast);
                break;
            }
            _ => break,
        }
    }
    fused
}

/// What a launch reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Reads {
    /// The previous launch's output (or the segment's input, for the first).
    Previous,
    /// The input of its stage (a sum of separable filters: each term's first pass).
    StageInput,
}

/// Where a launch writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Writes {
    /// A fresh buffer, the next launch's input.
    Fresh,
    /// Its stage's accumulator, read and written in place (created by the first term).
    Accumulator {
        /// The first term's launch: the accumulator is created.
        first: bool,
        /// The last term's launch: the accumulator becomes the stage's output.
        last: bool,
    },
}

/// One kernel launch of a segment: most stages are one; a sum of separable filters is
/// each term's 1-D passes and its accumulation.
pub(super) struct Launch {
    /// The plan stage it belongs to.
    pub(super) stage: usize,
    pub(super) dispatch: Dispatch,
    /// Elements it reads, and their type; the type it writes.
    pub(super) in_len: usize,
    pub(super) in_dtype: DType,
    pub(super) out_dtype: DType,
    pub(super) reads: Reads,
    pub(super) writes: Writes,
}

/// The launches of a sum of separable filters (stage `k`, reading `input` elements over
/// `sets[k]`): per term, its 1-D passes (the first reading the stage's input, each next
/// one the previous pass), then its accumulation into the stage's output, in the
/// CPU's order.
pub(super) fn derivatives(
    plan: &Plan,
    k: usize,
    input: DType,
    sets: &[Vec<AxisSet>],
    terms: &[Vec<Stencil>],
    magnitude: bool,
) -> Vec<Launch> {
    let in_shape = plan.shape_at(k);
    let out = &sets[k + 1];
    let count = len(out);
    let mut launches = Vec::new();
    for (t, term) in terms.iter().enumerate() {
        let term_sets = term_sets(term, out, in_shape);
        for (j, st) in term.iter().enumerate() {
            let in_sets = if j == 0 { &sets[k] } else { &term_sets[j] };
            launches.push(Launch {
                stage: k,
                dispatch: stencil::stencil(
                    &padded(st),
                    &pad_sets(in_sets),
                    &pad_sets(&term_sets[j + 1]),
                    &pad(in_shape, 1),
                ),
                in_len: len(in_sets),
                in_dtype: if j == 0 { input } else { DType::F32 },
                out_dtype: DType::F32,
                reads: if j == 0 {
                    Reads::StageInput
                } else {
                    Reads::Previous
                },
                writes: Writes::Fresh,
            });
        }
        let last = t + 1 == terms.len();
        launches.push(Launch {
            stage: k,
            dispatch: pointwise::accumulate(count as u32, t == 0, magnitude, magnitude && last),
            in_len: count,
            in_dtype: DType::F32,
            out_dtype: DType::F32,
            reads: Reads::Previous,
            writes: Writes::Accumulator {
                first: t == 0,
                last,
            },
        });
    }
    launches
}

/// The launches of device stages `range` of `plan` over `sets`, its input of element
/// type `input`: one per stage, the pointwise stages right after a stencil fused into
/// its store, a sum of separable filters expanded into its terms' passes; and the type
/// of the last launch's output.
pub(super) fn launches(
    plan: &Plan,
    range: Range<usize>,
    sets: &[Vec<AxisSet>],
    input: DType,
) -> (Vec<Launch>, DType) {
    let mut launches: Vec<Launch> = Vec::with_capacity(range.len());
    let mut dtype = input;
    let mut k = range.start;
    while k < range.end {
        if let Stage::Derivatives { terms, magnitude } = &plan.stages()[k] {
            launches.extend(derivatives(plan, k, dtype, sets, terms, *magnitude));
            dtype = DType::F32;
            k += 1;
            continue;
        }
        let mut d = dispatch(plan, k, dtype, sets);
        // Pointwise stages right after a stencil are fused into its store.
        let fused = fusable(plan, k, range.end, sets);
        let last = k + fused.len();
        let out_dtype = plan.dtype_at(last + 1);
        if !fused.is_empty() {
            d = d.with_fused(fused, out_dtype);
        }
        launches.push(Launch {
            stage: k,
            dispatch: d,
            in_len: len(&sets[k]),
            in_dtype: dtype,
            out_dtype,
            reads: Reads::Previous,
            writes: Writes::Fresh,
        });
        dtype = out_dtype;
        k = last + 1;
    }
    (launches, dtype)
}
