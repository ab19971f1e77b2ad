//! OME-Zarr (NGFF) images: a group whose `multiscales` metadata names the axes and
//! gives each resolution level's array its scale and translation. NGFF 0.4 lives on
//! Zarr v2 (`.zattrs`), 0.5 on Zarr v3 (`zarr.json`, under `attributes.ome`).
//!
//! haloflow reads one level of an image and writes its result as an image of one level
//! (`0`), with the coordinate transformations the ops imply: filters keep them;
//! downsampling by f multiplies the scale by f and moves the translation by (f − 1)/2
//! of the input spacing (pixel centres move; `stride` keeps the first pixel's centre);
//! upsampling does the inverse.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::files::{Found, inspect};
use super::input::Input;
use crate::error::{Error, Result};

mod write;

/// An NGFF version haloflow reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NgffVersion {
    /// 0.4, on Zarr v2.
    V04,
    /// 0.5, on Zarr v3.
    V05,
}

impl NgffVersion {
    /// The version string (`"0.4"`, `"0.5"`).
    pub fn as_str(self) -> &'static str {
        match self {
            NgffVersion::V04 => "0.4",
            NgffVersion::V05 => "0.5",
        }
    }

    /// The Zarr format its arrays and groups use.
    pub fn zarr_format(self) -> u8 {
        match self {
            NgffVersion::V04 => 2,
            NgffVersion::V05 => 3,
        }
    }
}

impl std::str::FromStr for NgffVersion {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "0.4" => Ok(NgffVersion::V04),
            "0.5" => Ok(NgffVersion::V05),
            other => Err(Error::InvalidParameter {
                op: "ngff-version",
                message: format!("'{other}' (expected 0.4 or 0.5)"),
            }),
        }
    }
}

/// One axis of an image.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// Its name (`t`, `c`, `z`, `y`, `x`, ...).
    pub name: String,
    /// Its type (`time`, `channel`, `space`), if given.
    pub kind: Option<String>,
    /// Its unit (`micrometer`, `second`, ...), if given.
    pub unit: Option<String>,
}

/// One resolution level: its array's path in the group, and where its pixels lie.
#[derive(Clone, Debug, PartialEq)]
pub struct Level {
    /// The array's path, relative to the group.
    pub path: String,
    /// Pixel spacing per axis.
    pub scale: Vec<f64>,
    /// The first pixel's centre per axis (zeros when the metadata has none).
    pub translation: Vec<f64>,
}

/// The multiscales metadata of an OME-Zarr image group.
#[derive(Clone, Debug, PartialEq)]
pub struct OmeImage {
    /// Where the group is.
    pub path: PathBuf,
    /// Its NGFF version.
    pub version: NgffVersion,
    /// The image's name, if given.
    pub name: Option<String>,
    /// The axes, outermost first.
    pub axes: Vec<Axis>,
    /// The levels, finest first.
    pub levels: Vec<Level>,
    /// The multiscale's own coordinate transformations (applied after each level's).
    pub transforms: Option<Value>,
    /// The `omero` rendering metadata (channels), where present.
    pub omero: Option<Value>,
    /// The affine transforms a chain applied to the pixels (rotations, shears,
    /// deskews), each from output to input pixel coordinates in the form of NGFF's
    /// coordinate-transformations proposal (`{"type": "affine", "affine": rows}`),
    /// recorded in the multiscale's `metadata`.
    pub resampled: Vec<Value>,
}

fn bad(path: &Path, reason: String) -> Error {
    Error::UnsupportedArray {
        path: path.to_path_buf(),
        reason: format!("OME-Zarr metadata: {reason}"),
    }
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&super::files::read_file(path).ok()??).ok()
}

