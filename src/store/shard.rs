//! Sharded outputs (Zarr v3 `sharding_indexed`): the inner chunks of a shard are
//! encoded as their jobs finish and appended to the shard's temporary file in C order
//! (a chunk that finishes before its predecessors waits for them in memory; jobs run in
//! C order, so only a few do); once the shard has all of them, its index is appended
//! and the file is synced and renamed into place, like a chunk. The layout depends only
//! on the values, so a resumed or split run writes the same bytes as one run.
//!
//! A shard is therefore one write by one process: "the shard file exists" means every
//! inner chunk of it was computed, which is what resume and `verify` rely on. Inner
//! chunks equal to the fill value (all bytes zero) are marked empty in the index, as
//! zarr-python and zarrs do; the shard file is written even when every inner chunk is
//! empty (then it holds only the index).
//!
//! The layout (Zarr v3 spec, sharding codec): the encoded inner chunks in C order,
//! then the index at the end: per inner chunk, in C order,
//! `(offset, nbytes)` as little-endian u64 (both `u64::MAX` for an empty chunk),
//! followed by the CRC-32C of the index, little-endian.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::metadata::Compression;

/// A shard file being written: a new temporary file, its path, and its final path.
pub(super) type ShardFile = (File, PathBuf, PathBuf);

/// What a sharded output's writer knows: the shard and inner chunk shapes, and the
/// shards in progress.
#[derive(Debug)]
pub(super) struct Shards {
    /// The array's shape.
    shape: Vec<usize>,
    /// The shard shape (the chunk grid of the array's metadata).
    shard: Vec<usize>,
    /// The inner chunk shape.
    inner: Vec<usize>,
    /// Inner chunks per shard, per axis.
    per_shard: Vec<usize>,
    compression: Compression,
    /// Shards with some of their inner chunks written, by shard grid index.
    pending: Mutex<HashMap<Vec<usize>, Arc<Mutex<Pending>>>>,
}

#[derive(Debug)]
struct Pending {
    file: Option<ShardFile>,
    /// Bytes written to the file so far.
    offset: u64,
    /// Per inner chunk (C order within the shard): `(offset, nbytes)`, `u64::MAX` twice
    /// while absent or empty.
    index: Vec<(u64, u64)>,
    /// The next inner chunk (slot) to append.
    next: usize,
    /// Bytes handed to the kernel's write-back so far (see [`start_write_back`]).
    flushed: u64,
    /// Chunks in before their predecessors, by slot: encoded, or empty (`None`).
    waiting: BTreeMap<usize, Option<Vec<u8>>>,
}

