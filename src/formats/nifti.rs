//! NIfTI-1 and NIfTI-2 volumes (`.nii`, `.nii.gz`).
//!
//! The array's axes are the file's in reverse: a NIfTI volume stores x fastest, so its
//! voxels in order are a C-order array of shape `(t, z, y, x)`; nibabel gives the same
//! voxels as `(x, y, z, t)` (its array is the transpose of haloflow's). Reads are then
//! plain byte ranges. `scl_slope` and `scl_inter` are applied where the slope is
//! neither 0 nor 1 with a zero intercept: the array is then float32 (float64 for
//! 32- and 64-bit integers or float64 voxels, as NumPy promotes them). The voxel size comes
//! from `pixdim`, in the units of `xyzt_units`.
//!
//! The NIfTI-1 header is read by the `nifti` crate; it does not read NIfTI-2, whose
//! fixed 540-byte header is read here.

use std::fs::File;
use std::io::{BufReader, Read};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{FileMetadata, FileReader, Format, TempFile, bad, for_each_outer};
use crate::dtype::DType;
use crate::error::{Error, Result};

/// The header fields haloflow uses, from either version.
#[derive(Clone, Debug)]
struct Header {
    version: u8,
    /// `dim[1..=dim[0]]`: x, y, z, t, ...
    dims: Vec<usize>,
    datatype: i16,
    pixdim: Vec<f64>,
    vox_offset: u64,
    slope: f64,
    inter: f64,
    xyzt_units: u8,
    big_endian: bool,
}

/// A NIfTI volume opened for reading.
pub(super) struct NiftiFile {
    path: PathBuf,
    file: File,
    /// The decompressed copy of a gzipped file, removed on drop.
    _temp: Option<TempFile>,
    shape: Vec<usize>,
    /// The stored type, and whether its bytes need swapping.
    stored: DType,
    swap: bool,
    /// The scaling applied, if any, and the type it gives.
    scaling: Option<(f64, f64)>,
    dtype: DType,
    offset: u64,
    metadata: FileMetadata,
}

