//! Files that instruments write, read straight into a run as if they were Zarr arrays:
//! TIFF (classic and BigTIFF; plain stacks, ImageJ hyperstacks, OME-TIFF), NIfTI
//! (NIfTI-1 and NIfTI-2, `.nii` and `.nii.gz`), Zeiss CZI (one scene at a time), and a
//! series of such files named by a glob pattern (`plane_*.tif`), one plane or volume
//! each.
//!
//! A [`FileReader`] gives an array's shape, type and metadata (axes, pixel spacing,
//! units, channel names), and decodes any box of it. Its *read unit* is what it
//! decodes on its own (a TIFF strip or tile of one page, a NIfTI plane): a run's chunk
//! cache decodes each unit once, so a job reads only the units its footprint touches,
//! and a file larger than memory streams like a Zarr array. A gzipped NIfTI is the one
//! exception: gzip cannot be read at random, so it is decoded once, in order, into a
//! temporary file that is read from then on (and removed when the reader is dropped).
//! (Layer: storage, beside [`store`](crate::store), which opens these readers.)

mod czi;
mod nifti;
mod series;
mod tiff;

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::dtype::DType;
use crate::error::{Error, Result};

/// The formats haloflow reads besides Zarr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// TIFF, BigTIFF, ImageJ hyperstacks and OME-TIFF.
    Tiff,
    /// NIfTI-1 and NIfTI-2, plain or gzipped.
    Nifti,
    /// Zeiss CZI, one scene at a time.
    Czi,
}

impl Format {
    /// The format's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Tiff => "TIFF",
            Format::Nifti => "NIfTI",
            Format::Czi => "CZI",
        }
    }
}

/// What a file says about its array, besides the numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileMetadata {
    /// The flavour read (`TIFF`, `OME-TIFF`, `ImageJ TIFF`, `NIfTI-1`, ...).
    pub flavour: String,
    /// One name per axis of the array, from `t`, `c`, `z`, `y`, `x`, in that order.
    pub axes: Vec<String>,
    /// The distance between pixels along each axis, in its unit (1 where unknown).
    pub scale: Vec<f64>,
    /// Each axis's NGFF unit (`micrometer`, `second`, ...), where known.
    pub units: Vec<Option<String>>,
    /// The channels' names, where the file gives them (one per index of the `c` axis).
    pub channels: Vec<String>,
    /// The channels' display colours as `RRGGBB`, where the file gives them (one per
    /// name; the others get a colour of a fixed cycle).
    pub colours: Vec<Option<String>>,
    /// Notes for `info` (the compression, how the file is read).
    pub notes: Vec<String>,
}

impl FileMetadata {
    /// OME-Zarr `omero` rendering metadata naming the channels, where the file names
    /// them.
    pub fn omero(&self) -> Option<Value> {
        if self.channels.is_empty() {
            return None;
        }
        const COLOURS: [&str; 6] = ["FF0000", "00FF00", "0000FF", "FF00FF", "00FFFF", "FFFF00"];
        let colour = |i: usize| match self.colours.get(i).cloned().flatten() {
            Some(c) => c,
            None if self.channels.len() == 1 => "FFFFFF".into(),
            None => COLOURS[i % COLOURS.len()].into(),
        };
        let channels: Vec<Value> = self
            .channels
            .iter()
            .enumerate()
            .map(|(i, name)| json!({"label": name, "color": colour(i), "active": true}))
            .collect();
        Some(json!({ "channels": channels }))
    }
}

/// An array in a file from an instrument, decoded a box at a time.
pub trait FileReader: Send + Sync {
    /// The array's shape, outermost axis first.
    fn shape(&self) -> &[usize];
    /// The element type the array is read as.
    fn dtype(&self) -> DType;
    /// The shape of the unit the file decodes on its own (a strip or tile of one page,
    /// a plane).
    fn read_unit(&self) -> Vec<usize>;
    /// What the file says about its axes, spacing and channels.
    fn metadata(&self) -> &FileMetadata;
    /// Decodes the box `ranges` (inside the array) into `out`: native-endian elements
    /// of [`FileReader::dtype`] in C order over the box.
    ///
    /// # Errors
    /// [`Error::BadFile`] naming the file (and the block, where known) for a truncated
    /// or corrupt file.
    fn read_box(&self, ranges: &[Range<usize>], out: &mut [u8]) -> Result<()>;
}

