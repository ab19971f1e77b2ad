//! [`InterpMode`]: scipy.ndimage's interpolation modes, how each maps a coordinate
//! past the edge (`map_coordinate`) and a tap past it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::boundary::Boundary;
use crate::error::Error;

/// How interpolation treats coordinates beyond the edge: scipy.ndimage's interpolation
/// `mode` (`affine_transform`, `zoom`, `rotate`), with its names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InterpMode {
    /// Beyond the outermost samples' centres the value is `cval`; inside, taps past the
    /// edge are mirrored (scipy's default for interpolation).
    #[default]
    #[serde(rename = "constant")]
    Constant,
    /// The input is padded with `cval` and interpolated there too.
    #[serde(rename = "grid-constant")]
    GridConstant,
    /// The edge sample repeats.
    #[serde(rename = "nearest")]
    Nearest,
    /// Reflection about the edge of the last sample (`grid-mirror` is the same).
    #[serde(rename = "reflect", alias = "grid-mirror")]
    Reflect,
    /// Reflection about the centre of the last sample.
    #[serde(rename = "mirror")]
    Mirror,
    /// scipy's `wrap`: periodic with period `n - 1` (first and last samples coincide).
    #[serde(rename = "wrap")]
    Wrap,
    /// Periodic with period `n`.
    #[serde(rename = "grid-wrap")]
    GridWrap,
}

impl InterpMode {
    /// Every mode.
    pub const ALL: [InterpMode; 7] = [
        InterpMode::Constant,
        InterpMode::GridConstant,
        InterpMode::Nearest,
        InterpMode::Reflect,
        InterpMode::Mirror,
        InterpMode::Wrap,
        InterpMode::GridWrap,
    ];

    /// scipy's name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            InterpMode::Constant => "constant",
            InterpMode::GridConstant => "grid-constant",
            InterpMode::Nearest => "nearest",
            InterpMode::Reflect => "reflect",
            InterpMode::Mirror => "mirror",
            InterpMode::Wrap => "wrap",
            InterpMode::GridWrap => "grid-wrap",
        }
    }

    /// Whether scipy pads the input by [`PAD`] samples before the prefilter
    /// (`_prepad_for_spline_filter`).
    pub(super) fn padded(self) -> bool {
        matches!(self, InterpMode::Nearest | InterpMode::GridConstant)
    }

    /// The mode that maps taps past the edge (scipy's `_get_spline_boundary_mode`).
    fn tap_mode(self) -> InterpMode {
        match self {
            InterpMode::Constant | InterpMode::Wrap => InterpMode::Mirror,
            m => m,
        }
    }

    /// scipy's `map_coordinate`: a coordinate past the edge of an axis of `len`
    /// samples mapped into it, or -1 where the constant applies.
    #[inline]
    pub(crate) fn map_coordinate(self, x: f64, len: usize) -> f64 {
        let n = len as f64;
        if x >= 0.0 && x <= n - 1.0 {
            return x;
        }
        // A single sample is every reflection and period of itself.
        if len <= 1
            && matches!(
                self,
                InterpMode::Mirror | InterpMode::Reflect | InterpMode::Wrap | InterpMode::GridWrap
            )
        {
            return 0.0;
        }
        let mut x = x;
        if x < 0.0 {
            match self {
                InterpMode::Mirror => {
                    let sz2 = 2.0 * n - 2.0;
                    x += sz2 * (-x / sz2).trunc();
                    x = if x <= 1.0 - n { x + sz2 } else { -x };
                }
                InterpMode::Reflect => {
                    let sz2 = 2.0 * n;
                    if x < -sz2 {
                        x += sz2 * (-x / sz2).trunc();
                    }
                    x = if x < -n {
                        x + sz2
                    } else {
                        (if x > -1e-15 { 1e-15 } else { -x }) - 1.0
                    };
                }
                InterpMode::Wrap => {
                    let sz = n - 1.0;
                    x += sz * ((-x / sz).trunc() + 1.0);
                }
                InterpMode::GridWrap => {
                    x += n * (((-1.0 - x) / n).trunc() + 1.0);
                }
                InterpMode::Nearest => x = 0.0,
                InterpMode::Constant | InterpMode::GridConstant => x = -1.0,
            }
        } else if x > n - 1.0 {
            match self {
                InterpMode::Mirror => {
                    let sz2 = 2.0 * n - 2.0;
                    x -= sz2 * (x / sz2).trunc();
                    if x >= n {
                        x = sz2 - x;
                    }
                }
                InterpMode::Reflect => {
                    let sz2 = 2.0 * n;
                    x -= sz2 * (x / sz2).trunc();
                    if x >= n {
                        x = sz2 - x - 1.0;
                    }
                }
                InterpMode::Wrap => {
                    let sz = n - 1.0;
                    x -= sz * (x / sz).trunc();
                }
                InterpMode::GridWrap => {
                    x -= n * (x / n).trunc();
                }
                InterpMode::Nearest => x = n - 1.0,
                InterpMode::Constant | InterpMode::GridConstant => x = -1.0,
            }
        }
        x
    }

    /// The sample a tap at integer `index` reads on an axis of `len` samples, in this
    /// tap mode ([`InterpMode::tap_mode`]); `None` for `grid-constant`'s `cval`.
    pub(crate) fn map_tap(self, index: i64, len: usize) -> Option<usize> {
        // Integer taps extend as the filters' boundary modes do.
        let boundary = match self.tap_mode() {
            InterpMode::GridConstant => Boundary::Constant,
            InterpMode::Nearest => Boundary::Nearest,
            InterpMode::GridWrap => Boundary::Wrap,
            InterpMode::Reflect => Boundary::Reflect,
            _ => Boundary::Mirror,
        };
        boundary.map(index, len)
    }
}

impl fmt::Display for InterpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for InterpMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s == "grid-mirror" {
            return Ok(InterpMode::Reflect);
        }
        InterpMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| Error::InvalidParameter {
                op: "mode",
                message: format!(
                    "unknown interpolation mode '{s}' (expected constant, grid-constant, nearest, \
                     reflect, grid-mirror, mirror, wrap or grid-wrap)"
                ),
            })
    }
}
