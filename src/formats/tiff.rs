//! TIFF, BigTIFF, ImageJ hyperstacks and OME-TIFF, read through the `tiff` crate (the
//! image-rs decoder: strips and tiles; none, deflate, LZW, zstd and PackBits; the
//! horizontal and floating-point predictors).
//!
//! The pages of the file's first series become the array's outer axes:
//! - OME-TIFF: `t`, `c`, `z` from the OME-XML's sizes and dimension order, with the
//!   physical sizes, time increment and channel names;
//! - ImageJ: `t`, `c`, `z` from the description's `frames`, `channels` and `slices`
//!   (pages in ImageJ's order, channels fastest), with its `spacing`, `unit` and
//!   `finterval`, and the pixel width from the resolution tags;
//! - otherwise one page is a 2-D image and several are a `z` stack.
//!
//! Axes of size 1 are dropped, as tifffile does, and the axes are ordered `t`, `c`,
//! `z`, `y`, `x` as OME-Zarr wants (tifffile gives an ImageJ file as `TZCYX`). Samples
//! of a pixel (RGB) become the `c` axis.

use std::fs::File;
use std::io::BufReader;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tiff::decoder::{ChunkType, Decoder, Limits};
use tiff::tags::{PlanarConfiguration, SampleFormat, Tag};

use super::{FileMetadata, FileReader, Format, bad, for_each_outer, hex_colour, ngff_unit};
use crate::dtype::DType;
use crate::error::{Error, Result};

type TiffDecoder = Decoder<BufReader<File>>;

/// One outer axis of the array: a page axis (pages `stride` apart) or the samples of
/// a pixel.
#[derive(Clone, Debug)]
enum Outer {
    Pages { stride: usize },
    Samples,
}

/// A TIFF file opened for reading.
pub(super) struct TiffFile {
    path: PathBuf,
    shape: Vec<usize>,
    dtype: DType,
    metadata: FileMetadata,
    /// The outer axes (all but y and x), in the array's order.
    outer: Vec<Outer>,
    /// Samples per pixel, and whether they are stored in separate planes.
    samples: usize,
    planar: bool,
    /// The strip or tile: (rows, columns), and whether tiled.
    chunk: (usize, usize),
    tiled: bool,
    /// Decoders ready for reuse, each with the page it is at (one per worker at most).
    idle: Mutex<Vec<(usize, TiffDecoder)>>,
}

/// The pages' properties every page must share.
#[derive(Clone, Debug, PartialEq)]
struct PageKind {
    width: usize,
    height: usize,
    dtype: DType,
    samples: usize,
    planar: bool,
}

