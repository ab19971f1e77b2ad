//! Zarr arrays on the filesystem (through [zarrs]): open an input and read footprints,
//! create or resume an output and write it one whole chunk at a time.
//!
//! - [`Input`] opens a Zarr v2 (`.zarray`) or v3 (`zarr.json`) array, sharded or not,
//!   and reads the product of per-axis index sets ([`AxisSet`]) into a dense [`Block`].
//! - [`Output`] creates an array from an [`OutputSpec`] (or reopens a compatible one to
//!   resume), and stores every chunk of a written region, *including chunks equal to the
//!   fill value*, so that a chunk's existence means it was written.
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

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use serde_json::{Map, Value, json};
use zarrs::array::data_type::{
    Float32DataType, Float64DataType, Int8DataType, Int16DataType, Int32DataType, UInt8DataType,
    UInt16DataType, UInt32DataType,
};
use zarrs::array::{
    Array, ArrayBytes, ArrayCreateError, ArrayError, ArrayMetadata, ArrayShardedExt, ArraySubset,
    CodecOptions, DataType, ElementOwned,
};
use zarrs::filesystem::FilesystemStore;
use zarrs::plugin::{ExtensionName, ZarrVersion};
use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    Bytes, MaybeBytesIterator, OffsetBytesIterator, ReadableStorageTraits, StorageError, StoreKey,
    StorePrefix, WritableStorageTraits,
};

use crate::block::{Block, BlockAny, c_strides};
use crate::commit::Committer;
use crate::cpu::for_each_row;
use crate::dtype::{DType, Element, match_any, with_dtype};
use crate::error::{Error, Result};
use crate::region::{AxisSet, Grid, Region, unravel};

/// Directory inside an output array where chunks are written before being renamed
/// into place (hidden, so Zarr readers ignore it).
pub const TEMP_DIR: &str = ".haloflow-tmp";

/// Temporary files older than this are left over from a killed run; younger ones may
/// belong to another process writing the same output right now.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(15 * 60);

/// Attribute keys ignored when comparing an existing output with the requested one
/// (written by other tools, not part of the result's identity).
const IGNORED_ATTRIBUTES: [&str; 1] = ["_zarrs"];

// ---------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------

/// A Zarr array opened for reading.
pub struct Input {
    path: PathBuf,
    array: Array<FilesystemStore>,
    shape: Vec<usize>,
    dtype: DType,
    chunk: Vec<usize>,
    inner_chunk: Option<Vec<usize>>,
    zarr_format: u8,
    metadata: Value,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("path", &self.path)
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .field("chunk", &self.chunk)
            .field("inner_chunk", &self.inner_chunk)
            .field("zarr_format", &self.zarr_format)
            .finish()
    }
}

impl Input {
    /// Opens the Zarr v2 or v3 array whose metadata (`.zarray` or `zarr.json`) is in the
    /// directory `path`. An array inside a group (OME-Zarr `image.zarr/0`) is opened by
    /// its own directory.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `path` does not exist; [`Error::NotAnArray`] if it is a
    /// group, a file or a directory without array metadata; [`Error::UnsupportedArray`]
    /// for a data type other than `uint8 uint16 uint32 int8 int16 int32 float32 float64`,
    /// a chunk grid that is not regular, a codec zarrs does not know, or a 0-dimensional
    /// array; [`Error::Store`] for unreadable metadata.
    pub fn open(path: &Path) -> Result<Input> {
        match inspect(path)? {
            Found::Array(_) => {}
            Found::Missing => return Err(Error::NotFound(path.to_path_buf())),
            other => {
                return Err(Error::NotAnArray {
                    path: path.to_path_buf(),
                    reason: other.explain(path),
                });
            }
        }
        let store = FilesystemStore::new(path).map_err(|e| store_error(path, e))?;
        let array = Array::open(Arc::new(store), "/").map_err(|e| create_error(path, e))?;
        let info = ArrayInfo::of(path, &array)?;
        let metadata = raw_metadata(path, info.zarr_format)?;
        Ok(Input {
            path: path.to_path_buf(),
            shape: info.shape,
            dtype: info.dtype,
            chunk: info.chunk,
            inner_chunk: array
                .effective_subchunk_shape()
                .or_else(|| array.subchunk_shape())
                .map(|s| s.iter().map(|n| n.get() as usize).collect()),
            zarr_format: info.zarr_format,
            metadata,
            array,
        })
    }

    /// The array's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The array shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The chunk shape of the array's chunk grid: for a sharded array, the shard shape
    /// (the unit of storage, and of writing).
    pub fn chunk_shape(&self) -> Vec<usize> {
        self.chunk.clone()
    }

    /// For a sharded array, the shape of the inner chunks (the unit of decoding).
    pub fn inner_chunk_shape(&self) -> Option<Vec<usize>> {
        self.inner_chunk.clone()
    }

    /// The array's chunk grid (shards, if sharded).
    pub fn grid(&self) -> Grid {
        Grid::new(&self.shape, &self.chunk).expect("checked when opened")
    }

    /// The Zarr format version, 2 or 3.
    pub fn zarr_format(&self) -> u8 {
        self.zarr_format
    }

