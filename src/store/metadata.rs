//! What an array is: the [`OutputSpec`] of a new array and the metadata files written
//! for it, what zarrs tells about an existing array (checked: shape, type, regular
//! chunks, format), and how an existing array differs from the one requested.

use std::path::Path;

use serde_json::{Map, Value, json};
use zarrs::array::data_type::{
    Float32DataType, Float64DataType, Int8DataType, Int16DataType, Int32DataType, Int64DataType,
    UInt8DataType, UInt16DataType, UInt32DataType, UInt64DataType,
};
use zarrs::array::{Array, ArrayMetadata, ArrayShardedExt, DataType};
use zarrs::plugin::{ExtensionName, ZarrVersion};

use super::errors::{one_line, truncate};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::region::Grid;

/// Attribute keys ignored when comparing an existing output with the requested one
/// (written by other tools, not part of the result's identity).
const IGNORED_ATTRIBUTES: [&str; 1] = ["_zarrs"];

/// The compression of a new output array's chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Chunks stored raw.
    None,
    /// zstd at `level` (Zarr v3 codec `zstd`; Zarr v2 numcodecs compressor `zstd`).
    Zstd {
        /// Compression level (1 to 22; 3 is zstd's default).
        level: i32,
    },
}

impl Default for Compression {
    /// zstd level 3.
    fn default() -> Self {
        Compression::Zstd { level: 3 }
    }
}

impl std::str::FromStr for Compression {
    type Err = Error;

    /// `zstd:LEVEL` (-7 to 22), `zstd` (level 3) or `none`, in any case.
    fn from_str(s: &str) -> Result<Compression> {
        let bad = |message: String| Error::InvalidParameter {
            op: "compression",
            message,
        };
        let level = match s.trim().to_ascii_lowercase().as_str() {
            "none" => return Ok(Compression::None),
            "zstd" => 3,
            other => other
                .strip_prefix("zstd:")
                .and_then(|l| l.trim().parse::<i32>().ok())
                .ok_or_else(|| bad(format!("expected zstd, zstd:LEVEL or none, got '{s}'")))?,
        };
        if !(-7..=22).contains(&level) {
            return Err(bad(format!("zstd level {level} is outside -7..=22")));
        }
        Ok(Compression::Zstd { level })
    }
}

/// What an output array is: compared field by field with an array already at the
/// output path to decide whether a run may resume into it.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputSpec {
    /// Array shape.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Chunk shape (same rank as `shape`).
    pub chunk: Vec<usize>,
    /// Zarr format, 2 or 3.
    pub zarr_format: u8,
    /// Chunk compression (not compared when resuming: it does not change the values).
    pub compression: Compression,
    /// User attributes: record the op and its parameters here, so that resuming with
    /// other parameters is refused.
    pub attributes: Map<String, Value>,
    /// Axis names (Zarr v3 `dimension_names`; not written on v2).
    pub dimension_names: Option<Vec<String>>,
    /// Shard shape (Zarr v3 `sharding_indexed`, each extent a whole number of chunks):
    /// `chunk` is then the inner chunk shape, and the shard the unit of storage, written
    /// whole by one job group. `None`: one file per chunk.
    pub shard: Option<Vec<usize>>,
}

impl OutputSpec {
    /// A Zarr v3 output, zstd level 3, fill value 0, no attributes.
    pub fn new(shape: &[usize], dtype: DType, chunk: &[usize]) -> Self {
        OutputSpec {
            shape: shape.to_vec(),
            dtype,
            chunk: chunk.to_vec(),
            zarr_format: 3,
            compression: Compression::default(),
            attributes: Map::new(),
            dimension_names: None,
            shard: None,
        }
    }

    /// The same spec sharded: shards of shape `shard` (Zarr v3 only), each extent a
    /// whole number of chunks.
    pub fn with_shards(mut self, shard: Vec<usize>) -> Self {
        self.shard = Some(shard);
        self
    }

    /// The unit of storage: the shard shape if sharded, else the chunk shape.
    pub fn storage_unit(&self) -> &[usize] {
        self.shard.as_deref().unwrap_or(&self.chunk)
    }

    /// The same spec with these axis names (Zarr v3 `dimension_names`).
    pub fn with_dimension_names(mut self, names: Vec<String>) -> Self {
        self.dimension_names = Some(names);
        self
    }

