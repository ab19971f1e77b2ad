//! Paths and files: what a path holds, and creating or removing a whole array
//! directory atomically (assembled beside it and renamed; renamed aside and deleted).

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::errors::io_error;
use super::remote::{RemoteStore, is_url};
use crate::error::{Error, Result};

/// Directory inside an output array where chunks are written before being renamed
/// into place (hidden, so Zarr readers ignore it).
pub const TEMP_DIR: &str = ".haloflow-tmp";

/// Temporary files older than this are left over from a killed run; younger ones may
/// belong to another process writing the same output right now.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(15 * 60);

/// What a path holds.
#[derive(Debug)]
pub(super) enum Found {
    Missing,
    File,
    EmptyDir,
    /// An array of this Zarr format.
    Array(u8),
    /// A group of this Zarr format.
    Group(u8),
    /// A non-empty directory with no Zarr metadata.
    OtherDir,
}

impl Found {
    /// Why this is not an array, in a phrase naming what it is.
    pub(super) fn explain(&self, path: &Path) -> String {
        match self {
            Found::Missing => "nothing is there".to_string(),
            Found::File => {
                "it is a file; give the directory holding zarr.json or .zarray".to_string()
            }
            Found::EmptyDir => "it is an empty directory".to_string(),
            Found::Array(v) => format!("it is a Zarr v{v} array"),
            Found::Group(v) => {
                let arrays = child_arrays(path);
                if arrays.is_empty() {
                    format!("it is a Zarr v{v} group")
                } else {
                    format!(
                        "it is a Zarr v{v} group; arrays inside: {}",
                        arrays.join(", ")
                    )
                }
            }
            Found::OtherDir => "it is a directory with no zarr.json or .zarray in it".to_string(),
        }
    }
}

pub(super) fn inspect(path: &Path) -> Result<Found> {
    if let Some(remote) = RemoteStore::open(path)? {
        return inspect_remote(path, &remote);
    }
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(io_error(path, e)),
    };
    if !meta.is_dir() {
        return Ok(Found::File);
    }
    let zarr_json = path.join("zarr.json");
    match fs::read(&zarr_json) {
        Ok(bytes) => return node_type(&zarr_json, &bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&zarr_json, e)),
    }
    if path.join(".zarray").is_file() {
        return Ok(Found::Array(2));
    }
    if path.join(".zgroup").is_file() {
        return Ok(Found::Group(2));
    }
    let mut entries = fs::read_dir(path).map_err(|e| io_error(path, e))?;
    Ok(if entries.next().is_none() {
        Found::EmptyDir
    } else {
        Found::OtherDir
    })
}

/// What a URL holds: its metadata objects, else whether any object lies below it.
fn inspect_remote(path: &Path, remote: &RemoteStore) -> Result<Found> {
    if let Some(bytes) = remote.read("zarr.json")? {
        return node_type(&path.join("zarr.json"), &bytes);
    }
    if remote.read(".zarray")?.is_some() {
        return Ok(Found::Array(2));
    }
    if remote.read(".zgroup")?.is_some() {
        return Ok(Found::Group(2));
    }
    Ok(if remote.holds_anything()? {
        Found::OtherDir
    } else {
        Found::Missing
    })
}

/// An array or a group, as a v3 `zarr.json` says.
fn node_type(zarr_json: &Path, bytes: &[u8]) -> Result<Found> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| Error::Store {
        path: zarr_json.to_path_buf(),
        message: format!("invalid JSON: {e}"),
    })?;
    match v.get("node_type").and_then(Value::as_str) {
        Some("array") => Ok(Found::Array(3)),
        Some("group") => Ok(Found::Group(3)),
        other => Err(Error::Store {
            path: zarr_json.to_path_buf(),
            message: format!("node_type {other:?} is neither \"array\" nor \"group\""),
        }),
    }
}

/// The bytes of the file (object) at `path`, a local path or a URL; `None` if absent.
pub(super) fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    if is_url(path) {
        let (parent, name) = split(path)?;
        let remote = RemoteStore::open(&parent)?.expect("the parent of a URL is one");
        return remote.read(&name.to_string_lossy());
    }
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Names of the subdirectories of `path` that are arrays, sorted (at most 10).
pub(super) fn child_arrays(path: &Path) -> Vec<String> {
    if is_url(path) {
        return Vec::new();
    }
    let mut names: Vec<String> = fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| matches!(inspect(&e.path()), Ok(Found::Array(_))))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.len() > 10 {
        names.truncate(10);
        names.push("...".to_string());
    }
    names
}

