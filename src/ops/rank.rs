//! Rank filters: scipy.ndimage's `median_filter`, `percentile_filter`,
//! `minimum_filter` and `maximum_filter`, lowered to rank stages.

use serde::{Deserialize, Serialize};

use super::axes::per_axis;
use super::convolve::Kernel;
use super::gaussian::pass_order;
use crate::boundary::Boundary;
use crate::error::{Error, Result};
use crate::stage::{Rank, Stage, Stencil};

/// Which order statistic a rank filter takes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum RankOrder {
    /// The median: rank `n // 2` of `n` taps.
    Median,
    /// scipy's percentile rank: `int(n * p / 100)` (`n - 1` at 100; negative `p`
    /// counts from 100).
    Percentile(f64),
    /// The smallest value.
    Minimum,
    /// The largest value.
    Maximum,
}

/// The footprint of a rank filter: a box of `size`, or the nonzero entries of a
/// boolean array (a footprint of fewer dimensions than the array applies to its
/// trailing axes, as if it had extent 1 on the others); the footprint wins where both
/// are given, as in scipy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Footprint {
    /// Extent per axis.
    pub shape: Vec<usize>,
    /// In C order: whether each position is in the footprint.
    pub mask: Vec<bool>,
}

impl Footprint {
    /// The nonzero entries of a `.npy` array (boolean or numeric).
    pub fn from_npy(path: &std::path::Path) -> Result<Self> {
        let k = Kernel::from_npy(path).map_err(|e| match e {
            Error::InvalidParameter { message, .. } => Error::InvalidParameter {
                op: "footprint",
                message: message.replace("kernel", "footprint"),
            },
            other => other,
        })?;
        Ok(Footprint {
            shape: k.shape,
            mask: k.data.iter().map(|&w| w != 0.0).collect(),
        })
    }
}

