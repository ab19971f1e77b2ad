//! Inputs as users name them (an OME-Zarr image, one of its levels, or a plain array)
//! and the OME-Zarr image an output becomes.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::units::{AxisSpacing, Spacing, micrometers_per};
use crate::block::Block;
use crate::dtype::match_any;
use crate::error::{Error, Result};
use crate::ops::per_axis;
use crate::store::{Axis, NgffVersion, OmeImage, Output, OutputSpec};
use crate::{ArrayViewAny, DType, Pipeline, Region};

/// The array at `path` to read: `path` itself, or level `level` of the OME-Zarr image
/// there; with the image and level when the array is one (its level's path also
/// finds the image around it).
///
/// # Errors
/// [`Error::Store`] for unreadable metadata, a missing level.
pub fn open_level(path: &Path, level: usize) -> Result<(PathBuf, Option<(OmeImage, usize)>)> {
    if let Some(meta) = crate::formats::metadata(path)? {
        if level != 0 {
            return Err(Error::InvalidParameter {
                op: "level",
                message: format!("{}: a file has one level (0), not {level}", path.display()),
            });
        }
        return Ok((path.to_path_buf(), Some((file_image(&meta)?, 0))));
    }
    if let Some(image) = OmeImage::open(path)? {
        let array = image.level_path(level)?;
        return Ok((array, Some((image, level))));
    }
    Ok((path.to_path_buf(), OmeImage::of_level(path)?))
}

/// The OME-Zarr image a file's metadata describes (NGFF 0.5): its axes, spacing,
/// units and channels.
fn file_image(meta: &crate::formats::FileMetadata) -> Result<OmeImage> {
    let axes = OmeAxes {
        axes: Some(meta.axes.clone()),
        scale: Some(meta.scale.clone()),
        units: Some(
            meta.units
                .iter()
                .map(|u| u.clone().unwrap_or_else(|| "-".into()))
                .collect(),
        ),
    };
    let mut image = axes.image(meta.axes.len(), NgffVersion::V05)?;
    image.omero = meta.omero();
    Ok(image)
}

/// An OME-Zarr image to make from a plain array: its axes, pixel spacing and units
/// (the command's `--ome --axes z,y,x --scale 2,0.4,0.4 --units micrometer,...`).
/// Unset fields take the defaults: the last names of `t,c,z,y,x`, spacing 1, no unit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OmeAxes {
    /// The axis names, one per axis.
    pub axes: Option<Vec<String>>,
    /// The pixel spacing, one value or one per axis.
    pub scale: Option<Vec<f64>>,
    /// The units, one per axis (`micrometer`, `second`, ...; `-` or empty for none).
    pub units: Option<Vec<String>>,
}

impl OmeAxes {
    /// The pixel spacing these axes give an array of `ndim` axes.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `scale` does not fit the axes.
    pub fn spacing(&self, ndim: usize) -> Result<Spacing> {
        let names = match &self.axes {
            Some(n) => n.clone(),
            None => OmeImage::default_axes(ndim)
                .into_iter()
                .map(|a| a.name)
                .collect(),
        };
        let scale = match &self.scale {
            Some(s) => per_axis("scale", s, ndim)?,
            None => vec![1.0; ndim],
        };
        let units: Vec<Option<f64>> = match &self.units {
            Some(u) if u.len() == ndim => u.iter().map(|u| micrometers_per(u)).collect(),
            _ => vec![None; ndim],
        };
        Ok(Spacing {
            axes: names
                .into_iter()
                .zip(scale)
                .zip(units)
                .map(|((name, spacing), micrometers_per_unit)| AxisSpacing {
                    name,
                    spacing,
                    micrometers_per_unit,
                })
                .collect(),
        })
    }

    /// The image these axes describe, for an array of `ndim` axes.
    fn image(&self, ndim: usize, version: NgffVersion) -> Result<OmeImage> {
        let bad = |message: String| Error::InvalidParameter { op: "ome", message };
        if !(2..=5).contains(&ndim) {
            return Err(bad(format!(
                "OME-Zarr images have 2 to 5 axes; this array has {ndim}"
            )));
        }
        let mut axes = match &self.axes {
            Some(names) if names.len() != ndim => {
                return Err(bad(format!(
                    "--axes gives {} names for {ndim} axes",
                    names.len()
                )));
            }
            Some(names) => names
                .iter()
                .map(|n| Axis {
                    name: n.clone(),
                    kind: Some(OmeImage::axis_kind(n).to_string()),
                    unit: None,
                })
                .collect(),
            None => OmeImage::default_axes(ndim),
        };
        if let Some(units) = &self.units {
            if units.len() != ndim {
                return Err(bad(format!(
                    "--units gives {} units for {ndim} axes",
                    units.len()
                )));
            }
            for (a, u) in axes.iter_mut().zip(units) {
                a.unit = (u != "-" && !u.is_empty()).then(|| u.clone());
            }
        }
        let scale = match &self.scale {
            Some(s) => per_axis("scale", s, ndim)?,
            None => vec![1.0; ndim],
        };
        if scale.iter().any(|&s| !(s > 0.0 && s.is_finite())) {
            return Err(bad(format!("--scale must be positive, got {scale:?}")));
        }
        Ok(OmeImage::plain(axes, scale, version))
    }
}