impl TiffFile {
    pub(super) fn open(path: &Path) -> Result<TiffFile> {
        let err = |m: String| bad(path, Format::Tiff, m);
        let mut dec = decoder(path)?;
        let kind = page_kind(&mut dec).map_err(|e| err(format!("page 0: {e}")))?;
        let description = match dec.find_tag(Tag::ImageDescription) {
            Ok(Some(v)) => v.into_string().unwrap_or_default(),
            _ => String::new(),
        };
        let resolution = |dec: &mut TiffDecoder, tag| match dec.find_tag(tag) {
            Ok(Some(tiff::decoder::ifd::Value::Rational(n, d))) if n > 0 && d > 0 => {
                Some(d as f64 / n as f64)
            }
            _ => None,
        };
        let pixel = (
            resolution(&mut dec, Tag::YResolution),
            resolution(&mut dec, Tag::XResolution),
        );
        let compression = dec
            .find_tag_unsigned::<u16>(Tag::Compression)
            .ok()
            .flatten()
            .unwrap_or(1);
        let tiled = dec.get_chunk_type() == ChunkType::Tile;
        let (cw, ch) = dec.chunk_dimensions();
        let (chunk_rows, chunk_cols) = (ch as usize, cw as usize);
        // Every page of the main chain, checked alike.
        let mut pages = 1;
        // The page the walking decoder is at; it is kept for the first reads.
        let mut at = 0;
        while dec.more_images() {
            dec.next_image()
                .map_err(|e| err(format!("page {pages}: {e}")))?;
            at += 1;
            let k = page_kind(&mut dec).map_err(|e| err(format!("page {pages}: {e}")))?;
            if k.width != kind.width
                || k.height != kind.height
                || k.dtype != kind.dtype
                || k.samples != kind.samples
            {
                // A reduced-resolution or thumbnail page ends the first series.
                break;
            }
            pages += 1;
        }
        let layout =
            if description.trim_start().starts_with("<?xml") || description.contains("<OME") {
                ome_layout(path, &description, pages)?
            } else if description.starts_with("ImageJ=") {
                imagej_layout(path, &description, pages, pixel)?
            } else {
                Layout {
                    flavour: "TIFF".into(),
                    axes: if pages > 1 {
                        vec![("z".into(), pages, 1, 1.0, None)]
                    } else {
                        vec![]
                    },
                    yx: [(pixel.0, None), (pixel.1, None)],
                    channels: vec![],
                    colours: vec![],
                }
            };
        let mut shape = Vec::new();
        let mut names = Vec::new();
        let mut scale = Vec::new();
        let mut units = Vec::new();
        let mut outer = Vec::new();
        let mut channels = layout.channels.clone();
        let mut colours = layout.colours.clone();
        for (name, size, stride, spacing, unit) in &layout.axes {
            if *size == 1 {
                continue;
            }
            if name == "c" && kind.samples > 1 {
                return Err(err(format!(
                    "{} channels of {} samples each are not supported",
                    size, kind.samples
                )));
            }
            if name == "z" && kind.samples > 1 {
                push_samples(
                    &mut shape, &mut names, &mut scale, &mut units, &mut outer, &kind,
                );
            }
            shape.push(*size);
            names.push(name.clone());
            scale.push(*spacing);
            units.push(unit.clone());
            outer.push(Outer::Pages { stride: *stride });
        }
        if kind.samples > 1 && !names.iter().any(|n| n == "c") {
            // After t, before z.
            let at = names.iter().position(|n| n == "z").unwrap_or(names.len());
            let (mut s2, mut n2, mut sc2, mut u2, mut o2) =
                (vec![], vec![], vec![], vec![], vec![]);
            push_samples(&mut s2, &mut n2, &mut sc2, &mut u2, &mut o2, &kind);
            shape.splice(at..at, s2);
            names.splice(at..at, n2);
            scale.splice(at..at, sc2);
            units.splice(at..at, u2);
            outer.splice(at..at, o2);
            if channels.is_empty() && kind.samples == 3 {
                channels = ["R", "G", "B"].map(String::from).to_vec();
                colours = ["FF0000", "00FF00", "0000FF"]
                    .map(|c| Some(c.into()))
                    .to_vec();
            }
        }
        if !names.iter().any(|n| n == "c") {
            channels.clear();
            colours.clear();
        }
        for (a, (spacing, unit)) in layout.yx.iter().enumerate() {
            shape.push(if a == 0 { kind.height } else { kind.width });
            names.push(if a == 0 { "y" } else { "x" }.into());
            scale.push(spacing.unwrap_or(1.0));
            units.push(unit.clone());
        }
        let notes = vec![
            format!(
                "{} pages, {} {}×{}, {}",
                pages,
                if tiled { "tiles" } else { "strips" },
                chunk_rows,
                chunk_cols,
                compression_name(compression)
            ),
            "read lazily: a job decodes only the strips or tiles it touches".into(),
        ];
        Ok(TiffFile {
            path: path.to_path_buf(),
            shape,
            dtype: kind.dtype,
            metadata: FileMetadata {
                flavour: layout.flavour,
                axes: names,
                scale,
                units,
                channels,
                colours,
                notes,
            },
            outer,
            samples: kind.samples,
            planar: kind.planar,
            chunk: (chunk_rows.min(kind.height), chunk_cols.min(kind.width)),
            tiled,
            idle: Mutex::new(vec![(at, dec)]),
        })
    }

