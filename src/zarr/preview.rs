//! `preview`: a picture of an array (a maximum or mean projection, or a slice) as a
//! PNG, streamed chunk by chunk with memory for the picture and the chunks in flight;
//! on an OME-Zarr pyramid, from the level nearest the size asked.

use std::path::PathBuf;
use std::sync::Mutex;

use rayon::prelude::*;

use super::image::open_level;
use crate::block::BlockAny;
use crate::dtype::{Element, match_any};
use crate::error::{Error, Result};
use crate::picture::{Colormap, Contrast, Image2};
use crate::region::{Region, unravel};
use crate::store::{Input, OmeImage};

/// How the picture is made from the axis it shows across.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PreviewMethod {
    /// The maximum along the axis (a maximum-intensity projection).
    #[default]
    Max,
    /// The mean along the axis.
    Mean,
    /// One index along the axis ([`Preview::index`], the middle by default).
    Slice,
}

impl std::str::FromStr for PreviewMethod {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "max" => Ok(PreviewMethod::Max),
            "mean" => Ok(PreviewMethod::Mean),
            "slice" => Ok(PreviewMethod::Slice),
            other => Err(Error::InvalidParameter {
                op: "method",
                message: format!("'{other}' (expected max, mean or slice)"),
            }),
        }
    }
}

/// A picture of an array to write.
///
/// The picture shows the array's last two axes other than the projected one. The
/// projected axis is [`Preview::axis`], by default the third from last (`z` of
/// `…zyx`) unless that is a channel or time axis (a 2-D array, or `c,y,x`, is shown
/// as it is). The other axes are held at index 0, the channel axis (`c`) at
/// [`Preview::channel`].
#[derive(Clone, Debug)]
pub struct Preview {
    /// The array: a Zarr array, an OME-Zarr image, or a file (TIFF, NIfTI).
    pub input: PathBuf,
    /// The PNG to write.
    pub output: PathBuf,
    /// The level of an OME-Zarr image [default: the coarsest whose picture is at least
    /// [`Preview::size`] pixels on its longer side; level 0 without a size].
    pub level: Option<usize>,
    /// The axis projected: its number or its name (`z`) [default: see above].
    pub axis: Option<String>,
    /// How it is projected.
    pub method: PreviewMethod,
    /// The index shown by [`PreviewMethod::Slice`] [default: the middle].
    pub index: Option<usize>,
    /// The index along the channel axis [default: 0].
    pub channel: Option<usize>,
    /// The contrast window.
    pub contrast: Contrast,
    /// The colour map.
    pub colormap: Colormap,
    /// The picture's longer side in pixels [default: the projection's own shape].
    pub size: Option<usize>,
    /// Reader threads [default: all cores].
    pub threads: Option<usize>,
}

/// What [`Preview::run`] drew.
#[derive(Clone, Debug, PartialEq)]
pub struct PreviewReport {
    /// The level read.
    pub level: usize,
    /// The shape of the array read.
    pub shape: Vec<usize>,
    /// The axis projected, if any.
    pub axis: Option<usize>,
    /// The axes shown as the picture's rows and columns.
    pub shown: (usize, usize),
    /// The picture's rows and columns.
    pub picture: (usize, usize),
    /// The contrast window applied.
    pub window: (f64, f64),
}

