//! Object stores: Zarr arrays at `s3://bucket/prefix` (read and write) and at
//! `http://` or `https://` URLs (read-only), through the `object_store` crate and zarrs'
//! adapter for it, driven from haloflow's threads by one small tokio runtime.
//!
//! - **Where a path is accepted, a URL is.** A URL travels through haloflow as a
//!   [`Path`] (`s3://b/img.zarr` joined with `0` is `s3://b/img.zarr/0`);
//!   [`RemoteStore::open`] tells the two apart.
//! - **Credentials and region** come from the standard AWS sources: the environment
//!   (`AWS_ACCESS_KEY_ID`, `AWS_REGION`, …), the shared files `~/.aws/credentials` and
//!   `~/.aws/config` (profile `AWS_PROFILE`, else `default`), then the container or
//!   instance metadata service. `AWS_ENDPOINT_URL` names an S3-compatible server; an
//!   `http://` endpoint is allowed when that variable names one.
//! - **Writes** are PUTs, atomic in S3: a chunk is absent or whole, never torn. They
//!   go in the background, at most `--io-concurrency` in flight, so the compute threads
//!   do not wait on the network; [`RemoteStore::flush`] waits for them and reports the
//!   first failure. Reads of whole chunks are fetched ahead
//!   ([`RemoteStore::prefetch`]); partial reads (a shard's index, then its inner
//!   chunks) are ranged GETs.
//! - **Retries**: throttling (429, 503 SlowDown), other 5xx answers and dropped
//!   connections are retried with exponential backoff by `object_store` (up to 10
//!   times within 3 minutes); what is left is an error naming the URL.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator};
use zarrs::storage::storage_adapter::async_to_sync::{
    AsyncToSyncBlockOn, AsyncToSyncStorageAdapter,
};
use zarrs::storage::{
    Bytes, ListableStorageTraits, MaybeBytes, MaybeBytesIterator, OffsetBytesIterator,
    ReadableStorageTraits, StorageError, StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix,
    WritableStorageTraits,
};
use zarrs_object_store::AsyncObjectStore;

use crate::error::{Error, Result};

mod client;
mod traffic;

use client::{Client, client, explain};
use traffic::count;
pub(crate) use traffic::io_concurrency;
pub use traffic::{DEFAULT_IO_CONCURRENCY, Traffic, set_io_concurrency, traffic};

/// Whether `path` is a URL haloflow reads through an object store (`s3://`, `http://`,
/// `https://`) rather than a local path.
pub fn is_url(path: &Path) -> bool {
    path.to_str().is_some_and(|s| scheme(s).is_some())
}

fn scheme(s: &str) -> Option<&'static str> {
    ["s3://", "http://", "https://"]
        .into_iter()
        .find(|p| s.starts_with(p))
}

/// The one runtime that runs every request; haloflow's own threads wait on it.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("haloflow-io")
            .enable_all()
            .build()
            .expect("the I/O runtime starts")
    })
}

/// Runs `future` on the I/O runtime and waits for it (from a thread outside it).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

struct Tokio;

impl AsyncToSyncBlockOn for Tokio {
    fn block_on<F: core::future::Future>(&self, future: F) -> F::Output {
        block_on(future)
    }
}

type Adapter = AsyncToSyncStorageAdapter<AsyncObjectStore<PrefixStore<Client>>, Tokio>;

/// A Zarr node (array or group) in an object store: the zarrs storage traits over the
/// keys below its URL, with writes in the background and reads fetched ahead.
pub struct RemoteStore {
    url: String,
    writable: bool,
    objects: Arc<PrefixStore<Client>>,
    adapter: Adapter,
    /// Permits for PUTs in flight.
    puts: Arc<Semaphore>,
    put_limit: u32,
    /// The first PUT that failed, as a message naming its URL.
    failed: Arc<Mutex<Option<String>>>,
    /// Whole-object GETs begun ahead of their reader, by key.
    ahead: Arc<Mutex<HashMap<String, Ahead>>>,
}

