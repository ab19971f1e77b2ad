//! [`Run`]: a chain of ops from a Zarr array (or OME-Zarr image) to a new one, as
//! `haloflow run` and every op's subcommand do it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::chain::Chain;
use super::image::{input_spacing, open_level, output_image};
use super::mip::{Folding, Mips};
use super::options::{Options, resolve_statistics};
use super::progress::{Phase, Progress};
use crate::backend::{Backend, Device, Workload};
use crate::error::{Error, Result};
use crate::exec::{self, Report, RunOptions, Sink, Source};
use crate::gpu::GpuContext;
use crate::region::{AxisSet, Region};
use crate::stage::Stage;
use crate::store::{Input, Output, OutputSpec};
use crate::workers::{Workers, for_each_job};
use crate::{Pipeline, Plan};

/// A run of a chain of ops over a whole array, Zarr to Zarr: bounded in memory,
/// resumable (a killed run skips the chunks already written when run again), and
/// splittable across processes ([`Options::part`]).
///
/// ```no_run
/// use haloflow::zarr::{Chain, GaussianKind, Options, Run, Step};
/// use haloflow::{Device, Op};
///
/// // A Gaussian of 0.8 µm in y and x (the image's spacing turns it into pixels),
/// // then a threshold, on the GPU if there is one; OME-Zarr in, OME-Zarr out.
/// let sigma = ["0".parse()?, "0.8um".parse()?, "0.8um".parse()?];
/// let chain = Chain::new(vec![
///     Step::gaussian(GaussianKind::Smooth, &sigma),
///     Op::threshold(1200.0).into(),
/// ]);
/// let run = Run {
///     options: Options { chunks: Some(vec![64, 128, 128]), device: Device::Auto, ..Options::default() },
///     ..Run::new("image.ome.zarr", "mask.ome.zarr", chain)
/// };
/// let report = run.run(None)?;
/// println!("{} jobs in {:.1} s on {}", report.jobs_done, report.seconds, report.device);
/// # Ok::<(), haloflow::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Run {
    /// The input: a Zarr array, an OME-Zarr image (level [`Options::level`]) or one of
    /// its levels.
    pub input: PathBuf,
    /// The output array (or OME-Zarr image), created, or resumed if it exists with the
    /// same metadata.
    pub output: PathBuf,
    /// What to compute.
    pub chain: Chain,
    /// How and where.
    pub options: Options,
}

/// What [`Run::init`] created and how the run splits: for an array job's set-up.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct InitSummary {
    /// The output created.
    pub path: PathBuf,
    /// Jobs of the whole run: one per output chunk, or per shard when sharded.
    pub jobs: usize,
    /// The output's shard shape, if sharded (a job writes one shard).
    pub shard: Option<Vec<usize>>,
    /// The output's chunk shape (as written: without an axis a projection drops).
    pub chunk: Vec<usize>,
    /// The part of the options, and the jobs it gets.
    pub part: (usize, usize),
    /// Jobs of this part.
    pub part_jobs: usize,
    /// About how many bytes of data a task holds with [`InitSummary::threads`] threads
    /// (jobs in flight and decoded chunks), at most the memory limit.
    pub memory_bytes: u64,
    /// Worker threads the estimate assumes.
    pub threads: usize,
    /// The memory limit, in bytes.
    pub memory_limit: u64,
}

/// Everything a run sets up before its jobs: the input, the resolved pipeline and its
/// statistics, the plan, and the output (created).
struct Prepared {
    input: Input,
    plan: Plan,
    statistics: Option<serde_json::Value>,
    output: Output,
    dropped: Option<usize>,
    options: RunOptions,
    /// The maximum projections written in the same pass, where asked for.
    mips: Option<Mips>,
}

