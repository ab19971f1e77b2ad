//! The streaming executor on in-memory sources and sinks: equal to the in-memory
//! result, each input chunk decoded once, parts disjoint, resume skipping done jobs.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

use haloflow::block::{Block, BlockAny};
use haloflow::exec::{Part, Report, RunOptions, Sink, Source, run};
use haloflow::{Backend, Boundary, DType, DownMethod, GpuContext, Op, Pipeline, Plan, Region};
use ndarray::{ArrayD, IxDyn, SliceInfoElem};

mod common;

struct MemSource {
    array: ArrayD<f32>,
    chunk: Vec<usize>,
}

fn slice_of(region: &Region) -> Vec<SliceInfoElem> {
    (0..region.ndim())
        .map(|a| SliceInfoElem::Slice {
            start: region.start[a] as isize,
            end: Some((region.start[a] + region.shape[a]) as isize),
            step: 1,
        })
        .collect()
}

impl MemSource {
    /// The test volume of `shape`, decoded in chunks of `chunk`.
    fn new(shape: &[usize], chunk: &[usize]) -> Self {
        MemSource {
            array: volume(shape),
            chunk: chunk.to_vec(),
        }
    }

    /// The pipeline applied in memory to the whole volume: the expected result.
    fn in_memory(&self) -> ArrayD<f32> {
        pipeline()
            .apply(self.array.view())
            .unwrap()
            .into_array::<f32>()
            .unwrap()
    }
}

impl Source for MemSource {
    fn shape(&self) -> &[usize] {
        self.array.shape()
    }
    fn dtype(&self) -> DType {
        DType::F32
    }
    fn read_chunk_shape(&self) -> Vec<usize> {
        self.chunk.clone()
    }
    fn read_region(&self, region: &Region) -> haloflow::Result<BlockAny<'static>> {
        let view = self.array.slice(slice_of(region).as_slice());
        Ok(BlockAny::F32(Block::new(
            region.sets(),
            Cow::Owned(view.iter().copied().collect()),
        )))
    }
}

#[derive(Default)]
struct MemSink {
    written: Mutex<HashMap<Region, Vec<f32>>>,
}

impl Sink for MemSink {
    fn write(&self, region: &Region, block: &BlockAny<'_>) -> haloflow::Result<()> {
        let BlockAny::F32(b) = block else {
            panic!("float32 expected")
        };
        let mut written = self.written.lock().unwrap();
        let overlapping = written.keys().find(|w| {
            (0..region.ndim()).all(|a| {
                w.start[a] < region.start[a] + region.shape[a]
                    && region.start[a] < w.start[a] + w.shape[a]
            })
        });
        assert!(
            overlapping.is_none(),
            "region {region:?} overlaps {overlapping:?}, written before"
        );
        written.insert(region.clone(), b.data.to_vec());
        Ok(())
    }
    fn region_done(&self, region: &Region) -> haloflow::Result<bool> {
        // Written regions never overlap (`write` checks): the region is done when
        // their overlaps with it add up to all of it.
        let covered: usize = self
            .written
            .lock()
            .unwrap()
            .keys()
            .map(|w| {
                (0..region.ndim())
                    .map(|a| {
                        let lo = w.start[a].max(region.start[a]);
                        let hi = (w.start[a] + w.shape[a]).min(region.start[a] + region.shape[a]);
                        hi.saturating_sub(lo)
                    })
                    .product::<usize>()
            })
            .sum();
        Ok(covered == region.len())
    }
    fn flush(&self) -> haloflow::Result<()> {
        Ok(())
    }
}

impl MemSink {
    fn assemble(&self, shape: &[usize]) -> ArrayD<f32> {
        let mut out = ArrayD::from_elem(IxDyn(shape), f32::NAN);
        for (region, data) in self.written.lock().unwrap().iter() {
            let mut view = out.slice_mut(slice_of(region).as_slice());
            for (o, v) in view.iter_mut().zip(data) {
                *o = *v;
            }
        }
        out
    }
}

fn volume(shape: &[usize]) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(shape), |i| {
        ((i[0] * 31 + i[1] * 17 + i[2] * 7) % 23) as f32 * 1.5
    })
}

fn pipeline() -> Pipeline {
    Pipeline::from(Op::gaussian(&[1.5, 1.0, 0.8]).with_mode(Boundary::Wrap, 0.0))
}

#[test]
fn streamed_result_equals_in_memory_and_decodes_each_chunk_once() {
    let shape = [13, 17, 11];
    let source = MemSource::new(&shape, &[5, 7, 6]);
    let out_chunk = [4, 4, 4];
    let plan = Plan::new(&pipeline(), &shape, DType::F32, &out_chunk, &out_chunk).unwrap();
    let sink = MemSink::default();
    let options = RunOptions {
        threads: 2,
        ..RunOptions::default()
    };
    let report = run(&plan, &source, &sink, &options, None).unwrap();
    assert_eq!(report.jobs_done, plan.num_jobs());
    assert_eq!(
        report.chunks_decoded,
        3 * 3 * 2,
        "every input chunk decoded exactly once"
    );
    assert_eq!(sink.assemble(&shape), source.in_memory());
}