impl Preview {
    /// A maximum projection of `input` into `output`, with the defaults.
    pub fn new(input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Preview {
        Preview {
            input: input.into(),
            output: output.into(),
            level: None,
            axis: None,
            method: PreviewMethod::Max,
            index: None,
            channel: None,
            contrast: Contrast::Auto,
            colormap: Colormap::Gray,
            size: None,
            threads: None,
        }
    }

    /// Draws the picture and writes the PNG.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an axis, index or channel out of range or a
    /// size of 0; the input's errors; [`Error::Store`] if the PNG cannot be written.
    pub fn run(&self) -> Result<PreviewReport> {
        let bad = |op: &'static str, message: String| Error::InvalidParameter { op, message };
        if self.size == Some(0) {
            return Err(bad("size", "must be at least 1 pixel".into()));
        }
        let level = match self.level {
            Some(l) => l,
            None => self.nearest_level()?,
        };
        let (path, image) = open_level(&self.input, level)?;
        let input = Input::open(&path)?;
        let shape = input.shape().to_vec();
        let n = shape.len();
        let names: Vec<String> = match (&image, input.file_metadata()) {
            (_, Some(m)) => m.axes.clone(),
            (Some((image, _)), None) => image.axes.iter().map(|a| a.name.clone()).collect(),
            (None, None) => OmeImage::default_axes(n)
                .into_iter()
                .map(|a| a.name)
                .collect(),
        };
        if n < 2 {
            return Err(bad(
                "preview",
                format!("a picture needs 2 axes; the array has {n}"),
            ));
        }
        let axis = match &self.axis {
            Some(a) => Some(match a.parse::<usize>() {
                Ok(i) if i < n => i,
                Ok(i) => return Err(bad("axis", format!("{i} is out of range for {n} axes"))),
                Err(_) => names.iter().position(|x| x == a.trim()).ok_or_else(|| {
                    bad(
                        "axis",
                        format!("no axis named '{a}' (axes: {})", names.join(",")),
                    )
                })?,
            }),
            None if n >= 3 && !["c", "t"].contains(&names[n - 3].as_str()) => Some(n - 3),
            None => None,
        };
        let shown: Vec<usize> = (0..n).filter(|&a| Some(a) != axis).collect();
        let (rows_axis, cols_axis) = (shown[shown.len() - 2], shown[shown.len() - 1]);
        let channel_axis = names.iter().position(|x| x == "c");
        let mut start = vec![0usize; n];
        let mut len = vec![1usize; n];
        for a in [rows_axis, cols_axis] {
            len[a] = shape[a];
        }
        if let Some(c) = channel_axis.filter(|&c| c != rows_axis && c != cols_axis) {
            let k = self.channel.unwrap_or(0);
            if Some(c) == axis {
                return Err(bad("axis", "the channel axis cannot be projected".into()));
            }
            if k >= shape[c] {
                return Err(bad(
                    "channel",
                    format!("{k} is out of range for {} channels", shape[c]),
                ));
            }
            start[c] = k;
        } else if self.channel.is_some_and(|k| k > 0) {
            return Err(bad(
                "channel",
                "the array has no channel axis to choose from".into(),
            ));
        }
        let method = if axis.is_none() {
            PreviewMethod::Slice
        } else {
            self.method
        };
        if let Some(p) = axis {
            match method {
                PreviewMethod::Slice => {
                    let k = self.index.unwrap_or(shape[p] / 2);
                    if k >= shape[p] {
                        return Err(bad(
                            "index",
                            format!("{k} is out of range for axis {p} of {}", shape[p]),
                        ));
                    }
                    start[p] = k;
                }
                _ => len[p] = shape[p],
            }
        }
        let region = Region::new(start, len);
        let values = self.project(&input, &region, axis, method, (rows_axis, cols_axis))?;
        let mut picture = Image2 {
            rows: shape[rows_axis],
            cols: shape[cols_axis],
            values,
        };
        if let Some(size) = self.size {
            picture = picture.resized(size);
        }
        let window = picture.window(self.contrast);
        let notes = [
            ("Source", self.input.display().to_string()),
            (
                "Description",
                format!(
                    "haloflow preview: level {level}, {} of axis {:?} ({}), window {} to {}",
                    match method {
                        PreviewMethod::Max => "maximum",
                        PreviewMethod::Mean => "mean",
                        PreviewMethod::Slice => "slice",
                    },
                    axis,
                    axis.map_or("-", |a| names[a].as_str()),
                    window.0,
                    window.1
                ),
            ),
        ];
        picture.write_png(&self.output, window, self.colormap, &notes)?;
        Ok(PreviewReport {
            level,
            shape,
            axis,
            shown: (rows_axis, cols_axis),
            picture: (picture.rows, picture.cols),
            window,
        })
    }

    /// The coarsest level of an OME-Zarr input whose picture is at least `size` on
    /// its longer side (0 without a size or for other inputs).
    fn nearest_level(&self) -> Result<usize> {
        let Some(size) = self.size else { return Ok(0) };
        if crate::formats::detect(&self.input).is_some() {
            return Ok(0);
        }
        let Some(image) = OmeImage::open(&self.input)? else {
            return Ok(0);
        };
        let mut best = 0;
        for level in 0..image.levels.len() {
            let shape = Input::open(&image.level_path(level)?)?.shape().to_vec();
            let n = shape.len();
            if shape[n - 2].max(shape[n - 1]) >= size {
                best = level;
            }
        }
        Ok(best)
    }

    /// The projection of `region` along `axis` (`None`: the region is one plane),
    /// chunk by chunk in parallel: rows × columns values over `shown`.
    fn project(
        &self,
        input: &Input,
        region: &Region,
        axis: Option<usize>,
        method: PreviewMethod,
        shown: (usize, usize),
    ) -> Result<Vec<f64>> {
        let (rows, cols) = (region.shape[shown.0], region.shape[shown.1]);
        let init = if method == PreviewMethod::Max {
            f64::NEG_INFINITY
        } else {
            0.0
        };
        let acc = Mutex::new(vec![init; rows * cols]);
        // The boxes of the unit of decoding (a sharded array's inner chunks, a file's
        // strips or tiles) the region touches: memory is the picture and a few units.
        let chunk = crate::exec::Source::read_chunk_shape(input);
        let n = region.shape.len();
        let spans: Vec<Vec<(usize, usize)>> = (0..n)
            .map(|a| {
                let (s, e) = (region.start[a], region.start[a] + region.shape[a]);
                let mut out = Vec::new();
                let mut i = s;
                while i < e {
                    let next = ((i / chunk[a]) + 1) * chunk[a];
                    out.push((i, next.min(e) - i));
                    i = next.min(e);
                }
                out
            })
            .collect();
        let counts: Vec<usize> = spans.iter().map(Vec::len).collect();
        let total: usize = counts.iter().product();
        let work = || {
            (0..total)
                .into_par_iter()
                .try_for_each(|flat| -> Result<()> {
                    let combo = unravel(flat, &counts);
                    let start: Vec<usize> = (0..n).map(|a| spans[a][combo[a]].0).collect();
                    let shape: Vec<usize> = (0..n).map(|a| spans[a][combo[a]].1).collect();
                    let block = input.read_region(&Region::new(start.clone(), shape.clone()))?;
                    let partial = reduce(&block, &shape, axis, method, shown);
                    let (r0, c0) = (
                        start[shown.0] - region.start[shown.0],
                        start[shown.1] - region.start[shown.1],
                    );
                    let (br, bc) = (shape[shown.0], shape[shown.1]);
                    let mut acc = acc.lock().unwrap_or_else(|e| e.into_inner());
                    for r in 0..br {
                        for c in 0..bc {
                            let a = &mut acc[(r0 + r) * cols + c0 + c];
                            let v = partial[r * bc + c];
                            *a = match method {
                                PreviewMethod::Max => max_nan(*a, v),
                                _ => *a + v,
                            };
                        }
                    }
                    Ok(())
                })
        };
        super::options::on_threads(self.threads, work)?;
        let mut values = acc.into_inner().unwrap_or_else(|e| e.into_inner());
        if method == PreviewMethod::Mean {
            let m = axis.map_or(1, |p| region.shape[p]) as f64;
            values.iter_mut().for_each(|v| *v /= m);
        }
        Ok(values)
    }
}

/// NumPy's maximum: NaN wins.
fn max_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// A block's values reduced along `axis` (the maximum, or the sum for a mean) into
/// rows × columns over the `shown` axes; the other axes have length 1.
fn reduce(
    block: &BlockAny<'_>,
    shape: &[usize],
    axis: Option<usize>,
    method: PreviewMethod,
    shown: (usize, usize),
) -> Vec<f64> {
    fn go<T: Element>(
        data: &[T],
        shape: &[usize],
        axis: Option<usize>,
        method: PreviewMethod,
        shown: (usize, usize),
    ) -> Vec<f64> {
        let strides = crate::block::c_strides(shape);
        let (rows, cols) = (shape[shown.0], shape[shown.1]);
        let depth = axis.map_or(1, |p| shape[p]);
        let step = axis.map_or(0, |p| strides[p]);
        let init = if method == PreviewMethod::Max {
            f64::NEG_INFINITY
        } else {
            0.0
        };
        let mut out = vec![init; rows * cols];
        // Plane by plane along the axis: rows of the last axis are contiguous.
        for k in 0..depth {
            for r in 0..rows {
                let base = k * step + r * strides[shown.0];
                let row = &mut out[r * cols..(r + 1) * cols];
                for (c, v) in row.iter_mut().enumerate() {
                    let x = data[base + c * strides[shown.1]].to_f64();
                    *v = match method {
                        PreviewMethod::Max => max_nan(*v, x),
                        _ => *v + x,
                    };
                }
            }
        }
        out
    }
    match_any!(block, BlockAny, b => go(&b.data, shape, axis, method, shown))
}
