//! The statistics themselves, over any source of blocks (see the module docs of
//! [`stats`](super)); in-memory arrays here, Zarr arrays in `stats/mod.rs`.

use std::borrow::Cow;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::keys::Keyed;
use super::speculate::{self, Keep, Speculation, Window};
use crate::block::{Block, BlockAny, BlockElement};
use crate::dtype::{ArrayViewAny, DType, match_any, with_dtype};
use crate::error::{Error, Result};
use crate::ops::{Needed, Pipeline};
use crate::region::{AxisSet, Region};
use crate::workers::{Workers, for_each_job};

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
fn default_keep_decoded() -> u64 {
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

/// Where blocks come from.
pub(super) trait Source: Sync {
    fn shape(&self) -> &[usize];
    fn dtype(&self) -> DType;
    fn blocks(&self) -> usize;
    fn block(&self, i: usize) -> Result<BlockAny<'_>>;
}

/// An in-memory array, in slabs along axis 0.
struct MemorySource<'a, 'b> {
    view: &'a ArrayViewAny<'b>,
    shape: Vec<usize>,
    /// Indices of axis 0 per slab.
    slab: usize,
}

impl<'a, 'b> MemorySource<'a, 'b> {
    /// `array` in slabs of about 2^20 elements along axis 0.
    ///
    /// # Errors
    /// [`Error::Shape`] for an array that is empty or not in standard (C) layout.
    fn new(array: &'a ArrayViewAny<'b>) -> Result<Self> {
        let shape = array.shape().to_vec();
        if !match_any!(array, ArrayViewAny, a => a.is_standard_layout())
            || shape.is_empty()
            || shape.contains(&0)
        {
            return Err(Error::Shape(format!(
                "statistics need a non-empty C-contiguous array, got shape {shape:?}"
            )));
        }
        let plane: usize = shape[1..].iter().product::<usize>().max(1);
        Ok(MemorySource {
            view: array,
            slab: (1usize << 20).div_ceil(plane).max(1),
            shape,
        })
    }
}

impl Source for MemorySource<'_, '_> {
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn dtype(&self) -> DType {
        self.view.dtype()
    }
    fn blocks(&self) -> usize {
        self.shape[0].div_ceil(self.slab)
    }
    fn block(&self, i: usize) -> Result<BlockAny<'_>> {
        let lo = i * self.slab;
        let hi = (lo + self.slab).min(self.shape[0]);
        let plane: usize = self.shape[1..].iter().product();
        let mut sets: Vec<AxisSet> = Region::whole(&self.shape).sets();
        sets[0] = AxisSet::from_range(lo..hi);
        Ok(match_any!(self.view, ArrayViewAny, a => {
            let data = a.as_slice().expect("a standard-layout array (checked)");
            Block::new(sets, Cow::Borrowed(&data[lo * plane..hi * plane])).into_any()
        }))
    }
}

/// The statistics of an in-memory array (slabs along axis 0 on every core).
///
/// # Errors
/// As [`statistics`](super::statistics); [`Error::Shape`] for an array that is empty
/// or not in standard (C) layout.
pub fn statistics_of(array: &ArrayViewAny<'_>, options: &StatsOptions) -> Result<Statistics> {
    let source = MemorySource::new(array)?;
    run(&source, options, rayon::current_num_threads())
}

/// How each group's values are binned after the first pass.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bins {
    /// `np.histogram(x, n)`.
    Numpy(usize),
    /// One bin per integer from the minimum to the maximum (scikit-image's histogram
    /// of an integer image).
    Integers,
}

/// The first pass's sums for one group.
#[derive(Clone, Debug)]
struct Moments {
    count: u64,
    nans: u64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn new() -> Self {
        Moments {
            count: 0,
            nans: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            mean: 0.0,
            m2: 0.0,
        }
    }

