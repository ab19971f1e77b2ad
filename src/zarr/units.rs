//! Physical units: a sigma given as a length (`1.5um`) and the pixel spacing that turns
//! it into pixels, axis by axis.

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::ops::{Op, per_axis};
use crate::store::OmeImage;

/// A Gaussian's standard deviation along one axis: in pixels, or a length in the
/// image's physical units, divided by the axis's pixel spacing when the chain is
/// planned (so that anisotropic voxels get the right sigma).
///
/// Parses from `"2"` (pixels) or a number with a length unit: `"1.5um"`, `"300nm"`,
/// `"0.002mm"` (NGFF's names and their short forms).
///
/// ```
/// use haloflow::zarr::Sigma;
///
/// let s: Sigma = "1.5um".parse()?;
/// assert_eq!(s, Sigma::Length { value: 1.5, micrometers: 1.5 });
/// assert_eq!("300nm".parse::<Sigma>()?.micrometers(), Some(0.3));
/// assert_eq!("2".parse::<Sigma>()?, Sigma::Pixels(2.0));
/// # Ok::<(), haloflow::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sigma {
    /// A sigma in pixels.
    Pixels(f64),
    /// A length: `value` in the unit it was given in, and the same in micrometers.
    Length {
        /// The number as given.
        value: f64,
        /// The length in micrometers.
        micrometers: f64,
    },
}

impl Sigma {
    /// The length in micrometers, if this sigma is a length.
    pub fn micrometers(&self) -> Option<f64> {
        match self {
            Sigma::Pixels(_) => None,
            Sigma::Length { micrometers, .. } => Some(*micrometers),
        }
    }

    /// The number as given (pixels, or the length in its own unit).
    pub fn value(&self) -> f64 {
        match self {
            Sigma::Pixels(v) | Sigma::Length { value: v, .. } => *v,
        }
    }
}

impl From<f64> for Sigma {
    fn from(pixels: f64) -> Sigma {
        Sigma::Pixels(pixels)
    }
}

impl FromStr for Sigma {
    type Err = Error;

    fn from_str(s: &str) -> Result<Sigma> {
        let bad = |message: String| Error::InvalidParameter {
            op: "sigma",
            message,
        };
        let t = s.trim();
        // The number ends at the first character that cannot be part of it (no unit
        // starts with e or E).
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let value: f64 = number.parse().map_err(|_| {
            bad(format!(
                "'{s}' is not a sigma (pixels, or a length such as 1.5um)"
            ))
        })?;
        if unit.trim().is_empty() {
            return Ok(Sigma::Pixels(value));
        }
        let per = micrometers_per(unit).ok_or_else(|| {
            bad(format!(
                "unknown unit '{}' in '{s}' (nm, um, mm, m, ...)",
                unit.trim()
            ))
        })?;
        Ok(Sigma::Length {
            value,
            micrometers: value * per,
        })
    }
}

/// Micrometers per unit of length, by the names NGFF uses and their short forms.
pub fn micrometers_per(unit: &str) -> Option<f64> {
    Some(match unit.trim().to_ascii_lowercase().as_str() {
        "angstrom" | "å" => 1e-4,
        "nm" | "nanometer" | "nanometre" => 1e-3,
        "um" | "µm" | "micrometer" | "micrometre" | "micron" => 1.0,
        "mm" | "millimeter" | "millimetre" => 1e3,
        "cm" | "centimeter" | "centimetre" => 1e4,
        "m" | "meter" | "metre" => 1e6,
        _ => return None,
    })
}

/// One axis of a [`Spacing`].
#[derive(Clone, Debug, PartialEq)]
pub struct AxisSpacing {
    /// The axis's name (`z`, `y`, `x`, `c`, `t`).
    pub name: String,
    /// The distance between pixels, in the axis's unit.
    pub spacing: f64,
    /// Micrometers per unit of the axis's unit, if that unit is a length.
    pub micrometers_per_unit: Option<f64>,
}

/// The pixel spacing of the array an op reads: an OME-Zarr level's, or one given for a
/// plain array. Resampling ops change it for the ops after them ([`Spacing::after`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Spacing {
    /// One entry per axis of the array.
    pub axes: Vec<AxisSpacing>,
}

impl Spacing {
    /// The spacing of level `level` of `image`.
    pub fn of(image: &OmeImage, level: usize) -> Spacing {
        let l = &image.levels[level];
        Spacing {
            axes: image
                .axes
                .iter()
                .zip(&l.scale)
                .map(|(a, &s)| AxisSpacing {
                    name: a.name.clone(),
                    spacing: s,
                    micrometers_per_unit: a.unit.as_deref().and_then(micrometers_per),
                })
                .collect(),
        }
    }

