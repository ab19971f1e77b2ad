//! Whether a run's output is complete: every chunk (shard) of an array, or of every
//! level of an OME-Zarr image, is stored. The check a pipeline runs before its next
//! step (`haloflow verify`, after an array job with `--dependency=afterok`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::input::Input;
use super::ome::OmeImage;
use crate::error::Result;
use crate::region::unravel;

/// Missing chunks listed at most, per array.
const LISTED: usize = 100;

/// The completion of one array: one job per stored chunk (per shard, if sharded), as
/// haloflow's runs plan them.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Completion {
    /// The array's directory.
    pub path: PathBuf,
    /// The unit a job writes: the chunk shape, or the shard shape.
    pub unit: Vec<usize>,
    /// Jobs (stored chunks or shards) in the array.
    pub jobs_total: usize,
    /// Jobs whose chunk (shard) is stored.
    pub jobs_done: usize,
    /// The storage keys of the first missing chunks (shards), C order, at most 100.
    pub missing: Vec<String>,
    /// Whether the array records a haloflow run (its `haloflow` attribute). Other
    /// writers may leave chunks equal to the fill value unstored: for them "missing"
    /// does not mean "not written".
    pub written_by_haloflow: bool,
}

impl Completion {
    /// Whether every job is done.
    pub fn complete(&self) -> bool {
        self.jobs_done == self.jobs_total
    }
}

/// The completion of the array at `path`, or of each level of the OME-Zarr image there.
///
/// # Errors
/// As [`Input::open`] for an array that cannot be opened (missing, not Zarr);
/// [`Error::Store`](crate::Error::Store) for I/O errors.
pub fn verify(path: &Path) -> Result<Vec<Completion>> {
    let arrays = match OmeImage::open(path)? {
        Some(image) => (0..image.levels.len())
            .map(|n| image.level_path(n))
            .collect::<Result<Vec<_>>>()?,
        None => vec![path.to_path_buf()],
    };
    arrays.iter().map(|a| completion(a)).collect()
}

fn completion(path: &Path) -> Result<Completion> {
    let input = Input::open(path)?;
    let stored = input.stored_chunks()?;
    let grid = input.grid();
    let jobs_total = grid.num_chunks();
    // The first missing chunks in C order: at most LISTED steps past the stored ones.
    let shape = grid.grid_shape();
    let mut missing = Vec::new();
    let mut next = stored.iter().peekable();
    for i in 0..jobs_total as u64 {
        if missing.len() == LISTED {
            break;
        }
        if next.peek() == Some(&&i) {
            next.next();
            continue;
        }
        let index: Vec<u64> = unravel(i as usize, &shape)
            .into_iter()
            .map(|n| n as u64)
            .collect();
        missing.push(input.chunk_key(&index));
    }
    Ok(Completion {
        path: path.to_path_buf(),
        unit: input.chunk_shape(),
        jobs_total,
        jobs_done: stored.len(),
        missing,
        written_by_haloflow: input.attributes().contains_key("haloflow"),
    })
}
