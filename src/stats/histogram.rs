//! np.histogram's bins (and scikit-image's one bin per integer): the edges in numpy's
//! bin type, and the bin of a value.

use super::selection::Group;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::keys::Keyed;

/// How each group's values are binned after the first pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Bins {
    /// `np.histogram(x, n)`.
    Numpy(usize),
    /// One bin per integer from the minimum to the maximum (scikit-image's histogram
    /// of an integer image).
    Integers,
}

/// A group's histogram of the bins asked for: counts, and each bin's centre.
pub(super) type Binned = (Vec<u64>, Vec<f64>);

/// Sets a group's bin edges (from its min and max) and empty counts.
///
/// np.histogram computes its edges and bins in the "bin type": float32 for a float32
/// input, float64 otherwise; `single` says which.
pub(super) fn set_edges<T: Keyed>(g: &mut Group, bins: Bins) -> Result<()> {
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
#[inline]
pub(super) fn bin_of<T: Keyed>(g: &Group, bins: Bins, x: f64) -> usize {
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
