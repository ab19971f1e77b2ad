//! The CPU backend: one kernel per stage, each a twin of a shader in `shaders/`.
//! (Layer: the kernels; see the layer map in `docs/ARCHITECTURE.md`.)
//!
//! Kernels read a [`Block`] that holds at least the indices the planner said they
//! need, and write a dense block over exactly the output indices asked for.

mod deconvolve;
mod derivatives;
mod fft;
mod geometry;
pub(crate) mod label;
mod median27;
mod nlmeans;
mod pointwise;
mod project;

pub(crate) use pointwise::normalize_denominator;
mod rank;
mod resample;
mod simd;
mod smooth_down;
mod spline;
mod stencil;
mod streamed;
mod trilinear;

use wgpu::WriteOnly;

use crate::block::BlockAny;
use crate::dtype::{DType, Element, match_any, with_dtype};
use crate::plan::{Job, Plan};
use crate::region::{AxisSet, Region};
use crate::stage::{Stage, Stencil};

/// Runs one stage on the CPU: from `input` (an array of `in_shape` at this stage,
/// holding at least the indices `needs`) to a dense block over `out`.
pub(crate) fn run_stage(
    stage: &Stage,
    input: &BlockAny<'_>,
    needs: &[AxisSet],
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
        Stage::Normalize { low, high, clip } => match_any!(input, BlockAny, b => {
            pointwise::map(b, out, |x| pointwise::normalize(x.to_f32(), *low, *high, *clip)).into_any()
        }),
        Stage::Deconvolve(d) => with_f32(input, needs, |b| {
            deconvolve::deconvolve(b, out, in_shape, d)
        })
        .into_any(),
        Stage::NlMeans(nl) => {
            with_f32(input, needs, |b| nlmeans::nl_means(b, out, in_shape, nl)).into_any()
        }
        Stage::Anscombe(v) => match_any!(input, BlockAny, b => {
            let constants = v.forward();
            pointwise::map(b, out, |x| pointwise::anscombe(x.to_f32(), constants)).into_any()
        }),
        Stage::InverseAnscombe(v) => match_any!(input, BlockAny, b => {
            let constants = v.inverse();
            pointwise::map(b, out, |x| pointwise::inverse_anscombe(x.to_f32(), constants)).into_any()
        }),
        Stage::Stencil(s) => match input {
            BlockAny::F64(b) => stencil::stencil(b, out, in_shape, s).into_any(),
            _ => with_f32(input, needs, |b| stencil::stencil(b, out, in_shape, s)).into_any(),
        },
        Stage::Derivatives { terms, magnitude } => match input {
            BlockAny::F64(b) => {
                derivatives::derivatives(b, out, in_shape, terms, *magnitude).into_any()
            }
            _ => with_f32(input, needs, |b| {
                derivatives::derivatives(b, out, in_shape, terms, *magnitude)
            })
            .into_any(),
        },
        Stage::Project { axis, method } => {
            let to = method.out_dtype(input.dtype());
            match_any!(input, BlockAny, b => with_dtype!(to, U => {
                project::project::<_, U>(b, out, *axis, *method).into_any()
            }))
        }
        Stage::Rank(r) => {
            match_any!(input, BlockAny, b => rank::rank(b, out, in_shape, r).into_any())
        }
        Stage::Downsample { factor, method } => match_any!(input, BlockAny, b => {
            resample::downsample(b, out, in_shape, factor, *method).into_any()
        }),
        Stage::Upsample { factor, method } => match_any!(input, BlockAny, b => {
            resample::upsample(b, out, in_shape, factor, *method).into_any()
        }),
        Stage::Geometric(g) => match_any!(input, BlockAny, b => {
            geometry::transform(b, needs, out, in_shape, g).into_any()
        }),
    }
}

