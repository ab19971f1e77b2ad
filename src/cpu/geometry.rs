//! Geometric resampling on the CPU (`affine_transform`, `zoom`, `rotate`, `deskew`):
//! scipy.ndimage's `NI_GeometricTransform` and `NI_ZoomShift` over one block, with its
//! B-spline prefilter (`NI_SplineFilter1D`, `cpu/spline.rs`) run on the block's footprint.
//!
//! Each output is computed as scipy computes it, in f64: its coordinate (the offset,
//! then each term of the matrix product in order), the mode's mapping, the taps in C
//! order, each sample times the axes' weights in axis order. Where a footprint reaches
//! the array's edge the prefilter starts there with scipy's exact initial values; where
//! it is cut inside the array it starts from a mirrored estimate, whose error has
//! decayed below 1e-15 of the data's magnitude within the footprint's overlap
//! ([`crate::stage::overlap`]).

use std::borrow::Cow;

use super::trilinear::Trilinear;
use crate::block::{Block, c_strides, for_each_row, take_vec};
use crate::dtype::{DType, Element};
use crate::region::AxisSet;
use crate::stage::{
    Geometric, InterpMode, Map, Resolved, first_tap, floor, spline_weights, zoom_coordinate,
};

/// The samples (or prefiltered coefficients) outputs read: `data` at element offsets,
/// found per axis from an index in padded coordinates.
struct Samples<'a, V: Clone> {
    data: Cow<'a, [V]>,
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
    if !g.interp.filtered() {
        let data = resample(&direct(input, needs), out, in_shape, &r, g);
        return Block::new(out.to_vec(), Cow::Owned(data));
    }
    // Prefiltered coefficients are f64: made for slabs of the output along its first
    // axis, each from its own footprint, so that a large block holds only a slab's.
    let planes = out[0].len();
    let per_plane: usize = out[1..].iter().map(AxisSet::len).product::<usize>().max(1);
    let slab = (SLAB_ELEMENTS / per_plane).clamp(1, planes.max(1));
    let indices: Vec<usize> = out[0].iter().collect();
    let mut data: Vec<T> = take_vec(planes * per_plane);
    for piece in indices.chunks(slab) {
        let mut sets = out.to_vec();
        sets[0] = AxisSet::from_ranges(piece.iter().map(|&i| i..i + 1));
        let piece_needs = g.input_sets(&sets, in_shape);
        let samples = filtered(input, &piece_needs, in_shape, &r.through, g);
        data.extend(resample::<f64, T>(&samples, &sets, in_shape, &r, g));
    }
    Block::new(out.to_vec(), Cow::Owned(data))
}

/// The most outputs whose prefiltered footprint is made at once (a slab of planes).
const SLAB_ELEMENTS: usize = 1 << 18;

