//! Whole-array statistics in bounded memory: min, max, mean, standard deviation, NaN
//! count, exact percentiles (numpy's default `linear` method) and histograms
//! (`np.histogram`'s bins), over the whole array or per index along one axis; and the
//! global thresholds built on them (Otsu's, as scikit-image computes it).
//!
//! The array is visited block by block (a Zarr input's chunks, in parallel; an
//! in-memory array's slabs), each block's share merged into per-group accumulators,
//! so memory stays at a block per worker plus the accumulators.
//!
//! **Percentiles are exact**, by radix selection on order-preserving keys
//! (`stats/keys.rs`): the first pass counts the top 16 bits of every key; the bucket that
//! holds each needed rank is then refined 16 bits at a time, one pass per step, among
//! the keys of that bucket only. Types of up to 16 bits are done in one pass (the
//! first pass's counts are the full histogram), 32-bit types in two, float64 in up to
//! four. NaNs are counted and left out, as `np.nanpercentile` does.
//!
//! Moments are summed in f64 per block (the block's mean first, then the squared
//! deviations from it) and merged with Chan's formulas, so they do not lose precision
//! to cancellation; numpy's float32 mean sums in float32, so the two agree to float32
//! rounding, not bitwise.

pub(crate) mod compute;
mod keys;

use crate::block::BlockAny;
use crate::dtype::DType;
use crate::error::Result;
use crate::ops::Pipeline;
use crate::region::unravel;
use crate::store::Input;
pub use compute::resolve_of;
pub use compute::{
    Histogram, PercentileValue, Statistics, StatsOptions, Summary, otsu_of, statistics_of,
};
use compute::{Source, otsu_of_source, resolve_source, run};

/// A Zarr array, chunk by chunk.
struct ZarrSource<'a> {
    input: &'a Input,
    grid: crate::region::Grid,
}

impl Source for ZarrSource<'_> {
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
        let index = unravel(i, &self.grid.grid_shape());
        self.input.read_region(&self.grid.chunk_region(&index))
    }
}

/// The statistics of a Zarr array, read with `threads` workers.
///
/// # Errors
/// [`Error::InvalidParameter`](crate::Error::InvalidParameter) for an axis past the array's rank, a percentile outside
/// 0..=100 or zero histogram bins; the input's read errors.
pub fn statistics(input: &Input, options: &StatsOptions, threads: usize) -> Result<Statistics> {
    let source = ZarrSource {
        input,
        grid: input.grid(),
    };
    run(&source, options, threads)
}

/// `skimage.filters.threshold_otsu(x)` (256 bins) over the whole array, NaNs left
/// out: an integer image gets one bin per integer from its minimum to its maximum, a
/// float image np.histogram's 256 bins; the between-class variance is then maximised
/// with scikit-image's arithmetic (float32 cumulative weights, float64 means), so the
/// threshold is the same value. An image of one value returns that value.
///
/// # Errors
/// As [`statistics`]; an array with no value that is not NaN.
pub fn otsu(input: &Input, threads: usize) -> Result<f64> {
    let source = ZarrSource {
        input,
        grid: input.grid(),
    };
    otsu_of_source(&source, threads)
}

/// The statistics `pipeline` needs of its input, computed over `input`, and the
/// pipeline with them filled in ([`Pipeline::resolve`]); the values used, as JSON
/// (`{"otsu": t}` or `{"percentiles": [[p, value], ...]}`), for the output's
/// attributes and the report. A pipeline that needs none is returned as it is.
///
/// # Errors
/// As [`Pipeline::needs`] and [`statistics`].
pub fn resolve(
    pipeline: &Pipeline,
    input: &Input,
    threads: usize,
) -> Result<(Pipeline, Option<serde_json::Value>)> {
    let source = ZarrSource {
        input,
        grid: input.grid(),
    };
    resolve_source(pipeline, &source, threads)
}