/// Lowers a rank filter on an `ndim`-D array to its stages.
///
/// A minimum or maximum over a whole box is separable, and lowers to one 1-D stage per
/// axis with a size above 1 (scipy's `minimum_filter1d` passes); every other filter
/// is one N-D stage. Either way the result selects an input value, so it is exact.
pub(super) fn stages(
    op: &'static str,
    statistic: RankOrder,
    size: &[usize],
    footprint: Option<&Footprint>,
    (mode, cval): (Boundary, f64),
    origin: &[i64],
    ndim: usize,
) -> Result<Vec<Stage>> {
    let invalid = |message: String| Error::InvalidParameter { op, message };
    let (shape, mask) = match footprint {
        Some(f) => {
            let fd = f.shape.len();
            if fd == 0 || fd > ndim {
                return Err(invalid(format!(
                    "the footprint has {fd} dimensions; it needs 1 to {ndim} (the array's)"
                )));
            }
            if f.shape.iter().product::<usize>() != f.mask.len() {
                return Err(invalid(format!(
                    "the footprint shape {:?} needs {} entries, got {}",
                    f.shape,
                    f.shape.iter().product::<usize>(),
                    f.mask.len()
                )));
            }
            let mut shape = vec![1; ndim - fd];
            shape.extend_from_slice(&f.shape);
            (shape, f.mask.clone())
        }
        None => {
            if size.is_empty() {
                return Err(invalid("give a size or a footprint".into()));
            }
            let shape = per_axis("size", size, ndim)?;
            let n = shape.iter().product();
            (shape, vec![true; n])
        }
    };
    if shape.contains(&0) {
        return Err(invalid(format!("every extent must be >= 1, got {shape:?}")));
    }
    let origin = if origin.is_empty() {
        vec![0; ndim]
    } else {
        per_axis("origin", origin, ndim)?
    };
    // scipy's window for output i starts at i - extent // 2 - origin: its centre tap is
    // extent // 2 + origin, which must lie in the window.
    let mut centre = Vec::with_capacity(ndim);
    for (a, (&e, &o)) in shape.iter().zip(&origin).enumerate() {
        let c = (e / 2) as i64 + o;
        if c < 0 || c >= e as i64 {
            return Err(invalid(format!(
                "invalid origin {o} on axis {a} of extent {e}"
            )));
        }
        centre.push(c as usize);
    }
    let n = mask.iter().filter(|&&m| m).count();
    if n == 0 {
        return Err(invalid("the footprint holds no element".into()));
    }
    if !cval.is_finite() {
        return Err(invalid(format!("cval must be finite, got {cval}")));
    }
    let rank = match statistic {
        RankOrder::Median => n / 2,
        RankOrder::Minimum => 0,
        RankOrder::Maximum => n - 1,
        RankOrder::Percentile(p) => {
            let p = if p < 0.0 { p + 100.0 } else { p };
            if !(0.0..=100.0).contains(&p) {
                return Err(invalid(format!(
                    "the percentile must be in -100..=100, got {p}"
                )));
            }
            if p == 100.0 {
                n - 1
            } else {
                (n as f64 * p / 100.0) as usize
            }
        }
    };
    let stage = |shape: Vec<usize>, mask: &[bool], rank: usize| {
        Stage::Rank(Rank {
            window: Stencil::new(
                shape.clone(),
                // The centre taps on the axes this window spans (1 elsewhere: 0).
                shape
                    .iter()
                    .zip(&centre)
                    .map(|(&e, &c)| if e > 1 { c } else { 0 })
                    .collect(),
                mask.iter().map(|&m| f64::from(u8::from(m))).collect(),
                mode,
                0.0,
            ),
            rank,
            cval,
        })
    };
    if (rank == 0 || rank == n - 1) && n == mask.len() {
        // A whole box: one pass per axis, as scipy's minimum_filter1d passes.
        return Ok(pass_order(ndim)
            .into_iter()
            .filter(|&a| shape[a] > 1)
            .map(|a| {
                let mut s = vec![1; ndim];
                s[a] = shape[a];
                stage(
                    s,
                    &vec![true; shape[a]],
                    if rank == 0 { 0 } else { shape[a] - 1 },
                )
            })
            .collect());
    }
    Ok(vec![stage(shape, &mask, rank)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranks(st: &[Stage]) -> Vec<(Vec<usize>, usize)> {
        st.iter()
            .map(|s| match s {
                Stage::Rank(r) => (r.window.shape.clone(), r.rank),
                other => panic!("not a rank stage: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn ranks_follow_scipy() {
        let b = Boundary::Reflect;
        let med = stages("median", RankOrder::Median, &[3], None, (b, 0.0), &[], 3).unwrap();
        assert_eq!(ranks(&med), vec![(vec![3, 3, 3], 13)]);
        let p = stages(
            "p",
            RankOrder::Percentile(30.0),
            &[3, 3],
            None,
            (b, 0.0),
            &[],
            2,
        )
        .unwrap();
        assert_eq!(ranks(&p), vec![(vec![3, 3], 2)]);
        let p = stages(
            "p",
            RankOrder::Percentile(-10.0),
            &[5],
            None,
            (b, 0.0),
            &[],
            1,
        )
        .unwrap();
        assert_eq!(ranks(&p), vec![(vec![5], 4)]);
        // A box maximum is separable; size 1 axes are skipped.
        let max = stages(
            "maximum",
            RankOrder::Maximum,
            &[1, 4, 3],
            None,
            (b, 0.0),
            &[],
            3,
        )
        .unwrap();
        assert_eq!(ranks(&max), vec![(vec![1, 4, 1], 3), (vec![1, 1, 3], 2)]);
        // A cross footprint is not.
        let cross = Footprint {
            shape: vec![3, 3],
            mask: vec![false, true, false, true, true, true, false, true, false],
        };
        let min = stages(
            "minimum",
            RankOrder::Minimum,
            &[],
            Some(&cross),
            (b, 0.0),
            &[],
            3,
        )
        .unwrap();
        assert_eq!(ranks(&min), vec![(vec![1, 3, 3], 0)]);
    }

    #[test]
    fn bad_rank_filters_are_rejected() {
        let b = Boundary::Reflect;
        assert!(stages("median", RankOrder::Median, &[], None, (b, 0.0), &[], 2).is_err());
        assert!(stages("median", RankOrder::Median, &[0], None, (b, 0.0), &[], 2).is_err());
        assert!(
            stages(
                "p",
                RankOrder::Percentile(101.0),
                &[3],
                None,
                (b, 0.0),
                &[],
                2
            )
            .is_err()
        );
        let empty = Footprint {
            shape: vec![2],
            mask: vec![false, false],
        };
        assert!(
            stages(
                "median",
                RankOrder::Median,
                &[],
                Some(&empty),
                (b, 0.0),
                &[],
                2
            )
            .is_err()
        );
        // scipy's origin must keep the window on its pixel: -1..=1 for 3, -1..=0 for 2.
        assert!(stages("median", RankOrder::Median, &[3], None, (b, 0.0), &[2], 1).is_err());
        assert!(stages("median", RankOrder::Median, &[2], None, (b, 0.0), &[1], 1).is_err());
        let shifted = stages("median", RankOrder::Median, &[2], None, (b, 0.0), &[-1], 1).unwrap();
        let Stage::Rank(r) = &shifted[0] else {
            panic!("a rank stage")
        };
        assert_eq!(r.window.centre, vec![0]);
    }
}
