//! Reading: a Zarr v2 or v3 array (sharded or not) opened by its directory, and the
//! product of per-axis index sets read into a dense block.

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use unsafe_cell_slice::UnsafeCellSlice;
use zarrs::array::{
    Array, ArrayBytes, ArrayBytesFixedDisjointView, ArrayError, ArrayShardedExt, ArraySubset,
};
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::ReadableListableStorageTraits;

use super::errors::{create_error, one_line, store_error};
use super::files::{Found, inspect};
use super::metadata::{ArrayInfo, describe_codec_v3, raw_metadata};
use super::remote::{self, RemoteStore};
use crate::block::{Block, BlockAny, Placed, copy_box, take_buffer};
use crate::dtype::{DType, Element, with_dtype};
use crate::error::{Error, Result};
use crate::exec::Source;
use crate::formats::{self, FileMetadata, FileReader};
use crate::region::{AxisSet, Grid, Region, unravel};

/// An array opened for reading: a Zarr array, or a file from an instrument (TIFF,
/// NIfTI; see [`formats`](crate::formats)) read as one.
pub struct Input {
    path: PathBuf,
    array: Backing,
    shape: Vec<usize>,
    dtype: DType,
    chunk: Vec<usize>,
    inner_chunk: Option<Vec<usize>>,
    zarr_format: u8,
    metadata: Value,
}

