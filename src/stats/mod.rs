//! Whole-array statistics in bounded memory: min, max, mean, standard deviation, NaN
//! count, exact percentiles (numpy's default `linear` method) and histograms
//! (`np.histogram`'s bins), over the whole array or per index along one axis; and the
//! global thresholds built on them (Otsu's, as scikit-image computes it).
//! (Layer: the executor; see the layer map in `docs/ARCHITECTURE.md`.)
//!
//! The array is visited block by block (a Zarr input's chunks, in parallel; an
//! in-memory array's slabs), each block's share merged into per-group accumulators,
//! so memory stays at a block per worker plus the accumulators, and what the first pass
//! keeps for what follows it (up to
//! [`StatsOptions::keep_decoded`]).
//!
//! **Percentiles are exact**, by radix selection on order-preserving keys
//! (`keys.rs`): the first pass counts the top 16 bits of every key; the bucket that
//! holds each needed rank is then refined 16 bits at a time, one pass per step, among
//! the keys of that bucket only. Types of up to 16 bits are done in one pass (the
//! first pass's counts are the full histogram). Wider types are too where the first
//! pass's guess holds (`stats/speculate.rs`: it keeps the values in the buckets near
//! each percentile of a sample of blocks, and selects among them); else 32-bit types
//! take two passes, float64 up to four. NaNs are counted and left out, as
//! `np.nanpercentile` does. With a histogram of a wide type, a Zarr input's decoded
//! chunks are kept for the pass that bins them.
//!
//! Moments are summed in f64 per block, as sums of `x - x0` and their squares (`x0` the
//! block's first value, so that the variance does not cancel), and merged with Chan's
//! formulas; numpy's float32 mean sums in float32, so the two agree to float32
//! rounding, not bitwise.

mod compute;
mod histogram;
mod moments;
mod otsu;
pub(crate) mod resolve;
mod selection;
mod source;
mod speculate;
mod types;

use crate::block::BlockAny;
use crate::dtype::DType;
use crate::error::Result;
use crate::exec::KeptChunks;
use crate::ops::{NeededStatistics, Pipeline};
use crate::store::Input;
use compute::from_source;
pub use compute::statistics_of;
pub use otsu::otsu_of;
use otsu::otsu_of_source;
pub use resolve::resolve_of;
use resolve::resolve_source;
use source::BlockSource;
pub use types::{Histogram, PercentileValue, Statistics, StatsOptions, Summary};

/// A Zarr array's chunks (shards, if sharded) read through the executor's
/// [`Source`](crate::exec::Source), the first pass's kept for the later ones while
/// they fit the budget.
fn zarr_source(input: &Input, budget: u64) -> KeptChunks<'_> {
    KeptChunks::new(input, input.grid(), budget)
}

impl BlockSource for KeptChunks<'_> {
    fn shape(&self) -> &[usize] {
        self.source().shape()
    }
    fn dtype(&self) -> DType {
        self.source().dtype()
    }
    fn blocks(&self) -> usize {
        self.len()
    }
    fn block(&self, i: usize) -> Result<BlockAny<'_>> {
        self.chunk(i)
    }
}

/// The statistics of a Zarr array, read with `threads` workers.
///
/// # Errors
/// [`Error::InvalidParameter`](crate::Error::InvalidParameter) for an axis past the array's rank, a percentile outside
/// 0..=100 or zero histogram bins; the input's read errors.
pub fn statistics(input: &Input, options: &StatsOptions, threads: usize) -> Result<Statistics> {
    let keep = chunks_kept(input, options.histogram.is_some(), options.keep_decoded);
    from_source(&zarr_source(input, keep), options, threads)
}

/// `skimage.filters.threshold_otsu(x)` (256 bins) over the whole array, NaNs left
/// out: an integer image gets one bin per integer from its minimum to its maximum, a
/// float image np.histogram's 256 bins; the between-class variance is then maximised
/// with scikit-image's arithmetic (float32 cumulative weights, float64 means), so the
/// threshold is the same value. An image of one value returns that value. Up to
/// `keep_decoded` bytes of chunks decoded in the first pass are kept for the second.
///
/// # Errors
/// As [`statistics`]; an array with no value that is not NaN.
pub fn otsu(input: &Input, threads: usize, keep_decoded: u64) -> Result<f64> {
    let source = zarr_source(input, chunks_kept(input, true, keep_decoded));
    otsu_of_source(&source, threads)
}

/// The bytes of decoded chunks a Zarr source keeps from the first pass: `keep_decoded`
/// where a later pass bins the values (`binned`: a histogram, Otsu's) of a type wider
/// than 16 bits, else none. A narrower type is binned from the first pass's counts,
/// and percentiles alone keep what they need themselves (`speculate.rs`).
fn chunks_kept(input: &Input, binned: bool, keep_decoded: u64) -> u64 {
    if binned && input.dtype().size() > 2 {
        keep_decoded
    } else {
        0
    }
}

/// The statistics `pipeline` needs of its input, computed over `input`, and the
/// pipeline with them filled in ([`Pipeline::resolve`]); the values used, as JSON
/// (`{"otsu": t}` or `{"percentiles": [[p, value], ...]}`), for the output's
/// attributes and the report. A pipeline that needs none is returned as it is. Up to
/// `keep_decoded` bytes of chunks decoded in the first pass are kept for the next.
///
/// # Errors
/// As [`Pipeline::needs`] and [`statistics`].
pub fn resolve(
    pipeline: &Pipeline,
    input: &Input,
    threads: usize,
    keep_decoded: u64,
) -> Result<(Pipeline, Option<serde_json::Value>)> {
    let binned = match pipeline.needs()? {
        None => return Ok((pipeline.clone(), None)),
        Some(needed) => matches!(needed, NeededStatistics::Otsu),
    };
    let source = zarr_source(input, chunks_kept(input, binned, keep_decoded));
    resolve_source(pipeline, &source, threads, keep_decoded)
}