/// The format of the file at `path`, from its first bytes and its name; `None` for a
/// directory, a missing path or a file of no format haloflow knows.
pub fn detect(path: &Path) -> Option<Format> {
    if czi::split_scene(path).is_some() {
        return Some(Format::Czi);
    }
    if !path.is_file() {
        return None;
    }
    let mut head = [0u8; 16];
    let n = File::open(path).and_then(|mut f| f.read(&mut head)).ok()?;
    let head = &head[..n];
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    if head.starts_with(b"II*\0")
        || head.starts_with(b"MM\0*")
        || head.starts_with(b"II+\0")
        || head.starts_with(b"MM\0+")
    {
        return Some(Format::Tiff);
    }
    if head.starts_with(b"ZISRAWFILE") {
        return Some(Format::Czi);
    }
    if name.ends_with(".nii") || name.ends_with(".nii.gz") {
        return Some(Format::Nifti);
    }
    None
}

/// Opens the file at `path` as an array, or `Ok(None)` where it is no file of a format
/// haloflow reads (a directory: perhaps a Zarr array).
///
/// # Errors
/// [`Error::BadFile`] naming the file for a truncated or corrupt file, or one whose
/// compression, pixel type or layout is not supported.
pub fn open(path: &Path) -> Result<Option<Box<dyn FileReader>>> {
    if series::is_pattern(path) {
        return Ok(Some(Box::new(series::Series::open(path)?)));
    }
    Ok(match detect(path) {
        None => None,
        Some(Format::Tiff) => Some(Box::new(tiff::TiffFile::open(path)?)),
        Some(Format::Nifti) => Some(Box::new(nifti::NiftiFile::open(path)?)),
        Some(Format::Czi) => Some(Box::new(czi::CziFile::open(path)?)),
    })
}

/// The path that names scene `scene` of the CZI file `path` (`scan.czi#scene=2`),
/// which every reader of arrays opens as that scene; `path` itself for scene 0.
pub fn scene_path(path: &Path, scene: usize) -> PathBuf {
    if scene == 0 {
        return path.to_path_buf();
    }
    PathBuf::from(format!("{}#scene={scene}", path.display()))
}

/// What the file at `path` says about its array (axes, spacing, channels), or
/// `Ok(None)` where it is no file of a format haloflow reads. Cheaper than [`open`]
/// for a gzipped NIfTI, whose header alone is decompressed.
///
/// # Errors
/// As [`open`].
pub fn metadata(path: &Path) -> Result<Option<FileMetadata>> {
    if series::is_pattern(path) {
        return Ok(Some(series::Series::open(path)?.metadata().clone()));
    }
    match detect(path) {
        Some(Format::Nifti) => nifti::probe(path).map(Some),
        Some(_) => Ok(open(path)?.map(|r| r.metadata().clone())),
        None => Ok(None),
    }
}

/// The error for a file that cannot be read.
fn bad(path: &Path, format: Format, message: impl Into<String>) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        format: format.name(),
        message: message.into(),
    }
}

/// A chunk shape for writing an array read from a file: whole rows and planes up to
/// 1024 × 1024 pixels, and as many planes (up to 64) as make about 4 Mi elements (16
/// MiB of float32); 1 along the axes before those three.
pub fn default_chunk(shape: &[usize]) -> Vec<usize> {
    let n = shape.len();
    let mut chunk = vec![1; n];
    let mut size = 1;
    for a in (0..n).rev() {
        let cap = match n - a {
            1 | 2 => 1024,
            3 => ((4 << 20) / size.max(1)).clamp(1, 64),
            _ => 1,
        };
        chunk[a] = shape[a].min(cap).max(1);
        size *= chunk[a];
    }
    chunk
}