    /// Chan's merge of two groups' moments.
    fn merge(&mut self, o: &Moments) {
        self.nans += o.nans;
        if o.count == 0 {
            return;
        }
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        if self.count == 0 {
            (self.count, self.mean, self.m2) = (o.count, o.mean, o.m2);
            return;
        }
        let (na, nb) = (self.count as f64, o.count as f64);
        let n = na + nb;
        let delta = o.mean - self.mean;
        self.mean += delta * nb / n;
        self.m2 += o.m2 + delta * delta * na * nb / n;
        self.count += o.count;
    }
}

/// A needed rank being resolved: the known high bits of its key, and its rank among
/// the keys that share them.
#[derive(Clone, Copy, Debug)]
struct Target {
    rank: u64,
    prefix: u64,
    known: u32,
    within: u64,
}

/// A block's share of a refining pass for one group: per prefix being refined, the
/// counts of the next digits; and the histogram's counts.
type Refined = (Vec<Vec<u64>>, Vec<u64>);

/// A group's histogram of the bins asked for: counts, and each bin's centre.
type Binned = (Vec<u64>, Vec<f64>);

/// One group's state across passes.
struct Group {
    moments: Moments,
    /// Counts of the top bits of the keys (first pass).
    digits: Vec<u64>,
    /// Ranks needed, by rank.
    targets: Vec<Target>,
    /// The histogram's edges (after the first pass) and counts.
    edges: Vec<f64>,
    counts: Vec<u64>,
    /// The integer bins' first value (for [`Bins::Integers`]).
    first: f64,
}

/// Digits counted in the first pass: the top 16 bits of a key (all of a narrower one).
fn first_digits<T: Keyed>() -> u32 {
    T::BITS.min(16)
}

pub(super) fn run(
    source: &dyn Source,
    options: &StatsOptions,
    threads: usize,
) -> Result<Statistics> {
    run_with(source, options, None, threads).map(|(s, _)| s)
}

/// Computes the statistics, and the `bins` histogram of each group if asked (the
/// counts and the bins' centres).
fn run_with(
    source: &dyn Source,
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
    with_dtype!(source.dtype(), T => typed::<T>(source, options, bins, threads))
}

fn typed<T: Keyed + BlockElement>(
    source: &dyn Source,
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
    let shared: Mutex<Vec<Group>> = Mutex::new(
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
    );
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
        let mut all = shared.lock().unwrap_or_else(|p| p.into_inner());
        for (g, (m, digits)) in local {
            all[g].moments.merge(&m);
            for (a, &b) in all[g].digits.iter_mut().zip(&digits) {
                *a += u64::from(b);
            }
        }
        if let Some((spec, _)) = &speculation {
            let counted = &*all;
            spec.add(kept, |g| &counted[g].digits[..]);
        }
        Ok(())
    })?;
    let mut state = shared.into_inner().unwrap_or_else(|p| p.into_inner());

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
fn slot<S>(local: &mut Vec<(usize, S)>, g: usize, make: impl FnOnce() -> S) -> &mut S {
    let i = match local.iter().position(|(h, _)| *h == g) {
        Some(i) => i,
        None => {
            local.push((g, make()));
            local.len() - 1
        }
    };
    &mut local[i].1
}

/// Calls `f(group, values)` for every run of a block's values that belong to one group:
/// the whole block, or each contiguous piece at one index along `axis`.
fn for_each_segment<T: Keyed>(
    block: &Block<'_, T>,
    axis: Option<usize>,
    mut f: impl FnMut(usize, &[T]),
) {
    let Some(a) = axis else {
        if !block.data.is_empty() {
            f(0, &block.data);
        }
        return;
    };
    let lens = block.lens();
    let outer: usize = lens[..a].iter().product();
    let inner: usize = lens[a + 1..].iter().product();
    let indices: Vec<usize> = block.sets[a].iter().collect();
    for o in 0..outer {
        for (j, &index) in indices.iter().enumerate() {
            let start = (o * lens[a] + j) * inner;
            if inner > 0 {
                f(index, &block.data[start..start + inner]);
            }
        }
    }
}

