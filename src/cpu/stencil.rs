//! N-D correlation with scipy boundary modes: the Gaussian's passes and `convolve`.
//!
//! Leading axes are handled by row indirection: every output row is a weighted sum of
//! input rows chosen through per-axis tap tables (the boundary mode is already folded
//! into the tables, a constant row stands for `cval`). The last axis is read straight
//! from the input row where the taps stay inside the block, and from a padded copy of
//! the row only where they cross the array's edge.

use std::borrow::Cow;

use super::simd::{Lane, accumulate, accumulate_strided};
use crate::block::{Block, BlockElement, c_strides, for_each_row, for_each_row_in, take_buffer};
use crate::dtype::Element;
use crate::region::AxisSet;
use crate::stage::{Offset, Stencil, TapTable, tap_table};

/// Where a run of output elements on the last axis finds its taps in an input row.
enum TapSource {
    /// Directly at this offset of the input row (all taps inside the block).
    Direct(usize),
    /// Through a padded copy of the row, assembled from pieces.
    Padded(Vec<Piece>),
}

/// A piece of a padded row.
enum Piece {
    /// `len` input-row elements from offset `from`.
    Copy { from: usize, len: usize },
    /// `len` copies of `cval`.
    Fill(usize),
}

/// Splits a gather (input-row offset per padded element, `None` for `cval`) into pieces.
fn pieces(gather: &[Option<usize>]) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    for &g in gather {
        match (out.last_mut(), g) {
            (Some(Piece::Copy { from, len }), Some(p)) if *from + *len == p => *len += 1,
            (Some(Piece::Fill(len)), None) => *len += 1,
            (_, Some(p)) => out.push(Piece::Copy { from: p, len: 1 }),
            (_, None) => out.push(Piece::Fill(1)),
        }
    }
    out
}

struct Run {
    /// First output element of the run within an output row.
    out_start: usize,
    len: usize,
    source: TapSource,
}

/// The combine function of the correlation in `F` ([`accumulate`]) and of its strided
/// twin ([`accumulate_strided`]) for the long merged rows of a leading-axis pass.
pub(crate) fn correlate_with<F: Lane>() -> Combine<F, F, F> {
    Combine {
        taps: accumulate,
        strided: Some(accumulate_strided),
    }
}

/// How a prepared stencil turns its taps into outputs: `taps(out, taps)` writes a run
/// of outputs, tap `t` being the row of input values `row[i..i + w.len()]` for output
/// `i` of the run (`cval` beyond the array in constant mode), with `w` its weights
/// along the last axis; `strided(out, src, inner, weights)`, where given, sets `out[i]`
/// to `Σ_t weights[t] · src[i + t·inner]` for a merged run of a leading-axis pass whose
/// taps read consecutive input indices.
pub(crate) struct Combine<T, U, W = f32> {
    pub taps: TapsFn<T, U, W>,
    pub strided: Option<StridedFn<T, U, W>>,
}

/// [`Combine::taps`].
pub(crate) type TapsFn<T, U, W = f32> = for<'r> fn(&mut [U], &[(&'r [T], &'r [W])]);

/// [`Combine::strided`].
pub(crate) type StridedFn<T, U, W = f32> = fn(&mut [U], &[T], usize, &[W]);

/// Correlates `input` (an array of `in_shape` at this stage) with `st`, writing the
/// output indices `out`, in `F` (f32, or f64 with the weights as given).
pub(crate) fn stencil<F: Compute>(
    input: &Block<'_, F>,
    out: &[AxisSet],
    in_shape: &[usize],
    st: &Stencil,
) -> Block<'static, F> {
    let prepared = Prepared::new(&input.sets, out, in_shape, st);
    let mut data = take_buffer::<F>(prepared.out_len());
    let (weights, cval) = F::weights(st);
    prepared.compute(&input.data, cval, weights, &correlate_with(), &mut data);
    Block::new(out.to_vec(), Cow::Owned(data))
}

/// A type the correlation computes in: f32, or f64 for float64 input.
pub(crate) trait Compute: Lane + BlockElement + Weights {}

impl<F: Lane + BlockElement + Weights> Compute for F {}

/// A stencil's weights and `cval` in the type a kernel computes in.
pub(crate) trait Weights: Sized {
    /// `st`'s weights and `cval` as this type.
    fn weights(st: &Stencil) -> (&[Self], Self);
}

