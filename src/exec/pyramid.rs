//! Multiscale pyramids in one streamed pass over level 0.
//!
//! Level k + 1 is `step` applied to level k. The work is cut into tiles, one per
//! chunk of the coarsest level: a tile owns that chunk and, at every finer level, the
//! region it comes from (whole chunks when each level's chunk divides the factor times
//! the next one's). A tile reads level 0 once over the region its chain needs (its
//! own region plus the steps' halos), computes every level from the one before in
//! memory (in parallel pieces, on the run's backend), and writes its chunks of every
//! level: nothing is read back from disk, and each level equals the previous one
//! stepped down, whatever the tiling. A tile whose chunks all exist is skipped
//! (resume), and `--part` splits the tiles.

use std::time::Instant;

use super::io::{Sink, Source};
use super::options::{Progress, RunOptions};
use super::report::{Report, peak_rss_bytes};
use crate::block::{Block, BlockAny, paste};
use crate::dtype::with_dtype;
use crate::error::Result;
use crate::ops::Pipeline;
use crate::plan::{Job, Plan};
use crate::region::{AxisSet, Grid, Region};

/// A pyramid: level 0 (`source`) and the levels written to `sinks[1..]`
/// (`sinks[0]` receives level 0 itself).
pub struct Pyramid<'a> {
    /// Level 0.
    pub source: &'a dyn Source,
    /// One output per level, level 0 first.
    pub sinks: Vec<&'a dyn Sink>,
    /// Each level's chunk shape, level 0 first.
    pub chunks: Vec<Vec<usize>>,
    /// What makes a level from the one before.
    pub step: Pipeline,
    /// The step's downsampling factor per axis.
    pub factor: Vec<usize>,
    /// Stores level 0's chunks of a region (whole chunks) as the source holds them
    /// encoded, returning `false` if it could not (a chunk absent from the source):
    /// where the output encodes chunks as the source does, level 0 is not encoded
    /// again. `None`: level 0 is written from its decoded values.
    pub copy_level0: Option<&'a CopyEncoded<'a>>,
}

/// Stores a region's chunks (whole chunks) of level 0 as the source holds them
/// encoded; `false` if it could not (see [`Pyramid::copy_level0`]).
pub type CopyEncoded<'a> = dyn Fn(&Region) -> Result<bool> + Sync + 'a;

