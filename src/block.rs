//! Dense blocks of data over per-axis index sets: what flows between stages of a job.
//! (Layer: the foundations; see the layer map in `docs/ARCHITECTURE.md`.)

use std::borrow::Cow;

use crate::dtype::{DType, Element};
use crate::region::{AxisSet, Region};

/// Data in C order over the product of `sets` (one [`AxisSet`] per axis).
///
/// A block may hold more than a stage needs (the whole in-memory array is one block);
/// kernels find their input through [`Block::offsets`].
#[derive(Clone, Debug)]
pub struct Block<'a, T: Clone> {
    /// The array indices held on each axis.
    pub sets: Vec<AxisSet>,
    /// The values, C order.
    pub data: Cow<'a, [T]>,
}

impl<'a, T: Element> Block<'a, T> {
    /// A block over `sets` holding `data` (length checked).
    pub fn new(sets: Vec<AxisSet>, data: Cow<'a, [T]>) -> Self {
        assert_eq!(
            sets.iter().map(AxisSet::len).product::<usize>(),
            data.len(),
            "block data does not match its index sets"
        );
        Block { sets, data }
    }

    /// Extent on each axis.
    pub fn lens(&self) -> Vec<usize> {
        self.sets.iter().map(AxisSet::len).collect()
    }

    /// C-order strides, in elements.
    pub fn strides(&self) -> Vec<usize> {
        c_strides(&self.lens())
    }

    /// For each index of `wanted` (a subset of `sets[axis]`), its element offset along `axis`.
    pub fn offsets(&self, axis: usize, wanted: &AxisSet) -> Vec<usize> {
        let stride = self.strides()[axis];
        positions(&self.sets[axis], wanted)
            .into_iter()
            .map(|p| p * stride)
            .collect()
    }

    /// A copy with every element converted by `f`.
    pub fn map<U: Element>(&self, f: impl Fn(T) -> U) -> Block<'static, U> {
        Block::new(
            self.sets.clone(),
            Cow::Owned(self.data.iter().map(|&x| f(x)).collect()),
        )
    }
}

/// C-order strides of an array of `lens`.
pub fn c_strides(lens: &[usize]) -> Vec<usize> {
    let mut s = vec![1; lens.len()];
    for a in (0..lens.len().saturating_sub(1)).rev() {
        s[a] = s[a + 1] * lens[a + 1];
    }
    s
}

/// Calls `f(index, row)` for every row (multi-index over all axes but the last) of an
/// array whose leading extents are `outer`, in C order; `row` is the row's C-order number.
pub(crate) fn for_each_row(outer: &[usize], f: impl FnMut(&[usize], usize)) {
    let order: Vec<usize> = (0..outer.len()).collect();
    for_each_row_in(outer, &order, f);
}

/// Like [`for_each_row`], visiting the axes in `order` (a permutation; its last axis
/// varies fastest). A stencil puts its own axis last so that consecutive rows share
/// their input rows while those are still in cache.
pub(crate) fn for_each_row_in(
    outer: &[usize],
    order: &[usize],
    mut f: impl FnMut(&[usize], usize),
) {
    let strides = c_strides(outer);
    let total: usize = outer.iter().product();
    let mut index = vec![0; outer.len()];
    let mut row = 0;
    for _ in 0..total {
        f(&index, row);
        for &a in order.iter().rev() {
            index[a] += 1;
            row += strides[a];
            if index[a] < outer[a] {
                break;
            }
            row -= strides[a] * outer[a];
            index[a] = 0;
        }
    }
}

/// A box's place in a dense C-order array: the array's extents and the box's first
/// index in it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Placed<'a> {
    /// The extents of the array holding the box.
    pub dims: &'a [usize],
    /// The box's first index in that array.
    pub origin: &'a [usize],
}

