//! The buffer pool: device buffers, readback buffers and mapped upload staging, reused
//! across jobs so that no job creates a buffer once the pool is warm.
//!
//! Policy:
//! - Buffers are pooled by usage and size class: the size rounded up to a power of two
//!   (at least 256 bytes, at most the device's largest buffer). A job asks for the
//!   bytes it needs and may get up to twice that; classes bound the number of distinct
//!   sizes, so that jobs of one plan (equal except at the array's edge) share buffers.
//! - Up to [`Pool::keep`] free buffers are kept per class (twice the jobs in flight,
//!   plus two); more are released to the device's allocator when returned.
//! - Upload staging (`MAP_WRITE | COPY_SRC`) is kept *mapped*: after the submission
//!   that reads it, its `map_async(Write)` is requested at once and the buffer returns
//!   to the pool pending; it is handed out again once the device has finished with it
//!   and the mapping has completed, so that a job gathers its input straight into
//!   staging memory (one host copy) without waiting. A new staging buffer is created
//!   mapped when no pooled one is ready.
//! - A readback buffer (`MAP_READ | COPY_DST`) is unmapped after the job has copied its
//!   results out, then pooled.
//! - A buffer dropped while a mapping is still pending (an abandoned job) is not
//!   pooled: the device's allocator takes it back once the device is done with it.
//!
//! Modelled on bevy's `render_resource/buffer_cache.rs`, with explicit size classes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// The usage of every device buffer, so that all share one size class list.
pub(super) const DEVICE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// A pooled buffer's key: usage bits and size class.
type Key = (u32, u64);

/// A staging buffer's mapping, as its `map_async` callback reports it.
const PENDING: u8 = 0;
const MAPPED: u8 = 1;
const FAILED: u8 = 2;

/// Free buffers, by usage and size class.
pub(super) struct Pool {
    free: Mutex<HashMap<Key, Vec<wgpu::Buffer>>>,
    /// Staging buffers, mapped or with their mapping pending, by size class.
    staging: Mutex<Vec<(u64, wgpu::Buffer, Arc<AtomicU8>)>>,
    keep: AtomicUsize,
    largest: u64,
}

impl Pool {
    /// A pool keeping up to `keep` free buffers per class, for a device whose largest
    /// buffer is `largest` bytes.
    pub(super) fn new(keep: usize, largest: u64) -> Pool {
        Pool {
            free: Mutex::default(),
            staging: Mutex::default(),
            keep: AtomicUsize::new(keep.max(1)),
            largest,
        }
    }

    /// The free buffers kept per class.
    fn keep(&self) -> usize {
        self.keep.load(Ordering::Relaxed)
    }

    /// Sets the free buffers kept per class (at least 1), from now on.
    pub(super) fn set_keep(&self, keep: usize) {
        self.keep.store(keep.max(1), Ordering::Relaxed);
    }

    fn class(&self, size: u64) -> u64 {
        size.max(256)
            .next_power_of_two()
            .min(self.largest.max(size))
    }

