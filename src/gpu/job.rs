//! A job's stages on the GPU: runs of device stages as device segments (see
//! `segment`), the other stages on the host with the CPU kernels; and the in-memory
//! driver, which keeps several jobs in flight from one thread.

use std::borrow::Cow;
use std::collections::VecDeque;

use super::context::GpuContext;
use super::placement::{all_on_device, device_input, fits, on_device, split};
use super::segment::{self, InFlight, SegmentInput, SegmentOutput};
use crate::block::{Block, BlockAny, paste};
use crate::cpu;
use crate::dtype::{match_any, with_dtype};
use crate::error::Result;
use crate::plan::{Job, Plan};
use crate::region::{AxisSet, Region};

/// Runs every stage of `job` (device stages on the GPU, see [`on_device`]), starting
/// from `source` (a block holding at least the job's footprint); returns the dense
/// output block. The calling thread waits for the device.
pub(crate) fn run_job(
    ctx: &GpuContext,
    plan: &Plan,
    job: &Job,
    source: &BlockAny<'_>,
) -> Result<BlockAny<'static>> {
    ctx.check_fault()?;
    if fits(ctx, plan, &job.sets) {
        return run_sets(ctx, plan, &job.sets, source, true);
    }
    let mut parts = Vec::new();
    split(ctx, plan, job.output.clone(), &mut parts);
    with_dtype!(plan.output_dtype(), U => {
        let mut data = vec![U::default(); job.output.len()];
        for (part, device) in parts {
            let sets = plan.sets_for(&part);
            let result = run_sets(ctx, plan, &sets, source, device)?;
            paste(&job.output, &part, &result.typed::<U>().data, &mut data);
        }
        let sets = job.sets.last().expect("non-empty").clone();
        Ok(Block::new(sets, Cow::Owned(data)).into_any())
    })
}

/// Runs the stages over the index sets `sets` (one list per stage input, then the
/// output): runs of consecutive device stages as one device segment each, the other
/// stages on the host.
fn run_sets(
    ctx: &GpuContext,
    plan: &Plan,
    sets: &[Vec<AxisSet>],
    source: &BlockAny<'_>,
    device: bool,
) -> Result<BlockAny<'static>> {
    let n = plan.stages().len();
    let mut current: Option<BlockAny<'static>> = None;
    let mut k = 0;
    while k < n {
        let input = current.as_ref().unwrap_or(source);
        let (next, end) = if device && on_device(plan, k) {
            let end = (k..n).find(|&e| !on_device(plan, e)).unwrap_or(n);
            let flight = start(ctx, plan, k, end, sets, input)?;
            (flight.finish(ctx, owned)?, end)
        } else {
            let stage = &plan.stages()[k];
            (
                cpu::run_stage(stage, input, &sets[k], &sets[k + 1], plan.shape_at(k)),
                k + 1,
            )
        };
        if let Some(done) = current.replace(next) {
            crate::block::recycle(done);
        }
        k = end;
    }
    Ok(current.expect("a plan has at least one stage"))
}

/// Starts device stages `k..end` with `input` (a block holding at least `sets[k]`)
/// gathered straight into staging memory.
fn start(
    ctx: &GpuContext,
    plan: &Plan,
    k: usize,
    end: usize,
    sets: &[Vec<AxisSet>],
    input: &BlockAny<'_>,
) -> Result<InFlight> {
    let to = device_input(plan, k);
    let fill = move |dst: wgpu::WriteOnly<'_, [u8]>| cpu::gather_bytes(input, &sets[k], to, dst);
    segment::start(
        ctx,
        plan,
        k..end,
        sets,
        SegmentInput::Host(Box::new(fill)),
        SegmentOutput::Host,
    )
}

/// An owned copy of a block borrowed from mapped memory.
fn owned(block: &BlockAny<'_>) -> BlockAny<'static> {
    match_any!(block, BlockAny, b => {
        Block::new(b.sets.clone(), Cow::Owned(b.data.to_vec())).into_any()
    })
}

/// Runs every job of `plan` on the device from `source` (the whole input), calling
/// `write(job's output region, output block)` for each, in job order. One thread drives
/// [`GpuContext::jobs_in_flight`] jobs at once: it gathers the next job's input
/// while earlier ones compute, and copies finished results out; gathers and copies
/// are spread over rayon's pool. Jobs that need the host (float64 stages) or do not
/// fit one binding run through [`run_job`].
pub(crate) fn run_jobs(
    ctx: &GpuContext,
    plan: &Plan,
    source: &BlockAny<'_>,
    write: &(dyn Fn(&Region, &BlockAny<'_>) + Sync),
) -> Result<()> {
    ctx.check_fault()?;
    let device_only = all_on_device(plan);
    let n = plan.stages().len();
    let mut flights: VecDeque<(Job, InFlight)> = VecDeque::new();
    let finish =
        |(job, flight): (Job, InFlight)| flight.finish(ctx, |block| write(&job.output, block));
    for i in 0..plan.num_jobs() {
        let job = plan.job(i);
        if device_only && fits(ctx, plan, &job.sets) {
            let flight = start(ctx, plan, 0, n, &job.sets, source)?;
            flights.push_back((job, flight));
            if flights.len() >= ctx.jobs_in_flight() {
                finish(flights.pop_front().expect("non-empty"))?;
            }
        } else {
            let result = run_job(ctx, plan, &job, source)?;
            write(&job.output, &result);
            crate::block::recycle(result);
        }
    }
    while let Some(flight) = flights.pop_front() {
        finish(flight)?;
    }
    Ok(())
}
