//! `scripts/gpu-bench` on a small volume, so that the benchmark still works the day a
//! GPU is there: every case runs on haloflow's CPU backend, on the GPU adapter (Mesa's
//! lavapipe here) and with scipy, the results are checked against each other, and the
//! table is written (to a scratch file, not BENCHMARKS.md).
//!
//! Needs `HALOFLOW_PYTHON` (numpy, scipy, zarr) and the `gpu_time` example, which
//! `cargo test` builds; without Python it prints a notice and passes, unless
//! `HALOFLOW_REQUIRE_PYTHON=1`. With `HALOFLOW_REQUIRE_GPU=1` the GPU runs must succeed.

use std::path::Path;
use std::process::Command;

#[test]
fn gpu_bench_runs_on_a_small_volume_and_its_results_agree() {
    let required = std::env::var("HALOFLOW_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
    let Ok(python) = std::env::var("HALOFLOW_PYTHON") else {
        assert!(
            !required,
            "HALOFLOW_REQUIRE_PYTHON=1 but HALOFLOW_PYTHON is not set"
        );
        eprintln!("notice: HALOFLOW_PYTHON not set; skipping scripts/gpu-bench");
        return;
    };
    let haloflow = Path::new(env!("CARGO_BIN_EXE_haloflow"));
    let gpu_time = haloflow.parent().unwrap().join("examples/gpu_time");
    assert!(
        gpu_time.exists(),
        "{} is missing: run the whole test suite (`cargo test` builds the examples)",
        gpu_time.display()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gpu-bench");
    std::fs::create_dir_all(&scratch).unwrap();
    let table = scratch.join("BENCHMARKS.md");
    let _ = std::fs::remove_file(&table);
    let out = Command::new(&python)
        .arg(root.join("scripts/gpu-bench"))
        .args(["--shape", "32,64,64", "--runs", "1", "--out"])
        .arg(&table)
        .arg("--haloflow")
        .arg(haloflow)
        .arg("--gpu-time")
        .arg(&gpu_time)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let text = std::fs::read_to_string(&table).unwrap();
    assert!(
        text.contains("<!-- gpu-bench:begin -->") && text.contains("| gaussian s=2 | float32 |")
    );
    // Every case ran on the CPU backend with one thread and with all, and with scipy
    // (every case has a scipy reference, and at this size none is skipped for time),
    // and each agreed with the CPU backend; with HALOFLOW_REQUIRE_GPU=1 on the GPU too.
    let gpu = std::env::var("HALOFLOW_REQUIRE_GPU").is_ok_and(|v| v == "1");
    let rows = case_rows(&text);
    assert_eq!(rows.len(), 20, "{text}");
    for (case, checks) in &rows {
        let mut want = vec!["cpu", "cpu1", "scipy"];
        if gpu {
            want.insert(1, "gpu");
        }
        let got: Vec<&str> = checks.split('=').filter(|c| *c != "gpu" || gpu).collect();
        assert_eq!(got, want, "{case}: checked {checks}\n{text}");
    }
    assert!(!text.contains("FAIL"), "{text}");
    // Zarr to Zarr: the codec floor, and every op on the CPU, the GPU and auto (the
    // GPU's results checked against the CPU's by the script).
    let row = |op: &str, device: &str| {
        text.lines().any(|l| {
            l.starts_with(&format!("| {op} (")) && l.contains(&format!(" f32) | {device} |"))
        })
    };
    assert!(row("copy", "cpu"), "{text}");
    for op in [
        "gaussian",
        "median",
        "convolve",
        "threshold",
        "gaussian-laplace",
    ] {
        let mut devices = vec!["cpu", "auto"];
        if gpu {
            devices.push("gpu");
        }
        for device in devices {
            assert!(row(op, device), "{op} on {device}\n{text}");
        }
    }
    if gpu {
        assert!(text.contains("- adapter: "), "{text}");
    }
}

/// The first table's rows (the cases in memory): each row's case and dtype, and its
/// last cell, the results it was checked against (`cpu=gpu=cpu1=scipy`).
fn case_rows(text: &str) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("| case |") {
            in_table = true;
        } else if in_table && line.starts_with("|---") {
            continue;
        } else if in_table && line.starts_with("| ") {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let case = format!("{} {}", cells[0], cells[1]);
            rows.push((case, cells[cells.len() - 1].to_string()));
        } else if in_table {
            break;
        }
    }
    rows
}
