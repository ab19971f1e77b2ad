//! Exact percentiles of 32- and 64-bit types in one pass over the data, in the common
//! case.
//!
//! The radix selection (`compute.rs`, `selection.rs`) needs the first pass's counts of every key's
//! top 16 bits before it knows which bucket holds a needed rank, then one more pass
//! per 16 bits to refine it. A Zarr input then decodes every chunk again, or keeps
//! them all decoded: either costs about as much as the first pass. Here the first pass
//! guesses instead:
//!
//! 1. a sample of blocks spread over the array ([`sampled_first`]) is visited first and
//!    kept whole;
//! 2. once it is counted, each group gets a *window*: the buckets holding the ranks
//!    within a margin of each percentile in the sample's counts (with several workers,
//!    the first `sample` blocks *counted*, which the scheduler may mix with blocks
//!    after the sample: the guess may differ from run to run, the result never);
//! 3. every value in a window bucket is kept from then on (the sample's too), and no
//!    other.
//!
//! After the pass, a needed rank whose bucket (found in the whole array's counts) is in
//! its group's window is resolved exactly among the kept values of that bucket, which
//! are all of the array's. A rank outside it, or a pass whose kept values outgrew the
//! budget, leaves its rank to the refining passes, as before: the guess costs speed
//! when wrong, never exactness.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use rayon::prelude::*;

use crate::keys::Keyed;

/// The fraction of ranks kept either side of each percentile's rank in the sample,
/// beyond its sampling error.
const MARGIN: f64 = 0.005;

/// The blocks to sample before the windows are set: at least one per worker and 4, and
/// a sixteenth of the blocks (never more than there are).
pub(super) fn sample_blocks(jobs: usize, threads: usize) -> usize {
    jobs.min(threads.max(4).max(jobs.div_ceil(16)))
}

/// The order to visit `jobs` blocks in: `sample` of them spread evenly over the array
/// first (the middles of `sample` equal runs of block indices), then the others in
/// order.
pub(super) fn sampled_first(jobs: usize, sample: usize) -> Vec<usize> {
    let sample = sample.min(jobs);
    let first: Vec<usize> = (0..sample)
        .map(|i| (2 * i + 1) * jobs / (2 * sample))
        .collect();
    let mut taken = vec![false; jobs];
    for &i in &first {
        taken[i] = true;
    }
    first
        .iter()
        .copied()
        .chain((0..jobs).filter(|&i| !taken[i]))
        .collect()
}

/// A set of key prefixes (buckets of the first pass's counts), as a bitmap.
#[derive(Clone, Debug)]
pub(super) struct PrefixSet(Vec<u64>);

impl PrefixSet {
    /// Every prefix of `bits` bits.
    fn all(bits: u32) -> Self {
        PrefixSet(vec![u64::MAX; (1usize << bits).div_ceil(64)])
    }

    /// The buckets of `counts` holding the ranks within [`MARGIN`] (and three standard
    /// errors of a sample quantile) of each of `percentiles`, and every bucket beyond
    /// where that reaches the first or the last rank (the whole array's extremes may
    /// lie past the sample's); every bucket if the counts are empty.
    fn around(counts: &[u64], percentiles: &[f64], bits: u32) -> Self {
        let m: u64 = counts.iter().sum();
        if m == 0 {
            return PrefixSet::all(bits);
        }
        let mut w = PrefixSet(vec![0; counts.len().div_ceil(64)]);
        let margin = MARGIN + 3.0 / (m as f64).sqrt();
        let last = (m - 1) as f64;
        for &p in percentiles {
            let q = p / 100.0;
            let lo = ((q - margin).max(0.0) * last).floor() as u64;
            let hi = (((q + margin).min(1.0) * last).ceil() as u64).min(m - 1);
            let a = if lo == 0 { 0 } else { bucket_of(counts, lo) };
            let b = if hi == m - 1 {
                counts.len() - 1
            } else {
                bucket_of(counts, hi)
            };
            for k in a..=b {
                w.0[k / 64] |= 1 << (k % 64);
            }
        }
        w
    }

    /// Whether `prefix` is in the window.
    #[inline(always)]
    pub(super) fn contains(&self, prefix: u64) -> bool {
        self.0[(prefix / 64) as usize] >> (prefix % 64) & 1 == 1
    }