/// What an [`Input`] reads from.
enum Backing {
    Zarr {
        array: Box<Array<dyn ReadableListableStorageTraits>>,
        /// The object store it is in, if it is not on a filesystem.
        remote: Option<Arc<RemoteStore>>,
    },
    File {
        reader: Box<dyn FileReader>,
        /// No attributes (a file's metadata is in [`Input::file_metadata`]).
        attributes: serde_json::Map<String, Value>,
    },
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
    /// for a data type other than `uint8 uint16 uint32 uint64 int8 int16 int32 int64 float32 float64`,
    /// a chunk grid that is not regular, a codec zarrs does not know, or a 0-dimensional
    /// array; [`Error::Store`] for unreadable metadata.
    pub fn open(path: &Path) -> Result<Input> {
        if let Some(reader) = formats::open(path)? {
            let shape = reader.shape().to_vec();
            return Ok(Input {
                path: path.to_path_buf(),
                dtype: reader.dtype(),
                chunk: formats::default_chunk(&shape),
                inner_chunk: Some(reader.read_unit()),
                shape,
                zarr_format: 0,
                metadata: Value::Null,
                array: Backing::File {
                    reader,
                    attributes: serde_json::Map::new(),
                },
            });
        }
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
        let remote = RemoteStore::open(path)?;
        let store: Arc<dyn ReadableListableStorageTraits> = match &remote {
            Some(r) => r.clone(),
            None => Arc::new(FilesystemStore::new(path).map_err(|e| store_error(path, e))?),
        };
        let array = Array::open(store, "/").map_err(|e| create_error(path, e))?;
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
            array: Backing::Zarr {
                array: Box::new(array),
                remote,
            },
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
    /// (the unit of storage, and of writing). For a file, the chunks its outputs take
    /// unless told otherwise ([`formats::default_chunk`]).
    pub fn chunk_shape(&self) -> Vec<usize> {
        self.chunk.clone()
    }

    /// For a sharded array, the shape of the inner chunks (the unit of decoding); for a
    /// file, its unit of decoding (a TIFF's strips or tile of one page, a NIfTI plane).
    pub fn inner_chunk_shape(&self) -> Option<Vec<usize>> {
        self.inner_chunk.clone()
    }

    /// The array's chunk grid (shards, if sharded).
    pub fn grid(&self) -> Grid {
        Grid::new(&self.shape, &self.chunk).expect("checked when opened")
    }

    /// The Zarr format version, 2 or 3; 0 for a file that is not Zarr.
    pub fn zarr_format(&self) -> u8 {
        self.zarr_format
    }

    /// A few lines describing the array: format, shape, type, chunks, codecs, fill value
    /// and attribute keys (for an `info` command).
    pub fn describe(&self) -> String {
        if let Backing::File { reader, .. } = &self.array {
            return describe_file(&self.path, reader.as_ref());
        }
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

    /// The chunks (shards) stored, as C-order indices into the chunk grid, ascending:
    /// found by listing the store's keys, so in time and memory that grow with the
    /// chunks stored, not with the grid (a billion-chunk output with a thousand stored
    /// answers at once). haloflow stores every chunk it writes, even one equal to the
    /// fill value, so in its outputs a chunk not stored is a job not done. Keys that are
    /// not this array's chunk keys (metadata, temporaries) are left out.
    ///
    /// # Errors
    /// [`Error::Store`] for I/O errors.
    pub fn stored_chunks(&self) -> Result<Vec<u64>> {
        use zarrs::storage::ListableStorageTraits;
        let grid = self.grid().grid_shape();
        let array = self.zarr()?;
        let keys = array.storage().list().map_err(|e| Error::Store {
            path: self.path.clone(),
            message: one_line(&e),
        })?;
        let mut stored: Vec<u64> = keys
            .iter()
            .filter_map(|key| {
                let key = key.as_str();
                // The grid index the key's numbers name, if they do, and if this array's
                // key encoding gives exactly this key for it.
                let digits = key.strip_prefix("c").unwrap_or(key);
                let index: Vec<u64> = digits
                    .split(['/', '.'])
                    .filter(|p| !p.is_empty())
                    .map(|p| p.parse().ok())
                    .collect::<Option<_>>()?;
                let fits = index.len() == grid.len()
                    && index.iter().zip(&grid).all(|(&i, &n)| i < n as u64);
                (fits && array.chunk_key(&index).as_str() == key).then(|| {
                    index
                        .iter()
                        .zip(&grid)
                        .fold(0u64, |flat, (&i, &n)| flat * n as u64 + i)
                })
            })
            .collect();
        stored.sort_unstable();
        stored.dedup();
        Ok(stored)
    }

    /// The array's attributes (v2: `.zattrs`); none for a file.
    pub fn attributes(&self) -> &serde_json::Map<String, Value> {
        match &self.array {
            Backing::Zarr { array, .. } => array.attributes(),
            Backing::File { attributes, .. } => attributes,
        }
    }

    /// What a file from an instrument says about its axes, spacing and channels;
    /// `None` for a Zarr array.
    pub fn file_metadata(&self) -> Option<&FileMetadata> {
        match &self.array {
            Backing::Zarr { .. } => None,
            Backing::File { reader, .. } => Some(reader.metadata()),
        }
    }

    /// The storage key of the chunk (shard) at grid index `index`, e.g. `c/0/1/2`; for
    /// a file, the unit's index.
    pub fn chunk_key(&self, index: &[u64]) -> String {
        match &self.array {
            Backing::Zarr { array, .. } => array.chunk_key(index).as_str().to_string(),
            Backing::File { .. } => format!("unit {index:?}"),
        }
    }

    /// The Zarr array, or an error for a file.
    fn zarr(&self) -> Result<&Array<dyn ReadableListableStorageTraits>> {
        match &self.array {
            Backing::Zarr { array, .. } => Ok(array),
            Backing::File { .. } => Err(Error::NotAnArray {
                path: self.path.clone(),
                reason: "a file from an instrument, not a Zarr array's store".into(),
            }),
        }
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

    /// The stored bytes of the chunk at grid index `chunk` as they are encoded, or
    /// `None` where it is absent (the fill value).
    ///
    /// # Errors
    /// [`Error::Store`] for I/O errors.
    pub fn encoded_chunk(&self, chunk: &[u64]) -> Result<Option<Vec<u8>>> {
        self.zarr()?
            .retrieve_encoded_chunk(chunk)
            .map_err(|e| store_error(&self.path, e))
    }

    /// The metadata entries that say how a chunk is encoded: format, shape, data type,
    /// chunk grid, codecs (compressor, filters and order on Zarr v2), fill value and
    /// storage transformers. Two arrays that agree on them store the same bytes for the
    /// same values.
    pub(crate) fn encoding(&self) -> Vec<Value> {
        match &self.array {
            Backing::Zarr { .. } => encoding_of(&self.metadata),
            Backing::File { .. } => Vec::new(),
        }
    }

    /// Reads a box (a convenience over [`Input::read`]).
    ///
    /// # Errors
    /// As [`Input::read`].
    pub fn read_region(&self, region: &Region) -> Result<BlockAny<'static>> {
        self.read(&region.sets())
    }

    fn read_typed<T: Element + bytemuck::Pod>(
        &self,
        sets: &[AxisSet],
    ) -> Result<Block<'static, T>> {
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
        for flat in 0..counts.iter().product() {
            let combo = unravel(flat, &counts);
            let ranges: Vec<Range<usize>> =
                (0..lens.len()).map(|a| runs[a][combo[a]].clone()).collect();
            let origin: Vec<usize> = (0..lens.len())
                .map(|a| runs[a][..combo[a]].iter().map(Range::len).sum())
                .collect();
            let shape: Vec<usize> = ranges.iter().map(Range::len).collect();
            let data = self.retrieve::<T>(&ranges)?;
            let zero = vec![0; shape.len()];
            copy_box(
                &shape,
                &data,
                Placed::at(&shape, &zero),
                &mut out,
                Placed::at(&lens, &origin),
            );
        }
        Ok(Block::new(sets.to_vec(), Cow::Owned(out)))
    }

    /// One box, in bounds (checked by the caller: zarrs does not check), decoded into a
    /// buffer of this thread's pool ([`take_buffer`]): a fresh one would cost a page
    /// fault per 4 KiB, the largest share of a Zarr run's page faults.
    fn retrieve<T: Element + bytemuck::Pod>(&self, ranges: &[Range<usize>]) -> Result<Vec<T>> {
        let array = match &self.array {
            Backing::Zarr { array, .. } => array,
            Backing::File { reader, .. } => {
                let n = ranges.iter().map(Range::len).product();
                let mut data = take_buffer::<T>(n);
                reader.read_box(ranges, bytemuck::cast_slice_mut::<T, u8>(&mut data))?;
                return Ok(data);
            }
        };
        let subset = ArraySubset::new_with_ranges(&to_u64_ranges(ranges));
        let shape: Vec<u64> = subset.shape().to_vec();
        let mut data = take_buffer::<T>(subset.num_elements_usize());
        let cells = UnsafeCellSlice::new(bytemuck::cast_slice_mut::<T, u8>(&mut data));
        // SAFETY: the view covers all of `data`, which nothing else reads or writes
        // while it lives (the one view of it).
        let view = unsafe {
            ArrayBytesFixedDisjointView::new(
                cells,
                size_of::<T>(),
                &shape,
                ArraySubset::new_with_shape(shape.clone()),
            )
        };
        let mut view = view.map_err(|e| Error::Shape(format!("{}: {e}", self.path.display())))?;
        array
            .retrieve_array_subset_into(&subset, (&mut view).into())
            .map_err(|e| self.diagnose(ranges, e))?;
        Ok(data)
    }

    /// Turns a failed retrieval into an error naming the chunk at fault: decode each
    /// chunk of the box on its own until one fails (only on the error path).
    fn diagnose(&self, ranges: &[Range<usize>], err: ArrayError) -> Error {
        let Backing::Zarr { array, .. } = &self.array else {
            return Error::Read(one_line(&err));
        };
        let sets: Vec<AxisSet> = ranges.iter().cloned().map(AxisSet::from_range).collect();
        for chunk in self.grid().chunks_touching(&sets) {
            let chunk: Vec<u64> = chunk.iter().map(|&i| i as u64).collect();
            let path = self.path.join(array.chunk_key(&chunk).as_str());
            match array.retrieve_chunk::<ArrayBytes<'static>>(&chunk) {
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

fn to_u64_ranges(ranges: &[Range<usize>]) -> Vec<Range<u64>> {
    ranges
        .iter()
        .map(|r| r.start as u64..r.end as u64)
        .collect()
}

impl Source for Input {
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

    /// On an object store, the chunks of an unsharded array are fetched ahead, as many
    /// as hold in 64 MiB decoded (at most twice the requests in flight). A sharded
    /// array's inner chunks are ranged reads through its shard index, made when read.
    fn will_read(&self, chunks: &[usize]) {
        let Backing::Zarr {
            array,
            remote: Some(remote),
        } = &self.array
        else {
            return;
        };
        if self.inner_chunk.is_some() {
            return;
        }
        let grid = self.grid().grid_shape();
        let keys = chunks
            .iter()
            .map(|&c| {
                let index: Vec<u64> = unravel(c, &grid).iter().map(|&i| i as u64).collect();
                array.chunk_key(&index).as_str().to_string()
            })
            .collect();
        let chunk_bytes = self.chunk.iter().product::<usize>() * self.dtype.size();
        let ahead = ((64 << 20) / chunk_bytes.max(1)).clamp(1, 2 * remote::io_concurrency());
        remote.prefetch(keys, ahead);
    }
}

/// The entries of array metadata `m` that say how a chunk is encoded (see
/// [`Input::encoding`]); an absent entry, or an empty list of storage transformers,
/// reads as null.
pub(crate) fn encoding_of(m: &Value) -> Vec<Value> {
    let keys: &[&str] = if m.get("zarr_format") == Some(&Value::from(2)) {
        &[
            "zarr_format",
            "shape",
            "dtype",
            "chunks",
            "compressor",
            "filters",
            "order",
            "fill_value",
        ]
    } else {
        &[
            "zarr_format",
            "shape",
            "data_type",
            "chunk_grid",
            "codecs",
            "fill_value",
            "storage_transformers",
        ]
    };
    keys.iter()
        .map(|k| match m.get(*k) {
            Some(Value::Array(a)) if a.is_empty() && *k == "storage_transformers" => Value::Null,
            Some(v) => v.clone(),
            None => Value::Null,
        })
        .collect()
}

/// The lines `info` shows for a file from an instrument.
fn describe_file(path: &Path, reader: &dyn FileReader) -> String {
    let m = reader.metadata();
    let mut lines = vec![
        format!("path        {}", path.display()),
        format!("format      {}", m.flavour),
        format!("shape       {:?}", reader.shape()),
        format!("dtype       {}", reader.dtype()),
        format!("axes        {}", m.axes.join(",")),
    ];
    let spacing: Vec<String> = m
        .scale
        .iter()
        .zip(&m.units)
        .map(|(s, u)| match u {
            Some(u) => format!("{s} {u}"),
            None => format!("{s}"),
        })
        .collect();
    lines.push(format!("spacing     {}", spacing.join(", ")));
    if !m.channels.is_empty() {
        lines.push(format!("channels    {}", m.channels.join(", ")));
    }
    lines.push(format!("read unit   {:?}", reader.read_unit()));
    for note in &m.notes {
        lines.push(format!("note        {note}"));
    }
    lines.join("\n")
}