/// `RRGGBB` from a colour as files write it: `#RRGGBB`, `#AARRGGBB`, or OME-XML's
/// signed 32-bit RGBA integer.
fn hex_colour(text: &str) -> Option<String> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix('#') {
        let hex = if hex.len() == 8 { &hex[2..] } else { hex };
        return (hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| hex.to_ascii_uppercase());
    }
    let rgba = t.parse::<i64>().ok()? as u32;
    Some(format!("{:06X}", rgba >> 8))
}

/// The unit NGFF names for a length or time unit as files spell it (`micron`, `um`,
/// `µm`, `\u00B5m`, `nm`, `sec`, ...); `None` for a pixel or an unknown unit.
fn ngff_unit(unit: &str) -> Option<String> {
    let u = unit.trim().replace("\\u00B5", "µ").to_ascii_lowercase();
    Some(
        match u.as_str() {
            "angstrom" | "å" => "angstrom",
            "nm" | "nanometer" | "nanometre" => "nanometer",
            "um" | "µm" | "μm" | "micrometer" | "micrometre" | "micron" | "microns" => {
                "micrometer"
            }
            "mm" | "millimeter" | "millimetre" => "millimeter",
            "cm" | "centimeter" | "centimetre" => "centimeter",
            "m" | "meter" | "metre" => "meter",
            "s" | "sec" | "second" | "seconds" => "second",
            "ms" | "msec" | "millisecond" => "millisecond",
            "µs" | "us" | "microsecond" => "microsecond",
            "min" | "minute" => "minute",
            "h" | "hour" => "hour",
            _ => return None,
        }
        .to_string(),
    )
}

/// Calls `f(outer, offset)` for every combination of indices of the boxes' axes before
/// `inner` (`outer` holds them, relative to each range's start), with `offset` the
/// position (in elements) of that combination's first element in the C-order box.
fn for_each_outer(ranges: &[Range<usize>], inner: usize, mut f: impl FnMut(&[usize], usize)) {
    let lens: Vec<usize> = ranges.iter().map(Range::len).collect();
    let inner_size: usize = lens[inner..].iter().product();
    let count: usize = lens[..inner].iter().product();
    let mut idx = vec![0usize; inner];
    for k in 0..count {
        f(&idx, k * inner_size);
        for a in (0..inner).rev() {
            idx[a] += 1;
            if idx[a] < lens[a] {
                break;
            }
            idx[a] = 0;
        }
    }
}

/// A temporary file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_chunks_hold_whole_planes_and_many_of_them() {
        assert_eq!(default_chunk(&[100, 512, 512]), vec![16, 512, 512]);
        assert_eq!(default_chunk(&[100, 256, 256]), vec![64, 256, 256]);
        assert_eq!(default_chunk(&[3, 100, 4096, 4096]), vec![1, 4, 1024, 1024]);
        assert_eq!(default_chunk(&[5, 7]), vec![5, 7]);
        assert_eq!(default_chunk(&[2, 10, 20, 30]), vec![1, 10, 20, 30]);
    }

    #[test]
    fn outer_indices_walk_in_c_order() {
        let mut seen = Vec::new();
        for_each_outer(&[2..4, 0..3, 5..9], 2, |i, off| {
            seen.push((i.to_vec(), off))
        });
        assert_eq!(seen.len(), 6);
        assert_eq!(seen[0], (vec![0, 0], 0));
        assert_eq!(seen[1], (vec![0, 1], 4));
        assert_eq!(seen[3], (vec![1, 0], 12));
    }

    #[test]
    fn colours_read_as_files_write_them() {
        assert_eq!(hex_colour("#00ff00").as_deref(), Some("00FF00"));
        assert_eq!(hex_colour("#FF112233").as_deref(), Some("112233"));
        // OME-XML: red, opaque, as a signed RGBA integer.
        assert_eq!(hex_colour("-16776961").as_deref(), Some("FF0000"));
        assert_eq!(hex_colour("blue"), None);
    }

    #[test]
    fn units_take_ngff_names() {
        assert_eq!(ngff_unit("micron").as_deref(), Some("micrometer"));
        assert_eq!(ngff_unit("\\u00B5m").as_deref(), Some("micrometer"));
        assert_eq!(ngff_unit("sec").as_deref(), Some("second"));
        assert_eq!(ngff_unit("pixel"), None);
    }
}
