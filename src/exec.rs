//! The streaming executor: jobs from the planner, footprints assembled from decoded
//! chunks (each decoded once while its neighbours need it), computed, and written,
//! with bounded memory, resume, shards and per-stage timings.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::Backend;
use crate::block::{Block, BlockAny, take_buffer};
use crate::cpu;
use crate::dtype::{DType, match_any, with_dtype};
use crate::error::{Error, Result};
use crate::plan::{Job, Plan};
use crate::region::{AxisSet, Grid, Region, unravel};

/// Where a run reads its input: an array that decodes a region at a time.
pub trait Source: Sync {
    /// The array shape.
    fn shape(&self) -> &[usize];
    /// The element type.
    fn dtype(&self) -> DType;
    /// The unit of decoding: the (inner) chunk shape. Footprints are assembled from
    /// whole units, each decoded once while jobs still need it.
    fn read_chunk_shape(&self) -> Vec<usize>;
    /// Decodes `region` (inside the array) into a dense block.
    fn read_region(&self, region: &Region) -> Result<BlockAny<'static>>;
}

/// Where a run writes its output: an array written a block of whole chunks at a time.
pub trait Sink: Sync {
    /// Stores `block` (dense over `region`, a whole number of chunks) atomically per chunk.
    fn write(&self, region: &Region, block: &BlockAny<'_>) -> Result<()>;
    /// Whether every chunk of `region` is already written (a finished job).
    fn region_done(&self, region: &Region) -> Result<bool>;
    /// Waits until every write so far is durable and visible (writes may complete in
    /// the background).
    fn flush(&self) -> Result<()>;
}

/// One of `count` processes sharing a run: `index` in `0..count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This process's share, from 0.
    pub index: usize,
    /// How many processes share the jobs.
    pub count: usize,
}

impl Shard {
    /// The whole run in one process.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// A shard, checked (`index < count`).
    pub fn new(index: usize, count: usize) -> Result<Shard> {
        if count == 0 || index >= count {
            return Err(Error::InvalidParameter {
                op: "shard",
                message: format!("shard {index}/{count} is out of range (need 0 <= I < N)"),
            });
        }
        Ok(Shard { index, count })
    }

    /// This shard's jobs out of `total`: a contiguous range, so that neighbouring jobs
    /// (which share halo chunks) run in the same process.
    pub fn jobs(&self, total: usize) -> std::ops::Range<usize> {
        let start = total * self.index / self.count;
        let end = total * (self.index + 1) / self.count;
        start..end
    }
}

/// Options of a streaming run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Worker threads (jobs in flight).
    pub threads: usize,
    /// Memory budget in bytes for jobs in flight and decoded chunks.
    pub memory_limit: u64,
    /// This process's share of the jobs.
    pub shard: Shard,
    /// Redo jobs already written.
    pub overwrite: bool,
    /// Where jobs compute.
    pub backend: Backend,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_limit: default_memory_limit(),
            shard: Shard::ALL,
            overwrite: false,
            backend: Backend::Cpu,
        }
    }
}

/// A quarter of the machine's memory (1 GiB if it cannot be read).
pub fn default_memory_limit() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024);
    total.map_or(1 << 30, |t| t / 4)
}

/// Seconds spent per stage, summed over workers.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct StageSeconds {
    /// Reading and decoding input chunks, assembling footprints.
    pub read: f64,
    /// Running the kernels.
    pub compute: f64,
    /// Encoding and storing output chunks.
    pub write: f64,
}

/// What a run did, for the closing summary and `--report`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Report {
    /// Jobs in this process's share.
    pub jobs_total: usize,
    /// Jobs computed and written by this run.
    pub jobs_done: usize,
    /// Jobs found already written and skipped.
    pub jobs_skipped: usize,
    /// Decoded input bytes.
    pub bytes_read: u64,
    /// Output bytes written (before encoding).
    pub bytes_written: u64,
    /// Input chunks decoded.
    pub chunks_decoded: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Seconds per stage, summed over workers.
    pub stages: StageSeconds,
    /// The backend and adapter that computed.
    pub device: String,
    /// The process's peak resident memory so far (Linux `VmHWM`; 0 where unknown).
    pub peak_rss_bytes: u64,
}

