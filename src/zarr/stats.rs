//! [`Stats`]: whole-array statistics of a Zarr array or an OME-Zarr image's level,
//! streamed chunk by chunk.

use std::path::PathBuf;

use super::image::open_level;
use crate::error::Result;
use crate::exec::RunOptions;
use crate::stats::{Statistics, StatsOptions};
use crate::store::Input;

/// Whole-array statistics, as `haloflow stats`: min, max, mean, std (ddof 0), NaN
/// count; exact percentiles (numpy's `linear` method, as `np.nanpercentile`);
/// `np.histogram`'s bins; per index along an axis if asked.
///
/// ```no_run
/// use haloflow::zarr::Stats;
///
/// let found = Stats { percentiles: vec![1.0, 50.0, 99.8], axis: Some(1), ..Stats::new("image.ome.zarr") }.run()?;
/// for channel in &found.summaries {
///     println!("{:?}: median {}", channel.index, channel.percentiles[1].value);
/// }
/// # Ok::<(), haloflow::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// The array, or an OME-Zarr image (level [`Stats::level`]).
    pub input: PathBuf,
    /// The level of an OME-Zarr image.
    pub level: usize,
    /// Report per index along this axis (per channel, per time point ...).
    pub axis: Option<usize>,
    /// Histogram bins (equal bins from the minimum to the maximum).
    pub histogram: Option<usize>,
    /// Percentiles to compute exactly, 0 to 100.
    pub percentiles: Vec<f64>,
    /// Bytes of values the first pass may keep for float and 32-bit types (see
    /// [`StatsOptions::keep_decoded`]).
    pub keep_decoded: u64,
    /// Reader threads [default: every core].
    pub threads: Option<usize>,
}

impl Stats {
    /// The statistics of `input` with the defaults: no percentiles, no histogram.
    pub fn new(input: impl Into<PathBuf>) -> Stats {
        Stats {
            input: input.into(),
            level: 0,
            axis: None,
            histogram: None,
            percentiles: Vec::new(),
            keep_decoded: StatsOptions::default().keep_decoded,
            threads: None,
        }
    }

    /// The array these statistics read (the image's level, for an OME-Zarr image).
    ///
    /// # Errors
    /// [`crate::Error::Store`] for unreadable metadata or a missing level.
    pub fn array(&self) -> Result<PathBuf> {
        Ok(open_level(&self.input, self.level)?.0)
    }

    /// Computes them.
    ///
    /// # Errors
    /// [`crate::Error`] for an unreadable input, an axis or percentile out of range.
    pub fn run(&self) -> Result<Statistics> {
        let input = Input::open(&self.array()?)?;
        let options = StatsOptions {
            axis: self.axis,
            histogram: self.histogram,
            percentiles: self.percentiles.clone(),
            keep_decoded: self.keep_decoded,
        };
        let threads = self.threads.unwrap_or(RunOptions::default().threads);
        crate::stats::statistics(&input, &options, threads)
    }
}
