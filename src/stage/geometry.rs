//! Geometric resampling: scipy.ndimage's `affine_transform`, `zoom` and `rotate`
//! (spline interpolation of orders 0 to 5, its boundary modes and prefilter), and what
//! each output block reads of its input.
//!
//! An output index `o` reads the input at the coordinate `matrix · o + offset` (a zoom:
//! `o · ratio` per axis). The planner maps an output block's corners through the
//! transform: the block reads the bounding box of that preimage, widened by the
//! spline's taps and, for orders above 1, by the prefilter's overlap [`overlap`].

use super::interp_mode::InterpMode;
use crate::region::AxisSet;

/// Samples scipy pads on each side for the `nearest` and `grid-constant` prefilter.
pub(crate) const PAD: usize = 12;

/// The poles of the B-spline prefilter of `order` (scipy's `get_filter_poles`).
pub(crate) fn poles(order: usize) -> &'static [f64] {
    match order {
        2 => &[-0.171_572_875_253_809_9],
        3 => &[-0.267_949_192_431_122_7],
        4 => &[-0.361_341_225_900_220_17, -0.013_725_429_297_339_121],
        5 => &[-0.430_575_347_099_973_8, -0.043_096_288_203_264_65],
        _ => &[],
    }
}

/// The prefilter's overlap for `order`: the samples read beyond a block's taps on each
/// side, where a block does not reach the array's edge. The recursion restarted at
/// the block's edge is off there by at most about the data's magnitude; the error
/// decays as `|pole|^k` over `k` samples, so after this overlap it is below 1e-15 of
/// the data's magnitude (two samples spare; the largest gain, 120 at order 5, keeps
/// it below 1e-12).
pub fn overlap(order: usize) -> usize {
    let z = poles(order).iter().map(|p| p.abs()).fold(0.0f64, f64::max);
    if z == 0.0 {
        return 0;
    }
    ((1e-15f64).ln() / z.ln()).ceil() as usize + 2
}

/// The interpolation's weights of the `order + 1` taps for coordinate `x` (scipy's
/// `get_spline_interpolation_weights`).
#[inline]
pub(crate) fn spline_weights(x: f64, order: usize, w: &mut [f64]) {
    let x = x - if order & 1 == 1 {
        floor(x)
    } else {
        floor(x + 0.5)
    };
    if order == 1 {
        w[0] = 1.0 - x;
        w[1] = 1.0 - w[0];
        return;
    }
    let y = x;
    let z = 1.0 - x;
    match order {
        0 => {}
        1 => w[0] = 1.0 - x,
        2 => {
            w[1] = 0.75 - x * x;
            let y = 0.5 - x;
            w[0] = 0.5 * y * y;
        }
        3 => {
            w[1] = (y * y * (y - 2.0) * 3.0 + 4.0) / 6.0;
            w[2] = (z * z * (z - 2.0) * 3.0 + 4.0) / 6.0;
            w[0] = z * z * z / 6.0;
        }
        4 => {
            let t = x * x;
            w[2] = t * (t * 0.25 - 0.625) + 115.0 / 192.0;
            let y = 1.0 + x;
            w[1] = y * (y * (y * (5.0 - y) / 6.0 - 1.25) + 5.0 / 24.0) + 55.0 / 96.0;
            w[3] = z * (z * (z * (5.0 - z) / 6.0 - 1.25) + 5.0 / 24.0) + 55.0 / 96.0;
            let y = 0.5 - x;
            let t = y * y;
            w[0] = t * t / 24.0;
        }
        _ => {
            let t = y * y;
            w[2] = t * (t * (0.25 - y / 12.0) - 0.5) + 0.55;
            let t = z * z;
            w[3] = t * (t * (0.25 - z / 12.0) - 0.5) + 0.55;
            let y = y + 1.0;
            w[1] = y * (y * (y * (y * (y / 24.0 - 0.375) + 1.25) - 1.75) + 0.625) + 0.425;
            let z = z + 1.0;
            w[4] = z * (z * (z * (z * (z / 24.0 - 0.375) + 1.25) - 1.75) + 0.625) + 0.425;
            let y = 1.0 - x;
            let t = y * y;
            w[0] = y * t * t / 120.0;
        }
    }
    w[order] = 1.0;
    for i in 0..order {
        w[order] -= w[i];
    }
}

