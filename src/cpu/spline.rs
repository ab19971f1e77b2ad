//! scipy.ndimage's B-spline prefilter (`NI_SplineFilter1D`, `ni_splines.c`) over a
//! block: each axis's lines filtered by the spline's poles, with scipy's initial values
//! at a line's true ends and a mirrored start where the block cuts the line (see
//! [`crate::stage::overlap`] for the error that leaves).

use crate::block::{c_strides, for_each_row};
use crate::stage::{InterpMode, poles};

/// scipy's `spline_filter` over the block `data` (C order, `lens`), each held range
/// `ranges[a]` a segment of a line of `full[a]` samples.
pub(super) fn prefilter(
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
