//! The passes of a statistics run over any source of blocks (see the module docs of
//! [`stats`](super)): moments and key counts first, then the refining passes of the
//! radix selection and the histogram's.

use std::sync::Mutex;

use super::histogram::{Binned, Bins, bin_of, set_edges};
use super::moments::{InOrder, Moments, for_each_segment, segment_moments};
use super::selection::{Group, Refined, Target, first_digits, locate, numpy_indexes, summary};
use super::source::{BlockSource, MemorySource};
use super::speculate::{self, Keep, Speculation};
use super::types::{Statistics, StatsOptions, Summary};
use crate::block::BlockElement;
use crate::dtype::{ArrayViewAny, with_dtype};
use crate::error::{Error, Result};
use crate::keys::Keyed;
use crate::workers::{Workers, for_each_job};

/// The statistics of an in-memory array (slabs along axis 0 on every core).
///
/// # Errors
/// As [`statistics`](super::statistics); [`Error::Shape`] for an array that is empty
/// or not in standard (C) layout.
pub fn statistics_of(array: &ArrayViewAny<'_>, options: &StatsOptions) -> Result<Statistics> {
    let source = MemorySource::new(array)?;
    from_source(&source, options, rayon::current_num_threads())
}

pub(super) fn from_source(
    source: &dyn BlockSource,
    options: &StatsOptions,
    threads: usize,
) -> Result<Statistics> {
    from_source_binned(source, options, None, threads).map(|(s, _)| s)
}

/// Computes the statistics, and the `bins` histogram of each group if asked (the
/// counts and the bins' centres).
pub(super) fn from_source_binned(
    source: &dyn BlockSource,
    options: &StatsOptions,
    bins: Option<Bins>,
    threads: usize,
) -> Result<(Statistics, Vec<Binned>)> {
    let invalid = |message: String| Error::InvalidParameter {
        op: "stats",
        message,
    };
    let ndim = source.shape().len();
    if let Some(a) = options.axis.filter(|&a| a >= ndim) {
        return Err(invalid(format!(
            "axis {a} is out of range for a {ndim}-dimensional array"
        )));
    }
    if let Some(p) = options
        .percentiles
        .iter()
        .find(|p| !(0.0..=100.0).contains(*p))
    {
        return Err(invalid(format!("percentiles must be in 0..=100, got {p}")));
    }
    if options.histogram == Some(0) {
        return Err(invalid("a histogram needs at least one bin".into()));
    }
    let bins = bins.or(options.histogram.map(Bins::Numpy));
    with_dtype!(source.dtype(), T => passes::<T>(source, options, bins, threads))
}

