//! Every op × mode × dtype × odd shape against scipy/numpy reference vectors
//! (`tests/golden/generate.py`), computed in one block and in small blocks.

mod common;

use std::path::{Path, PathBuf};

use haloflow::{DType, Op, Pipeline};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    input: String,
    ops: Vec<Op>,
    dtype: Option<DType>,
    expected: String,
    exact: bool,
    tol: f64,
}

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Block shapes to cut each case's output into: one block, then small odd blocks.
fn blockings(shape: &[usize]) -> Vec<Vec<usize>> {
    vec![
        shape.to_vec(),
        shape.iter().map(|_| 1).collect(),
        shape.iter().map(|&n| n.div_ceil(2).max(1)).collect(),
        shape.iter().map(|_| 3).collect(),
    ]
}

#[test]
fn golden_cases_match_scipy_in_any_blocking() {
    let dir = golden_dir();
    let text =
        std::fs::read_to_string(dir.join("cases.json")).expect("run tests/golden/generate.py");
    let cases: Cases = serde_json::from_str(&text).expect("cases.json parses");
    assert!(cases.cases.len() > 100, "too few golden cases");
    let mut failures = Vec::new();
    for case in &cases.cases {
        let input = common::read_npy(&dir.join(&case.input));
        let want = common::read_npy(&dir.join(&case.expected));
        let pipeline = Pipeline {
            ops: case.ops.clone(),
            dtype: case.dtype,
        };
        let tol = (!case.exact).then_some(case.tol);
        for block in blockings(want.shape()) {
            let result = pipeline
                .apply_blocks(input.view(), &block)
                .map_err(|e| e.to_string())
                .and_then(|got| common::compare(&got, &want, tol));
            if let Err(e) = result {
                failures.push(format!("{} (blocks {block:?}): {e}", case.name));
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases fail:\n{}",
        failures.len(),
        cases.cases.len(),
        failures.join("\n")
    );
}