#[test]
fn parts_cover_the_output_once_and_resume_skips_done_jobs() {
    let shape = [9, 10, 12];
    let source = MemSource::new(&shape, &[4, 4, 4]);
    let plan = Plan::new(&pipeline(), &shape, DType::F32, &[3, 5, 4], &[3, 5, 4]).unwrap();
    let sink = MemSink::default();
    let first = RunOptions {
        threads: 1,
        part: Part::new(1, 3).unwrap(),
        ..RunOptions::default()
    };
    let report = run(&plan, &source, &sink, &first, None).unwrap();
    let share = report.jobs_done;
    assert!(share > 0 && share < plan.num_jobs());
    // A full run afterwards skips the finished share and writes every other block once.
    let report = run(&plan, &source, &sink, &RunOptions::default(), None).unwrap();
    assert_eq!(report.jobs_skipped, share);
    assert_eq!(report.jobs_done, plan.num_jobs() - share);
    assert_eq!(sink.assemble(&shape), source.in_memory());
}

#[test]
fn a_tiny_memory_limit_is_a_clear_error() {
    let shape = [9, 10, 12];
    let source = MemSource::new(&shape, &[4, 4, 4]);
    let plan = Plan::new(&pipeline(), &shape, DType::F32, &[9, 10, 12], &[9, 10, 12]).unwrap();
    let options = RunOptions {
        memory_limit: 1000,
        ..RunOptions::default()
    };
    let err = run(&plan, &source, &MemSink::default(), &options, None).unwrap_err();
    assert!(err.to_string().contains("memory"), "{err}");
}

#[test]
fn a_memory_limit_for_one_job_runs_one_job_at_a_time() {
    let shape = [16, 10, 12];
    let source = MemSource::new(&shape, &[4, 4, 4]);
    let plan = Plan::new(&pipeline(), &shape, DType::F32, &[4, 10, 12], &[4, 10, 12]).unwrap();
    let one = haloflow::exec::memory_estimate(&plan, &source, 1);
    assert!(haloflow::exec::memory_estimate(&plan, &source, 4) > one + 1024);
    let options = RunOptions {
        memory_limit: one + 1024,
        threads: 4,
        ..RunOptions::default()
    };
    let sink = MemSink::default();
    let report = run(&plan, &source, &sink, &options, None).unwrap();
    assert_eq!(report.jobs_done, plan.num_jobs());
    let whole = MemSink::default();
    run(&plan, &source, &whole, &RunOptions::default(), None).unwrap();
    assert_eq!(sink.assemble(&shape), whole.assemble(&shape));
}