impl Prepared {
    /// A copy whose output encodes chunks as the input does (same format, chunks, data
    /// type, codecs, fill value; neither sharded): stores this part's chunks as the
    /// input holds them, without decoding and encoding them again (on an object store,
    /// on as many threads as requests are in flight). Returns the jobs
    /// copied and their bytes; the run then finds them done, and computes any left (a
    /// chunk absent from the input, written as the fill value).
    fn copy_encoded(&self, progress: Option<&dyn Progress>) -> Result<(usize, u64)> {
        // A copy is planned as one cast to the input's own type.
        let copy = matches!(self.plan.stages(), [Stage::Cast(d)] if *d == self.input.dtype());
        if !copy || self.dropped.is_some() || !self.output.encodes_like(&self.input)? {
            return Ok((0, 0));
        }
        let groups = exec::JobGroups::new(&self.plan, None)?;
        let jobs: Vec<usize> = groups
            .jobs_of(self.options.part.jobs(groups.len()))
            .collect();
        let copied = AtomicUsize::new(0);
        let bytes = AtomicU64::new(0);
        let telling = std::sync::Mutex::new(());
        let element = self.plan.output_dtype().size() as u64;
        // Requests to an object store wait on the network: as many threads as requests
        // in flight. On a filesystem, the run's threads.
        let remote = [self.input.path(), self.output.path()]
            .iter()
            .any(|p| crate::store::remote::is_url(p));
        let workers = if remote {
            self.options
                .threads
                .max(crate::store::remote::io_concurrency())
        } else {
            self.options.threads
        };
        for_each_job(Workers::Threads(workers), jobs.len(), |i| {
            let job = self.plan.job(jobs[i]);
            // With --overwrite the output was erased when created: what is stored
            // now was stored by this run.
            if self.output.region_done(&job.output)?
                || !self.output.copy_encoded(&self.input, &job.output)?
            {
                return Ok(());
            }
            // Counted and told under one lock, so progress hears counts in order.
            let _in_order = telling.lock().unwrap_or_else(|e| e.into_inner());
            let n = copied.fetch_add(1, Ordering::Relaxed) + 1;
            let b = bytes.fetch_add(job.output.len() as u64 * element, Ordering::Relaxed);
            if let Some(p) = progress {
                p.advance(n, b + job.output.len() as u64 * element);
            }
            Ok(())
        })?;
        self.output.flush()?;
        Ok((copied.into_inner(), bytes.into_inner()))
    }

    /// Calls `f` with the sink the jobs write to: the output, or, where the chain's last
    /// projection drops an axis, the output seen through that axis kept at size 1.
    /// The sink folds every block into the projections too, where asked for.
    fn with_sink<R>(&self, f: impl FnOnce(&dyn Sink) -> R) -> R {
        let folding = self.mips.as_ref().map(|mips| Folding {
            sink: &self.output,
            mips,
        });
        let written: &dyn Sink = match &folding {
            Some(folding) => folding,
            None => &self.output,
        };
        match self.dropped {
            Some(axis) => f(&exec::DropAxis {
                sink: written,
                axis,
            }),
            None => f(written),
        }
    }
}

impl Run {
    /// A run of `chain` from `input` to `output` with the default [`Options`].
    pub fn new(
        input: impl Into<PathBuf>,
        output: impl Into<PathBuf>,
        chain: impl Into<Chain>,
    ) -> Run {
        Run {
            input: input.into(),
            output: output.into(),
            chain: chain.into(),
            options: Options::default(),
        }
    }

    /// The run with `options`.
    pub fn with_options(mut self, options: Options) -> Run {
        self.options = options;
        self
    }

    /// Creates the output (and its OME-Zarr image) without computing anything, and
    /// says how the run splits: run it once before the parts of an array job start.
    ///
    /// # Errors
    /// As [`Run::run`].
    pub fn init(&self) -> Result<InitSummary> {
        let p = self.prepare()?;
        let groups =
            p.with_sink(|sink| exec::JobGroups::new(&p.plan, sink.write_unit().as_deref()))?;
        let jobs = groups.len();
        let estimate = exec::memory_estimate(&p.plan, &p.input, p.options.threads);
        Ok(InitSummary {
            path: self.output.clone(),
            jobs,
            shard: p.output.spec().shard.clone(),
            chunk: p.output.spec().chunk.clone(),
            part: (p.options.part.index, p.options.part.count),
            part_jobs: p.options.part.jobs(jobs).len(),
            memory_bytes: estimate.min(p.options.memory_limit),
            threads: p.options.threads,
            memory_limit: p.options.memory_limit,
        })
    }

