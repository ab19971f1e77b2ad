//! Zarr arrays on the filesystem or in an object store (through [zarrs]; URLs in
//! [`remote`]): open an input and read footprints, create or resume an output and
//! write it one whole chunk at a time.
//! (Layer: the store; see the layer map in `docs/ARCHITECTURE.md`.)
//!
//! - [`Input`] opens a Zarr v2 (`.zarray`) or v3 (`zarr.json`) array, sharded or not,
//!   and reads the product of per-axis index sets ([`AxisSet`](crate::AxisSet)) into a dense [`Block`](crate::block::Block).
//! - [`Output`] creates an array from an [`OutputSpec`] (or reopens a compatible one to
//!   resume), and stores every chunk of a written region, *including chunks equal to the
//!   fill value*, so that a chunk's existence means it was written. A sharded spec
//!   ([`OutputSpec::with_shards`]) stores each shard once all its inner chunks are
//!   written, as one file.
//! - [`verify`] tells which chunks (shards) of an output are missing.
//!
//! Every chunk and every metadata file is written to a temporary file, synced and
//! renamed into place (chunks in the background: [`Output::flush`] waits for them): a
//! killed run never leaves a torn chunk visible, and N processes may create the same
//! output at the same time on one shared filesystem.
//!
//! ```
//! use haloflow::block::{Block, BlockAny};
//! use haloflow::store::{Input, Output, OutputSpec};
//! use haloflow::{DType, Region};
//!
//! let dir = std::env::temp_dir().join(format!("haloflow-doc-{}", std::process::id()));
//! let path = dir.join("out.zarr");
//! let spec = OutputSpec::new(&[4, 6], DType::U16, &[2, 4]);
//! let output = Output::create(&path, &spec, true)?;
//!
//! // Write the whole array as one block (a whole number of chunks, clipped at the edge).
//! let region = Region::whole(&[4, 6]);
//! let sets = region.sets();
//! let data: Vec<u16> = (0..24).collect();
//! output.write(&region, &BlockAny::U16(Block::new(sets, data.into())))?;
//! output.flush()?; // chunks are synced and renamed in the background
//! assert!(output.region_done(&region)?);
//!
//! let input = Input::open(&path)?;
//! assert_eq!(input.shape(), &[4, 6]);
//! let back = match input.read_region(&Region::new(vec![1, 2], vec![2, 3]))? {
//!     BlockAny::U16(b) => b.data.into_owned(),
//!     other => panic!("unexpected {:?}", other.dtype()),
//! };
//! assert_eq!(back, vec![8, 9, 10, 14, 15, 16]);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), haloflow::Error>(())
//! ```

mod atomic;
mod commit;
mod errors;
mod files;
mod input;
mod metadata;
mod ome;
mod output;
pub mod remote;
mod shard;
mod verify;

pub use files::{STALE_TEMP_AGE, TEMP_DIR, write_file, write_group};
pub use input::Input;
pub use metadata::{Compression, OutputSpec};
pub use ome::{Axis, Level, NgffVersion, OmeImage};
pub use output::Output;
pub use verify::{Completion, verify};