pub(super) fn passes<T: Keyed + BlockElement>(
    source: &dyn BlockSource,
    options: &StatsOptions,
    bins: Option<Bins>,
    threads: usize,
) -> Result<(Statistics, Vec<Binned>)> {
    let shape = source.shape().to_vec();
    let groups = options.axis.map_or(1, |a| shape[a]);
    let d0 = first_digits::<T>();
    let narrow = T::BITS <= 16;
    let want_digits = !options.percentiles.is_empty() || (narrow && bins.is_some());
    let workers = Workers::Threads(threads.max(1));
    let jobs = source.blocks();
    // Percentiles of a wide type without a histogram: guess their buckets from a sample
    // and keep the values near them, to resolve them in this pass (`speculate.rs`).
    let speculation =
        (!options.percentiles.is_empty() && !narrow && bins.is_none() && options.keep_decoded > 0)
            .then(|| {
                let budget = options.keep_decoded / std::mem::size_of::<T>() as u64;
                let sample = speculate::sample_blocks(jobs, threads.max(1));
                let spec = Speculation::<T>::new(
                    groups,
                    &options.percentiles,
                    d0,
                    usize::try_from(budget).unwrap_or(usize::MAX),
                    sample,
                );
                (spec, speculate::sampled_first(jobs, sample))
            });

    // Pass 1: moments, and the counts of the keys' top bits.
    let shared: Mutex<(Vec<Group>, InOrder)> = Mutex::new((
        (0..groups)
            .map(|_| Group {
                moments: Moments::new(),
                digits: if want_digits {
                    vec![0; 1 << d0]
                } else {
                    Vec::new()
                },
                targets: Vec::new(),
                edges: Vec::new(),
                counts: Vec::new(),
                first: 0.0,
            })
            .collect(),
        InOrder::default(),
    ));
    let shift0 = T::BITS - d0;
    for_each_job(workers, jobs, |j| {
        let i = speculation.as_ref().map_or(j, |(_, order)| order[j]);
        let block = source.block(i)?;
        let block = block.typed::<T>();
        // Per group met in this block: its moments and its counts (u32: a block holds
        // fewer than 2^32 elements; half the cache lines of u64 counts); the values it
        // keeps for the guess.
        let mut local: Vec<(usize, (Moments, Vec<u32>))> = Vec::new();
        let mut kept: Vec<(usize, (Vec<T>, bool))> = Vec::new();
        for_each_segment(block, options.axis, |g, seg| {
            let keep = speculation
                .as_ref()
                .map_or(Keep::Nothing, |(s, _)| s.keep(g));
            let window = match keep {
                Keep::Nothing => None,
                Keep::Whole => {
                    slot(&mut kept, g, || (Vec::new(), true))
                        .0
                        .extend_from_slice(seg);
                    None
                }
                Keep::In(w) => Some((w, &mut slot(&mut kept, g, || (Vec::new(), false)).0)),
            };
            let (m, digits) = slot(&mut local, g, || {
                let digits = if want_digits {
                    vec![0u32; 1 << d0]
                } else {
                    Vec::new()
                };
                (Moments::new(), digits)
            });
            m.merge(&segment_moments(seg, digits, shift0, window));
        });
        let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
        let (all, in_order) = &mut *guard;
        let mut moments = Vec::with_capacity(local.len());
        for (g, (m, digits)) in local {
            for (a, &b) in all[g].digits.iter_mut().zip(&digits) {
                *a += u64::from(b);
            }
            moments.push((g, m));
        }
        in_order.add(j, moments, |g, m| all[g].moments.merge(m));
        if let Some((spec, _)) = &speculation {
            let counted = &**all;
            spec.add(kept, |g| &counted[g].digits[..]);
        }
        Ok(())
    })?;
    let (mut state, _) = shared.into_inner().unwrap_or_else(|p| p.into_inner());

    // The ranks each percentile needs, located in the first pass's counts.
    for g in &mut state {
        let n = g.moments.count;
        if n == 0 {
            continue;
        }
        let mut ranks: Vec<u64> = options
            .percentiles
            .iter()
            .flat_map(|&p| {
                let (lo, hi, _) = numpy_indexes(n, p);
                [lo, hi]
            })
            .collect();
        ranks.sort_unstable();
        ranks.dedup();
        g.targets = ranks
            .into_iter()
            .map(|rank| {
                let (prefix, within) = locate(&g.digits, rank);
                Target {
                    rank,
                    prefix,
                    known: d0,
                    within,
                }
            })
            .collect();
        if let Some(b) = bins {
            set_edges::<T>(g, b)?;
            if narrow {
                // The first pass's counts are every value's count: bin them now.
                let digits = std::mem::take(&mut g.digits);
                for (key, &c) in digits.iter().enumerate() {
                    if c > 0 {
                        let bin = bin_of::<T>(g, b, T::value(key as u64));
                        g.counts[bin] += c;
                    }
                }
                g.digits = digits;
            }
        }
    }
    // The ranks whose buckets the guess kept whole, resolved now.
    if let Some(kept) = speculation.and_then(|(spec, _)| spec.finish()) {
        for (g, (window, values)) in state.iter_mut().zip(&kept) {
            let asked: Vec<(u64, u64)> = g.targets.iter().map(|t| (t.prefix, t.within)).collect();
            let found = speculate::select(window, values, shift0, &asked);
            for (t, key) in g.targets.iter_mut().zip(found) {
                if let Some(key) = key {
                    (t.prefix, t.known, t.within) = (key, T::BITS, 0);
                }
            }
        }
    }
    let mut binned = narrow || bins.is_none();

    // Further passes: 16 more bits of each unresolved rank's key, and the histogram.
    let mut passes = 1;
    loop {
        let refine = state
            .iter()
            .any(|g| g.targets.iter().any(|t| t.known < T::BITS));
        if !refine && binned {
            break;
        }
        passes += 1;
        // Per group: the distinct prefixes still to refine, and the digits below them.
        let known = state
            .iter()
            .flat_map(|g| g.targets.iter())
            .map(|t| t.known)
            .find(|&k| k < T::BITS)
            .unwrap_or(T::BITS);
        let step = (T::BITS - known).min(16);
        let prefixes: Vec<Vec<u64>> = state
            .iter()
            .map(|g| {
                let mut p: Vec<u64> = g
                    .targets
                    .iter()
                    .filter(|t| t.known < T::BITS)
                    .map(|t| t.prefix)
                    .collect();
                p.sort_unstable();
                p.dedup();
                p
            })
            .collect();
        // Prefixes of up to 16 bits: a table from prefix to 1 + its index (0: none).
        let tables: Vec<Vec<u16>> = prefixes
            .iter()
            .map(|p| {
                if known > 16 || p.is_empty() {
                    return Vec::new();
                }
                let mut t = vec![0u16; 1 << known];
                for (j, &q) in p.iter().enumerate() {
                    t[q as usize] = j as u16 + 1;
                }
                t
            })
            .collect();
        let counting = Mutex::new(
            prefixes
                .iter()
                .map(|p| vec![vec![0u64; 1 << step]; p.len()])
                .collect::<Vec<_>>(),
        );
        let histograms = Mutex::new(state.iter().map(|g| g.counts.clone()).collect::<Vec<_>>());
        let bin_now = !binned;
        let view = &state;
        for_each_job(workers, jobs, |i| {
            let block = source.block(i)?;
            let block = block.typed::<T>();
            // Per group met in this block: the counts below each prefix, and the bins.
            let mut local: Vec<(usize, Refined)> = Vec::new();
            for_each_segment(block, options.axis, |g, seg| {
                let (counts, hist) = slot(&mut local, g, || {
                    (
                        vec![vec![0u64; 1 << step]; prefixes[g].len()],
                        vec![0u64; view[g].counts.len()],
                    )
                });
                let shift_known = T::BITS - known;
                let shift_digit = shift_known - step;
                let mask = (1u64 << step) - 1;
                let table = &tables[g];
                for &x in seg {
                    let Some(k) = x.key() else { continue };
                    if !prefixes[g].is_empty() {
                        let p = k >> shift_known;
                        // A table lookup for prefixes of up to 16 bits, else a search.
                        let j = if table.is_empty() {
                            prefixes[g].binary_search(&p).ok()
                        } else {
                            table[p as usize].checked_sub(1).map(usize::from)
                        };
                        if let Some(j) = j {
                            counts[j][((k >> shift_digit) & mask) as usize] += 1;
                        }
                    }
                    if bin_now {
                        hist[bin_of::<T>(&view[g], bins.expect("binning"), x.to_f64())] += 1;
                    }
                }
            });
            let mut all = counting.lock().unwrap_or_else(|p| p.into_inner());
            let mut hists = histograms.lock().unwrap_or_else(|p| p.into_inner());
            for (g, (counts, hist)) in local {
                for (a, b) in all[g].iter_mut().zip(&counts) {
                    for (x, y) in a.iter_mut().zip(b) {
                        *x += y;
                    }
                }
                for (x, y) in hists[g].iter_mut().zip(&hist) {
                    *x += y;
                }
            }
            Ok(())
        })?;
        let counted = counting.into_inner().unwrap_or_else(|p| p.into_inner());
        let hists = histograms.into_inner().unwrap_or_else(|p| p.into_inner());
        for (g, group) in state.iter_mut().enumerate() {
            if bin_now {
                group.counts = hists[g].clone();
            }
            for t in group.targets.iter_mut().filter(|t| t.known < T::BITS) {
                let j = prefixes[g]
                    .binary_search(&t.prefix)
                    .expect("a prefix per target");
                let (digit, within) = locate(&counted[g][j], t.within);
                t.prefix = t.prefix << step | digit;
                t.known += step;
                t.within = within;
            }
        }
        binned = true;
    }

    let summaries: Vec<Summary> = state
        .iter()
        .enumerate()
        .map(|(g, group)| summary::<T>(group, options, (options.axis.is_some()).then_some(g)))
        .collect();
    let binned_out = state
        .iter()
        .map(|g| {
            let centres = match bins {
                Some(Bins::Integers) => (0..g.counts.len()).map(|i| g.first + i as f64).collect(),
                Some(Bins::Numpy(_)) => g.edges.windows(2).map(|e| (e[0] + e[1]) / 2.0).collect(),
                None => Vec::new(),
            };
            (g.counts.clone(), centres)
        })
        .collect();
    Ok((
        Statistics {
            shape,
            dtype: T::DTYPE,
            axis: options.axis,
            passes,
            summaries,
        },
        binned_out,
    ))
}

