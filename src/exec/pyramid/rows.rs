//! The rows path: a step with a halo (the Gaussian method) streams level 0 in slabs of
//! chunk rows into a window of rows, computes level 1's rows as soon as every level-0
//! row they read is decoded, and hands level 1's finished chunk rows to the writer.

use super::pieces::{
    OnePassPyramid, Pieces, chunk_cuts, chunk_pieces, compute_parts, level0_shares, paste_block,
    read_parts, zeroed,
};
use crate::block::{Block, BlockAny, paste};
use crate::dtype::with_dtype;
use crate::error::Result;
use crate::exec::options::RunOptions;
use crate::plan::Plan;
use crate::region::Region;

impl OnePassPyramid<'_> {
    /// Reads `level0` (level 0's `needs[0]`) in slabs of whole chunk rows along the
    /// first axis, each slab's share of `owned[0]` going to the writer as soon as it is
    /// decoded. With a `step` (its plan and level 1's `needs[1]`), level 1's rows are
    /// computed as soon as every level-0 row they read has been decoded, and its
    /// finished chunk rows of `owned[1]` go to the writer too; only the level-0 rows
    /// that later level-1 rows still read (a step's halo) are kept from one slab to the
    /// next, so level 0 is never held whole. Returns level 1's block.
    pub(super) fn stream_rows(
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
    pub(super) fn finished_rows(
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
}
