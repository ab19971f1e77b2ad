//! Resampling kernels: downsample (mean, max, min, stride, mode) and upsample
//! (nearest, linear).

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::block::{Block, for_each_row, take_vec};
use crate::dtype::{DType, Element};
use crate::region::AxisSet;
use crate::stage::{Corners, DownMethod, UpMethod, Window, corners, denominator, windows};

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
    // Per axis: for each output index, the window (the one builder both backends use).
    let windows: Vec<Vec<Window<usize>>> = (0..ndim)
        .map(|a| windows(&input.sets[a], strides[a], &out[a], in_shape[a], factor[a]))
        .collect();
    let lens: Vec<usize> = out.iter().map(AxisSet::len).collect();
    let mut data = take_vec(lens.iter().product());
    let mut rows: Vec<usize> = Vec::new();
    let mut values: Vec<T> = Vec::new();
    let mut sums: Vec<f32> = Vec::new();
    // The last axis's windows in maximal runs of whole, adjacent windows (the same for
    // every output row): stride and float32 means take a run at once.
    let row = &windows[last];
    let f = factor[last];
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for (k, w) in row.iter().enumerate() {
        match runs.last_mut() {
            Some(r) if w.len == f && row[k - 1].len == f && w.first == row[k - 1].first + f => {
                r.end += 1
            }
            _ => runs.push(k..k + 1),
        }
    }
    for_each_row(&lens[..last], |index, _| {
        // Offsets of the input rows under this output row's window, C order.
        rows.clear();
        rows.push(0);
        for a in 0..last {
            let Window { first: off, len } = windows[a][index[a]];
            let stride = strides[a];
            rows.splice(
                ..,
                rows.clone()
                    .into_iter()
                    .flat_map(|r| (0..len).map(move |i| r + off + i * stride)),
            );
        }
        for run in &runs {
            let (k, n) = (run.start, run.len());
            if n > 1 && method == DownMethod::Stride {
                // Each window's first value: its first row's, every `f`-th along it.
                let from = rows[0] + row[k].first;
                let values = &input.data[from..from + (n - 1) * f + 1];
                data.extend(values.iter().step_by(f).copied());
                continue;
            }
            if n > 1
                && method == DownMethod::Mean
                && let Some(src) = as_f32(&input.data)
            {
                sums.clear();
                sums.resize(n, 0.0);
                mean_of_windows(src, &rows, row[k].first, f, &mut sums);
                data.extend(sums.iter().copied().map(T::from_f32));
                continue;
            }
            for &Window { first: x0, len: nx } in &row[run.clone()] {
                values.clear();
                for &r in &rows {
                    values.extend_from_slice(&input.data[r + x0..r + x0 + nx]);
                }
                data.push(reduce(&mut values, method));
            }
        }
    });
    Block::new(out.to_vec(), Cow::Owned(data))
}

/// The values as float32, if they are.
fn as_f32<T: Element>(values: &[T]) -> Option<&[f32]> {
    // SAFETY: a type whose DTYPE is F32 is f32 (Element is sealed: f32 alone has it).
    (T::DTYPE == DType::F32)
        .then(|| unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<f32>(), values.len()) })
}

/// The means of adjacent whole windows of `f` elements along the last axis, from `x0`,
/// each over the rows at `rows`: [`Element::mean`]'s sum (from 0, the window's values
/// in C order: row by row, then along the row) and division, vectorised across the
/// windows, so the bits are the same.
fn mean_of_windows(data: &[f32], rows: &[usize], x0: usize, f: usize, out: &mut [f32]) {
    let n = (rows.len() * f) as f32;
    for &r in rows {
        let row = &data[r + x0..r + x0 + out.len() * f];
        match f {
            2 => add_windows::<2>(out, row),
            3 => add_windows::<3>(out, row),
            4 => add_windows::<4>(out, row),
            _ => {
                for i in 0..f {
                    for (o, window) in out.iter_mut().zip(row.chunks_exact(f)) {
                        *o += window[i];
                    }
                }
            }
        }
    }
    for o in out {
        *o /= n;
    }
}

/// Adds each window of `F` elements of `row` to its output, in order along the row.
fn add_windows<const F: usize>(out: &mut [f32], row: &[f32]) {
    for (o, window) in out.iter_mut().zip(row.chunks_exact(F)) {
        let window: &[f32; F] = window.try_into().expect("F elements");
        for &x in window {
            *o += x;
        }
    }
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
    // Per axis and output index: two (input offset, weight numerator over 2f) pairs
    // (the one builder both backends use).
    let corners: Vec<Vec<[(usize, i64); 2]>> = (0..ndim)
        .map(|a| {
            corners(
                &input.sets[a],
                strides[a],
                &out[a],
                in_shape[a],
                factor[a],
                method,
            )
            .into_iter()
            .map(|c: Corners<usize>| [(c.lo, c.lo_weight as i64), (c.hi, c.hi_weight as i64)])
            .collect()
        })
        .collect();
    let denominator = i64::try_from(denominator(factor)).expect("upsample factors below 2^31");
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