/// The pixel spacing of an input: its OME-Zarr level's, or that of `ome` for a plain
/// array; `None` when neither says.
///
/// # Errors
/// As [`OmeAxes::spacing`].
pub fn input_spacing(
    image: &Option<(OmeImage, usize)>,
    ome: Option<&OmeAxes>,
    ndim: usize,
) -> Result<Option<Spacing>> {
    if let Some((image, level)) = image {
        return Ok(Some(Spacing::of(image, *level)));
    }
    ome.map(|o| o.spacing(ndim)).transpose()
}

/// The OME-Zarr image to write, if any: derived from the input image's level (its
/// version unless `version` says), or made for a plain array from `ome` (always, with
/// `force`, as a pyramid does), with the transformations `pipeline` implies and the
/// element types it maps between.
///
/// # Errors
/// [`Error::InvalidParameter`] for axes that do not fit, or a version without an
/// image to write.
pub fn output_image(
    input: Option<(OmeImage, usize)>,
    ome: Option<&OmeAxes>,
    force: bool,
    version: Option<NgffVersion>,
    pipeline: &Pipeline,
    shape: &[usize],
    (from, to): (DType, DType),
) -> Result<Option<OmeImage>> {
    let ndim = shape.len();
    let bad = |message: String| Error::InvalidParameter { op: "ome", message };
    let chosen = match (version, &input) {
        (Some(v), _) => v,
        (None, Some((image, _))) => image.version,
        (None, None) => NgffVersion::V05,
    };
    let (image, level) = match (input, ome) {
        (Some(found), _) => found,
        (None, Some(axes)) => (axes.image(ndim, chosen)?, 0),
        (None, None) if force => (OmeAxes::default().image(ndim, chosen)?, 0),
        (None, None) => {
            if version.is_some() {
                return Err(bad("--ngff-version needs an OME-Zarr input or --ome".into()));
            }
            return Ok(None);
        }
    };
    if image.axes.len() != ndim {
        return Err(bad("the image's axes do not match its array".into()));
    }
    Ok(Some(
        image.derived(level, pipeline, shape, from, to, chosen)?,
    ))
}

/// Writes `array` as a new Zarr v3 array at `path` (chunks `chunks`, one value or one
/// per axis; zstd level 3), or, with `ome`, as an OME-Zarr image (NGFF 0.5) whose level
/// `0` is the array; an array an earlier call wrote there is replaced.
///
/// ```
/// use haloflow::zarr::{OmeAxes, write_array};
/// use ndarray::{ArrayD, IxDyn};
///
/// let dir = std::env::temp_dir().join(format!("haloflow-write-array-{}", std::process::id()));
/// let volume = ArrayD::from_shape_fn(IxDyn(&[8, 16, 16]), |i| (i[0] * i[1] + i[2]) as u16);
/// let axes = OmeAxes { scale: Some(vec![2.0, 0.5, 0.5]), ..OmeAxes::default() };
/// write_array(&dir.join("image.ome.zarr"), &volume.view().into(), &[4, 8, 8], Some(&axes))?;
/// let (array, image) = haloflow::zarr::open_level(&dir.join("image.ome.zarr"), 0)?;
/// assert_eq!(haloflow::Input::open(&array)?.shape(), &[8, 16, 16]);
/// assert_eq!(image.unwrap().0.levels[0].scale, vec![2.0, 0.5, 0.5]);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), haloflow::Error>(())
/// ```
///
/// # Errors
/// [`Error`] for chunks or axes that do not fit the array, or a failed write; a
/// directory that holds something else than such an array or image is left alone.
pub fn write_array(
    path: &Path,
    array: &ArrayViewAny<'_>,
    chunks: &[usize],
    ome: Option<&OmeAxes>,
) -> Result<()> {
    let shape = array.shape().to_vec();
    let chunk = per_axis("chunks", chunks, shape.len())?;
    let image = ome
        .map(|o| o.image(shape.len(), NgffVersion::V05))
        .transpose()?;
    let mut spec = OutputSpec::new(&shape, array.dtype(), &chunk);
    let array_path = match &image {
        Some(image) => {
            image.check_target(path)?;
            spec = spec.with_dimension_names(image.axes.iter().map(|a| a.name.clone()).collect());
            path.join("0")
        }
        None => path.to_path_buf(),
    };
    let output = Output::create(&array_path, &spec, true)?;
    let whole = Region::whole(&shape);
    match_any!(array, ArrayViewAny, a => {
        let data = a.as_standard_layout();
        let values = data.as_slice().expect("a standard layout");
        output.write(&whole, &Block::new(whole.sets(), Cow::Borrowed(values)).into_any())?;
    });
    output.flush()?;
    if let Some(image) = &image {
        image.write_group(path, &Pipeline::new(vec![]), None)?;
    }
    Ok(())
}