/// The accumulators of group `g` among a block's `local` ones, made by `make` the first
/// time the block meets the group.
pub(super) fn slot<S>(local: &mut Vec<(usize, S)>, g: usize, make: impl FnOnce() -> S) -> &mut S {
    let i = match local.iter().position(|(h, _)| *h == g) {
        Some(i) => i,
        None => {
            local.push((g, make()));
            local.len() - 1
        }
    };
    &mut local[i].1
}

#[cfg(test)]
mod tests {
    use super::super::otsu::otsu_from_histogram;
    use super::*;
    use crate::dtype::ArrayAny;
    use crate::dtype::DType;

    #[test]
    fn numpy_indexes_match_numpy() {
        // np.percentile(np.arange(10), 25) interpolates ranks 2 and 3 at 0.25.
        assert_eq!(numpy_indexes(10, 25.0), (2, 3, 0.25));
        assert_eq!(numpy_indexes(10, 100.0).0, 9);
        assert_eq!(numpy_indexes(10, 0.0), (0, 1, 0.0));
        assert_eq!(numpy_indexes(1, 50.0).0, 0);
    }

    /// The radix selection (one to four passes) against a sort, on every key width,
    /// with repeats, NaNs, a single value, and per index along an axis.
    #[test]
    fn percentiles_equal_a_sort() {
        use ndarray::{ArrayD, IxDyn};
        let mut next = lcg(7);
        let shape = [7, 13, 11];
        let n: usize = shape.iter().product();
        let percentiles = vec![0.0, 0.5, 25.0, 50.0, 77.7, 99.9, 100.0];
        let options = StatsOptions {
            axis: None,
            histogram: Some(5),
            percentiles: percentiles.clone(),
            ..StatsOptions::default()
        };
        let u16s: Vec<u16> = (0..n).map(|_| (next() % 300) as u16 * 200).collect();
        let i32s: Vec<i32> = (0..n).map(|_| next() as i32).collect();
        let mut f32s: Vec<f32> = (0..n).map(|_| (next() as f32 / 1e12).sin() * 1e3).collect();
        f32s[17] = f32::NAN;
        f32s[18] = -0.0;
        let f64s: Vec<f64> = (0..n)
            .map(|_| (next() as f64).ln() * if next().is_multiple_of(2) { 1.0 } else { -1.0 })
            .collect();
        type Case = (ArrayAny, Vec<f64>, fn(f64, f64) -> f64);
        let arrays: Vec<Case> = vec![
            (
                ArrayD::from_shape_vec(IxDyn(&shape), u16s.clone())
                    .unwrap()
                    .into(),
                u16s.iter().map(|&x| x as f64).collect(),
                |a, b| b - a,
            ),
            (
                ArrayD::from_shape_vec(IxDyn(&shape), i32s.clone())
                    .unwrap()
                    .into(),
                i32s.iter().map(|&x| x as f64).collect(),
                |a, b| b - a,
            ),
            (
                ArrayD::from_shape_vec(IxDyn(&shape), f32s.clone())
                    .unwrap()
                    .into(),
                f32s.iter().map(|&x| x as f64).collect(),
                |a, b| (b as f32 - a as f32) as f64,
            ),
            (
                ArrayD::from_shape_vec(IxDyn(&shape), f64s.clone())
                    .unwrap()
                    .into(),
                f64s.clone(),
                |a, b| b - a,
            ),
            (
                ArrayD::from_elem(IxDyn(&shape), 3u8).into(),
                vec![3.0; n],
                |a, b| b - a,
            ),
        ];
        // Infinities at both ends, NaNs (positive and negative), and signed zeros where
        // the middle percentiles fall.
        let mut edges: Vec<f32> = (0..n)
            .map(|i| if i % 2 == 0 { -0.0 } else { 0.0 })
            .collect();
        for i in 0..n / 5 {
            edges[i] = f32::NEG_INFINITY;
            edges[n - 1 - i] = f32::INFINITY;
        }
        edges[n / 3] = f32::NAN;
        edges[n / 3 + 1] = -f32::NAN;
        edges[n / 3 + 2] = f32::MIN_POSITIVE;
        let mut arrays = arrays;
        arrays.push((
            ArrayD::from_shape_vec(IxDyn(&shape), edges.clone())
                .unwrap()
                .into(),
            edges.iter().map(|&x| x as f64).collect(),
            |a, b| (b as f32 - a as f32) as f64,
        ));
        for (array, values, diff) in arrays {
            let want: Vec<f64> = percentiles
                .iter()
                .map(|&p| by_sort(values.clone(), p, diff))
                .collect();
            // Equal bits, or both NaN (numpy's interpolation between infinities).
            let same = |got: &[f64]| {
                got.len() == want.len()
                    && got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
            };
            // Without a histogram: resolved from the values the first pass keeps, and
            // (keeping none) by the refining passes; and with one (binned in the
            // refining pass).
            for keep_decoded in [StatsOptions::default().keep_decoded, 0] {
                let alone = statistics_of(
                    &array.view(),
                    &StatsOptions {
                        histogram: None,
                        keep_decoded,
                        ..options.clone()
                    },
                )
                .unwrap();
                let got: Vec<f64> = alone.summaries[0]
                    .percentiles
                    .iter()
                    .map(|p| p.value)
                    .collect();
                assert!(same(&got), "{:?} {got:?} {want:?}", array.dtype());
            }
            let s = statistics_of(&array.view(), &options).unwrap();
            let got: Vec<f64> = s.summaries[0].percentiles.iter().map(|p| p.value).collect();
            assert!(same(&got), "{:?} {got:?} {want:?}", array.dtype());
            let h = s.summaries[0].histogram.as_ref().unwrap();
            assert_eq!(h.counts.iter().sum::<u64>(), s.summaries[0].count);
            // Per index along axis 1: each index's values on their own.
            let per = statistics_of(
                &array.view(),
                &StatsOptions {
                    axis: Some(1),
                    histogram: None,
                    percentiles: vec![50.0],
                    ..StatsOptions::default()
                },
            )
            .unwrap();
            for (j, summary) in per.summaries.iter().enumerate() {
                let column: Vec<f64> = (0..n)
                    .filter(|i| (i / shape[2]) % shape[1] == j)
                    .map(|i| values[i])
                    .collect();
                assert_eq!(summary.percentiles[0].value, by_sort(column, 50.0, diff));
            }
        }
    }