#[test]
fn a_pyramid_in_one_pass_equals_each_level_chained_in_memory_for_any_tiling_and_part() {
    use haloflow::exec::OnePassPyramid;
    let shape = [19, 26, 23];
    let source = MemSource::new(&shape, &[5, 7, 6]);
    let factor = vec![2, 2, 1];
    let steps = [
        Pipeline::from(Op::downsample(&factor, DownMethod::Mean)),
        Pipeline::new(vec![
            Op::gaussian(&[2.0 / 3.0, 2.0 / 3.0, 0.0]),
            Op::downsample(&factor, DownMethod::Max),
        ]),
        // The `gaussian` method's step, which the CPU computes fused.
        Pipeline::new(vec![
            Op::gaussian(&[2.0 / 3.0, 2.0 / 3.0, 0.0]),
            Op::downsample(&factor, DownMethod::Mean),
        ]),
    ];
    for step in &steps {
        // Level k is the step applied k times to level 0.
        let mut want = vec![source.array.clone()];
        for _ in 1..4 {
            let next = step.apply(want.last().unwrap().view()).unwrap();
            want.push(next.into_array::<f32>().unwrap());
        }
        for chunk in [[4, 4, 4], [3, 8, 5], [32, 32, 32]] {
            let chunks: Vec<Vec<usize>> = want
                .iter()
                .map(|w| {
                    chunk
                        .iter()
                        .zip(w.shape())
                        .map(|(&c, &n)| c.min(n))
                        .collect()
                })
                .collect();
            let sinks: Vec<MemSink> = (0..4).map(|_| MemSink::default()).collect();
            let pyramid = OnePassPyramid {
                source: &source,
                sinks: sinks.iter().map(|s| s as &dyn Sink).collect(),
                chunks: chunks.clone(),
                step: step.clone(),
                factor: factor.clone(),
                copy_level0: None,
            };
            // Two parts, then a rerun of the whole that finds everything done.
            let mut done = 0;
            for part in [
                Part::new(0, 2).unwrap(),
                Part::new(1, 2).unwrap(),
                Part::ALL,
            ] {
                let options = RunOptions {
                    part,
                    ..RunOptions::default()
                };
                let report = pyramid.run(&options, None).unwrap().expect("one pass");
                done += report.jobs_done;
                if part == Part::ALL {
                    assert_eq!(report.jobs_done, 0, "a rerun finds every tile done");
                    assert_eq!(report.jobs_skipped, report.jobs_total);
                }
            }
            assert!(done >= 1);
            for (k, (sink, w)) in sinks.iter().zip(&want).enumerate() {
                assert_eq!(
                    &sink.assemble(w.shape()),
                    w,
                    "{step:?} chunks {chunk:?}: level {k}"
                );
            }
            // Level 0 stored by `copy_level0` where it can: the sink gets only the
            // regions it declined (here those starting on an even row), the copies
            // together cover level 0 once, and the coarser levels are unchanged.
            let copied: Mutex<Vec<Region>> = Mutex::new(Vec::new());
            let copy = |region: &Region| {
                let odd = region.start[0] % 2 == 1;
                if odd {
                    copied.lock().unwrap().push(region.clone());
                }
                Ok(odd)
            };
            let fresh: Vec<MemSink> = (0..4).map(|_| MemSink::default()).collect();
            let copying = OnePassPyramid {
                source: &source,
                sinks: fresh.iter().map(|s| s as &dyn Sink).collect(),
                chunks: chunks.clone(),
                step: step.clone(),
                factor: factor.clone(),
                copy_level0: Some(&copy),
            };
            copying
                .run(&RunOptions::default(), None)
                .unwrap()
                .expect("one pass");
            let written: Vec<Region> = fresh[0].written.lock().unwrap().keys().cloned().collect();
            let copied = copied.into_inner().unwrap();
            assert!(written.iter().all(|r| r.start[0] % 2 == 0));
            // Pieces start on odd rows with 3-row chunks (at row 15: the least common
            // multiple of the source's 5 and the output's 3).
            assert_eq!(!copied.is_empty(), chunk[0] == 3, "chunks {chunk:?}");
            let cover: usize = written.iter().chain(&copied).map(Region::len).sum();
            assert_eq!(cover, want[0].len(), "{step:?} chunks {chunk:?}");
            for (k, (sink, w)) in fresh.iter().zip(&want).enumerate().skip(1) {
                assert_eq!(
                    &sink.assemble(w.shape()),
                    w,
                    "{step:?} chunks {chunk:?}: level {k}"
                );
            }
            // A tile larger than the memory budget: nothing written, the caller falls back.
            let options = RunOptions {
                memory_limit: 1000,
                ..RunOptions::default()
            };
            let fresh: Vec<MemSink> = (0..4).map(|_| MemSink::default()).collect();
            let tight = OnePassPyramid {
                source: &source,
                sinks: fresh.iter().map(|s| s as &dyn Sink).collect(),
                chunks,
                step: step.clone(),
                factor: factor.clone(),
                copy_level0: None,
            };
            assert!(tight.run(&options, None).unwrap().is_none());
            assert!(fresh.iter().all(|s| s.written.lock().unwrap().is_empty()));
        }
    }
}

/// The GPU backend on lavapipe in CI, if there is an adapter.
fn gpu() -> Option<Backend> {
    common::gpu_or_notice("stream")
        .then(|| Backend::Gpu(std::sync::Arc::new(GpuContext::new(None).unwrap())))
}

/// `pipeline` over `source` in blocks of `chunk` on `backend`, with `options`; the
/// report and the assembled output.
fn run_on(
    pipeline: &Pipeline,
    source: &MemSource,
    chunk: &[usize],
    backend: &Backend,
    options: RunOptions,
) -> (Report, ArrayD<f32>) {
    let shape = source.array.shape().to_vec();
    let plan = Plan::new(pipeline, &shape, DType::F32, chunk, chunk).unwrap();
    let sink = MemSink::default();
    let options = RunOptions {
        backend: backend.clone(),
        ..options
    };
    let report = run(&plan, source, &sink, &options, None).unwrap();
    (report, sink.assemble(plan.output_shape()))
}

/// Asserts `got` equals `want` within 1e-5 of the values' magnitude.
fn assert_close(got: &ArrayD<f32>, want: &ArrayD<f32>, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    let scale = want.iter().fold(1f32, |m, x| m.max(x.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * scale,
            "{what}: element {i}: {g} against {w}"
        );
    }
}

