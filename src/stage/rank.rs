//! The rank stage: the `rank`-th smallest of the values under a footprint, what
//! median, percentile, minimum and maximum filters lower to, and the selection network
//! both backends run.

use super::stencil::Stencil;

/// `out[i]` = the `rank`-th smallest (from 0) of `x[mode(i + j - centre)]` over the
/// footprint's taps `j`, in the input's own element type (scipy's `rank_filter`).
///
/// `window` carries the footprint's extents, centre, boundary mode and, as weights in
/// C order, 1 where a tap is in the footprint and 0 where it is not (so the planner's
/// halo and the tap tables are the stencil's own). Its `cval` is unused: `cval` here
/// is the constant in the input's type's terms, cast by the crate's rule when the
/// stage runs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Rank {
    /// Extents, centre, mode, and the footprint as 0/1 weights.
    pub window: Stencil,
    /// Which order statistic: 0 is the minimum, `taps() - 1` the maximum.
    pub rank: usize,
    /// The value beyond the edge in `constant` mode.
    pub cval: f64,
}

impl Rank {
    /// The number of taps in the footprint.
    pub fn taps(&self) -> usize {
        self.window.weights.iter().filter(|&&w| w != 0.0).count()
    }

    /// The comparators that leave the `rank`-th smallest of the taps (in footprint C
    /// order) on wire `rank`.
    pub fn network(&self) -> Vec<Comparator> {
        selection_network(self.taps(), self.rank)
    }
}

/// One comparator of a selection network: the smaller of wires `lo` and `hi` goes to
/// `lo` and the larger to `hi`; `min` and `max` say whether either result is read
/// again (a comparator whose larger value no later step reads computes only the
/// smaller, and so on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Comparator {
    /// The wire that gets the smaller value.
    pub lo: usize,
    /// The wire that gets the larger value.
    pub hi: usize,
    /// Whether the smaller value is needed.
    pub min: bool,
    /// Whether the larger value is needed.
    pub max: bool,
}

/// A comparator network on `n` wires that puts the `k`-th smallest input on wire `k`:
/// Batcher's odd–even merge sort on the next power of two, with every comparator that
/// touches a padding wire dropped (padding sits above the inputs and stands for +∞,
/// and every comparator puts its minimum on its lower wire, so those never move a
/// value), then with every comparator that cannot reach wire `k` pruned (walking
/// backwards from it). Each comparator `(i, j)`, `i < j`, leaves `min` on `i` and
/// `max` on `j`. The result is exact: it selects an input value, whatever the order
/// of equal values.
pub(crate) fn selection_network(n: usize, k: usize) -> Vec<Comparator> {
    assert!(k < n, "rank {k} of {n} taps");
    let p = n.next_power_of_two();
    let mut all = Vec::new();
    // Batcher's odd-even merge sort, iterative form.
    let mut size = 1;
    while size < p {
        let mut stride = size;
        while stride >= 1 {
            let mut j = stride % size;
            while j + stride < p {
                for i in 0..stride.min(p - j - stride) {
                    let (a, b) = (i + j, i + j + stride);
                    if a / (2 * size) == b / (2 * size) && b < n {
                        all.push((a, b));
                    }
                }
                j += 2 * stride;
            }
            stride /= 2;
        }
        size *= 2;
    }
    let mut needed = vec![false; n];
    needed[k] = true;
    let mut kept = Vec::new();
    for &(lo, hi) in all.iter().rev() {
        if needed[lo] || needed[hi] {
            kept.push(Comparator {
                lo,
                hi,
                min: needed[lo],
                max: needed[hi],
            });
            needed[lo] = true;
            needed[hi] = true;
        }
    }
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `network` as the kernels do: only the needed sides are written.
    fn apply(network: &[Comparator], mut v: Vec<i32>) -> Vec<i32> {
        for c in network {
            let (x, y) = (v[c.lo], v[c.hi]);
            if c.min {
                v[c.lo] = x.min(y);
            }
            if c.max {
                v[c.hi] = x.max(y);
            }
        }
        v
    }

    /// Every rank of every size up to 12 on every 0/1 input (the 0-1 principle makes
    /// that a proof for sorting; for selection it checks the pruning), and random
    /// inputs with repeats for the sizes filters use.
    #[test]
    fn networks_select_every_rank() {
        for n in 1..=12usize {
            for k in 0..n {
                let net = selection_network(n, k);
                for bits in 0..1u32 << n {
                    let v: Vec<i32> = (0..n).map(|i| (bits >> i & 1) as i32).collect();
                    let mut sorted = v.clone();
                    sorted.sort();
                    assert_eq!(apply(&net, v)[k], sorted[k], "n {n} k {k} bits {bits:b}");
                }
            }
        }
        let mut state = 12345u64;
        for n in [9, 25, 27, 49, 125] {
            for k in [0, n / 3, n / 2, n - 1] {
                let net = selection_network(n, k);
                for _ in 0..200 {
                    let v: Vec<i32> = (0..n)
                        .map(|_| {
                            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                            (state >> 59) as i32
                        })
                        .collect();
                    let mut sorted = v.clone();
                    sorted.sort();
                    assert_eq!(apply(&net, v)[k], sorted[k], "n {n} k {k}");
                }
            }
        }
    }

    #[test]
    fn pruning_keeps_the_median_network_small() {
        let full = selection_network(27, 26).len().max(1);
        let median = selection_network(27, 13).len();
        assert!(median < 191, "median of 27: {median} comparators");
        assert!(full < 191);
    }
}
