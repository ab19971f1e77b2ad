//! A pyramid's description, and the pieces its tiles are cut into: chunk rows of
//! level 0 read and handed to the writer, blocks pasted and computed in parallel.

use crate::block::{Block, BlockAny, paste};
use crate::dtype::with_dtype;
use crate::error::Result;
use crate::exec::io::{Sink, Source};
use crate::exec::options::RunOptions;
use crate::ops::Pipeline;
use crate::plan::{Job, Plan};
use crate::region::{AxisSet, Grid, Region};

/// A pyramid: level 0 (`source`) and the levels written to `sinks[1..]`
/// (`sinks[0]` receives level 0 itself).
pub struct OnePassPyramid<'a> {
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
/// encoded; `false` if it could not (see [`OnePassPyramid::copy_level0`]).
pub type CopyEncoded<'a> = dyn Fn(&Region) -> Result<bool> + Sync + 'a;

/// What the writer thread receives: regions of a level (its index first) with blocks
/// holding them.
pub(super) type Pieces = Vec<(usize, Region, BlockAny<'static>)>;

/// Each level's shape, and the plan of the step from the level before (none for
/// level 0).
pub(super) type Levels = (Vec<Vec<usize>>, Vec<Option<Plan>>);

/// A zeroed buffer of `n` elements, backed by transparent huge pages where Linux
/// offers them (a tile's buffers are hundreds of megabytes: first-touch page faults
/// would cost as much as filling them).
pub(super) fn zeroed<T: crate::dtype::Element>(n: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    crate::in_memory::advise_huge_pages(&mut v);
    v.resize(n, T::default());
    v
}

/// The smallest box holding `sets` (each axis's bounds).
pub(super) fn hull(sets: &[AxisSet]) -> Region {
    Region {
        start: sets.iter().map(|s| s.bounds().start).collect(),
        shape: sets.iter().map(|s| s.bounds().len()).collect(),
    }
}

/// The smallest box holding both.
pub(super) fn union(a: &Region, b: &Region) -> Region {
    let start: Vec<usize> = (0..a.ndim()).map(|i| a.start[i].min(b.start[i])).collect();
    let shape = (0..a.ndim())
        .map(|i| (a.start[i] + a.shape[i]).max(b.start[i] + b.shape[i]) - start[i])
        .collect();
    Region { start, shape }
}

/// The level-0 pieces `parts`, decoded as `blocks`, for the writer: each with its share
/// of `owned` (whole chunks), those with none left out.
pub(super) fn level0_shares(
    parts: &[Region],
    blocks: Vec<BlockAny<'static>>,
    owned: &Region,
) -> Pieces {
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
pub(super) fn chunk_pieces(source: &dyn Source, region: &Region, chunk: &[usize]) -> Vec<Region> {
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
pub(super) fn read_parts(source: &dyn Source, parts: &[Region]) -> Result<Vec<BlockAny<'static>>> {
    use rayon::prelude::*;
    parts.par_iter().map(|r| source.read_region(r)).collect()
}

/// Pastes `src` (over `part`) into `dst` (over `region`, of the same type).
pub(super) fn paste_block(
    dst: &mut BlockAny<'static>,
    region: &Region,
    part: &Region,
    src: &BlockAny<'_>,
) {
    crate::dtype::match_any!(dst, BlockAny, d => {
        let src = crate::block::BlockElement::block_ref(src).expect("the same type");
        paste(region, part, &src.data, d.data.to_mut())
    })
}

/// `region` of the step's output, computed from `input` (a block holding what the
/// step reads for it) in about `4 × threads` pieces along the longest axis, in
/// parallel on the run's backend: each piece with its block.
pub(super) fn compute_parts(
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
pub(super) fn compute(
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
pub(super) fn chunk_cuts(region: &Region, axis: usize, chunk: usize) -> Vec<usize> {
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
