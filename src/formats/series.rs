//! A series of files, one plane (or volume) each, named by a glob pattern
//! (`scan/plane_*.tif`): read as one array whose first axis is the file, in the
//! pattern's sorted order. Every file must have the shape, type and axes of the first,
//! whose metadata the series takes; the new axis is `z` for files of planes, `t` for
//! files of volumes.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{FileMetadata, FileReader, Format, bad};
use crate::dtype::DType;
use crate::error::Result;

/// The files of a series, opened.
pub(super) struct Series {
    files: Vec<Box<dyn FileReader>>,
    shape: Vec<usize>,
    metadata: FileMetadata,
}

/// Whether `path` is a glob pattern (and no file is named so).
pub(super) fn is_pattern(path: &Path) -> bool {
    let s = path.to_string_lossy();
    !path.exists() && s.contains(['*', '?', '['])
}

/// The files `pattern` matches, sorted.
fn matches(pattern: &Path) -> Result<Vec<PathBuf>> {
    let text = pattern.to_string_lossy();
    let err = |m: String| bad(pattern, Format::Tiff, m);
    let mut files: Vec<PathBuf> = glob::glob(&text)
        .map_err(|e| err(format!("not a valid pattern: {e}")))?
        .filter_map(std::result::Result::ok)
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(crate::Error::NotFound(pattern.to_path_buf()));
    }
    Ok(files)
}

impl Series {
    pub(super) fn open(pattern: &Path) -> Result<Series> {
        let paths = matches(pattern)?;
        let mut files = Vec::with_capacity(paths.len());
        for path in &paths {
            let reader = super::open(path)?.ok_or_else(|| {
                bad(
                    path,
                    Format::Tiff,
                    "matched by the pattern, but not a TIFF or NIfTI file",
                )
            })?;
            if let Some(first) = files.first().map(Box::as_ref) {
                let first: &dyn FileReader = first;
                if reader.shape() != first.shape() || reader.dtype() != first.dtype() {
                    return Err(bad(
                        path,
                        Format::Tiff,
                        format!(
                            "{:?} {} unlike the series' first file {} ({:?} {})",
                            reader.shape(),
                            reader.dtype(),
                            paths[0].display(),
                            first.shape(),
                            first.dtype()
                        ),
                    ));
                }
            }
            files.push(reader);
        }
        let first = files[0].metadata().clone();
        let volumes = first.axes.iter().any(|a| a == "z");
        let mut metadata = first.clone();
        metadata.flavour = format!("a series of {} {} files", files.len(), first.flavour);
        metadata
            .axes
            .insert(0, if volumes { "t" } else { "z" }.into());
        metadata.scale.insert(0, 1.0);
        metadata.units.insert(0, None);
        metadata.notes.insert(
            0,
            format!(
                "files {} to {}",
                paths[0].display(),
                paths[paths.len() - 1].display()
            ),
        );
        let mut shape = vec![files.len()];
        shape.extend_from_slice(files[0].shape());
        if shape.len() > 5 || metadata.axes.iter().filter(|a| *a == "t").count() > 1 {
            return Err(bad(
                pattern,
                Format::Tiff,
                "a series of files with time axes is not supported",
            ));
        }
        Ok(Series {
            files,
            shape,
            metadata,
        })
    }
}

impl FileReader for Series {
    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn dtype(&self) -> DType {
        self.files[0].dtype()
    }

    fn read_unit(&self) -> Vec<usize> {
        let mut unit = vec![1];
        unit.extend(self.files[0].read_unit());
        unit
    }

    fn metadata(&self) -> &FileMetadata {
        &self.metadata
    }

    fn read_box(&self, ranges: &[Range<usize>], out: &mut [u8]) -> Result<()> {
        let per_file = ranges[1..].iter().map(Range::len).product::<usize>() * self.dtype().size();
        for (k, i) in ranges[0].clone().enumerate() {
            self.files[i].read_box(&ranges[1..], &mut out[k * per_file..(k + 1) * per_file])?;
        }
        Ok(())
    }
}
