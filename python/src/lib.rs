//! `haloflow._haloflow`: the extension module under the `haloflow` Python package.
//!
//! Entry points, each releasing the GIL while it works:
//! - `apply(pipeline_json, x, device, threads)`: a pipeline on a NumPy array, read in
//!   place (any strides), the result handed to NumPy without a copy;
//! - `statistics(x, ...)`: whole-array statistics of a NumPy array;
//! - `run`, `pyramid`, `statistics_of_path` and `verify`: Zarr to Zarr through the
//!   library's whole-array API (`haloflow::zarr`), as the command does it, the report
//!   returned as JSON.
//!
//! Pipelines cross the boundary as the JSON haloflow records in its outputs, so the
//! Python side builds them as plain (picklable) dicts.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use haloflow::{ArrayAny, ArrayViewAny, Backend, DType, Device, Pipeline, zarr};
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;

create_exception!(
    _haloflow,
    HaloflowError,
    PyException,
    "An error from haloflow (bad input, a missing GPU, an incompatible output ...), with the command's message."
);

fn failed(e: haloflow::Error) -> PyErr {
    HaloflowError::new_err(e.to_string())
}

/// Rayon pools by thread count, one set per calling thread and kept while it lives:
/// two Python threads asking for one thread each compute side by side (one shared
/// pool would queue them), and a pool's threads keep their buffer pools between calls,
/// so a repeated call does not fault fresh pages in.
fn pool(threads: usize) -> PyResult<Arc<rayon::ThreadPool>> {
    thread_local! {
        static POOLS: RefCell<HashMap<usize, Arc<rayon::ThreadPool>>> = RefCell::new(HashMap::new());
    }
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        if let Some(p) = pools.get(&threads) {
            return Ok(Arc::clone(p));
        }
        let p = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| HaloflowError::new_err(format!("threads: {e}")))?,
        );
        pools.insert(threads, Arc::clone(&p));
        Ok(p)
    })
}

/// The backend for `device`, opened once per process (a GPU context is costly).
fn backend(name: &str) -> PyResult<Backend> {
    static OPEN: Mutex<Option<HashMap<String, Backend>>> = Mutex::new(None);
    let wanted = device(name)?;
    if wanted == Device::Cpu {
        return Ok(Backend::Cpu);
    }
    let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
    let open = open.get_or_insert_with(HashMap::new);
    if let Some(b) = open.get(name) {
        return Ok(b.clone());
    }
    let b = Backend::select(wanted, None).map_err(failed)?;
    open.insert(name.to_string(), b.clone());
    Ok(b)
}

/// The result as a NumPy array, its buffer handed over (no copy).
fn to_numpy(py: Python<'_>, out: ArrayAny) -> Bound<'_, PyAny> {
    match out {
        ArrayAny::U8(a) => a.into_pyarray(py).into_any(),
        ArrayAny::U16(a) => a.into_pyarray(py).into_any(),
        ArrayAny::U32(a) => a.into_pyarray(py).into_any(),
        ArrayAny::U64(a) => a.into_pyarray(py).into_any(),
        ArrayAny::I8(a) => a.into_pyarray(py).into_any(),
        ArrayAny::I16(a) => a.into_pyarray(py).into_any(),
        ArrayAny::I32(a) => a.into_pyarray(py).into_any(),
        ArrayAny::I64(a) => a.into_pyarray(py).into_any(),
        ArrayAny::F32(a) => a.into_pyarray(py).into_any(),
        ArrayAny::F64(a) => a.into_pyarray(py).into_any(),
    }
}

/// Runs `f` on the NumPy array `x`, read in place as whichever element type it holds,
/// with the GIL released and on a pool of `threads` threads (default: rayon's global
/// pool).
fn with_array<R: Send>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    threads: Option<usize>,
    f: impl Fn(ArrayViewAny<'_>) -> haloflow::Result<R> + Send + Sync,
) -> PyResult<R> {
    let pool = threads.map(|n| pool(n.max(1))).transpose()?;
    macro_rules! typed {
        ($($t:ty),*) => {
            $(
                if let Ok(array) = x.cast::<PyArrayDyn<$t>>() {
                    let readonly = array.try_readonly()?;
                    let view = readonly.as_array();
                    return py
                        .detach(|| {
                            let run = || f(view.into());
                            match &pool {
                                Some(p) => p.install(run),
                                None => run(),
                            }
                        })
                        .map_err(failed);
                }
            )*
        };
    }
    typed!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);
    Err(unsupported(x))
}

