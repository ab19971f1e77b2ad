//! What statistics are asked for and what they give: the options, and the summaries.

use serde::{Deserialize, Serialize};

use crate::dtype::DType;

/// What [`statistics`](super::statistics) computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatsOptions {
    /// Report per index along this axis (per channel, per time point ...) instead of
    /// over the whole array.
    pub axis: Option<usize>,
    /// The number of histogram bins (numpy's `np.histogram(x, bins)`: equal bins from
    /// the minimum to the maximum, the last one closed), if any.
    pub histogram: Option<usize>,
    /// Percentiles to compute, 0 to 100 (numpy's `linear` method, exactly).
    pub percentiles: Vec<f64>,
    /// Bytes of values the first pass may keep for what comes after it, for a type
    /// wider than 16 bits: with percentiles alone, the values near them, so that the
    /// pass resolves them (0: the refining passes always run); with a histogram, a
    /// Zarr input's decoded chunks, so that each is decoded once.
    #[serde(default = "default_keep_decoded")]
    pub keep_decoded: u64,
}

/// 1 GiB of decoded chunks kept between passes.
pub(super) fn default_keep_decoded() -> u64 {
    1 << 30
}

impl Default for StatsOptions {
    fn default() -> Self {
        StatsOptions {
            axis: None,
            histogram: None,
            percentiles: Vec::new(),
            keep_decoded: default_keep_decoded(),
        }
    }
}

/// A histogram: `counts[i]` elements in `[edges[i], edges[i + 1])` (the last bin
/// closed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Elements per bin.
    pub counts: Vec<u64>,
    /// Bin edges, one more than the bins.
    pub edges: Vec<f64>,
}

/// One percentile and its value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PercentileValue {
    /// The percentile asked for (0 to 100).
    pub percentile: f64,
    /// Its value: `np.nanpercentile(x, [percentile])` (float64).
    pub value: f64,
}

/// The statistics of the whole array, or of one index along the axis asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The index along the axis (`None` for the whole array).
    pub index: Option<usize>,
    /// Elements that are not NaN.
    pub count: u64,
    /// NaN elements.
    pub nan_count: u64,
    /// The smallest value (NaN if every element is NaN).
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// The mean of the non-NaN values.
    pub mean: f64,
    /// Their standard deviation (`ddof = 0`, numpy's default).
    pub std: f64,
    /// The percentiles asked for, in the order asked.
    pub percentiles: Vec<PercentileValue>,
    /// The histogram asked for.
    pub histogram: Option<Histogram>,
}

/// Everything [`statistics`](super::statistics) found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    /// The array's shape.
    pub shape: Vec<usize>,
    /// Its element type.
    pub dtype: DType,
    /// The axis the summaries run along, if any.
    pub axis: Option<usize>,
    /// Passes over the data it took.
    pub passes: usize,
    /// One summary, or one per index along `axis`.
    pub summaries: Vec<Summary>,
}