    /// Runs this part of the jobs, skipping those already written; `progress` hears
    /// of every finished job.
    ///
    /// # Errors
    /// [`Error`] for an unreadable input, bad parameters, an incompatible output, no GPU
    /// where one is demanded, a failed read or write. Nothing is created when the
    /// input, the chain or the device is at fault; chunks already written stay.
    pub fn run(&self, progress: Option<&dyn Progress>) -> Result<Report> {
        let before = crate::store::remote::traffic();
        let p = self.prepare()?;
        let started = std::time::Instant::now();
        let mut copied = (0, 0);
        let mut report = p.with_sink(|sink| {
            let groups = exec::JobGroups::new(&p.plan, sink.write_unit().as_deref())?;
            let jobs = groups.count(p.options.part.jobs(groups.len()));
            if let Some(b) = progress {
                b.begin(Phase::Jobs, jobs);
            }
            copied = p.copy_encoded(progress)?;
            // The jobs copied are done; the run computes the rest.
            let options = RunOptions {
                overwrite: p.options.overwrite && copied.0 == 0,
                ..p.options.clone()
            };
            let advance = |done: usize, bytes: u64| {
                if let Some(b) = progress {
                    b.advance(done, bytes);
                }
            };
            exec::run(&p.plan, &p.input, sink, &options, Some(&advance))
        })?;
        // The jobs copied as encoded were done by this run, not found done.
        report.jobs_skipped = report.jobs_skipped.saturating_sub(copied.0);
        report.jobs_done += copied.0;
        report.bytes_written += copied.1;
        report.seconds = started.elapsed().as_secs_f64();
        report.statistics = p.statistics;
        if let Some(mips) = &p.mips {
            report.mip = Some(mips.finish(&p.output, p.options.threads)?);
            report.seconds = started.elapsed().as_secs_f64();
        }
        report.object_store = crate::store::remote::traffic().since(before).map(|t| {
            exec::ObjectStoreTraffic::over(t.requests, t.bytes_in, t.bytes_out, report.seconds)
        });
        Ok(report)
    }

