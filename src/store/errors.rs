//! Storage errors: zarrs' and the filesystem's, sorted into haloflow's and put on one
//! line.

use std::io;
use std::path::Path;

use zarrs::array::ArrayCreateError;
use zarrs::storage::StorageError;

use crate::error::Error;

/// An error's message on one line.
pub(super) fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A long value shortened for a message.
pub(super) fn truncate(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(77).collect::<String>())
    } else {
        s.to_string()
    }
}

pub(super) fn io_error(path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        return Error::NotFound(path.to_path_buf());
    }
    Error::Store {
        path: path.to_path_buf(),
        message: one_line(&e),
    }
}

pub(super) fn store_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Store {
        path: path.to_path_buf(),
        message: one_line(&e),
    }
}

/// Sorts zarrs' array-opening errors into haloflow's.
pub(super) fn create_error(path: &Path, e: ArrayCreateError) -> Error {
    let unsupported = |what: &str, e: &dyn std::fmt::Display| Error::UnsupportedArray {
        path: path.to_path_buf(),
        reason: format!("{what}: {}", one_line(e)),
    };
    match e {
        ArrayCreateError::DataTypeCreateError(e) => unsupported("data type", &e),
        ArrayCreateError::ChunkGridCreateError(e) => unsupported("chunk grid", &e),
        ArrayCreateError::CodecsCreateError(e) => unsupported("codecs", &e),
        ArrayCreateError::StorageTransformersCreateError(e) => {
            unsupported("storage transformers", &e)
        }
        ArrayCreateError::ChunkKeyEncodingCreateError(e) => unsupported("chunk key encoding", &e),
        ArrayCreateError::UnsupportedZarrV2Array(e) => unsupported("Zarr v2 array", &e),
        ArrayCreateError::AdditionalFieldUnsupportedError(e) => unsupported("metadata", &e),
        ArrayCreateError::StorageError(StorageError::InvalidMetadata(key, message)) => {
            Error::Store {
                path: path.join(key.as_str()),
                message: format!("invalid array metadata: {}", one_line(&message)),
            }
        }
        ArrayCreateError::MissingMetadata => Error::NotAnArray {
            path: path.to_path_buf(),
            reason: "no zarr.json or .zarray found".to_string(),
        },
        other => Error::Store {
            path: path.to_path_buf(),
            message: format!("cannot open the array: {}", one_line(&other)),
        },
    }
}