    /// A buffer of at least `size` bytes with `usage`, from the pool if one is free.
    pub(super) fn buffer(
        self: &Arc<Self>,
        device: &wgpu::Device,
        usage: wgpu::BufferUsages,
        size: u64,
    ) -> PooledBuffer {
        let key = (usage.bits(), self.class(size));
        let reused = lock(&self.free).get_mut(&key).and_then(Vec::pop);
        let buffer = reused.unwrap_or_else(|| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("haloflow"),
                size: key.1,
                usage,
                mapped_at_creation: false,
            })
        });
        PooledBuffer {
            buffer: Some(buffer),
            pending: false,
            mapped: false,
            key,
            pool: self.clone(),
        }
    }

    /// A staging buffer of at least `size` bytes, mapped for writing: a pooled one
    /// whose mapping has completed, else a new one.
    pub(super) fn staging(
        self: &Arc<Self>,
        device: &wgpu::Device,
        usage: wgpu::BufferUsages,
        size: u64,
    ) -> Staging {
        let class = self.class(size);
        let take = |list: &mut Vec<(u64, wgpu::Buffer, Arc<AtomicU8>)>| {
            list.retain(|(_, _, s)| s.load(Ordering::Acquire) != FAILED);
            let i = list
                .iter()
                .position(|(c, _, s)| *c == class && s.load(Ordering::Acquire) == MAPPED)?;
            Some(list.swap_remove(i).1)
        };
        let mut found = take(&mut lock(&self.staging));
        if found.is_none() && lock(&self.staging).iter().any(|(c, _, _)| *c == class) {
            // Mappings complete in a poll: give the callbacks a chance first.
            let _ = device.poll(wgpu::PollType::Poll);
            found = take(&mut lock(&self.staging));
        }
        let buffer = found.unwrap_or_else(|| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("haloflow staging"),
                size: class,
                usage,
                mapped_at_creation: true,
            })
        });
        Staging {
            buffer,
            class,
            pool: self.clone(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A buffer that returns to the pool when dropped, unless a mapping of it is pending.
pub(super) struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    /// Set while a `map_async` is outstanding.
    pending: bool,
    /// Set while the buffer is mapped.
    mapped: bool,
    key: Key,
    pool: Arc<Pool>,
}

impl PooledBuffer {
    /// The buffer.
    pub(super) fn get(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("present until dropped")
    }

    /// Requests a read mapping of the first `len` bytes; `done` is called with its
    /// outcome (from whichever thread polls the device).
    pub(super) fn map_read(
        &mut self,
        len: u64,
        done: impl FnOnce(Result<(), wgpu::BufferAsyncError>) + Send + 'static,
    ) {
        self.pending = true;
        self.get().slice(..len).map_async(wgpu::MapMode::Read, done);
    }

    /// Records that the mapping requested by [`PooledBuffer::map_read`] completed.
    pub(super) fn set_mapped(&mut self) {
        self.pending = false;
        self.mapped = true;
    }

    /// Reads the first `len` bytes of the mapped buffer with `f`, then unmaps it.
    pub(super) fn read_mapped<R>(&mut self, len: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let result = self
            .get()
            .slice(..len)
            .get_mapped_range()
            .map(|view| f(&view))
            .map_err(|e| Error::Gpu {
                message: format!("reading results back: {e}"),
            });
        self.get().unmap();
        self.mapped = false;
        result
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        let Some(buffer) = self.buffer.take() else {
            return;
        };
        if self.pending {
            return;
        }
        if self.mapped {
            buffer.unmap();
        }
        let mut free = lock(&self.pool.free);
        let list = free.entry(self.key).or_default();
        if list.len() < self.pool.keep() {
            list.push(buffer);
        }
    }
}

/// An upload staging buffer, mapped for writing until [`Staging::unmap`].
pub(super) struct Staging {
    buffer: wgpu::Buffer,
    class: u64,
    pool: Arc<Pool>,
}

impl Staging {
    /// The buffer.
    pub(super) fn get(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Writes the bytes `range` of the mapped buffer with `f`.
    pub(super) fn write(
        &self,
        range: std::ops::Range<u64>,
        f: impl FnOnce(wgpu::WriteOnly<'_, [u8]>),
    ) -> Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        let mut view = self
            .buffer
            .slice(range)
            .get_mapped_range_mut()
            .map_err(|e| Error::Gpu {
                message: format!("writing to staging memory: {e}"),
            })?;
        f(view.slice(..));
        Ok(())
    }

    /// Ends the writing: the device may now copy from the buffer.
    pub(super) fn unmap(&self) {
        self.buffer.unmap();
    }

    /// Returns the buffer to the pool once the submissions reading it are done:
    /// requests its mapping now, and the pool hands it out once mapped.
    pub(super) fn recycle(self) {
        let state = Arc::new(AtomicU8::new(PENDING));
        let signal = state.clone();
        self.buffer
            .slice(..)
            .map_async(wgpu::MapMode::Write, move |r| {
                signal.store(if r.is_ok() { MAPPED } else { FAILED }, Ordering::Release);
            });
        let mut list = lock(&self.pool.staging);
        if list.iter().filter(|(c, _, _)| *c == self.class).count() < self.pool.keep() {
            list.push((self.class, self.buffer, state));
        }
    }
}