    /// Appends the values of `values` whose key's prefix (`key >> shift`) is in the
    /// window to `out`; NaNs never.
    fn filter_into<T: Keyed>(&self, values: &[T], shift: u32, out: &mut Vec<T>) {
        out.extend(
            values
                .iter()
                .filter(|x| x.key().is_some_and(|k| self.contains(k >> shift))),
        );
    }
}

/// The bucket holding rank `rank` of `counts`.
fn bucket_of(counts: &[u64], rank: u64) -> usize {
    let mut before = 0;
    for (b, &c) in counts.iter().enumerate() {
        before += c;
        if rank < before {
            return b;
        }
    }
    counts.len() - 1
}

/// What the pass has kept so far.
struct Kept<T> {
    /// Blocks counted.
    blocks: usize,
    /// Per group: the values in its window, as the blocks kept them.
    values: Vec<Vec<Vec<T>>>,
    /// Values kept whole by blocks that started before the windows were set: group,
    /// values (filtered at the end, outside the lock).
    whole: Vec<(usize, Vec<T>)>,
    /// Values kept, all groups.
    used: usize,
    /// The budget was outgrown: nothing is kept any more.
    failed: bool,
}

/// What a block keeps of a group's values.
pub(super) enum Keep<'a> {
    /// None: the budget was outgrown.
    Nothing,
    /// All of them: the windows are not set yet.
    Whole,
    /// Those whose key's prefix is in this window.
    In(&'a PrefixSet),
}

/// The first pass's guess and what it keeps (see the module docs).
pub(super) struct Speculation<T> {
    percentiles: Vec<f64>,
    /// The first pass's prefix bits, and the shift from a key to its prefix.
    bits: u32,
    shift: u32,
    /// Values that may be kept, all groups.
    budget: usize,
    /// Blocks counted before the windows are set.
    sample: usize,
    /// Per group, once the sample is counted.
    windows: OnceLock<Vec<PrefixSet>>,
    kept: Mutex<Kept<T>>,
    /// [`Kept::failed`], read without the lock.
    stopped: AtomicBool,
}

impl<T: Keyed> Speculation<T> {
    /// A guess for `groups` groups, their keys' top `bits` bits counted in the first
    /// pass, keeping up to `budget` values and setting the windows after `sample`
    /// blocks.
    pub(super) fn new(
        groups: usize,
        percentiles: &[f64],
        bits: u32,
        budget: usize,
        sample: usize,
    ) -> Self {
        Speculation {
            percentiles: percentiles.to_vec(),
            bits,
            shift: T::BITS - bits,
            budget,
            sample,
            windows: OnceLock::new(),
            kept: Mutex::new(Kept {
                blocks: 0,
                values: (0..groups).map(|_| Vec::new()).collect(),
                whole: Vec::new(),
                used: 0,
                failed: false,
            }),
            stopped: AtomicBool::new(false),
        }
    }

    /// What a block starting now keeps of `group`'s values.
    pub(super) fn keep(&self, group: usize) -> Keep<'_> {
        if self.stopped.load(Ordering::Relaxed) {
            return Keep::Nothing;
        }
        match self.windows.get() {
            Some(w) => Keep::In(&w[group]),
            None => Keep::Whole,
        }
    }

    /// Adds a block's kept values: per group met, the values and whether they are
    /// whole ([`Keep::Whole`]); then sets the windows if this block completes the
    /// sample, from `counts(group)`, the first pass's counts so far. The caller holds
    /// the lock those counts are under, so that blocks are counted and added in the
    /// same order.
    pub(super) fn add<'c>(
        &self,
        block: Vec<(usize, (Vec<T>, bool))>,
        counts: impl Fn(usize) -> &'c [u64],
    ) {
        let mut k = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if k.failed {
            return;
        }
        k.blocks += 1;
        for (g, (values, whole)) in block {
            k.used += values.len();
            if whole {
                k.whole.push((g, values));
            } else {
                k.values[g].push(values);
            }
        }
        if self.windows.get().is_none() && k.blocks >= self.sample {
            let windows = (0..k.values.len())
                .map(|g| PrefixSet::around(counts(g), &self.percentiles, self.bits))
                .collect();
            let _ = self.windows.set(windows);
        }
        if k.used > self.budget {
            k.failed = true;
            self.stopped.store(true, Ordering::Relaxed);
            k.values.iter_mut().for_each(|v| *v = Vec::new());
            k.whole = Vec::new();
        }
    }

    /// After the pass: per group, its window and kept values (as the blocks kept
    /// them), all of the array's values in the window (the windows of a pass that
    /// never set them hold every prefix); `None` where the budget was outgrown.
    pub(super) fn finish(self) -> Option<Vec<(PrefixSet, Vec<Vec<T>>)>> {
        let mut k = self.kept.into_inner().unwrap_or_else(|p| p.into_inner());
        if k.failed {
            return None;
        }
        let windows = self
            .windows
            .into_inner()
            .unwrap_or_else(|| vec![PrefixSet::all(self.bits); k.values.len()]);
        let inside: Vec<(usize, Vec<T>)> = std::mem::take(&mut k.whole)
            .into_par_iter()
            .map(|(g, values)| {
                let mut inside = Vec::new();
                windows[g].filter_into(&values, self.shift, &mut inside);
                (g, inside)
            })
            .collect();
        for (g, values) in inside {
            k.values[g].push(values);
        }
        Some(windows.into_iter().zip(k.values).collect())
    }
}