/// What the writer thread receives: regions of a level (its index first) with blocks
/// holding them.
type Pieces = Vec<(usize, Region, BlockAny<'static>)>;

/// Each level's shape, and the plan of the step from the level before (none for
/// level 0).
type Levels = (Vec<Vec<usize>>, Vec<Option<Plan>>);

/// A zeroed buffer of `n` elements, backed by transparent huge pages where Linux
/// offers them (a tile's buffers are hundreds of megabytes: first-touch page faults
/// would cost as much as filling them).
fn zeroed<T: crate::dtype::Element>(n: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    crate::in_memory::advise_huge_pages(&mut v);
    v.resize(n, T::default());
    v
}

/// The smallest box holding `sets` (each axis's bounds).
fn hull(sets: &[AxisSet]) -> Region {
    Region {
        start: sets.iter().map(|s| s.bounds().start).collect(),
        shape: sets.iter().map(|s| s.bounds().len()).collect(),
    }
}

/// The smallest box holding both.
fn union(a: &Region, b: &Region) -> Region {
    let start: Vec<usize> = (0..a.ndim()).map(|i| a.start[i].min(b.start[i])).collect();
    let shape = (0..a.ndim())
        .map(|i| (a.start[i] + a.shape[i]).max(b.start[i] + b.shape[i]) - start[i])
        .collect();
    Region { start, shape }
}

impl Pyramid<'_> {
    /// Each level's shape and the plan of the step from the level before (none for
    /// level 0).
    fn plans(&self) -> Result<Levels> {
        let mut shapes = vec![self.source.shape().to_vec()];
        let mut dtype = self.source.dtype();
        let mut plans = vec![None];
        for k in 1..self.sinks.len() {
            let plan = Plan::new(
                &self.step,
                &shapes[k - 1],
                dtype,
                &self.chunks[k],
                &self.chunks[k],
            )?;
            shapes.push(plan.output_shape().to_vec());
            dtype = plan.output_dtype();
            plans.push(Some(plan));
        }
        Ok((shapes, plans))
    }

    /// Per level, the region a tile owns: its chunk of the coarsest level `top`, and at
    /// each finer level the windows that chunk comes from (scaled by the factor,
    /// clipped to the level).
    fn owned(&self, shapes: &[Vec<usize>], top: &Region) -> Vec<Region> {
        let levels = self.sinks.len();
        let mut owned = vec![top.clone(); levels];
        for k in (0..levels - 1).rev() {
            let coarse = &owned[k + 1];
            let (start, shape) = (0..coarse.ndim())
                .map(|a| {
                    let f = self.factor[a];
                    let start = (coarse.start[a] * f).min(shapes[k][a]);
                    let end = ((coarse.start[a] + coarse.shape[a]) * f).min(shapes[k][a]);
                    (start, end - start)
                })
                .unzip();
            owned[k] = Region { start, shape };
        }
        owned
    }

    /// Whether every tile owns whole chunks at every level (each chunk-aligned, ending
    /// on a chunk boundary or the level's edge).
    fn aligned(&self, shapes: &[Vec<usize>], grid: &Grid) -> bool {
        (0..grid.num_chunks()).all(|t| {
            let top = grid.chunk_region(&crate::region::unravel(t, &grid.grid_shape()));
            self.owned(shapes, &top).iter().enumerate().all(|(k, r)| {
                (0..r.ndim()).all(|a| {
                    let c = self.chunks[k][a];
                    let end = r.start[a] + r.shape[a];
                    r.start[a].is_multiple_of(c) && (end.is_multiple_of(c) || end == shapes[k][a])
                })
            })
        })
    }

    /// The bytes a tile holds at once at most, estimated on the first tile, the
    /// largest: every level's block from level 1 on, and of level 0 what streaming it
    /// holds (a slab of chunk rows, and the rows one level-1 row reads: the window of
    /// [`Pyramid::stream_rows`]; the piece path holds less).
    fn tile_bytes(&self, shapes: &[Vec<usize>], plans: &[Option<Plan>], top: &Region) -> u64 {
        let needs = self.needs(plans, &self.owned(shapes, top));
        let size = self.source.dtype().size().max(4) as u64;
        let level0 = &needs[0];
        let footprint = match (plans.get(1).and_then(Option::as_ref), needs.get(1)) {
            (Some(plan), Some(level1)) if !level1.is_empty() => {
                let mut row = level1.clone();
                row.shape[0] = 1;
                plan.sets_for(&row)[0][0].bounds().len()
            }
            _ => 0,
        };
        let rows = (self.chunks[0][0] + footprint).min(level0.shape[0]);
        let window = (rows * level0.shape[1..].iter().product::<usize>()) as u64 * size;
        window
            + needs[1..]
                .iter()
                .map(|r| r.len() as u64 * size)
                .sum::<u64>()
    }

    /// Per level, the region to compute: what it owns, and what the next level's
    /// step reads from it.
    fn needs(&self, plans: &[Option<Plan>], owned: &[Region]) -> Vec<Region> {
        let levels = owned.len();
        let mut needs = owned.to_vec();
        for k in (0..levels - 1).rev() {
            let plan = plans[k + 1].as_ref().expect("a step");
            let sets = plan.sets_for(&needs[k + 1]);
            needs[k] = union(&owned[k], &hull(&sets[0]));
        }
        needs
    }

    /// Reads `level0` (level 0's `needs[0]`) in slabs of whole chunk rows along the
    /// first axis, each slab's share of `owned[0]` going to the writer as soon as it is
    /// decoded. With a `step` (its plan and level 1's `needs[1]`), level 1's rows are
    /// computed as soon as every level-0 row they read has been decoded, and its
    /// finished chunk rows of `owned[1]` go to the writer too; only the level-0 rows
    /// that later level-1 rows still read (a step's halo) are kept from one slab to the
    /// next, so level 0 is never held whole. Returns level 1's block.
    fn stream_rows(
        &self,
        step: Option<(&Plan, &Region)>,
        level0: &Region,
        owned: &[Region],
        options: &RunOptions,
        send: &std::sync::mpsc::SyncSender<Pieces>,
    ) -> Result<Option<BlockAny<'static>>> {
        let threads = rayon::current_num_threads().max(1);
        let plane: usize = level0.shape[1..].iter().product();
        // Level 1: its block, the rows computed and the rows sent to the writer.
        let mut level1 = step.map(|(plan, region)| {
            with_dtype!(plan.output_dtype(), U => {
                Block::new(region.sets(), std::borrow::Cow::Owned(zeroed::<U>(region.len()))).into_any()
            })
        });
        let mut done = step.map_or(0, |(_, region)| region.start[0]);
        let mut sent = owned.get(1).map_or(0, |o| o.start[0]);
        // The level-0 rows that level-1 rows `from..to` read.
        let reads = |plan: &Plan, region: &Region, from: usize, to: usize| {
            let mut rows = region.clone();
            rows.start[0] = from;
            rows.shape[0] = to - from;
            let sets = plan.sets_for(&rows);
            sets[0][0].bounds()
        };
        with_dtype!(self.source.dtype(), T => {
            // The level-0 rows held, in one buffer reused from slab to slab.
            let mut window: Vec<T> = Vec::new();
            let mut held = level0.start[0]..level0.start[0];
            'slabs: for w in chunk_cuts(level0, 0, self.chunks[0][0]).windows(2) {
                let mut slab = level0.clone();
                slab.start[0] = w[0];
                slab.shape[0] = w[1] - w[0];
                if let Some((plan, region)) = step {
                    // Keep the rows that the level-1 rows still to compute read.
                    let end = region.start[0] + region.shape[0];
                    let keep = if done < end {
                        reads(plan, region, done, end).start.clamp(held.start, held.end)
                    } else {
                        held.end
                    };
                    window.drain(..(keep - held.start) * plane);
                    window.reserve(slab.len());
                    held = keep..w[1];
                }
                // The pieces tile the slab: each is pasted into the window's room
                // after the rows kept, which they then fill.
                let pieces = chunk_pieces(self.source, &slab, &self.chunks[0]);
                assert_eq!(pieces.iter().map(Region::len).sum::<usize>(), slab.len());
                // A few pieces at a time (a slab may hold many), so that the writer
                // starts on the first while the next are decoded.
                for group in pieces.chunks(2 * threads) {
                    let blocks = read_parts(self.source, group)?;
                    if step.is_some() {
                        let room = &mut window.spare_capacity_mut()[..slab.len()];
                        for (part, block) in group.iter().zip(&blocks) {
                            let data: &[T] = &block.typed::<T>().data;
                            // SAFETY: MaybeUninit<T> has T's layout, and an initialised
                            // value is a valid MaybeUninit.
                            let data = unsafe { &*(std::ptr::from_ref(data) as *const [std::mem::MaybeUninit<T>]) };
                            paste(&slab, part, data, room);
                        }
                    }
                    if send.send(level0_shares(group, blocks, &owned[0])).is_err() {
                        // The writer stopped on an error, which its join reports.
                        break 'slabs;
                    }
                }
                let Some((plan, region)) = step else { continue };
                // SAFETY: the pieces, which tile the slab (checked above), have filled
                // the `slab.len()` elements of room (reserved) after the rows kept.
                unsafe { window.set_len(window.len() + slab.len()) };
                let mut rows = level0.clone();
                rows.start[0] = held.start;
                rows.shape[0] = held.len();
                // The level-1 rows whose reads are now all decoded.
                let end = region.start[0] + region.shape[0];
                let last = w[1] == level0.start[0] + level0.shape[0];
                let mut to = done;
                while to < end && (last || reads(plan, region, done, to + 1).end <= w[1]) {
                    to += 1;
                }
                if to > done {
                    let mut next = region.clone();
                    next.start[0] = done;
                    next.shape[0] = to - done;
                    let input = Block::new(rows.sets(), std::borrow::Cow::Borrowed(&window[..]));
                    let level1 = level1.as_mut().expect("a step");
                    for (part, computed) in compute_parts(plan, &next, &input.into_any(), options, threads)? {
                        paste_block(level1, region, &part, &computed);
                    }
                    done = to;
                    let finished = self.finished_rows(level1, region, &owned[1], &mut sent, done);
                    if !finished.is_empty() && send.send(finished).is_err() {
                        // The writer stopped on an error, which its join reports.
                        break;
                    }
                }
            }
        });
        Ok(level1)
    }

    /// Level 1's chunk rows of `owned1` from row `sent` up to row `done`, copied out
    /// of `level1` (over `region`) for the writer; `sent` moves past them.
    fn finished_rows(
        &self,
        level1: &BlockAny<'_>,
        region: &Region,
        owned1: &Region,
        sent: &mut usize,
        done: usize,
    ) -> Pieces {
        let c = self.chunks[1][0];
        let end = owned1.start[0] + owned1.shape[0];
        let plane: usize = region.shape[1..].iter().product();
        let mut pieces: Pieces = Vec::new();
        while *sent < end {
            let to = ((*sent / c + 1) * c).min(end);
            if to > done {
                break;
            }
            let mut rows = region.clone();
            rows.start[0] = *sent;
            rows.shape[0] = to - *sent;
            let at = (*sent - region.start[0]) * plane;
            let block = crate::dtype::match_any!(level1, BlockAny, b => {
                Block::new(rows.sets(), std::borrow::Cow::Owned(b.data[at..at + rows.len()].to_vec())).into_any()
            });
            pieces.push((1, rows.intersect(owned1), block));
            *sent = to;
        }
        pieces
    }

    /// Level 0's `needs[0]` in slabs of whole chunk rows, each cut into pieces of whole
    /// chunks ([`chunk_pieces`]), with each piece's share of level 1 (the level-1
    /// indices whose windows lie in it), if the step from level 0 reads no index
    /// outside the piece its outputs come from (a window method; not a Gaussian, whose
    /// halo crosses the pieces), and if each piece's share of `owned` is whole chunks
    /// of level 0's output. Then level 1 is computed piece by piece, and level 0 is
    /// never held whole.
    #[allow(clippy::type_complexity)]
    fn level1_by_part(
        &self,
        plan: &Plan,
        needs: &[Region],
        owned: &Region,
    ) -> Option<Vec<Vec<(Region, Region)>>> {
        let (level0, level1) = (&needs[0], &needs[1]);
        let mut covered = 0;
        let slabs: Vec<Vec<(Region, Region)>> = chunk_cuts(level0, 0, self.chunks[0][0])
            .windows(2)
            .map(|w| {
                let mut slab = level0.clone();
                slab.start[0] = w[0];
                slab.shape[0] = w[1] - w[0];
                chunk_pieces(self.source, &slab, &self.chunks[0])
                    .into_iter()
                    .map(|part| {
                        let share = self.share(&part, level0, level1);
                        (part, share)
                    })
                    .collect()
            })
            .collect();
        let shape = self.source.shape();
        for (part, share) in slabs.iter().flatten() {
            // The level-0 writer stores each piece's share of `owned`: whole chunks.
            let mine = part.intersect(owned);
            let aligned = (0..mine.ndim()).all(|a| {
                let (c, end) = (self.chunks[0][a], mine.start[a] + mine.shape[a]);
                mine.start[a].is_multiple_of(c) && (end.is_multiple_of(c) || end == shape[a])
            });
            if !mine.is_empty() && !aligned {
                return None;
            }
            if share.is_empty() {
                continue;
            }
            let reads = hull(&plan.sets_for(share)[0]);
            let inside = (0..part.ndim()).all(|a| {
                part.start[a] <= reads.start[a]
                    && reads.start[a] + reads.shape[a] <= part.start[a] + part.shape[a]
            });
            if !inside {
                return None;
            }
            covered += share.len();
        }
        // The shares are disjoint (the pieces are): together they must be level 1.
        (covered == level1.len()).then_some(slabs)
    }

    /// The level-1 indices of `level1` whose windows start in `part` of level 0's
    /// `level0` (up to the end of `level1` where `part` reaches the end of `level0`).
    fn share(&self, part: &Region, level0: &Region, level1: &Region) -> Region {
        let (start, shape) = (0..part.ndim())
            .map(|a| {
                let f = self.factor[a].max(1);
                let (lo1, hi1) = (level1.start[a], level1.start[a] + level1.shape[a]);
                let end = part.start[a] + part.shape[a];
                let lo = part.start[a].div_ceil(f).clamp(lo1, hi1);
                let hi = if end == level0.start[a] + level0.shape[a] {
                    hi1
                } else {
                    (end / f).clamp(lo1, hi1)
                };
                (lo, hi.saturating_sub(lo))
            })
            .unzip();
        Region { start, shape }
    }

    /// Reads level 0 slab by slab, each slab's pieces in parallel (`slabs`, from
    /// [`Pyramid::level1_by_part`]), sending each piece's share of `owned[0]` to the
    /// writer and computing its share of level 1 into one block over `region`; the
    /// chunk rows of level 1's `owned[1]` go to the writer as soon as they are complete
    /// (the caller does not write level 1 again).
    fn stream_level1(
        &self,
        plan: &Plan,
        slabs: &[Vec<(Region, Region)>],
        region: &Region,
        owned: &[Region],
        options: &RunOptions,
        send: &std::sync::mpsc::SyncSender<Pieces>,
    ) -> Result<BlockAny<'static>> {
        use rayon::prelude::*;
        let threads = rayon::current_num_threads().max(1);
        let (owned, owned1) = (&owned[0], &owned[1]);
        // Level 1's rows before this one have been sent to the writer.
        let mut sent = owned1.start[0];
        with_dtype!(plan.output_dtype(), U => {
            let mut data = zeroed::<U>(region.len());
            for slab in slabs {
                // A few pieces at a time (a slab may hold many), so that the writer
                // starts on the first while the next are decoded.
                for group in slab.chunks(2 * threads) {
                    let parts: Vec<Region> = group.iter().map(|(part, _)| part.clone()).collect();
                    let blocks = read_parts(self.source, &parts)?;
                    // Each piece's share of level 1: one job of the step, in parallel.
                    let shares = group
                        .par_iter()
                        .zip(&blocks)
                        .filter(|((_, share), _)| !share.is_empty())
                        .map(|((_, share), block)| {
                            let job = Job {
                                index: 0,
                                output: share.clone(),
                                sets: plan.sets_for(share),
                            };
                            Ok((share, options.backend.run_job(plan, &job, block)?))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    for (share, computed) in shares {
                        paste(region, share, &computed.typed::<U>().data, &mut data);
                    }
                    if send.send(level0_shares(&parts, blocks, owned)).is_err() {
                        // The writer stopped on an error, which its join reports.
                        return Ok(Block::new(region.sets(), std::borrow::Cow::Owned(data)).into_any());
                    }
                }
                // Level 1's chunk rows that this slab completed go to the writer too.
                let mut level1: Pieces = Vec::new();
                if let Some((_, share)) = slab.iter().find(|(_, share)| !share.is_empty()) {
                    let view = Block::new(region.sets(), std::borrow::Cow::Borrowed(&data[..]));
                    let done = share.start[0] + share.shape[0];
                    level1 = self.finished_rows(&view.into_any(), region, owned1, &mut sent, done);
                }
                if !level1.is_empty() && send.send(level1).is_err() {
                    // The writer stopped on an error, which its join reports.
                    break;
                }
            }
            Ok(Block::new(region.sets(), std::borrow::Cow::Owned(data)).into_any())
        })
    }

    /// Runs this process's part of the tiles, or returns `None` (having written
    /// nothing) when the levels' chunks do not tile evenly or a tile would not fit in
    /// `options.memory_limit`: then build the levels one chain at a time.
    pub fn run(
        &self,
        options: &RunOptions,
        progress: Option<Progress<'_>>,
    ) -> Result<Option<Report>> {
        let started = Instant::now();
        let (shapes, plans) = self.plans()?;
        let levels = self.sinks.len();
        let top_grid = Grid::new(&shapes[levels - 1], &self.chunks[levels - 1])?;
        let tiles = top_grid.num_chunks();
        let first = top_grid.chunk_region(&vec![0; shapes[0].len()]);
        if !self.aligned(&shapes, &top_grid)
            || self.tile_bytes(&shapes, &plans, &first) > options.memory_limit
        {
            return Ok(None);
        }
        let range = options.part.jobs(tiles);
        let mut report = Report {
            jobs_total: range.len(),
            device: options.backend.describe(),
            device_reason: options.device_reason.clone(),
            ..Report::default()
        };
        let threads = rayon::current_num_threads().max(1);
        for t in range {
            let top = top_grid.chunk_region(&crate::region::unravel(t, &top_grid.grid_shape()));
            let owned = self.owned(&shapes, &top);
            let mut done = true;
            for (sink, region) in self.sinks.iter().zip(&owned) {
                done &= sink.region_done(region)?;
            }
            if done {
                report.jobs_skipped += 1;
                if let Some(p) = progress {
                    p(report.jobs_done + report.jobs_skipped, report.bytes_written);
                }
                continue;
            }
            let needs = self.needs(&plans, &owned);
            let (computed, written, read) = std::thread::scope(|s| -> Result<(f64, f64, f64)> {
                // Level 0 streams in slabs of whole output chunk rows: each slab is
                // written by a writer thread while the next one is read.
                let (send, receive) = std::sync::mpsc::sync_channel::<Pieces>(2);
                let writer = s.spawn(move || -> Result<f64> {
                    let mut seconds = 0.0;
                    for pieces in receive {
                        use rayon::prelude::*;
                        let clock = Instant::now();
                        pieces.par_iter().try_for_each(|(k, region, block)| {
                            match self.copy_level0 {
                                Some(copy) if *k == 0 && copy(region)? => Ok(()),
                                _ => self.sinks[*k].write(region, block),
                            }
                        })?;
                        seconds += clock.elapsed().as_secs_f64();
                    }
                    Ok(seconds)
                });
                // Level 1 is made slab by slab as level 0 is decoded (the read then
                // includes that compute, and level 0 is never held whole): a window
                // step piece by piece, any other step by rows.
                let clock = Instant::now();
                let plan1 = plans.get(1).and_then(Option::as_ref);
                let first =
                    match plan1.and_then(|plan| self.level1_by_part(plan, &needs, &owned[0])) {
                        Some(slabs) => {
                            let plan = plan1.expect("a step");
                            self.stream_level1(plan, &slabs, &needs[1], &owned, options, &send)
                                .map(Some)
                        }
                        None => self.stream_rows(
                            plan1.map(|plan| (plan, &needs[1])),
                            &needs[0],
                            &owned,
                            options,
                            &send,
                        ),
                    };
                drop(send);
                let read = clock.elapsed().as_secs_f64();
                let first = match first {
                    Ok(block) => block,
                    Err(e) => {
                        let _ = writer.join();
                        return Err(e);
                    }
                };
                let clock = Instant::now();
                // `coarser[k - 1]` is level k; level 1 went to the writer as its chunk
                // rows were finished.
                let mut coarser: Vec<BlockAny<'static>> = first.into_iter().collect();
                for k in 2..levels {
                    let plan = plans[k].as_ref().expect("a step");
                    let input = coarser.last().expect("a finer level");
                    let next = compute(plan, &needs[k], input, options, threads)?;
                    coarser.push(next);
                }
                let computed = clock.elapsed().as_secs_f64();
                let clock = Instant::now();
                for (k, block) in coarser.iter().enumerate().skip(1) {
                    self.sinks[k + 1].write(&owned[k + 1], block)?;
                }
                let written = clock.elapsed().as_secs_f64();
                let first = writer.join().expect("the writer does not panic")?;
                Ok((computed, written + first, read))
            })?;
            report.stages.read += read;
            report.bytes_read += (needs[0].len() * self.source.dtype().size()) as u64;
            report.stages.compute += computed;
            report.stages.write += written;
            for k in 0..levels {
                let size = match &plans[k] {
                    Some(plan) => plan.output_dtype().size(),
                    None => self.source.dtype().size(),
                };
                report.bytes_written += (owned[k].len() * size) as u64;
            }
            report.jobs_done += 1;
            if let Some(p) = progress {
                p(report.jobs_done + report.jobs_skipped, report.bytes_written);
            }
        }
        for sink in &self.sinks {
            sink.flush()?;
        }
        report.seconds = started.elapsed().as_secs_f64();
        report.peak_rss_bytes = peak_rss_bytes().unwrap_or(0);
        Ok(Some(report))
    }
}