/// `x.floor()` without a call to libm's `floor` (which baseline x86-64, lacking
/// SSE4.1's `roundsd`, makes): exact for |x| < 2^52, and the coordinates here are.
#[inline(always)]
pub(crate) fn floor(x: f64) -> f64 {
    if x.abs() >= 4_503_599_627_370_496.0 || x.is_nan() {
        return x.floor();
    }
    let t = x as i64 as f64;
    if t > x { t - 1.0 } else { t }
}

/// The first tap of a spline of `order` at coordinate `x`.
#[inline]
pub(crate) fn first_tap(x: f64, order: usize) -> i64 {
    let centre = if order & 1 == 1 {
        floor(x)
    } else {
        floor(x + 0.5)
    };
    centre as i64 - (order / 2) as i64
}

/// Interpolation as scipy's: the spline `order` (0 to 5), the mode, `cval`, and
/// whether the input is prefiltered (scipy's `prefilter`; only orders above 1 have one).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Interpolation {
    pub order: usize,
    pub mode: InterpMode,
    pub cval: f64,
    pub prefilter: bool,
}

impl Interpolation {
    /// Whether the input is prefiltered before interpolation.
    pub(crate) fn filtered(&self) -> bool {
        self.prefilter && self.order > 1
    }

    /// The samples padded on each side of every axis before the prefilter.
    pub(crate) fn pad(&self) -> usize {
        if self.filtered() && self.mode.padded() {
            PAD
        } else {
            0
        }
    }
}

/// Where each output index reads the input.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Map {
    /// `in = matrix · out + offset`, row-major `ndim × ndim`, summed as scipy does.
    Matrix { matrix: Vec<f64>, offset: Vec<f64> },
    /// scipy's `zoom`: `in = out · ratio`, or `(out + 0.5) · ratio - 0.5` on the grid.
    Zoom { ratio: Vec<f64>, grid_mode: bool },
}

/// The transform of a geometric stage as the user gave it: resolved against the
/// input's shape into an output shape and a [`Map`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Transform {
    /// An affine map; the output has `output_shape` (or the input's).
    Affine {
        matrix: Vec<f64>,
        offset: Vec<f64>,
        output_shape: Option<Vec<usize>>,
    },
    /// A zoom by `factor` per axis: output `round(n · factor)` (scipy's rounding).
    Zoom { factor: Vec<f64>, grid_mode: bool },
    /// scipy's `rotate` by `angle` degrees in the plane of `axes` (sorted), the output
    /// grown to hold the rotated input where `reshape`.
    Rotate {
        angle: f64,
        axes: [usize; 2],
        reshape: bool,
    },
    /// A deskew of the last three axes (z, y, x) recorded with the light sheet at
    /// `angle` degrees, planes `scan_step` apart and pixels of `pixel_size`:
    /// `scan_step · cos(angle) / pixel_size` voxels of x per plane of z, and, where
    /// `rotate`, the rotation to the coverslip (see [`Op::Deskew`](crate::Op::Deskew)).
    Deskew {
        angle: f64,
        scan_step: f64,
        pixel_size: f64,
        rotate: bool,
    },
}

/// scipy.special's `cosdg` and `sindg` (Cephes), bit for bit: `scipy.ndimage.rotate`
/// takes its matrix from them, and at angles such as 45° or 60° they differ from the
/// C library's `cos` and `sin` of the radians in the last bit, which moves order-0
/// outputs that sit on a tie.
fn cos_sin_degrees(angle: f64) -> (f64, f64) {
    (cephes_degrees(angle, true), cephes_degrees(angle, false))
}

