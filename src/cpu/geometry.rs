//! Geometric resampling on the CPU (`affine_transform`, `zoom`, `rotate`, `deskew`):
//! scipy.ndimage's `NI_GeometricTransform` and `NI_ZoomShift` over one block, with its
//! B-spline prefilter (`NI_SplineFilter1D`) run on the block's footprint.
//!
//! Each output is computed as scipy computes it, in f64: its coordinate (the offset,
//! then each term of the matrix product in order), the mode's mapping, the taps in C
//! order, each sample times the axes' weights in axis order. Where a footprint reaches
//! the array's edge the prefilter starts there with scipy's exact initial values; where
//! it is cut inside the array it starts from a mirrored estimate, whose error has
//! decayed below 1e-15 of the data's magnitude within the footprint's overlap
//! ([`crate::stage::overlap`]).

use std::borrow::Cow;

use crate::block::{Block, c_strides, for_each_row, take_vec};
use crate::dtype::{DType, Element};
use crate::region::AxisSet;
use crate::stage::{
    Geometric, InterpMode, Map, coordinate, first_tap, poles, spline_weights, zoom_coordinate,
};

/// The samples (or prefiltered coefficients) outputs read: `data` at element offsets,
/// found per axis from an index in padded coordinates.
struct Samples<'a> {
    data: Cow<'a, [f64]>,
    /// Per axis: the first padded index held.
    first: Vec<i64>,
    /// Per axis: the element offset of each padded index held, from `first`.
    offsets: Vec<Vec<usize>>,
}

/// Resamples `input` (an array of `in_shape`, holding at least `needs`) at the output
/// indices `out`.
pub(crate) fn transform<T: Element>(
    input: &Block<'_, T>,
    needs: &[AxisSet],
    out: &[AxisSet],
    in_shape: &[usize],
    g: &Geometric,
) -> Block<'static, T> {
    let r = g.resolve(in_shape);
    let ndim = in_shape.len();
    let interp = g.interp;
    let order = interp.order;
    let pad = interp.pad();
    let lens: Vec<usize> = (0..ndim).map(|a| in_shape[a] + 2 * pad).collect();
    let samples = samples(input, needs, in_shape, &r.through, g);
    let out_index: Vec<Vec<usize>> = out.iter().map(|s| s.iter().collect()).collect();
    let out_lens: Vec<usize> = out.iter().map(AxisSet::len).collect();
    let total: usize = out_lens.iter().product();
    let mut data: Vec<T> = take_vec(total);

    // A zoom's taps and weights per axis and output index, computed once.
    let zoom_taps: Option<Vec<Vec<Option<Taps>>>> = match &r.map {
        Map::Zoom { ratio, grid_mode } => Some(
            (0..ndim)
                .map(|a| {
                    out_index[a]
                        .iter()
                        .map(|&k| {
                            let c = zoom_coordinate(k, ratio[a], *grid_mode);
                            taps(c, a, k, r.through[a], &interp, lens[a], pad, &samples)
                        })
                        .collect()
                })
                .collect(),
        ),
        Map::Matrix { .. } => None,
    };

    let mut per_axis: Vec<Option<Taps>> = vec![None; ndim];
    let mut point = vec![0.0f64; ndim];
    let mut combo = vec![0usize; ndim];
    let last = ndim - 1;
    for_each_row(&out_lens[..last], |row, _| {
        for j in 0..out_lens[last] {
            // The taps of every axis, or the constant.
            let mut constant = false;
            match (&r.map, &zoom_taps) {
                (_, Some(z)) => {
                    for a in 0..ndim {
                        let i = if a == last { j } else { row[a] };
                        per_axis[a] = z[a][i];
                        constant |= per_axis[a].is_none();
                    }
                }
                (Map::Matrix { matrix, offset }, None) => {
                    for a in 0..ndim {
                        point[a] = out_index[a][if a == last { j } else { row[a] }] as f64;
                    }
                    for h in 0..ndim {
                        let k = point[h] as usize;
                        let c = if r.through[h] {
                            0.0
                        } else {
                            coordinate(matrix, offset, ndim, h, &point)
                        };
                        per_axis[h] = taps(c, h, k, r.through[h], &interp, lens[h], pad, &samples);
                        if per_axis[h].is_none() {
                            constant = true;
                            break;
                        }
                    }
                }
                (Map::Zoom { .. }, None) => unreachable!("a zoom's taps are tabled"),
            }
            let t = if constant {
                interp.cval
            } else {
                sum(&per_axis, &mut combo, &samples.data, interp.cval, order)
            };
            data.push(store(t));
        }
    });
    Block::new(out.to_vec(), Cow::Owned(data))
}