/// The level-0 pieces `parts`, decoded as `blocks`, for the writer: each with its share
/// of `owned` (whole chunks), those with none left out.
fn level0_shares(parts: &[Region], blocks: Vec<BlockAny<'static>>, owned: &Region) -> Pieces {
    parts
        .iter()
        .zip(blocks)
        .map(|(part, block)| (0, part.intersect(owned), block))
        .filter(|(_, mine, _)| !mine.is_empty())
        .collect()
}

/// `region` cut into pieces on a grid that is both the source's chunks and `chunk`'s
/// coarsened (per axis, their least common multiple): each piece decodes whole source
/// chunks and holds whole output chunks (a whole chunk decodes, and is stored, without
/// a copy).
fn chunk_pieces(source: &dyn Source, region: &Region, chunk: &[usize]) -> Vec<Region> {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let piece: Vec<usize> = source
        .read_chunk_shape()
        .iter()
        .zip(chunk)
        .map(|(&a, &b)| (a.max(1) / gcd(a.max(1), b.max(1))) * b.max(1))
        .collect();
    let grid = Grid::new(source.shape(), &piece).expect("chunk extents are positive");
    grid.chunks_touching(&region.sets())
        .iter()
        .map(|c| grid.chunk_region(c).intersect(region))
        .collect()
}