impl Weights for f32 {
    fn weights(st: &Stencil) -> (&[f32], f32) {
        (&st.weights, st.cval)
    }
}

impl Weights for f64 {
    fn weights(st: &Stencil) -> (&[f64], f64) {
        (&st.weights64, st.cval64)
    }
}

/// Computes every output element of `out` from the input values under `st`'s taps:
/// `combine(out, taps)` writes a run of outputs, as [`Combine::taps`] does. Taps come
/// in the stencil's C order.
pub(crate) fn over_taps<T: Element, U: Element>(
    input: &Block<'_, T>,
    out: &[AxisSet],
    in_shape: &[usize],
    st: &Stencil,
    cval: T,
    combine: impl for<'r> FnMut(&mut [U], &[(&'r [T], &'r [f32])]),
) -> Block<'static, U> {
    let prepared = Prepared::new(&input.sets, out, in_shape, st);
    let mut data = take_buffer::<U>(prepared.out_len());
    match &prepared {
        Prepared::Leading(l) => l.compute(&input.data, cval, &st.weights, combine, None, &mut data),
        Prepared::Rows(r) => r.compute(&input.data, cval, &st.weights, combine, &mut data),
    }
    Block::new(out.to_vec(), Cow::Owned(data))
}

/// A stencil's tables for an input holding `held` and an output over `out`, computed
/// once and run on any data laid out so (the planes of a streamed pass all share one).
/// A 1-D stencil along a leading axis gets long merged runs ([`Leading`]), others one
/// output row at a time ([`Rows`]).
pub(crate) enum Prepared<'s> {
    Leading(Leading<'s>),
    Rows(Rows<'s>),
}

impl<'s> Prepared<'s> {
    /// Prepares `st` (on an array of `in_shape`) from an input holding `held`.
    pub(crate) fn new(
        held: &[AxisSet],
        out: &[AxisSet],
        in_shape: &[usize],
        st: &'s Stencil,
    ) -> Self {
        match merged_axis(held, out, st) {
            Some(a) => Prepared::Leading(Leading::new(held, out, in_shape, st, a)),
            None => Prepared::Rows(Rows::new(held, out, in_shape, st)),
        }
    }

    /// The stencil it computes.
    pub(crate) fn stencil(&self) -> &'s Stencil {
        match self {
            Prepared::Leading(l) => l.st,
            Prepared::Rows(r) => r.st,
        }
    }

    /// The number of output elements.
    pub(crate) fn out_len(&self) -> usize {
        let lens = match self {
            Prepared::Leading(l) => &l.lens,
            Prepared::Rows(r) => &r.lens,
        };
        lens.iter().product()
    }

    /// Writes every output element into `out` (of [`Prepared::out_len`] elements) from
    /// `data`, the input laid out as `held`, with `weights` (the stencil's, in C order).
    pub(crate) fn compute<T: Element, U: Element, W>(
        &self,
        data: &[T],
        cval: T,
        weights: &[W],
        combine: &Combine<T, U, W>,
        out: &mut [U],
    ) {
        match self {
            Prepared::Leading(l) => {
                l.compute(data, cval, weights, combine.taps, combine.strided, out)
            }
            Prepared::Rows(r) => r.compute(data, cval, weights, combine.taps, out),
        }
    }
}

/// Any stencil, one output row (along the last axis) at a time.
pub(crate) struct Rows<'s> {
    st: &'s Stencil,
    /// Every axis: for output index p and tap k, the input offset (None = cval).
    tables: Vec<TapTable<usize>>,
    /// The runs of an output row, each with where its taps are read.
    runs: Vec<Run>,
    /// The leading-axis taps in C order.
    lead_taps: Vec<Vec<usize>>,
    /// The output's extent per axis.
    lens: Vec<usize>,
    /// The order the leading axes are visited in (the last varying fastest).
    order: Vec<usize>,
}

