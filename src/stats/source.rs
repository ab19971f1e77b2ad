//! Where a statistics pass reads its blocks: the [`BlockSource`] trait, and in-memory arrays in
//! slabs along axis 0 (Zarr arrays: `stats/mod.rs`).

use std::borrow::Cow;

use crate::block::{Block, BlockAny};
use crate::dtype::{ArrayViewAny, DType, match_any};
use crate::error::{Error, Result};
use crate::region::{AxisSet, Region};

/// Where blocks come from.
pub(super) trait BlockSource: Sync {
    fn shape(&self) -> &[usize];
    fn dtype(&self) -> DType;
    fn blocks(&self) -> usize;
    fn block(&self, i: usize) -> Result<BlockAny<'_>>;
}

/// An in-memory array, in slabs along axis 0.
pub(super) struct MemorySource<'a, 'b> {
    pub(super) view: &'a ArrayViewAny<'b>,
    pub(super) shape: Vec<usize>,
    /// Indices of axis 0 per slab.
    pub(super) slab: usize,
}

impl<'a, 'b> MemorySource<'a, 'b> {
    /// `array` in slabs of about 2^20 elements along axis 0.
    ///
    /// # Errors
    /// [`Error::Shape`] for an array that is empty or not in standard (C) layout.
    pub(super) fn new(array: &'a ArrayViewAny<'b>) -> Result<Self> {
        let shape = array.shape().to_vec();
        if !match_any!(array, ArrayViewAny, a => a.is_standard_layout())
            || shape.is_empty()
            || shape.contains(&0)
        {
            return Err(Error::Shape(format!(
                "statistics need a non-empty C-contiguous array, got shape {shape:?}"
            )));
        }
        let plane: usize = shape[1..].iter().product::<usize>().max(1);
        Ok(MemorySource {
            view: array,
            slab: (1usize << 20).div_ceil(plane).max(1),
            shape,
        })
    }
}

impl BlockSource for MemorySource<'_, '_> {
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn dtype(&self) -> DType {
        self.view.dtype()
    }
    fn blocks(&self) -> usize {
        self.shape[0].div_ceil(self.slab)
    }
    fn block(&self, i: usize) -> Result<BlockAny<'_>> {
        let lo = i * self.slab;
        let hi = (lo + self.slab).min(self.shape[0]);
        let plane: usize = self.shape[1..].iter().product();
        let mut sets: Vec<AxisSet> = Region::whole(&self.shape).sets();
        sets[0] = AxisSet::from_range(lo..hi);
        Ok(match_any!(self.view, ArrayViewAny, a => {
            let data = a.as_slice().expect("a standard-layout array (checked)");
            Block::new(sets, Cow::Borrowed(&data[lo * plane..hi * plane])).into_any()
        }))
    }
}