    /// The spacing after `op` (a downsampling multiplies it by the factor, an
    /// upsampling divides it; other ops keep it).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the op's factors do not fit the axes.
    pub fn after(&mut self, op: &Op) -> Result<()> {
        let (factor, down) = match op {
            Op::Downsample { factor, .. } => (factor, true),
            Op::Upsample { factor, .. } => (factor, false),
            _ => return Ok(()),
        };
        let f = per_axis("factor", factor, self.axes.len())?;
        for (a, f) in self.axes.iter_mut().zip(f) {
            a.spacing = if down {
                a.spacing * f as f64
            } else {
                a.spacing / f as f64
            };
        }
        Ok(())
    }

    /// `sigma` in pixels on these axes: lengths divided by each axis's spacing (0 stays
    /// 0 on any axis); `op` names the op in errors.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the sigma does not fit the axes, or gives a
    /// length on an axis without a length unit.
    pub fn pixels(&self, op: &'static str, sigma: &[Sigma]) -> Result<Vec<f64>> {
        let ndim = self.axes.len();
        let sigma = per_axis("sigma", sigma, ndim)?;
        sigma
            .iter()
            .zip(&self.axes)
            .map(|(s, a)| match (s, a.micrometers_per_unit) {
                (Sigma::Pixels(v), _) => Ok(*v),
                (Sigma::Length { micrometers, .. }, _) if *micrometers == 0.0 => Ok(0.0),
                (Sigma::Length { micrometers, .. }, Some(unit)) => {
                    Ok(micrometers / (a.spacing * unit))
                }
                (Sigma::Length { .. }, None) => Err(Error::InvalidParameter {
                    op,
                    message: format!(
                        "axis '{}' has no length unit, so a sigma with a unit cannot \
                         apply to it (give 0 or pixels there)",
                        a.name
                    ),
                }),
            })
            .collect()
    }
}

/// A size in bytes from `2G`, `512M`, `512MiB`, `64k` or a plain number (binary units,
/// as memory limits are given).
///
/// ```
/// assert_eq!(haloflow::zarr::parse_size("2G")?, 2 << 30);
/// assert_eq!(haloflow::zarr::parse_size("512MiB")?, 512 << 20);
/// # Ok::<(), haloflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidParameter`] for anything else, or a size that is not positive.
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = |message: String| Error::InvalidParameter {
        op: "memory-limit",
        message,
    };
    let t = s.trim().to_ascii_uppercase();
    let t = t
        .strip_suffix("IB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(&t);
    let (digits, unit) = match t.chars().last() {
        Some(c @ ('K' | 'M' | 'G' | 'T')) => (&t[..t.len() - 1], c),
        _ => (t, ' '),
    };
    let value: f64 = digits
        .trim()
        .parse()
        .map_err(|_| bad(format!("'{s}' is not a size (e.g. 2G, 512M, 1000000)")))?;
    let scale = match unit {
        'K' => 1u64 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        'T' => 1 << 40,
        _ => 1,
    };
    if value.is_nan() || value <= 0.0 {
        return Err(bad(format!("the size '{s}' must be positive")));
    }
    Ok((value * scale as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmas_parse_with_and_without_units() {
        assert_eq!("2".parse::<Sigma>().unwrap(), Sigma::Pixels(2.0));
        assert_eq!("-1e-1".parse::<Sigma>().unwrap(), Sigma::Pixels(-0.1));
        assert_eq!("0.8um".parse::<Sigma>().unwrap().micrometers(), Some(0.8));
        assert!(("800nm".parse::<Sigma>().unwrap().micrometers().unwrap() - 0.8).abs() < 1e-12);
        assert!("2 parsecs".parse::<Sigma>().is_err());
        assert!("um".parse::<Sigma>().is_err());
    }

    #[test]
    fn lengths_become_pixels_by_each_axis_spacing() {
        let axis = |name: &str, spacing, unit| AxisSpacing {
            name: name.into(),
            spacing,
            micrometers_per_unit: unit,
        };
        let mut space = Spacing {
            axes: vec![
                axis("c", 1.0, None),
                axis("z", 2.0, Some(1.0)),
                axis("x", 0.4, Some(1e-3)),
            ],
        };
        let sigma = [
            Sigma::Pixels(0.0),
            "1um".parse().unwrap(),
            "2nm".parse().unwrap(),
        ];
        let px = space.pixels("gaussian", &sigma).unwrap();
        assert_eq!(px[0], 0.0);
        assert!(
            (px[1] - 0.5).abs() < 1e-12 && (px[2] - 5.0).abs() < 1e-9,
            "{px:?}"
        );
        assert!(space.pixels("gaussian", &["1um".parse().unwrap()]).is_err());
        space
            .after(&Op::downsample(&[1, 2, 2], crate::DownMethod::Mean))
            .unwrap();
        assert_eq!(space.axes[1].spacing, 4.0);
    }
}
