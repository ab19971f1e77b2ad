//! A Zarr run on a GPU as a stream: the jobs go in slabs (the jobs of one row along
//! the streamed axis, cut into tiles across the next axis where a whole row would
//! not fit the memory limit), and three threads overlap:
//!
//! - a decoder decodes, ahead of need, the rows of input chunks holding the planes
//!   each slab's window lacks on the device (zarrs spreads each row's chunks over
//!   rayon's pool);
//! - the driver (the calling thread) alone talks to the device: it gathers each
//!   slab's missing planes into staging memory, submits the slab
//!   ([`SlabStream::start`]), and keeps two slabs in flight, cutting each finished
//!   slab's output into its jobs' blocks straight from mapped readback memory;
//! - a writer encodes and stores the jobs' blocks on threads of its own.
//!
//! Planes a slab shares with the one before stay on the device, so along the
//! streamed axis each decoded byte crosses the host link once. A device error
//! stops the stream: the jobs not yet written go back to the job-by-job path (which
//! retries them on the device, one job at a time, or computes them on the CPU).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Instant;

use super::io::{Sink, Source};
use super::{RUNTIME_RESERVE, RunOptions, Tally};
use crate::backend::Backend;
use crate::block::{Block, BlockAny, Placed, copy_box};
use crate::dtype::match_any;
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, SlabStream, missing_planes, streamable};
use crate::plan::{Job, Plan};
use crate::region::{AxisSet, Grid, Region, unravel};
use crate::workers::{Workers, for_each_job};

/// A planned stream: the axis and the slabs, in the order they run.
pub(super) struct Stream {
    axis: usize,
    slabs: Vec<SlabPlan>,
    /// The writer's threads (`--threads`).
    threads: usize,
}

/// One slab: the todo jobs it computes, its index sets, the input rows it decodes.
struct SlabPlan {
    /// The bounding box of its jobs' outputs (what the device computes).
    output: Region,
    /// Indices into the run's todo jobs.
    jobs: Vec<usize>,
    /// Per stage input, then the output (`Plan::sets_for(output)`).
    sets: Vec<Vec<AxisSet>>,
    /// The input rows holding the planes its window lacks.
    needs: Vec<Region>,
    /// Those of `needs` that the slab before did not need: decoded for this one.
    reads: Vec<Region>,
}

/// What the stream did, for the run's report.
#[derive(Default)]
pub(super) struct Streamed {
    /// Todo jobs written, by index.
    pub(super) written: Vec<bool>,
    /// Decoded input bytes and chunks.
    pub(super) bytes_read: u64,
    pub(super) chunks_decoded: u64,
    /// Seconds decoding, driving the device, writing (as the run's stage seconds).
    pub(super) seconds: [f64; 3],
}

impl Stream {
    /// Plans the stream of `todo` (jobs of `plan`, in order) on `options.backend`, or
    /// `None` where the run goes job by job instead: on the CPU, for a single job,
    /// into a sharded output (whose shards are written one after another), where a
    /// stage runs on the host, or where even a slab one job wide would not fit the
    /// memory limit or a device binding.
    pub(super) fn plan(
        plan: &Plan,
        todo: &[Job],
        source: &dyn Source,
        sink: &dyn Sink,
        options: &RunOptions,
    ) -> Option<Stream> {
        let Backend::Gpu(ctx) = &options.backend else {
            return None;
        };
        if todo.len() < 2 || sink.write_unit().is_some() || ctx.check_fault().is_err() {
            return None;
        }
        let grid = Grid::new(plan.output_shape(), plan.block_shape())
            .ok()?
            .grid_shape();
        let ndim = grid.len();
        let axis = stream_axis(plan, &grid);
        let budget = options.memory_limit.saturating_sub(RUNTIME_RESERVE);
        let mut width = if axis + 1 < ndim { grid[axis + 1] } else { 1 };
        loop {
            let fits = probes(plan, &grid, axis, width).iter().all(|region| {
                let sets = plan.sets_for(region);
                streamable(ctx, plan, &sets, axis) && slab_bytes(plan, &sets) <= budget
            });
            if fits {
                break;
            }
            if width == 1 {
                return None;
            }
            width = width.div_ceil(2);
        }

        // Slabs: the todo jobs grouped by their row (the axes up to the streamed one)
        // and tile (the next axis); in the order prefix, tile, row, so that a slab
        // follows the one whose planes it shares.
        let mut groups: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
        for (i, job) in todo.iter().enumerate() {
            let at = unravel(job.index, &grid);
            let mut key = at[..axis].to_vec();
            if axis + 1 < ndim {
                key.push(at[axis + 1] / width);
            }
            key.push(at[axis]);
            groups.entry(key).or_default().push(i);
        }
        let read_chunk = source.read_chunk_shape();
        let input_shape = plan.input_shape();
        let mut slabs: Vec<SlabPlan> = Vec::with_capacity(groups.len());
        for jobs in groups.into_values() {
            let output = Region::bounding(
                &(0..ndim)
                    .map(|a| AxisSet::from_ranges(jobs.iter().map(|&j| todo[j].output.range(a))))
                    .collect::<Vec<_>>(),
            );
            let sets = plan.sets_for(&output);
            if !streamable(ctx, plan, &sets, axis) || slab_bytes(plan, &sets) > budget {
                // An edge slab whose planes are not whole words: its jobs go one by one.
                continue;
            }
            let previous = slabs.last().map(|s| &s.sets[0][..]);
            let missing = missing_planes(previous, &sets[0], axis);
            let needs = rows(
                &missing,
                &sets[0],
                axis,
                read_chunk[axis],
                input_shape[axis],
            );
            let reads = match slabs.last() {
                Some(s) => needs
                    .iter()
                    .filter(|r| !s.needs.contains(r))
                    .cloned()
                    .collect(),
                None => needs.clone(),
            };
            slabs.push(SlabPlan {
                output,
                jobs,
                sets,
                needs,
                reads,
            });
        }
        (!slabs.is_empty()).then_some(Stream {
            axis,
            slabs,
            threads: options.threads.max(1),
        })
    }