/// Applies the pipeline (haloflow's JSON) to the NumPy array `x` on `device`, with
/// `threads` CPU threads (default: every core), the GIL released meanwhile.
#[pyfunction]
#[pyo3(signature = (pipeline, x, device = "cpu", threads = None))]
fn apply<'py>(
    py: Python<'py>,
    pipeline: &str,
    x: &Bound<'py, PyAny>,
    device: &str,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let pipeline: Pipeline = serde_json::from_str(pipeline)
        .map_err(|e| PyValueError::new_err(format!("not a haloflow pipeline: {e}")))?;
    let backend = backend(device)?;
    let out = with_array(py, x, threads, |view| {
        pipeline.apply_on(view, None, &backend)
    })?;
    Ok(to_numpy(py, out))
}

/// Whole-array statistics of the NumPy array `x` (options and result as the JSON of
/// haloflow's `StatsOptions` and `Statistics`), the GIL released.
#[pyfunction]
#[pyo3(signature = (x, options, threads = None))]
fn statistics(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    options: &str,
    threads: Option<usize>,
) -> PyResult<String> {
    let options: haloflow::stats::StatsOptions = serde_json::from_str(options)
        .map_err(|e| PyValueError::new_err(format!("statistics options: {e}")))?;
    let found = with_array(py, x, threads, |view| {
        haloflow::stats::statistics_of(&view, &options)
    })?;
    Ok(serde_json::to_string(&found).expect("statistics serialise"))
}

/// The error for an array of a type haloflow does not take.
fn unsupported(x: &Bound<'_, PyAny>) -> PyErr {
    let dtype = x
        .getattr("dtype")
        .map(|d| d.to_string())
        .unwrap_or_else(|_| "?".into());
    PyTypeError::new_err(format!(
        "unsupported array type {dtype} (haloflow takes {})",
        DType::ALL.map(|d| d.name()).join(", ")
    ))
}

/// Which jobs of the output at `path` (an array, or each level of an OME-Zarr image)
/// are done: haloflow's `store::verify` as JSON.
#[pyfunction]
fn verify(py: Python<'_>, path: std::path::PathBuf) -> PyResult<String> {
    let found = py
        .detach(|| haloflow::store::verify(&path))
        .map_err(failed)?;
    Ok(serde_json::to_string(&found).expect("completions serialise"))
}

/// The options of a Zarr run from Python (`haloflow.run`'s keywords, as JSON): every
/// field of the library's `zarr::Options`, with a part as `[i, n]` or `"auto"`
/// (`"auto/N"`), a memory limit in bytes or as `"2G"`, a compression as `"zstd:3"`.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RunOptions {
    chunks: Option<Vec<usize>>,
    shards: Option<Vec<usize>>,
    part: Option<serde_json::Value>,
    memory_limit: Option<serde_json::Value>,
    overwrite: bool,
    device: Option<String>,
    adapter: Option<String>,
    gpu_timeout: Option<f64>,
    threads: Option<usize>,
    compression: Option<String>,
    zarr_format: Option<u8>,
    level: Option<usize>,
    ngff_version: Option<String>,
    axes: Option<Vec<String>>,
    scale: Option<Vec<f64>>,
    units: Option<Vec<String>>,
    levels: Option<usize>,
    factor: Option<Vec<usize>>,
    method: Option<String>,
    plain: bool,
    mip: Option<String>,
}

fn bad(what: &str, message: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{what}: {message}"))
}

impl RunOptions {
    fn parse(json: &str) -> PyResult<RunOptions> {
        serde_json::from_str(json).map_err(|e| bad("options", e))
    }

