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
//! (`stats/keys.rs`): the first pass counts the top 16 bits of every key; the bucket that
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

use std::borrow::Cow;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::block::{Block, BlockAny};
use crate::dtype::DType;
use crate::error::Result;
use crate::ops::{NeededStatistics, Pipeline};
use crate::region::AxisSet;
use crate::region::unravel;
use crate::store::Input;
use compute::from_source;
pub use compute::statistics_of;
pub use otsu::otsu_of;
use otsu::otsu_of_source;
pub use resolve::resolve_of;
use resolve::resolve_source;
use source::BlockSource;
pub use types::{Histogram, PercentileValue, Statistics, StatsOptions, Summary};

/// A Zarr array, chunk by chunk. Chunks decoded in the first pass are kept for the
/// later ones while they fit `budget` bytes (the passes then decode each chunk once).
struct ZarrSource<'a> {
    input: &'a Input,
    grid: crate::region::Grid,
    kept: Vec<OnceLock<BlockAny<'static>>>,
    used: AtomicU64,
    budget: u64,
}

impl<'a> ZarrSource<'a> {
    /// `input`'s chunks, keeping up to `budget` bytes of them decoded.
    fn new(input: &'a Input, budget: u64) -> Self {
        let grid = input.grid();
        // A slot per chunk only where chunks are to be kept.
        let slots = if budget > 0 { grid.num_chunks() } else { 0 };
        ZarrSource {
            kept: (0..slots).map(|_| OnceLock::new()).collect(),
            input,
            grid,
            used: AtomicU64::new(0),
            budget,
        }
    }
}

/// A block borrowing `b`'s data.
fn borrowed<'a>(b: &'a BlockAny<'static>) -> BlockAny<'a> {
    crate::dtype::match_any!(b, BlockAny, x => {
        Block::new(x.sets.clone(), Cow::Borrowed(&x.data[..])).into_any()
    })
}

impl BlockSource for ZarrSource<'_> {
    fn shape(&self) -> &[usize] {
        self.input.shape()
    }
    fn dtype(&self) -> DType {
        self.input.dtype()
    }
    fn blocks(&self) -> usize {
        self.grid.num_chunks()
    }
    fn block(&self, i: usize) -> Result<BlockAny<'_>> {
        let slot = self.kept.get(i);
        if let Some(b) = slot.and_then(OnceLock::get) {
            return Ok(borrowed(b));
        }
        let index = unravel(i, &self.grid.grid_shape());
        let b = self.input.read_region(&self.grid.chunk_region(&index))?;
        let Some(slot) = slot else {
            return Ok(b);
        };
        let bytes =
            (b.sets().iter().map(AxisSet::len).product::<usize>() * b.dtype().size()) as u64;
        if self.used.fetch_add(bytes, Ordering::Relaxed) + bytes <= self.budget {
            let _ = slot.set(b);
            return Ok(borrowed(slot.get().expect("just set")));
        }
        self.used.fetch_sub(bytes, Ordering::Relaxed);
        Ok(b)
    }
}

/// The statistics of a Zarr array, read with `threads` workers.
///
/// # Errors
/// [`Error::InvalidParameter`](crate::Error::InvalidParameter) for an axis past the array's rank, a percentile outside
/// 0..=100 or zero histogram bins; the input's read errors.
pub fn statistics(input: &Input, options: &StatsOptions, threads: usize) -> Result<Statistics> {
    let keep = chunks_kept(input, options.histogram.is_some(), options.keep_decoded);
    from_source(&ZarrSource::new(input, keep), options, threads)
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
    let source = ZarrSource::new(input, chunks_kept(input, true, keep_decoded));
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
    let source = ZarrSource::new(input, chunks_kept(input, binned, keep_decoded));
    resolve_source(pipeline, &source, threads, keep_decoded)
}