/// The keys of rank `within` among the kept values whose key has prefix `prefix`
/// (`key >> shift`), one per `(prefix, within)` asked; `None` for a prefix outside
/// `window`, whose values were not all kept. The kept values (in pieces, as blocks
/// kept them) are gathered by prefix on every core, then each prefix's keys are
/// selected from.
pub(super) fn select<T: Keyed>(
    window: &PrefixSet,
    kept: &[Vec<T>],
    shift: u32,
    asked: &[(u64, u64)],
) -> Vec<Option<u64>> {
    let mut prefixes: Vec<u64> = asked
        .iter()
        .map(|&(p, _)| p)
        .filter(|&p| window.contains(p))
        .collect();
    prefixes.sort_unstable();
    prefixes.dedup();
    if prefixes.is_empty() {
        return vec![None; asked.len()];
    }
    // Per prefix of the window, 1 + its index among those asked (0: not asked).
    let mut slot = vec![0u8; window.0.len() * 64];
    for (j, &p) in prefixes.iter().enumerate() {
        slot[p as usize] = u8::try_from(j + 1).expect("at most 255 distinct prefixes");
    }
    // Per piece, per prefix: its keys, gathered without a branch per key (which
    // prefix a key has is unpredictable): into a small buffer per slot, slot 0
    // discarded.
    let pieces: Vec<Vec<Vec<u64>>> = kept
        .par_iter()
        .map(|piece| {
            let mut keys = vec![Vec::new(); prefixes.len()];
            let mut bufs = vec![[0u64; 64]; prefixes.len() + 1];
            let mut counts = vec![0usize; prefixes.len() + 1];
            for x in piece {
                if let Some(k) = x.key() {
                    let s = usize::from(slot[(k >> shift) as usize]);
                    bufs[s][counts[s] % 64] = k;
                    counts[s] += 1;
                    if counts[s] == 64 {
                        if s > 0 {
                            keys[s - 1].extend_from_slice(&bufs[s]);
                        }
                        counts[s] = 0;
                    }
                }
            }
            for (j, keys) in keys.iter_mut().enumerate() {
                keys.extend_from_slice(&bufs[j + 1][..counts[j + 1]]);
            }
            keys
        })
        .collect();
    // Per prefix, the ranks asked of it, and the keys found.
    let found: Vec<Vec<(u64, u64)>> = (0..prefixes.len())
        .into_par_iter()
        .map(|j| {
            let mut bucket: Vec<u64> =
                Vec::with_capacity(pieces.iter().map(|keys| keys[j].len()).sum());
            for keys in &pieces {
                bucket.extend_from_slice(&keys[j]);
            }
            let mut ranks: Vec<u64> = asked
                .iter()
                .filter(|&&(q, _)| q == prefixes[j])
                .map(|&(_, within)| within)
                .collect();
            ranks.sort_unstable();
            ranks.dedup();
            ranks
                .into_iter()
                .map(|within| {
                    let w = within as usize;
                    assert!(
                        w < bucket.len(),
                        "rank {w} of a bucket of {} kept values: a window's bucket kept in part",
                        bucket.len()
                    );
                    (within, *bucket.select_nth_unstable(w).1)
                })
                .collect()
        })
        .collect();
    asked
        .iter()
        .map(|&(p, within)| {
            let j = prefixes.binary_search(&p).ok()?;
            found[j]
                .iter()
                .find(|&&(w, _)| w == within)
                .map(|&(_, key)| key)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_spread_and_every_block_is_visited_once() {
        let order = sampled_first(64, 4);
        assert_eq!(&order[..4], &[8, 24, 40, 56]);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..64).collect::<Vec<_>>());
        assert_eq!(sampled_first(3, 4), vec![0, 1, 2]);
        assert_eq!(sample_blocks(64, 2), 4);
        assert_eq!(sample_blocks(1000, 2), 63);
        assert_eq!(sample_blocks(2, 16), 2);
    }

    #[test]
    fn a_window_holds_the_buckets_around_each_percentile() {
        // 100 values per bucket in buckets 0..10.
        let counts: Vec<u64> = (0..16).map(|b| if b < 10 { 100 } else { 0 }).collect();
        let w = PrefixSet::around(&counts, &[50.0], 4);
        // Ranks 499.5 ± 999 (0.5% + 3/sqrt(1000)): 399 to 600.
        let inside: Vec<u64> = (0..16).filter(|&b| w.contains(b)).collect();
        assert_eq!(inside, vec![3, 4, 5, 6]);
        // The extremes: every bucket past them too.
        let w = PrefixSet::around(&counts, &[0.0, 100.0], 4);
        let inside: Vec<u64> = (0..16).filter(|&b| w.contains(b)).collect();
        assert_eq!(inside, vec![0, 1, 8, 9, 10, 11, 12, 13, 14, 15]);
        let empty = PrefixSet::around(&[0; 16], &[50.0], 4);
        assert!((0..16).all(|b| empty.contains(b)));
    }

    #[test]
    fn a_budget_outgrown_keeps_nothing() {
        let s = Speculation::<f32>::new(1, &[50.0], 16, 10, 1);
        assert!(matches!(s.keep(0), Keep::Whole));
        s.add(vec![(0, (vec![1.0; 11], true))], |_| &[]);
        assert!(matches!(s.keep(0), Keep::Nothing));
        assert!(s.finish().is_none());
    }

    #[test]
    fn values_kept_whole_are_filtered_by_the_windows_set_later() {
        // Prefixes are the keys' top 16 bits: 1.0 and 1.0000001 share theirs.
        let prefix = |x: f32| x.key().unwrap() >> 16;
        let s = Speculation::<f32>::new(1, &[0.0], 16, 100, 1);
        // A sample of a million values of 1.0's bucket and one of 300.0's: the window
        // of the minimum holds 1.0's bucket and those below it (0.5's).
        let mut counts = vec![0u64; 1 << 16];
        counts[prefix(1.0) as usize] = 1_000_000;
        counts[prefix(300.0) as usize] = 1;
        s.add(
            vec![(0, (vec![300.0, 1.0, f32::NAN, 1.000_000_1, 0.5], true))],
            |_| &counts,
        );
        let Keep::In(w) = s.keep(0) else {
            panic!("the windows are set after the sample")
        };
        assert!(w.contains(prefix(1.0)) && !w.contains(prefix(300.0)));
        // Values a block filtered itself are taken as they are.
        s.add(vec![(0, (vec![1.25], false))], |_| &counts);
        let kept = s.finish().unwrap();
        let mut values = kept[0].1.concat();
        values.sort_by(f32::total_cmp);
        assert_eq!(values, vec![0.5, 1.0, 1.000_000_1, 1.25]);
    }

    #[test]
    fn select_finds_ranks_within_window_buckets_only() {
        let values = [5u32, 1, 3, 0x1_0002, 0x1_0001, 2];
        let mut w = PrefixSet(vec![0; 1]);
        w.0[0] |= 1; // prefix 0 (values below 2^16) only
        let got = select(
            &w,
            &[values[..2].to_vec(), values[2..].to_vec()],
            16,
            &[(0, 0), (0, 3), (1, 0)],
        );
        assert_eq!(got, vec![Some(1), Some(5), None]);
    }
}