    /// A seeded 64-bit LCG's top 53 bits, one draw per call: the tests' data.
    fn lcg(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 11
        }
    }

    /// numpy's `linear` percentile `p` of `v` (NaNs left out), by a sort, the values
    /// between two ranks interpolated with `diff` (the element type's `b - a`).
    fn by_sort(mut v: Vec<f64>, p: f64, diff: impl Fn(f64, f64) -> f64) -> f64 {
        v.retain(|x| !x.is_nan());
        v.sort_by(f64::total_cmp);
        let (lo, hi, t) = numpy_indexes(v.len() as u64, p);
        let (a, b) = (v[lo as usize], v[hi as usize]);
        let d = diff(a, b);
        if t >= 0.5 {
            b - d * (1.0 - t)
        } else {
            a + d * t
        }
    }

    /// The first pass's guess (`speculate.rs`) over many blocks: it resolves every
    /// percentile in that pass where the sample is like the rest; a sample unlike the
    /// rest, or a budget outgrown, leaves them to the refining passes; exact either way.
    #[test]
    fn the_first_pass_resolves_percentiles_where_its_guess_holds() {
        use ndarray::{ArrayD, IxDyn};
        let mut bits = lcg(11);
        let mut next = move || bits() as f64 / (1u64 << 53) as f64;
        let shape = [64, 9, 50];
        let n: usize = shape.iter().product();
        let plane = shape[1] * shape[2];
        let blocks = shape[0];
        let percentiles = vec![0.0, 1.0, 33.3, 50.0, 99.8, 100.0];
        let uniform: Vec<f64> = (0..n).map(|_| 1000.0 * next()).collect();
        // The blocks sampled first hold small values, the others large ones: the
        // sample's windows miss every middle percentile.
        let sampled = speculate::sample_blocks(blocks, 2);
        let sample = &speculate::sampled_first(blocks, sampled)[..sampled];
        let misleading: Vec<f64> = (0..n)
            .map(|i| {
                let v = next();
                if sample.contains(&(i / plane)) {
                    v
                } else {
                    1000.0 + v
                }
            })
            .collect();
        let budget = StatsOptions::default().keep_decoded;
        let cases = [
            ("uniform", &uniform, budget, 1, None),
            ("misleading", &misleading, budget, 2, None),
            ("budget outgrown", &uniform, 1024, 2, None),
            ("per index along axis 2", &uniform, budget, 1, Some(2)),
        ];
        for (what, values, keep_decoded, passes, axis) in cases {
            let f32s: ArrayAny =
                ArrayD::from_shape_vec(IxDyn(&shape), values.iter().map(|&x| x as f32).collect())
                    .unwrap()
                    .into();
            let f64s: ArrayAny = ArrayD::from_shape_vec(IxDyn(&shape), values.clone())
                .unwrap()
                .into();
            let as_f32: Vec<f64> = values.iter().map(|&x| x as f32 as f64).collect();
            for (array, all) in [(f32s, &as_f32), (f64s, values)] {
                let view = array.view();
                let mut source = MemorySource::new(&view).unwrap();
                source.slab = 1;
                let options = StatsOptions {
                    axis,
                    percentiles: percentiles.clone(),
                    keep_decoded,
                    ..StatsOptions::default()
                };
                for threads in [1, 3] {
                    let s = from_source(&source, &options, threads).unwrap();
                    let f64_passes = if passes == 1 { 1 } else { 4 };
                    let want_passes = if array.dtype() == DType::F64 {
                        f64_passes
                    } else {
                        passes
                    };
                    // With several workers the windows are set from the first blocks
                    // *counted*, which the scheduler picks: a worker held up in a
                    // sampled block lets others count unsampled ones first, and a
                    // sample mixed that way may well guess right. One worker counts
                    // the sample exactly.
                    if threads == 1 || what != "misleading" {
                        assert_eq!(s.passes, want_passes, "{what} {:?}", array.dtype());
                    } else {
                        assert!(
                            s.passes == 1 || s.passes == want_passes,
                            "{what} {:?} with {threads} workers: {} passes",
                            array.dtype(),
                            s.passes
                        );
                    }
                    for (j, summary) in s.summaries.iter().enumerate() {
                        let group: Vec<f64> = match axis {
                            None => all.clone(),
                            Some(_) => all
                                .iter()
                                .enumerate()
                                .filter(|(i, _)| i % shape[2] == j)
                                .map(|(_, &v)| v)
                                .collect(),
                        };
                        let got: Vec<f64> = summary.percentiles.iter().map(|p| p.value).collect();
                        let diff = if array.dtype() == DType::F64 {
                            <f64 as Keyed>::diff
                        } else {
                            <f32 as Keyed>::diff
                        };
                        let want: Vec<f64> = percentiles
                            .iter()
                            .map(|&p| by_sort(group.clone(), p, diff))
                            .collect();
                        assert_eq!(got, want, "{what} {:?} group {j}", array.dtype());
                    }
                }
            }
        }
    }

    #[test]
    fn otsu_of_two_clusters_splits_them() {
        let counts = [5u64, 10, 5, 0, 0, 0, 5, 10, 5];
        let centres: Vec<f64> = (0..9).map(f64::from).collect();
        let t = otsu_from_histogram(&counts, &centres);
        assert!((2.0..6.0).contains(&t), "{t}");
    }
}