/// A GET begun ahead: its result, and the permit that bounds how many wait unread.
struct Ahead {
    fetch: JoinHandle<std::result::Result<Option<Bytes>, String>>,
    _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RemoteStore {
    /// The store of the node at `path` if `path` is a URL (`None` for a local path).
    ///
    /// # Errors
    /// [`Error::Store`] for a URL that names no bucket or host, or a client that cannot
    /// be configured.
    pub fn open(path: &Path) -> Result<Option<Arc<RemoteStore>>> {
        let Some(url) = path.to_str() else {
            return Ok(None);
        };
        let Some(scheme) = scheme(url) else {
            return Ok(None);
        };
        let url = url.trim_end_matches('/').to_string();
        let rest = &url[scheme.len()..];
        let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(Error::Store {
                path: path.to_path_buf(),
                message: "the URL names no bucket or host".into(),
            });
        }
        let client = client(&format!("{scheme}{authority}"))?;
        let objects = Arc::new(PrefixStore::new(client.clone(), ObjectPath::from(prefix)));
        let adapter = AsyncToSyncStorageAdapter::new(
            Arc::new(AsyncObjectStore::new(PrefixStore::new(
                client,
                ObjectPath::from(prefix),
            ))),
            Tokio,
        );
        let limit = io_concurrency().clamp(1, 4096) as u32;
        Ok(Some(Arc::new(RemoteStore {
            writable: scheme == "s3://",
            url,
            objects,
            adapter,
            puts: Arc::new(Semaphore::new(limit as usize)),
            put_limit: limit,
            failed: Arc::default(),
            ahead: Arc::default(),
        })))
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether haloflow may write here (`s3://`; HTTP is read-only).
    pub fn writable(&self) -> bool {
        self.writable
    }

    fn key_url(&self, key: &str) -> PathBuf {
        if key.is_empty() {
            PathBuf::from(&self.url)
        } else {
            PathBuf::from(format!("{}/{key}", self.url))
        }
    }

    fn error(&self, key: &str, e: &dyn std::fmt::Display) -> Error {
        Error::Store {
            path: self.key_url(key),
            message: explain(e),
        }
    }

    /// The object `key` (below this node), or `None` if there is none.
    ///
    /// # Errors
    /// [`Error::Store`] naming the URL for anything but an absent object (a missing
    /// bucket, refused credentials, an unreachable server).
    pub fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let got = block_on(fetch(self.objects.clone(), ObjectPath::from(key)))
            .map_err(|e| self.error(key, &e))?;
        Ok(got.map(|b| b.to_vec()))
    }

    /// Stores `bytes` as the object `key` now (one PUT: the object is whole or absent).
    ///
    /// # Errors
    /// [`Error::Store`] naming the URL.
    pub fn write_now(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.check_writable()?;
        count(1, 0, bytes.len() as u64);
        let objects = self.objects.clone();
        let path = ObjectPath::from(key);
        block_on(async move { objects.put(&path, PutPayload::from(bytes)).await })
            .map(|_| ())
            .map_err(|e| self.error(key, &e))
    }

    /// Stores `bytes` as the object `key` unless one is there (a conditional PUT,
    /// `If-None-Match: *`; a store without conditional writes takes a plain PUT).
    /// Returns `false` if another writer stored it first.
    ///
    /// # Errors
    /// [`Error::Store`] naming the URL.
    pub fn write_new(&self, key: &str, bytes: Vec<u8>) -> Result<bool> {
        self.check_writable()?;
        count(1, 0, bytes.len() as u64);
        let objects = self.objects.clone();
        let path = ObjectPath::from(key);
        let payload = PutPayload::from(bytes);
        let put = block_on(async move {
            let create = PutOptions::from(PutMode::Create);
            match objects.put_opts(&path, payload.clone(), create).await {
                Err(object_store::Error::NotImplemented { .. }) => {
                    objects.put(&path, payload).await.map(|_| true)
                }
                Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                other => other.map(|_| true),
            }
        });
        put.map_err(|e| self.error(key, &e))
    }

    /// Whether any object lies below this node (it is not free for a new array).
    ///
    /// # Errors
    /// [`Error::Store`] naming the URL (a missing bucket, refused credentials).
    pub fn holds_anything(&self) -> Result<bool> {
        if !self.writable {
            // HTTP servers do not list.
            return Ok(false);
        }
        count(1, 0, 0);
        let objects = self.objects.clone();
        block_on(async move {
            let mut listing = objects.list(None);
            listing.next().await.transpose()
        })
        .map(|first| first.is_some())
        .map_err(|e| self.error("", &e))
    }

    /// Removes every object below this node.
    ///
    /// # Errors
    /// [`Error::Store`] naming the URL.
    pub fn erase_all(&self) -> Result<()> {
        self.check_writable()?;
        self.adapter
            .erase_prefix(&StorePrefix::root())
            .map_err(|e| self.error("", &e))
    }