impl NiftiFile {
    pub(super) fn open(path: &Path) -> Result<NiftiFile> {
        let err = |m: String| bad(path, Format::Nifti, m);
        let io = |e: std::io::Error| Error::Store {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let gz = is_gz(path);
        let (file, temp) = if gz {
            let temp = decompress(path)?;
            (File::open(&temp.0).map_err(io)?, Some(temp))
        } else {
            (File::open(path).map_err(io)?, None)
        };
        let header = read_header(&mut &file).map_err(err)?;
        let (stored, scaling, dtype, metadata) = describe(path, &header, gz)?;
        let shape: Vec<usize> = header.dims.iter().rev().copied().collect();
        let needed =
            header.vox_offset + shape.iter().product::<usize>() as u64 * stored.size() as u64;
        let length = file.metadata().map_err(io)?.len();
        if length < needed {
            return Err(err(format!(
                "truncated: the header's {} voxels end at byte {needed}, the {} has {length} bytes",
                shape.iter().product::<usize>(),
                if gz { "decompressed stream" } else { "file" }
            )));
        }
        Ok(NiftiFile {
            path: path.to_path_buf(),
            file,
            _temp: temp,
            shape,
            stored,
            swap: header.big_endian != cfg!(target_endian = "big"),
            scaling,
            dtype,
            offset: header.vox_offset,
            metadata,
        })
    }

    /// Converts `n` stored elements in `raw` into `out` (elements of the array's type).
    fn convert(&self, raw: &mut [u8], out: &mut [u8]) {
        let size = self.stored.size();
        if self.swap && size > 1 {
            for e in raw.chunks_exact_mut(size) {
                e.reverse();
            }
        }
        let Some((slope, inter)) = self.scaling else {
            out.copy_from_slice(raw);
            return;
        };
        let n = raw.len() / size;
        let value = |i: usize| -> f64 {
            let b = &raw[i * size..(i + 1) * size];
            match self.stored {
                DType::U8 => b[0] as f64,
                DType::I8 => b[0] as i8 as f64,
                DType::U16 => u16::from_ne_bytes([b[0], b[1]]) as f64,
                DType::I16 => i16::from_ne_bytes([b[0], b[1]]) as f64,
                DType::U32 => u32::from_ne_bytes(b.try_into().expect("4 bytes")) as f64,
                DType::I32 => i32::from_ne_bytes(b.try_into().expect("4 bytes")) as f64,
                DType::U64 => u64::from_ne_bytes(b.try_into().expect("8 bytes")) as f64,
                DType::I64 => i64::from_ne_bytes(b.try_into().expect("8 bytes")) as f64,
                DType::F32 => f32::from_ne_bytes(b.try_into().expect("4 bytes")) as f64,
                DType::F64 => f64::from_ne_bytes(b.try_into().expect("8 bytes")),
            }
        };
        match self.dtype {
            DType::F64 => {
                for i in 0..n {
                    out[i * 8..i * 8 + 8]
                        .copy_from_slice(&(value(i) * slope + inter).to_ne_bytes());
                }
            }
            _ => {
                // As nibabel: the slope and intercept are float32 and scale in float32.
                let (s, c) = (slope as f32, inter as f32);
                for i in 0..n {
                    let v = value(i) as f32 * s + c;
                    out[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
                }
            }
        }
    }
}

impl FileReader for NiftiFile {
    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn dtype(&self) -> DType {
        self.dtype
    }

    fn read_unit(&self) -> Vec<usize> {
        // A plane of the volume (the whole array for 2-D).
        let n = self.shape.len();
        (0..n)
            .map(|a| if a + 2 >= n { self.shape[a] } else { 1 })
            .collect()
    }

    fn metadata(&self) -> &FileMetadata {
        &self.metadata
    }

    fn read_box(&self, ranges: &[Range<usize>], out: &mut [u8]) -> Result<()> {
        let n = ranges.len();
        // The innermost axes read whole make one contiguous run with the axis before.
        let mut inner = n - 1;
        while inner > 0 && ranges[inner].len() == self.shape[inner] {
            inner -= 1;
        }
        let run: usize = ranges[inner].len() * self.shape[inner + 1..].iter().product::<usize>();
        let (size, out_size) = (self.stored.size(), self.dtype.size());
        let mut raw = vec![0u8; run * size];
        let mut result = Ok(());
        for_each_outer(ranges, inner, |idx, offset| {
            if result.is_err() {
                return;
            }
            let mut flat = 0usize;
            for a in 0..n {
                let i = if a < inner {
                    ranges[a].start + idx[a]
                } else if a == inner {
                    ranges[a].start
                } else {
                    0
                };
                flat = flat * self.shape[a] + i;
            }
            let at = self.offset + (flat * size) as u64;
            if let Err(e) = self.file.read_exact_at(&mut raw, at) {
                result = Err(bad(
                    &self.path,
                    Format::Nifti,
                    format!("reading {} bytes at byte {at}: {e}", raw.len()),
                ));
                return;
            }
            let dst = offset * out_size;
            self.convert(&mut raw, &mut out[dst..dst + run * out_size]);
        });
        result
    }
}

/// The stored type, the scaling, the type read and the metadata a header gives.
#[allow(clippy::type_complexity)]
fn describe(
    path: &Path,
    header: &Header,
    gz: bool,
) -> Result<(DType, Option<(f64, f64)>, DType, FileMetadata)> {
    let err = |m: String| bad(path, Format::Nifti, m);
    if header.dims.len() > 4 {
        return Err(err(format!(
            "{} dimensions (haloflow reads up to 4: x, y, z, t)",
            header.dims.len()
        )));
    }
    let stored = match header.datatype {
        2 => DType::U8,
        4 => DType::I16,
        8 => DType::I32,
        16 => DType::F32,
        64 => DType::F64,
        256 => DType::I8,
        512 => DType::U16,
        768 => DType::U32,
        1024 => DType::I64,
        1280 => DType::U64,
        other => {
            return Err(err(format!(
                "unsupported datatype code {other} (supported: uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32, float64)"
            )));
        }
    };
    let scaling = (header.slope != 0.0 && !(header.slope == 1.0 && header.inter == 0.0))
        .then_some((header.slope, header.inter));
    let dtype = match (scaling, stored) {
        (None, t) => t,
        (Some(_), DType::I32 | DType::U32 | DType::I64 | DType::U64 | DType::F64) => DType::F64,
        (Some(_), _) => DType::F32,
    };
    let n = header.dims.len();
    let names = ["x", "y", "z", "t"];
    let (space, time) = (header.xyzt_units & 0x07, header.xyzt_units & 0x38);
    let space_unit = match space {
        1 => Some("meter"),
        2 => Some("millimeter"),
        3 => Some("micrometer"),
        _ => None,
    };
    let time_unit = match time {
        8 => Some("second"),
        16 => Some("millisecond"),
        24 => Some("microsecond"),
        _ => None,
    };
    let axes: Vec<String> = (0..n).rev().map(|a| names[a].to_string()).collect();
    let scale: Vec<f64> = (0..n)
        .rev()
        .map(|a| match header.pixdim.get(a + 1) {
            Some(&p) if p > 0.0 && p.is_finite() => p,
            _ => 1.0,
        })
        .collect();
    let units = (0..n)
        .rev()
        .map(|a| if a == 3 { time_unit } else { space_unit }.map(String::from))
        .collect();
    let mut notes = vec![format!(
        "stored {} ({}-endian), voxels from byte {}",
        stored.name(),
        if header.big_endian { "big" } else { "little" },
        header.vox_offset
    )];
    if let Some((s, i)) = scaling {
        notes.push(format!("scaled: value × {s} + {i}"));
    }
    notes.push("axes are nibabel's reversed: (t, z, y, x) here is (x, y, z, t) there".into());
    if gz {
        notes.push(
            "gzip cannot be read at random: decoded once, in order, into a temporary file".into(),
        );
    }
    Ok((
        stored,
        scaling,
        dtype,
        FileMetadata {
            flavour: format!("NIfTI-{}", header.version),
            axes,
            scale,
            units,
            channels: vec![],
            colours: vec![],
            notes,
        },
    ))
}

/// What the file at `path` says about its array, from its header alone (a gzipped
/// file's first bytes decompressed).
pub(super) fn probe(path: &Path) -> Result<FileMetadata> {
    let file = File::open(path).map_err(|e| Error::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let gz = is_gz(path);
    let header = if gz {
        read_header(&mut flate2::read::MultiGzDecoder::new(BufReader::new(file)))
    } else {
        read_header(&mut &file)
    }
    .map_err(|m| bad(path, Format::Nifti, m))?;
    Ok(describe(path, &header, gz)?.3)
}

fn is_gz(path: &Path) -> bool {
    path.to_string_lossy().to_ascii_lowercase().ends_with(".gz")
}

/// Decodes a gzipped file once into a temporary file.
fn decompress(path: &Path) -> Result<TempFile> {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let temp = TempFile(std::env::temp_dir().join(format!(
        "haloflow-{}-{}.nii",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )));
    let source = File::open(path).map_err(|e| Error::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut target = File::create(&temp.0).map_err(|e| Error::Store {
        path: temp.0.clone(),
        message: e.to_string(),
    })?;
    let mut gz = flate2::read::MultiGzDecoder::new(BufReader::new(source));
    std::io::copy(&mut gz, &mut target)
        .map_err(|e| bad(path, Format::Nifti, format!("gzip stream: {e}")))?;
    Ok(temp)
}

/// The header of either version, from the file's first bytes.
fn read_header(file: &mut impl Read) -> std::result::Result<Header, String> {
    let mut head = vec![0u8; 540];
    let got = read_prefix(file, &mut head)?;
    head.truncate(got);
    let sizeof = |b: &[u8]| i32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
    let short = || format!("the file is {got} bytes long, shorter than a NIfTI header");
    if got < 4 {
        return Err(short());
    }
    let le = sizeof(&head);
    let be = le.swap_bytes();
    if le == 540 || be == 540 {
        if got < 540 {
            return Err(short());
        }
        return nifti2(&head, be == 540);
    }
    if got < 348 {
        return Err(short());
    }
    let h = ::nifti::NiftiHeader::from_reader(&head[..348])
        .map_err(|e| format!("not a NIfTI-1 or NIfTI-2 header: {e}"))?;
    let ndim = h.dim[0] as usize;
    if !(1..=7).contains(&ndim) {
        return Err(format!("dim[0] is {ndim}, not 1 to 7"));
    }
    Ok(Header {
        version: 1,
        dims: h.dim[1..=ndim].iter().map(|&d| d as usize).collect(),
        datatype: h.datatype,
        // The shortest decimal that reads back as the stored float32 (0.6, not
        // 0.6000000238418579).
        pixdim: h
            .pixdim
            .iter()
            .map(|&p| p.to_string().parse().unwrap_or(p as f64))
            .collect(),
        vox_offset: (h.vox_offset.max(348.0)) as u64,
        slope: h.scl_slope as f64,
        inter: h.scl_inter as f64,
        xyzt_units: h.xyzt_units,
        big_endian: h.endianness == ::nifti::Endianness::Big,
    })
}

fn read_prefix(reader: &mut impl Read, buf: &mut [u8]) -> std::result::Result<usize, String> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(got)
}

/// The NIfTI-2 header (540 bytes, fixed layout; `big` for big-endian).
fn nifti2(h: &[u8], big: bool) -> std::result::Result<Header, String> {
    if &h[4..8] != b"n+2\0" && &h[4..8] != b"ni2\0" {
        return Err("a 540-byte header without the NIfTI-2 magic".into());
    }
    if &h[4..8] == b"ni2\0" {
        return Err("a NIfTI-2 header with its voxels in a separate .img file".into());
    }
    let b8 = |o: usize| -> [u8; 8] { h[o..o + 8].try_into().expect("8 bytes") };
    let i64_at = |o: usize| {
        if big {
            i64::from_be_bytes(b8(o))
        } else {
            i64::from_le_bytes(b8(o))
        }
    };
    let f64_at = |o: usize| {
        if big {
            f64::from_be_bytes(b8(o))
        } else {
            f64::from_le_bytes(b8(o))
        }
    };
    let i16_at = |o: usize| {
        let b = [h[o], h[o + 1]];
        if big {
            i16::from_be_bytes(b)
        } else {
            i16::from_le_bytes(b)
        }
    };
    let i32_at = |o: usize| {
        let b: [u8; 4] = h[o..o + 4].try_into().expect("4 bytes");
        if big {
            i32::from_be_bytes(b)
        } else {
            i32::from_le_bytes(b)
        }
    };
    let ndim = i64_at(16);
    if !(1..=7).contains(&ndim) {
        return Err(format!("dim[0] is {ndim}, not 1 to 7"));
    }
    let dims = (1..=ndim as usize)
        .map(|i| {
            usize::try_from(i64_at(16 + 8 * i)).map_err(|_| "a negative dimension".to_string())
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Header {
        version: 2,
        dims,
        datatype: i16_at(12),
        pixdim: (0..8).map(|i| f64_at(104 + 8 * i)).collect(),
        vox_offset: u64::try_from(i64_at(168))
            .map_err(|_| "a negative vox_offset")?
            .max(540),
        slope: f64_at(176),
        inter: f64_at(184),
        xyzt_units: i32_at(500) as u8,
        big_endian: big,
    })
}
