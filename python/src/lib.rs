//! `haloflow._haloflow`: the extension module under the `haloflow` Python package.
//!
//! Two entry points, both releasing the GIL while they work:
//! - `apply(pipeline_json, x, device, threads)`: a pipeline on a NumPy array, read in
//!   place (any strides), the result handed to NumPy without a copy;
//! - `command(args)`: one `haloflow` command line, run in this process (Zarr to Zarr).
//!
//! Pipelines cross the boundary as the JSON haloflow records in its outputs, so the
//! Python side builds them as plain (picklable) dicts.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use haloflow::{ArrayAny, ArrayViewAny, Backend, DType, Device, Pipeline};
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
fn backend(device: &str) -> PyResult<Backend> {
    static OPEN: Mutex<Option<HashMap<String, Backend>>> = Mutex::new(None);
    let wanted = match device {
        "cpu" => return Ok(Backend::Cpu),
        "gpu" => Device::Gpu,
        "auto" => Device::Auto,
        other => {
            return Err(PyValueError::new_err(format!(
                "device {other:?}: expected 'cpu', 'gpu' or 'auto'"
            )));
        }
    };
    let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
    let open = open.get_or_insert_with(HashMap::new);
    if let Some(b) = open.get(device) {
        return Ok(b.clone());
    }
    let b = Backend::select(wanted, None).map_err(failed)?;
    open.insert(device.to_string(), b.clone());
    Ok(b)
}

/// The result as a NumPy array, its buffer handed over (no copy).
fn to_numpy(py: Python<'_>, out: ArrayAny) -> Bound<'_, PyAny> {
    match out {
        ArrayAny::U8(a) => a.into_pyarray(py).into_any(),
        ArrayAny::U16(a) => a.into_pyarray(py).into_any(),
        ArrayAny::U32(a) => a.into_pyarray(py).into_any(),
        ArrayAny::I8(a) => a.into_pyarray(py).into_any(),
        ArrayAny::I16(a) => a.into_pyarray(py).into_any(),
        ArrayAny::I32(a) => a.into_pyarray(py).into_any(),
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
    typed!(u8, u16, u32, i8, i16, i32, f32, f64);
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

/// Runs one `haloflow` command line (without the program name) in this process, the
/// GIL released.
#[pyfunction]
fn command(py: Python<'_>, args: Vec<String>) -> PyResult<()> {
    py.detach(|| haloflow::cli::command(args)).map_err(failed)
}

#[pymodule]
fn _haloflow(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("HaloflowError", m.py().get_type::<HaloflowError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(apply, m)?)?;
    m.add_function(wrap_pyfunction!(command, m)?)?;
    m.add_function(wrap_pyfunction!(statistics, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    Ok(())
}