    /// The library's options.
    fn options(&self) -> PyResult<zarr::Options> {
        let part = match &self.part {
            None => zarr::Part::ALL,
            Some(serde_json::Value::String(s)) => {
                let count = match s.trim() {
                    "auto" => None,
                    other => Some(
                        other
                            .strip_prefix("auto/")
                            .and_then(|n| n.trim().parse().ok())
                            .ok_or_else(|| {
                                bad(
                                    "part",
                                    format!("expected (i, n), 'auto' or 'auto/N', got {s:?}"),
                                )
                            })?,
                    ),
                };
                zarr::Part::from_environment(|k| std::env::var(k).ok(), count)
                    .map_err(failed)?
                    .0
            }
            Some(v) => {
                let (i, n): (usize, usize) =
                    serde_json::from_value(v.clone()).map_err(|e| bad("part", e))?;
                zarr::Part::new(i, n).map_err(failed)?
            }
        };
        let memory_limit = match &self.memory_limit {
            None => None,
            Some(serde_json::Value::String(s)) => Some(zarr::parse_size(s).map_err(failed)?),
            Some(v) => Some(serde_json::from_value(v.clone()).map_err(|e| bad("memory_limit", e))?),
        };
        let defaults = zarr::Options::default();
        let ome =
            (self.axes.is_some() || self.scale.is_some() || self.units.is_some()).then(|| {
                zarr::OmeAxes {
                    axes: self.axes.clone(),
                    scale: self.scale.clone(),
                    units: self.units.clone(),
                }
            });
        Ok(zarr::Options {
            level: self.level.unwrap_or(0),
            chunks: self.chunks.clone(),
            shards: self.shards.clone(),
            zarr_format: self.zarr_format.unwrap_or(defaults.zarr_format),
            compression: match &self.compression {
                Some(c) => c.parse().map_err(failed)?,
                None => defaults.compression,
            },
            part,
            overwrite: self.overwrite,
            memory_limit,
            threads: self.threads,
            device: device(self.device.as_deref().unwrap_or("cpu"))?,
            adapter: self.adapter.clone(),
            gpu_timeout: match self.gpu_timeout {
                Some(s) if s.is_finite() && s > 0.0 => Some(std::time::Duration::from_secs_f64(s)),
                Some(s) => return Err(bad("gpu_timeout", format!("must be > 0 seconds, got {s}"))),
                None => None,
            },
            ome,
            ngff_version: self
                .ngff_version
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(failed)?,
            plain: self.plain,
            mip: self.mip.as_ref().map(std::path::PathBuf::from),
        })
    }
}

/// The device named `name`.
fn device(name: &str) -> PyResult<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "gpu" => Ok(Device::Gpu),
        "auto" => Ok(Device::Auto),
        other => Err(PyValueError::new_err(format!(
            "device {other:?}: expected 'cpu', 'gpu' or 'auto'"
        ))),
    }
}

/// Progress for Python: `True` draws haloflow's bar on stderr, a callable hears
/// `(done, total, bytes)` after each job (with the GIL; its first exception is raised
/// once the run ends).
enum PyProgress {
    Bar(zarr::ProgressBar),
    Call {
        callback: Py<PyAny>,
        total: AtomicUsize,
        error: Mutex<Option<PyErr>>,
    },
}

impl PyProgress {
    fn of(progress: Option<Bound<'_, PyAny>>) -> PyResult<Option<PyProgress>> {
        let Some(p) = progress else { return Ok(None) };
        if p.is_callable() {
            return Ok(Some(PyProgress::Call {
                callback: p.unbind(),
                total: AtomicUsize::new(0),
                error: Mutex::new(None),
            }));
        }
        Ok(p.is_truthy()?
            .then(|| PyProgress::Bar(zarr::ProgressBar::new())))
    }