impl<'s> Rows<'s> {
    fn new(held: &[AxisSet], out: &[AxisSet], in_shape: &[usize], st: &'s Stencil) -> Self {
        let ndim = out.len();
        let last = ndim - 1;
        let tables: Vec<TapTable<usize>> = (0..ndim)
            .map(|a| taps(held, out, in_shape, st, a))
            .collect();

        // Last axis: one gather per run of consecutive output indices, read off its
        // table: padded element j of a run is tap j - p of its output p (stride 1).
        let kl = st.shape[last];
        let mut out_start = 0;
        let runs: Vec<Run> = out[last]
            .runs()
            .iter()
            .map(|r| {
                let padded: Vec<Option<usize>> = (0..r.len() + kl - 1)
                    .map(|j| {
                        let p = j.saturating_sub(kl - 1);
                        tables[last].at(out_start + p, j - p)
                    })
                    .collect();
                let direct = padded
                    .iter()
                    .enumerate()
                    .all(|(j, p)| *p == padded[0].map(|p0| p0 + j));
                let run = Run {
                    out_start,
                    len: r.len(),
                    source: if direct {
                        TapSource::Direct(padded[0].expect("checked"))
                    } else {
                        TapSource::Padded(pieces(&padded))
                    },
                };
                out_start += r.len();
                run
            })
            .collect();

        let lead_shape = &st.shape[..last];
        let lead_taps: Vec<Vec<usize>> = {
            let mut all = Vec::new();
            for_each_row(&[lead_shape, &[1]].concat(), |k, _| all.push(k.to_vec()));
            all
        };

        // Visit rows with the leading axis of the longest stencil varying fastest.
        let mut order: Vec<usize> = (0..last).collect();
        if let Some(axis) = (0..last)
            .filter(|&a| st.shape[a] > 1)
            .max_by_key(|&a| st.shape[a])
        {
            order.retain(|&a| a != axis);
            order.push(axis);
        }
        Rows {
            st,
            tables,
            runs,
            lead_taps,
            lens: out.iter().map(AxisSet::len).collect(),
            order,
        }
    }

    fn compute<T: Element, U: Element, W>(
        &self,
        data: &[T],
        cval: T,
        weights: &[W],
        mut combine: impl for<'r> FnMut(&mut [U], &[(&'r [T], &'r [W])]),
        out: &mut [U],
    ) {
        let st = self.st;
        let last = self.lens.len() - 1;
        let kl = st.shape[last];
        let row_len = self.lens[last];
        let max_padded = self.runs.iter().map(|r| r.len + kl - 1).max().unwrap_or(0);
        let const_row = vec![cval; max_padded];
        let mut row_offsets: Vec<Option<usize>> = Vec::with_capacity(self.lead_taps.len());
        let mut scratch: Vec<T> = Vec::new();
        for_each_row_in(&self.lens[..last], &self.order, |index, row| {
            row_offsets.clear();
            row_offsets.extend(self.lead_taps.iter().map(|k| {
                (0..last).try_fold(0, |acc, a| {
                    self.tables[a].at(index[a], k[a]).map(|off| acc + off)
                })
            }));
            let out_row = &mut out[row * row_len..(row + 1) * row_len];
            for run in &self.runs {
                let n = run.len + kl - 1;
                let taps: Vec<(&[T], &[W])> = match &run.source {
                    TapSource::Direct(start) => {
                        direct_taps(data, &row_offsets, *start, n, &const_row, weights)
                    }
                    TapSource::Padded(gather) => {
                        scratch.clear();
                        for off in row_offsets.iter().flatten() {
                            let src = &data[*off..];
                            for piece in gather {
                                match *piece {
                                    Piece::Copy { from, len } => {
                                        scratch.extend_from_slice(&src[from..from + len])
                                    }
                                    Piece::Fill(len) => {
                                        scratch.extend(std::iter::repeat_n(cval, len))
                                    }
                                }
                            }
                        }
                        let mut filled = scratch.chunks_exact(n);
                        row_offsets
                            .iter()
                            .enumerate()
                            .map(|(t, off)| {
                                let row = match off {
                                    Some(_) => filled.next().expect("one padded row per tap"),
                                    None => &const_row[..n],
                                };
                                (row, &weights[t * kl..(t + 1) * kl])
                            })
                            .collect()
                    }
                };
                combine(&mut out_row[run.out_start..run.out_start + run.len], &taps);
            }
        });
    }
}