    fn check_writable(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::Store {
                path: PathBuf::from(&self.url),
                message: "HTTP URLs are read-only; write to a local path or s3://".into(),
            })
        }
    }

    /// Begins GETs of the objects `keys`, in order, at most `ahead` fetched and not yet
    /// read at a time (and the requests in flight within `--io-concurrency`): a later
    /// [`ReadableStorageTraits::get`] of one of them takes its bytes. A key read twice
    /// is fetched again the second time.
    pub fn prefetch(&self, keys: Vec<String>, ahead: usize) {
        if keys.is_empty() || ahead == 0 {
            return;
        }
        let waiting = Arc::new(Semaphore::new(ahead));
        let in_flight = Arc::new(Semaphore::new(io_concurrency()));
        // The fetcher stops once the store is dropped (its unread fetches with it).
        let (objects, map) = (self.objects.clone(), Arc::downgrade(&self.ahead));
        runtime().spawn(async move {
            for key in keys {
                let Ok(permit) = waiting.clone().acquire_owned().await else {
                    return;
                };
                let Ok(slot) = in_flight.clone().acquire_owned().await else {
                    return;
                };
                let objects = objects.clone();
                let path = ObjectPath::from(key.as_str());
                let fetch = tokio::spawn(async move {
                    let got = fetch(objects, path).await;
                    drop(slot);
                    got.map_err(|e| explain(&e))
                });
                let Some(map) = map.upgrade() else {
                    return;
                };
                map.lock().expect("not poisoned").insert(
                    key,
                    Ahead {
                        fetch,
                        _permit: permit,
                    },
                );
            }
        });
    }

    /// Uploads the local file `temp` as the object `key` in the background (a multipart
    /// upload for a large one, in parts of 16 MiB: the object appears whole when the
    /// upload completes, never torn), then removes the file. At most `--io-concurrency`
    /// PUTs and uploads are in flight; [`RemoteStore::flush`] waits for them.
    ///
    /// # Errors
    /// [`Error::Store`] naming the URL of an earlier PUT that failed.
    pub fn upload(&self, key: &str, temp: PathBuf) -> Result<()> {
        self.check_writable()?;
        self.check_failed()?;
        let store: Arc<dyn ObjectStore> = self.objects.clone();
        let path = ObjectPath::from(key);
        self.behind(key, async move {
            let sent = async {
                let mut file = tokio::fs::File::open(&temp).await?;
                let size = file.metadata().await?.len();
                let mut writer =
                    object_store::buffered::BufWriter::with_capacity(store, path, 16 << 20);
                tokio::io::copy(&mut file, &mut writer).await?;
                writer.shutdown().await?;
                count(1 + size / (16 << 20), 0, size);
                std::io::Result::Ok(())
            }
            .await;
            let _ = tokio::fs::remove_file(&temp).await;
            sent.map_err(|e| explain(&e))
        });
        Ok(())
    }

    /// Runs the write `work` of the object `key` in the background, once one of the
    /// `--io-concurrency` permits is free (this thread waits for it); its failure,
    /// named by the object's URL, is what the next write or [`RemoteStore::flush`]
    /// reports.
    fn behind(
        &self,
        key: &str,
        work: impl std::future::Future<Output = std::result::Result<(), String>> + Send + 'static,
    ) {
        let permit =
            block_on(self.puts.clone().acquire_owned()).expect("the semaphore is never closed");
        let failed = self.failed.clone();
        let url = self.key_url(key);
        runtime().spawn(async move {
            if let Err(message) = work.await {
                failed
                    .lock()
                    .expect("not poisoned")
                    .get_or_insert_with(|| format!("{}: {message}", url.display()));
            }
            drop(permit);
        });
    }

    /// The result of the GET of `key` begun ahead, if one was (it is then forgotten: a
    /// second read fetches again).
    fn take_ahead(&self, key: &StoreKey) -> Option<std::result::Result<MaybeBytes, StorageError>> {
        let ahead = self
            .ahead
            .lock()
            .expect("not poisoned")
            .remove(key.as_str())?;
        Some(match block_on(ahead.fetch) {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(message)) => Err(StorageError::Other(format!("{}: {message}", self.url))),
            Err(e) => Err(StorageError::Other(e.to_string())),
        })
    }

    /// Waits until every PUT begun is done.
    ///
    /// # Errors
    /// [`Error::Store`] naming the URL of the first PUT that failed (its object is
    /// absent: a rerun writes it).
    pub fn flush(&self) -> Result<()> {
        let all = block_on(self.puts.clone().acquire_many_owned(self.put_limit));
        drop(all);
        self.check_failed()
    }

    fn check_failed(&self) -> Result<()> {
        match self.failed.lock().expect("not poisoned").clone() {
            None => Ok(()),
            Some(message) => Err(Error::Store {
                path: PathBuf::from(&self.url),
                message,
            }),
        }
    }
}