/// Cephes' `cosdg` (`cos`) or `sindg` of `x` degrees. (The coefficients are Cephes'
/// as published; the literals round to the same f64s.)
#[allow(clippy::excessive_precision)]
fn cephes_degrees(x: f64, cos: bool) -> f64 {
    const SINCOF: [f64; 6] = [
        1.589_623_015_722_184_479_52E-10,
        -2.505_074_776_285_035_401_35E-8,
        2.755_731_362_138_567_735_49E-6,
        -1.984_126_982_958_953_846_58E-4,
        8.333_333_333_322_118_588_62E-3,
        -1.666_666_666_666_663_072_95E-1,
    ];
    const COSCOF: [f64; 7] = [
        1.136_781_713_820_445_530_91E-11,
        -2.087_588_337_576_836_442_17E-9,
        2.755_731_554_298_166_115_47E-7,
        -2.480_158_729_361_863_037_76E-5,
        1.388_888_888_888_066_667_60E-3,
        -4.166_666_666_666_663_481_41E-2,
        4.999_999_999_999_999_997_98E-1,
    ];
    const PI180: f64 = 1.745_329_251_994_329_576_92E-2;
    let polevl = |x: f64, coef: &[f64]| coef[1..].iter().fold(coef[0], |a, &c| a * x + c);
    let mut sign = 1.0;
    let mut x = x;
    if x < 0.0 {
        x = -x;
        if !cos {
            sign = -1.0;
        }
    }
    let mut y = (x / 45.0).floor();
    // y mod 16, as Cephes strips the high bits.
    let z = y - (y / 16.0).floor() * 16.0;
    let mut j = z as i64;
    if j & 1 == 1 {
        j += 1;
        y += 1.0;
    }
    j &= 7;
    if j > 3 {
        sign = -sign;
        j -= 4;
    }
    if cos && j > 1 {
        sign = -sign;
    }
    let z = (x - y * 45.0) * PI180;
    let zz = z * z;
    let cos_poly = (j == 1 || j == 2) != cos;
    let v = if cos_poly {
        1.0 - zz * polevl(zz, &COSCOF)
    } else {
        z + z * (zz * polevl(zz, &SINCOF))
    };
    sign * v
}

/// An identity matrix of `ndim` axes, row-major.
fn identity(ndim: usize) -> Vec<f64> {
    (0..ndim * ndim)
        .map(|i| f64::from(i / ndim == i % ndim))
        .collect()
}

/// A geometric resampling stage.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Geometric {
    pub transform: Transform,
    pub interp: Interpolation,
}

/// A geometric stage resolved against its input's shape.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Resolved {
    /// The output's shape.
    pub out_shape: Vec<usize>,
    /// Where outputs read.
    pub map: Map,
    /// Per input axis: whether it passes through (input coordinate = output index,
    /// same length): read as it is, neither prefiltered nor interpolated.
    pub through: Vec<bool>,
}

impl Geometric {
    /// The output shape and map for an input of `in_shape`.
    pub(crate) fn resolve(&self, in_shape: &[usize]) -> Resolved {
        let ndim = in_shape.len();
        if let Some((matrix, offset, out_shape)) = self.affine_of(in_shape) {
            return Geometric {
                transform: Transform::Affine {
                    matrix,
                    offset,
                    output_shape: Some(out_shape),
                },
                interp: self.interp,
            }
            .resolve(in_shape);
        }
        match &self.transform {
            Transform::Rotate { .. } | Transform::Deskew { .. } => {
                unreachable!("resolved as affine maps above")
            }
            Transform::Affine {
                matrix,
                offset,
                output_shape,
            } => {
                let out_shape = output_shape.clone().unwrap_or_else(|| in_shape.to_vec());
                let through = (0..ndim)
                    .map(|h| {
                        offset[h] == 0.0
                            && out_shape[h] == in_shape[h]
                            && (0..ndim).all(|l| matrix[h * ndim + l] == f64::from(h == l))
                    })
                    .collect();
                Resolved {
                    out_shape,
                    map: Map::Matrix {
                        matrix: matrix.clone(),
                        offset: offset.clone(),
                    },
                    through,
                }
            }
            Transform::Zoom { factor, grid_mode } => {
                let out_shape: Vec<usize> = in_shape
                    .iter()
                    .zip(factor)
                    .map(|(&n, &f)| (n as f64 * f).round_ties_even() as usize)
                    .collect();
                // scipy: (in - 1) / (out - 1), or in / out on the grid; 1 where the
                // divisor is 0.
                let ratio: Vec<f64> = in_shape
                    .iter()
                    .zip(&out_shape)
                    .map(|(&n, &m)| {
                        let (num, div) = if *grid_mode {
                            (n as f64, m as f64)
                        } else {
                            (n as f64 - 1.0, m as f64 - 1.0)
                        };
                        if div == 0.0 { 1.0 } else { num / div }
                    })
                    .collect();
                let through = (0..ndim)
                    .map(|a| out_shape[a] == in_shape[a] && ratio[a] == 1.0)
                    .collect();
                Resolved {
                    out_shape,
                    map: Map::Zoom {
                        ratio,
                        grid_mode: *grid_mode,
                    },
                    through,
                }
            }
        }
    }