/// A name unique across processes and threads, for temporary files.
pub(super) fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}-{:x}-{:x}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The parent directory and file name of `path` (the parent of `a` is `.`).
pub(super) fn split(path: &Path) -> Result<(PathBuf, &OsStr)> {
    let name = path.file_name().ok_or_else(|| Error::Store {
        path: path.to_path_buf(),
        message: "the output path has no final name".to_string(),
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

/// Creates the array directory at `path` with `files` in it, atomically: assembled
/// under a temporary name beside it and renamed into place. Returns `false` if another
/// process put something there first.
pub(super) fn publish(path: &Path, files: &[(&'static str, Vec<u8>)]) -> Result<bool> {
    let (parent, name) = split(path)?;
    fs::create_dir_all(&parent).map_err(|e| io_error(&parent, e))?;
    let staging = parent.join(format!(
        ".{}.haloflow-new-{}",
        name.to_string_lossy(),
        unique_suffix()
    ));
    let assemble = || -> io::Result<()> {
        fs::create_dir(&staging)?;
        fs::create_dir(staging.join(TEMP_DIR))?;
        for (file, bytes) in files {
            let mut f = File::create_new(staging.join(file))?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        Ok(())
    };
    if let Err(e) = assemble() {
        let _ = fs::remove_dir_all(&staging);
        return Err(io_error(&staging, e));
    }
    match fs::rename(&staging, path) {
        Ok(()) => Ok(true),
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            match inspect(path)? {
                // Renaming a directory over a non-empty one fails: someone else won.
                Found::Missing | Found::EmptyDir => Err(io_error(path, e)),
                _ => Ok(false),
            }
        }
    }
}

/// Removes the array at `path`: renamed aside first (so it disappears at once), then
/// deleted.
pub(super) fn erase(path: &Path) -> Result<()> {
    let (parent, name) = split(path)?;
    let trash = parent.join(format!(
        ".{}.haloflow-old-{}",
        name.to_string_lossy(),
        unique_suffix()
    ));
    fs::rename(path, &trash).map_err(|e| io_error(path, e))?;
    fs::remove_dir_all(&trash).map_err(|e| io_error(&trash, e))
}

/// Removes, best effort, what killed runs left beside `path`: half-assembled array
/// directories ([`publish`]) and arrays renamed aside but not yet deleted ([`erase`]),
/// once older than [`STALE_TEMP_AGE`] (younger ones may be another process' work).
pub(super) fn remove_stale_siblings(path: &Path) {
    let Ok((parent, name)) = split(path) else {
        return;
    };
    let prefix = format!(".{}.haloflow-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(&parent) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age >= STALE_TEMP_AGE));
        if stale && (rest.starts_with("new-") || rest.starts_with("old-")) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Writes the metadata of a Zarr group of `zarr_format` (2 or 3) with `attributes` at
/// `path` (creating the directory, or on an object store), each file atomically:
/// `zarr.json`, or `.zgroup` and `.zattrs`.
///
/// # Errors
/// [`Error::Store`] for a failed write.
pub fn write_group(
    path: &Path,
    zarr_format: u8,
    attributes: serde_json::Map<String, Value>,
) -> Result<()> {
    let remote = RemoteStore::open(path)?;
    if remote.is_none() {
        fs::create_dir_all(path).map_err(|e| Error::Store {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    let attributes = Value::Object(attributes);
    let files: Vec<(&str, Value)> = if zarr_format == 3 {
        vec![(
            "zarr.json",
            serde_json::json!({"zarr_format": 3, "node_type": "group", "attributes": attributes}),
        )]
    } else {
        vec![
            (".zgroup", serde_json::json!({"zarr_format": 2})),
            (".zattrs", attributes),
        ]
    };
    for (name, value) in files {
        let mut bytes = serde_json::to_vec_pretty(&value).expect("JSON values serialise");
        bytes.push(b'\n');
        match &remote {
            // One PUT: the object is whole or absent.
            Some(remote) => remote.write_now(name, bytes)?,
            None => write_file(&path.join(name), &bytes)?,
        }
    }
    Ok(())
}

/// Writes the file `path` atomically: `bytes` go to a temporary file beside it (unique
/// per writer: parts of an array job may write the same file at once), which is then
/// renamed over it. A reader sees the old file or the new one, never half of one.
///
/// # Errors
/// [`Error::Store`] for a failed write.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let (parent, name) = split(path)?;
    let temp = parent.join(format!(
        ".{}.{}.haloflow-tmp",
        name.to_string_lossy(),
        unique_suffix()
    ));
    fs::write(&temp, bytes)
        .and_then(|()| fs::rename(&temp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&temp);
            Error::Store {
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        })
}