/// The whole object at `path` (one GET without a range: plain HTTP servers serve no
/// ranges), or `None` if there is none.
async fn fetch(
    objects: Arc<PrefixStore<Client>>,
    path: ObjectPath,
) -> std::result::Result<Option<Bytes>, object_store::Error> {
    count(1, 0, 0);
    let got = match objects.get(&path).await {
        Ok(r) => r.bytes().await.map(Some),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    };
    if let Ok(Some(b)) = &got {
        count(0, b.len() as u64, 0);
    }
    got
}

impl ReadableStorageTraits for RemoteStore {
    fn get(&self, key: &StoreKey) -> std::result::Result<MaybeBytes, StorageError> {
        if let Some(fetched) = self.take_ahead(key) {
            return fetched;
        }
        block_on(fetch(self.objects.clone(), ObjectPath::from(key.as_str())))
            .map_err(|e| StorageError::Other(format!("{}: {}", self.url, explain(&e))))
    }

    /// Ranges of an object fetched ahead, or asked for whole (a partial decoder of an
    /// edge chunk), come from one whole GET; others are ranged GETs (a shard's index
    /// and inner chunks).
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> std::result::Result<MaybeBytesIterator<'a>, StorageError> {
        let ranges: Vec<ByteRange> = byte_ranges.collect();
        let whole = match self.take_ahead(key) {
            Some(fetched) => fetched?,
            None if ranges
                .iter()
                .all(|r| matches!(r, ByteRange::FromStart(0, None))) =>
            {
                self.get(key)?
            }
            None => {
                count(1, 0, 0);
                return self
                    .adapter
                    .get_partial_many(key, Box::new(ranges.into_iter()));
            }
        };
        Ok(whole.map(|bytes| {
            let size = bytes.len() as u64;
            let parts: Vec<std::result::Result<Bytes, StorageError>> = ranges
                .iter()
                .map(|r| {
                    if r.end(size) > size || r.start(size) > r.end(size) {
                        Err(StorageError::Other(format!(
                            "{}/{key}: byte range {r:?} outside the object of {size} bytes",
                            self.url
                        )))
                    } else {
                        Ok(bytes.slice(r.to_range_usize(size)))
                    }
                })
                .collect();
            Box::new(parts.into_iter()) as _
        }))
    }

    fn size_key(&self, key: &StoreKey) -> std::result::Result<Option<u64>, StorageError> {
        count(1, 0, 0);
        self.adapter.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        true
    }
}

impl WritableStorageTraits for RemoteStore {
    fn set(&self, key: &StoreKey, value: Bytes) -> std::result::Result<(), StorageError> {
        if !self.writable {
            return Err(StorageError::ReadOnly);
        }
        if let Some(message) = self.failed.lock().expect("not poisoned").clone() {
            return Err(StorageError::Other(message));
        }
        count(1, 0, value.len() as u64);
        let objects = self.objects.clone();
        let path = ObjectPath::from(key.as_str());
        self.behind(key.as_str(), async move {
            objects
                .put(&path, PutPayload::from(value))
                .await
                .map(|_| ())
                .map_err(|e| explain(&e))
        });
        Ok(())
    }

    fn set_partial_many(
        &self,
        key: &StoreKey,
        _offset_values: OffsetBytesIterator,
    ) -> std::result::Result<(), StorageError> {
        Err(StorageError::Unsupported(format!(
            "partial write of {key}: objects are written whole"
        )))
    }

    fn erase(&self, key: &StoreKey) -> std::result::Result<(), StorageError> {
        count(1, 0, 0);
        self.adapter.erase(key)
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> std::result::Result<(), StorageError> {
        count(1, 0, 0);
        self.adapter.erase_prefix(prefix)
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}

impl ListableStorageTraits for RemoteStore {
    fn list(&self) -> std::result::Result<StoreKeys, StorageError> {
        count(1, 0, 0);
        self.adapter.list()
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> std::result::Result<StoreKeys, StorageError> {
        count(1, 0, 0);
        self.adapter.list_prefix(prefix)
    }

    fn list_dir(
        &self,
        prefix: &StorePrefix,
    ) -> std::result::Result<StoreKeysPrefixes, StorageError> {
        count(1, 0, 0);
        self.adapter.list_dir(prefix)
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> std::result::Result<u64, StorageError> {
        count(1, 0, 0);
        self.adapter.size_prefix(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths() {
        assert!(is_url(Path::new("s3://bucket/a.zarr")));
        assert!(is_url(Path::new("https://host/a.zarr")));
        assert!(!is_url(Path::new("/data/s3://x")));
        assert!(!is_url(Path::new("a.zarr")));
        // Joining keeps a URL a URL, one level down.
        let level = Path::new("s3://bucket/img.ome.zarr").join("0");
        assert_eq!(level.to_str(), Some("s3://bucket/img.ome.zarr/0"));
    }
}