/// The values of `input` at exactly `needs`, as f32: a stage that computes in f32
/// converts what it reads, not the whole block it is given (the caller's whole array,
/// in memory).
fn to_f32(input: &BlockAny<'_>, needs: &[AxisSet]) -> crate::block::Block<'static, f32> {
    match_any!(input, BlockAny, b => pointwise::map(b, needs, Element::to_f32))
}

/// `f` on `input` as f32: the block itself where it holds f32, else its values at
/// `needs` converted ([`to_f32`]).
fn with_f32<R>(
    input: &BlockAny<'_>,
    needs: &[AxisSet],
    f: impl FnOnce(&crate::block::Block<'_, f32>) -> R,
) -> R {
    match input {
        BlockAny::F32(b) => f(b),
        other => f(&to_f32(other, needs)),
    }
}

/// Writes `input` over exactly `sets` (a subset of what it holds), in C order, into
/// `dst` as elements of `to`: its own type, or f32 for a float64 input (what a device
/// stencil reads). Spread over rayon's pool.
pub(crate) fn gather_bytes(
    input: &BlockAny<'_>,
    sets: &[AxisSet],
    to: DType,
    dst: WriteOnly<'_, [u8]>,
) {
    fn typed<T: Element, U: Element + bytemuck::Pod>(
        b: &crate::block::Block<'_, T>,
        sets: &[AxisSet],
        mut dst: WriteOnly<'_, [u8]>,
        f: impl Fn(T) -> U + Sync,
    ) {
        let size = std::mem::size_of::<U>();
        let ptr = dst.as_raw_element_ptr();
        if ptr.as_ptr().align_offset(std::mem::align_of::<U>()) == 0
            && dst.len().is_multiple_of(size)
        {
            // SAFETY: the pointer is aligned for U and spans len / size whole elements of
            // the same memory; every bit pattern of those bytes is a u8, and U is plain
            // old data, so writing U values leaves valid u8s. `dst` is consumed.
            let typed = unsafe {
                WriteOnly::new(std::ptr::NonNull::slice_from_raw_parts(
                    ptr.cast::<U>(),
                    dst.len() / size,
                ))
            };
            pointwise::gather_into(b, sets, typed, f);
        } else {
            let mut v = vec![U::default(); dst.len() / size];
            pointwise::gather_into(b, sets, WriteOnly::from_mut(&mut v[..]), f);
            dst.copy_from_slice(bytemuck::cast_slice(&v));
        }
    }
    match (input, to) {
        (BlockAny::F64(b), DType::F32) => typed(b, sets, dst, |x: f64| x as f32),
        _ => {
            assert_eq!(input.dtype(), to, "a gather converts float64 to f32 only");
            match_any!(input, BlockAny, b => typed(b, sets, dst, |x| x))
        }
    }
}

/// The axis of a stencil that extends along exactly one axis (a 1-D pass), if it does.
fn one_axis(st: &Stencil) -> Option<usize> {
    let mut along = (0..st.shape.len()).filter(|&a| st.shape[a] > 1);
    let a = along.next()?;
    along.next().is_none().then_some(a)
}

/// The axis along which the stages' first passes are streamed plane by plane, if they
/// are ([`streamed::Streamed`]).
pub(crate) fn streamed_axis(stages: &[Stage]) -> Option<usize> {
    streamed::Streamed::starting(stages).map(|run| run.axis())
}

/// The stencil passes from stage `k` of `job` streamed plane by plane
/// ([`streamed::Streamed`]), with the number of stages they replace, where they can be.
fn streamed(
    plan: &Plan,
    job: &Job,
    k: usize,
    input: &BlockAny<'_>,
) -> Option<(BlockAny<'static>, usize)> {
    let run = streamed::Streamed::starting(&plan.stages()[k..])?;
    let n = run.stages();
    let sets = &job.sets[k..=k + n];
    let shapes: Vec<&[usize]> = (k..k + n).map(|i| plan.shape_at(i)).collect();
    let result = if input.dtype() == DType::F64 {
        run.compute::<f64>(input, sets, &shapes)?.into_any()
    } else {
        run.compute::<f32>(input, sets, &shapes)?.into_any()
    };
    Some((result, n))
}

/// The passes and mean downsample fused from stage `k` of `plan` ([`smooth_down`]),
/// where they start there and compute in f32 (the fused kernel's type).
fn fused_smooth_down(plan: &Plan, k: usize) -> Option<smooth_down::SmoothDown<'_>> {
    (plan.dtype_at(k) != DType::F64)
        .then(|| smooth_down::SmoothDown::starting(&plan.stages()[k..]))
        .flatten()
}

/// Runs every stage of `job` on the CPU, starting from `source` (a block holding at
/// least the job's footprint); returns the dense output block. Stencil passes followed
/// by a mean downsample run fused ([`smooth_down`]).
pub(crate) fn run_job(plan: &Plan, job: &Job, source: &BlockAny<'_>) -> BlockAny<'static> {
    run_stages(plan, job, source, None, 0, |_| false)
        .0
        .expect("a plan has at least one stage")
}

/// Runs `job` as [`run_job`] does, handing its output to `write(region, block)`: as one
/// block over the job's output region, or, where the job ends in stencil passes that
/// stream plane by plane and pointwise stages, plane by plane as each is computed (so
/// that the output never lands in a block of its own, only in `write`'s destination);
/// where the passes end the job and `direct` places a plane's region, the last pass
/// writes there itself.
pub(crate) fn run_job_into(
    plan: &Plan,
    job: &Job,
    source: &BlockAny<'_>,
    write: &mut dyn FnMut(&Region, &BlockAny<'_>),
    direct: Option<&Direct<'_>>,
) {
    let stages = plan.stages();
    let streamed_tail = |k: usize| {
        fused_smooth_down(plan, k).is_none()
            && streamed::Streamed::starting(&stages[k..])
                .is_some_and(|run| stages[k + run.stages()..].iter().all(Stage::is_pointwise))
    };
    let (mut current, mut k) = run_stages(plan, job, source, None, 0, streamed_tail);
    if k < stages.len() {
        let input = current.as_ref().unwrap_or(source);
        if stream_tail(plan, job, k, input, write, direct) {
            if let Some(done) = current {
                crate::block::recycle(done);
            }
            return;
        }
        // The sets do not stream: the remaining stages run one by one.
        (current, k) = run_stages(plan, job, source, current, k, |_| false);
    }
    debug_assert_eq!(k, stages.len());
    let result = current.expect("a plan has at least one stage");
    write(&job.output, &result);
    crate::block::recycle(result);
}

/// Runs the stages of `job` from stage `k` (whose input is `current`, or `source` where
/// none has run), until every stage has run or `stop(k)` holds before stage `k`;
/// returns the last stage's output and where it stopped.
fn run_stages(
    plan: &Plan,
    job: &Job,
    source: &BlockAny<'_>,
    mut current: Option<BlockAny<'static>>,
    mut k: usize,
    stop: impl Fn(usize) -> bool,
) -> (Option<BlockAny<'static>>, usize) {
    let stages = plan.stages();
    while k < stages.len() && !stop(k) {
        let input = current.as_ref().unwrap_or(source);
        let (next, used) = match fused_smooth_down(plan, k) {
            Some(fused) => {
                let (needs, out) = (&job.sets[k], &job.sets[k + fused.stages]);
                let result = with_f32(input, needs, |b| {
                    fused.compute(b, needs, out, plan.shape_at(k))
                });
                (result.into_any(), fused.stages)
            }
            None => match streamed(plan, job, k, input) {
                Some(done) => done,
                None => (
                    run_stage(
                        &stages[k],
                        input,
                        &job.sets[k],
                        &job.sets[k + 1],
                        plan.shape_at(k),
                    ),
                    1,
                ),
            },
        };
        if let Some(done) = current.replace(next) {
            crate::block::recycle(done);
        }
        k += used;
    }
    (current, k)
}

/// Streams the passes from stage `k` of `job` plane by plane, runs the pointwise stages
/// after them on each plane, and hands each plane to `write` with its region of the
/// output; `false`, having written nothing, where the sets do not stream.
fn stream_tail(
    plan: &Plan,
    job: &Job,
    k: usize,
    input: &BlockAny<'_>,
    write: &mut dyn FnMut(&Region, &BlockAny<'_>),
    direct: Option<&Direct<'_>>,
) -> bool {
    if input.dtype() == DType::F64 {
        stream_tail_in::<f64>(plan, job, k, input, write, direct)
    } else {
        stream_tail_in::<f32>(plan, job, k, input, write, direct)
    }
}

/// [`stream_tail`] computing in `F`; `direct` places the planes where it holds `F`.
fn stream_tail_in<F: stencil::Compute>(
    plan: &Plan,
    job: &Job,
    k: usize,
    input: &BlockAny<'_>,
    write: &mut dyn FnMut(&Region, &BlockAny<'_>),
    direct: Option<&Direct<'_>>,
) -> bool {
    let stages = plan.stages();
    let Some(run) = streamed::Streamed::starting(&stages[k..]) else {
        return false;
    };
    let n = run.stages();
    let sets = &job.sets[k..=k + n];
    let shapes: Vec<&[usize]> = (k..k + n).map(|i| plan.shape_at(i)).collect();
    let a = run.axis();
    let out = &job.sets[k + n];
    let lens: Vec<usize> = job.output.shape[..=a].to_vec();
    // Plane `number`'s region of the output, and its sets.
    let plane_of = |number: usize| {
        let index = crate::region::unravel(number, &lens);
        let mut region = job.output.clone();
        let mut plane_sets = out.clone();
        for (b, &i) in index.iter().enumerate() {
            region.start[b] += i;
            region.shape[b] = 1;
            let v = region.start[b];
            plane_sets[b] = AxisSet::from_range(v..v + 1);
        }
        (region, plane_sets)
    };
    let run_into =
        |planes: streamed::Planes<'_, F>| run.run_planes(input, sets, &shapes, planes).is_some();
    // The passes end the job and their planes are contiguous in the destination: the
    // last pass writes there.
    if let Some(direct) = direct
        && k + n == stages.len()
        && direct.dtype == F::DTYPE
        && (direct.place)(&plane_of(0).0).is_some()
    {
        let place = |number: usize| {
            (direct.place)(&plane_of(number).0)
                .expect("every plane is laid out like the first")
                .cast::<F>()
        };
        // SAFETY: by `Direct::new`'s contract, each plane's region of this job's output
        // (a plane's elements, contiguous) is valid for writes and reached by no other
        // reference while the job runs; the planes' regions are disjoint.
        return run_into(streamed::Planes::To(unsafe {
            streamed::Placed::new(&place)
        }));
    }
    let mut emit = |number: usize, plane: &[F]| {
        let (region, plane_sets) = plane_of(number);
        let mut block: BlockAny<'_> =
            crate::block::Block::new(plane_sets.clone(), std::borrow::Cow::Borrowed(plane))
                .into_any();
        for (i, stage) in stages.iter().enumerate().skip(k + n) {
            let next = run_stage(stage, &block, &plane_sets, &plane_sets, plan.shape_at(i));
            crate::block::recycle(std::mem::replace(&mut block, next));
        }
        write(&region, &block);
        crate::block::recycle(block);
    };
    run_into(streamed::Planes::Each(&mut emit))
}

/// Where a job may write its output straight into the destination array, whose
/// elements are of `dtype`: `place(region)` points at a region's elements where they
/// are contiguous there.
pub(crate) struct Direct<'a> {
    place: &'a (dyn Fn(&Region) -> Option<*mut u8> + Sync),
    dtype: DType,
}

impl<'a> Direct<'a> {
    /// Writes elements of `dtype` through `place`.
    ///
    /// # Safety
    /// For any region inside one job's output, `place` returns `None` or a pointer to
    /// the region's elements of `dtype`, contiguous in C order, aligned and valid for
    /// writes, which no other reference reaches while the job runs (jobs' outputs are
    /// disjoint).
    pub(crate) unsafe fn new(
        place: &'a (dyn Fn(&Region) -> Option<*mut u8> + Sync),
        dtype: DType,
    ) -> Self {
        Direct { place, dtype }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::block::{Block, paste};
    use crate::boundary::Boundary;
    use crate::ops::{Op, Pipeline};
    use crate::region::Region;

    /// Separable passes streamed plane by plane give the bits of the stages run one by
    /// one: every boundary mode (`constant` with a `cval`), blocks that cut every axis
    /// (halos on both sides, partial blocks at the edge), an outer axis no pass
    /// touches, a uniform filter's equal weights and an integer input.
    #[test]
    fn streamed_passes_equal_the_stages_bitwise() {
        let cases: Vec<(Vec<usize>, Op, Vec<Vec<usize>>)> = vec![
            (
                vec![7, 9, 10],
                Op::gaussian(&[1.0, 1.5, 0.7]),
                vec![vec![7, 9, 10], vec![3, 4, 10], vec![2, 9, 5]],
            ),
            (
                vec![2, 6, 8, 9],
                Op::gaussian(&[0.0, 1.0, 1.3, 0.8]),
                vec![vec![1, 4, 3, 9], vec![2, 6, 8, 9]],
            ),
            (vec![6, 7, 8], Op::uniform(&[3, 4, 1]), vec![vec![6, 2, 8]]),
        ];
        for (shape, op, blocks) in cases {
            for mode in Boundary::ALL {
                let pipeline = Pipeline::from(op.clone().with_mode(mode, 2.5));
                for source in &sources(&shape) {
                    for block in &blocks {
                        let plan = Plan::new(&pipeline, &shape, source.dtype(), block, block)
                            .expect("a valid plan");
                        for job in plan.jobs() {
                            let (fused, used) =
                                streamed(&plan, &job, 0, source).expect("the passes stream");
                            assert_eq!(used, plan.stages().len());
                            let mut staged: Option<BlockAny<'static>> = None;
                            for (k, stage) in plan.stages().iter().enumerate() {
                                let input = staged.as_ref().unwrap_or(source);
                                let next = run_stage(
                                    stage,
                                    input,
                                    &job.sets[k],
                                    &job.sets[k + 1],
                                    plan.shape_at(k),
                                );
                                staged = Some(next);
                            }
                            let staged = staged.expect("stages ran");
                            let bits = |b: &BlockAny<'_>| -> Vec<u32> {
                                b.typed::<f32>().data.iter().map(|x| x.to_bits()).collect()
                            };
                            assert_eq!(fused.sets(), staged.sets());
                            assert_eq!(bits(&fused), bits(&staged), "{op:?} {mode:?} {block:?}");
                        }
                    }
                }
            }
        }
    }

    /// A job written through `run_job_into` writes the bits of `run_job`'s block, plane
    /// by plane where its stages end in streamed passes and pointwise stages (a cast to
    /// the input's integer type, a threshold, a clip), as one block where they do not
    /// (a downsample after the passes), over every job of blocks that cut every axis.
    #[test]
    fn a_job_written_plane_by_plane_equals_its_block() {
        use crate::stage::DownMethod;
        let gauss = || Op::gaussian(&[1.0, 1.5, 0.7]);
        let cases: Vec<(Pipeline, bool)> = vec![
            (Pipeline::from(gauss()), true),
            (Pipeline::from(gauss()).then(Op::threshold(0.5)), true),
            (Pipeline::from(gauss()).then(Op::clip(-2.0, 3.0)), true),
            (Pipeline::from(Op::uniform(&[3, 4, 1])), true),
            (
                Pipeline::from(gauss()).then(Op::downsample(&[2, 2, 2], DownMethod::Mean)),
                false,
            ),
            (Pipeline::from(Op::gaussian(&[0.0, 1.0, 1.0])), false),
        ];
        let shape = [7usize, 9, 10];
        for (pipeline, streams) in &cases {
            for source in &sources(&shape) {
                for block in [vec![7, 9, 10], vec![3, 4, 10], vec![2, 9, 5]] {
                    let plan = Plan::new(pipeline, &shape, source.dtype(), &block, &block)
                        .expect("a valid plan");
                    for job in plan.jobs() {
                        let whole = run_job(&plan, &job, source);
                        let mut pasted = vec![f64::NAN; whole_values(&whole).len()];
                        let mut writes = 0;
                        let mut write = |region: &Region, part: &BlockAny<'_>| {
                            assert_eq!(part.dtype(), whole.dtype());
                            paste(&job.output, region, &whole_values(part), &mut pasted);
                            writes += 1;
                        };
                        run_job_into(&plan, &job, source, &mut write, None);
                        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(
                            bits(&pasted),
                            bits(&whole_values(&whole)),
                            "{pipeline:?} {block:?}"
                        );
                        let expected = if *streams { job.output.shape[0] } else { 1 };
                        assert_eq!(writes, expected, "{pipeline:?} {block:?}");
                    }
                }
            }
        }
    }

    /// Jobs given a place in the output array write their float32 planes there
    /// themselves (no call of `write`), where the planes are contiguous in it and the
    /// streamed passes end the pipeline; elsewhere they go through `write`. Either way
    /// the array holds the bits of `run_job`'s blocks.
    #[test]
    fn jobs_write_their_planes_in_place_where_they_can() {
        let shape = [6usize, 9, 10];
        let n: usize = shape.iter().product();
        let [source, _] = sources(&shape);
        let gauss = || Op::gaussian(&[1.0, 1.5, 0.7]);
        // (pipeline, block, whether the planes go in place)
        let cases = [
            (Pipeline::from(gauss()), vec![3, 4, 10], true),
            (Pipeline::from(gauss()), vec![6, 9, 10], true),
            (Pipeline::from(gauss()), vec![3, 9, 5], false),
            (
                Pipeline::from(gauss()).then(Op::threshold(0.5)),
                vec![3, 4, 10],
                false,
            ),
        ];
        for (pipeline, block, in_place) in cases {
            let plan = Plan::new(&pipeline, &shape, DType::F32, &block, &block).expect("a plan");
            let out_shape = plan.output_shape().to_vec();
            let whole_region = Region::whole(&out_shape);
            let mut want = vec![f64::NAN; n];
            for job in plan.jobs() {
                let values = whole_values(&run_job(&plan, &job, &source));
                paste(&whole_region, &job.output, &values, &mut want);
            }
            let mut array = vec![f32::NAN; n];
            let base = array.as_mut_ptr() as usize;
            let place = |region: &Region| {
                let at = region.contiguous_offset(&out_shape)?;
                (plan.output_dtype() == DType::F32)
                    .then(|| (base + at * std::mem::size_of::<f32>()) as *mut u8)
            };
            // SAFETY: `place` points inside `array` at a region's own elements; one job
            // runs at a time, and `array` is read only after every job has run.
            let direct = unsafe { Direct::new(&place, DType::F32) };
            let mut written = vec![f64::NAN; n];
            let mut writes = 0;
            for job in plan.jobs() {
                let mut write = |region: &Region, part: &BlockAny<'_>| {
                    paste(&whole_region, region, &whole_values(part), &mut written);
                    writes += 1;
                };
                run_job_into(&plan, &job, &source, &mut write, Some(&direct));
            }
            assert_eq!(writes == 0, in_place, "{pipeline:?} {block:?}");
            let got: Vec<f64> = array
                .iter()
                .zip(&written)
                .map(|(&a, &w)| if in_place { f64::from(a) } else { w })
                .collect();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{pipeline:?} {block:?}");
        }
    }

    /// Whole arrays of `shape` to run jobs from: float32 values of both signs, and
    /// uint16 ones.
    fn sources(shape: &[usize]) -> [BlockAny<'static>; 2] {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32).sin() * 9.0)
            .collect();
        let ints: Vec<u16> = (0..n).map(|i| (i * 7919 % 1000) as u16).collect();
        let sets = Region::whole(shape).sets();
        [
            Block::new(sets.clone(), Cow::Owned(values)).into_any(),
            Block::new(sets, Cow::Owned(ints)).into_any(),
        ]
    }

    /// A block's elements as float64 (exact for every element type), in C order.
    fn whole_values(block: &BlockAny<'_>) -> Vec<f64> {
        match_any!(block, BlockAny, b => b.data.iter().map(|x| x.to_f64()).collect())
    }

    /// Only passes on later axes, then one along a leading axis, start a streamed run.
    #[test]
    fn streams_only_a_leading_axis_after_later_ones() {
        let stages = |sigma: &[f64]| {
            Pipeline::from(Op::gaussian(sigma))
                .stages(sigma.len())
                .expect("valid stages")
        };
        assert_eq!(streamed_axis(&stages(&[1.0, 1.0, 1.0])), Some(0));
        assert_eq!(streamed_axis(&stages(&[0.0, 0.0, 1.0, 1.0, 1.0])), Some(2));
        // 2-D: the pass along the leading axis comes first.
        assert_eq!(streamed_axis(&stages(&[1.0, 1.0])), None);
        // Only the last axis, or only a leading one.
        assert_eq!(streamed_axis(&stages(&[0.0, 0.0, 1.0])), None);
        assert_eq!(streamed_axis(&stages(&[1.0, 0.0, 0.0])), None);
    }
}