/// One segment's moments, counting the top bits of its keys into `digits` (if any) and
/// appending the values whose top bits are in `keep`'s window to its vector (if any),
/// in one pass: sums of `x - x0` and of its square, `x0` the segment's first value
/// that is not NaN (close to the mean in practice, so that the variance does not
/// cancel), in two interleaved lanes.
fn segment_moments<T: Keyed>(
    seg: &[T],
    digits: &mut [u32],
    shift: u32,
    keep: Option<(&Window, &mut Vec<T>)>,
) -> Moments {
    let mut m = Moments::new();
    let Some(x0) = seg.iter().find(|x| x.key().is_some()).map(|x| x.to_f64()) else {
        m.nans = seg.len() as u64;
        return m;
    };
    let mut lanes = [Lane::new(); 2];
    match keep {
        _ if digits.is_empty() => lane_sums(seg, x0, &mut lanes, |_, _| {}),
        None => lane_sums(seg, x0, &mut lanes, |_, k| {
            digits[(k >> shift) as usize] += 1;
        }),
        Some((window, out)) => {
            // Kept values gather in a small buffer without a branch per value.
            let mut buf = [seg[0]; 256];
            let mut n = 0usize;
            lane_sums(seg, x0, &mut lanes, |x, k| {
                let p = k >> shift;
                digits[p as usize] += 1;
                buf[n & 255] = x;
                n += usize::from(window.contains(p));
                if n == 256 {
                    out.extend_from_slice(&buf);
                    n = 0;
                }
            });
            out.extend_from_slice(&buf[..n]);
        }
    }
    let [a, b] = lanes;
    let (s1, s2) = (a.s1 + b.s1, a.s2 + b.s2);
    m.nans = a.nans + b.nans;
    let count = seg.len() as u64 - m.nans;
    let n = count as f64;
    m.count = count;
    m.min = a.lo.min(b.lo);
    m.max = a.hi.max(b.hi);
    m.mean = x0 + s1 / n;
    m.m2 = (s2 - s1 * s1 / n).max(0.0);
    m
}

/// One lane of [`segment_moments`]' sums.
#[derive(Clone, Copy)]
struct Lane {
    s1: f64,
    s2: f64,
    lo: f64,
    hi: f64,
    nans: u64,
}

impl Lane {
    fn new() -> Self {
        Lane {
            s1: 0.0,
            s2: 0.0,
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
            nans: 0,
        }
    }
}

/// Sums the values of `seg` that are not NaN into two lanes (value `i` into lane
/// `i % 2`, so that the lanes' additions overlap; more lanes spill registers), calling
/// `each(value, key)` on each.
#[inline(always)]
fn lane_sums<T: Keyed>(seg: &[T], x0: f64, lanes: &mut [Lane; 2], mut each: impl FnMut(T, u64)) {
    let mut visit = |lane: &mut Lane, x: T| {
        if let Some(k) = x.key() {
            let v = x.to_f64();
            let d = v - x0;
            lane.s1 += d;
            lane.s2 += d * d;
            // Comparisons, not f64::min: `v` is never NaN, and they compile to one
            // instruction each.
            lane.lo = if v < lane.lo { v } else { lane.lo };
            lane.hi = if v > lane.hi { v } else { lane.hi };
            each(x, k);
        } else {
            lane.nans += 1;
        }
    };
    // Lanes in locals, so that they stay in registers.
    let [mut a, mut b] = *lanes;
    let mut pairs = seg.chunks_exact(2);
    for q in &mut pairs {
        visit(&mut a, q[0]);
        visit(&mut b, q[1]);
    }
    for &x in pairs.remainder() {
        visit(&mut a, x);
    }
    *lanes = [a, b];
}