    /// A few lines describing the array: format, shape, type, chunks, codecs, fill value
    /// and attribute keys (for an `info` command).
    pub fn describe(&self) -> String {
        let m = &self.metadata;
        let compact = |v: &Value| serde_json::to_string(v).unwrap_or_default();
        let mut lines = vec![
            format!("path        {}", self.path.display()),
            format!("format      Zarr v{}", self.zarr_format),
            format!("shape       {:?}", self.shape),
            format!("dtype       {}", self.dtype),
        ];
        lines.push(match &self.inner_chunk {
            Some(inner) => format!(
                "chunks      {:?} (shards of inner chunks {:?})",
                self.chunk, inner
            ),
            None => format!("chunks      {:?}", self.chunk),
        });
        if self.zarr_format == 3 {
            let codecs: Vec<String> = m["codecs"]
                .as_array()
                .map(|cs| cs.iter().map(describe_codec_v3).collect())
                .unwrap_or_default();
            lines.push(format!("codecs      {}", codecs.join(" | ")));
        } else {
            let filters = match &m["filters"] {
                Value::Array(fs) if !fs.is_empty() => {
                    fs.iter().map(compact).collect::<Vec<_>>().join(" | ")
                }
                _ => "none".to_string(),
            };
            lines.push(format!("filters     {filters}"));
            lines.push(format!("compressor  {}", compact(&m["compressor"])));
            lines.push(format!(
                "order       {}",
                m["order"].as_str().unwrap_or("C")
            ));
        }
        lines.push(format!("fill value  {}", compact(&m["fill_value"])));
        let keys: Vec<&str> = m["attributes"]
            .as_object()
            .map(|a| a.keys().map(String::as_str).collect())
            .unwrap_or_default();
        lines.push(format!(
            "attributes  {}",
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            }
        ));
        lines.join("\n")
    }

    /// Reads the product of the per-axis index sets `sets` (one per axis, each one or a
    /// few runs) into a dense block over exactly those sets.
    ///
    /// Each box of the product of runs is one zarrs subset retrieval (chunks decoded in
    /// parallel by zarrs). Chunks that do not exist read as the fill value.
    ///
    /// # Errors
    /// [`Error::Shape`] if the sets do not match the array's rank or reach past its
    /// edge; [`Error::CorruptChunk`] naming the chunk (shard) that fails to decode;
    /// [`Error::Store`] for I/O errors.
    pub fn read(&self, sets: &[AxisSet]) -> Result<BlockAny<'static>> {
        if sets.len() != self.shape.len() {
            return Err(Error::Shape(format!(
                "{}: read of {} axes from a {}-dimensional array",
                self.path.display(),
                sets.len(),
                self.shape.len()
            )));
        }
        if let Some(a) = (0..sets.len()).find(|&a| sets[a].bounds().end > self.shape[a]) {
            return Err(Error::Shape(format!(
                "{}: read of indices {:?} on axis {a}, past the array's edge {}",
                self.path.display(),
                sets[a].bounds(),
                self.shape[a]
            )));
        }
        with_dtype!(self.dtype, T => Ok(self.read_typed::<T>(sets)?.into_any()))
    }

    /// Reads a box (a convenience over [`Input::read`]).
    ///
    /// # Errors
    /// As [`Input::read`].
    pub fn read_region(&self, region: &Region) -> Result<BlockAny<'static>> {
        self.read(&region.sets())
    }

    fn read_typed<T: Element + ElementOwned>(&self, sets: &[AxisSet]) -> Result<Block<'static, T>> {
        let lens: Vec<usize> = sets.iter().map(AxisSet::len).collect();
        let total: usize = lens.iter().product();
        if total == 0 {
            return Ok(Block::new(sets.to_vec(), Cow::Owned(Vec::new())));
        }
        let runs: Vec<&[Range<usize>]> = sets.iter().map(AxisSet::runs).collect();
        let counts: Vec<usize> = runs.iter().map(|r| r.len()).collect();
        if counts.iter().all(|&c| c == 1) {
            let ranges: Vec<Range<usize>> = runs.iter().map(|r| r[0].clone()).collect();
            let data = self.retrieve::<T>(&ranges)?;
            return Ok(Block::new(sets.to_vec(), Cow::Owned(data)));
        }
        // Several runs on some axis (`wrap`): one retrieval per box of the product.
        let mut out = vec![T::default(); total];
        let strides = c_strides(&lens);
        let last = lens.len() - 1;
        for flat in 0..counts.iter().product() {
            let combo = unravel(flat, &counts);
            let ranges: Vec<Range<usize>> =
                (0..lens.len()).map(|a| runs[a][combo[a]].clone()).collect();
            let origin: Vec<usize> = (0..lens.len())
                .map(|a| runs[a][..combo[a]].iter().map(Range::len).sum())
                .collect();
            let shape: Vec<usize> = ranges.iter().map(Range::len).collect();
            let data = self.retrieve::<T>(&ranges)?;
            let row = shape[last];
            for_each_row(&shape[..last], |index, r| {
                let dst = (0..last)
                    .map(|a| (origin[a] + index[a]) * strides[a])
                    .sum::<usize>()
                    + origin[last];
                out[dst..dst + row].copy_from_slice(&data[r * row..(r + 1) * row]);
            });
        }
        Ok(Block::new(sets.to_vec(), Cow::Owned(out)))
    }

    /// One box, in bounds (checked by the caller: zarrs does not check).
    fn retrieve<T: ElementOwned>(&self, ranges: &[Range<usize>]) -> Result<Vec<T>> {
        let subset = ArraySubset::new_with_ranges(&to_u64_ranges(ranges));
        self.array
            .retrieve_array_subset::<Vec<T>>(&subset)
            .map_err(|e| self.diagnose(ranges, e))
    }

    /// Turns a failed retrieval into an error naming the chunk at fault: decode each
    /// chunk of the box on its own until one fails (only on the error path).
    fn diagnose(&self, ranges: &[Range<usize>], err: ArrayError) -> Error {
        let first: Vec<usize> = ranges
            .iter()
            .zip(&self.chunk)
            .map(|(r, c)| r.start / c)
            .collect();
        let counts: Vec<usize> = ranges
            .iter()
            .zip(&self.chunk)
            .zip(&first)
            .map(|((r, c), f)| (r.end - 1) / c + 1 - f)
            .collect();
        for flat in 0..counts.iter().product() {
            let chunk: Vec<u64> = unravel(flat, &counts)
                .iter()
                .zip(&first)
                .map(|(i, f)| (i + f) as u64)
                .collect();
            let path = self.path.join(self.array.chunk_key(&chunk).as_str());
            match self.array.retrieve_chunk::<ArrayBytes<'static>>(&chunk) {
                Ok(_) => {}
                Err(ArrayError::StorageError(e)) => {
                    return Error::Store {
                        path,
                        message: one_line(&e),
                    };
                }
                Err(e) => {
                    return Error::CorruptChunk {
                        chunk,
                        path,
                        message: one_line(&e),
                    };
                }
            }
        }
        Error::Store {
            path: self.path.clone(),
            message: format!("reading {ranges:?}: {}", one_line(&err)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------

/// The compression of a new output array's chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Chunks stored raw.
    None,
    /// zstd at `level` (Zarr v3 codec `zstd`; Zarr v2 numcodecs compressor `zstd`).
    Zstd {
        /// Compression level (1 to 22; 3 is zstd's default).
        level: i32,
    },
}

impl Default for Compression {
    /// zstd level 3.
    fn default() -> Self {
        Compression::Zstd { level: 3 }
    }
}

/// What an output array is: compared field by field with an array already at the
/// output path to decide whether a run may resume into it.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputSpec {
    /// Array shape.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Chunk shape (same rank as `shape`).
    pub chunk: Vec<usize>,
    /// Zarr format, 2 or 3.
    pub zarr_format: u8,
    /// Chunk compression (not compared when resuming: it does not change the values).
    pub compression: Compression,
    /// User attributes: record the op and its parameters here, so that resuming with
    /// other parameters is refused.
    pub attributes: Map<String, Value>,
}

