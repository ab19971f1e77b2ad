//! haloflow: chunked filters on N-D arrays, exact against `scipy.ndimage` whatever the
//! chunking.
//!
//! An [`Op`] (threshold, clip, gaussian, convolve, downsample, upsample), or a
//! [`Pipeline`] of them, is planned over output blocks that are whole numbers of output
//! chunks ([`Plan`]). Each job reads its input footprint (the block mapped back through
//! every op and grown by the halo), pads only at the array's edge with the boundary
//! [`Boundary`], and computes exactly its block. The in-memory path below is the same
//! chunked path with the chunks in RAM.
//!
//! ```
//! use haloflow::{Boundary, DownMethod, Op, Pipeline};
//! use ndarray::{ArrayD, IxDyn};
//!
//! let volume = ArrayD::from_shape_fn(IxDyn(&[16, 24, 24]), |i| (i[0] + i[1] * i[2]) as f32);
//! let pipeline = Pipeline::new(vec![
//!     Op::gaussian(&[1.0, 2.0, 2.0]).with_mode(Boundary::Nearest, 0.0),
//!     Op::downsample(&[2], DownMethod::Mean),
//! ]);
//! let small = pipeline.apply(volume.view())?.into_array::<f32>()?;
//! assert_eq!(small.shape(), &[8, 12, 12]);
//!
//! // The result does not depend on the blocks the work is cut into.
//! let blocked = pipeline.apply_blocks(volume.view(), &[3, 5, 12])?.into_array::<f32>()?;
//! assert_eq!(small, blocked);
//! # Ok::<(), haloflow::Error>(())
//! ```

#![warn(missing_docs)]

pub mod backend;
pub mod block;
pub mod boundary;
pub mod cli;
mod cpu;
pub mod dtype;
pub mod error;
pub mod exec;
pub mod formats;
pub mod gpu;
pub mod in_memory;
mod keys;
pub mod ops;
pub mod picture;
pub mod plan;
pub mod region;
pub mod stage;
pub mod stats;
pub mod store;
mod workers;
pub mod zarr;

pub use backend::{Backend, Device, Workload};
pub use boundary::Boundary;
pub use dtype::{ArrayAny, ArrayViewAny, DType, Element};
pub use error::{Error, Result};
pub use exec::label::memory::label_array;
pub use exec::objects::{ObjectStats, ObjectTable, object_table};
pub use exec::table::{Table, TableFormat, Values};
pub use gpu::{AdapterInfo, DeviceArray, GpuContext, GpuTimes};
pub use ops::{Footprint, Kernel, NeededStatistics, Op, Pipeline, RankOrder};
pub use plan::{Job, Plan};
pub use region::{AxisSet, Grid, Region};
pub use stage::{
    DownMethod, Foreground, InterpMode, NoiseModel, ProjectMethod, Structure, UpMethod,
};
pub use store::{Compression, Input, Output, OutputSpec};

/// The largest number of dimensions haloflow handles (TCZYX).
pub const MAX_NDIM: usize = 5;

/// The README's Rust example, compiled and run as a doc test so it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