    /// Runs the stream: every todo job computed on `ctx` and written to `sink`, or,
    /// after a device error (recorded on `ctx`), those written so far.
    pub(super) fn run(
        &self,
        ctx: &GpuContext,
        plan: &Plan,
        todo: &[Job],
        source: &dyn Source,
        sink: &dyn Sink,
        tally: &Tally<'_>,
    ) -> Result<Streamed> {
        let written: Vec<AtomicBool> = todo.iter().map(|_| AtomicBool::new(false)).collect();
        let timers = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
        let lap = |t: &AtomicU64, since: Instant| {
            t.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
        };
        let (bytes_read, chunks_decoded) = (AtomicU64::new(0), AtomicU64::new(0));
        let read_grid = Grid::new(source.shape(), &source.read_chunk_shape()).ok();

        let (read_timer, bytes, chunks, grid) =
            (&timers[0], &bytes_read, &chunks_decoded, &read_grid);
        let driven = std::thread::scope(|scope| {
            let (row_tx, row_rx) = sync_channel::<Result<BlockAny<'static>>>(1);
            let decoder = scope.spawn(move || {
                for region in self.slabs.iter().flat_map(|s| &s.reads) {
                    let t = Instant::now();
                    let row = source.read_region(region);
                    lap(read_timer, t);
                    if let Ok(block) = &row {
                        bytes.fetch_add(
                            (region.len() * block.dtype().size()) as u64,
                            Ordering::Relaxed,
                        );
                        if let Some(g) = grid {
                            let n = g.chunks_touching(&region.sets()).len();
                            chunks.fetch_add(n as u64, Ordering::Relaxed);
                        }
                    }
                    let failed = row.is_err();
                    if row_tx.send(row).is_err() || failed {
                        break;
                    }
                }
            });
            let (out_tx, out_rx) = sync_channel::<Vec<(usize, BlockAny<'static>)>>(1);
            let writer = scope.spawn(|| -> Result<()> {
                for blocks in out_rx {
                    let t = Instant::now();
                    for_each_job(Workers::Threads(self.threads), blocks.len(), |k| {
                        let (j, block) = &blocks[k];
                        sink.write(&todo[*j].output, block)?;
                        written[*j].store(true, Ordering::Relaxed);
                        let output = &todo[*j].output;
                        tally.job_written((output.len() * block.dtype().size()) as u64);
                        Ok(())
                    })?;
                    lap(&timers[2], t);
                }
                Ok(())
            });
            let driven = self.drive(
                ctx,
                plan,
                todo,
                &row_rx,
                |blocks| out_tx.send(blocks).is_ok(),
                &timers[1],
            );
            drop(out_tx);
            drop(row_rx);
            let wrote = writer.join().expect("the writer does not panic");
            decoder.join().expect("the decoder does not panic");
            driven.and(wrote)
        });

        let secs = |t: &AtomicU64| t.load(Ordering::Relaxed) as f64 * 1e-9;
        let streamed = Streamed {
            written: written.iter().map(|w| w.load(Ordering::Relaxed)).collect(),
            bytes_read: bytes_read.into_inner(),
            chunks_decoded: chunks_decoded.into_inner(),
            seconds: [secs(&timers[0]), secs(&timers[1]), secs(&timers[2])],
        };
        match driven {
            Ok(()) => Ok(streamed),
            Err(Error::Gpu { message }) => {
                ctx.record_fault(format!(
                    "{message} (streaming stopped; the remaining jobs ran one by one)"
                ));
                Ok(streamed)
            }
            Err(e) => Err(e),
        }
    }

    /// The driver: each slab's rows received, its missing planes gathered and the
    /// slab submitted, two in flight, each finished one cut into its jobs' blocks and
    /// handed to `write` (false: the writer has stopped).
    fn drive(
        &self,
        ctx: &GpuContext,
        plan: &Plan,
        todo: &[Job],
        rows: &Receiver<Result<BlockAny<'static>>>,
        write: impl Fn(Vec<(usize, BlockAny<'static>)>) -> bool,
        timer: &AtomicU64,
    ) -> Result<()> {
        let axis = self.axis;
        let to = crate::gpu::window_dtype(plan);
        let mut device = SlabStream::new(ctx, plan, axis);
        // The pipelines compile while the decoder decodes the first rows.
        if let Some(first) = self.slabs.first() {
            device.warm(&first.sets)?;
        }
        let mut held: Vec<(Region, BlockAny<'static>)> = Vec::new();
        let mut flights = VecDeque::new();
        let mut busy = std::time::Duration::ZERO;
        let finish = |(i, slab): (usize, crate::gpu::Slab)| -> Result<bool> {
            let s: &SlabPlan = &self.slabs[i];
            let blocks = slab.finish(ctx, |block| cut(block, &s.output, &s.jobs, todo))?;
            Ok(write(blocks))
        };
        for (i, slab) in self.slabs.iter().enumerate() {
            for region in &slab.reads {
                let block = rows.recv().map_err(|_| Error::Gpu {
                    message: "the decoder stopped".into(),
                })??;
                held.push((region.clone(), block));
            }
            let t = Instant::now();
            let window = &slab.sets[0];
            let started = device.start(&slab.sets, |missing, dst| {
                gather(&held, missing, window, axis, to, dst);
            });
            let flight = match started {
                Ok(flight) => flight,
                Err(e) => {
                    // The slabs already submitted may still be good (after running out
                    // of memory): keep them if they finish.
                    while let Some(flight) = flights.pop_front() {
                        if !matches!(finish(flight), Ok(true)) {
                            break;
                        }
                    }
                    return Err(e);
                }
            };
            held.retain(|(r, _)| self.slabs.get(i + 1).is_some_and(|n| n.needs.contains(r)));
            flights.push_back((i, flight));
            if flights.len() >= 2 && !finish(flights.pop_front().expect("two in flight"))? {
                break;
            }
            busy += t.elapsed();
        }
        let t = Instant::now();
        while let Some(flight) = flights.pop_front() {
            if !finish(flight)? {
                break;
            }
        }
        busy += t.elapsed();
        timer.fetch_add(busy.as_nanos() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// The axis to stream along. A window's planes along it must be contiguous, so every
/// axis before it must be one index wide in a job's input (time points, channels
/// chunked one at a time): among the axes up to the first that is not, the first
/// along which neighbouring jobs' inputs overlap (a halo), else the first with more
/// than one job.
fn stream_axis(plan: &Plan, grid: &[usize]) -> usize {
    let first = plan.job(0);
    let last = (0..grid.len())
        .find(|&a| first.sets[0][a].len() > 1)
        .unwrap_or(grid.len() - 1);
    let strides = crate::block::c_strides(grid);
    let overlaps = |a: usize| {
        grid[a] > 1 && {
            let next = plan.job(strides[a]);
            first.sets[0][a].bounds().end > next.sets[0][a].bounds().start
        }
    };
    (0..=last)
        .find(|&a| overlaps(a))
        .or_else(|| (0..=last).find(|&a| grid[a] > 1))
        .unwrap_or(0)
}

/// The largest slabs `width` jobs wide across the axis after `axis`: the first and
/// an inner row (whose window has halos on both sides), the first and an inner tile.
fn probes(plan: &Plan, grid: &[usize], axis: usize, width: usize) -> Vec<Region> {
    let block = plan.block_shape();
    let out = plan.output_shape();
    let mut regions = Vec::new();
    for row in [0, 1.min(grid[axis] - 1)] {
        let tiles = if axis + 1 < grid.len() && grid[axis + 1] > width {
            vec![0, 1]
        } else {
            vec![0]
        };
        for tile in tiles {
            let mut start = vec![0; out.len()];
            let mut shape = out.to_vec();
            for a in 0..=axis {
                start[a] = if a == axis { row * block[a] } else { 0 };
                shape[a] = block[a].min(out[a] - start[a]);
            }
            if axis + 1 < out.len() {
                let a = axis + 1;
                start[a] = (tile * width * block[a]).min(out[a] - 1);
                shape[a] = (width * block[a]).min(out[a] - start[a]);
            }
            regions.push(Region::new(start, shape));
        }
    }
    regions
}

/// The host and device memory a slab over `sets` holds at the stream's peak, about:
/// two slabs in flight (their windows and every stage's output on the device, their
/// outputs read back and cut into blocks) and three windows of decoded rows.
fn slab_bytes(plan: &Plan, sets: &[Vec<AxisSet>]) -> u64 {
    let len = |s: &[AxisSet]| s.iter().map(AxisSet::len).product::<usize>() as u64;
    let window = len(&sets[0]) * plan.input_dtype().size().max(4) as u64;
    let stages: u64 = (1..sets.len())
        .map(|k| len(&sets[k]) * plan.dtype_at(k).size().max(4) as u64)
        .sum();
    let out = len(sets.last().expect("an output")) * plan.output_dtype().size() as u64;
    2 * (window + stages) + 3 * window + 4 * out
}

/// The rows of input chunks along `axis` (each a read-chunk's extent along it,
/// clipped to the array's `extent`; the window's bounding box on the other axes)
/// that hold the planes `missing`.
fn rows(
    missing: &AxisSet,
    window: &[AxisSet],
    axis: usize,
    chunk: usize,
    extent: usize,
) -> Vec<Region> {
    let bounds = Region::bounding(window);
    let mut out: Vec<Region> = Vec::new();
    for run in missing.runs() {
        for r in run.start / chunk..run.end.div_ceil(chunk) {
            let mut region = bounds.clone();
            region.start[axis] = r * chunk;
            region.shape[axis] = chunk.min(extent - r * chunk);
            if !out.contains(&region) {
                out.push(region);
            }
        }
    }
    out
}

/// Writes the planes `missing` of a window over `window` (as `to` elements, plane
/// after plane) from the decoded rows `held`.
fn gather(
    held: &[(Region, BlockAny<'static>)],
    missing: &AxisSet,
    window: &[AxisSet],
    axis: usize,
    to: crate::dtype::DType,
    mut dst: wgpu::WriteOnly<'_, [u8]>,
) {
    let plane: usize = window
        .iter()
        .enumerate()
        .filter(|&(a, _)| a != axis)
        .map(|(_, s)| s.len())
        .product::<usize>()
        * to.size();
    for run in missing.runs() {
        let mut at = run.start;
        while at < run.end {
            let (row, block) = held
                .iter()
                .find(|(r, _)| r.range(axis).contains(&at))
                .expect("the decoder delivers every row a slab needs");
            let end = run.end.min(row.range(axis).end);
            let mut sets = window.to_vec();
            sets[axis] = AxisSet::from_range(at..end);
            let (part, rest) = dst.split_at((end - at) * plane);
            crate::cpu::gather_bytes(block, &sets, to, part);
            dst = rest;
            at = end;
        }
    }
}

/// The blocks of `jobs` (indices into `todo`) cut from `block`, a slab's output over
/// `output`.
fn cut(
    block: &BlockAny<'_>,
    output: &Region,
    jobs: &[usize],
    todo: &[Job],
) -> Vec<(usize, BlockAny<'static>)> {
    jobs.iter()
        .map(|&j| {
            let region = &todo[j].output;
            let origin: Vec<usize> = (0..region.ndim())
                .map(|a| region.start[a] - output.start[a])
                .collect();
            let zero = vec![0; region.ndim()];
            let piece = match_any!(block, BlockAny, b => {
                let mut data = crate::block::take_buffer(region.len());
                copy_box(
                    &region.shape,
                    &b.data,
                    Placed::at(&output.shape, &origin),
                    &mut data,
                    Placed::at(&region.shape, &zero),
                );
                Block::new(region.sets(), std::borrow::Cow::Owned(data)).into_any()
            });
            (j, piece)
        })
        .collect()
}
