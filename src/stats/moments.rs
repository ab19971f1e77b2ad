//! The first pass's moments: count, NaNs, min, max, mean and the sum of squared
//! deviations, per group, merged by Chan's rule; summed in two lanes per segment.

use std::collections::BTreeMap;

use super::speculate::PrefixSet;
use crate::block::Block;
use crate::keys::Keyed;

/// The first pass's sums for one group.
#[derive(Clone, Debug)]
pub(super) struct Moments {
    pub(super) count: u64,
    pub(super) nans: u64,
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) mean: f64,
    pub(super) m2: f64,
}

impl Moments {
    pub(super) fn new() -> Self {
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
    pub(super) fn merge(&mut self, o: &Moments) {
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

/// Jobs' moments merged in job order, whatever order the jobs finish in: the merges
/// are the same sums in the same order, so the statistics are the same bits on every
/// run with the same blocks, however the threads interleave. A job that finishes
/// before an earlier one waits here (about one per worker).
#[derive(Default)]
pub(super) struct InOrder {
    next: usize,
    pending: BTreeMap<usize, Vec<(usize, Moments)>>,
}

impl InOrder {
    /// Takes job `job`'s moments per group, and calls `merge(group, moments)` for
    /// them and every later job's already here, once the jobs before it have been.
    pub(super) fn add(
        &mut self,
        job: usize,
        moments: Vec<(usize, Moments)>,
        mut merge: impl FnMut(usize, &Moments),
    ) {
        self.pending.insert(job, moments);
        while let Some(ready) = self.pending.remove(&self.next) {
            for (g, m) in &ready {
                merge(*g, m);
            }
            self.next += 1;
        }
    }
}

/// Calls `f(group, values)` for every run of a block's values that belong to one group:
/// the whole block, or each contiguous piece at one index along `axis`.
pub(super) fn for_each_segment<T: Keyed>(
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
pub(super) fn segment_moments<T: Keyed>(
    seg: &[T],
    digits: &mut [u32],
    shift: u32,
    keep: Option<(&PrefixSet, &mut Vec<T>)>,
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
pub(super) struct Lane {
    pub(super) s1: f64,
    pub(super) s2: f64,
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) nans: u64,
}

impl Lane {
    pub(super) fn new() -> Self {
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
pub(super) fn lane_sums<T: Keyed>(
    seg: &[T],
    x0: f64,
    lanes: &mut [Lane; 2],
    mut each: impl FnMut(T, u64),
) {
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

#[cfg(test)]
mod tests {
    use super::super::compute::from_source;
    use super::super::source::MemorySource;
    use super::super::types::StatsOptions;
    use crate::dtype::ArrayAny;

    /// Moments are merged in block order, so threads finishing in any order give the
    /// same bits as one thread.
    #[test]
    fn the_moments_are_the_same_bits_on_any_number_of_threads() {
        use ndarray::{ArrayD, IxDyn};
        let mut state = 3u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 11
        };
        let shape = [96, 40, 40];
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| (next() % 100_000) as f32 * 0.37 + 1e4)
            .collect();
        let array: ArrayAny = ArrayD::from_shape_vec(IxDyn(&shape), values)
            .unwrap()
            .into();
        let view = array.view();
        let source = MemorySource {
            view: &view,
            shape: shape.to_vec(),
            slab: 1,
        };
        let summary = |threads| {
            let s = from_source(&source, &StatsOptions::default(), threads).unwrap();
            let s = &s.summaries[0];
            (s.mean.to_bits(), s.std.to_bits())
        };
        let one = summary(1);
        for _ in 0..8 {
            assert_eq!(summary(4), one);
        }
    }
}