impl<'a> Placed<'a> {
    /// A box at `origin` in an array of extents `dims`.
    pub fn at(dims: &'a [usize], origin: &'a [usize]) -> Self {
        Placed { dims, origin }
    }
}

/// The one box copy: for every row (along the last axis) of a box of extents `shape`,
/// calls `f(from, to, len)` with the row's element offset in the source array, in the
/// destination array, and its length. [`copy_box`] copies between slices with it; a
/// caller writing through a raw pointer (disjoint blocks of one output, in parallel)
/// uses it directly.
pub(crate) fn box_rows(
    shape: &[usize],
    src: Placed<'_>,
    dst: Placed<'_>,
    mut f: impl FnMut(usize, usize, usize),
) {
    if shape.contains(&0) {
        return;
    }
    let last = shape.len() - 1;
    let (src_strides, dst_strides) = (c_strides(src.dims), c_strides(dst.dims));
    let offset = |p: Placed<'_>, strides: &[usize], index: &[usize]| -> usize {
        (0..=last)
            .map(|a| (p.origin[a] + index.get(a).copied().unwrap_or(0)) * strides[a])
            .sum()
    };
    for_each_row(&shape[..last], |index, _| {
        f(
            offset(src, &src_strides, index),
            offset(dst, &dst_strides, index),
            shape[last],
        );
    });
}

/// Copies a box of extents `shape` from the dense array `src` to the dense array `dst`,
/// each placed as given.
pub(crate) fn copy_box<T: Copy>(
    shape: &[usize],
    src: &[T],
    from: Placed<'_>,
    dst: &mut [T],
    to: Placed<'_>,
) {
    box_rows(shape, from, to, |s, d, n| {
        dst[d..d + n].copy_from_slice(&src[s..s + n]);
    });
}

/// Copies `part` (dense values of a box inside `region`) into `dst`, the dense values
/// of `region`: the one paste of a piece into the block it was cut from.
pub(crate) fn paste<T: Copy>(region: &Region, part: &Region, src: &[T], dst: &mut [T]) {
    let origin: Vec<usize> = (0..region.ndim())
        .map(|a| part.start[a] - region.start[a])
        .collect();
    let zero = vec![0; region.ndim()];
    copy_box(
        &part.shape,
        src,
        Placed::at(&part.shape, &zero),
        dst,
        Placed::at(&region.shape, &origin),
    );
}

/// The rank in `held` of each index of `wanted`.
///
/// # Panics
/// If `wanted` is not a subset of `held`: the planner guarantees it is.
pub fn positions(held: &AxisSet, wanted: &AxisSet) -> Vec<usize> {
    let mut out = Vec::with_capacity(wanted.len());
    for r in wanted.runs() {
        let p = held
            .position(r.start)
            .expect("planner bug: a footprint misses an index a stage needs");
        out.extend(p..p + r.len());
    }
    out
}

crate::dtype::any_enum!(
    /// A block of any element type.
    #[derive(Clone, Debug)]
    BlockAny<'a>,
    Block
);

impl BlockAny<'_> {
    /// The element type.
    pub fn dtype(&self) -> DType {
        fn of<T: Element>(_: &Block<'_, T>) -> DType {
            T::DTYPE
        }
        crate::dtype::match_any!(self, BlockAny, b => of(b))
    }

    /// The array indices held on each axis.
    pub fn sets(&self) -> &[AxisSet] {
        crate::dtype::match_any!(self, BlockAny, b => &b.sets)
    }
}

