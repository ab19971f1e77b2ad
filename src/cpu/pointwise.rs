//! Element-wise kernels: threshold, clip and the final cast.

use std::borrow::Cow;

use wgpu::WriteOnly;

use crate::block::{Block, BlockAny, for_each_row, take_vec};
use crate::dtype::{DType, Element, with_dtype};
use crate::region::AxisSet;

/// CSBDeep's `normalize_mi_ma` in float32: `(x - low) / (high - low + 1e-20)`, then
/// `np.clip(v, 0, 1)` if `clip` (NaN passes through).
#[inline(always)]
pub(crate) fn normalize(x: f32, low: f32, high: f32, clip: bool) -> f32 {
    let v = (x - low) / normalize_denominator(low, high);
    if clip && !v.is_nan() {
        v.clamp(0.0, 1.0)
    } else {
        v
    }
}

/// The generalized Anscombe transform with `[gain, add, scale]` from
/// [`NoiseModel::forward`](crate::stage::NoiseModel::forward): `scale · sqrt(max(gain·x +
/// add, 0))` in f32 (NaN passes through). The GPU's `anscombe.wgsl` is its twin.
#[inline(always)]
pub(crate) fn anscombe(x: f32, [gain, add, scale]: [f32; 3]) -> f32 {
    let v = gain * x + add;
    scale * (if v < 0.0 { 0.0 } else { v }).sqrt()
}

/// Mäkitalo and Foi's closed-form unbiased inverse of [`anscombe`] with `[gain,
/// offset, subtract]` from [`NoiseModel::inverse`](crate::stage::NoiseModel::inverse):
/// `gain · max(0, D²/4 + √(3/2)/(4D) − 11/(8D²) + 5√(3/2)/(8D³) − subtract) + offset`,
/// `D` at least 1, in f32 (NaN passes through).
#[inline(always)]
pub(crate) fn inverse_anscombe(d: f32, [gain, offset, subtract]: [f32; 3]) -> f32 {
    const ROOT: f32 = 1.224_744_9; // sqrt(3/2)
    let d = if d < 1.0 { 1.0 } else { d };
    let r = 1.0 / d;
    let i = 0.25 * d * d + 0.25 * ROOT * r - 1.375 * r * r + 0.625 * ROOT * r * r * r - subtract;
    gain * (if i < 0.0 { 0.0 } else { i }) + offset
}

/// The denominator of [`normalize`], `high - low + 1e-20` in f32 (the GPU gets it
/// from here too).
#[inline(always)]
pub(crate) fn normalize_denominator(low: f32, high: f32) -> f32 {
    high - low + 1e-20
}

/// `f` applied to every element of `input` at the indices `out`.
pub(crate) fn map<T: Element, U: Element>(
    input: &Block<'_, T>,
    out: &[AxisSet],
    f: impl Fn(T) -> U,
) -> Block<'static, U> {
    if input.sets == out {
        return input.map(f);
    }
    let last = out.len() - 1;
    let offsets = outer_offsets(input, out);
    let lens: Vec<usize> = out.iter().map(AxisSet::len).collect();
    let starts = last_axis_runs(input, out);
    let mut data = take_vec(lens.iter().product());
    for_each_row(&lens[..last], |index, _| {
        let base = row_offset(&offsets, index);
        for &(p, n) in &starts {
            data.extend(input.data[base + p..base + p + n].iter().map(|&x| f(x)));
        }
    });
    Block::new(out.to_vec(), Cow::Owned(data))
}

/// Rows of at least this many elements make one parallel task of
/// [`gather_into`].
const PARALLEL_GRAIN: usize = 1 << 16;

