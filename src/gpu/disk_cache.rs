//! Compiled pipelines kept on disk between runs (wgpu's pipeline cache, where the
//! driver offers one: Vulkan), so that a run's first jobs do not wait for the driver
//! to compile every kernel again.
//!
//! The cache lives in `HALOFLOW_CACHE_DIR` (`off` turns it off), else
//! `$XDG_CACHE_HOME/haloflow`, else `~/.cache/haloflow`, one file per adapter
//! (`wgpu::util::pipeline_cache_key`). It is read when a device opens, and written
//! (to a temporary, then renamed, so concurrent processes never see half a file) when
//! the context closes after compiling something new. It is only ever an optimisation:
//! a missing, stale or unwritable cache is ignored, and the driver checks the data it
//! is given.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// An open pipeline cache and the file it is saved to.
pub(super) struct DiskCache {
    cache: wgpu::PipelineCache,
    file: PathBuf,
    /// A pipeline was compiled since the cache was read.
    changed: AtomicBool,
}

/// The directory caches go to, if any.
fn directory() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("HALOFLOW_CACHE_DIR") {
        return (dir != "off").then(|| PathBuf::from(dir));
    }
    var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("haloflow"))
}

impl DiskCache {
    /// The device's pipeline cache, seeded from disk, where the device has the
    /// `PIPELINE_CACHE` feature and the adapter a cache key.
    pub(super) fn open(device: &wgpu::Device, info: &wgpu::AdapterInfo) -> Option<DiskCache> {
        if !device.features().contains(wgpu::Features::PIPELINE_CACHE) {
            return None;
        }
        let file = directory()?.join(wgpu::util::pipeline_cache_key(info)?);
        let data = std::fs::read(&file).ok();
        // SAFETY: the data is what a `PipelineCache::get_data` of this adapter wrote
        // (the file is named by the adapter's cache key, and written whole by rename);
        // the driver validates it against its own header and, with `fallback`, starts
        // empty when it does not match.
        let cache = unsafe {
            device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                label: Some("haloflow pipelines"),
                data: data.as_deref(),
                fallback: true,
            })
        };
        Some(DiskCache {
            cache,
            file,
            changed: AtomicBool::new(false),
        })
    }

    /// The cache to compile pipelines through; marks it changed.
    pub(super) fn compiling(&self) -> &wgpu::PipelineCache {
        self.changed.store(true, Ordering::Relaxed);
        &self.cache
    }

    /// Writes the cache back if a pipeline was compiled since it was read; failures
    /// are ignored (the next run compiles again).
    pub(super) fn save(&self) {
        if !self.changed.swap(false, Ordering::Relaxed) {
            return;
        }
        let Some(data) = self.cache.get_data() else {
            return;
        };
        let Some(dir) = self.file.parent() else {
            return;
        };
        let temporary = dir.join(format!(
            ".{}.{}.tmp",
            self.file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("cache"),
            std::process::id()
        ));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&temporary, &data))
            .and_then(|()| std::fs::rename(&temporary, &self.file));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
    }
}
