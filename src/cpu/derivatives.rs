//! The Laplacian and the gradient magnitude of a Gaussian: each term's 1-D passes
//! run as the Gaussian's do ([`stencil`]), then the terms are summed (or their squares
//! summed and the root taken), in scipy's order (`generic_laplace`,
//! `generic_gradient_magnitude`: term by term, axis 0 first).

use std::borrow::Cow;

use super::stencil::{Compute, stencil};
use crate::block::Block;
use crate::region::AxisSet;
use crate::stage::{Stencil, term_sets};

/// `Σ_t term_t` (or `sqrt(Σ_t term_t²)` with `magnitude`) over the output indices
/// `out`, every term's first pass reading `input` (an array of `in_shape`), in `F`.
pub(crate) fn derivatives<F: Compute>(
    input: &Block<'_, F>,
    out: &[AxisSet],
    in_shape: &[usize],
    terms: &[Vec<Stencil>],
    magnitude: bool,
) -> Block<'static, F> {
    let n: usize = out.iter().map(AxisSet::len).product();
    let mut acc = vec![F::default(); n];
    for term in terms {
        let sets = term_sets(term, out, in_shape);
        let mut current: Cow<'_, Block<'_, F>> = Cow::Borrowed(input);
        for (j, st) in term.iter().enumerate() {
            current = Cow::Owned(stencil(&current, &sets[j + 1], in_shape, st));
        }
        // A term with no pass (every sigma 0) is the input itself, over `out`.
        let values: Cow<'_, [F]> = if term.is_empty() {
            Cow::Owned(
                super::pointwise::map(&current, out, |x| x)
                    .data
                    .into_owned(),
            )
        } else {
            Cow::Borrowed(&current.data)
        };
        for (a, &v) in acc.iter_mut().zip(values.iter()) {
            *a = *a + if magnitude { v * v } else { v };
        }
    }
    if magnitude {
        acc.iter_mut()
            .for_each(|a| *a = F::from_f64(a.to_f64().sqrt()));
    }
    Block::new(out.to_vec(), Cow::Owned(acc))
}