impl OmeImage {
    /// The image at `path`, or `None` when `path` is not an OME-Zarr image group.
    /// Malformed multiscales metadata is an error.
    pub fn open(path: &Path) -> Result<Option<OmeImage>> {
        let (version, attrs) = match inspect(path)? {
            Found::Group(3) => {
                let meta = read_json(&path.join("zarr.json")).unwrap_or_default();
                let ome = meta["attributes"]["ome"].clone();
                if ome.get("multiscales").is_none() {
                    return Ok(None);
                }
                (NgffVersion::V05, ome)
            }
            Found::Group(_) => {
                let attrs = read_json(&path.join(".zattrs")).unwrap_or_default();
                if attrs.get("multiscales").is_none() {
                    return Ok(None);
                }
                (NgffVersion::V04, attrs)
            }
            _ => return Ok(None),
        };
        let ms = &attrs["multiscales"][0];
        let axes = ms["axes"]
            .as_array()
            .ok_or_else(|| bad(path, "multiscales[0] has no axes".into()))?
            .iter()
            .map(|a| {
                Ok(Axis {
                    name: a["name"]
                        .as_str()
                        .ok_or_else(|| bad(path, format!("an axis without a name: {a}")))?
                        .to_string(),
                    kind: a["type"].as_str().map(str::to_string),
                    unit: a["unit"].as_str().map(str::to_string),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ndim = axes.len();
        let levels = ms["datasets"]
            .as_array()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| bad(path, "multiscales[0] has no datasets".into()))?
            .iter()
            .map(|d| {
                let level_path = d["path"]
                    .as_str()
                    .ok_or_else(|| bad(path, format!("a dataset without a path: {d}")))?;
                let mut scale = vec![1.0; ndim];
                let mut translation = vec![0.0; ndim];
                for t in d["coordinateTransformations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let values = |key: &str| -> Result<Vec<f64>> {
                        let v: Vec<f64> = t[key]
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_f64).collect())
                            .unwrap_or_default();
                        if v.len() != ndim {
                            return Err(bad(
                                path,
                                format!("dataset '{level_path}': {key} {v:?} for {ndim} axes"),
                            ));
                        }
                        Ok(v)
                    };
                    match t["type"].as_str() {
                        Some("scale") => scale = values("scale")?,
                        Some("translation") => translation = values("translation")?,
                        _ => {}
                    }
                }
                Ok(Level {
                    path: level_path.to_string(),
                    scale,
                    translation,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(OmeImage {
            path: path.to_path_buf(),
            version,
            name: ms["name"].as_str().map(str::to_string),
            axes,
            levels,
            transforms: ms.get("coordinateTransformations").cloned(),
            omero: attrs.get("omero").cloned(),
            resampled: ms
                .get("metadata")
                .and_then(|m| m.get("coordinateTransformations"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        }))
    }

    /// The image holding the array at `array` as one of its levels, and which: the
    /// nearest enclosing image group (up to three directories up, as ngff-zarr nests
    /// `scale0/image`) whose datasets name the array's path.
    pub fn of_level(array: &Path) -> Result<Option<(OmeImage, usize)>> {
        let mut group = array.to_path_buf();
        let mut relative: Vec<String> = Vec::new();
        for _ in 0..3 {
            let Some(name) = group.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                return Ok(None);
            };
            relative.insert(0, name);
            group = match group.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if let Some(image) = OmeImage::open(&group)? {
                let path = relative.join("/");
                return Ok(image
                    .levels
                    .iter()
                    .position(|l| l.path.trim_end_matches('/') == path)
                    .map(|i| (image, i)));
            }
        }
        Ok(None)
    }

    /// The array of level `n`.
    pub fn level_path(&self, n: usize) -> Result<PathBuf> {
        match self.levels.get(n) {
            Some(l) => Ok(self.path.join(&l.path)),
            None => Err(Error::InvalidParameter {
                op: "level",
                message: format!(
                    "level {n} of an image with {} levels (0 to {})",
                    self.levels.len(),
                    self.levels.len() - 1
                ),
            }),
        }
    }

    /// The default axes of an array of `ndim` dimensions (1 to 5): the last `ndim` of
    /// t, c, z, y, x, with their types.
    pub fn default_axes(ndim: usize) -> Vec<Axis> {
        let all = [
            ("t", "time"),
            ("c", "channel"),
            ("z", "space"),
            ("y", "space"),
            ("x", "space"),
        ];
        all[5 - ndim.min(5)..]
            .iter()
            .map(|(n, k)| Axis {
                name: n.to_string(),
                kind: Some(k.to_string()),
                unit: None,
            })
            .collect()
    }

    /// The type NGFF gives an axis of this name (`t` time, `c` channel, else space).
    pub fn axis_kind(name: &str) -> &'static str {
        match name {
            "t" | "time" => "time",
            "c" | "channel" => "channel",
            _ => "space",
        }
    }

    /// An image of the given axes, one level `0` with this scale (translation 0):
    /// for `--ome` on a plain array.
    pub fn plain(axes: Vec<Axis>, scale: Vec<f64>, version: NgffVersion) -> OmeImage {
        let translation = vec![0.0; axes.len()];
        OmeImage {
            path: PathBuf::new(),
            version,
            name: None,
            axes,
            levels: vec![Level {
                path: "0".into(),
                scale,
                translation,
            }],
            transforms: None,
            omero: None,
            resampled: Vec::new(),
        }
    }

    /// Whether `path`, or the group holding it (for a level's array), is an NGFF label
    /// image (`image-label` metadata).
    pub fn is_label_image(path: &Path) -> bool {
        let has = |dir: &Path| {
            read_json(&dir.join("zarr.json"))
                .is_some_and(|v| v["attributes"]["ome"].get("image-label").is_some())
                || read_json(&dir.join(".zattrs")).is_some_and(|v| v.get("image-label").is_some())
        };
        has(path) || path.parent().is_some_and(has)
    }

    /// Several lines for `haloflow info`: version, axes, levels, channels.
    pub fn describe(&self) -> String {
        let axes: Vec<String> = self
            .axes
            .iter()
            .map(|a| {
                let mut s = a.name.clone();
                let extra: Vec<&str> = [a.kind.as_deref(), a.unit.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                if !extra.is_empty() {
                    s += &format!(" ({})", extra.join(", "));
                }
                s
            })
            .collect();
        let mut text = format!(
            "OME-Zarr image (NGFF {}){}\n  axes: {}\n",
            self.version.as_str(),
            self.name
                .as_deref()
                .map(|n| format!(" '{n}'"))
                .unwrap_or_default(),
            axes.join(", ")
        );
        for (i, l) in self.levels.iter().enumerate() {
            let shape = Input::open(&self.path.join(&l.path))
                .map(|a| format!("{:?} chunks {:?}", a.shape(), a.chunk_shape()))
                .unwrap_or_else(|e| format!("unreadable ({e})"));
            text += &format!(
                "  level {i} '{}': {shape}, scale {:?}, translation {:?}\n",
                l.path, l.scale, l.translation
            );
        }
        if let Some(channels) = self.omero.as_ref().and_then(|o| o["channels"].as_array()) {
            let labels: Vec<String> = channels
                .iter()
                .map(|c| {
                    format!(
                        "{} (#{})",
                        c["label"].as_str().unwrap_or("?"),
                        c["color"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            text += &format!("  channels: {}\n", labels.join(", "));
        }
        text
    }
}
