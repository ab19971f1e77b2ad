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
/// use haloflow::stats::StatsOptions;
/// use haloflow::zarr::Stats;
///
/// let options = StatsOptions { percentiles: vec![1.0, 50.0, 99.8], axis: Some(1), ..StatsOptions::default() };
/// let found = Stats { options, ..Stats::new("image.ome.zarr") }.run()?;
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
    /// What to compute: percentiles, a histogram, per index along an axis.
    pub options: StatsOptions,
    /// Reader threads [default: every core].
    pub threads: Option<usize>,
}

impl Stats {
    /// The statistics of `input` with the defaults: no percentiles, no histogram.
    pub fn new(input: impl Into<PathBuf>) -> Stats {
        Stats {
            input: input.into(),
            level: 0,
            options: StatsOptions::default(),
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
        let threads = self.threads.unwrap_or(RunOptions::default().threads);
        crate::stats::statistics(&input, &self.options, threads)
    }
}