    fn prepare(&self) -> Result<Prepared> {
        let o = &self.options;
        // A GPU asked for opens (instance, adapter, device) in the background while the
        // input is opened, its statistics computed and the run planned.
        let opening = (o.device == Device::Gpu).then(|| {
            let options = o.clone();
            std::thread::spawn(move || GpuContext::new(options.adapter().as_deref()))
        });
        let (input_path, ome_input) = open_level(&self.input, o.level)?;
        let input = Input::open(&input_path)?;
        let spacing = input_spacing(&ome_input, o.ome.as_ref(), input.shape().len())?;
        let pipeline = self.chain.pipeline(spacing.as_ref())?;
        // A threshold or normalisation from the input's statistics: computed first, and
        // recorded with the pipeline.
        let (pipeline, statistics) = resolve_statistics(&pipeline, &input, o)?;
        let plan = plan(&pipeline, &input, o.chunks.as_deref())?;
        let plan = match &o.shards {
            // A shard's jobs must tile it: they stay one chunk each.
            Some(_) => plan,
            None => {
                let limits = o.run_options(Backend::Cpu, String::new());
                widened(plan, &pipeline, &input, limits.threads, limits.memory_limit)?
            }
        };
        // Before anything is created: a missing GPU must leave no output behind.
        let (backend, reason) = match opening {
            Some(opened) => {
                let ctx = opened.join().map_err(|_| Error::Gpu {
                    message: "opening the device failed (a panic)".into(),
                })??;
                (Backend::Gpu(Arc::new(ctx)), "gpu (asked for)".to_string())
            }
            None => Backend::select_for(o.device, o.adapter().as_deref(), &plan, Workload::Zarr)?,
        };
        let (mut out_shape, out_dtype, mut chunk) = (
            plan.output_shape().to_vec(),
            plan.output_dtype(),
            plan.output_chunk().to_vec(),
        );
        let dropped = pipeline.dropped_axis()?;
        if let Some(axis) = dropped {
            out_shape.remove(axis);
            chunk.remove(axis);
        }
        let mut attributes = serde_json::Map::new();
        let mut record = serde_json::json!({ "pipeline": pipeline });
        if let Some(values) = &statistics {
            record["statistics"] = values.clone();
        }
        attributes.insert("haloflow".into(), record);
        let ome = if o.plain {
            if o.ome.is_some() || o.ngff_version.is_some() {
                return Err(Error::InvalidParameter {
                    op: "plain",
                    message: "a plain array has no OME-Zarr axes or NGFF version".into(),
                });
            }
            None
        } else {
            output_image(
                ome_input,
                o.ome.as_ref(),
                false,
                o.ngff_version,
                &pipeline,
                input.shape(),
                (input.dtype(), out_dtype),
            )?
        };
        if let Some(mip) = &o.mip
            && (mip.starts_with(&self.output) || self.output.starts_with(mip))
        {
            return Err(Error::InvalidParameter {
                op: "mip",
                message: format!(
                    "the projections' group {} and the output {} must not hold one another",
                    mip.display(),
                    self.output.display()
                ),
            });
        }
        let mut spec = OutputSpec::new(&out_shape, out_dtype, &chunk)
            .with_zarr_format(o.zarr_format)
            .with_compression(o.compression)
            .with_attributes(attributes);
        let array_path = match &ome {
            Some(image) => {
                image.check_target(&self.output)?;
                spec = spec
                    .with_zarr_format(image.version.zarr_format())
                    .with_dimension_names(image.axes.iter().map(|a| a.name.clone()).collect());
                self.output.join(&image.levels[0].path)
            }
            None => self.output.clone(),
        };
        if let Some(shards) = &o.shards {
            spec = spec.with_shards(crate::ops::per_axis("shards", shards, out_shape.len())?);
        }
        let output = Output::create(&array_path, &spec, o.overwrite)?;
        if let Some(image) = &ome {
            image.write_group(&self.output, &pipeline, None)?;
        }
        let mips = match &o.mip {
            Some(path) => {
                let names: Option<Vec<String>> = ome
                    .as_ref()
                    .map(|image| image.axes.iter().map(|a| a.name.clone()).collect());
                Some(Mips::create(path, &spec, names.as_deref(), o.overwrite)?)
            }
            None => None,
        };
        Ok(Prepared {
            input,
            plan,
            statistics,
            output,
            dropped,
            options: o.run_options(backend, reason),
            mips,
        })
    }
}

/// The plan of `pipeline` over `input`, one job per output chunk: `chunks` (one value
/// or one per axis of the written array, which lacks the axis a final projection
/// drops), or the input's chunk shape. Chunks longer than the array are clamped.
///
/// # Errors
/// [`Error::InvalidParameter`] or [`Error::AxisCount`] for chunks that do not fit.
pub fn plan(pipeline: &Pipeline, input: &Input, chunks: Option<&[usize]>) -> Result<Plan> {
    let (out_shape, _) = pipeline.output(input.shape(), input.dtype())?;
    let chunks = match (pipeline.dropped_axis()?, chunks) {
        (Some(axis), Some(c)) => {
            if c.len() + 1 != out_shape.len() {
                return Err(Error::AxisCount {
                    what: "chunks",
                    ndim: out_shape.len() - 1,
                    got: c.len(),
                });
            }
            let mut c = c.to_vec();
            c.insert(axis, 1);
            Some(c)
        }
        (_, c) => c.map(<[usize]>::to_vec),
    };
    let default = match input.file_metadata() {
        // A file's unit of decoding may be one strip: its outputs take bigger chunks.
        Some(_) => input.chunk_shape(),
        None => input.read_chunk_shape(),
    };
    let chunk = chunk_shape(chunks.as_deref(), default, &out_shape)?;
    Plan::new(pipeline, input.shape(), input.dtype(), &chunk, &chunk)
}

