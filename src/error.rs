//! The library's error type.
//! (Layer: the foundations; see the layer map in `docs/ARCHITECTURE.md`.)

use std::path::PathBuf;

use crate::dtype::{DType, DTypeError};

/// Everything that can go wrong in haloflow, as a typed value; the CLI turns it into a message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operation parameter is out of its domain (sigma < 0, a zero factor, ...).
    #[error("{op}: {message}")]
    InvalidParameter {
        /// The operation whose parameter is wrong.
        op: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A per-axis list has neither one value nor one per axis.
    #[error("{what}: expected 1 or {ndim} values (one per axis), got {got}")]
    AxisCount {
        /// The parameter (`sigma`, `factor`, ...).
        what: &'static str,
        /// The array's number of dimensions.
        ndim: usize,
        /// The number of values given.
        got: usize,
    },
    /// Two shapes or ranks that must agree do not.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A type name that haloflow does not support.
    #[error(
        "unsupported data type '{0}' (supported: uint8 uint16 uint32 uint64 int8 int16 int32 int64 float32 float64)"
    )]
    UnsupportedDType(String),
    /// An array holds another element type than the one asked for.
    #[error("expected {expected} data, found {found}")]
    DTypeMismatch {
        /// The type asked for.
        expected: DType,
        /// The type found.
        found: DType,
    },
    /// A processing block that would make two jobs write one output chunk.
    #[error(
        "block shape {block:?} is not a whole number of output chunks {chunk:?} (axis {axis}); two jobs could write one chunk"
    )]
    BlockNotAligned {
        /// The block shape asked for.
        block: Vec<usize>,
        /// The output chunk shape.
        chunk: Vec<usize>,
        /// The first axis that does not align.
        axis: usize,
    },
    /// No GPU adapter could be opened (`--device gpu` without a usable driver).
    #[error("no GPU adapter: {reason}")]
    NoGpu {
        /// Why: no adapter found, no adapter matching the name asked for, or no device.
        reason: String,
    },
    /// The GPU reported an error (validation, out of memory, device lost, mapping).
    #[error("GPU error: {message}")]
    Gpu {
        /// The device's message.
        message: String,
    },
    /// Reading the input failed (the message of the first failure).
    #[error("{0}")]
    Read(String),
    /// A path that should hold an array does not exist.
    #[error("{}", not_found(.0))]
    NotFound(PathBuf),
    /// A path that exists but holds no Zarr array (a group, a file, an empty directory).
    #[error("{}: not a Zarr array: {reason}", path.display())]
    NotAnArray {
        /// The path given.
        path: PathBuf,
        /// What was found there instead.
        reason: String,
    },
    /// A Zarr array haloflow cannot process (data type, chunk grid, codec).
    #[error("{}: unsupported Zarr array: {reason}", path.display())]
    UnsupportedArray {
        /// The array's directory.
        path: PathBuf,
        /// What is not supported.
        reason: String,
    },
    /// Reading or writing the store failed (I/O error, unreadable metadata).
    #[error("{}: {message}", path.display())]
    Store {
        /// The file or directory concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A stored chunk that cannot be decoded (truncated, garbage, wrong codec).
    #[error("corrupt chunk {chunk:?} ({}): cannot decode it: {message}", path.display())]
    CorruptChunk {
        /// The chunk's index in the array's chunk grid (the shard's, if sharded).
        chunk: Vec<u64>,
        /// The chunk's file.
        path: PathBuf,
        /// The decoder's complaint.
        message: String,
    },
    /// A file from an instrument (TIFF, NIfTI, CZI) that cannot be read: truncated,
    /// corrupt, or of a compression, pixel type or layout haloflow does not read.
    #[error("{}: {format} file: {message}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// Its format (`TIFF`, `NIfTI`, `CZI`).
        format: &'static str,
        /// What is wrong, naming the block where it is known.
        message: String,
    },
    /// The output path holds something the requested output cannot resume or replace.
    #[error("{}: incompatible existing output: {reason}", path.display())]
    IncompatibleOutput {
        /// The output array's directory.
        path: PathBuf,
        /// What differs, or what is there instead of an array.
        reason: String,
    },
    /// An output checked by [`verify`](crate::store::verify) lacks some of its chunks.
    #[error("{}: incomplete: {missing} jobs not done", path.display())]
    Incomplete {
        /// The output checked.
        path: PathBuf,
        /// Chunks (shards) missing, over every array checked.
        missing: usize,
    },
}

/// Shorthand for `Result<T, haloflow::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<DTypeError> for Error {
    fn from(e: DTypeError) -> Error {
        match e {
            DTypeError::Unsupported(name) => Error::UnsupportedDType(name),
            DTypeError::Mismatch { expected, found } => Error::DTypeMismatch { expected, found },
        }
    }
}

/// The message of [`Error::NotFound`]: a URL (`s3://`, `https://`) has no files or
/// directories.
fn not_found(path: &std::path::Path) -> String {
    if path.to_str().is_some_and(|s| s.contains("://")) {
        format!(
            "{}: nothing there (no zarr.json or .zarray, and no object below it)",
            path.display()
        )
    } else {
        format!("{}: no such file or directory", path.display())
    }
}
