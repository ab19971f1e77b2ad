//! Atomic, durable chunk writes: a zarrs store whose `set` writes a uniquely named
//! temporary file and hands it to the [`Committer`] to be synced and renamed into
//! place in the background.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use zarrs::filesystem::FilesystemStore;
use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    Bytes, MaybeBytesIterator, OffsetBytesIterator, ReadableStorageTraits, StorageError, StoreKey,
    StorePrefix, WritableStorageTraits,
};

use super::commit::Committer;
use super::errors::store_error;
use super::files::{TEMP_DIR, unique_suffix};
use super::remote::RemoteStore;
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

/// A temporary file's name for the value of `key`, unique across processes and
/// threads.
fn temp_name(key: &StoreKey) -> String {
    format!("{}.{}.tmp", key.as_str().replace('/', "_"), unique_suffix())
}

impl AtomicStore {
    /// A new temporary file for the value of `key` (created with its directory if need
    /// be), its path, and the path it is to be renamed to.
    pub(super) fn begin(
        &self,
        key: &StoreKey,
    ) -> std::io::Result<(std::fs::File, PathBuf, PathBuf)> {
        let temp = self.temp_dir.join(temp_name(key));
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
        let temp = self.temp_dir.join(temp_name(key));
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

/// Where an output's chunks go: a directory (atomic, durable file writes) or an object
/// store (PUTs in the background, each atomic).
pub(super) enum ChunkStore {
    /// A directory on a filesystem.
    Local(Box<AtomicStore>),
    /// A prefix in an object store.
    Remote {
        /// The store.
        store: Arc<RemoteStore>,
        /// The keys stored: listed when the output was opened, and every PUT since.
        /// Object stores answer "is it there?" one request per key; a resumed run
        /// asks it of every chunk.
        stored: Mutex<HashSet<String>>,
    },
}

impl std::fmt::Debug for ChunkStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkStore::Local(s) => s.fmt(f),
            ChunkStore::Remote { store, .. } => store.fmt(f),
        }
    }
}

impl ChunkStore {
    /// The store of an output on an object store, with the keys stored there now.
    pub(super) fn remote(store: Arc<RemoteStore>) -> Result<Self> {
        use zarrs::storage::ListableStorageTraits;
        let keys = store
            .list()
            .map_err(|e| store_error(Path::new(store.url()), e))?;
        Ok(ChunkStore::Remote {
            store,
            stored: Mutex::new(keys.iter().map(|k| k.as_str().to_string()).collect()),
        })
    }

    /// The filesystem store, if the output is on one.
    pub(super) fn local(&self) -> Option<&AtomicStore> {
        match self {
            ChunkStore::Local(s) => Some(s),
            ChunkStore::Remote { .. } => None,
        }
    }

    /// Whether `key` is stored (on an object store: as far as this output knows, see
    /// [`ChunkStore::Remote`]).
    pub(super) fn holds(&self, key: &StoreKey) -> std::result::Result<bool, StorageError> {
        match self {
            ChunkStore::Local(s) => s.size_key(key).map(|size| size.is_some()),
            ChunkStore::Remote { stored, .. } => {
                Ok(stored.lock().expect("not poisoned").contains(key.as_str()))
            }
        }
    }

    /// A new temporary file for the value of `key` (a shard, written piece by piece),
    /// its path, and where it goes: a path on a filesystem, the key on an object store.
    pub(super) fn begin(
        &self,
        key: &StoreKey,
    ) -> std::io::Result<(std::fs::File, PathBuf, PathBuf)> {
        match self {
            ChunkStore::Local(s) => s.begin(key),
            ChunkStore::Remote { .. } => {
                // Assembled in the machine's temporary directory, then uploaded.
                let dir = std::env::temp_dir().join("haloflow-shards");
                std::fs::create_dir_all(&dir)?;
                let temp = dir.join(temp_name(key));
                let file = std::fs::File::create_new(&temp)?;
                Ok((file, temp, PathBuf::from(key.as_str())))
            }
        }
    }

    /// Stores the temporary file `temp` that [`ChunkStore::begin`] made for `target`:
    /// synced and renamed on a filesystem, uploaded to an object store (both in the
    /// background).
    pub(super) fn commit(
        &self,
        file: std::fs::File,
        temp: PathBuf,
        target: PathBuf,
    ) -> std::result::Result<(), String> {
        match self {
            ChunkStore::Local(s) => s
                .committer
                .commit_file(file, temp, target)
                .map_err(|e| e.to_string()),
            ChunkStore::Remote { store, stored } => {
                drop(file);
                let key = target.to_string_lossy().into_owned();
                store.upload(&key, temp).map_err(|e| e.to_string())?;
                stored.lock().expect("not poisoned").insert(key);
                Ok(())
            }
        }
    }

    /// Waits until every write so far is durable and visible.
    pub(super) fn flush(&self) -> std::result::Result<(), String> {
        match self {
            ChunkStore::Local(s) => s.committer.flush().map_err(|e| e.to_string()),
            ChunkStore::Remote { store, .. } => store.flush().map_err(|e| e.to_string()),
        }
    }
}

impl ReadableStorageTraits for ChunkStore {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> std::result::Result<MaybeBytesIterator<'a>, StorageError> {
        match self {
            ChunkStore::Local(s) => s.get_partial_many(key, byte_ranges),
            ChunkStore::Remote { store, .. } => store.get_partial_many(key, byte_ranges),
        }
    }

    fn size_key(&self, key: &StoreKey) -> std::result::Result<Option<u64>, StorageError> {
        match self {
            ChunkStore::Local(s) => s.size_key(key),
            ChunkStore::Remote { store, .. } => store.size_key(key),
        }
    }

    fn supports_get_partial(&self) -> bool {
        true
    }
}

impl WritableStorageTraits for ChunkStore {
    fn set(&self, key: &StoreKey, value: Bytes) -> std::result::Result<(), StorageError> {
        match self {
            ChunkStore::Local(s) => s.set(key, value),
            ChunkStore::Remote { store, stored } => {
                store.set(key, value)?;
                stored
                    .lock()
                    .expect("not poisoned")
                    .insert(key.as_str().to_string());
                Ok(())
            }
        }
    }

    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> std::result::Result<(), StorageError> {
        match self {
            ChunkStore::Local(s) => s.set_partial_many(key, offset_values),
            ChunkStore::Remote { store, .. } => store.set_partial_many(key, offset_values),
        }
    }

    fn erase(&self, key: &StoreKey) -> std::result::Result<(), StorageError> {
        match self {
            ChunkStore::Local(s) => s.erase(key),
            ChunkStore::Remote { store, stored } => {
                stored.lock().expect("not poisoned").remove(key.as_str());
                store.erase(key)
            }
        }
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> std::result::Result<(), StorageError> {
        match self {
            ChunkStore::Local(s) => s.erase_prefix(prefix),
            ChunkStore::Remote { store, stored } => {
                stored
                    .lock()
                    .expect("not poisoned")
                    .retain(|k| !k.starts_with(prefix.as_str()));
                store.erase_prefix(prefix)
            }
        }
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}