impl OutputSpec {
    /// A Zarr v3 output, zstd level 3, fill value 0, no attributes.
    pub fn new(shape: &[usize], dtype: DType, chunk: &[usize]) -> Self {
        OutputSpec {
            shape: shape.to_vec(),
            dtype,
            chunk: chunk.to_vec(),
            zarr_format: 3,
            compression: Compression::default(),
            attributes: Map::new(),
        }
    }

    /// The same spec in Zarr format `zarr_format` (2 or 3).
    pub fn with_zarr_format(mut self, zarr_format: u8) -> Self {
        self.zarr_format = zarr_format;
        self
    }

    /// The same spec with another compression.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The same spec with these attributes.
    pub fn with_attributes(mut self, attributes: Map<String, Value>) -> Self {
        self.attributes = attributes;
        self
    }

    fn grid(&self) -> Result<Grid> {
        if self.zarr_format != 2 && self.zarr_format != 3 {
            return Err(Error::InvalidParameter {
                op: "output",
                message: format!("Zarr format {} (expected 2 or 3)", self.zarr_format),
            });
        }
        if self.shape.is_empty() {
            return Err(Error::Shape("a 0-dimensional output".to_string()));
        }
        if let Compression::Zstd { level } = self.compression
            && !(-131_072..=22).contains(&level)
        {
            return Err(Error::InvalidParameter {
                op: "output",
                message: format!("zstd level {level} (expected at most 22)"),
            });
        }
        Grid::new(&self.shape, &self.chunk)
    }

    /// The metadata files of the array, in the order they must be published.
    fn metadata_files(&self) -> Vec<(&'static str, Vec<u8>)> {
        let fill = if self.dtype.is_float() {
            json!(0.0)
        } else {
            json!(0)
        };
        let pretty = |v: &Value| {
            let mut bytes = serde_json::to_vec_pretty(v).expect("JSON values serialise");
            bytes.push(b'\n');
            bytes
        };
        if self.zarr_format == 3 {
            let mut codecs = vec![if self.dtype.size() == 1 {
                json!({"name": "bytes"})
            } else {
                json!({"name": "bytes", "configuration": {"endian": "little"}})
            }];
            if let Compression::Zstd { level } = self.compression {
                codecs.push(json!({
                    "name": "zstd",
                    "configuration": {"level": level, "checksum": false}
                }));
            }
            let meta = json!({
                "zarr_format": 3,
                "node_type": "array",
                "shape": self.shape,
                "data_type": self.dtype.name(),
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": self.chunk}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": fill,
                "codecs": codecs,
                "attributes": self.attributes,
            });
            vec![("zarr.json", pretty(&meta))]
        } else {
            let compressor = match self.compression {
                Compression::None => Value::Null,
                Compression::Zstd { level } => json!({"id": "zstd", "level": level}),
            };
            let meta = json!({
                "zarr_format": 2,
                "shape": self.shape,
                "chunks": self.chunk,
                "dtype": v2_dtype(self.dtype),
                "compressor": compressor,
                "fill_value": fill,
                "order": "C",
                "filters": null,
                "dimension_separator": "/",
            });
            // `.zattrs` first: once `.zarray` is visible the array is complete.
            vec![
                (".zattrs", pretty(&Value::Object(self.attributes.clone()))),
                (".zarray", pretty(&meta)),
            ]
        }
    }
}

/// A Zarr array being written: created anew, or reopened to resume a killed run.
pub struct Output {
    path: PathBuf,
    array: Array<AtomicStore>,
    spec: OutputSpec,
    grid: Grid,
    resumed: bool,
    options: CodecOptions,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("path", &self.path)
            .field("spec", &self.spec)
            .field("resumed", &self.resumed)
            .finish()
    }
}

