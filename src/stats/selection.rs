//! Exact percentiles by radix selection: the ranks numpy's `linear` method
//! interpolates between, the key prefixes being refined, and each group's summary.

use super::moments::Moments;
use super::types::{Histogram, PercentileValue, StatsOptions, Summary};
use crate::keys::Keyed;

/// A needed rank being resolved: the known high bits of its key, and its rank among
/// the keys that share them.
#[derive(Clone, Copy, Debug)]
pub(super) struct Target {
    pub(super) rank: u64,
    pub(super) prefix: u64,
    pub(super) known: u32,
    pub(super) within: u64,
}

/// A block's share of a refining pass for one group: per prefix being refined, the
/// counts of the next digits; and the histogram's counts.
pub(super) type Refined = (Vec<Vec<u64>>, Vec<u64>);

/// One group's state across passes.
pub(super) struct Group {
    pub(super) moments: Moments,
    /// Counts of the top bits of the keys (first pass).
    pub(super) digits: Vec<u64>,
    /// Ranks needed, by rank.
    pub(super) targets: Vec<Target>,
    /// The histogram's edges (after the first pass) and counts.
    pub(super) edges: Vec<f64>,
    pub(super) counts: Vec<u64>,
    /// The integer bins' first value (for [`Bins::Integers`]).
    pub(super) first: f64,
}

/// Digits counted in the first pass: the top 16 bits of a key (all of a narrower one).
pub(super) fn first_digits<T: Keyed>() -> u32 {
    T::BITS.min(16)
}

/// The bucket of `counts` holding the element of rank `rank` (0-based, in key order),
/// and its rank among that bucket's elements.
pub(super) fn locate(counts: &[u64], rank: u64) -> (u64, u64) {
    let mut before = 0;
    for (b, &c) in counts.iter().enumerate() {
        if rank < before + c {
            return (b as u64, rank - before);
        }
        before += c;
    }
    panic!("rank {rank} past the {before} counted elements");
}

/// numpy's `linear` percentile on `n` sorted values: the ranks of the two values it
/// interpolates between, and the weight of the upper one (the `linear` method's
/// virtual index `(n - 1) * q`, `_get_indexes` and `_get_gamma` of numpy 2).
pub(super) fn numpy_indexes(n: u64, percentile: f64) -> (u64, u64, f64) {
    let q = percentile / 100.0;
    let virtual_index = (n - 1) as f64 * q;
    let previous = virtual_index.floor();
    if virtual_index >= (n - 1) as f64 {
        return (n - 1, n - 1, virtual_index - -1.0);
    }
    if virtual_index < 0.0 {
        return (0, 0, virtual_index);
    }
    (
        previous as u64,
        previous as u64 + 1,
        virtual_index - previous,
    )
}

/// numpy's `_lerp(a, b, t)`.
pub(super) fn lerp<T: Keyed>(a: f64, b: f64, t: f64) -> f64 {
    let diff = T::diff(a, b);
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

pub(super) fn summary<T: Keyed>(
    g: &Group,
    options: &StatsOptions,
    index: Option<usize>,
) -> Summary {
    let m = &g.moments;
    let n = m.count;
    let value_of = |rank: u64| {
        let t = g
            .targets
            .iter()
            .find(|t| t.rank == rank)
            .expect("every needed rank resolved");
        T::value(t.prefix)
    };
    let percentiles = options
        .percentiles
        .iter()
        .map(|&p| PercentileValue {
            percentile: p,
            value: if n == 0 {
                f64::NAN
            } else {
                let (lo, hi, t) = numpy_indexes(n, p);
                lerp::<T>(value_of(lo), value_of(hi), t)
            },
        })
        .collect();
    let empty = n == 0;
    Summary {
        index,
        count: n,
        nan_count: m.nans,
        min: if empty { f64::NAN } else { m.min },
        max: if empty { f64::NAN } else { m.max },
        mean: if empty { f64::NAN } else { m.mean },
        std: if empty {
            f64::NAN
        } else {
            (m.m2 / n as f64).sqrt()
        },
        percentiles,
        histogram: options.histogram.map(|_| Histogram {
            counts: g.counts.clone(),
            edges: g.edges.clone(),
        }),
    }
}