    /// The same spec in Zarr format `zarr_format` (2 or 3).
    pub fn with_zarr_format(mut self, zarr_format: u8) -> Self {
        self.zarr_format = zarr_format;
        self
    }

    /// The same spec with another compression.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The same spec with these attributes.
    pub fn with_attributes(mut self, attributes: Map<String, Value>) -> Self {
        self.attributes = attributes;
        self
    }

    pub(super) fn grid(&self) -> Result<Grid> {
        if self.zarr_format != 2 && self.zarr_format != 3 {
            return Err(Error::InvalidParameter {
                op: "output",
                message: format!("Zarr format {} (expected 2 or 3)", self.zarr_format),
            });
        }
        if self.shape.is_empty() {
            return Err(Error::Shape("a 0-dimensional output".to_string()));
        }
        if let Compression::Zstd { level } = self.compression
            && !(-131_072..=22).contains(&level)
        {
            return Err(Error::InvalidParameter {
                op: "output",
                message: format!("zstd level {level} (expected at most 22)"),
            });
        }
        if let Some(shard) = &self.shard {
            let bad = |message: String| Error::InvalidParameter {
                op: "shards",
                message,
            };
            if self.zarr_format != 3 {
                return Err(bad(
                    "sharding needs Zarr v3 (--zarr-format 3, or NGFF 0.5)".to_string()
                ));
            }
            if shard.len() != self.shape.len() {
                return Err(bad(format!(
                    "{} shard extents for an array of {} dimensions",
                    shard.len(),
                    self.shape.len()
                )));
            }
            if let Some(a) =
                (0..shard.len()).find(|&a| shard[a] == 0 || !shard[a].is_multiple_of(self.chunk[a]))
            {
                return Err(bad(format!(
                    "the shard shape {shard:?} is not a whole number of chunks {:?} on axis {a}",
                    self.chunk
                )));
            }
        }
        Grid::new(&self.shape, &self.chunk)
    }
}

/// The properties haloflow needs, checked.
pub(super) struct ArrayInfo {
    pub(super) shape: Vec<usize>,
    pub(super) dtype: DType,
    pub(super) chunk: Vec<usize>,
    pub(super) zarr_format: u8,
}

impl ArrayInfo {
    pub(super) fn of<S: ?Sized>(path: &Path, array: &Array<S>) -> Result<ArrayInfo> {
        let unsupported = |reason: String| Error::UnsupportedArray {
            path: path.to_path_buf(),
            reason,
        };
        let shape: Vec<usize> = array.shape().iter().map(|&n| n as usize).collect();
        if shape.is_empty() {
            return Err(unsupported("a 0-dimensional array".to_string()));
        }
        let dtype = dtype_of(array.data_type()).map_err(|name| {
            unsupported(format!(
                "data type '{name}' (haloflow reads uint8 uint16 uint32 uint64 int8 int16 int32 int64 float32 float64)"
            ))
        })?;
        let grid_name = array
            .chunk_grid()
            .name(ZarrVersion::V3)
            .unwrap_or_default()
            .into_owned();
        if grid_name != "regular" {
            return Err(unsupported(format!(
                "chunk grid '{grid_name}' (haloflow reads regular chunk grids only)"
            )));
        }
        let chunk: Vec<usize> = array
            .chunk_shape(&vec![0; shape.len()])
            .map_err(|e| unsupported(format!("chunk grid: {}", one_line(&e))))?
            .iter()
            .map(|n| n.get() as usize)
            .collect();
        // Sizes past what this build counts are refused here, by name, never wrapped.
        let too_large = |e: Error| match e {
            Error::Shape(message) => unsupported(message),
            other => other,
        };
        crate::region::checked_bytes(&shape, dtype.size()).map_err(too_large)?;
        crate::region::Grid::new(&shape, &chunk).map_err(too_large)?;
        let zarr_format = match array.metadata() {
            ArrayMetadata::V2(_) => 2,
            ArrayMetadata::V3(_) => 3,
        };
        Ok(ArrayInfo {
            shape,
            dtype,
            chunk,
            zarr_format,
        })
    }
}