    /// An affine transform's matrix, offset and output shape, for the transforms that
    /// are affine maps built from the input's shape.
    fn affine_of(&self, in_shape: &[usize]) -> Option<(Vec<f64>, Vec<f64>, Vec<usize>)> {
        let ndim = in_shape.len();
        match &self.transform {
            Transform::Rotate {
                angle,
                axes,
                reshape,
            } => {
                let (c, s) = cos_sin_degrees(*angle);
                let [a0, a1] = *axes;
                let (iy, ix) = (in_shape[a0] as f64, in_shape[a1] as f64);
                let (oy, ox) = if *reshape {
                    // The rotated corners' extent (scipy: rot_matrix @ corners, the
                    // ptp + 0.5 truncated).
                    let ys = [0.0, c * 0.0 + s * ix, c * iy + s * 0.0, c * iy + s * ix];
                    let xs = [0.0, -s * 0.0 + c * ix, -s * iy + c * 0.0, -s * iy + c * ix];
                    let ptp = |v: [f64; 4]| {
                        v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                            - v.iter().copied().fold(f64::INFINITY, f64::min)
                    };
                    ((ptp(ys) + 0.5) as usize, (ptp(xs) + 0.5) as usize)
                } else {
                    (in_shape[a0], in_shape[a1])
                };
                let (hy, hx) = ((oy as f64 - 1.0) / 2.0, (ox as f64 - 1.0) / 2.0);
                let out_centre = [c * hy + s * hx, -s * hy + c * hx];
                let in_centre = [(iy - 1.0) / 2.0, (ix - 1.0) / 2.0];
                let mut matrix = identity(ndim);
                matrix[a0 * ndim + a0] = c;
                matrix[a0 * ndim + a1] = s;
                matrix[a1 * ndim + a0] = -s;
                matrix[a1 * ndim + a1] = c;
                let mut offset = vec![0.0; ndim];
                offset[a0] = in_centre[0] - out_centre[0];
                offset[a1] = in_centre[1] - out_centre[1];
                let mut out_shape = in_shape.to_vec();
                out_shape[a0] = oy;
                out_shape[a1] = ox;
                Some((matrix, offset, out_shape))
            }
            Transform::Deskew {
                angle,
                scan_step,
                pixel_size,
                rotate,
            } => {
                let (z, x) = (ndim - 3, ndim - 1);
                // NumPy's cos and sin of the radians, as the documented matrix is written
                // (`np.cos(np.deg2rad(angle))`), not scipy's `cosdg`.
                let t = angle.to_radians();
                let (c, s) = (t.cos(), t.sin());
                let (nz, nx) = (in_shape[z].max(1) - 1, in_shape[x].max(1) - 1);
                let mut matrix = identity(ndim);
                let mut out_shape = in_shape.to_vec();
                let step = scan_step / pixel_size;
                if *rotate {
                    // Output (h, y, u) on the camera pixel's grid: input x = h / sin,
                    // z = (u − h·cos/sin) / step.
                    matrix[z * ndim + z] = -c / (s * step);
                    matrix[z * ndim + x] = 1.0 / step;
                    matrix[x * ndim + z] = 1.0 / s;
                    matrix[x * ndim + x] = 0.0;
                    out_shape[z] = 1 + (nx as f64 * s).ceil() as usize;
                    out_shape[x] = 1 + (nz as f64 * step + nx as f64 * c).ceil() as usize;
                } else {
                    let shift = scan_step * c / pixel_size;
                    matrix[x * ndim + z] = -shift;
                    out_shape[x] += (nz as f64 * shift).ceil() as usize;
                }
                Some((matrix, vec![0.0; ndim], out_shape))
            }
            _ => None,
        }
    }

    /// The output shape for an input of `in_shape`.
    pub(crate) fn out_shape(&self, in_shape: &[usize]) -> Vec<usize> {
        self.resolve(in_shape).out_shape
    }

