//! Writing OME-Zarr images: the image a chain makes of a level (its transformations,
//! the chain recorded, display windows refitted), its group's attributes, and label
//! images listed in their image's `labels` group.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::{Level, NgffVersion, OmeImage, read_json};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::{Op, Pipeline, per_axis};
use crate::stage::{DownMethod, Map as GeometricMap, Stage};
use crate::store::files::{self, Found, inspect};

/// Fits an omero display window to `output` elements: a mask from a threshold shows
/// 0 to 1; another integer type clamps the window to its range.
fn window_for(w: &mut Map<String, Value>, output: DType, mask: bool) {
    if mask {
        for (k, v) in [("start", 0), ("end", 1), ("min", 0), ("max", 1)] {
            w.insert(k.into(), json!(v));
        }
        return;
    }
    let Some((lo, hi)) = output.integer_range() else {
        return;
    };
    let (lo, hi) = (lo as f64, hi as f64);
    w.insert("min".into(), json!(lo));
    w.insert("max".into(), json!(hi));
    for k in ["start", "end"] {
        if let Some(v) = w.get(k).and_then(Value::as_f64) {
            w.insert(k.into(), json!(v.clamp(lo, hi)));
        }
    }
}

impl OmeImage {
    /// The image `pipeline` makes of level `level` (from `input` elements to `output`
    /// ones): one level `0`, its scale and translation moved as the ops move pixel
    /// centres, the chain recorded in `metadata` and `type`, and `omero` kept where
    /// it still holds (the channel axis unchanged), with display windows fitted to a
    /// new element type.
    pub fn derived(
        &self,
        level: usize,
        pipeline: &Pipeline,
        shape: &[usize],
        input: DType,
        output: DType,
        version: NgffVersion,
    ) -> Result<OmeImage> {
        let ndim = self.axes.len();
        let l = &self.levels[level];
        let (mut scale, mut translation) = (l.scale.clone(), l.translation.clone());
        let mut channels_kept = true;
        let mut resampled = self.resampled.clone();
        let mut shape = shape.to_vec();
        for op in &pipeline.ops {
            // (Ops that wait for statistics have no stages yet; they keep the shape.)
            let stages = op.stages(ndim).unwrap_or_default();
            let before = shape.clone();
            shape = stages.iter().fold(shape, |s, st| st.out_shape(&s));
            if let Some(Stage::Geometric(g)) = stages.first() {
                let r = g.resolve(&before);
                match &r.map {
                    // A zoom moves pixel centres as a resampling does.
                    GeometricMap::Zoom { ratio, grid_mode } => {
                        for a in 0..ndim {
                            if *grid_mode {
                                translation[a] += scale[a] * (0.5 * ratio[a] - 0.5);
                            }
                            scale[a] *= ratio[a];
                        }
                    }
                    GeometricMap::Matrix { matrix, offset } => {
                        let rows: Vec<Vec<f64>> = (0..=ndim)
                            .map(|h| {
                                (0..=ndim)
                                    .map(|l| match (h < ndim, l < ndim) {
                                        (true, true) => matrix[h * ndim + l],
                                        (true, false) => offset[h],
                                        (false, last) => f64::from(!last),
                                    })
                                    .collect()
                            })
                            .collect();
                        resampled.push(json!({
                            "type": "affine",
                            "affine": rows,
                            "input": "output pixels",
                            "output": "input pixels",
                        }));
                    }
                }
                continue;
            }
            let factors = match op {
                Op::Downsample { factor, .. } | Op::Upsample { factor, .. } => {
                    per_axis("factor", factor, ndim)?
                }
                _ => continue,
            };
            for a in 0..ndim {
                let f = factors[a] as f64;
                if factors[a] != 1 && self.axes[a].kind.as_deref() == Some("channel") {
                    channels_kept = false;
                }
                match op {
                    Op::Downsample { method, .. } => {
                        if *method != DownMethod::Stride {
                            translation[a] += (f - 1.0) / 2.0 * scale[a];
                        }
                        scale[a] *= f;
                    }
                    _ => {
                        scale[a] /= f;
                        translation[a] -= (f - 1.0) / 2.0 * scale[a];
                    }
                }
            }
        }
        // A final projection drops its axis, from the axes and every transform.
        let mut axes = self.axes.clone();
        let mut transforms = self.transforms.clone();
        if let Some(a) = pipeline.dropped_axis()? {
            if axes.len() <= 2 {
                return Err(Error::InvalidParameter {
                    op: "project",
                    message: "an OME-Zarr image keeps at least 2 axes: project with keepdims"
                        .into(),
                });
            }
            if axes[a].kind.as_deref() == Some("channel") {
                channels_kept = false;
            }
            axes.remove(a);
            scale.remove(a);
            translation.remove(a);
            for t in transforms
                .as_mut()
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                for key in ["scale", "translation"] {
                    if let Some(v) = t.get_mut(key).and_then(Value::as_array_mut)
                        && a < v.len()
                    {
                        v.remove(a);
                    }
                }
            }
        }
        let mut omero = self.omero.clone().filter(|_| channels_kept);
        if input != output {
            // A 0/1 mask: a threshold, after which only resampling and casts follow
            // (they keep the values 0 and 1).
            let mask = !output.is_float()
                && pipeline
                    .ops
                    .iter()
                    .rposition(|op| matches!(op, Op::Threshold { .. }))
                    .is_some_and(|i| {
                        pipeline.ops[i + 1..].iter().all(|op| {
                            matches!(
                                op,
                                Op::Downsample { .. } | Op::Upsample { .. } | Op::Cast { .. }
                            )
                        })
                    });
            for c in omero
                .as_mut()
                .and_then(|o| o.get_mut("channels"))
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(w) = c.get_mut("window").and_then(Value::as_object_mut) {
                    window_for(w, output, mask);
                }
            }
        }
        Ok(OmeImage {
            path: PathBuf::new(),
            version,
            name: self.name.clone(),
            axes,
            levels: vec![Level {
                path: "0".into(),
                scale,
                translation,
            }],
            transforms,
            omero,
            resampled,
        })
    }

    /// The multiscales entry (and omero) as NGFF attributes, recording `pipeline`, and
    /// `kind` as the multiscale's `type` (else the chain's ops).
    fn attributes(&self, pipeline: &Pipeline, kind: Option<&str>) -> Map<String, Value> {
        let axes: Vec<Value> = self
            .axes
            .iter()
            .map(|a| {
                let mut m = Map::new();
                m.insert("name".into(), json!(a.name));
                if let Some(k) = &a.kind {
                    m.insert("type".into(), json!(k));
                }
                if let Some(u) = &a.unit {
                    m.insert("unit".into(), json!(u));
                }
                Value::Object(m)
            })
            .collect();
        let datasets: Vec<Value> = self
            .levels
            .iter()
            .map(|l| {
                let mut transforms = vec![json!({"type": "scale", "scale": l.scale})];
                if l.translation.iter().any(|&t| t != 0.0) {
                    transforms.push(json!({"type": "translation", "translation": l.translation}));
                }
                json!({"path": l.path, "coordinateTransformations": transforms})
            })
            .collect();
        let chain = pipeline
            .ops
            .iter()
            .map(|op| match op {
                Op::Downsample { method, .. } => format!("downsample {method:?}").to_lowercase(),
                other => other.name().to_string(),
            })
            .collect::<Vec<_>>()
            .join(" + ");
        let mut ms = Map::new();
        if self.version == NgffVersion::V04 {
            ms.insert("version".into(), json!("0.4"));
        }
        if let Some(n) = &self.name {
            ms.insert("name".into(), json!(n));
        }
        ms.insert("axes".into(), Value::Array(axes));
        ms.insert("datasets".into(), Value::Array(datasets));
        if let Some(t) = &self.transforms {
            ms.insert("coordinateTransformations".into(), t.clone());
        }
        let kind = match kind {
            Some(k) => k.to_string(),
            None if chain.is_empty() => "copy".into(),
            None => chain,
        };
        ms.insert("type".into(), json!(kind));
        ms.insert(
            "metadata".into(),
            if self.resampled.is_empty() {
                json!({
                    "method": "haloflow",
                    "version": env!("CARGO_PKG_VERSION"),
                    "pipeline": pipeline,
                })
            } else {
                json!({
                    "method": "haloflow",
                    "version": env!("CARGO_PKG_VERSION"),
                    "pipeline": pipeline,
                    "coordinateTransformations": self.resampled,
                })
            },
        );
        let mut attrs = Map::new();
        if self.version == NgffVersion::V05 {
            attrs.insert("version".into(), json!("0.5"));
        }
        attrs.insert("multiscales".into(), json!([Value::Object(ms)]));
        if let Some(o) = &self.omero {
            attrs.insert("omero".into(), o.clone());
        }
        attrs
    }

    /// Checks that this image's group may be written at `path`: nothing there, an
    /// empty directory, or a group of the same Zarr format (whose metadata is then
    /// replaced, as on resume). Anything else is left alone, even with `--overwrite`.
    pub fn check_target(&self, path: &Path) -> Result<()> {
        let format = self.version.zarr_format();
        match inspect(path)? {
            Found::Missing | Found::EmptyDir => Ok(()),
            Found::Group(f) if f == format => Ok(()),
            other => Err(Error::IncompatibleOutput {
                path: path.to_path_buf(),
                reason: format!(
                    "{}; an OME-Zarr image group (Zarr v{format}) was to be written there, \
                     and haloflow never erases that",
                    other.explain(path)
                ),
            }),
        }
    }

    /// Writes the image group's metadata at `path` (creating the directory), each file
    /// atomically, recording `pipeline` (see [`OmeImage::check_target`] first).
    pub fn write_group(&self, path: &Path, pipeline: &Pipeline, kind: Option<&str>) -> Result<()> {
        self.write_attributes(path, self.attributes(pipeline, kind))
    }

    /// Writes a label image's group at `path` (NGFF `image-label`): this image's
    /// multiscales, recording `pipeline`, and `image_label` (its `colors`, `source` ...).
    pub fn write_label_group(
        &self,
        path: &Path,
        pipeline: &Pipeline,
        mut image_label: Map<String, Value>,
    ) -> Result<()> {
        let mut attrs = self.attributes(pipeline, Some("label"));
        if self.version == NgffVersion::V04 {
            image_label.insert("version".into(), json!("0.4"));
        }
        attrs.insert("image-label".into(), Value::Object(image_label));
        self.write_attributes(path, attrs)
    }

    /// Lists `name` in the `labels` group at `path` (created, or its list extended), as
    /// NGFF lists an image's label images.
    pub fn add_to_labels_group(path: &Path, version: NgffVersion, name: &str) -> Result<()> {
        let old = match version.zarr_format() {
            3 => {
                read_json(&path.join("zarr.json")).map(|v| v["attributes"]["ome"]["labels"].clone())
            }
            _ => read_json(&path.join(".zattrs")).map(|v| v["labels"].clone()),
        };
        let mut names: Vec<String> = old
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        let mut attrs = Map::new();
        if version == NgffVersion::V05 {
            attrs.insert("version".into(), json!("0.5"));
        }
        attrs.insert("labels".into(), json!(names));
        let image = OmeImage::plain(Vec::new(), Vec::new(), version);
        image.write_attributes(path, attrs)
    }

    fn write_attributes(&self, path: &Path, attrs: Map<String, Value>) -> Result<()> {
        let attrs = match self.version.zarr_format() {
            // NGFF 0.5 keeps its metadata under `ome`.
            3 => Map::from_iter([("ome".to_string(), Value::Object(attrs))]),
            _ => attrs,
        };
        files::write_group(path, self.version.zarr_format(), attrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_windows_fit_the_element_type() {
        let window = |dtype, mask| {
            let mut w = Map::new();
            w.insert("start".into(), json!(-5.0e20));
            w.insert("end".into(), json!(5.0e20));
            window_for(&mut w, dtype, mask);
            ["start", "end", "min", "max"].map(|k| w.get(k).and_then(Value::as_f64))
        };
        let u64_max = u64::MAX as f64;
        assert_eq!(
            window(DType::U64, false),
            [Some(0.0), Some(u64_max), Some(0.0), Some(u64_max)]
        );
        let (lo, hi) = (i64::MIN as f64, i64::MAX as f64);
        assert_eq!(
            window(DType::I64, false),
            [Some(lo), Some(hi), Some(lo), Some(hi)]
        );
        assert_eq!(
            window(DType::U8, true),
            [Some(0.0), Some(1.0), Some(0.0), Some(1.0)]
        );
        assert_eq!(
            window(DType::F32, false)[..2],
            [Some(-5.0e20), Some(5.0e20)]
        );
    }
}