/// The stencil's tap table on `axis` for an input holding `held` (the one builder both
/// backends use).
fn taps(
    held: &[AxisSet],
    out: &[AxisSet],
    in_shape: &[usize],
    st: &Stencil,
    axis: usize,
) -> TapTable<usize> {
    let lens: Vec<usize> = held.iter().map(AxisSet::len).collect();
    let stride = c_strides(&lens)[axis];
    tap_table(st, axis, &held[axis], stride, &out[axis], in_shape[axis])
}

/// The taps of `n` outputs read straight from `data`: tap `t` is the `n` values at
/// `base + offsets[t]` (`cval`s from `const_row` where the offset is `None`, or
/// [`Offset::NONE`]), with tap `t`'s share of `weights` (which hold the same number of
/// weights per tap).
fn direct_taps<'a, T: Element, O: TapOffset, W>(
    data: &'a [T],
    offsets: &[O],
    base: usize,
    n: usize,
    const_row: &'a [T],
    weights: &'a [W],
) -> Vec<(&'a [T], &'a [W])> {
    let per_tap = weights.len() / offsets.len();
    offsets
        .iter()
        .zip(weights.chunks(per_tap))
        .map(|(off, w)| {
            let row = match off.offset() {
                Some(off) => &data[base + off..base + off + n],
                None => &const_row[..n],
            };
            (row, w)
        })
        .collect()
}

/// A tap's input offset, as the row path (`Option`) and a tap table ([`Offset`]) hold it.
trait TapOffset {
    fn offset(&self) -> Option<usize>;
}

impl TapOffset for Option<usize> {
    fn offset(&self) -> Option<usize> {
        *self
    }
}

impl TapOffset for usize {
    fn offset(&self) -> Option<usize> {
        self.get()
    }
}

/// The axis of a 1-D stencil along a leading axis whose input and output hold the same
/// indices on every later axis (a separable pass on a block with its later halos
/// kept), if `st` is one: [`Leading`] computes it on long merged rows.
fn merged_axis(held: &[AxisSet], out: &[AxisSet], st: &Stencil) -> Option<usize> {
    let last = out.len() - 1;
    let mut along = (0..out.len()).filter(|&b| st.shape[b] != 1);
    let a = along.next()?;
    (along.next().is_none() && a < last && (a + 1..=last).all(|b| held[b] == out[b])).then_some(a)
}

/// A 1-D stencil along leading axis `a`, input and output agreeing on every later axis.
///
/// For an output index `p` along `a`, each tap reads the whole contiguous sub-block of
/// the input at one index along `a`; consecutive output indices whose taps all read
/// consecutive input indices (everywhere but at the array's edges) merge into one long
/// row per tap. The sums are the row-by-row path's, in the same tap order, so the bits
/// are the same; only the per-row overhead goes (rows of 144 elements cost twice their
/// arithmetic there).
pub(crate) struct Leading<'s> {
    st: &'s Stencil,
    a: usize,
    /// Per output index along `a`, each tap's input offset (NONE = cval).
    along: TapTable<usize>,
    /// Earlier axes: the stencil has one tap there, at offset 0.
    outer: Vec<TapTable<usize>>,
    /// The output's extent per axis.
    lens: Vec<usize>,
}

impl<'s> Leading<'s> {
    fn new(
        held: &[AxisSet],
        out: &[AxisSet],
        in_shape: &[usize],
        st: &'s Stencil,
        a: usize,
    ) -> Self {
        Leading {
            st,
            a,
            // `inner` is the stride along `a`, the input agreeing with the output on
            // every later axis.
            along: taps(held, out, in_shape, st, a),
            outer: (0..a).map(|b| taps(held, out, in_shape, st, b)).collect(),
            lens: out.iter().map(AxisSet::len).collect(),
        }
    }

