//! The CPU backend: one kernel per stage, each a twin of a shader in `shaders/`.
//!
//! Kernels read a [`Block`] that holds at least the indices the planner said they
//! need, and write a dense block over exactly the output indices asked for.

mod pointwise;
mod resample;
mod simd;
mod stencil;

use crate::block::BlockAny;
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
