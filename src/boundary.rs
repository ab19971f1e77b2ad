//! Boundary modes with the exact semantics of `scipy.ndimage` filters.
//! (Layer: the foundations; see the layer map in `docs/ARCHITECTURE.md`.)
//!
//! A mode says which array element stands at an index outside `0..n`. Halos may be
//! longer than the axis (a radius-8 filter on an axis of length 2): the extension then
//! repeats, as scipy's does.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How a stencil sees the array beyond its edge: scipy.ndimage's `mode` (its names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Boundary {
    /// `d c b a | a b c d | d c b a`: reflection about the edge of the last element.
    #[default]
    Reflect,
    /// `d c b | a b c d | c b a`: reflection about the centre of the last element.
    Mirror,
    /// `a a a | a b c d | d d d`: the edge element repeats.
    Nearest,
    /// `k k k | a b c d | k k k`: a constant value (`cval`).
    Constant,
    /// `a b c d | a b c d | a b c d`: periodic.
    Wrap,
}

impl Boundary {
    /// All modes.
    pub const ALL: [Boundary; 5] = [
        Boundary::Reflect,
        Boundary::Mirror,
        Boundary::Nearest,
        Boundary::Constant,
        Boundary::Wrap,
    ];

    /// The scipy name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            Boundary::Reflect => "reflect",
            Boundary::Mirror => "mirror",
            Boundary::Nearest => "nearest",
            Boundary::Constant => "constant",
            Boundary::Wrap => "wrap",
        }
    }

    /// The in-array index that stands at `index` on an axis of length `n` (n ≥ 1),
    /// or `None` where the mode supplies the constant.
    pub fn map(self, index: i64, n: usize) -> Option<usize> {
        let n = n as i64;
        debug_assert!(n >= 1);
        if (0..n).contains(&index) {
            return Some(index as usize);
        }
        let i = match self {
            Boundary::Constant => return None,
            Boundary::Nearest => index.clamp(0, n - 1),
            Boundary::Wrap => index.rem_euclid(n),
            Boundary::Reflect => {
                let i = index.rem_euclid(2 * n);
                if i >= n { 2 * n - 1 - i } else { i }
            }
            Boundary::Mirror => {
                if n == 1 {
                    0
                } else {
                    let period = 2 * n - 2;
                    let i = index.rem_euclid(period);
                    if i >= n { period - i } else { i }
                }
            }
        };
        Some(i as usize)
    }
}

impl fmt::Display for Boundary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Boundary {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Boundary::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| Error::InvalidParameter {
                op: "mode",
                message: format!(
                    "unknown mode '{s}' (expected reflect, mirror, nearest, constant or wrap)"
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extend(mode: Boundary, n: usize, lo: i64, hi: i64) -> Vec<Option<usize>> {
        (lo..hi).map(|i| mode.map(i, n)).collect()
    }

    #[test]
    fn reflect_repeats_past_short_axes() {
        // numpy.pad(..., 'symmetric') of [a, b] by 5 on each side.
        let got: Vec<_> = extend(Boundary::Reflect, 2, -5, 7)
            .into_iter()
            .map(Option::unwrap)
            .collect();
        assert_eq!(got, vec![0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1]);
    }

    #[test]
    fn mirror_matches_numpy_reflect() {
        // numpy.pad([a, b, c], 4, 'reflect') = c b | ... : b c b a b c b a b c b
        let got: Vec<_> = extend(Boundary::Mirror, 3, -4, 7)
            .into_iter()
            .map(Option::unwrap)
            .collect();
        assert_eq!(got, vec![0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2]);
        assert_eq!(Boundary::Mirror.map(-7, 1), Some(0));
    }

    #[test]
    fn wrap_nearest_constant() {
        assert_eq!(Boundary::Wrap.map(-1, 3), Some(2));
        assert_eq!(Boundary::Wrap.map(7, 3), Some(1));
        assert_eq!(Boundary::Nearest.map(-9, 3), Some(0));
        assert_eq!(Boundary::Nearest.map(9, 3), Some(2));
        assert_eq!(Boundary::Constant.map(-1, 3), None);
        assert_eq!(Boundary::Constant.map(2, 3), Some(2));
    }
}
