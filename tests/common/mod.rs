//! Helpers shared by the integration tests: `.npy` loading and result comparison.

#![allow(dead_code)]

use std::fs::File;
use std::io::Read;
use std::path::Path;

use haloflow::{ArrayAny, DType};
use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;

/// The numpy dtype of an `.npy` file, from its header.
pub fn npy_dtype(path: &Path) -> DType {
    let mut head = vec![0u8; 256];
    let n = File::open(path).unwrap().read(&mut head).unwrap();
    let text = String::from_utf8_lossy(&head[..n]);
    let descr = text
        .split("'descr':")
        .nth(1)
        .and_then(|s| s.split('\'').nth(1))
        .unwrap_or_else(|| panic!("no descr in {}", path.display()));
    match &descr[1..] {
        "u1" => DType::U8,
        "u2" => DType::U16,
        "u4" => DType::U32,
        "u8" => DType::U64,
        "i1" => DType::I8,
        "i2" => DType::I16,
        "i4" => DType::I32,
        "i8" => DType::I64,
        "f4" => DType::F32,
        "f8" => DType::F64,
        other => panic!("unsupported npy dtype {other} in {}", path.display()),
    }
}

/// Loads an `.npy` file of any supported dtype.
pub fn read_npy(path: &Path) -> ArrayAny {
    fn read<T: ndarray_npy::ReadableElement>(path: &Path) -> ArrayD<T> {
        ArrayD::<T>::read_npy(File::open(path).unwrap())
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }
    match npy_dtype(path) {
        DType::U8 => read::<u8>(path).into(),
        DType::U16 => read::<u16>(path).into(),
        DType::U32 => read::<u32>(path).into(),
        DType::U64 => read::<u64>(path).into(),
        DType::I8 => read::<i8>(path).into(),
        DType::I16 => read::<i16>(path).into(),
        DType::I32 => read::<i32>(path).into(),
        DType::I64 => read::<i64>(path).into(),
        DType::F32 => read::<f32>(path).into(),
        DType::F64 => read::<f64>(path).into(),
    }
}

/// All values of an array as f64 (exact but for 64-bit integers beyond 2^53).
pub fn as_f64(a: &ArrayAny) -> Vec<f64> {
    fn conv<T: haloflow::Element>(a: &ArrayD<T>) -> Vec<f64> {
        a.iter().map(|x| x.to_f64()).collect()
    }
    match a {
        ArrayAny::U8(a) => conv(a),
        ArrayAny::U16(a) => conv(a),
        ArrayAny::U32(a) => conv(a),
        ArrayAny::U64(a) => conv(a),
        ArrayAny::I8(a) => conv(a),
        ArrayAny::I16(a) => conv(a),
        ArrayAny::I32(a) => conv(a),
        ArrayAny::I64(a) => conv(a),
        ArrayAny::F32(a) => conv(a),
        ArrayAny::F64(a) => conv(a),
    }
}

/// Compares `got` with `want`: same dtype and shape, then equal (`tol = None`) or
/// within `tol`. Returns a description of the first difference.
pub fn compare(got: &ArrayAny, want: &ArrayAny, tol: Option<f64>) -> Result<(), String> {
    if got.dtype() != want.dtype() {
        return Err(format!("dtype {} != {}", got.dtype(), want.dtype()));
    }
    if got.shape() != want.shape() {
        return Err(format!("shape {:?} != {:?}", got.shape(), want.shape()));
    }
    let (g, w) = (as_f64(got), as_f64(want));
    let mut worst: Option<(usize, f64)> = None;
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let same = a == b || (a.is_nan() && b.is_nan());
        let err = if same { 0.0 } else { (a - b).abs() };
        let bad = match tol {
            None => !same,
            Some(t) => err.is_nan() || err > t,
        };
        if bad && worst.is_none_or(|(_, e)| err > e || e.is_nan()) {
            worst = Some((i, err));
        }
    }
    match worst {
        None => Ok(()),
        Some((i, err)) => Err(format!(
            "element {i} (flat): got {} want {} (|diff| {err:e}, tol {tol:?})",
            g[i], w[i]
        )),
    }
}

pub mod props;

/// One scipy reference case of `tests/golden/cases.json`.
#[derive(serde::Deserialize)]
pub struct GoldenCase {
    /// Unique name.
    pub name: String,
    /// Input `.npy`, relative to `tests/golden`.
    pub input: String,
    /// The operations, in order.
    pub ops: Vec<haloflow::Op>,
    /// Final cast.
    pub dtype: Option<DType>,
    /// Expected `.npy`, relative to `tests/golden`.
    pub expected: String,
    /// Bit-exact comparison.
    pub exact: bool,
    /// Absolute tolerance when not exact.
    pub tol: f64,
}

impl GoldenCase {
    /// The case's pipeline.
    pub fn pipeline(&self) -> haloflow::Pipeline {
        haloflow::Pipeline {
            ops: self.ops.clone(),
            dtype: self.dtype,
        }
    }

    /// The tolerance to compare with (`None`: exact).
    pub fn tolerance(&self) -> Option<f64> {
        (!self.exact).then_some(self.tol)
    }

    /// Input and expected output.
    pub fn load(&self) -> (ArrayAny, ArrayAny) {
        let dir = golden_dir();
        (
            read_npy(&dir.join(&self.input)),
            read_npy(&dir.join(&self.expected)),
        )
    }
}

/// `tests/golden`.
pub fn golden_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Every golden case (run `tests/golden/generate.py` to regenerate them).
pub fn golden_cases() -> Vec<GoldenCase> {
    #[derive(serde::Deserialize)]
    struct Cases {
        cases: Vec<GoldenCase>,
    }
    let text = std::fs::read_to_string(golden_dir().join("cases.json"))
        .expect("tests/golden/cases.json (run tests/golden/generate.py)");
    let cases: Cases = serde_json::from_str(&text).expect("cases.json parses");
    assert!(cases.cases.len() > 100, "too few golden cases");
    cases.cases
}

/// Whether a GPU adapter is there; without one, a notice, and a failure if
/// `HALOFLOW_REQUIRE_GPU=1` (CI) demands one.
pub fn gpu_or_notice(what: &str) -> bool {
    let has_adapter = !haloflow::gpu::adapters().is_empty();
    if !has_adapter {
        assert!(
            std::env::var("HALOFLOW_REQUIRE_GPU").as_deref() != Ok("1"),
            "HALOFLOW_REQUIRE_GPU=1 but no GPU adapter was found"
        );
        eprintln!("notice: no GPU adapter; skipping the GPU {what} checks");
    }
    has_adapter
}