/// haloflow's type for a zarrs data type, or the data type's name.
pub(super) fn dtype_of(dt: &DataType) -> std::result::Result<DType, String> {
    let found = if dt.is::<UInt8DataType>() {
        DType::U8
    } else if dt.is::<UInt16DataType>() {
        DType::U16
    } else if dt.is::<UInt32DataType>() {
        DType::U32
    } else if dt.is::<UInt64DataType>() {
        DType::U64
    } else if dt.is::<Int8DataType>() {
        DType::I8
    } else if dt.is::<Int16DataType>() {
        DType::I16
    } else if dt.is::<Int32DataType>() {
        DType::I32
    } else if dt.is::<Int64DataType>() {
        DType::I64
    } else if dt.is::<Float32DataType>() {
        DType::F32
    } else if dt.is::<Float64DataType>() {
        DType::F64
    } else {
        let name = dt.name(ZarrVersion::V3).unwrap_or_default().into_owned();
        return Err(if name.is_empty() {
            format!("{dt:?}")
        } else {
            name
        });
    };
    Ok(found)
}

/// The Zarr v2 (numpy) type string, little-endian.
pub(super) fn v2_dtype(dtype: DType) -> &'static str {
    match dtype {
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::U64 => "<u8",
        DType::I64 => "<i8",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
    }
}

/// How an existing array differs from `spec`, one phrase per difference.
pub(super) fn differences<S: ?Sized>(
    path: &Path,
    array: &Array<S>,
    spec: &OutputSpec,
) -> Vec<String> {
    let mut out = Vec::new();
    let format = match array.metadata() {
        ArrayMetadata::V2(_) => 2,
        ArrayMetadata::V3(_) => 3,
    };
    if format != spec.zarr_format {
        out.push(format!(
            "it is Zarr v{format}, not v{} as requested",
            spec.zarr_format
        ));
    }
    let shape: Vec<usize> = array.shape().iter().map(|&n| n as usize).collect();
    if shape != spec.shape {
        out.push(format!(
            "its shape is {shape:?}, not {:?} as requested",
            spec.shape
        ));
    }
    match dtype_of(array.data_type()) {
        Ok(d) if d == spec.dtype => {}
        Ok(d) => out.push(format!(
            "its data type is {d}, not {} as requested",
            spec.dtype
        )),
        Err(name) => out.push(format!(
            "its data type is {name}, not {} as requested",
            spec.dtype
        )),
    }
    let inner: Option<Vec<usize>> = array
        .subchunk_shape()
        .map(|s| s.iter().map(|n| n.get() as usize).collect());
    match ArrayInfo::of(path, array) {
        Ok(info)
            if info.chunk == spec.storage_unit()
                && inner.as_deref() == spec.shard.as_ref().map(|_| &spec.chunk[..]) => {}
        Ok(info) => out.push(match (&inner, &spec.shard) {
            (None, None) => format!(
                "its chunks are {:?}, not {:?} as requested",
                info.chunk, spec.chunk
            ),
            (Some(i), Some(s)) => format!(
                "its shards and chunks are {:?} and {i:?}, not {s:?} and {:?} as requested",
                info.chunk, spec.chunk
            ),
            (Some(i), None) => format!(
                "it is sharded ({:?} of chunks {i:?}), not chunked {:?} as requested",
                info.chunk, spec.chunk
            ),
            (None, Some(s)) => format!(
                "it is not sharded (chunks {:?}), not shards {s:?} of chunks {:?} as requested",
                info.chunk, spec.chunk
            ),
        }),
        Err(Error::UnsupportedArray { reason, .. }) if !reason.starts_with("data type") => {
            out.push(reason)
        }
        Err(_) => {}
    }
    // A sharded output's inner chunks are encoded by haloflow, not by zarrs from the
    // array's metadata: the codecs there must be the ones it writes.
    if spec.shard.is_some() && spec.zarr_format == 3 && format == 3 {
        let wanted = spec.codecs_v3();
        let found = raw_metadata(path, 3).map(|m| m["codecs"].clone());
        if let Ok(found) = found
            && found != Value::Array(wanted.clone())
        {
            out.push(format!(
                "its codecs are {}, not {} as requested",
                truncate(&found.to_string()),
                truncate(&Value::Array(wanted).to_string())
            ));
        }
    }
    let existing = array.attributes();
    let keys: std::collections::BTreeSet<&String> = existing
        .keys()
        .chain(spec.attributes.keys())
        .filter(|k| !IGNORED_ATTRIBUTES.contains(&k.as_str()))
        .collect();
    for key in keys {
        match (existing.get(key), spec.attributes.get(key)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => out.push(format!(
                "its attribute '{key}' is {}, not {} as requested",
                truncate(&a.to_string()),
                truncate(&b.to_string())
            )),
            (Some(_), None) => out.push(format!("it has an attribute '{key}' not requested")),
            (None, _) => out.push(format!("it lacks the requested attribute '{key}'")),
        }
    }
    out
}