impl Output {
    /// Creates the output array at `path` (parent directories included), or reopens the
    /// array already there if it has the same shape, type, chunks, Zarr format and
    /// attributes (to resume; stale temporary files of a killed run are removed).
    ///
    /// With `overwrite`, an array already at `path` is erased first, whatever it holds.
    /// A path holding anything but a Zarr array (a group, a file, a non-empty
    /// directory) is never erased.
    ///
    /// Safe when N processes create the same output at once on a shared filesystem:
    /// the array directory is assembled under a temporary name and renamed into place,
    /// and the processes that lose the race compare and reopen the winner's array.
    /// (`overwrite` is not: run it once, before starting the processes.)
    ///
    /// # Errors
    /// [`Error::IncompatibleOutput`] naming what differs (or what is there instead of an
    /// array); [`Error::Shape`] / [`Error::InvalidParameter`] for an invalid spec;
    /// [`Error::Store`] for I/O errors.
    pub fn create(path: &Path, spec: &OutputSpec, overwrite: bool) -> Result<Output> {
        let grid = spec.grid()?;
        remove_stale_siblings(path);
        let mut erased = false;
        for _attempt in 0..8 {
            match inspect(path)? {
                Found::Missing | Found::EmptyDir => {
                    if publish(path, &spec.metadata_files())? {
                        return Output::open(path, spec, grid, false);
                    }
                    // Another process created it meanwhile: look again.
                }
                Found::Array(_) if overwrite && !erased => {
                    erase(path)?;
                    erased = true;
                }
                Found::Array(_) => {
                    let output = Output::open(path, spec, grid, true)?;
                    output.remove_temporaries(STALE_TEMP_AGE)?;
                    return Ok(output);
                }
                other => {
                    return Err(Error::IncompatibleOutput {
                        path: path.to_path_buf(),
                        reason: format!("{}; haloflow never erases that", other.explain(path)),
                    });
                }
            }
        }
        Err(Error::Store {
            path: path.to_path_buf(),
            message: "the output kept appearing and disappearing while being created".into(),
        })
    }

    /// Opens the array at `path` and checks it against `spec`.
    fn open(path: &Path, spec: &OutputSpec, grid: Grid, resumed: bool) -> Result<Output> {
        let store = Arc::new(AtomicStore::new(path)?);
        let array = Array::open(store, "/").map_err(|e| match create_error(path, e) {
            Error::UnsupportedArray { reason, .. } => Error::IncompatibleOutput {
                path: path.to_path_buf(),
                reason: format!("the array there is unsupported ({reason})"),
            },
            other => other,
        })?;
        let differences = differences(path, &array, spec);
        if !differences.is_empty() {
            return Err(Error::IncompatibleOutput {
                path: path.to_path_buf(),
                reason: format!("{}; pass overwrite to replace it", differences.join("; ")),
            });
        }
        Ok(Output {
            path: path.to_path_buf(),
            array,
            spec: spec.clone(),
            grid,
            resumed,
            options: CodecOptions::default().with_store_empty_chunks(true),
        })
    }

    /// The array's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The spec the array matches.
    pub fn spec(&self) -> &OutputSpec {
        &self.spec
    }

    /// The output chunk grid.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// Whether the array existed already (a resumed run) rather than being created.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Stores every chunk of `region` from `block`.
    ///
    /// `region` must be a whole number of chunks (clipped at the array's edge) and
    /// `block` must hold at least its indices, in the output's element type. Every
    /// chunk is stored, even one equal to the fill value; edge chunks are padded with
    /// the fill value to the full chunk shape (as zarr-python does). Each chunk is
    /// written to a temporary file, then synced to disk and renamed into place in the
    /// background, so it is either absent or complete and durable. The chunks appear
    /// by [`Output::flush`] (or when the output is dropped) at the latest.
    ///
    /// # Errors
    /// [`Error::DTypeMismatch`], [`Error::BlockNotAligned`] for a region that cuts a
    /// chunk, [`Error::Shape`] for a region outside the array or not covered by the
    /// block, [`Error::Store`] for I/O errors (including an earlier chunk's failed
    /// commit).
    pub fn write(&self, region: &Region, block: &BlockAny<'_>) -> Result<()> {
        if block.dtype() != self.spec.dtype {
            return Err(Error::DTypeMismatch {
                expected: self.spec.dtype,
                found: block.dtype(),
            });
        }
        self.check_region(region)?;
        if let Some(axis) = (0..region.ndim()).find(|&a| {
            let (c, n) = (self.spec.chunk[a], self.spec.shape[a]);
            !region.start[a].is_multiple_of(c)
                || !(region.start[a] + region.shape[a] == n || region.shape[a].is_multiple_of(c))
        }) {
            return Err(Error::BlockNotAligned {
                block: region.shape.clone(),
                chunk: self.spec.chunk.clone(),
                axis,
            });
        }
        match_any!(block, BlockAny, b => self.write_typed(region, b))
    }

    fn write_typed<T: Element + zarrs::array::Element>(
        &self,
        region: &Region,
        block: &Block<'_, T>,
    ) -> Result<()> {
        if let Some(a) = (0..region.ndim())
            .find(|&a| !block.sets[a].contains_set(&AxisSet::from_range(region.range(a))))
        {
            return Err(Error::Shape(format!(
                "the block does not hold the region {region:?} on axis {a} (it holds {:?})",
                block.sets[a].runs()
            )));
        }
        self.chunks_of(region)
            .par_iter()
            .try_for_each(|chunk| self.write_chunk(chunk, block))
    }