    /// Where a merged run's taps read consecutive input indices along `a`, `strided`
    /// computes it instead if given, from the input planes themselves.
    fn compute<T: Element, U: Element, W>(
        &self,
        data: &[T],
        cval: T,
        weights: &[W],
        mut combine: impl for<'r> FnMut(&mut [U], &[(&'r [T], &'r [W])]),
        strided: Option<StridedFn<T, U, W>>,
        out: &mut [U],
    ) {
        let (a, lens, along) = (self.a, &self.lens, &self.along);
        let inner: usize = lens[a + 1..].iter().product();
        let const_row = if along.entries.contains(&usize::NONE) {
            vec![cval; inner]
        } else {
            Vec::new()
        };
        let len_a = lens[a];
        for_each_row(&lens[..a], |index, flat| {
            let base_in: usize = (0..a)
                .map(|b| {
                    self.outer[b]
                        .at(index[b], 0)
                        .expect("a one-tap axis reads its own index")
                })
                .sum();
            let base_out = flat * len_a * inner;
            let mut p = 0;
            while p < len_a {
                let mut q = p + 1;
                while q < len_a
                    && along.of(q - 1).iter().zip(along.of(q)).all(
                        |(x, y)| matches!((x.get(), y.get()), (Some(x), Some(y)) if y == x + inner),
                    )
                {
                    q += 1;
                }
                let n = (q - p) * inner;
                let dst = &mut out[base_out + p * inner..base_out + q * inner];
                if let (Some(strided), Some(first)) = (strided, consecutive(along.of(p), inner)) {
                    strided(dst, &data[base_in + first..], inner, weights);
                    p = q;
                    continue;
                }
                let taps = direct_taps(data, along.of(p), base_in, n, &const_row, weights);
                combine(dst, &taps);
                p = q;
            }
        });
    }
}

/// The first tap's offset, if every tap reads the input index after the previous
/// tap's (offsets `first + t·inner`).
fn consecutive(offsets: &[usize], inner: usize) -> Option<usize> {
    let first = offsets.first()?.get()?;
    offsets
        .iter()
        .enumerate()
        .all(|(t, off)| off.get() == Some(first + t * inner))
        .then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boundary::Boundary;

    /// The merged rows give the row-by-row path's bits, at the array's edges (every
    /// mode, `cval` taps, halos wider than the axis) and inside a larger block, in
    /// both types the correlation computes in.
    #[test]
    fn merged_rows_equal_the_row_path_bitwise() {
        merged_rows_equal_the_row_path::<f32>();
        merged_rows_equal_the_row_path::<f64>();
    }

    fn merged_rows_equal_the_row_path<F: Compute + std::fmt::Debug>() {
        let shape = [9, 4, 6];
        let values = |sets: &[AxisSet]| -> Block<'static, F> {
            let mut data = Vec::new();
            for z in sets[0].iter() {
                for y in sets[1].iter() {
                    for x in sets[2].iter() {
                        let v = ((z * 31 + y * 7 + x * 3) % 17) as f64 * 0.37 - 2.0;
                        data.push(F::from_f64(v));
                    }
                }
            }
            Block::new(sets.to_vec(), Cow::Owned(data))
        };
        for mode in Boundary::ALL {
            for (axis, k, centre) in [(0, 5, 2), (0, 13, 3), (1, 3, 0), (1, 7, 6)] {
                let mut st_shape = vec![1; 3];
                let mut st_centre = vec![0; 3];
                st_shape[axis] = k;
                st_centre[axis] = centre;
                let st = Stencil::new(
                    st_shape,
                    st_centre,
                    (0..k).map(|i| 0.1 + i as f64 * 0.13).collect(),
                    mode,
                    1.5,
                );
                let (weights, cval) = F::weights(&st);
                let whole = crate::region::Region::whole(&shape).sets();
                let input = values(&whole);
                // The whole array, and a part of it (output indices 1..4 on the axis).
                let mut part = whole.clone();
                part[axis] = AxisSet::from_range(1..shape[axis].min(4));
                for out in [whole.clone(), part] {
                    assert_eq!(merged_axis(&input.sets, &out, &st), Some(axis));
                    let len: usize = out.iter().map(AxisSet::len).product();
                    let mut rows = vec![F::default(); len];
                    Rows::new(&input.sets, &out, &shape, &st).compute(
                        &input.data,
                        cval,
                        weights,
                        accumulate::<F>,
                        &mut rows,
                    );
                    let leading = Leading::new(&input.sets, &out, &shape, &st, axis);
                    for strided in [None, correlate_with::<F>().strided] {
                        let mut merged = vec![F::from_f64(f64::NAN); len];
                        leading.compute(
                            &input.data,
                            cval,
                            weights,
                            accumulate::<F>,
                            strided,
                            &mut merged,
                        );
                        assert_eq!(merged, rows, "{mode:?} axis {axis} k {k}");
                    }
                }
            }
        }
    }
}
