//! Every op × mode × dtype × odd shape against scipy/numpy reference vectors
//! (`tests/golden/generate.py`), computed in one block and in small blocks.

mod common;

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
    let cases = common::golden_cases();
    let mut failures = Vec::new();
    for case in &cases {
        let (input, want) = case.load();
        let pipeline = case.pipeline();
        for block in blockings(want.shape()) {
            let result = pipeline
                .apply_blocks(input.view(), &block)
                .map_err(|e| e.to_string())
                .and_then(|got| common::compare(&got, &want, case.tolerance()));
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
        cases.len(),
        failures.join("\n")
    );
}
