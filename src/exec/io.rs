//! What a run reads from and writes to: any array that decodes a region at a time,
//! and any array written a block of whole chunks at a time (Zarr arrays in
//! [`store`](crate::store); tests use arrays in memory).

use crate::block::BlockAny;
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
}
