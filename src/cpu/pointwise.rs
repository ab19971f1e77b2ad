//! Element-wise kernels: threshold, clip and the final cast.

use std::borrow::Cow;

use crate::block::{Block, BlockAny, for_each_row, take_vec};
use crate::dtype::{DType, Element, with_dtype};
use crate::region::AxisSet;

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
    let starts: Vec<(usize, usize)> = out[last]
        .runs()
        .iter()
        .map(|r| {
            (
                input.sets[last].position(r.start).expect("planner bug"),
                r.len(),
            )
        })
        .collect();
    let mut data = take_vec(lens.iter().product());
    for_each_row(&lens[..last], |index, _| {
        let base = row_offset(&offsets, index);
        for &(p, n) in &starts {
            data.extend(input.data[base + p..base + p + n].iter().map(|&x| f(x)));
        }
    });
    Block::new(out.to_vec(), Cow::Owned(data))
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

/// Converts to `to` (round half to even and saturate for integer targets).
pub(crate) fn cast<T: Element>(
    input: &Block<'_, T>,
    out: &[AxisSet],
    to: DType,
) -> BlockAny<'static> {
    with_dtype!(to, U => map(input, out, |x| U::from_f64(x.to_f64())).into_any())
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