    /// The input indices the output box `out` reads: per axis one range, the bounding
    /// box of the box's preimage widened by the taps and the prefilter's overlap.
    pub(crate) fn input_sets(&self, out: &[AxisSet], in_shape: &[usize]) -> Vec<AxisSet> {
        let r = self.resolve(in_shape);
        let ndim = in_shape.len();
        let interp = &self.interp;
        let pad = interp.pad() as i64;
        let order = interp.order;
        let bounds: Vec<(f64, f64)> = match &r.map {
            Map::Matrix { matrix, offset } => {
                let mut lo = vec![f64::INFINITY; ndim];
                let mut hi = vec![f64::NEG_INFINITY; ndim];
                let ends: Vec<[f64; 2]> = out
                    .iter()
                    .map(|s| {
                        let b = s.bounds();
                        [b.start as f64, b.end.max(b.start + 1) as f64 - 1.0]
                    })
                    .collect();
                for corner in 0..1usize << ndim {
                    let o: Vec<f64> = (0..ndim).map(|l| ends[l][(corner >> l) & 1]).collect();
                    for h in 0..ndim {
                        let c = coordinate(matrix, offset, ndim, h, &o);
                        lo[h] = lo[h].min(c);
                        hi[h] = hi[h].max(c);
                    }
                }
                lo.into_iter().zip(hi).collect()
            }
            Map::Zoom { ratio, grid_mode } => (0..ndim)
                .map(|a| {
                    let b = out[a].bounds();
                    let first = zoom_coordinate(b.start, ratio[a], *grid_mode);
                    let last = zoom_coordinate(b.end.max(b.start + 1) - 1, ratio[a], *grid_mode);
                    (first.min(last), first.max(last))
                })
                .collect(),
        };
        (0..ndim)
            .map(|a| {
                let n = in_shape[a];
                if r.through[a] {
                    // One range: the kernel reads a box (the output set may be runs).
                    return AxisSet::from_range(out[a].bounds());
                }
                let whole = AxisSet::from_range(0..n);
                let len = n + 2 * pad as usize;
                let (lo, hi) = (bounds[a].0 + pad as f64, bounds[a].1 + pad as f64);
                if !(lo.is_finite() && hi.is_finite()) {
                    return whole;
                }
                let last = len as f64 - 1.0;
                // The coordinates' range after the mode's mapping.
                let (lo, hi) = match interp.mode {
                    InterpMode::Constant => (lo.max(0.0), hi.min(last)),
                    InterpMode::Nearest | InterpMode::GridConstant => (lo, hi),
                    InterpMode::Wrap | InterpMode::GridWrap if lo < 0.0 || hi > last => {
                        return whole;
                    }
                    _ => {
                        if lo < -last || hi > 2.0 * last {
                            return whole;
                        }
                        let (mut a, mut b) = (lo.max(0.0), hi.min(last));
                        if lo < 0.0 {
                            a = a.min(-1.0);
                            b = b.max(-lo);
                        }
                        if hi > last {
                            a = a.min(2.0 * last - hi - 1.0);
                            b = b.max(last + 1.0);
                        }
                        (a, b)
                    }
                };
                if lo > hi {
                    // Every output here is the constant: read one sample.
                    return AxisSet::from_range(0..1);
                }
                let o = order as i64;
                // grid-wrap's taps past an edge read the far side.
                if interp.mode == InterpMode::GridWrap
                    && (first_tap(lo, order) < 0 || first_tap(hi, order) + o >= len as i64)
                {
                    return whole;
                }
                let mut first = first_tap(lo, order) - 1;
                let mut end = first_tap(hi, order) + o + 2;
                // Taps past the edge read mirrored samples near it.
                if first < 0 {
                    end = end.max(o + 2);
                }
                if end > len as i64 {
                    first = first.min(len as i64 - o - 2);
                }
                if interp.filtered() {
                    if interp.mode == InterpMode::GridWrap {
                        return whole;
                    }
                    let k = overlap(order) as i64;
                    first -= k;
                    end += k;
                }
                let first = (first - pad).clamp(0, n as i64 - 1) as usize;
                let end = (end - pad).clamp(first as i64 + 1, n as i64) as usize;
                AxisSet::from_range(first..end)
            })
            .collect()
    }
}

/// Input coordinate `h` of output point `o` (scipy's sum: the offset, then each term in
/// order).
pub(crate) fn coordinate(matrix: &[f64], offset: &[f64], ndim: usize, h: usize, o: &[f64]) -> f64 {
    let mut t = offset[h];
    for (l, &ol) in o.iter().enumerate() {
        t += ol * matrix[h * ndim + l];
    }
    t
}