/// The process's peak resident set size (`VmHWM` in `/proc/self/status`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Called after every finished or skipped job with (jobs finished so far, bytes written).
pub type Progress<'a> = &'a (dyn Fn(usize, u64) + Sync);

/// Runs `plan` from `source` to `sink` on the CPU.
pub fn run(
    plan: &Plan,
    source: &dyn Source,
    sink: &dyn Sink,
    options: &RunOptions,
    progress: Option<Progress<'_>>,
) -> Result<Report> {
    let started = Instant::now();
    let range = options.shard.jobs(plan.num_jobs());
    let mut report = Report {
        jobs_total: range.len(),
        device: options.backend.describe(),
        ..Report::default()
    };

    // Resume: jobs whose chunks are all written are done.
    let mut todo = Vec::with_capacity(range.len());
    for index in range {
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

    let cache = ChunkCache::new(source, &todo)?;
    let threads = options.threads.max(1).min(todo.len().max(1));
    let in_flight = RUNTIME_RESERVE
        + threads as u64 * job_bytes(plan, todo.first(), &source.read_chunk_shape());
    if in_flight > options.memory_limit {
        return Err(Error::InvalidParameter {
            op: "memory-limit",
            message: format!(
                "{} jobs in flight need about {} MiB, over the limit of {} MiB; lower --threads or use smaller output chunks",
                threads,
                in_flight >> 20,
                options.memory_limit >> 20
            ),
        });
    }
    cache.set_budget(options.memory_limit - in_flight);

    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let timers = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
    let finished = AtomicUsize::new(report.jobs_skipped);
    let written = AtomicU64::new(0);

    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= todo.len() {
                        break;
                    }
                    let result = run_one(plan, i, &cache, sink, &options.backend, &timers);
                    match result {
                        Ok(bytes) => {
                            let total = written.fetch_add(bytes, Ordering::Relaxed) + bytes;
                            let n = finished.fetch_add(1, Ordering::Relaxed) + 1;
                            if let Some(p) = progress {
                                p(n, total);
                            }
                        }
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .expect("no panic holds it")
                                .get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    // Every chunk written must be committed before the run counts as done; a job's
    // failure is the error to report, a failed commit the next.
    let flushed = sink.flush();
    if let Some(e) = first_error.into_inner().expect("no panic holds it") {
        return Err(e);
    }
    flushed?;

    let secs = |t: &AtomicU64| Duration::from_nanos(t.load(Ordering::Relaxed)).as_secs_f64();
    report.jobs_done = todo.len();
    report.bytes_written = written.into_inner();
    report.bytes_read = cache.bytes_read.load(Ordering::Relaxed);
    report.chunks_decoded = cache.decoded.load(Ordering::Relaxed);
    report.stages = StageSeconds {
        read: secs(&timers[0]),
        compute: secs(&timers[1]),
        write: secs(&timers[2]),
    };
    report.seconds = started.elapsed().as_secs_f64();
    report.peak_rss_bytes = peak_rss_bytes().unwrap_or(0);
    Ok(report)
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
    let result = match backend {
        Backend::Cpu => cpu::run_job(plan, job, &footprint),
        Backend::Gpu(ctx) => crate::gpu::run_job(ctx, plan, job, &footprint)?,
    };
    crate::block::recycle(footprint);
    let t = lap(&timers[1], t);
    sink.write(&job.output, &result)?;
    lap(&timers[2], t);
    let bytes = (job.output.len() * result.dtype().size()) as u64;
    crate::block::recycle(result);
    Ok(bytes)
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
    footprint + chunk + stages
}

/// Decoded input chunks, kept while jobs still need them, and only the part they need.
struct ChunkCache<'a> {
    source: &'a dyn Source,
    jobs: &'a [Job],
    grid: Grid,
    entries: Mutex<HashMap<usize, Entry>>,
    budget: AtomicU64,
    held: AtomicU64,
    bytes_read: AtomicU64,
    decoded: AtomicU64,
}

/// A chunk's place in the cache: decoded once, by the first worker to ask for it.
#[derive(Default)]
struct Slot {
    /// A worker is decoding (or has decoded) the chunk.
    claimed: AtomicBool,
    value: OnceLock<Result<Arc<BlockAny<'static>>, String>>,
}

type Cell = Arc<Slot>;

struct Entry {
    /// The decoded chunk (or the part of it still needed), once a job asked for it.
    chunk: Cell,
    /// The jobs (indices into the run's jobs) that still need this chunk.
    users: Vec<usize>,
}

impl<'a> ChunkCache<'a> {
    fn new(source: &'a dyn Source, jobs: &'a [Job]) -> Result<Self> {
        let grid = Grid::new(source.shape(), &source.read_chunk_shape())?;
        let mut entries: HashMap<usize, Entry> = HashMap::new();
        for (j, job) in jobs.iter().enumerate() {
            for c in chunks_of(&grid, job.footprint()) {
                entries
                    .entry(c)
                    .or_insert_with(|| Entry {
                        chunk: Arc::default(),
                        users: Vec::new(),
                    })
                    .users
                    .push(j);
            }
        }
        Ok(ChunkCache {
            source,
            jobs,
            grid,
            entries: Mutex::new(entries),
            budget: AtomicU64::new(u64::MAX),
            held: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            decoded: AtomicU64::new(0),
        })
    }

    fn set_budget(&self, bytes: u64) {
        self.budget.store(bytes, Ordering::Relaxed);
    }

    /// The dense footprint of job `j`, assembled from its chunks.
    fn footprint(&self, j: usize) -> Result<BlockAny<'static>> {
        let sets = self.jobs[j].footprint();
        let ids = chunks_of(&self.grid, sets);
        // A footprint that is one whole chunk (a pointwise op or a copy on the input's
        // chunks) is that chunk: taken over, not copied, once no other job needs it.
        if let [id] = ids[..] {
            let chunk = self.get(id)?;
            if chunk.sets() == sets {
                self.release(id, j);
                return Ok(Arc::try_unwrap(chunk).unwrap_or_else(|shared| (*shared).clone()));
            }
        }
        let lens: Vec<usize> = sets.iter().map(AxisSet::len).collect();
        let len: usize = lens.iter().product();
        // Chunks are copied in one at a time and let go at once, so that a job holds
        // its footprint and a single decoded chunk, not every chunk its halo touches.
        Ok(with_dtype!(self.source.dtype(), T => {
            // The chunks cover the footprint (it lies inside the array): every element
            // is written below.
            let mut data = take_buffer::<T>(len);
            // Chunks another worker is decoding right now come last, so that this
            // worker copies (or decodes) the others meanwhile instead of waiting.
            let (busy, free): (Vec<usize>, Vec<usize>) = ids.into_iter().partition(|&id| self.busy(id));
            for id in free.into_iter().chain(busy) {
                let chunk = self.get(id)?;
                let chunk = chunk.typed::<T>();
                copy_chunk(&mut data, sets, &Region::bounding(&chunk.sets), &chunk.data);
                self.release(id, j);
            }
            Block::new(sets.to_vec(), std::borrow::Cow::Owned(data)).into_any()
        }))
    }

    /// The region of chunk `id` (clipped to the array).
    fn region(&self, id: usize) -> Region {
        self.grid
            .chunk_region(&unravel(id, &self.grid.grid_shape()))
    }

    fn slot(&self, id: usize) -> Cell {
        let entries = self.entries.lock().expect("no panic holds it");
        Arc::clone(
            &entries
                .get(&id)
                .expect("every footprint chunk is counted")
                .chunk,
        )
    }

    /// Whether another worker is decoding chunk `id` at this moment.
    fn busy(&self, id: usize) -> bool {
        let slot = self.slot(id);
        slot.claimed.load(Ordering::Relaxed) && slot.value.get().is_none()
    }

    fn get(&self, id: usize) -> Result<Arc<BlockAny<'static>>> {
        let cell = self.slot(id);
        cell.claimed.store(true, Ordering::Relaxed);
        // The first reader that fails gets the typed error; others get its message.
        let mut failure = None;
        let value = cell
            .value
            .get_or_init(|| match self.source.read_region(&self.region(id)) {
                Ok(decoded) => {
                    let bytes = bytes_of(&decoded);
                    self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
                    self.decoded.fetch_add(1, Ordering::Relaxed);
                    self.held.fetch_add(bytes, Ordering::Relaxed);
                    Ok(Arc::new(decoded))
                }
                Err(e) => {
                    let message = e.to_string();
                    failure = Some(e);
                    Err(message)
                }
            });
        if let Some(e) = failure {
            return Err(e);
        }
        value.clone().map_err(Error::Read)
    }

    /// Job `j` is done with chunk `id`. Forget the chunk if no job needs it any more,
    /// or if the cache is over its budget (it is decoded again if needed); else keep
    /// only the box the remaining jobs need, once that is at most half of it (after a
    /// chunk's own jobs, its neighbours need only a halo-wide slab).
    fn release(&self, id: usize, j: usize) {
        let mut entries = self.entries.lock().expect("no panic holds it");
        let over = self.held.load(Ordering::Relaxed) > self.budget.load(Ordering::Relaxed);
        let entry = entries.get_mut(&id).expect("counted");
        if let Some(at) = entry.users.iter().position(|&u| u == j) {
            entry.users.swap_remove(at);
        }
        let Some(Ok(block)) = entry.chunk.value.get() else {
            if entry.users.is_empty() {
                entries.remove(&id);
            }
            return;
        };
        let size = bytes_of(block);
        if entry.users.is_empty() || over {
            self.held.fetch_sub(size, Ordering::Relaxed);
            if entry.users.is_empty() {
                entries.remove(&id);
            } else {
                entry.chunk = Arc::default();
            }
            return;
        }
        let held = Region::bounding(block.sets());
        let needed = self.needed(&entry.users, &held);
        if needed.len() * 2 <= held.len() {
            let cropped = crop(block, &held, &needed);
            self.held
                .fetch_sub(size - bytes_of(&cropped), Ordering::Relaxed);
            entry.chunk = Arc::new(Slot {
                claimed: AtomicBool::new(true),
                value: OnceLock::from(Ok(Arc::new(cropped))),
            });
        }
    }

    /// The bounding box, within `held`, of what `users` need of it.
    fn needed(&self, users: &[usize], held: &Region) -> Region {
        let ranges: Vec<std::ops::Range<usize>> = (0..held.ndim())
            .map(|a| {
                let r = held.range(a);
                users
                    .iter()
                    .filter_map(|&u| {
                        let b = self.jobs[u].footprint()[a].bounds();
                        let (lo, hi) = (b.start.max(r.start), b.end.min(r.end));
                        (lo < hi).then_some(lo..hi)
                    })
                    .reduce(|x, y| x.start.min(y.start)..x.end.max(y.end))
                    .unwrap_or(r.start..r.start)
            })
            .collect();
        Region::new(
            ranges.iter().map(|r| r.start).collect(),
            ranges.iter().map(|r| r.len()).collect(),
        )
    }
}