/// The outputs `out` read from `samples`, in C order.
fn resample<V: Element, T: Element>(
    samples: &Samples<'_, V>,
    out: &[AxisSet],
    in_shape: &[usize],
    r: &Resolved,
    g: &Geometric,
) -> Vec<T> {
    let ndim = in_shape.len();
    let interp = g.interp;
    let pad = interp.pad();
    let lens: Vec<usize> = (0..ndim).map(|a| in_shape[a] + 2 * pad).collect();
    let out_index: Vec<Vec<usize>> = out.iter().map(|s| s.iter().collect()).collect();
    let out_lens: Vec<usize> = out.iter().map(AxisSet::len).collect();
    let total: usize = out_lens.iter().product();
    let mut data: Vec<T> = take_vec(total);

    // A zoom's taps and weights per axis and output index, computed once (`None`: the
    // constant).
    let zoom_taps: Option<Vec<Vec<Option<Taps>>>> = match &r.map {
        Map::Zoom { ratio, grid_mode } => Some(
            (0..ndim)
                .map(|a| {
                    out_index[a]
                        .iter()
                        .map(|&k| {
                            let c = zoom_coordinate(k, ratio[a], *grid_mode);
                            let mut t = Taps::default();
                            taps(
                                c,
                                a,
                                k,
                                r.through[a],
                                &interp,
                                lens[a],
                                pad,
                                samples,
                                &mut t,
                            )
                            .then_some(t)
                        })
                        .collect()
                })
                .collect(),
        ),
        Map::Matrix { .. } => None,
    };

    let mut per_axis = [Taps::default(); MAX_AXES];
    let per_axis = &mut per_axis[..ndim];
    let mut point = [0.0f64; MAX_AXES];
    let point = &mut point[..ndim];
    let last = ndim - 1;
    let values = &samples.data[..];
    let mut bases = [0.0f64; MAX_AXES];
    // Linear interpolation of a 3-D array: each output inside the array by the short
    // path, `linear_3d` (the matrix's last column).
    let linear3 = match &r.map {
        Map::Matrix { matrix, .. }
            if ndim == 3
                && interp.order == 1
                && pad == 0
                && interp.mode != InterpMode::GridConstant =>
        {
            Some([matrix[2], matrix[5], matrix[8]])
        }
        _ => None,
    };
    // The vector rows' offset tables, where the linear path runs.
    let progressions: Vec<Option<(usize, usize)>> = match linear3 {
        Some(_) => samples
            .offsets
            .iter()
            .map(|t| super::trilinear::progression(t))
            .collect(),
        None => Vec::new(),
    };
    let mut row_values = Vec::new();
    for_each_row(&out_lens[..last], |row, _| {
        if let Map::Matrix { matrix, offset } = &r.map {
            // Each coordinate's sum over the row's leading axes, in scipy's order.
            for a in 0..last {
                point[a] = out_index[a][row[a]] as f64;
            }
            for h in 0..ndim {
                let mut t = offset[h];
                for l in 0..last {
                    t += point[l] * matrix[h * ndim + l];
                }
                bases[h] = t;
            }
        }
        let mut general = |j: usize| -> f64 {
            if let Some(m) = linear3
                && let Some(t) =
                    linear_3d(j, row, &out_index, &bases, m, &r.through, samples, &lens)
            {
                return t;
            }
            // The taps of every axis, or the constant.
            let mut constant = false;
            match (&r.map, &zoom_taps) {
                (_, Some(z)) => {
                    for a in 0..ndim {
                        let i = if a == last { j } else { row[a] };
                        match z[a][i] {
                            Some(t) => per_axis[a] = t,
                            None => constant = true,
                        }
                    }
                }
                (Map::Matrix { matrix, .. }, None) => {
                    let x = out_index[last][j] as f64;
                    for h in 0..ndim {
                        // scipy's sum: the row's partial sum, then the last term.
                        let c = if r.through[h] {
                            0.0
                        } else {
                            bases[h] + x * matrix[h * ndim + last]
                        };
                        let k = if h == last {
                            out_index[last][j]
                        } else {
                            out_index[h][row[h]]
                        };
                        let t = &mut per_axis[h];
                        if !taps(c, h, k, r.through[h], &interp, lens[h], pad, samples, t) {
                            constant = true;
                            break;
                        }
                    }
                }
                (Map::Zoom { .. }, None) => unreachable!("a zoom's taps are tabled"),
            }
            if constant {
                interp.cval
            } else {
                sum(per_axis, values, interp.cval)
            }
        };
        match linear3 {
            // The last axis interpolated (and the leading ones too, or read straight
            // through): the row's tight loop, the general path only where a tap
            // leaves the array.
            Some(m) if !r.through[last] => {
                let tables = [0, 1, 2].map(|h| &samples.offsets[h][..]);
                let mut kernel = Trilinear::new(values, &bases, m, &samples.first, tables, &lens)
                    .with_progressions(&progressions)
                    .with_constant((interp.mode == InterpMode::Constant).then_some(interp.cval));
                for h in (0..last).filter(|&h| r.through[h]) {
                    let k = out_index[h][row[h]] as i64;
                    kernel = kernel.through(h, tables[h][(k - samples.first[h]) as usize]);
                }
                kernel.row(&out_index[last], &mut row_values, general);
                data.extend(row_values.iter().map(|&t| store::<T>(t)));
            }
            _ => (0..out_lens[last]).for_each(|j| data.push(store(general(j)))),
        }
    });
    data
}