/// A job's footprint at most this many times its block, where [`widened`] grows jobs.
const WIDEN_RATIO: f64 = 2.0;

/// Bytes an exact Richardson–Lucy job holds per element of its footprint: the image,
/// the estimate, the ratio and the blurred estimate in f32, and the FFT's complex
/// frames, with room to spare.
const DECONVOLVE_BYTES: u64 = 48;

/// `plan` with its jobs grown from one output chunk to several where the chain's halo
/// dwarfs a chunk because it grows with iterations: exact Richardson–Lucy reads N × 2 ×
/// the PSF's radius beyond each side, so on small chunks every job would deconvolve
/// nearly the whole array (512 jobs of 4×16×16 on 32×128×128 took 31 s, one job 0.1 s).
/// Each step doubles the block along the axis whose halo costs most, while a job's
/// footprint is more than [`WIDEN_RATIO`] times its block and the jobs in flight fit the
/// memory limit. Results are the same (every job is exact); only the work shrinks.
/// Other chains keep one job per chunk.
pub(crate) fn widened(
    plan: Plan,
    pipeline: &Pipeline,
    input: &Input,
    threads: usize,
    memory_limit: u64,
) -> Result<Plan> {
    let deep = plan
        .stages()
        .iter()
        .any(|s| matches!(s, crate::stage::Stage::Deconvolve(d) if d.overlap.is_none()));
    if !deep {
        return Ok(plan);
    }
    let out_shape = plan.output_shape().to_vec();
    let chunk = plan.output_chunk().to_vec();
    let mut block = plan.block_shape().to_vec();
    // A block of `plan` in the middle of the array (the one that reads the most), and
    // what it reads per axis.
    let middle = |plan: &Plan, block: &[usize]| -> (Region, Vec<usize>) {
        let region = Region::new(
            (0..block.len())
                .map(|a| (out_shape[a] - block[a].min(out_shape[a])) / 2 / chunk[a] * chunk[a])
                .collect(),
            (0..block.len())
                .map(|a| block[a].min(out_shape[a]))
                .collect(),
        );
        let reads = plan.sets_for(&region)[0].iter().map(AxisSet::len).collect();
        (region, reads)
    };
    let mut best = plan;
    loop {
        let (region, reads) = middle(&best, &block);
        let footprint: usize = reads.iter().product();
        if footprint as f64 <= WIDEN_RATIO * region.len() as f64 {
            break;
        }
        let cost = |a: usize| reads[a] as f64 / region.shape[a] as f64;
        let Some(a) = (0..block.len())
            .filter(|&a| block[a] < out_shape[a])
            .max_by(|&a, &b| cost(a).total_cmp(&cost(b)))
        else {
            break;
        };
        let mut next = block.clone();
        next[a] = (2 * block[a]).min(out_shape[a]);
        let candidate = Plan::new(pipeline, input.shape(), input.dtype(), &chunk, &next)?;
        // Every job in flight counted at the largest footprint a job reads.
        let held: usize = middle(&candidate, &next).1.iter().product();
        let jobs = threads.max(1).min(candidate.num_jobs()) as u64;
        if jobs * held as u64 * DECONVOLVE_BYTES > memory_limit {
            break;
        }
        block = next;
        best = candidate;
    }
    Ok(best)
}

/// `chunks` (one value or one per axis; `default` if `None`) for an array of `shape`,
/// each extent at least 1 and at most the axis's length.
pub(super) fn chunk_shape(
    chunks: Option<&[usize]>,
    default: Vec<usize>,
    shape: &[usize],
) -> Result<Vec<usize>> {
    let chunk = match chunks {
        Some(c) => crate::ops::per_axis("chunks", c, shape.len())?,
        None => default,
    };
    if chunk.contains(&0) {
        return Err(Error::InvalidParameter {
            op: "chunks",
            message: format!("chunk extents must be >= 1, got {chunk:?}"),
        });
    }
    // A chunk longer than the array is clamped: it holds the whole axis either way.
    Ok(chunk
        .iter()
        .zip(shape)
        .map(|(&c, &n)| c.min(n.max(1)))
        .collect())
}
