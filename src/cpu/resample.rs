//! Resampling kernels: downsample (mean, max, min, stride, mode) and upsample
//! (nearest, linear).

use std::borrow::Cow;
use std::cmp::Ordering;

use super::for_each_row;
use crate::block::{Block, take_vec};
use crate::dtype::Element;
use crate::region::AxisSet;
use crate::stage::{DownMethod, UpMethod, linear_source, linear_weights};

/// Reduces windows of `factor` input elements; `out` indexes the output.
pub(crate) fn downsample<T: Element>(
    input: &Block<'_, T>,
    out: &[AxisSet],
    in_shape: &[usize],
    factor: &[usize],
    method: DownMethod,
) -> Block<'static, T> {
    let ndim = out.len();
    let last = ndim - 1;
    let strides = input.strides();
    // Per axis: for each output index, (input offset of the window's first element, window length).
    let windows: Vec<Vec<(usize, usize)>> = (0..ndim)
        .map(|a| {
            out[a]
                .iter()
                .map(|o| {
                    let start = o * factor[a];
                    let len = factor[a].min(in_shape[a] - start);
                    let p = input.sets[a].position(start).expect("planner bug");
                    (p * strides[a], len)
                })
                .collect()
        })
        .collect();
    let lens: Vec<usize> = out.iter().map(AxisSet::len).collect();
    let mut data = take_vec(lens.iter().product());
    let mut rows: Vec<usize> = Vec::new();
    let mut values: Vec<T> = Vec::new();
    for_each_row(&lens[..last], |index, _| {
        // Offsets of the input rows under this output row's window, C order.
        rows.clear();
        rows.push(0);
        for a in 0..last {
            let (off, len) = windows[a][index[a]];
            let stride = strides[a];
            rows.splice(
                ..,
                rows.clone()
                    .into_iter()
                    .flat_map(|r| (0..len).map(move |i| r + off + i * stride)),
            );
        }
        for &(x0, nx) in &windows[last] {
            values.clear();
            for &r in &rows {
                values.extend_from_slice(&input.data[r + x0..r + x0 + nx]);
            }
            data.push(reduce(&mut values, method));
        }
    });
    Block::new(out.to_vec(), Cow::Owned(data))
}

/// One window's value (`values` in C order; reordered by `mode`).
fn reduce<T: Element>(values: &mut [T], method: DownMethod) -> T {
    let is_nan = |x: &T| x.partial_cmp(x).is_none();
    match method {
        DownMethod::Stride => values[0],
        DownMethod::Mean => T::mean(values),
        DownMethod::Max | DownMethod::Min => {
            if let Some(nan) = values.iter().find(|x| is_nan(x)) {
                return *nan;
            }
            let better = if method == DownMethod::Max {
                Ordering::Greater
            } else {
                Ordering::Less
            };
            values.iter().copied().fold(values[0], |m, x| {
                if x.partial_cmp(&m) == Some(better) {
                    x
                } else {
                    m
                }
            })
        }
        DownMethod::Mode => {
            values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
            let (mut best, mut best_count) = (values[0], 0);
            let mut i = 0;
            while i < values.len() {
                let mut j = i + 1;
                while j < values.len() && values[j] == values[i] {
                    j += 1;
                }
                if j - i > best_count {
                    (best, best_count) = (values[i], j - i);
                }
                i = j;
            }
            best
        }
    }
}

/// Expands by `factor`; `out` indexes the output.
pub(crate) fn upsample<T: Element>(
    input: &Block<'_, T>,
    out: &[AxisSet],
    in_shape: &[usize],
    factor: &[usize],
    method: UpMethod,
) -> Block<'static, T> {
    let ndim = out.len();
    let last = ndim - 1;
    let strides = input.strides();
    let offset = |a: usize, i: usize| input.sets[a].position(i).expect("planner bug") * strides[a];
    // Per axis and output index: two (input offset, weight numerator) pairs over 2f.
    let corners: Vec<Vec<[(usize, i64); 2]>> = (0..ndim)
        .map(|a| {
            let f = factor[a];
            out[a]
                .iter()
                .map(|o| match method {
                    UpMethod::Nearest => [(offset(a, o / f), 2 * f as i64), (0, 0)],
                    UpMethod::Linear => {
                        let (i0, i1) = linear_source(o, f, in_shape[a]);
                        let (_, m) = linear_weights(o, f);
                        [(offset(a, i0), 2 * f as i64 - m), (offset(a, i1), m)]
                    }
                })
                .collect()
        })
        .collect();
    let denominator: i64 = factor.iter().map(|&f| 2 * f as i64).product();
    let lens: Vec<usize> = out.iter().map(AxisSet::len).collect();
    let mut data = take_vec(lens.iter().product());
    // Input rows under an output row, with the product of their leading-axis weights.
    let mut rows: Vec<(usize, i64)> = Vec::new();
    for_each_row(&lens[..last], |index, _| {
        rows.clear();
        rows.push((0, 1));
        for a in 0..last {
            let c = corners[a][index[a]];
            rows.splice(
                ..,
                rows.clone()
                    .into_iter()
                    .flat_map(|(r, w)| c.map(|(off, m)| (r + off, w * m)))
                    .filter(|&(_, w)| w != 0),
            );
        }
        for c in &corners[last] {
            let terms = rows.iter().flat_map(|&(r, w)| {
                c.iter()
                    .filter(|(_, m)| *m != 0)
                    .map(move |&(off, m)| (input.data[r + off], w * m))
            });
            data.push(T::weighted_sum(terms, denominator));
        }
    });
    Block::new(out.to_vec(), Cow::Owned(data))
}
