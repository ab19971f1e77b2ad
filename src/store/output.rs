//! Writing: an output array created from an [`OutputSpec`] (or reopened to resume),
//! written a whole number of chunks at a time, every chunk stored atomically.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rayon::prelude::*;
use zarrs::array::{Array, CodecOptions};

use super::atomic::{AtomicStore, ChunkStore};
use super::errors::{create_error, io_error, one_line};
use super::files::{
    Found, STALE_TEMP_AGE, TEMP_DIR, erase, inspect, publish, remove_stale_siblings,
};
use super::metadata::{OutputSpec, differences};
use super::remote::RemoteStore;
use super::shard::Shards;
use crate::block::{Block, BlockAny, Placed, copy_box};
use crate::dtype::{Element, match_any};
use crate::error::{Error, Result};
use crate::exec::Sink;
use crate::region::{AxisSet, Grid, Region};

/// A Zarr array being written: created anew, or reopened to resume a killed run.
pub struct Output {
    path: PathBuf,
    array: Array<ChunkStore>,
    spec: OutputSpec,
    grid: Grid,
    resumed: bool,
    options: CodecOptions,
    /// The shards in progress of a sharded output.
    shards: Option<Shards>,
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
    /// (`overwrite` is not: run it once, before starting the processes.) `path` may be
    /// an `s3://` URL (see [`remote`](super::remote)): the same holds there, with a
    /// conditional PUT of the metadata.
    ///
    /// # Errors
    /// [`Error::IncompatibleOutput`] naming what differs (or what is there instead of an
    /// array); [`Error::Shape`] / [`Error::InvalidParameter`] for an invalid spec;
    /// [`Error::Store`] for I/O errors.
    pub fn create(path: &Path, spec: &OutputSpec, overwrite: bool) -> Result<Output> {
        let grid = spec.grid()?;
        if let Some(remote) = RemoteStore::open(path)? {
            return Output::create_remote(path, remote, spec, grid, overwrite);
        }
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

    /// [`Output::create`] on an object store: the metadata objects are stored with a
    /// conditional PUT (of N processes creating the output at once, one writes them and
    /// the others compare), and an array already there is reopened with the keys it
    /// holds, listed once.
    fn create_remote(
        path: &Path,
        remote: Arc<RemoteStore>,
        spec: &OutputSpec,
        grid: Grid,
        overwrite: bool,
    ) -> Result<Output> {
        if !remote.writable() {
            return Err(Error::Store {
                path: path.to_path_buf(),
                message: "HTTP URLs are read-only; write to a local path or s3://".into(),
            });
        }
        let mut resumed = true;
        match inspect(path)? {
            Found::Missing => resumed = false,
            Found::Array(_) if overwrite => {
                remote.erase_all()?;
                resumed = false;
            }
            Found::Array(_) => {}
            other => {
                return Err(Error::IncompatibleOutput {
                    path: path.to_path_buf(),
                    reason: format!("{}; haloflow never erases that", other.explain(path)),
                });
            }
        }
        if !resumed {
            // A conditional PUT: of N processes creating the output at once, one
            // stores the metadata and the others reopen and compare against it.
            for (name, bytes) in spec.metadata_files() {
                if !remote.write_new(name, bytes)? {
                    resumed = true;
                }
            }
        }
        let store = ChunkStore::remote(remote)?;
        Output::open_store(path, store, spec, grid, resumed)
    }

    /// Opens the array at `path` and checks it against `spec`.
    fn open(path: &Path, spec: &OutputSpec, grid: Grid, resumed: bool) -> Result<Output> {
        let store = ChunkStore::Local(Box::new(AtomicStore::new(path)?));
        Output::open_store(path, store, spec, grid, resumed)
    }

    /// Opens the array in `store` and checks it against `spec`.
    fn open_store(
        path: &Path,
        store: ChunkStore,
        spec: &OutputSpec,
        grid: Grid,
        resumed: bool,
    ) -> Result<Output> {
        let store = Arc::new(store);
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
            shards: spec
                .shard
                .as_ref()
                .map(|s| Shards::new(&spec.shape, s, &spec.chunk, spec.compression)),
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
        self.check_aligned(region)?;
        match_any!(block, BlockAny, b => self.write_typed(region, b))
    }

    /// Checks that `region` is inside the array and a whole number of chunks.
    fn check_aligned(&self, region: &Region) -> Result<()> {
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
        Ok(())
    }

    fn write_typed<T: Element + zarrs::array::Element + bytemuck::Pod>(
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
    fn write_chunk<T: Element + zarrs::array::Element + bytemuck::Pod>(
        &self,
        chunk: &[usize],
        block: &Block<'_, T>,
    ) -> Result<()> {
        let part = self.grid.chunk_region(chunk);
        let full = self.grid.chunk_shape();
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
        let stored = |data: &[T]| match &self.shards {
            None => self
                .array
                .store_chunk_opt(&indices, data, &self.options)
                .map_err(|e| Error::Store {
                    path: self.chunk_path(&indices),
                    message: format!("writing chunk {indices:?}: {}", one_line(&e)),
                }),
            Some(shards) => self.store_inner_chunk(shards, chunk, data),
        };
        // A block that is exactly this (full) chunk is stored as it is.
        if base.iter().all(|&b| b == 0) && block.sets.iter().zip(full).all(|(s, &n)| s.len() == n) {
            return stored(&block.data);
        }
        let mut data = vec![T::default(); full.iter().product()];
        let zero = vec![0; part.ndim()];
        let lens = block.lens();
        copy_box(
            &part.shape,
            &block.data,
            Placed::at(&lens, &base),
            &mut data,
            Placed::at(full, &zero),
        );
        stored(&data)
    }

    /// Adds an inner chunk to its shard, and stores the shard once it is complete.
    fn store_inner_chunk<T: bytemuck::Pod>(
        &self,
        shards: &Shards,
        chunk: &[usize],
        data: &[T],
    ) -> Result<()> {
        // The `bytes` codec's little-endian layout is the memory layout here.
        #[cfg(target_endian = "big")]
        compile_error!("sharded outputs assume a little-endian machine");
        let failed = |shard: &[usize], e: &dyn std::fmt::Display| Error::Store {
            path: self.chunk_path(&shard.iter().map(|&i| i as u64).collect::<Vec<_>>()),
            message: format!("writing the shard of chunk {chunk:?}: {e}"),
        };
        let storage = self.array.storage();
        let begin = |shard: &[usize]| {
            let key: Vec<u64> = shard.iter().map(|&i| i as u64).collect();
            storage.begin(&self.array.chunk_key(&key))
        };
        let done = shards
            .add(chunk, bytemuck::cast_slice(data), begin)
            .map_err(|e| failed(&shards.shard_of(chunk), &e))?;
        if let Some((shard, (file, temp, target))) = done {
            storage
                .commit(file, temp, target)
                .map_err(|e| failed(&shard, &e))?;
        }
        Ok(())
    }

    /// Whether this output stores `input`'s chunks as they are encoded: neither is
    /// sharded, and their metadata agree on everything that says how a chunk is
    /// encoded (format, shape, data type, chunks, codecs, fill value). Then
    /// [`Output::copy_encoded`] stores what decoding and encoding again would.
    ///
    /// # Errors
    /// [`Error::Store`] if this output's metadata cannot be read.
    pub fn encodes_like(&self, input: &super::Input) -> Result<bool> {
        if self.shards.is_some() || input.inner_chunk_shape().is_some() {
            return Ok(false);
        }
        let mine = super::metadata::raw_metadata(&self.path, self.spec.zarr_format)?;
        Ok(super::input::encoding_of(&mine) == input.encoding())
    }

    /// Stores the chunks of `region` (whole chunks) as `input` holds them encoded,
    /// without decoding them, each atomically as [`Output::write`] does. Returns
    /// `false` at the first chunk absent from `input` (the chunks before it are
    /// stored): the caller writes the region's values instead.
    ///
    /// The caller has checked [`Output::encodes_like`]: the bytes are then this
    /// output's encoding of the chunk's values.
    ///
    /// # Errors
    /// As [`Output::write`] for the region; [`Error::Store`] for I/O errors.
    pub fn copy_encoded(&self, input: &super::Input, region: &Region) -> Result<bool> {
        self.check_aligned(region)?;
        for chunk in self.chunks_of(region) {
            let indices: Vec<u64> = chunk.iter().map(|&i| i as u64).collect();
            let Some(bytes) = input.encoded_chunk(&indices)? else {
                return Ok(false);
            };
            // SAFETY: `encodes_like` holds (the caller's contract): the two arrays have
            // the same data type, chunk shape, codecs and fill value, so these bytes
            // are what this array's codecs make of the chunk's values.
            unsafe { self.array.store_encoded_chunk(&indices, bytes.into()) }.map_err(|e| {
                Error::Store {
                    path: self.chunk_path(&indices),
                    message: format!("writing chunk {indices:?}: {}", one_line(&e)),
                }
            })?;
        }
        Ok(true)
    }

    /// Waits until every chunk written so far is synced and in place.
    ///
    /// # Errors
    /// [`Error::Store`] if a chunk could not be synced or renamed (its temporary file
    /// is removed; the chunk is absent and a rerun writes it).
    pub fn flush(&self) -> Result<()> {
        if let Some(shards) = &self.shards
            && shards.unfinished() > 0
        {
            return Err(Error::Store {
                path: self.path.clone(),
                message: format!(
                    "{} shards were begun but not every chunk of them was written (a shard is written whole, by one job group)",
                    shards.unfinished()
                ),
            });
        }
        self.array.storage().flush().map_err(|e| Error::Store {
            path: self.path.clone(),
            message: format!("committing a chunk: {e}"),
        })
    }

    /// Whether the chunk at grid index `chunk` is stored (every written chunk is, even
    /// one equal to the fill value, so this means "written"). A chunk this output is
    /// still committing in the background counts once [`Output::flush`] returns. On an
    /// object store, stored means listed when the output was opened, or written by it
    /// since (one listing instead of a request per chunk).
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
        // A sharded output stores a chunk with the rest of its shard.
        let stored: Vec<u64> = match &self.shards {
            Some(shards) => {
                let chunk: Vec<usize> = chunk.iter().map(|&i| i as usize).collect();
                shards.shard_of(&chunk).iter().map(|&i| i as u64).collect()
            }
            None => chunk.to_vec(),
        };
        let key = self.array.chunk_key(&stored);
        self.array.storage().holds(&key).map_err(|e| Error::Store {
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
        if self.array.storage().local().is_none() {
            // PUTs leave no temporaries.
            return Ok(0);
        }
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
        self.grid.chunks_touching(&region.sets())
    }
}

impl Sink for Output {
    fn write(&self, region: &Region, block: &BlockAny<'_>) -> Result<()> {
        Output::write(self, region, block)
    }

    fn region_done(&self, region: &Region) -> Result<bool> {
        Output::region_done(self, region)
    }

    fn flush(&self) -> Result<()> {
        Output::flush(self)
    }

    fn write_unit(&self) -> Option<Vec<usize>> {
        self.spec.shard.clone()
    }
}