/// An element type whose blocks convert to and from [`BlockAny`].
pub trait BlockElement: Element {
    /// Wraps a typed block.
    fn wrap_block(block: Block<'_, Self>) -> BlockAny<'_>;
    /// The typed block inside `block`, if it holds this element type.
    fn block_ref<'b, 'a>(block: &'b BlockAny<'a>) -> Option<&'b Block<'a, Self>>;
}

macro_rules! block_element {
    ($($t:ty => $v:ident),*) => {$(
        impl BlockElement for $t {
            fn wrap_block(block: Block<'_, Self>) -> BlockAny<'_> {
                BlockAny::$v(block)
            }
            fn block_ref<'b, 'a>(block: &'b BlockAny<'a>) -> Option<&'b Block<'a, Self>> {
                match block {
                    BlockAny::$v(b) => Some(b),
                    _ => None,
                }
            }
        }
    )*};
}
block_element!(u8 => U8, u16 => U16, u32 => U32, u64 => U64, i8 => I8, i16 => I16, i32 => I32, i64 => I64, f32 => F32, f64 => F64);

impl<'a, T: BlockElement> Block<'a, T> {
    /// Wraps the block in the any-typed enum.
    pub fn into_any(self) -> BlockAny<'a> {
        T::wrap_block(self)
    }
}

impl<'a> BlockAny<'a> {
    /// The data as element type `T`.
    ///
    /// # Panics
    /// If the block holds another type: callers know the type from the plan.
    pub fn typed<T: BlockElement>(&self) -> &Block<'a, T> {
        T::block_ref(self)
            .unwrap_or_else(|| panic!("expected a {} block, found {}", T::DTYPE, self.dtype()))
    }
}

thread_local! {
    /// Buffers of finished blocks, kept for the next job on this thread: reusing them
    /// spares the kernel's page faults on fresh memory, which cost more than the
    /// filtering itself on large blocks.
    static POOL: std::cell::RefCell<Vec<Box<dyn std::any::Any>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Buffers kept per thread at most.
const POOL_SIZE: usize = 2;

/// A pooled buffer of this thread with room for `capacity` elements, if one fits (its
/// elements are stale).
fn pooled<T: Element>(capacity: usize) -> Option<Vec<T>> {
    POOL.with_borrow_mut(|pool| {
        let i = pool.iter().position(|b| {
            b.downcast_ref::<Vec<T>>()
                .is_some_and(|v| v.capacity() >= capacity)
        })?;
        Some(*pool.swap_remove(i).downcast::<Vec<T>>().expect("checked"))
    })
}

/// An empty vector with room for `capacity` elements, reusing a pooled buffer if one fits.
pub(crate) fn take_vec<T: Element>(capacity: usize) -> Vec<T> {
    pooled(capacity).map_or_else(
        || Vec::with_capacity(capacity),
        |mut v| {
            v.clear();
            v
        },
    )
}

/// A vector of `len` elements whose values are unspecified (a pooled buffer's stale
/// ones, else zeros), for callers that overwrite every element: a reused buffer is not
/// cleared first.
pub(crate) fn take_buffer<T: Element>(len: usize) -> Vec<T> {
    let mut v = pooled(len).unwrap_or_default();
    v.truncate(len);
    v.resize(len, T::default());
    v
}

/// Returns the buffer of an owned block to this thread's pool.
pub(crate) fn recycle(block: BlockAny<'_>) {
    fn give<T: Element>(data: Cow<'_, [T]>) {
        if let Cow::Owned(v) = data {
            POOL.with_borrow_mut(|pool| {
                if pool.len() == POOL_SIZE {
                    pool.remove(0);
                }
                pool.push(Box::new(v));
            });
        }
    }
    crate::dtype::match_any!(block, BlockAny, b => give(b.data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_copies_between_arrays_of_other_extents() {
        // A 2x3 box from (1, 1) of a 3x5 array to (0, 2) of a 2x6 array.
        let src: Vec<u32> = (0..15).collect();
        let mut dst = vec![0u32; 12];
        copy_box(
            &[2, 3],
            &src,
            Placed::at(&[3, 5], &[1, 1]),
            &mut dst,
            Placed::at(&[2, 6], &[0, 2]),
        );
        assert_eq!(dst, vec![0, 0, 6, 7, 8, 0, 0, 0, 11, 12, 13, 0]);
    }
}
