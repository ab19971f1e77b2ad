//! The streaming executor of a Zarr run: jobs from the planner, footprints assembled
//! from decoded chunks (`cache.rs`), computed on the chosen backend, and written, with
//! bounded memory, resume, parts (`--part I/N`) and per-stage timings.
//! (Layer: the executor; see the layer map in `docs/ARCHITECTURE.md`.)

mod cache;
mod groups;
mod io;
pub mod label;
pub mod objects;
mod options;
mod part;
mod pyramid;
mod report;
mod stream;
pub mod table;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::plan::{Job, Plan};
use crate::region::AxisSet;
use crate::workers::{Workers, for_each_job};
use cache::ChunkCache;

pub(crate) use cache::KeptChunks;
pub use groups::JobGroups;
pub use io::{DropAxis, Sink, Source};
pub use options::{Progress, RunOptions, default_memory_limit};
pub use part::Part;
pub use pyramid::{CopyEncoded, OnePassPyramid};
pub use report::{GpuReport, MipReport, ObjectStoreTraffic, Report, StageSeconds, peak_rss_bytes};

/// Runs `plan` from `source` to `sink` on `options.backend` (the CPU or a GPU): this
/// process's part of the jobs, skipping those already written.
pub fn run(
    plan: &Plan,
    source: &dyn Source,
    sink: &dyn Sink,
    options: &RunOptions,
    progress: Option<Progress<'_>>,
) -> Result<Report> {
    let started = Instant::now();
    // A part takes whole groups (shards) of jobs; without shards each job is a group.
    let groups = JobGroups::new(plan, sink.write_unit().as_deref())?;
    let part = options.part.jobs(groups.len());
    let mut report = Report {
        jobs_total: groups.count(part.clone()),
        device: options.backend.describe(),
        device_reason: options.device_reason.clone(),
        ..Report::default()
    };

    // Resume: jobs whose chunks are all written are done.
    let mut todo = Vec::with_capacity(report.jobs_total);
    for index in groups.jobs_of(part) {
        let job = plan.job(index);
        if !options.overwrite && sink.region_done(&job.output)? {
            report.jobs_skipped += 1;
        } else {
            todo.push(job);
        }
    }
    if let Some(p) = progress {
        p(report.jobs_skipped, 0);
    }

    let tally = Tally {
        finished: AtomicUsize::new(report.jobs_skipped),
        written: AtomicU64::new(0),
        progress,
        telling: std::sync::Mutex::new(()),
    };
    GpuReport::start(&options.backend);
    let jobs_done = todo.len();

    // On a GPU, the jobs stream through the device in slabs where they can; the
    // rest (all of them elsewhere, or those left after a device error) go job by job.
    let mut streamed = stream::Streamed::default();
    if let (Some(stream), Backend::Gpu(ctx)) = (
        stream::Stream::plan(plan, &todo, source, sink, options),
        &options.backend,
    ) {
        streamed = match stream.run(ctx, plan, &todo, source, sink, &tally) {
            Ok(s) => s,
            Err(e) => {
                // What was written stays committed; the device's counters stop.
                let flushed = sink.flush();
                GpuReport::finish(&options.backend);
                flushed?;
                return Err(e);
            }
        };
        let mut left = Vec::new();
        for (job, done) in todo.into_iter().zip(&streamed.written) {
            if !done {
                left.push(job);
            }
        }
        todo = left;
    }

    let cache = ChunkCache::new(source, &todo)?;
    let wanted = options.threads.max(1).min(todo.len().max(1));
    // The largest of a few jobs across the run (a transform's footprints differ).
    let n = todo.len();
    let per_job = sampled_jobs(n)
        .into_iter()
        .map(|i| job_bytes(plan, todo.get(i), &source.read_chunk_shape()))
        .max()
        .unwrap_or(0);
    // As many jobs in flight as the limit holds, up to the threads asked for: the
    // memory limit is the promise kept (fewer workers only take longer).
    let fit = options.memory_limit.saturating_sub(RUNTIME_RESERVE) / per_job.max(1);
    let threads = wanted.min(fit.max(1) as usize);
    let in_flight = RUNTIME_RESERVE + threads as u64 * per_job;
    if !todo.is_empty() && in_flight > options.memory_limit {
        return Err(Error::InvalidParameter {
            op: "memory-limit",
            message: format!(
                "one job needs about {} MiB, over the limit of {} MiB; use smaller output chunks (--chunks)",
                in_flight >> 20,
                options.memory_limit >> 20
            ),
        });
    }
    cache.set_budget(options.memory_limit.saturating_sub(in_flight));

    let timers = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
    let result = for_each_job(Workers::Threads(threads), todo.len(), |i| {
        tally.job_written(run_one(plan, i, &cache, sink, &options.backend, &timers)?);
        Ok(())
    });
    // Every chunk written must be committed before the run counts as done; a job's
    // failure is the error to report, a failed commit the next.
    let flushed = sink.flush();
    report.gpu = GpuReport::finish(&options.backend);
    result?;
    flushed?;

    let secs = |t: &AtomicU64| Duration::from_nanos(t.load(Ordering::Relaxed)).as_secs_f64();
    report.jobs_done = jobs_done;
    report.bytes_written = tally.written.into_inner();
    report.bytes_read = cache.bytes_read.load(Ordering::Relaxed) + streamed.bytes_read;
    report.chunks_decoded = cache.decoded.load(Ordering::Relaxed) + streamed.chunks_decoded;
    report.stages = StageSeconds {
        read: secs(&timers[0]) + streamed.seconds[0],
        compute: secs(&timers[1]) + streamed.seconds[1],
        write: secs(&timers[2]) + streamed.seconds[2],
    };
    report.seconds = started.elapsed().as_secs_f64();
    report.peak_rss_bytes = peak_rss_bytes().unwrap_or(0);
    Ok(report)
}