    /// Clears the bar, or raises the callback's exception.
    fn finish(self) -> PyResult<()> {
        match self {
            PyProgress::Bar(b) => {
                b.finish();
                Ok(())
            }
            PyProgress::Call { error, .. } => {
                match error.into_inner().unwrap_or_else(PoisonError::into_inner) {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            }
        }
    }
}

impl zarr::Progress for PyProgress {
    fn begin(&self, phase: zarr::Phase, total: usize) {
        match self {
            PyProgress::Bar(b) => b.begin(phase, total),
            PyProgress::Call { total: t, .. } => t.store(total, Ordering::Relaxed),
        }
    }

    fn advance(&self, done: usize, bytes: u64) {
        match self {
            PyProgress::Bar(b) => b.advance(done, bytes),
            PyProgress::Call {
                callback,
                total,
                error,
            } => Python::attach(|py| {
                let total = total.load(Ordering::Relaxed);
                if let Err(e) = callback.call1(py, (done, total, bytes)) {
                    error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_or_insert(e);
                }
            }),
        }
    }
}

/// Runs `f` with the GIL released and `progress` reporting, then finishes it.
fn with_progress<R: Send>(
    py: Python<'_>,
    progress: Option<Bound<'_, PyAny>>,
    f: impl FnOnce(Option<&dyn zarr::Progress>) -> haloflow::Result<R> + Send,
) -> PyResult<R> {
    let progress = PyProgress::of(progress)?;
    let result = py.detach(|| f(progress.as_ref().map(|p| p as &dyn zarr::Progress)));
    if let Some(p) = progress {
        p.finish()?;
    }
    result.map_err(failed)
}

/// `haloflow.run` (and with `init`, `haloflow.init`): the pipeline (haloflow's JSON)
/// from `input` to `output` through the library's `zarr::Run`, the GIL released; the
/// report (or what `init` set up) as JSON.
#[pyfunction]
#[pyo3(signature = (input, output, pipeline, options, progress = None, init = false))]
fn run(
    py: Python<'_>,
    input: PathBuf,
    output: PathBuf,
    pipeline: &str,
    options: &str,
    progress: Option<Bound<'_, PyAny>>,
    init: bool,
) -> PyResult<String> {
    let pipeline: Pipeline = serde_json::from_str(pipeline).map_err(|e| bad("pipeline", e))?;
    let spec = zarr::Run::new(input, output, pipeline)
        .with_options(RunOptions::parse(options)?.options()?);
    if init {
        let summary = py.detach(|| spec.init()).map_err(failed)?;
        return Ok(serde_json::to_string(&summary).expect("a summary serialises"));
    }
    let report = with_progress(py, progress, |p| spec.run(p))?;
    Ok(serde_json::to_string(&report).expect("a report serialises"))
}

/// `haloflow.label_zarr`: the library's `zarr::Label` (connected components of what
/// `pipeline` computes from `input`), the GIL released; the report as JSON.
#[pyfunction]
#[pyo3(signature = (input, output, pipeline, connectivity, above, dtype, merge, options, progress = None))]
#[allow(clippy::too_many_arguments)]
fn label_zarr(
    py: Python<'_>,
    input: PathBuf,
    output: PathBuf,
    pipeline: &str,
    connectivity: usize,
    above: Option<f64>,
    dtype: &str,
    merge: bool,
    options: &str,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<String> {
    let pipeline: Pipeline = serde_json::from_str(pipeline).map_err(|e| bad("pipeline", e))?;
    let spec = zarr::Label {
        chain: pipeline.into(),
        connectivity,
        above,
        dtype: dtype.parse().map_err(|e| bad("dtype", e))?,
        step: if merge {
            zarr::LabelStep::Merge
        } else {
            zarr::LabelStep::Label
        },
        options: RunOptions::parse(options)?.options()?,
        ..zarr::Label::new(input, output)
    };
    let report = with_progress(py, progress, |p| spec.run(p))?;
    Ok(serde_json::to_string(&report).expect("a report serialises"))
}

/// `haloflow.objects_zarr`: the library's `zarr::Objects`, the GIL released; the
/// table as [`Columns`], the number of axes, and the pixel spacing of an OME-Zarr input.
/// With `table`, the table is also written there (CSV or Parquet by its extension).
#[pyfunction]
#[pyo3(signature = (labels, intensity = None, threads = None, table = None))]
fn objects_zarr(
    py: Python<'_>,
    labels: PathBuf,
    intensity: Option<PathBuf>,
    threads: Option<usize>,
    table: Option<PathBuf>,
) -> PyResult<(Columns, usize, Option<Vec<f64>>)> {
    if let Some(t) = &table {
        haloflow::TableFormat::of(t).map_err(failed)?;
    }
    let spec = zarr::Objects {
        intensity,
        threads,
        ..zarr::Objects::new(labels)
    };
    let found = py
        .detach(|| {
            let found = spec.run()?;
            if let Some(t) = &table {
                found.write(t)?;
            }
            Ok::<_, haloflow::Error>(found)
        })
        .map_err(failed)?;
    Ok((
        columns(&found.table, found.intensity),
        found.table.ndim(),
        found.spacing,
    ))
}

/// `haloflow.pyramid`: the library's `zarr::Pyramid`, the GIL released; the report as
/// JSON.
#[pyfunction]
#[pyo3(signature = (input, output, options, progress = None))]
fn pyramid(
    py: Python<'_>,
    input: PathBuf,
    output: PathBuf,
    options: &str,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<String> {
    let o = RunOptions::parse(options)?;
    let method = o
        .method
        .as_deref()
        .unwrap_or("mean")
        .parse()
        .map_err(failed)?;
    let spec = zarr::Pyramid {
        levels: o.levels,
        factor: o.factor.clone(),
        method,
        options: o.options()?,
        ..zarr::Pyramid::new(input, output)
    };
    let done = with_progress(py, progress, |p| spec.run(p))?;
    Ok(serde_json::to_string(&done.report).expect("a report serialises"))
}

/// `haloflow.preview`: the library's `zarr::Preview` (keywords as JSON), the GIL
/// released; what it drew as JSON.
#[pyfunction]
fn preview(py: Python<'_>, input: PathBuf, output: PathBuf, options: &str) -> PyResult<String> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    struct PreviewOptions {
        axis: Option<String>,
        method: Option<String>,
        index: Option<usize>,
        channel: Option<usize>,
        contrast: Option<String>,
        colormap: Option<String>,
        size: Option<usize>,
        level: Option<usize>,
        threads: Option<usize>,
    }
    let o: PreviewOptions = serde_json::from_str(options).map_err(|e| bad("options", e))?;
    let spec = zarr::Preview {
        level: o.level,
        axis: o.axis,
        method: o
            .method
            .as_deref()
            .unwrap_or("max")
            .parse()
            .map_err(failed)?,
        index: o.index,
        channel: o.channel,
        contrast: o
            .contrast
            .as_deref()
            .unwrap_or("auto")
            .parse()
            .map_err(failed)?,
        colormap: o
            .colormap
            .as_deref()
            .unwrap_or("gray")
            .parse()
            .map_err(failed)?,
        size: o.size,
        threads: o.threads,
        ..zarr::Preview::new(input, output)
    };
    let r = py.detach(|| spec.run()).map_err(failed)?;
    Ok(serde_json::json!({
        "level": r.level,
        "shape": r.shape,
        "axis": r.axis,
        "shown": [r.shown.0, r.shown.1],
        "picture": [r.picture.0, r.picture.1],
        "window": [r.window.0, r.window.1],
    })
    .to_string())
}

/// Whole-array statistics of the Zarr array (or OME-Zarr image's `level`) at `path`
/// (options and result as the JSON of haloflow's `StatsOptions` and `Statistics`),
/// streamed by the library's `zarr::Stats`, the GIL released.
#[pyfunction]
#[pyo3(signature = (path, options, threads = None, level = None))]
fn statistics_of_path(
    py: Python<'_>,
    path: PathBuf,
    options: &str,
    threads: Option<usize>,
    level: Option<usize>,
) -> PyResult<String> {
    let options: haloflow::stats::StatsOptions =
        serde_json::from_str(options).map_err(|e| bad("statistics options", e))?;
    let spec = zarr::Stats {
        level: level.unwrap_or(0),
        options,
        threads,
        ..zarr::Stats::new(path)
    };
    let found = py.detach(|| spec.run()).map_err(failed)?;
    Ok(serde_json::to_string(&found).expect("statistics serialise"))
}

/// `scipy.ndimage.label` of the NumPy array `x` (a mask: non-zero voxels are objects,
/// or those above `above`): the labels (of numpy type `dtype`) and their count.
/// `structure` is the 3×…×3 structuring element flattened in C order (`None`:
/// face-connected). The GIL is released meanwhile.
#[pyfunction]
#[pyo3(signature = (x, structure = None, above = None, dtype = "int32", threads = None))]
fn label<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    structure: Option<Vec<bool>>,
    above: Option<f64>,
    dtype: &str,
    threads: Option<usize>,
) -> PyResult<(Bound<'py, PyAny>, u64)> {
    let dtype: DType = dtype
        .parse()
        .map_err(|e| PyValueError::new_err(format!("{e}")))?;
    let foreground = above.map_or(haloflow::Foreground::NonZero, haloflow::Foreground::Above);
    let (labels, count) = with_array(py, x, threads, |view| {
        let ndim = view.shape().len();
        let structure = match &structure {
            Some(values) => haloflow::Structure::from_mask(&vec![3; ndim], values)?,
            None => haloflow::Structure::connectivity(ndim, 1)?,
        };
        haloflow::label_array(view, &structure, foreground, dtype)
    })?;
    Ok((to_numpy(py, labels), count))
}

/// An object table as columns: labels, areas, centroids (objects × axes), boxes
/// (objects × 2·axes: starts, then ends) and, with intensity, (objects × 4: mean, min,
/// max, sum).
type Columns = (Vec<u64>, Vec<u64>, Vec<f64>, Vec<u64>, Option<Vec<f64>>);

fn columns(table: &haloflow::ObjectTable, with_intensity: bool) -> Columns {
    let objects = table.objects();
    (
        objects.iter().map(|o| o.label).collect(),
        objects.iter().map(|o| o.area).collect(),
        objects.iter().flat_map(|o| o.centroid()).collect(),
        objects
            .iter()
            .flat_map(|o| o.bbox_min.iter().chain(&o.bbox_max).map(|&v| v as u64))
            .collect(),
        with_intensity.then(|| {
            objects
                .iter()
                .flat_map(|o| {
                    [
                        o.intensity_mean(),
                        o.intensity_min,
                        o.intensity_max,
                        o.intensity_sum,
                    ]
                })
                .collect()
        }),
    )
}

/// The objects of the label array `labels` (0 is background), with `intensity`
/// summarised over each, as [`Columns`].
#[pyfunction]
#[pyo3(signature = (labels, intensity = None, threads = None))]
fn objects<'py>(
    py: Python<'py>,
    labels: &Bound<'py, PyAny>,
    intensity: Option<numpy::PyReadonlyArrayDyn<'py, f64>>,
    threads: Option<usize>,
) -> PyResult<Columns> {
    let view = intensity.as_ref().map(|i| i.as_array());
    let table = with_array(py, labels, threads, |l| {
        haloflow::object_table(l, view.clone().map(ArrayViewAny::from))
    })?;
    Ok(columns(&table, intensity.is_some()))
}

#[pymodule]
fn _haloflow(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("HaloflowError", m.py().get_type::<HaloflowError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(apply, m)?)?;
    m.add_function(wrap_pyfunction!(label, m)?)?;
    m.add_function(wrap_pyfunction!(objects, m)?)?;
    m.add_function(wrap_pyfunction!(label_zarr, m)?)?;
    m.add_function(wrap_pyfunction!(objects_zarr, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(pyramid, m)?)?;
    m.add_function(wrap_pyfunction!(preview, m)?)?;
    m.add_function(wrap_pyfunction!(statistics_of_path, m)?)?;
    m.add_function(wrap_pyfunction!(statistics, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    Ok(())
}