/// One axis's taps of one output: the element offsets (`None`: `cval`) and weights.
#[derive(Clone, Copy, Debug)]
struct Taps {
    count: usize,
    offsets: [Option<usize>; 6],
    weights: [f64; 6],
    /// Whether the weights multiply (not on axes read straight, nor at order 0).
    weighted: bool,
}

/// The taps along axis `a` for input coordinate `c` (`k`, the output index, where the
/// axis passes through), or `None` where the output is the constant.
#[allow(clippy::too_many_arguments)]
fn taps(
    c: f64,
    a: usize,
    k: usize,
    through: bool,
    interp: &crate::stage::Interpolation,
    len: usize,
    pad: usize,
    samples: &Samples<'_>,
) -> Option<Taps> {
    let at = |p: i64| samples.offsets[a][(p - samples.first[a]) as usize];
    let mut t = Taps {
        count: 1,
        offsets: [None; 6],
        weights: [1.0; 6],
        weighted: false,
    };
    if through {
        t.offsets[0] = Some(at((k + pad) as i64));
        return Some(t);
    }
    let order = interp.order;
    let mode = interp.mode;
    let mut cc = c + pad as f64;
    let unmapped = matches!(mode, InterpMode::GridConstant | InterpMode::Nearest);
    if !unmapped {
        cc = mode.map_coordinate(cc, len);
    }
    if !(cc > -1.0 || unmapped) {
        return None;
    }
    let start = first_tap(cc, order);
    let edge = start < 0 || start + order as i64 >= len as i64;
    t.count = order + 1;
    for (l, slot) in t.offsets[..=order].iter_mut().enumerate() {
        let p = start + l as i64;
        *slot = if mode == InterpMode::GridConstant {
            (0..len as i64).contains(&p).then(|| at(p))
        } else if edge {
            mode.map_tap(p, len).map(|q| at(q as i64))
        } else {
            Some(at(p))
        };
    }
    if order > 0 {
        spline_weights(cc, order, &mut t.weights);
        t.weighted = true;
    }
    Some(t)
}

/// The interpolated value: every combination of the axes' taps in C order, each sample
/// times the axes' weights in axis order.
fn sum(
    per_axis: &[Option<Taps>],
    combo: &mut [usize],
    data: &[f64],
    cval: f64,
    order: usize,
) -> f64 {
    let ndim = per_axis.len();
    let taps: Vec<&Taps> = per_axis.iter().map(|t| t.as_ref().unwrap()).collect();
    combo.fill(0);
    let mut t = 0.0;
    loop {
        let mut offset = Some(0usize);
        for (a, tp) in taps.iter().enumerate() {
            offset = offset.zip(tp.offsets[combo[a]]).map(|(o, q)| o + q);
        }
        let mut coeff = offset.map_or(cval, |o| data[o]);
        if order > 0 {
            for (a, tp) in taps.iter().enumerate() {
                if tp.weighted {
                    coeff *= tp.weights[combo[a]];
                }
            }
        }
        t += coeff;
        // The next combination, the last axis fastest.
        let mut a = ndim;
        loop {
            if a == 0 {
                return t;
            }
            a -= 1;
            combo[a] += 1;
            if combo[a] < taps[a].count {
                break;
            }
            combo[a] = 0;
        }
    }
}

/// scipy's store of an interpolated value: floats rounded to the type; integers
/// rounded half away from zero (unsigned: negatives to 0) and clamped.
fn store<T: Element>(t: f64) -> T {
    if T::DTYPE.is_float() {
        return T::from_f64(t);
    }
    let signed = matches!(T::DTYPE, DType::I8 | DType::I16 | DType::I32);
    let r = if t > 0.0 {
        t + 0.5
    } else if signed {
        t - 0.5
    } else {
        0.0
    };
    // Integral, so the cast's rounding does not apply; `as` saturates.
    T::from_f64(r.trunc())
}