/// The pieces `parts` of `source`, decoded in parallel.
fn read_parts(source: &dyn Source, parts: &[Region]) -> Result<Vec<BlockAny<'static>>> {
    use rayon::prelude::*;
    parts.par_iter().map(|r| source.read_region(r)).collect()
}

/// Pastes `src` (over `part`) into `dst` (over `region`, of the same type).
fn paste_block(dst: &mut BlockAny<'static>, region: &Region, part: &Region, src: &BlockAny<'_>) {
    crate::dtype::match_any!(dst, BlockAny, d => {
        let src = crate::block::BlockElement::block_ref(src).expect("the same type");
        paste(region, part, &src.data, d.data.to_mut())
    })
}

/// `region` of the step's output, computed from `input` (a block holding what the
/// step reads for it) in about `4 × threads` pieces along the longest axis, in
/// parallel on the run's backend: each piece with its block.
fn compute_parts(
    plan: &Plan,
    region: &Region,
    input: &BlockAny<'_>,
    options: &RunOptions,
    threads: usize,
) -> Result<Vec<(Region, BlockAny<'static>)>> {
    use rayon::prelude::*;
    let axis = (0..region.ndim())
        .max_by_key(|&a| (region.shape[a], std::cmp::Reverse(a)))
        .expect("an axis");
    let n = region.shape[axis];
    let pieces = (4 * threads).clamp(1, n.max(1));
    (0..pieces)
        .map(|i| {
            let (a, b) = (i * n / pieces, (i + 1) * n / pieces);
            let mut r = region.clone();
            r.start[axis] += a;
            r.shape[axis] = b - a;
            r
        })
        .filter(|r| r.shape[axis] > 0)
        .collect::<Vec<Region>>()
        .into_par_iter()
        .map(|part| {
            let job = Job {
                index: 0,
                output: part.clone(),
                sets: plan.sets_for(&part),
            };
            let block = options.backend.run_job(plan, &job, input)?;
            Ok((part, block))
        })
        .collect()
}