    /// Copies one chunk out of `block` (padded with the fill value at the edge) and
    /// stores it.
    fn write_chunk<T: Element + zarrs::array::Element>(
        &self,
        chunk: &[usize],
        block: &Block<'_, T>,
    ) -> Result<()> {
        let part = self.grid.chunk_region(chunk);
        let full = self.grid.chunk_shape();
        let full_strides = c_strides(full);
        let block_strides = block.strides();
        // The block holds each axis' range within one run, so its positions are
        // consecutive from the first.
        let base: Vec<usize> = (0..part.ndim())
            .map(|a| {
                block.sets[a]
                    .position(part.start[a])
                    .expect("checked: the block holds the region")
            })
            .collect();
        let indices: Vec<u64> = chunk.iter().map(|&i| i as u64).collect();
        let stored = |data: &[T]| {
            self.array
                .store_chunk_opt(&indices, data, &self.options)
                .map_err(|e| Error::Store {
                    path: self.chunk_path(&indices),
                    message: format!("writing chunk {indices:?}: {}", one_line(&e)),
                })
        };
        // A block that is exactly this (full) chunk is stored as it is.
        if base.iter().all(|&b| b == 0) && block.sets.iter().zip(full).all(|(s, &n)| s.len() == n) {
            return stored(&block.data);
        }
        let last = part.ndim() - 1;
        let row = part.shape[last];
        let mut data = vec![T::default(); full.iter().product()];
        for_each_row(&part.shape[..last], |index, _| {
            let src = (0..last)
                .map(|a| (base[a] + index[a]) * block_strides[a])
                .sum::<usize>()
                + base[last];
            let dst: usize = (0..last).map(|a| index[a] * full_strides[a]).sum();
            data[dst..dst + row].copy_from_slice(&block.data[src..src + row]);
        });
        stored(&data)
    }

    /// Waits until every chunk written so far is synced and in place.
    ///
    /// # Errors
    /// [`Error::Store`] if a chunk could not be synced or renamed (its temporary file
    /// is removed; the chunk is absent and a rerun writes it).
    pub fn flush(&self) -> Result<()> {
        self.array
            .storage()
            .committer
            .flush()
            .map_err(|e| Error::Store {
                path: self.path.clone(),
                message: format!("committing a chunk: {e}"),
            })
    }

    /// Whether the chunk at grid index `chunk` is stored (every written chunk is, even
    /// one equal to the fill value, so this means "written"). A chunk this output is
    /// still committing in the background counts once [`Output::flush`] returns.
    ///
    /// # Errors
    /// [`Error::Shape`] for an index outside the grid; [`Error::Store`] for I/O errors.
    pub fn chunk_exists(&self, chunk: &[u64]) -> Result<bool> {
        let grid = self.grid.grid_shape();
        if chunk.len() != grid.len() || chunk.iter().zip(&grid).any(|(&i, &n)| i >= n as u64) {
            return Err(Error::Shape(format!(
                "chunk index {chunk:?} outside the chunk grid {grid:?}"
            )));
        }
        let key = self.array.chunk_key(chunk);
        self.array
            .storage()
            .size_key(&key)
            .map(|size| size.is_some())
            .map_err(|e| Error::Store {
                path: self.chunk_path(chunk),
                message: one_line(&e),
            })
    }