/// The array metadata as stored (v2: `.zarray` with `.zattrs` as `attributes`).
pub(super) fn raw_metadata(path: &Path, zarr_format: u8) -> Result<Value> {
    let read = |name: &str| -> Result<Option<Value>> {
        let file = path.join(name);
        match super::files::read_file(&file)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Store {
                    path: file,
                    message: format!("invalid JSON: {e}"),
                }),
            None => Ok(None),
        }
    };
    if zarr_format == 3 {
        Ok(read("zarr.json")?.unwrap_or(Value::Null))
    } else {
        let mut meta = read(".zarray")?.unwrap_or(Value::Null);
        if let (Value::Object(m), Some(attrs)) = (&mut meta, read(".zattrs")?) {
            m.insert("attributes".to_string(), attrs);
        }
        Ok(meta)
    }
}

/// `name {configuration}` of a v3 codec (sharding shows its inner codecs).
pub(super) fn describe_codec_v3(codec: &Value) -> String {
    let name = codec["name"].as_str().unwrap_or("?");
    match &codec["configuration"] {
        Value::Null => name.to_string(),
        Value::Object(c) if c.is_empty() => name.to_string(),
        c => format!("{name} {}", serde_json::to_string(c).unwrap_or_default()),
    }
}

impl OutputSpec {
    /// The `codecs` of the v3 metadata: bytes then zstd (unless uncompressed), inside
    /// `sharding_indexed` if sharded.
    pub(super) fn codecs_v3(&self) -> Vec<Value> {
        let mut codecs = vec![if self.dtype.size() == 1 {
            json!({"name": "bytes"})
        } else {
            json!({"name": "bytes", "configuration": {"endian": "little"}})
        }];
        if let Compression::Zstd { level } = self.compression {
            codecs.push(json!({
                "name": "zstd",
                "configuration": {"level": level, "checksum": false}
            }));
        }
        match &self.shard {
            Some(_) => sharding_codecs(&self.chunk, codecs),
            None => codecs,
        }
    }

    /// The metadata files of the array, in the order they must be published.
    pub(super) fn metadata_files(&self) -> Vec<(&'static str, Vec<u8>)> {
        let fill = if self.dtype.is_float() {
            json!(0.0)
        } else {
            json!(0)
        };
        let pretty = |v: &Value| {
            let mut bytes = serde_json::to_vec_pretty(v).expect("JSON values serialise");
            bytes.push(b'\n');
            bytes
        };
        if self.zarr_format == 3 {
            let codecs = self.codecs_v3();
            let mut meta = json!({
                "zarr_format": 3,
                "node_type": "array",
                "shape": self.shape,
                "data_type": self.dtype.name(),
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": self.storage_unit()}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": fill,
                "codecs": codecs,
                "attributes": self.attributes,
            });
            if let Some(names) = &self.dimension_names {
                meta["dimension_names"] = json!(names);
            }
            vec![("zarr.json", pretty(&meta))]
        } else {
            let compressor = match self.compression {
                Compression::None => Value::Null,
                Compression::Zstd { level } => json!({"id": "zstd", "level": level}),
            };
            let meta = json!({
                "zarr_format": 2,
                "shape": self.shape,
                "chunks": self.chunk,
                "dtype": v2_dtype(self.dtype),
                "compressor": compressor,
                "fill_value": fill,
                "order": "C",
                "filters": null,
                "dimension_separator": "/",
            });
            // `.zattrs` first: once `.zarray` is visible the array is complete.
            vec![
                (".zattrs", pretty(&Value::Object(self.attributes.clone()))),
                (".zarray", pretty(&meta)),
            ]
        }
    }
}

/// The `codecs` of a sharded array's metadata: `sharding_indexed` with inner chunks
/// `inner` through `inner_codecs`, the index at the end with a CRC-32C.
fn sharding_codecs(inner: &[usize], inner_codecs: Vec<Value>) -> Vec<Value> {
    vec![json!({
        "name": "sharding_indexed",
        "configuration": {
            "chunk_shape": inner,
            "codecs": inner_codecs,
            "index_codecs": [
                {"name": "bytes", "configuration": {"endian": "little"}},
                {"name": "crc32c"}
            ],
            "index_location": "end"
        }
    })]
}
