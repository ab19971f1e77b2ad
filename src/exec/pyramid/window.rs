//! The window path: a step without a halo (a window reduction) makes level 1 from each
//! decoded piece of whole level-0 chunks as it arrives.

use super::pieces::{
    OnePassPyramid, Pieces, chunk_cuts, chunk_pieces, hull, level0_shares, read_parts, zeroed,
};
use crate::block::{Block, BlockAny, paste};
use crate::dtype::with_dtype;
use crate::error::Result;
use crate::exec::options::RunOptions;
use crate::plan::{Job, Plan};
use crate::region::Region;

impl OnePassPyramid<'_> {
    /// Level 0's `needs[0]` in slabs of whole chunk rows, each cut into pieces of whole
    /// chunks ([`chunk_pieces`]), with each piece's share of level 1 (the level-1
    /// indices whose windows lie in it), if the step from level 0 reads no index
    /// outside the piece its outputs come from (a window method; not a Gaussian, whose
    /// halo crosses the pieces), and if each piece's share of `owned` is whole chunks
    /// of level 0's output. Then level 1 is computed piece by piece, and level 0 is
    /// never held whole.
    #[allow(clippy::type_complexity)]
    pub(super) fn level1_by_part(
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
    pub(super) fn share(&self, part: &Region, level0: &Region, level1: &Region) -> Region {
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
    /// [`OnePassPyramid::level1_by_part`]), sending each piece's share of `owned[0]` to the
    /// writer and computing its share of level 1 into one block over `region`; the
    /// chunk rows of level 1's `owned[1]` go to the writer as soon as they are complete
    /// (the caller does not write level 1 again).
    pub(super) fn stream_level1(
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
}