/// Output `j` of a row (`row`, its leading indices) of a 3-D linear transform whose
/// coordinates' partial sums are `bases` and last column `m`, where every tap lies
/// inside the array (else `None`): the same sums as scipy's, without the mapping.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn linear_3d<V: Element>(
    j: usize,
    row: &[usize],
    out_index: &[Vec<usize>],
    bases: &[f64; MAX_AXES],
    m: [f64; 3],
    through: &[bool],
    samples: &Samples<'_, V>,
    lens: &[usize],
) -> Option<f64> {
    let x = out_index[2][j] as f64;
    let mut offs = [[0usize; 2]; 3];
    let mut ws = [[1.0f64; 2]; 3];
    let mut counts = [1usize; 3];
    for h in 0..3 {
        let table = &samples.offsets[h];
        let first = samples.first[h];
        if through[h] {
            let k = if h == 2 {
                out_index[2][j]
            } else {
                out_index[h][row[h]]
            };
            offs[h][0] = table[(k as i64 - first) as usize];
            continue;
        }
        let c = bases[h] + x * m[h];
        if !(c >= 0.0 && c < (lens[h] - 1) as f64) {
            return None;
        }
        let f = floor(c);
        let i = (f as i64 - first) as usize;
        offs[h] = [table[i], table[i + 1]];
        ws[h][0] = 1.0 - (c - f);
        ws[h][1] = 1.0 - ws[h][0];
        counts[h] = 2;
    }
    let v = &samples.data;
    if counts == [2, 2, 2] {
        // Every axis interpolated: the eight taps unrolled, in scipy's order.
        let mut t = 0.0;
        for a in 0..2 {
            for b in 0..2 {
                let o = offs[0][a] + offs[1][b];
                t += v[o + offs[2][0]].to_f64() * ws[0][a] * ws[1][b] * ws[2][0];
                t += v[o + offs[2][1]].to_f64() * ws[0][a] * ws[1][b] * ws[2][1];
            }
        }
        return Some(t);
    }
    let mut t = 0.0;
    for a in 0..counts[0] {
        for b in 0..counts[1] {
            let o = offs[0][a] + offs[1][b];
            let (wa, wb) = (ws[0][a], ws[1][b]);
            for c in 0..counts[2] {
                t += v[o + offs[2][c]].to_f64() * wa * wb * ws[2][c];
            }
        }
    }
    Some(t)
}

/// The most axes an array has.
const MAX_AXES: usize = 5;

/// A tap reading `cval` (`grid-constant` past the edge).
const CVAL: usize = usize::MAX;

/// One axis's taps of one output: the element offsets (`CVAL`: the constant) and
/// weights (1 where an axis is read straight, and at order 0: scipy multiplies by no
/// weight there, and a product with 1 is exact).
#[derive(Clone, Copy, Debug)]
struct Taps {
    count: usize,
    offsets: [usize; 6],
    weights: [f64; 6],
    /// Whether a tap reads `cval`.
    cval: bool,
}

impl Default for Taps {
    fn default() -> Self {
        Taps {
            count: 1,
            offsets: [0; 6],
            weights: [1.0; 6],
            cval: false,
        }
    }
}