/// What outputs read: the input as f64 over `needs` (padded by the mode where scipy
/// pads), prefiltered along every axis that is interpolated where the order asks.
fn samples<'a, T: Element>(
    input: &Block<'_, T>,
    needs: &[AxisSet],
    in_shape: &[usize],
    through: &[bool],
    g: &Geometric,
) -> Samples<'a> {
    let ndim = in_shape.len();
    let interp = g.interp;
    let pad = interp.pad() as i64;
    // Per axis, the padded range held: the needed range, grown to the padded line's
    // ends where it reaches the array's edge.
    let ranges: Vec<(i64, i64)> = (0..ndim)
        .map(|a| {
            let b = needs[a].bounds();
            let n = in_shape[a] as i64;
            let (mut s, mut e) = (b.start as i64 + pad, b.end as i64 + pad);
            if !through[a] {
                if b.start == 0 {
                    s = 0;
                }
                if b.end as i64 == n {
                    e = n + 2 * pad;
                }
            }
            (s, e)
        })
        .collect();
    let lens: Vec<usize> = ranges.iter().map(|(s, e)| (e - s) as usize).collect();
    // Per axis and padded index held: the input element it copies (clamped where the
    // mode repeats the edge), or `None` for `cval`.
    let strides = input.strides();
    let sources: Vec<Vec<Option<usize>>> = (0..ndim)
        .map(|a| {
            let n = in_shape[a] as i64;
            (ranges[a].0..ranges[a].1)
                .map(|p| {
                    let i = p - pad;
                    let i = match interp.mode {
                        InterpMode::Nearest => i.clamp(0, n - 1),
                        _ if !(0..n).contains(&i) => return None,
                        _ => i,
                    };
                    let q = input.sets[a]
                        .position(i as usize)
                        .expect("the planner's footprint holds every sample read");
                    Some(q * strides[a])
                })
                .collect()
        })
        .collect();
    let total: usize = lens.iter().product();
    let mut data: Vec<f64> = Vec::with_capacity(total);
    let last = ndim - 1;
    for_each_row(&lens[..last], |row, _| {
        let base = (0..last).try_fold(0usize, |acc, a| sources[a][row[a]].map(|o| acc + o));
        for src in &sources[last] {
            data.push(match base.zip(*src) {
                Some((b, o)) => input.data[b + o].to_f64(),
                None => interp.cval,
            });
        }
    });
    if interp.filtered() {
        let full: Vec<i64> = (0..ndim).map(|a| in_shape[a] as i64 + 2 * pad).collect();
        prefilter(&mut data, &lens, &ranges, &full, through, &interp);
    }
    let strides = c_strides(&lens);
    Samples {
        data: Cow::Owned(data),
        first: ranges.iter().map(|r| r.0).collect(),
        offsets: (0..ndim)
            .map(|a| (0..lens[a]).map(|i| i * strides[a]).collect())
            .collect(),
    }
}

/// scipy's `spline_filter` over the block `data` (C order, `lens`), each held range
/// `ranges[a]` a segment of a line of `full[a]` samples.
fn prefilter(
    data: &mut [f64],
    lens: &[usize],
    ranges: &[(i64, i64)],
    full: &[i64],
    through: &[bool],
    interp: &crate::stage::Interpolation,
) {
    let zs = poles(interp.order);
    let gain: f64 = zs.iter().map(|&z| (1.0 - z) * (1.0 - 1.0 / z)).product();
    let strides = c_strides(lens);
    let mut line = Vec::new();
    for a in 0..lens.len() {
        if through[a] || full[a] <= 1 || lens[a] == 0 {
            continue;
        }
        let at_start = ranges[a].0 == 0;
        let at_end = ranges[a].1 == full[a];
        let whole = at_start && at_end;
        let stride = strides[a];
        let outer: Vec<usize> = lens
            .iter()
            .enumerate()
            .map(|(b, &l)| if b == a { 1 } else { l })
            .collect();
        // Every line along axis `a`: `outer` spans all axes, `a` with one index.
        for_each_row(&outer, |index, _| {
            let mut base = 0;
            for (b, &i) in index.iter().enumerate() {
                base += i * strides[b];
            }
            line.clear();
            line.extend((0..lens[a]).map(|i| data[base + i * stride]));
            for v in line.iter_mut() {
                *v *= gain;
            }
            for &z in zs {
                filter_line(&mut line, z, interp.mode, at_start, at_end, whole);
            }
            for (i, v) in line.iter().enumerate() {
                data[base + i * stride] = *v;
            }
        });
    }
}

