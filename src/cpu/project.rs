//! Projections: one reduction along an axis (numpy's `max`, `min`, `mean`, `sum`).
//!
//! The input holds the whole axis and exactly the output's indices elsewhere; each
//! output element reduces `n` values one `inner` stride apart, and a whole row of
//! `inner` outputs is reduced at once (one pass per index along the axis), so the
//! loops run over contiguous memory.

use std::borrow::Cow;

use crate::block::Block;
use crate::dtype::Element;
use crate::region::AxisSet;
use crate::stage::ProjectMethod;

/// `input` reduced along `axis` onto the output indices `out` (`out[axis]` is `{0}`).
pub(crate) fn project<T: Element, U: Element>(
    input: &Block<'_, T>,
    out: &[AxisSet],
    axis: usize,
    method: ProjectMethod,
) -> Block<'static, U> {
    // The input may hold more than the output's indices off the axis (a first stage
    // reads the job's whole footprint): take exactly those first.
    let mut wanted = out.to_vec();
    wanted[axis] = input.sets[axis].clone();
    let exact;
    let input = if input.sets == wanted {
        input
    } else {
        exact = super::pointwise::map(input, &wanted, |x| x);
        &exact
    };
    let lens = input.lens();
    let outer: usize = lens[..axis].iter().product();
    let n = lens[axis];
    let inner: usize = lens[axis + 1..].iter().product();
    let mut data: Vec<U> = Vec::with_capacity(outer * inner);
    let mut acc: Vec<f64> = vec![0.0; inner];
    for o in 0..outer {
        let slab = |k: usize| &input.data[(o * n + k) * inner..(o * n + k + 1) * inner];
        match method {
            ProjectMethod::Max | ProjectMethod::Min => {
                let mut best: Vec<T> = slab(0).to_vec();
                let max = method == ProjectMethod::Max;
                for k in 1..n {
                    for (b, &x) in best.iter_mut().zip(slab(k)) {
                        // numpy: a NaN wins (and stays).
                        let bv = *b;
                        let b_nan = bv.partial_cmp(&bv).is_none();
                        let x_nan = x.partial_cmp(&x).is_none();
                        if !b_nan && (x_nan || if max { x > bv } else { x < bv }) {
                            *b = x;
                        }
                    }
                }
                data.extend(best.into_iter().map(|x| U::from_f64(x.to_f64())));
            }
            ProjectMethod::Sum | ProjectMethod::Mean => {
                acc.iter_mut().for_each(|a| *a = 0.0);
                for k in 0..n {
                    for (a, &x) in acc.iter_mut().zip(slab(k)) {
                        *a += x.to_f64();
                    }
                }
                let scale = if method == ProjectMethod::Mean {
                    n as f64
                } else {
                    1.0
                };
                data.extend(acc.iter().map(|&a| {
                    U::from_f64(if method == ProjectMethod::Mean {
                        a / scale
                    } else {
                        a
                    })
                }));
            }
        }
    }
    Block::new(out.to_vec(), Cow::Owned(data))
}