/// The taps along axis `a` for input coordinate `c` (`k`, the output index, where the
/// axis passes through) into `t`; false where the output is the constant.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn taps<V: Element>(
    c: f64,
    a: usize,
    k: usize,
    through: bool,
    interp: &crate::stage::Interpolation,
    len: usize,
    pad: usize,
    samples: &Samples<'_, V>,
    t: &mut Taps,
) -> bool {
    let at = |p: i64| samples.offsets[a][(p - samples.first[a]) as usize];
    if through {
        t.count = 1;
        t.offsets[0] = at((k + pad) as i64);
        t.weights[0] = 1.0;
        t.cval = false;
        return true;
    }
    let order = interp.order;
    let mode = interp.mode;
    let mut cc = c + pad as f64;
    // Linear inside the array, the common case: two neighbours, no mapping.
    if order == 1 && cc >= 0.0 && cc < (len - 1) as f64 && mode != InterpMode::GridConstant {
        let f = floor(cc);
        let i = (f as i64 - samples.first[a]) as usize;
        t.count = 2;
        t.cval = false;
        t.offsets[0] = samples.offsets[a][i];
        t.offsets[1] = samples.offsets[a][i + 1];
        t.weights[0] = 1.0 - (cc - f);
        t.weights[1] = 1.0 - t.weights[0];
        return true;
    }
    let unmapped = matches!(mode, InterpMode::GridConstant | InterpMode::Nearest);
    if !unmapped {
        cc = mode.map_coordinate(cc, len);
    }
    if !(cc > -1.0 || unmapped) {
        return false;
    }
    let start = first_tap(cc, order);
    t.count = order + 1;
    t.cval = false;
    if start >= 0 && start + (order as i64) < len as i64 {
        for l in 0..=order {
            t.offsets[l] = at(start + l as i64);
        }
    } else {
        for l in 0..=order {
            let p = start + l as i64;
            let q = if mode == InterpMode::GridConstant {
                (0..len as i64).contains(&p).then_some(p)
            } else {
                mode.map_tap(p, len).map(|q| q as i64)
            };
            t.offsets[l] = q.map_or(CVAL, at);
            t.cval |= q.is_none();
        }
    }
    if order > 0 {
        spline_weights(cc, order, &mut t.weights);
    } else {
        t.weights[0] = 1.0;
    }
    true
}

/// The interpolated value: every combination of the axes' taps in C order, each sample
/// times the axes' weights in axis order.
fn sum<V: Element>(taps: &[Taps], data: &[V], cval: f64) -> f64 {
    if let [a, b, c] = taps
        && !(a.cval || b.cval || c.cval)
    {
        // Three axes and no constant: the common case, unrolled.
        let mut t = 0.0;
        for i in 0..a.count {
            for j in 0..b.count {
                let row = a.offsets[i] + b.offsets[j];
                let wij = (a.weights[i], b.weights[j]);
                for k in 0..c.count {
                    t += data[row + c.offsets[k]].to_f64() * wij.0 * wij.1 * c.weights[k];
                }
            }
        }
        return t;
    }
    let ndim = taps.len();
    let mut combo = [0usize; MAX_AXES];
    let mut t = 0.0;
    loop {
        let mut offset = 0usize;
        let mut constant = false;
        for (a, tp) in taps.iter().enumerate() {
            let o = tp.offsets[combo[a]];
            constant |= o == CVAL;
            offset = offset.wrapping_add(o);
        }
        let mut coeff = if constant {
            cval
        } else {
            data[offset].to_f64()
        };
        for (a, tp) in taps.iter().enumerate() {
            coeff *= tp.weights[combo[a]];
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

/// What unfiltered outputs read: `input` itself, over the ranges of `needs`.
fn direct<'a, T: Element>(input: &'a Block<'_, T>, needs: &[AxisSet]) -> Samples<'a, T> {
    let strides = input.strides();
    Samples {
        data: Cow::Borrowed(&input.data[..]),
        first: needs.iter().map(|s| s.bounds().start as i64).collect(),
        offsets: needs
            .iter()
            .enumerate()
            .map(|(a, s)| {
                s.bounds()
                    .map(|i| {
                        let q = input.sets[a]
                            .position(i)
                            .expect("the planner's footprint holds every sample read");
                        q * strides[a]
                    })
                    .collect()
            })
            .collect(),
    }
}

/// What prefiltered outputs read: the input as f64 over `needs` (padded by the mode
/// where scipy pads), prefiltered along every axis that is interpolated.
fn filtered<'a, T: Element>(
    input: &Block<'_, T>,
    needs: &[AxisSet],
    in_shape: &[usize],
    through: &[bool],
    g: &Geometric,
) -> Samples<'a, f64> {
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
    let full: Vec<i64> = (0..ndim).map(|a| in_shape[a] as i64 + 2 * pad).collect();
    super::spline::prefilter(&mut data, &lens, &ranges, &full, through, &interp);
    let strides = c_strides(&lens);
    Samples {
        data: Cow::Owned(data),
        first: ranges.iter().map(|r| r.0).collect(),
        offsets: (0..ndim)
            .map(|a| (0..lens[a]).map(|i| i * strides[a]).collect())
            .collect(),
    }
}