/// One pole's causal and anticausal passes over `c`, with scipy's initial values at
/// the line's true ends and mirrored estimates where the segment is cut.
fn filter_line(c: &mut [f64], z: f64, mode: InterpMode, at_start: bool, at_end: bool, whole: bool) {
    let n = c.len();
    if n < 2 {
        return;
    }
    #[derive(PartialEq)]
    enum Init {
        Mirror,
        Reflect,
        Wrap,
    }
    let init = match mode {
        InterpMode::GridWrap => Init::Wrap,
        InterpMode::Nearest | InterpMode::Reflect => Init::Reflect,
        _ => Init::Mirror,
    };
    // Causal initial value.
    if whole {
        match init {
            Init::Mirror => {
                let zn1 = z.powi(n as i32 - 1);
                let mut c0 = c[0] + zn1 * c[n - 1];
                let mut zi = z;
                for i in 1..n - 1 {
                    c0 += zi * (c[i] + zn1 * c[n - 1 - i]);
                    zi *= z;
                }
                c[0] = c0 / (1.0 - zn1 * zn1);
            }
            Init::Reflect => {
                let zn = z.powi(n as i32);
                let mut sum = c[0] + zn * c[n - 1];
                let mut zi = z;
                for i in 1..n {
                    sum += zi * (c[i] + zn * c[n - 1 - i]);
                    zi *= z;
                }
                c[0] += sum * z / (1.0 - zn * zn);
            }
            Init::Wrap => {
                let mut zi = z;
                for i in 1..n {
                    c[0] += zi * c[n - i];
                    zi *= z;
                }
                c[0] /= 1.0 - zi;
            }
        }
    } else {
        // The far end's terms are below z^n: dropped.
        let mut sum = c[0];
        let mut zi = z;
        for &v in &c[1..] {
            sum += zi * v;
            zi *= z;
            if zi.abs() < 1e-300 {
                break;
            }
        }
        if at_start && init == Init::Reflect {
            c[0] += sum * z;
        } else {
            c[0] = sum;
        }
    }
    for i in 1..n {
        c[i] += z * c[i - 1];
    }
    // Anticausal initial value.
    if at_end && init == Init::Wrap {
        let mut zi = z;
        for i in 0..n - 1 {
            c[n - 1] += zi * c[i];
            zi *= z;
        }
        c[n - 1] *= z / (zi - 1.0);
    } else if at_end && init == Init::Reflect {
        c[n - 1] *= z / (z - 1.0);
    } else {
        c[n - 1] = (z * c[n - 2] + c[n - 1]) * z / (z * z - 1.0);
    }
    for i in (0..n - 1).rev() {
        c[i] = z * (c[i + 1] - c[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_line_agrees_with_the_whole_beyond_the_overlap() {
        let n = 200;
        let x: Vec<f64> = (0..n).map(|i| ((i * 37) % 23) as f64 - 11.0).collect();
        let z = poles(3)[0];
        let mut whole = x.clone();
        filter_line(&mut whole, z, InterpMode::Mirror, true, true, true);
        let k = crate::stage::overlap(3);
        let (s, e) = (50, 150);
        let mut cut = x[s..e].to_vec();
        filter_line(&mut cut, z, InterpMode::Mirror, false, false, false);
        for i in s + k..e - k {
            assert!((cut[i - s] - whole[i]).abs() < 1e-13, "{i}");
        }
        // Starting at the true start: exact there already.
        let mut head = x[..120].to_vec();
        filter_line(&mut head, z, InterpMode::Mirror, true, false, false);
        for i in 0..120 - k {
            assert!((head[i] - whole[i]).abs() < 1e-13, "{i}");
        }
    }
}
