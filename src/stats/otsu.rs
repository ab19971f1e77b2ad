//! Otsu's threshold, as scikit-image's `threshold_otsu` computes it from its histogram.

use super::compute::from_source_binned;
use super::histogram::Bins;
use super::source::{BlockSource, MemorySource};
use super::types::StatsOptions;
use crate::dtype::ArrayViewAny;
use crate::error::{Error, Result};

/// [`otsu`](super::otsu) of an in-memory array.
///
/// # Errors
/// As [`otsu`](super::otsu).
pub fn otsu_of(array: &ArrayViewAny<'_>) -> Result<f64> {
    let source = MemorySource::new(array)?;
    otsu_of_source(&source, rayon::current_num_threads())
}

pub(super) fn otsu_of_source(source: &dyn BlockSource, threads: usize) -> Result<f64> {
    let bins = if source.dtype().is_float() {
        Bins::Numpy(256)
    } else {
        Bins::Integers
    };
    let (stats, binned) =
        from_source_binned(source, &StatsOptions::default(), Some(bins), threads)?;
    let s = &stats.summaries[0];
    if s.count == 0 {
        return Err(Error::InvalidParameter {
            op: "threshold",
            message: "Otsu's threshold of an array with no value (all NaN)".into(),
        });
    }
    if s.min == s.max {
        return Ok(s.min);
    }
    let (counts, centres) = &binned[0];
    Ok(otsu_from_histogram(counts, centres))
}

/// scikit-image's `threshold_otsu` from a histogram, operation for operation.
pub(super) fn otsu_from_histogram(counts: &[u64], centres: &[f64]) -> f64 {
    let c: Vec<f32> = counts.iter().map(|&x| x as f32).collect();
    let cumsum32 = |v: &mut dyn Iterator<Item = f32>| -> Vec<f32> {
        let mut acc = 0.0f32;
        v.map(|x| {
            acc += x;
            acc
        })
        .collect()
    };
    let weight1 = cumsum32(&mut c.iter().copied());
    let mut weight2 = cumsum32(&mut c.iter().rev().copied());
    weight2.reverse();
    let weighted: Vec<f64> = c.iter().zip(centres).map(|(&x, &b)| x as f64 * b).collect();
    let mut acc = 0.0;
    let mean1: Vec<f64> = weighted
        .iter()
        .zip(&weight1)
        .map(|(&w, &n)| {
            acc += w;
            acc / n as f64
        })
        .collect();
    // mean2 = (cumsum(weighted[::-1]) / weight2[::-1])[::-1]
    let mut acc = 0.0;
    let mut mean2: Vec<f64> = weighted
        .iter()
        .rev()
        .zip(weight2.iter().rev())
        .map(|(&w, &n)| {
            acc += w;
            acc / n as f64
        })
        .collect();
    mean2.reverse();
    let mut best = 0;
    let mut best_value = f64::NEG_INFINITY;
    for i in 0..c.len() - 1 {
        let d = mean1[i] - mean2[i + 1];
        let v = (weight1[i] * weight2[i + 1]) as f64 * (d * d);
        // np.argmax: the first maximum (a NaN counts as one).
        if v > best_value || (v.is_nan() && !best_value.is_nan()) {
            best = i;
            best_value = v;
            if v.is_nan() {
                break;
            }
        }
    }
    centres[best]
}