/// The bucket of `counts` holding the element of rank `rank` (0-based, in key order),
/// and its rank among that bucket's elements.
fn locate(counts: &[u64], rank: u64) -> (u64, u64) {
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
fn numpy_indexes(n: u64, percentile: f64) -> (u64, u64, f64) {
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
fn lerp<T: Keyed>(a: f64, b: f64, t: f64) -> f64 {
    let diff = T::diff(a, b);
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Sets a group's bin edges (from its min and max) and empty counts.
///
/// np.histogram computes its edges and bins in the "bin type": float32 for a float32
/// input, float64 otherwise; `single` says which.
fn set_edges<T: Keyed>(g: &mut Group, bins: Bins) -> Result<()> {
    let (lo, hi) = (g.moments.min, g.moments.max);
    match bins {
        Bins::Numpy(n) => {
            // An empty range is widened by 0.5 each side; the edges are
            // np.linspace(first, last, n + 1) in the bin type.
            let single = T::DTYPE == DType::F32;
            let (first, last) = if lo == hi {
                (lo - 0.5, hi + 0.5)
            } else {
                (lo, hi)
            };
            g.edges = if single {
                let (first, last) = (first as f32, last as f32);
                let step = (last - first) / n as f32;
                (0..=n)
                    .map(|i| if i == n { last } else { i as f32 * step + first } as f64)
                    .collect()
            } else {
                let step = (last - first) / n as f64;
                (0..=n)
                    .map(|i| {
                        if i == n {
                            last
                        } else {
                            i as f64 * step + first
                        }
                    })
                    .collect()
            };
            g.counts = vec![0; n];
        }
        Bins::Integers => {
            let n = hi - lo + 1.0;
            if n > (1u64 << 26) as f64 {
                return Err(Error::InvalidParameter {
                    op: "threshold",
                    message: format!(
                        "one histogram bin per integer from {lo} to {hi} is too many (at most 2^26)"
                    ),
                });
            }
            g.first = lo;
            g.counts = vec![0; n as usize];
        }
    }
    Ok(())
}

/// The bin of `x` in a group's histogram, as np.histogram finds it: the estimate
/// `((x - first) / (last - first)) * n` in the bin type (float32 for a float32 input),
/// truncated, then moved down once if `x` is below its bin's lower edge, or up once if
/// it is at or above the upper edge (except in the last bin, which is closed).
fn bin_of<T: Keyed>(g: &Group, bins: Bins, x: f64) -> usize {
    match bins {
        Bins::Integers => (x - g.first) as usize,
        Bins::Numpy(n) => {
            let (first, last) = (g.edges[0], g.edges[n]);
            let estimate = if T::DTYPE == DType::F32 {
                let (x, first, last) = (x as f32, first as f32, last as f32);
                (((x - first) / (last - first)) * n as f32) as usize
            } else {
                (((x - first) / (last - first)) * n as f64) as usize
            };
            let mut i = estimate.min(n - 1);
            if i > 0 && x < g.edges[i] {
                i -= 1;
            } else if i != n - 1 && x >= g.edges[i + 1] {
                i += 1;
            }
            i
        }
    }
}

fn summary<T: Keyed>(g: &Group, options: &StatsOptions, index: Option<usize>) -> Summary {
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

/// [`otsu`](super::otsu) of an in-memory array.
///
/// # Errors
/// As [`otsu`](super::otsu).
pub fn otsu_of(array: &ArrayViewAny<'_>) -> Result<f64> {
    let source = MemorySource::new(array)?;
    otsu_of_source(&source, rayon::current_num_threads())
}

pub(super) fn otsu_of_source(source: &dyn Source, threads: usize) -> Result<f64> {
    let bins = if source.dtype().is_float() {
        Bins::Numpy(256)
    } else {
        Bins::Integers
    };
    let (stats, binned) = run_with(source, &StatsOptions::default(), Some(bins), threads)?;
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
fn otsu_from_histogram(counts: &[u64], centres: &[f64]) -> f64 {
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
    source: &dyn Source,
    threads: usize,
    keep_decoded: u64,
) -> Result<(Pipeline, Option<serde_json::Value>)> {
    let (values, record) = match pipeline.needs()? {
        None => return Ok((pipeline.clone(), None)),
        Some(Needed::Otsu) => {
            let t = otsu_of_source(source, threads)?;
            (vec![t], serde_json::json!({ "otsu": t }))
        }
        Some(Needed::Percentiles(p)) => {
            let options = StatsOptions {
                percentiles: p,
                keep_decoded,
                ..StatsOptions::default()
            };
            let s = run(source, &options, threads)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::ArrayAny;

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
                    let s = run(&source, &options, threads).unwrap();
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