    /// A decoder at page `page`: an idle one (at that page if one is), or a new one.
    fn take(&self, page: usize) -> Result<TiffDecoder> {
        let found = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            match idle.iter().position(|(p, _)| *p == page) {
                Some(i) => Some(idle.swap_remove(i)),
                None => idle.pop(),
            }
        };
        let (at, mut dec) = match found {
            Some(d) => d,
            None => (0, decoder(&self.path)?),
        };
        if at != page {
            dec.seek_to_image(page)
                .map_err(|e| self.error(page, None, e))?;
        }
        Ok(dec)
    }

    fn error(&self, page: usize, chunk: Option<u32>, e: impl std::fmt::Display) -> Error {
        let what = if self.tiled { "tile" } else { "strip" };
        let at = match chunk {
            Some(c) => format!("page {page}, {what} {c}"),
            None => format!("page {page}"),
        };
        bad(&self.path, Format::Tiff, format!("{at}: {e}"))
    }

    /// Decodes rows `ys` and columns `xs` of sample `sample` of `page` into `out`
    /// (rows of `xs.len()` elements, `row_stride` elements apart).
    fn read_plane(
        &self,
        dec: &mut TiffDecoder,
        page: usize,
        sample: usize,
        (ys, xs): (&Range<usize>, &Range<usize>),
        out: &mut [u8],
        row_stride: usize,
    ) -> Result<()> {
        let size = self.dtype.size();
        let (rows, cols) = self.chunk;
        let (height, width) = (
            self.shape[self.shape.len() - 2],
            self.shape[self.shape.len() - 1],
        );
        let across = width.div_ceil(cols);
        let per_plane = height.div_ceil(rows) * across;
        let mut buf = Vec::new();
        for cy in ys.start / rows..ys.end.div_ceil(rows) {
            for cx in xs.start / cols..xs.end.div_ceil(cols) {
                let mut index = cy * across + cx;
                if self.planar {
                    index += sample * per_plane;
                }
                let index = u32::try_from(index).map_err(|e| self.error(page, None, e))?;
                let layout = dec
                    .image_chunk_buffer_layout(index)
                    .map_err(|e| self.error(page, Some(index), e))?;
                buf.resize(layout.len, 0);
                dec.read_chunk_bytes(index, &mut buf)
                    .map_err(|e| self.error(page, Some(index), e))?;
                let (data_cols, _) = dec.chunk_data_dimensions(index);
                let stride = layout
                    .row_stride
                    .map_or(data_cols as usize * self.pixel_bytes(), |s| s.get());
                let (y0, x0) = (cy * rows, cx * cols);
                let y_in = ys.start.max(y0)..ys.end.min(y0 + rows);
                let x_in = xs.start.max(x0)..xs.end.min(x0 + cols);
                for y in y_in {
                    let row = &buf[(y - y0) * stride..];
                    let dst = ((y - ys.start) * row_stride + (x_in.start - xs.start)) * size;
                    let dst = &mut out[dst..dst + x_in.len() * size];
                    if self.planar || self.samples == 1 {
                        let src = (x_in.start - x0) * size;
                        dst.copy_from_slice(&row[src..src + x_in.len() * size]);
                    } else {
                        for (i, x) in x_in.clone().enumerate() {
                            let src = ((x - x0) * self.samples + sample) * size;
                            dst[i * size..(i + 1) * size].copy_from_slice(&row[src..src + size]);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Bytes per pixel in a chunky chunk (all samples).
    fn pixel_bytes(&self) -> usize {
        self.dtype.size() * if self.planar { 1 } else { self.samples }
    }
}

impl FileReader for TiffFile {
    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn dtype(&self) -> DType {
        self.dtype
    }

    fn read_unit(&self) -> Vec<usize> {
        let mut unit = vec![1; self.outer.len()];
        for (u, o) in unit.iter_mut().zip(&self.outer) {
            if matches!(o, Outer::Samples) && !self.planar {
                *u = self.samples;
            }
        }
        // Whole strips of a page, at least 1 MiB of them: units of one short strip
        // would each cost a cache entry and a decoder call.
        let (height, width) = (
            self.shape[self.shape.len() - 2],
            self.shape[self.shape.len() - 1],
        );
        let rows = if self.tiled {
            self.chunk.0
        } else {
            let row_bytes = (width * self.pixel_bytes()).max(1);
            let strips = (1usize << 20).div_ceil(row_bytes).div_ceil(self.chunk.0);
            (strips * self.chunk.0).min(height)
        };
        unit.extend([rows, self.chunk.1]);
        unit
    }

    fn metadata(&self) -> &FileMetadata {
        &self.metadata
    }

    fn read_box(&self, ranges: &[Range<usize>], out: &mut [u8]) -> Result<()> {
        let n = ranges.len();
        let inner = n - 2;
        let plane = ranges[n - 2].len() * ranges[n - 1].len() * self.dtype.size();
        let mut result = Ok(());
        let mut held: Option<(usize, TiffDecoder)> = None;
        for_each_outer(ranges, inner, |idx, offset| {
            if result.is_err() {
                return;
            }
            let (mut page, mut sample) = (0, 0);
            for (a, o) in self.outer.iter().enumerate() {
                let i = ranges[a].start + idx[a];
                match o {
                    Outer::Pages { stride } => page += i * stride,
                    Outer::Samples => sample = i,
                }
            }
            let mut dec = match held.take() {
                Some((p, d)) if p == page => d,
                Some((_, mut d)) => match d.seek_to_image(page) {
                    Ok(()) => d,
                    Err(e) => {
                        result = Err(self.error(page, None, e));
                        return;
                    }
                },
                None => match self.take(page) {
                    Ok(d) => d,
                    Err(e) => {
                        result = Err(e);
                        return;
                    }
                },
            };
            let start = offset * self.dtype.size();
            result = self.read_plane(
                &mut dec,
                page,
                sample,
                (&ranges[n - 2], &ranges[n - 1]),
                &mut out[start..start + plane],
                ranges[n - 1].len(),
            );
            held = Some((page, dec));
        });
        if let Some(d) = held {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(d);
        }
        result
    }
}

/// Appends the samples-of-a-pixel axis (`c`).
fn push_samples(
    shape: &mut Vec<usize>,
    names: &mut Vec<String>,
    scale: &mut Vec<f64>,
    units: &mut Vec<Option<String>>,
    outer: &mut Vec<Outer>,
    kind: &PageKind,
) {
    shape.push(kind.samples);
    names.push("c".into());
    scale.push(1.0);
    units.push(None);
    outer.push(Outer::Samples);
}

fn decoder(path: &Path) -> Result<TiffDecoder> {
    let file = File::open(path).map_err(|e| Error::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Decoder::new(BufReader::new(file))
        .map(|d| d.with_limits(Limits::unlimited()))
        .map_err(|e| bad(path, Format::Tiff, e.to_string()))
}

/// The pixel type and layout of the decoder's current page.
fn page_kind(dec: &mut TiffDecoder) -> std::result::Result<PageKind, String> {
    let (width, height) = dec.dimensions().map_err(|e| e.to_string())?;
    let samples = dec
        .find_tag_unsigned::<u16>(Tag::SamplesPerPixel)
        .map_err(|e| e.to_string())?
        .unwrap_or(1) as usize;
    let bits = dec
        .find_tag_unsigned_vec::<u16>(Tag::BitsPerSample)
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| vec![1]);
    let format = dec
        .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| vec![1]);
    if bits.iter().any(|&b| b != bits[0]) || format.iter().any(|&f| f != format[0]) {
        return Err("samples of different types in one pixel are not supported".into());
    }
    let planar = dec
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .map_err(|e| e.to_string())?
        .is_some_and(|p| p == PlanarConfiguration::Planar as u16);
    let dtype = match (SampleFormat::from_u16(format[0]), bits[0]) {
        (Some(SampleFormat::Uint), 8) => DType::U8,
        (Some(SampleFormat::Uint), 16) => DType::U16,
        (Some(SampleFormat::Uint), 32) => DType::U32,
        (Some(SampleFormat::Uint), 64) => DType::U64,
        (Some(SampleFormat::Int), 8) => DType::I8,
        (Some(SampleFormat::Int), 16) => DType::I16,
        (Some(SampleFormat::Int), 32) => DType::I32,
        (Some(SampleFormat::Int), 64) => DType::I64,
        (Some(SampleFormat::IEEEFP), 32) => DType::F32,
        (Some(SampleFormat::IEEEFP), 64) => DType::F64,
        (f, b) => {
            let kind = match f {
                Some(SampleFormat::Uint) => "unsigned",
                Some(SampleFormat::Int) => "signed",
                Some(SampleFormat::IEEEFP) => "float",
                _ => "unknown-format",
            };
            return Err(format!(
                "unsupported pixel type: {b}-bit {kind} samples (supported: 8, 16, 32 and 64-bit integers, 32 and 64-bit floats)"
            ));
        }
    };
    Ok(PageKind {
        width: width as usize,
        height: height as usize,
        dtype,
        samples,
        planar,
    })
}

fn compression_name(code: u16) -> &'static str {
    match code {
        1 => "uncompressed",
        5 => "LZW",
        8 | 32946 => "deflate",
        32773 => "PackBits",
        50000 => "zstd",
        7 => "JPEG",
        _ => "compressed",
    }
}

/// How the pages map to axes: (name, size, page stride, spacing, unit) per outer axis
/// in t, c, z order; the y and x spacing and unit; channel names.
struct Layout {
    flavour: String,
    axes: Vec<(String, usize, usize, f64, Option<String>)>,
    yx: [(Option<f64>, Option<String>); 2],
    channels: Vec<String>,
    colours: Vec<Option<String>>,
}

/// The layout an ImageJ description gives (`images=`, `channels=`, `slices=`,
/// `frames=`, `spacing=`, `unit=`, `finterval=`): pages in C, Z, T order, C fastest.
fn imagej_layout(
    path: &Path,
    description: &str,
    pages: usize,
    pixel: (Option<f64>, Option<f64>),
) -> Result<Layout> {
    let get = |key: &str| {
        description.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let count = |key: &str| get(key).and_then(|v| v.parse::<usize>().ok()).unwrap_or(1);
    let (c, z, t) = (count("channels"), count("slices"), count("frames"));
    let images = count("images").max(c * z * t);
    if c * z * t != images && images == pages {
        // Only `images=` given: a plain stack.
        return Ok(Layout {
            flavour: "ImageJ TIFF".into(),
            axes: vec![("z".into(), pages, 1, 1.0, None)],
            yx: [(pixel.0, None), (pixel.1, None)],
            channels: vec![],
            colours: vec![],
        });
    }
    if c * z * t > pages {
        return Err(bad(
            path,
            Format::Tiff,
            format!(
                "the ImageJ description counts {} images but the file has {pages} pages (images past the first page stored contiguously are not supported)",
                c * z * t
            ),
        ));
    }
    let unit = get("unit").and_then(|u| ngff_unit(&u));
    let spacing = get("spacing").and_then(|v| v.parse::<f64>().ok());
    let interval = get("finterval").and_then(|v| v.parse::<f64>().ok());
    Ok(Layout {
        flavour: "ImageJ TIFF".into(),
        axes: vec![
            (
                "t".into(),
                t,
                c * z,
                interval.unwrap_or(1.0),
                interval.and(Some("second".into())),
            ),
            ("c".into(), c, 1, 1.0, None),
            (
                "z".into(),
                z,
                c,
                spacing.unwrap_or(1.0),
                spacing.and(unit.clone()),
            ),
        ],
        yx: [
            (pixel.0, pixel.0.and(unit.clone())),
            (pixel.1, pixel.1.and(unit)),
        ],
        channels: vec![],
        colours: vec![],
    })
}

/// The layout of the first image of an OME-XML description: sizes, dimension order,
/// physical sizes (micrometers unless a unit is given), time increment, channel
/// names. Planes are taken as stored in order from the first page.
fn ome_layout(path: &Path, xml: &str, pages: usize) -> Result<Layout> {
    let err = |m: String| bad(path, Format::Tiff, format!("OME-XML: {m}"));
    let doc = roxmltree::Document::parse(xml).map_err(|e| err(e.to_string()))?;
    let pixels = doc
        .descendants()
        .find(|n| n.has_tag_name("Pixels"))
        .ok_or_else(|| err("no Pixels element".into()))?;
    let size = |a: &str| {
        pixels
            .attribute(a)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
    };
    let (sc, sz, st) = (size("SizeC"), size("SizeZ"), size("SizeT"));
    let order = pixels.attribute("DimensionOrder").unwrap_or("XYZCT");
    let physical = |a: &str| {
        let v = pixels.attribute(a).and_then(|v| v.parse::<f64>().ok())?;
        let unit = pixels
            .attribute(format!("{a}Unit").as_str())
            .map_or(Some("micrometer".to_string()), ngff_unit);
        Some((v, unit))
    };
    let channels: Vec<String> = pixels
        .children()
        .filter(|n| n.has_tag_name("Channel"))
        .map(|n| n.attribute("Name").unwrap_or("").to_string())
        .collect();
    let colours: Vec<Option<String>> = pixels
        .children()
        .filter(|n| n.has_tag_name("Channel"))
        .map(|n| n.attribute("Color").and_then(hex_colour))
        .collect();
    let samples_per_channel = pixels
        .children()
        .find(|n| n.has_tag_name("Channel"))
        .and_then(|n| n.attribute("SamplesPerPixel"))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1);
    // RGB planes: the channel axis is a pixel's samples, not pages.
    let sc_pages = sc / samples_per_channel.max(1);
    let planes = sc_pages * sz * st;
    if planes > pages {
        return Err(err(format!(
            "the image has {planes} planes but the file has {pages} pages"
        )));
    }
    let mut stride = 1;
    let mut strides = [1usize; 3];
    for d in order.chars().skip(2) {
        let (i, n) = match d {
            'Z' => (2, sz),
            'C' => (1, sc_pages),
            'T' => (0, st),
            other => return Err(err(format!("dimension order {order} ({other})"))),
        };
        strides[i] = stride;
        stride *= n;
    }
    let (zs, zu) = physical("PhysicalSizeZ").map_or((1.0, None), |(v, u)| (v, u));
    let time = pixels
        .attribute("TimeIncrement")
        .and_then(|v| v.parse::<f64>().ok());
    let time_unit = pixels
        .attribute("TimeIncrementUnit")
        .map_or(Some("second".to_string()), ngff_unit);
    let yx = [physical("PhysicalSizeY"), physical("PhysicalSizeX")]
        .map(|p| p.map_or((None, None), |(v, u)| (Some(v), u)));
    let named = channels.iter().any(|c| !c.is_empty()) && channels.len() == sc_pages;
    let coloured = colours.iter().any(Option::is_some) && colours.len() == sc_pages;
    Ok(Layout {
        flavour: "OME-TIFF".into(),
        axes: vec![
            (
                "t".into(),
                st,
                strides[0],
                time.unwrap_or(1.0),
                time.and(time_unit),
            ),
            ("c".into(), sc_pages, strides[1], 1.0, None),
            ("z".into(), sz, strides[2], zs, zu),
        ],
        yx,
        channels: if named || coloured { channels } else { vec![] },
        colours: if named || coloured { colours } else { vec![] },
    })
}
