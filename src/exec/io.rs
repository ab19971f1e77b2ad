//! What a run reads from and writes to: any array that decodes a region at a time,
//! and any array written a block of whole chunks at a time (Zarr arrays in
//! [`store`](crate::store); tests use arrays in memory).

use std::borrow::Cow;

use crate::block::{Block, BlockAny};
use crate::dtype::DType;
use crate::error::Result;
use crate::region::Region;

/// Where a run reads its input: an array that decodes a region at a time.
pub trait Source: Sync {
    /// The array shape.
    fn shape(&self) -> &[usize];
    /// The element type.
    fn dtype(&self) -> DType;
    /// The unit of decoding: the (inner) chunk shape. Footprints are assembled from
    /// whole units, each decoded once while jobs still need it.
    fn read_chunk_shape(&self) -> Vec<usize>;
    /// Decodes `region` (inside the array) into a dense block.
    fn read_region(&self, region: &Region) -> Result<BlockAny<'static>>;
    /// Tells the source the order in which the run will first read its (read) chunks,
    /// as C-order indices in the grid of [`Source::read_chunk_shape`], so that a store
    /// with latency (an object store) can fetch them ahead. The default ignores it.
    fn will_read(&self, chunks: &[usize]) {
        let _ = chunks;
    }
}

/// Where a run writes its output: an array written a block of whole chunks at a time.
pub trait Sink: Sync {
    /// Stores `block` (dense over `region`, a whole number of chunks) atomically per chunk.
    fn write(&self, region: &Region, block: &BlockAny<'_>) -> Result<()>;
    /// Whether every chunk of `region` is already written (a finished job).
    fn region_done(&self, region: &Region) -> Result<bool>;
    /// Waits until every write so far is durable and visible (writes may complete in
    /// the background).
    fn flush(&self) -> Result<()>;
    /// The block a single writer must own whole, written once all its chunks are (a
    /// shard): the run gives all the jobs inside one to the same part, one after
    /// another. `None` (the default): every chunk is stored on its own.
    fn write_unit(&self) -> Option<Vec<usize>> {
        None
    }
}

/// A sink of one dimension fewer than the plan's output: the plan computes an axis at
/// size 1 (a final projection), and `sink` stores the array without it. The data are
/// the same bytes either way.
pub struct DropAxis<'a> {
    /// Where the blocks go.
    pub sink: &'a dyn Sink,
    /// The plan's axis of size 1 that the sink's array lacks.
    pub axis: usize,
}

impl DropAxis<'_> {
    fn region(&self, region: &Region) -> Region {
        region.without_axis(self.axis)
    }
}

impl Sink for DropAxis<'_> {
    fn write(&self, region: &Region, block: &BlockAny<'_>) -> Result<()> {
        let squeezed = crate::dtype::match_any!(block, BlockAny, b => {
            let mut sets = b.sets.clone();
            sets.remove(self.axis);
            Block::new(sets, Cow::Borrowed(&b.data[..])).into_any()
        });
        self.sink.write(&self.region(region), &squeezed)
    }

    fn region_done(&self, region: &Region) -> Result<bool> {
        self.sink.region_done(&self.region(region))
    }

    fn flush(&self) -> Result<()> {
        self.sink.flush()
    }

    fn write_unit(&self) -> Option<Vec<usize>> {
        self.sink.write_unit().map(|mut unit| {
            unit.insert(self.axis, 1);
            unit
        })
    }
}