/// The input coordinate of output index `k` of a zoom (scipy's `zoom_shift`).
pub(crate) fn zoom_coordinate(k: usize, ratio: f64, grid_mode: bool) -> f64 {
    let c = k as f64;
    if grid_mode {
        (c + 0.5) * ratio - 0.5
    } else {
        c * ratio
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scipy.special's `cosdg` and `sindg` (scipy 1.17), bit for bit, signed zeros too.
    /// (The values are scipy's, one ulp either side of 1/√2 where it rounds so.)
    #[test]
    #[allow(clippy::approx_constant)]
    fn degrees_are_cephes_cosdg_and_sindg() {
        for (angle, cos, sin) in [
            (45.0, 0.7071067811865475, 0.7071067811865476),
            (60.0, 0.49999999999999994, 0.8660254037844387),
            (135.0, -0.7071067811865476, 0.7071067811865475),
            (200.0, -0.9396926207859084, -0.3420201433256687),
            (-30.0, 0.8660254037844387, -0.49999999999999994),
            (90.0, -0.0, 1.0),
            (180.0, -1.0, -0.0),
            (270.0, 0.0, -1.0),
            (1000000.3, 0.17880221511714925, -0.9838850379333963),
            (12.34, 0.976896613081381, 0.2137124407939944),
            (-405.0, 0.7071067811865475, -0.7071067811865476),
        ] {
            let (c, s) = cos_sin_degrees(angle);
            assert_eq!(
                (c.to_bits(), s.to_bits()),
                (f64::to_bits(cos), f64::to_bits(sin)),
                "{angle}"
            );
        }
    }

    #[test]
    fn weights_sum_to_one_and_match_the_b_spline() {
        let mut w = [0.0; 6];
        for order in 0..=5 {
            for x in [0.0, 0.25, 0.5, 0.75, 3.4, -1.6] {
                spline_weights(x, order, &mut w);
                let s: f64 = w[..=order].iter().sum();
                assert!((s - 1.0).abs() < 1e-12, "order {order} at {x}");
            }
        }
        // Cubic at a knot: 1/6, 4/6, 1/6, 0.
        spline_weights(2.0, 3, &mut w);
        assert!((w[0] - 1.0 / 6.0).abs() < 1e-15 && (w[1] - 4.0 / 6.0).abs() < 1e-15);
        assert_eq!(first_tap(2.0, 3), 1);
        assert_eq!(first_tap(2.6, 0), 3);
    }

    #[test]
    fn coordinates_map_as_scipys() {
        // Constant: beyond the outermost samples, the constant.
        assert_eq!(InterpMode::Constant.map_coordinate(-0.5, 5), -1.0);
        assert_eq!(InterpMode::Mirror.map_coordinate(-1.5, 5), 1.5);
        assert_eq!(InterpMode::Reflect.map_coordinate(-1.5, 5), 0.5);
        assert_eq!(InterpMode::Reflect.map_coordinate(5.5, 5), 3.5);
        assert_eq!(InterpMode::GridWrap.map_coordinate(-0.5, 5), 4.5);
        assert_eq!(InterpMode::Wrap.map_coordinate(4.5, 5), 0.5);
        assert_eq!(InterpMode::Mirror.map_tap(-1, 5), Some(1));
        assert_eq!(InterpMode::Constant.map_tap(5, 5), Some(3));
        assert_eq!(InterpMode::GridConstant.map_tap(5, 5), None);
        assert_eq!(
            "grid-mirror".parse::<InterpMode>().unwrap(),
            InterpMode::Reflect
        );
        assert!("mirrors".parse::<InterpMode>().is_err());
    }

    #[test]
    fn a_zoom_rounds_its_shape_as_scipy() {
        let g = Geometric {
            transform: Transform::Zoom {
                factor: vec![1.7, 0.6, 0.5],
                grid_mode: false,
            },
            interp: Interpolation {
                order: 1,
                mode: InterpMode::Constant,
                cval: 0.0,
                prefilter: true,
            },
        };
        // round(10 * 1.7) = 17, round(5 * 0.6) = 3, round(5 * 0.5) = round(2.5) = 2.
        assert_eq!(g.out_shape(&[10, 5, 5]), vec![17, 3, 2]);
    }

    #[test]
    fn a_shift_reads_its_preimage_and_taps() {
        let g = Geometric {
            transform: Transform::Affine {
                matrix: vec![1.0],
                offset: vec![10.5],
                output_shape: None,
            },
            interp: Interpolation {
                order: 1,
                mode: InterpMode::Constant,
                cval: 0.0,
                prefilter: true,
            },
        };
        // Outputs 0..4 read 10.5..13.5: taps 10..14 (one spare each side).
        let sets = g.input_sets(&[AxisSet::from_range(0..4)], &[100]);
        let b = sets[0].bounds();
        assert!(b.start <= 10 && b.end >= 15 && b.end <= 17, "{b:?}");
    }
}
