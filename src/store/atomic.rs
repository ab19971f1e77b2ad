//! Atomic, durable chunk writes: a zarrs store whose `set` writes a uniquely named
//! temporary file and hands it to the [`Committer`] to be synced and renamed into
//! place in the background.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zarrs::filesystem::FilesystemStore;
use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    Bytes, MaybeBytesIterator, OffsetBytesIterator, ReadableStorageTraits, StorageError, StoreKey,
    StorePrefix, WritableStorageTraits,
};

use super::commit::Committer;
use super::errors::store_error;
use super::files::{TEMP_DIR, unique_suffix};
use crate::error::Result;

/// A filesystem store whose writes are atomic and durable: a temporary file, synced and
/// renamed into place by a [`Committer`] in the background. Reads and erases go to
/// zarrs' [`FilesystemStore`], whose own writes truncate in place.
pub(super) struct AtomicStore {
    inner: FilesystemStore,
    temp_dir: PathBuf,
    pub(super) committer: Committer,
}

impl std::fmt::Debug for AtomicStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicStore")
            .field("temp_dir", &self.temp_dir)
            .finish_non_exhaustive()
    }
}

impl AtomicStore {
    pub(super) fn new(path: &Path) -> Result<Self> {
        Ok(AtomicStore {
            inner: FilesystemStore::new(path).map_err(|e| store_error(path, e))?,
            temp_dir: path.join(TEMP_DIR),
            committer: Committer::new(),
        })
    }
}

impl AtomicStore {
    /// A new temporary file for the value of `key` (created with its directory if need
    /// be), its path, and the path it is to be renamed to.
    pub(super) fn begin(
        &self,
        key: &StoreKey,
    ) -> std::io::Result<(std::fs::File, PathBuf, PathBuf)> {
        let temp = self.temp_dir.join(format!(
            "{}.{}.tmp",
            key.as_str().replace('/', "_"),
            unique_suffix()
        ));
        let file = match std::fs::File::create_new(&temp) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.temp_dir)?;
                std::fs::File::create_new(&temp)?
            }
            other => other?,
        };
        Ok((file, temp, self.inner.key_to_fspath(key)))
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
