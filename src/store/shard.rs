//! Sharded outputs (Zarr v3 `sharding_indexed`): the inner chunks of a shard are
//! encoded as their jobs finish, held in memory (compressed) until the shard has all of
//! them, then the shard file is assembled and written once, atomically, like a chunk.
//!
//! A shard is therefore one write by one process: "the shard file exists" means every
//! inner chunk of it was computed, which is what resume and `verify` rely on. Inner
//! chunks equal to the fill value (all bytes zero) are marked empty in the index, as
//! zarr-python and zarrs do; the shard file is written even when every inner chunk is
//! empty (then it holds only the index).
//!
//! The layout (Zarr v3 spec, sharding codec): the encoded inner chunks, concatenated in
//! C order, then the index at the end: per inner chunk `(offset, nbytes)` as
//! little-endian u64 (both `u64::MAX` for an empty chunk), followed by the CRC-32C of
//! the index, little-endian.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};

use super::metadata::Compression;

/// What a sharded output's writer knows: the shard and inner chunk shapes, and the
/// shards in progress.
#[derive(Debug)]
pub(super) struct Shards {
    /// The array's shape.
    shape: Vec<usize>,
    /// The shard shape (the chunk grid of the array's metadata).
    pub(super) shard: Vec<usize>,
    /// The inner chunk shape.
    inner: Vec<usize>,
    /// Inner chunks per shard, per axis.
    per_shard: Vec<usize>,
    compression: Compression,
    /// Shards with some of their inner chunks encoded, by shard grid index.
    pending: Mutex<HashMap<Vec<usize>, Pending>>,
}

#[derive(Debug)]
struct Pending {
    /// Per inner chunk (C order within the shard): not yet, empty (fill value), or its
    /// encoded bytes.
    chunks: Vec<Option<Option<Vec<u8>>>>,
    /// Inner chunks inside the array still missing.
    left: usize,
}

thread_local! {
    /// One zstd context per thread and level, reused chunk after chunk.
    static ZSTD: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
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

    /// Inner chunks of shard `shard` that hold part of the array (the others, past its
    /// edge, are only padding).
    fn inside(&self, shard: &[usize]) -> usize {
        (0..self.shape.len())
            .map(|a| {
                let start = shard[a] * self.shard[a];
                let extent = self.shard[a].min(self.shape[a] - start);
                extent.div_ceil(self.inner[a])
            })
            .product()
    }

    /// Encodes inner chunk `chunk` (its raw little-endian bytes, padded to the full
    /// inner chunk shape) into its shard; returns the shard's grid index and file
    /// contents once every inner chunk of it is in.
    pub(super) fn add(
        &self,
        chunk: &[usize],
        raw: &[u8],
    ) -> std::io::Result<Option<(Vec<usize>, Vec<u8>)>> {
        let encoded = if raw.iter().all(|&b| b == 0) {
            None
        } else {
            Some(self.encode(raw)?)
        };
        let shard = self.shard_of(chunk);
        let within: Vec<usize> = chunk
            .iter()
            .zip(&shard)
            .zip(&self.per_shard)
            .map(|((c, s), p)| c - s * p)
            .collect();
        let slot = within
            .iter()
            .zip(&self.per_shard)
            .fold(0, |flat, (&i, &n)| flat * n + i);
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = pending.entry(shard.clone()).or_insert_with(|| Pending {
            chunks: vec![None; self.per_shard.iter().product()],
            left: self.inside(&shard),
        });
        if entry.chunks[slot].replace(encoded).is_none() {
            entry.left -= 1;
        }
        if entry.left > 0 {
            return Ok(None);
        }
        let done = pending.remove(&shard).expect("present");
        drop(pending);
        Ok(Some((shard, assemble(done.chunks))))
    }

    /// Shards begun and not finished (their chunks are dropped with the writer).
    pub(super) fn unfinished(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The inner chunks' codecs: bytes, then zstd unless uncompressed.
    fn encode(&self, raw: &[u8]) -> std::io::Result<Vec<u8>> {
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

    /// The inner chunk grid positions of a shard, C order (for tests and `verify`).
    #[cfg(test)]
    fn slots(&self) -> Vec<Vec<usize>> {
        (0..self.per_shard.iter().product())
            .map(|i| crate::region::unravel(i, &self.per_shard))
            .collect()
    }
}

/// The shard file: the chunks, then the index and its CRC-32C.
fn assemble(chunks: Vec<Option<Option<Vec<u8>>>>) -> Vec<u8> {
    let data: usize = chunks.iter().flatten().flatten().map(Vec::len).sum();
    let mut out = Vec::with_capacity(data + chunks.len() * 16 + 4);
    let mut index = Vec::with_capacity(chunks.len() * 16);
    for chunk in chunks {
        match chunk.flatten() {
            Some(bytes) => {
                index.extend_from_slice(&(out.len() as u64).to_le_bytes());
                index.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                out.extend_from_slice(&bytes);
            }
            None => {
                index.extend_from_slice(&u64::MAX.to_le_bytes());
                index.extend_from_slice(&u64::MAX.to_le_bytes());
            }
        }
    }
    let crc = crc32c::crc32c(&index);
    out.extend_from_slice(&index);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The `codecs` of a sharded array's metadata: `sharding_indexed` with inner chunks
/// `inner` through `inner_codecs`, the index at the end with a CRC-32C.
pub(super) fn sharding_codecs(inner: &[usize], inner_codecs: Vec<Value>) -> Vec<Value> {
    vec![json!({
        "name": "sharding_indexed",
        "configuration": {
            "chunk_shape": inner,
            "codecs": inner_codecs,
            "index_codecs": [
                {"name": "bytes", "configuration": {"endian": "little"}},
                {"name": "crc32c"}
            ],
            "index_location": "end"
        }
    })]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_is_assembled_once_its_chunks_inside_the_array_are_in() {
        // A 5 x 3 array, shards 4 x 4 of inner chunks 2 x 2: shard (1, 0) holds one
        // row of the array, so only its inner chunks (0, 0) and (0, 1) are inside.
        let shards = Shards::new(&[5, 3], &[4, 4], &[2, 2], Compression::None);
        assert_eq!(shards.slots().len(), 4);
        assert_eq!(shards.inside(&[0, 0]), 4);
        assert_eq!(shards.inside(&[1, 0]), 2);
        assert!(shards.add(&[2, 0], &[1; 4]).unwrap().is_none());
        assert_eq!(shards.unfinished(), 1);
        let (index, file) = shards.add(&[2, 1], &[0; 4]).unwrap().unwrap();
        assert_eq!(index, vec![1, 0]);
        assert_eq!(shards.unfinished(), 0);
        // Data: chunk (2, 0) raw; index: it at 0 (4 bytes), then three empty entries.
        assert_eq!(&file[..4], &[1; 4]);
        let entry = |i: usize| {
            let at = 4 + 16 * i;
            (
                u64::from_le_bytes(file[at..at + 8].try_into().unwrap()),
                u64::from_le_bytes(file[at + 8..at + 16].try_into().unwrap()),
            )
        };
        assert_eq!(entry(0), (0, 4));
        for i in 1..4 {
            assert_eq!(entry(i), (u64::MAX, u64::MAX));
        }
        let crc = u32::from_le_bytes(file[4 + 64..].try_into().unwrap());
        assert_eq!(crc, crc32c::crc32c(&file[4..4 + 64]));
    }
}
