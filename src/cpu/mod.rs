//! The CPU backend: one kernel per stage, each a twin of a shader in `shaders/`.
//!
//! Kernels read a [`Block`] that holds at least the indices the planner said they
//! need, and write a dense block over exactly the output indices asked for.

mod pointwise;
mod resample;
mod simd;
mod stencil;

use crate::block::{Block, BlockAny};
use crate::dtype::{Element, match_any};
use crate::plan::{Job, Plan};
use crate::region::AxisSet;
use crate::stage::Stage;

/// Runs one stage on the CPU: from `input` (an array of `in_shape` at this stage)
/// to a dense block over `out`.
pub(crate) fn run_stage(
    stage: &Stage,
    input: &BlockAny<'_>,
    out: &[AxisSet],
    in_shape: &[usize],
) -> BlockAny<'static> {
    match stage {
        Stage::Threshold { above } => match_any!(input, BlockAny, b => {
            pointwise::map(b, out, |x| u8::from(x.to_f64() > *above)).into_any()
        }),
        Stage::Clip { min, max } => {
            match_any!(input, BlockAny, b => pointwise::clip(b, out, *min, *max).into_any())
        }
        Stage::Cast(d) => match_any!(input, BlockAny, b => pointwise::cast(b, out, *d)),
        Stage::Stencil(s) => {
            let result = match input {
                BlockAny::F32(b) => stencil::stencil(b, out, in_shape, s),
                other => {
                    match_any!(other, BlockAny, b => stencil::stencil(&b.map(Element::to_f32), out, in_shape, s))
                }
            };
            result.into_any()
        }
        Stage::Downsample { factor, method } => match_any!(input, BlockAny, b => {
            resample::downsample(b, out, in_shape, factor, *method).into_any()
        }),
        Stage::Upsample { factor, method } => match_any!(input, BlockAny, b => {
            resample::upsample(b, out, in_shape, factor, *method).into_any()
        }),
    }
}

/// A dense copy of `input` over exactly `sets` (a subset of what it holds).
pub(crate) fn gather(input: &BlockAny<'_>, sets: &[AxisSet]) -> BlockAny<'static> {
    match_any!(input, BlockAny, b => pointwise::map(b, sets, |x| x).into_any())
}

/// Calls `f(index, row)` for every row (multi-index over all axes but the last) of an
/// array whose leading extents are `outer`, in C order; `row` is the row's C-order number.
pub(crate) fn for_each_row(outer: &[usize], f: impl FnMut(&[usize], usize)) {
    let order: Vec<usize> = (0..outer.len()).collect();
    for_each_row_in(outer, &order, f);
}

/// Like [`for_each_row`], visiting the axes in `order` (a permutation; its last axis
/// varies fastest). A stencil puts its own axis last so that consecutive rows share
/// their input rows while those are still in cache.
pub(crate) fn for_each_row_in(
    outer: &[usize],
    order: &[usize],
    mut f: impl FnMut(&[usize], usize),
) {
    let strides = crate::block::c_strides(outer);
    let total: usize = outer.iter().product();
    let mut index = vec![0; outer.len()];
    let mut row = 0;
    for _ in 0..total {
        f(&index, row);
        for &a in order.iter().rev() {
            index[a] += 1;
            row += strides[a];
            if index[a] < outer[a] {
                break;
            }
            row -= strides[a] * outer[a];
            index[a] = 0;
        }
    }
}

/// Per axis but the last: the element offset into `input` of each output index in `out`.
fn outer_offsets<T: Element>(input: &Block<'_, T>, out: &[AxisSet]) -> Vec<Vec<usize>> {
    (0..out.len() - 1)
        .map(|a| input.offsets(a, &out[a]))
        .collect()
}

/// The input offset of the row at `index`, given per-axis offsets.
fn row_offset(offsets: &[Vec<usize>], index: &[usize]) -> usize {
    offsets.iter().zip(index).map(|(o, &i)| o[i]).sum()
}

/// Runs every stage of `job` on the CPU, starting from `source` (a block holding at
/// least the job's footprint); returns the dense output block.
pub(crate) fn run_job(plan: &Plan, job: &Job, source: &BlockAny<'_>) -> BlockAny<'static> {
    let mut current: Option<BlockAny<'static>> = None;
    for (k, stage) in plan.stages().iter().enumerate() {
        let input = current.as_ref().unwrap_or(source);
        let next = run_stage(stage, input, &job.sets[k + 1], plan.shape_at(k));
        if let Some(done) = current.replace(next) {
            crate::block::recycle(done);
        }
    }
    current.expect("a plan has at least one stage")
}