/// [`compute_parts`] in one block over `region`.
fn compute(
    plan: &Plan,
    region: &Region,
    input: &BlockAny<'_>,
    options: &RunOptions,
    threads: usize,
) -> Result<BlockAny<'static>> {
    let parts = compute_parts(plan, region, input, options, threads)?;
    let mut block = with_dtype!(plan.output_dtype(), U => {
        Block::new(region.sets(), std::borrow::Cow::Owned(zeroed::<U>(region.len()))).into_any()
    });
    for (part, result) in &parts {
        paste_block(&mut block, region, part, result);
    }
    Ok(block)
}

/// The region's bounds on `axis` cut at every multiple of `chunk` between them: its
/// start, each chunk boundary inside it, its end.
fn chunk_cuts(region: &Region, axis: usize, chunk: usize) -> Vec<usize> {
    let c = chunk.max(1);
    let (start, end) = (region.start[axis], region.start[axis] + region.shape[axis]);
    let mut cuts = vec![start];
    let mut at = (start / c + 1) * c;
    while at < end {
        cuts.push(at);
        at += c;
    }
    cuts.push(end);
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;
    use crate::ops::Op;
    use crate::stage::DownMethod;

    /// Zeros of a shape, read in chunks; nothing is written to it.
    struct Zeros(Vec<usize>, Vec<usize>);

    impl Source for Zeros {
        fn shape(&self) -> &[usize] {
            &self.0
        }
        fn dtype(&self) -> DType {
            DType::F32
        }
        fn read_chunk_shape(&self) -> Vec<usize> {
            self.1.clone()
        }
        fn read_region(&self, region: &Region) -> Result<BlockAny<'static>> {
            Ok(Block::new(
                region.sets(),
                std::borrow::Cow::Owned(vec![0f32; region.len()]),
            )
            .into_any())
        }
    }

    impl Sink for Zeros {
        fn write(&self, _: &Region, _: &BlockAny<'_>) -> Result<()> {
            Ok(())
        }
        fn region_done(&self, _: &Region) -> Result<bool> {
            Ok(false)
        }
        fn flush(&self) -> Result<()> {
            Ok(())
        }
    }

    /// A window step makes level 1 piece by piece, whatever the output's chunks; a step
    /// with a halo reads across the pieces, and makes it by rows ([`Pyramid::stream_rows`]).
    #[test]
    fn window_steps_stream_level_1_and_halo_steps_do_not() {
        let source = Zeros(vec![16, 32, 32], vec![4, 8, 8]);
        let mean = Pipeline::from(Op::downsample(&[2, 2, 2], DownMethod::Mean));
        let smooth = Pipeline::new(vec![
            Op::gaussian(&[1.0]),
            Op::downsample(&[2, 2, 2], DownMethod::Mean),
        ]);
        for (step, chunk, streamed) in [
            (&mean, [4, 8, 8], true),
            (&mean, [8, 8, 8], true),
            (&mean, [4, 16, 16], true),
            (&mean, [4, 12, 12], true),
            (&smooth, [4, 8, 8], false),
        ] {
            let pyramid = Pyramid {
                source: &source,
                sinks: vec![&source, &source, &source],
                chunks: vec![chunk.to_vec(); 3],
                step: step.clone(),
                factor: vec![2, 2, 2],
                copy_level0: None,
            };
            let (shapes, plans) = pyramid.plans().unwrap();
            let top = Region::whole(&shapes[2]);
            let owned = pyramid.owned(&shapes, &top);
            let needs = pyramid.needs(&plans, &owned);
            let plan = plans[1].as_ref().unwrap();
            let parts = pyramid.level1_by_part(plan, &needs, &owned[0]);
            assert_eq!(parts.is_some(), streamed, "{step:?} chunks {chunk:?}");
        }
    }
}