/// Jobs finished (skipped ones included) and bytes written so far, each told to the
/// run's progress callback.
struct Tally<'a> {
    finished: AtomicUsize,
    written: AtomicU64,
    progress: Option<Progress<'a>>,
    /// Held while counting and telling, so the callback hears counts in order (the
    /// last call is the final count).
    telling: std::sync::Mutex<()>,
}

impl Tally<'_> {
    /// Counts one more job done, of `bytes` written.
    fn job_written(&self, bytes: u64) {
        let _in_order = self.telling.lock().unwrap_or_else(|e| e.into_inner());
        let total = self.written.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let n = self.finished.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(p) = self.progress {
            p(n, total);
        }
    }
}

/// Reads, computes and writes job `j` of the cache's jobs; returns the bytes written.
fn run_one(
    plan: &Plan,
    j: usize,
    cache: &ChunkCache<'_>,
    sink: &dyn Sink,
    backend: &Backend,
    timers: &[AtomicU64; 3],
) -> Result<u64> {
    let lap = |t: &AtomicU64, since: Instant| {
        t.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Instant::now()
    };
    let job = &cache.jobs[j];
    let t = Instant::now();
    let footprint = cache.footprint(j)?;
    let t = lap(&timers[0], t);
    let result = backend.run_job(plan, job, &footprint)?;
    crate::block::recycle(footprint);
    let t = lap(&timers[1], t);
    sink.write(&job.output, &result)?;
    lap(&timers[2], t);
    let bytes = (job.output.len() * result.dtype().size()) as u64;
    crate::block::recycle(result);
    Ok(bytes)
}

/// The memory a run of `plan` from `source` with `threads` jobs in flight needs, about:
/// the jobs in flight (as the run budgets them) and the decoded input chunks their
/// footprints touch. The chunk cache may keep more, up to the run's memory limit.
pub fn memory_estimate(plan: &Plan, source: &dyn Source, threads: usize) -> u64 {
    if plan.num_jobs() == 0 {
        return RUNTIME_RESERVE;
    }
    let read_chunk = source.read_chunk_shape();
    let chunk_bytes =
        read_chunk.iter().product::<usize>() as u64 * plan.input_dtype().size() as u64;
    // Jobs' footprints differ where a transform maps them (a rotation's corners read
    // little): the largest of a few jobs across the plan, each with its chunks.
    let n = plan.num_jobs();
    let largest = sampled_jobs(n)
        .into_iter()
        .map(|j| {
            let job = plan.job(j);
            let chunks = crate::region::Grid::new(source.shape(), &read_chunk)
                .map_or(0, |g| g.chunks_touching(&job.sets[0]).len())
                as u64;
            job_bytes(plan, Some(&job), &read_chunk) + chunks * chunk_bytes
        })
        .max()
        .unwrap_or(0);
    let threads = threads.max(1).min(n) as u64;
    RUNTIME_RESERVE + threads * largest
}

/// The jobs of `n` whose footprints stand for all in a memory budget: the first, the
/// last and three between (footprints differ where a transform maps them).
fn sampled_jobs(n: usize) -> [usize; 5] {
    [0, n / 4, n / 2, 3 * n / 4, n.saturating_sub(1)]
}

/// Memory set aside for what the budget does not count job by job: codec buffers,
/// per-thread buffer pools, allocator slack.
const RUNTIME_RESERVE: u64 = 16 << 20;

/// Rough bytes a job holds at its peak: its footprint and every stage's output.
fn job_bytes(plan: &Plan, job: Option<&Job>, read_chunk: &[usize]) -> u64 {
    let Some(job) = job else { return 0 };
    let len = |sets: &[AxisSet]| sets.iter().map(AxisSet::len).product::<usize>() as u64;
    let element = plan.input_dtype().size() as u64;
    let footprint = len(&job.sets[0]) * element;
    // A chunk being decoded: its compressed bytes and its values.
    let chunk = 2 * read_chunk.iter().product::<usize>() as u64 * element;
    let stages: u64 = job.sets[1..].iter().map(|s| len(s) * 8).sum();
    // A prefiltered interpolation's f64 coefficients, made a slab of planes at a time.
    let coefficients: u64 = plan
        .stages()
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, crate::stage::Stage::Geometric(g) if g.interp.filtered()))
        .map(|(k, _)| {
            let sets = &job.sets[k];
            let planes = sets.first().map_or(1, AxisSet::len).max(1) as u64;
            len(sets) * 8 / planes * planes.min(8)
        })
        .sum();
    footprint + chunk + stages + coefficients
}