/// Decoded bytes of a block.
fn bytes_of(block: &BlockAny<'_>) -> u64 {
    let len: usize = block.sets().iter().map(AxisSet::len).product();
    (len * block.dtype().size()) as u64
}

/// The part `inner` of `block`, a dense block over the box `outer`.
fn crop(block: &BlockAny<'_>, outer: &Region, inner: &Region) -> BlockAny<'static> {
    let sets = inner.sets();
    match_any!(block, BlockAny, b => {
        let mut data = vec![Default::default(); inner.len()];
        copy_chunk(&mut data, &sets, outer, &b.data);
        Block::new(sets, std::borrow::Cow::Owned(data)).into_any()
    })
}

/// Flat indices (C order) of the chunks of `grid` holding any index of `sets`.
fn chunks_of(grid: &Grid, sets: &[AxisSet]) -> Vec<usize> {
    let cs = grid.chunk_shape();
    let per_axis: Vec<Vec<usize>> = sets
        .iter()
        .zip(cs)
        .map(|(set, &c)| {
            let mut ids: Vec<usize> = set
                .runs()
                .iter()
                .flat_map(|r| r.start / c..=(r.end - 1) / c)
                .collect();
            ids.dedup();
            ids
        })
        .collect();
    let gshape = grid.grid_shape();
    let mut out = vec![0usize];
    for (a, ids) in per_axis.iter().enumerate() {
        out = out
            .iter()
            .flat_map(|base| {
                let n = gshape[a];
                ids.iter().map(move |i| base * n + i)
            })
            .collect();
    }
    out
}

/// Copies the part of a decoded chunk (dense over `region`) that lies in `sets` into
/// `data`, a dense block over `sets`.
fn copy_chunk<T: Copy>(data: &mut [T], sets: &[AxisSet], region: &Region, src: &[T]) {
    let lens: Vec<usize> = sets.iter().map(AxisSet::len).collect();
    let strides = crate::block::c_strides(&lens);
    let src_strides = crate::block::c_strides(&region.shape);
    let last = sets.len() - 1;
    // Per axis: (destination position, source index in the chunk, length) pieces.
    let pieces: Vec<Vec<(usize, usize, usize)>> = (0..sets.len())
        .map(|a| {
            let r = region.range(a);
            sets[a]
                .runs()
                .iter()
                .filter_map(|run| {
                    let lo = run.start.max(r.start);
                    let hi = run.end.min(r.end);
                    (lo < hi)
                        .then(|| (sets[a].position(lo).expect("in set"), lo - r.start, hi - lo))
                })
                .collect()
        })
        .collect();
    // Expand leading axes to single rows.
    let mut rows = vec![(0usize, 0usize)];
    for a in 0..last {
        let (ds, ss) = (strides[a], src_strides[a]);
        rows = rows
            .iter()
            .flat_map(|&(d, s)| {
                pieces[a].iter().flat_map(move |&(dp, sp, n)| {
                    (0..n).map(move |i| (d + (dp + i) * ds, s + (sp + i) * ss))
                })
            })
            .collect();
    }
    for (d, s) in rows {
        for &(dp, sp, n) in &pieces[last] {
            data[d + dp..d + dp + n].copy_from_slice(&src[s + sp..s + sp + n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_jobs_into_contiguous_disjoint_ranges() {
        let parts: Vec<_> = (0..3).map(|i| Shard::new(i, 3).unwrap().jobs(10)).collect();
        assert_eq!(parts, vec![0..3, 3..6, 6..10]);
        assert!(Shard::new(3, 3).is_err());
        assert!(Shard::new(0, 0).is_err());
    }

    #[test]
    fn chunks_of_a_wrapped_footprint() {
        let grid = Grid::new(&[10, 10], &[4, 4]).unwrap();
        let sets = [
            AxisSet::from_ranges([0..2, 9..10]),
            AxisSet::from_range(3..5),
        ];
        // rows chunks {0, 2}, columns chunks {0, 1}; grid is 3 x 3.
        assert_eq!(chunks_of(&grid, &sets), vec![0, 1, 6, 7]);
    }
}