/// Writes `f` of every element of `input` at the indices `out`, in C order, into
/// `dst` (exactly that many elements), spread over rayon's pool: the one host copy of
/// an upload into mapped staging memory, which is written and never read.
pub(crate) fn gather_into<T: Element, U: Element>(
    input: &Block<'_, T>,
    out: &[AxisSet],
    dst: WriteOnly<'_, [U]>,
    f: impl Fn(T) -> U + Sync,
) {
    use rayon::prelude::*;
    let last = out.len() - 1;
    let lens: Vec<usize> = out.iter().map(AxisSet::len).collect();
    assert_eq!(dst.len(), lens.iter().product::<usize>(), "gather size");
    if dst.is_empty() {
        return;
    }
    // A run of whole trailing planes is one contiguous range of the input.
    let contiguous = out[1..] == input.sets[1..] && out[0].runs().len() == 1;
    if contiguous {
        let plane: usize = lens[1..].iter().product();
        let start = input.sets[0]
            .position(out[0].runs()[0].start)
            .expect("planner bug")
            * plane;
        let src = &input.data[start..start + dst.len()];
        pieces(dst, PARALLEL_GRAIN)
            .into_par_iter()
            .zip(src.par_chunks(PARALLEL_GRAIN))
            .for_each(|(d, s)| d.0.write_iter(s.iter().map(|&x| f(x))));
        return;
    }
    let offsets = outer_offsets(input, out);
    let starts = last_axis_runs(input, out);
    let row = lens[last];
    let strides = crate::block::c_strides(&lens[..last]);
    let rows_per_task = (PARALLEL_GRAIN / row).max(1);
    pieces(dst, row * rows_per_task)
        .into_par_iter()
        .enumerate()
        .for_each(|(task, rows)| {
            for (r, out_row) in pieces(rows.0, row).into_iter().enumerate() {
                let mut out_row = out_row.0;
                let mut rest = task * rows_per_task + r;
                let mut base = 0;
                for (a, &s) in strides.iter().enumerate() {
                    base += offsets[a][rest / s];
                    rest %= s;
                }
                for &(p, n) in &starts {
                    let (run, tail) = out_row.split_at(n);
                    run.write_iter(input.data[base + p..base + p + n].iter().map(|&x| f(x)));
                    out_row = tail;
                }
            }
        });
}

/// A piece of a write-only slice, sendable to another thread.
struct Piece<'a, U>(WriteOnly<'a, [U]>);

// SAFETY: a `WriteOnly<[U]>` is an exclusive reference, like `&mut [U]`, which is Send
// when U is; wgpu's own impl requires a sized target and so misses slices.
unsafe impl<U: Send> Send for Piece<'_, U> {}

/// `dst` cut into pieces of `n` elements (the last may be shorter).
fn pieces<U>(mut dst: WriteOnly<'_, [U]>, n: usize) -> Vec<Piece<'_, U>> {
    let mut out = Vec::with_capacity(dst.len().div_ceil(n.max(1)));
    while dst.len() > n {
        let (head, tail) = dst.split_at(n);
        out.push(Piece(head));
        dst = tail;
    }
    if !dst.is_empty() {
        out.push(Piece(dst));
    }
    out
}

/// `np.clip` with the bounds cast to the element type (integers: round half to even,
/// which gives the same result as clipping exactly and rounding).
pub(crate) fn clip<T: Element>(
    input: &Block<'_, T>,
    out: &[AxisSet],
    min: f64,
    max: f64,
) -> Block<'static, T> {
    let (lo, hi) = (T::from_f64(min), T::from_f64(max));
    map(input, out, |x| {
        if x < lo {
            lo
        } else if x > hi {
            hi
        } else {
            x
        }
    })
}

/// Converts to `to` (round half to even and saturate for integer targets; between
/// integer types exactly, 64-bit ones included, saturating).
pub(crate) fn cast<T: Element>(
    input: &Block<'_, T>,
    out: &[AxisSet],
    to: DType,
) -> BlockAny<'static> {
    if T::DTYPE.is_float() || to.is_float() {
        with_dtype!(to, U => map(input, out, |x| U::from_f64(x.to_f64())).into_any())
    } else {
        with_dtype!(to, U => map(input, out, |x| U::from_i128(x.to_i128())).into_any())
    }
}

/// The runs of the last axis of `out`, each as (position in `input`'s last axis,
/// length): the contiguous pieces of every row.
fn last_axis_runs<T: Element>(input: &Block<'_, T>, out: &[AxisSet]) -> Vec<(usize, usize)> {
    let last = out.len() - 1;
    out[last]
        .runs()
        .iter()
        .map(|r| {
            (
                input.sets[last].position(r.start).expect("planner bug"),
                r.len(),
            )
        })
        .collect()
}

/// Per axis but the last: the element offset into `input` of each output index in `out`.
fn outer_offsets<T: Element>(input: &Block<'_, T>, out: &[AxisSet]) -> Vec<Vec<usize>> {
    (0..out.len() - 1)
        .map(|a| input.offsets(a, &out[a]))
        .collect()
}

/// The input offset of the row at `index`, given per-axis offsets.
fn row_offset(offsets: &[Vec<usize>], index: &[usize]) -> usize {
    offsets.iter().zip(index).map(|(o, &i)| o[i]).sum()
}