/// The stream's bar: on 32 × 64 × 64 chunks, each decoded input plane crosses the
/// link once (halos stay on the device: uploads within 1.1× the input), each output
/// byte once, and the result equals the CPU backend's, for stencils, ranks, chains
/// that change the shape, and every boundary mode (`wrap` reads the far planes).
#[test]
fn a_gpu_stream_uploads_each_input_plane_once_and_equals_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let shape = [96, 128, 64];
    let chunk = [32, 64, 64];
    let source = MemSource::new(&shape, &chunk);
    let cases = [
        ("gaussian 2", Pipeline::from(Op::gaussian(&[2.0]))),
        (
            "gaussian wrap",
            Pipeline::from(Op::gaussian(&[2.0, 1.0, 0.5]).with_mode(Boundary::Wrap, 0.0)),
        ),
        (
            "uniform constant",
            Pipeline::from(Op::uniform(&[5]).with_mode(Boundary::Constant, 2.5)),
        ),
        ("median 3", Pipeline::from(Op::median(&[3]))),
        (
            "gaussian, clip, downsample",
            Pipeline::new(vec![
                Op::gaussian(&[1.0]),
                Op::clip(5.0, 20.0),
                Op::downsample(&[2], DownMethod::Max),
            ]),
        ),
        // Neighbouring jobs' inputs overlap along the last axis only: still streamed
        // along the first, whose planes are contiguous.
        (
            "upsample 1, 2, 3",
            Pipeline::from(Op::upsample(&[1, 2, 3], haloflow::UpMethod::Nearest)),
        ),
        (
            "project",
            Pipeline::from(Op::Project {
                axis: 1,
                method: haloflow::ProjectMethod::Max,
                keepdims: true,
            }),
        ),
    ];
    for (what, pipeline) in cases {
        let (cpu_report, want) = run_on(
            &pipeline,
            &source,
            &chunk,
            &Backend::Cpu,
            RunOptions::default(),
        );
        assert!(cpu_report.gpu.is_none());
        let (report, got) = run_on(&pipeline, &source, &chunk, &gpu, RunOptions::default());
        assert_close(&got, &want, what);
        let g = report.gpu.as_ref().unwrap();
        // One slab per row of jobs along the first axis, each one window and one segment.
        let rows = got.shape()[0].div_ceil(chunk[0]);
        assert_eq!(g.slabs, rows, "{what}: {report:?}");
        assert_eq!(g.submits, 2 * rows, "{what}: {report:?}");
        assert_eq!(g.cpu_fallback_jobs, 0, "{what}: {report:?}");
        let (up, down) = (g.bytes_uploaded as f64, g.bytes_downloaded as f64);
        assert!(up <= 1.1 * report.bytes_read as f64, "{what}: {report:?}");
        assert!(
            down <= 1.1 * report.bytes_written as f64,
            "{what}: {report:?}"
        );
        if !what.contains("wrap") {
            assert_eq!(report.chunks_decoded, 6, "{what}: each chunk decoded once");
        }
    }
}

/// Slabs cut into tiles where a whole row does not fit the memory limit, parts, and a
/// resumed run on the GPU: the same result, no block written twice (the sink checks).
#[test]
fn gpu_stream_tiles_parts_and_resume_equal_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let shape = [40, 48, 36];
    let chunk = [8, 8, 12];
    let source = MemSource::new(&shape, &chunk);
    let pipeline = Pipeline::from(Op::gaussian(&[1.5]).with_mode(Boundary::Nearest, 0.0));
    let (_, want) = run_on(
        &pipeline,
        &source,
        &chunk,
        &Backend::Cpu,
        RunOptions::default(),
    );

    // Tiles: a limit that holds a slab a few jobs wide, not a whole row.
    let tight = RunOptions {
        memory_limit: (16 << 20) + 600_000,
        ..RunOptions::default()
    };
    let (report, got) = run_on(&pipeline, &source, &chunk, &gpu, tight);
    assert_close(&got, &want, "tiles");
    let slabs = report.gpu.as_ref().unwrap().slabs;
    assert!(slabs > 5, "rows cut into tiles: {report:?}");

    // Three parts into one sink, the middle one first, then a resumed whole run.
    let plan = Plan::new(&pipeline, &shape, DType::F32, &chunk, &chunk).unwrap();
    let sink = MemSink::default();
    let mut done = 0;
    for i in [1, 0] {
        let options = RunOptions {
            backend: gpu.clone(),
            part: Part::new(i, 3).unwrap(),
            ..RunOptions::default()
        };
        done += run(&plan, &source, &sink, &options, None)
            .unwrap()
            .jobs_done;
    }
    let options = RunOptions {
        backend: gpu.clone(),
        ..RunOptions::default()
    };
    let report = run(&plan, &source, &sink, &options, None).unwrap();
    assert_eq!(report.jobs_skipped, done);
    assert_eq!(report.jobs_done, plan.num_jobs() - done);
    assert_close(&sink.assemble(&shape), &want, "parts and resume");
}