thread_local! {
    /// One zstd context per thread and level, reused chunk after chunk.
    static ZSTD: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shards {
    /// A writer of shards `shard` made of inner chunks `inner` (each shard extent a
    /// whole number of inner chunks; checked by the spec).
    pub(super) fn new(
        shape: &[usize],
        shard: &[usize],
        inner: &[usize],
        compression: Compression,
    ) -> Self {
        Shards {
            shape: shape.to_vec(),
            shard: shard.to_vec(),
            inner: inner.to_vec(),
            per_shard: shard.iter().zip(inner).map(|(s, c)| s / c).collect(),
            compression,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// The grid index of the shard holding inner chunk `chunk`.
    pub(super) fn shard_of(&self, chunk: &[usize]) -> Vec<usize> {
        chunk
            .iter()
            .zip(&self.per_shard)
            .map(|(c, p)| c / p)
            .collect()
    }

    /// Whether inner chunk `slot` (C order) of shard `shard` holds part of the array
    /// (the others, past its edge, are only padding, never written).
    fn inside(&self, shard: &[usize], slot: usize) -> bool {
        let within = crate::region::unravel(slot, &self.per_shard);
        (0..self.shape.len())
            .all(|a| shard[a] * self.shard[a] + within[a] * self.inner[a] < self.shape[a])
    }

    /// Encodes inner chunk `chunk` (its raw little-endian bytes, padded to the full
    /// inner chunk shape) and appends it to its shard's file, which `begin` creates for
    /// the shard's first chunk; returns the shard's grid index and file, index written,
    /// once every inner chunk of it is in.
    pub(super) fn add(
        &self,
        chunk: &[usize],
        raw: &[u8],
        begin: impl FnOnce(&[usize]) -> io::Result<ShardFile>,
    ) -> io::Result<Option<(Vec<usize>, ShardFile)>> {
        let encoded = if raw.iter().all(|&b| b == 0) {
            None
        } else {
            Some(self.encode(raw)?)
        };
        let shard = self.shard_of(chunk);
        let slot = chunk
            .iter()
            .zip(&shard)
            .zip(&self.per_shard)
            .fold(0, |flat, ((&c, &s), &n)| flat * n + (c - s * n));
        let entry = {
            let mut pending = lock(&self.pending);
            match pending.get(&shard) {
                Some(e) => Arc::clone(e),
                None => {
                    let slots = self.per_shard.iter().product();
                    let e = Arc::new(Mutex::new(Pending {
                        file: Some(begin(&shard)?),
                        offset: 0,
                        index: vec![(u64::MAX, u64::MAX); slots],
                        next: 0,
                        flushed: 0,
                        waiting: BTreeMap::new(),
                    }));
                    pending.insert(shard.clone(), Arc::clone(&e));
                    e
                }
            }
        };
        let mut guard = lock(&entry);
        let p = &mut *guard;
        p.waiting.insert(slot, encoded);
        let slots = p.index.len();
        while p.next < slots {
            if !self.inside(&shard, p.next) {
                p.next += 1;
                continue;
            }
            let Some(encoded) = p.waiting.remove(&p.next) else {
                break;
            };
            if let Some(bytes) = encoded {
                let (file, _, _) = p.file.as_mut().expect("open until complete");
                file.write_all(&bytes)?;
                p.index[p.next] = (p.offset, bytes.len() as u64);
                p.offset += bytes.len() as u64;
            }
            p.next += 1;
        }
        if p.offset - p.flushed >= WRITE_BACK_STEP {
            let (file, _, _) = p.file.as_ref().expect("open until complete");
            start_write_back(file, p.flushed, p.offset - p.flushed);
            p.flushed = p.offset;
        }
        if p.next < slots {
            return Ok(None);
        }
        let mut index = Vec::with_capacity(p.index.len() * 16 + 4);
        for &(offset, n) in &p.index {
            index.extend_from_slice(&offset.to_le_bytes());
            index.extend_from_slice(&n.to_le_bytes());
        }
        let crc = crc32c::crc32c(&index);
        index.extend_from_slice(&crc.to_le_bytes());
        let (mut file, temp, target) = p.file.take().expect("open until complete");
        drop(guard);
        lock(&self.pending).remove(&shard);
        file.write_all(&index)?;
        Ok(Some((shard, (file, temp, target))))
    }

    /// Shards begun and not finished.
    pub(super) fn unfinished(&self) -> usize {
        lock(&self.pending).len()
    }

    /// The inner chunks' codecs: bytes, then zstd unless uncompressed.
    fn encode(&self, raw: &[u8]) -> io::Result<Vec<u8>> {
        let Compression::Zstd { level } = self.compression else {
            return Ok(raw.to_vec());
        };
        ZSTD.with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.as_ref().is_none_or(|(l, _)| *l != level) {
                // As zarrs' zstd codec: no checksum.
                let mut c = zstd::bulk::Compressor::new(level)?;
                c.include_checksum(false)?;
                *cell = Some((level, c));
            }
            cell.as_mut().expect("set").1.compress(raw)
        })
    }
}

/// Bytes appended to a shard file between two calls of [`start_write_back`].
const WRITE_BACK_STEP: u64 = 16 << 20;

/// Starts writing `len` bytes of `file` from `offset` to disk without waiting, so that
/// the fsync of a large shard at its end has little left to do (a chunk file is synced
/// as soon as it is written; a shard only once complete).
fn start_write_back(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; the call only schedules write-back, and
        // its failure changes nothing (the final fsync still makes the file durable).
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

impl Drop for Shards {
    /// Removes the temporary files of shards never finished (a failed run): their
    /// shards are absent, and a rerun writes them.
    fn drop(&mut self) {
        for (_, entry) in lock(&self.pending).drain() {
            if let Some((file, temp, _)) = lock(&entry).file.take() {
                drop(file);
                let _ = std::fs::remove_file(temp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_file_is_complete_once_its_chunks_inside_the_array_are_in() {
        let dir = std::env::temp_dir().join(format!("haloflow-shard-{}", std::process::id()));
        // A directory left by a crashed run of the same pid must not decide.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let begin = |shard: &[usize]| {
            let temp = dir.join(format!("{shard:?}.tmp"));
            Ok((File::create_new(&temp)?, temp, dir.join("final")))
        };
        // A 5 x 3 array, shards 4 x 4 of inner chunks 2 x 2: shard (1, 0) holds one
        // row of the array, so only its inner chunks (2, 0) and (2, 1) are inside.
        let shards = Shards::new(&[5, 3], &[4, 4], &[2, 2], Compression::None);
        assert!((0..4).all(|slot| shards.inside(&[0, 0], slot)));
        assert_eq!(
            (0..4)
                .map(|slot| shards.inside(&[1, 0], slot))
                .collect::<Vec<_>>(),
            [true, true, false, false]
        );
        assert!(shards.add(&[2, 1], &[7; 4], begin).unwrap().is_none());
        assert_eq!(shards.unfinished(), 1);
        let (index, (file, temp, _)) = shards.add(&[2, 0], &[0; 4], begin).unwrap().unwrap();
        assert_eq!(index, vec![1, 0]);
        assert_eq!(shards.unfinished(), 0);
        drop(file);
        let bytes = std::fs::read(&temp).unwrap();
        // Data: chunk (2, 1), the shard's second slot, raw; then the index: slot 0
        // (chunk (2, 0), all zero) empty, slot 1 at 0 (4 bytes), slots 2 and 3 (past
        // the array's edge) empty.
        assert_eq!(&bytes[..4], &[7; 4]);
        let entry = |i: usize| {
            let at = 4 + 16 * i;
            (
                u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()),
                u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()),
            )
        };
        assert_eq!(entry(1), (0, 4));
        for i in [0, 2, 3] {
            assert_eq!(entry(i), (u64::MAX, u64::MAX));
        }
        let crc = u32::from_le_bytes(bytes[4 + 64..].try_into().unwrap());
        assert_eq!(crc, crc32c::crc32c(&bytes[4..4 + 64]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dropping_the_writer_removes_unfinished_shard_files() {
        let dir = std::env::temp_dir().join(format!("haloflow-shard-drop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let temp = dir.join("s.tmp");
        let shards = Shards::new(&[4, 4], &[4, 4], &[2, 2], Compression::default());
        let begin = |_: &[usize]| Ok((File::create_new(&temp)?, temp.clone(), dir.join("final")));
        assert!(shards.add(&[0, 0], &[1; 16], begin).unwrap().is_none());
        assert!(temp.exists());
        drop(shards);
        assert!(!temp.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
