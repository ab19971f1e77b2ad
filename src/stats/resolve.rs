//! The statistics a pipeline needs of its input (Otsu's threshold, percentiles), filled
//! in before planning.

use super::compute::from_source;
use super::otsu::otsu_of_source;
use super::source::{BlockSource, MemorySource};
use super::types::{StatsOptions, default_keep_decoded};
use crate::dtype::ArrayViewAny;
use crate::error::{Error, Result};
use crate::ops::{NeededStatistics, Pipeline};

/// [`resolve`](super::resolve) over an in-memory array.
///
/// # Errors
/// As [`resolve`](super::resolve).
pub fn resolve_of(
    pipeline: &Pipeline,
    array: &ArrayViewAny<'_>,
) -> Result<(Pipeline, Option<serde_json::Value>)> {
    if pipeline.needs()?.is_none() {
        return Ok((pipeline.clone(), None));
    }
    let source = MemorySource::new(array)?;
    resolve_source(
        pipeline,
        &source,
        rayon::current_num_threads(),
        default_keep_decoded(),
    )
}

/// [`resolve`](super::resolve) over any source, keeping up to `keep_decoded` bytes of
/// values for percentiles.
pub(super) fn resolve_source(
    pipeline: &Pipeline,
    source: &dyn BlockSource,
    threads: usize,
    keep_decoded: u64,
) -> Result<(Pipeline, Option<serde_json::Value>)> {
    let (values, record) = match pipeline.needs()? {
        None => return Ok((pipeline.clone(), None)),
        Some(NeededStatistics::Otsu) => {
            let t = otsu_of_source(source, threads)?;
            (vec![t], serde_json::json!({ "otsu": t }))
        }
        Some(NeededStatistics::Percentiles(p)) => {
            let options = StatsOptions {
                percentiles: p,
                keep_decoded,
                ..StatsOptions::default()
            };
            let s = from_source(source, &options, threads)?;
            let found = &s.summaries[0].percentiles;
            if s.summaries[0].count == 0 {
                return Err(Error::InvalidParameter {
                    op: pipeline.ops[0].name(),
                    message: "percentiles of an array with no value (all NaN)".into(),
                });
            }
            let pairs: Vec<[f64; 2]> = found.iter().map(|p| [p.percentile, p.value]).collect();
            (
                found.iter().map(|p| p.value).collect(),
                serde_json::json!({ "percentiles": pairs }),
            )
        }
    };
    Ok((pipeline.resolve(&values)?, Some(record)))
}
