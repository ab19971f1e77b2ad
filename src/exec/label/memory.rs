//! `scipy.ndimage.label` of an array in memory: the labelling's steps over slabs along
//! the first axis, each slab labelled once.

use super::state::{LabelState, MemoryState};
use super::{Labelling, globals};
use crate::block::{Block, BlockAny, BlockElement};
use crate::cpu::label::Labelled;
use crate::dtype::{ArrayViewAny, DType, Element, match_any, with_dtype};
use crate::error::{Error, Result};
use crate::region::Grid;
use crate::stage::{Foreground, Structure};

/// `scipy.ndimage.label` of an array in memory: the labels (of type `dtype`) and the
/// number of objects. The array is cut into slabs along its first axis, labelled on
/// `threads` threads and merged.
///
/// # Errors
/// [`Error::InvalidParameter`] for a structure of another dimension, a float array
/// without a threshold, or more objects than `dtype` holds.
pub fn label_array(
    input: crate::ArrayViewAny<'_>,
    structure: &Structure,
    foreground: Foreground,
    dtype: DType,
) -> Result<(crate::ArrayAny, u64)> {
    let shape = input.shape().to_vec();
    if structure.ndim() != shape.len() {
        return Err(Error::InvalidParameter {
            op: "label",
            message: format!(
                "the structure has {} dimensions, the input {}",
                structure.ndim(),
                shape.len()
            ),
        });
    }
    if shape.contains(&0) {
        let out = with_dtype!(dtype, U => ndarray::ArrayD::<U>::default(shape.as_slice()).into());
        return Ok((out, 0));
    }
    match_any!(input, ArrayViewAny, a => label_typed(a, structure, foreground, dtype))
}

fn label_typed<T: BlockElement>(
    input: ndarray::ArrayViewD<'_, T>,
    structure: &Structure,
    foreground: Foreground,
    dtype: DType,
) -> Result<(crate::ArrayAny, u64)> {
    use rayon::prelude::*;
    let shape = input.shape().to_vec();
    let data: std::borrow::Cow<'_, [T]> = match input.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(input.iter().copied().collect()),
    };
    // Slabs along the first axis: two per thread (more cost the merge more faces), at
    // most 2^24 elements each.
    let plane: usize = shape[1..].iter().product();
    let threads = rayon::current_num_threads();
    let want = shape[0].div_ceil(2 * threads).max(1);
    let cap = ((1usize << 24) / plane.max(1)).max(1);
    let mut chunk = shape.clone();
    chunk[0] = want.min(cap);
    let labelling = Labelling {
        grid: Grid::new(&shape, &chunk)?,
        structure: structure.clone(),
        foreground,
        dtype,
    };
    let slab = |c: usize| -> BlockAny<'_> {
        let region = labelling.region(c);
        let start = region.start[0] * plane;
        let len = region.len();
        Block::new(
            region.sets(),
            std::borrow::Cow::Borrowed(&data[start..start + len]),
        )
        .into_any()
    };
    let chunks = labelling.grid.num_chunks();
    let state = MemoryState::new(chunks);
    let labelled: Vec<Labelled> = (0..chunks)
        .into_par_iter()
        .map(|c| {
            let l = labelling.label(&slab(c))?;
            state.put_summary(c, &labelling.summary_of(c, &l))?;
            Ok(l)
        })
        .collect::<Result<_>>()?;
    let count = labelling.merge(&state)?;
    let slab_len = chunk.iter().product::<usize>();
    let len: usize = shape.iter().product();
    let out = with_dtype!(dtype, U => {
        let mut all: Vec<U> = Vec::with_capacity(len);
        crate::in_memory::advise_huge_pages(&mut all);
        all.spare_capacity_mut()[..len]
            .par_chunks_mut(slab_len)
            .zip(labelled.par_iter())
            .enumerate()
            .try_for_each(|(c, (out, l))| -> Result<()> {
                let global = globals(l, state.numbers(c)?.as_ref());
                for v in out.iter_mut() {
                    v.write(U::default());
                }
                // SAFETY: every element of `out` was just initialised.
                let out = unsafe { &mut *(std::ptr::from_mut(out) as *mut [U]) };
                l.fill(out, |v| U::from_u64(global[v as usize]));
                Ok(())
            })?;
        // SAFETY: the slabs tile `0..len`, and each slab initialised all its elements.
        unsafe { all.set_len(len) };
        ndarray::ArrayD::from_shape_vec(shape.as_slice(), all)
            .expect("slabs tile the array")
            .into()
    });
    Ok((out, count))
}