    /// Whether every chunk that `region` touches is stored.
    ///
    /// # Errors
    /// [`Error::Shape`] for a region outside the array; [`Error::Store`] for I/O errors.
    pub fn region_done(&self, region: &Region) -> Result<bool> {
        self.check_region(region)?;
        for chunk in self.chunks_of(region) {
            let chunk: Vec<u64> = chunk.iter().map(|&i| i as u64).collect();
            if !self.chunk_exists(&chunk)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Removes the temporary files (in [`TEMP_DIR`]) older than `older_than`, left by
    /// killed runs; returns how many were removed. [`Output::create`] does this with
    /// [`STALE_TEMP_AGE`] when it resumes; younger files may belong to a process
    /// writing the same output right now.
    ///
    /// # Errors
    /// [`Error::Store`] for I/O errors.
    pub fn remove_temporaries(&self, older_than: Duration) -> Result<usize> {
        let dir = self.path.join(TEMP_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_error(&dir, e)),
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&dir, e))?;
            let modified = entry.metadata().and_then(|m| m.modified());
            let stale = match modified {
                Ok(t) => now.duration_since(t).is_ok_and(|age| age >= older_than),
                Err(_) => false,
            };
            if stale {
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(&entry.path(), e)),
                }
            }
        }
        Ok(removed)
    }

    fn chunk_path(&self, chunk: &[u64]) -> PathBuf {
        self.path.join(self.array.chunk_key(chunk).as_str())
    }

    fn check_region(&self, region: &Region) -> Result<()> {
        let shape = &self.spec.shape;
        if region.ndim() != shape.len()
            || (0..shape.len()).any(|a| region.start[a] + region.shape[a] > shape[a])
        {
            return Err(Error::Shape(format!(
                "{}: region {region:?} is outside the array of shape {shape:?}",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// Grid indices of the chunks `region` touches, C order.
    fn chunks_of(&self, region: &Region) -> Vec<Vec<usize>> {
        if region.is_empty() {
            return Vec::new();
        }
        let chunk = &self.spec.chunk;
        let first: Vec<usize> = (0..region.ndim())
            .map(|a| region.start[a] / chunk[a])
            .collect();
        let counts: Vec<usize> = (0..region.ndim())
            .map(|a| (region.start[a] + region.shape[a] - 1) / chunk[a] + 1 - first[a])
            .collect();
        (0..counts.iter().product())
            .map(|flat| {
                unravel(flat, &counts)
                    .iter()
                    .zip(&first)
                    .map(|(i, f)| i + f)
                    .collect()
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// What zarrs tells about an array
// ---------------------------------------------------------------------------------------

/// The properties haloflow needs, checked.
struct ArrayInfo {
    shape: Vec<usize>,
    dtype: DType,
    chunk: Vec<usize>,
    zarr_format: u8,
}

impl ArrayInfo {
    fn of<S: ?Sized>(path: &Path, array: &Array<S>) -> Result<ArrayInfo> {
        let unsupported = |reason: String| Error::UnsupportedArray {
            path: path.to_path_buf(),
            reason,
        };
        let shape: Vec<usize> = array.shape().iter().map(|&n| n as usize).collect();
        if shape.is_empty() {
            return Err(unsupported("a 0-dimensional array".to_string()));
        }
        let dtype = dtype_of(array.data_type()).map_err(|name| {
            unsupported(format!(
                "data type '{name}' (haloflow reads uint8 uint16 uint32 int8 int16 int32 float32 float64)"
            ))
        })?;
        let grid_name = array
            .chunk_grid()
            .name(ZarrVersion::V3)
            .unwrap_or_default()
            .into_owned();
        if grid_name != "regular" {
            return Err(unsupported(format!(
                "chunk grid '{grid_name}' (haloflow reads regular chunk grids only)"
            )));
        }
        let chunk: Vec<usize> = array
            .chunk_shape(&vec![0; shape.len()])
            .map_err(|e| unsupported(format!("chunk grid: {}", one_line(&e))))?
            .iter()
            .map(|n| n.get() as usize)
            .collect();
        let zarr_format = match array.metadata() {
            ArrayMetadata::V2(_) => 2,
            ArrayMetadata::V3(_) => 3,
        };
        Ok(ArrayInfo {
            shape,
            dtype,
            chunk,
            zarr_format,
        })
    }
}

/// haloflow's type for a zarrs data type, or the data type's name.
fn dtype_of(dt: &DataType) -> std::result::Result<DType, String> {
    let found = if dt.is::<UInt8DataType>() {
        DType::U8
    } else if dt.is::<UInt16DataType>() {
        DType::U16
    } else if dt.is::<UInt32DataType>() {
        DType::U32
    } else if dt.is::<Int8DataType>() {
        DType::I8
    } else if dt.is::<Int16DataType>() {
        DType::I16
    } else if dt.is::<Int32DataType>() {
        DType::I32
    } else if dt.is::<Float32DataType>() {
        DType::F32
    } else if dt.is::<Float64DataType>() {
        DType::F64
    } else {
        let name = dt.name(ZarrVersion::V3).unwrap_or_default().into_owned();
        return Err(if name.is_empty() {
            format!("{dt:?}")
        } else {
            name
        });
    };
    Ok(found)
}

/// The Zarr v2 (numpy) type string, little-endian.
fn v2_dtype(dtype: DType) -> &'static str {
    match dtype {
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
    }
}

/// How an existing array differs from `spec`, one phrase per difference.
fn differences<S: ?Sized>(path: &Path, array: &Array<S>, spec: &OutputSpec) -> Vec<String> {
    let mut out = Vec::new();
    let format = match array.metadata() {
        ArrayMetadata::V2(_) => 2,
        ArrayMetadata::V3(_) => 3,
    };
    if format != spec.zarr_format {
        out.push(format!(
            "it is Zarr v{format}, not v{} as requested",
            spec.zarr_format
        ));
    }
    let shape: Vec<usize> = array.shape().iter().map(|&n| n as usize).collect();
    if shape != spec.shape {
        out.push(format!(
            "its shape is {shape:?}, not {:?} as requested",
            spec.shape
        ));
    }
    match dtype_of(array.data_type()) {
        Ok(d) if d == spec.dtype => {}
        Ok(d) => out.push(format!(
            "its data type is {d}, not {} as requested",
            spec.dtype
        )),
        Err(name) => out.push(format!(
            "its data type is {name}, not {} as requested",
            spec.dtype
        )),
    }
    match ArrayInfo::of(path, array) {
        Ok(info) if info.chunk == spec.chunk => {}
        Ok(info) => out.push(format!(
            "its chunks are {:?}, not {:?} as requested",
            info.chunk, spec.chunk
        )),
        Err(Error::UnsupportedArray { reason, .. }) if !reason.starts_with("data type") => {
            out.push(reason)
        }
        Err(_) => {}
    }
    let existing = array.attributes();
    let keys: std::collections::BTreeSet<&String> = existing
        .keys()
        .chain(spec.attributes.keys())
        .filter(|k| !IGNORED_ATTRIBUTES.contains(&k.as_str()))
        .collect();
    for key in keys {
        match (existing.get(key), spec.attributes.get(key)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => out.push(format!(
                "its attribute '{key}' is {}, not {} as requested",
                truncate(&a.to_string()),
                truncate(&b.to_string())
            )),
            (Some(_), None) => out.push(format!("it has an attribute '{key}' not requested")),
            (None, _) => out.push(format!("it lacks the requested attribute '{key}'")),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Paths and files
// ---------------------------------------------------------------------------------------

/// What a path holds.
#[derive(Debug)]
enum Found {
    Missing,
    File,
    EmptyDir,
    /// An array of this Zarr format.
    Array(u8),
    /// A group of this Zarr format.
    Group(u8),
    /// A non-empty directory with no Zarr metadata.
    OtherDir,
}

impl Found {
    /// Why this is not an array, in a phrase naming what it is.
    fn explain(&self, path: &Path) -> String {
        match self {
            Found::Missing => "nothing is there".to_string(),
            Found::File => {
                "it is a file; give the directory holding zarr.json or .zarray".to_string()
            }
            Found::EmptyDir => "it is an empty directory".to_string(),
            Found::Array(v) => format!("it is a Zarr v{v} array"),
            Found::Group(v) => {
                let arrays = child_arrays(path);
                if arrays.is_empty() {
                    format!("it is a Zarr v{v} group")
                } else {
                    format!(
                        "it is a Zarr v{v} group; arrays inside: {}",
                        arrays.join(", ")
                    )
                }
            }
            Found::OtherDir => "it is a directory with no zarr.json or .zarray in it".to_string(),
        }
    }
}

fn inspect(path: &Path) -> Result<Found> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(io_error(path, e)),
    };
    if !meta.is_dir() {
        return Ok(Found::File);
    }
    let zarr_json = path.join("zarr.json");
    match fs::read(&zarr_json) {
        Ok(bytes) => {
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| Error::Store {
                path: zarr_json.clone(),
                message: format!("invalid JSON: {e}"),
            })?;
            return match v.get("node_type").and_then(Value::as_str) {
                Some("array") => Ok(Found::Array(3)),
                Some("group") => Ok(Found::Group(3)),
                other => Err(Error::Store {
                    path: zarr_json,
                    message: format!("node_type {other:?} is neither \"array\" nor \"group\""),
                }),
            };
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&zarr_json, e)),
    }
    if path.join(".zarray").is_file() {
        return Ok(Found::Array(2));
    }
    if path.join(".zgroup").is_file() {
        return Ok(Found::Group(2));
    }
    let mut entries = fs::read_dir(path).map_err(|e| io_error(path, e))?;
    Ok(if entries.next().is_none() {
        Found::EmptyDir
    } else {
        Found::OtherDir
    })
}

/// Names of the subdirectories of `path` that are arrays, sorted (at most 10).
fn child_arrays(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| matches!(inspect(&e.path()), Ok(Found::Array(_))))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.len() > 10 {
        names.truncate(10);
        names.push("...".to_string());
    }
    names
}

/// The array metadata as stored (v2: `.zarray` with `.zattrs` as `attributes`).
fn raw_metadata(path: &Path, zarr_format: u8) -> Result<Value> {
    let read = |name: &str| -> Result<Option<Value>> {
        let file = path.join(name);
        match fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Store {
                    path: file,
                    message: format!("invalid JSON: {e}"),
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&file, e)),
        }
    };
    if zarr_format == 3 {
        Ok(read("zarr.json")?.unwrap_or(Value::Null))
    } else {
        let mut meta = read(".zarray")?.unwrap_or(Value::Null);
        if let (Value::Object(m), Some(attrs)) = (&mut meta, read(".zattrs")?) {
            m.insert("attributes".to_string(), attrs);
        }
        Ok(meta)
    }
}

/// `name {configuration}` of a v3 codec (sharding shows its inner codecs).
fn describe_codec_v3(codec: &Value) -> String {
    let name = codec["name"].as_str().unwrap_or("?");
    match &codec["configuration"] {
        Value::Null => name.to_string(),
        Value::Object(c) if c.is_empty() => name.to_string(),
        c => format!("{name} {}", serde_json::to_string(c).unwrap_or_default()),
    }
}

/// A name unique across processes and threads, for temporary files.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}-{:x}-{:x}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The parent directory and file name of `path` (the parent of `a` is `.`).
fn split(path: &Path) -> Result<(PathBuf, &OsStr)> {
    let name = path.file_name().ok_or_else(|| Error::Store {
        path: path.to_path_buf(),
        message: "the output path has no final name".to_string(),
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

/// Creates the array directory at `path` with `files` in it, atomically: assembled
/// under a temporary name beside it and renamed into place. Returns `false` if another
/// process put something there first.
fn publish(path: &Path, files: &[(&'static str, Vec<u8>)]) -> Result<bool> {
    let (parent, name) = split(path)?;
    fs::create_dir_all(&parent).map_err(|e| io_error(&parent, e))?;
    let staging = parent.join(format!(
        ".{}.haloflow-new-{}",
        name.to_string_lossy(),
        unique_suffix()
    ));
    let assemble = || -> io::Result<()> {
        fs::create_dir(&staging)?;
        fs::create_dir(staging.join(TEMP_DIR))?;
        for (file, bytes) in files {
            let mut f = File::create_new(staging.join(file))?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        Ok(())
    };
    if let Err(e) = assemble() {
        let _ = fs::remove_dir_all(&staging);
        return Err(io_error(&staging, e));
    }
    match fs::rename(&staging, path) {
        Ok(()) => Ok(true),
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            match inspect(path)? {
                // Renaming a directory over a non-empty one fails: someone else won.
                Found::Missing | Found::EmptyDir => Err(io_error(path, e)),
                _ => Ok(false),
            }
        }
    }
}

/// Removes the array at `path`: renamed aside first (so it disappears at once), then
/// deleted.
fn erase(path: &Path) -> Result<()> {
    let (parent, name) = split(path)?;
    let trash = parent.join(format!(
        ".{}.haloflow-old-{}",
        name.to_string_lossy(),
        unique_suffix()
    ));
    fs::rename(path, &trash).map_err(|e| io_error(path, e))?;
    fs::remove_dir_all(&trash).map_err(|e| io_error(&trash, e))
}

/// Removes, best effort, what killed runs left beside `path`: half-assembled array
/// directories ([`publish`]) and arrays renamed aside but not yet deleted ([`erase`]),
/// once older than [`STALE_TEMP_AGE`] (younger ones may be another process' work).
fn remove_stale_siblings(path: &Path) {
    let Ok((parent, name)) = split(path) else {
        return;
    };
    let prefix = format!(".{}.haloflow-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(&parent) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age >= STALE_TEMP_AGE));
        if stale && (rest.starts_with("new-") || rest.starts_with("old-")) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A filesystem store whose writes are atomic and durable: a temporary file, synced and
/// renamed into place by a [`Committer`] in the background. Reads and erases go to
/// zarrs' [`FilesystemStore`], whose own writes truncate in place.
struct AtomicStore {
    inner: FilesystemStore,
    temp_dir: PathBuf,
    committer: Committer,
}

impl std::fmt::Debug for AtomicStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicStore")
            .field("temp_dir", &self.temp_dir)
            .finish_non_exhaustive()
    }
}

impl AtomicStore {
    fn new(path: &Path) -> Result<Self> {
        Ok(AtomicStore {
            inner: FilesystemStore::new(path).map_err(|e| store_error(path, e))?,
            temp_dir: path.join(TEMP_DIR),
            committer: Committer::new(),
        })
    }
}

impl ReadableStorageTraits for AtomicStore {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> std::result::Result<MaybeBytesIterator<'a>, StorageError> {
        self.inner.get_partial_many(key, byte_ranges)
    }

    fn size_key(&self, key: &StoreKey) -> std::result::Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

impl WritableStorageTraits for AtomicStore {
    fn set(&self, key: &StoreKey, value: Bytes) -> std::result::Result<(), StorageError> {
        let temp = self.temp_dir.join(format!(
            "{}.{}.tmp",
            key.as_str().replace('/', "_"),
            unique_suffix()
        ));
        self.committer
            .write(temp, self.inner.key_to_fspath(key), &value)
            .map_err(|e| StorageError::IOError(Arc::new(e)))
    }

    fn set_partial_many(
        &self,
        key: &StoreKey,
        _offset_values: OffsetBytesIterator,
    ) -> std::result::Result<(), StorageError> {
        Err(StorageError::Unsupported(format!(
            "partial write of {key}: haloflow writes whole chunks only"
        )))
    }

    fn erase(&self, key: &StoreKey) -> std::result::Result<(), StorageError> {
        self.inner.erase(key)
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> std::result::Result<(), StorageError> {
        self.inner.erase_prefix(prefix)
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// An error's message on one line.
fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A long value shortened for a message.
fn truncate(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(77).collect::<String>())
    } else {
        s.to_string()
    }
}

fn io_error(path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        return Error::NotFound(path.to_path_buf());
    }
    Error::Store {
        path: path.to_path_buf(),
        message: one_line(&e),
    }
}

fn store_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Store {
        path: path.to_path_buf(),
        message: one_line(&e),
    }
}

/// Sorts zarrs' array-opening errors into haloflow's.
fn create_error(path: &Path, e: ArrayCreateError) -> Error {
    let unsupported = |what: &str, e: &dyn std::fmt::Display| Error::UnsupportedArray {
        path: path.to_path_buf(),
        reason: format!("{what}: {}", one_line(e)),
    };
    match e {
        ArrayCreateError::DataTypeCreateError(e) => unsupported("data type", &e),
        ArrayCreateError::ChunkGridCreateError(e) => unsupported("chunk grid", &e),
        ArrayCreateError::CodecsCreateError(e) => unsupported("codecs", &e),
        ArrayCreateError::StorageTransformersCreateError(e) => {
            unsupported("storage transformers", &e)
        }
        ArrayCreateError::ChunkKeyEncodingCreateError(e) => unsupported("chunk key encoding", &e),
        ArrayCreateError::UnsupportedZarrV2Array(e) => unsupported("Zarr v2 array", &e),
        ArrayCreateError::AdditionalFieldUnsupportedError(e) => unsupported("metadata", &e),
        ArrayCreateError::StorageError(StorageError::InvalidMetadata(key, message)) => {
            Error::Store {
                path: path.join(key.as_str()),
                message: format!("invalid array metadata: {}", one_line(&message)),
            }
        }
        ArrayCreateError::MissingMetadata => Error::NotAnArray {
            path: path.to_path_buf(),
            reason: "no zarr.json or .zarray found".to_string(),
        },
        other => Error::Store {
            path: path.to_path_buf(),
            message: format!("cannot open the array: {}", one_line(&other)),
        },
    }
}

fn to_u64_ranges(ranges: &[Range<usize>]) -> Vec<Range<u64>> {
    ranges
        .iter()
        .map(|r| r.start as u64..r.end as u64)
        .collect()
}

impl crate::exec::Source for Input {
    fn shape(&self) -> &[usize] {
        Input::shape(self)
    }

    fn dtype(&self) -> DType {
        Input::dtype(self)
    }

    /// The inner chunk of a sharded array (decodable on its own), else the chunk.
    fn read_chunk_shape(&self) -> Vec<usize> {
        self.inner_chunk_shape()
            .unwrap_or_else(|| self.chunk_shape())
    }

    fn read_region(&self, region: &Region) -> Result<BlockAny<'static>> {
        Input::read_region(self, region)
    }
}

impl crate::exec::Sink for Output {
    fn write(&self, region: &Region, block: &BlockAny<'_>) -> Result<()> {
        Output::write(self, region, block)
    }

    fn region_done(&self, region: &Region) -> Result<bool> {
        Output::region_done(self, region)
    }

    fn flush(&self) -> Result<()> {
        Output::flush(self)
    }
}
