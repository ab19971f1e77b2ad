//! A GPU fault costs speed, never the run: with the `fault-injection` feature
//! (`scripts/test` builds the tests with it), `HALOFLOW_INJECT_GPU_FAULT=oom@K` or
//! `lost@K` makes the K-th submission fail, and the command must still leave a complete
//! output equal to the CPU backend's, and say what happened.
//!
//! Needs a GPU adapter (lavapipe in CI); without one these tests print a notice and
//! pass, unless `HALOFLOW_REQUIRE_GPU=1` makes them fail.
#![cfg(feature = "fault-injection")]

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output as Done};

use haloflow::block::Block;
use haloflow::store::{Input, Output, OutputSpec};
use haloflow::{DType, Region};

mod common;
use common::gpu_or_notice;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("gpu-faults")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

const SHAPE: [usize; 3] = [24, 40, 36];

/// A float32 array of [`SHAPE`] in chunks of 8 × 16 × 16 (27 jobs), pseudo-random.
fn input(dir: &Path) -> PathBuf {
    let path = dir.join("in.zarr");
    let out = Output::create(
        &path,
        &OutputSpec::new(&SHAPE, DType::F32, &[8, 16, 16]),
        false,
    )
    .unwrap();
    let mut state = 7u64;
    let data: Vec<f32> = (0..SHAPE.iter().product::<usize>())
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            (state >> 40) as f32 / 16.0
        })
        .collect();
    let whole = Region::whole(&SHAPE);
    out.write(
        &whole,
        &Block::new(whole.sets(), Cow::Owned(data)).into_any(),
    )
    .unwrap();
    out.flush().unwrap();
    path
}

fn read(path: &Path) -> Vec<f32> {
    let block = Input::open(path)
        .unwrap()
        .read_region(&Region::whole(&SHAPE))
        .unwrap();
    block.typed::<f32>().data.to_vec()
}

/// `haloflow gaussian IN OUT --sigma 2` on `device`, with `fault` injected if given,
/// its report read back.
fn gaussian(dir: &Path, out: &str, device: &str, fault: Option<&str>) -> (Done, serde_json::Value) {
    gaussian_with(dir, out, device, fault, &[])
}

/// As [`gaussian`], with `extra` flags.
fn gaussian_with(
    dir: &Path,
    out: &str,
    device: &str,
    fault: Option<&str>,
    extra: &[&str],
) -> (Done, serde_json::Value) {
    let report = dir.join(format!("{out}.json"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_haloflow"));
    cmd.arg("gaussian")
        .arg(dir.join("in.zarr"))
        .arg(dir.join(out))
        .args(["--sigma", "2", "--threads", "2", "--device", device])
        .args(extra)
        .arg("--report")
        .arg(&report);
    match fault {
        Some(f) => cmd.env("HALOFLOW_INJECT_GPU_FAULT", f),
        None => cmd.env_remove("HALOFLOW_INJECT_GPU_FAULT"),
    };
    let done = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    let report = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    (done, report)
}

/// Asserts `got` equals the CPU backend's `want` within 1e-5 of the values' magnitude.
fn assert_close(got: &[f32], want: &[f32]) {
    let scale = want.iter().fold(0f32, |m, x| m.max(x.abs())).max(1.0);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * scale,
            "element {i}: {g} against {w}"
        );
    }
}

#[test]
fn a_clean_gpu_run_reports_its_link_traffic_and_no_fault() {
    if !gpu_or_notice("fault") {
        return;
    }
    let dir = scratch("clean");
    input(&dir);
    let (_, cpu_report) = gaussian(&dir, "cpu.zarr", "cpu", None);
    assert!(cpu_report.get("gpu").is_none(), "{cpu_report}");
    let (done, report) = gaussian(&dir, "gpu.zarr", "gpu", None);
    assert_close(&read(&dir.join("gpu.zarr")), &read(&dir.join("cpu.zarr")));
    let gpu = &report["gpu"];
    assert_eq!(gpu["cpu_fallback_jobs"], 0, "{report}");
    assert!(gpu.get("fault").is_none(), "{report}");
    // Three slabs (rows of 9 jobs), each a window submission and a segment.
    assert_eq!(gpu["slabs"], 3, "{report}");
    assert_eq!(gpu["submits"], 6, "{report}");
    // Every output byte is read back once (float32 out, no halo on the output).
    assert_eq!(gpu["bytes_downloaded"], report["bytes_written"], "{report}");
    // Each decoded byte crosses the link once, with the stages' tables.
    let uploaded = gpu["bytes_uploaded"].as_u64().unwrap();
    let read = report["bytes_read"].as_u64().unwrap();
    assert!(read <= uploaded && uploaded <= read + read / 5, "{report}");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(stderr.contains("gpu link: uploaded"), "{stderr}");
    assert!(!stderr.contains("gpu fault"), "{stderr}");
}

#[test]
fn out_of_device_memory_stops_the_stream_and_the_jobs_go_on_one_by_one() {
    if !gpu_or_notice("fault") {
        return;
    }
    let dir = scratch("oom-stream");
    input(&dir);
    gaussian(&dir, "cpu.zarr", "cpu", None);
    // Submission 1 assembles the first slab's window, 2 runs its stages.
    let (done, report) = gaussian(&dir, "gpu.zarr", "gpu", Some("oom@2"));
    assert_close(&read(&dir.join("gpu.zarr")), &read(&dir.join("cpu.zarr")));
    assert_eq!(report["jobs_done"], report["jobs_total"], "{report}");
    let gpu = &report["gpu"];
    assert_eq!(gpu["cpu_fallback_jobs"], 0, "{report}");
    let fault = gpu["fault"].as_str().unwrap();
    assert!(fault.contains("out of device memory"), "{fault}");
    assert!(fault.contains("streaming stopped"), "{fault}");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        stderr.contains("gpu fault: out of device memory (injected at submission 2)")
            && stderr.contains("every job computed on the device"),
        "{stderr}"
    );
}

#[test]
fn out_of_device_memory_sends_one_job_to_the_cpu() {
    if !gpu_or_notice("fault") {
        return;
    }
    let dir = scratch("oom");
    input(&dir);
    gaussian(&dir, "cpu.zarr", "cpu", None);
    // A sharded output runs job by job (a shard's jobs one after another).
    let sharded = ["--shards", "8,32,32"];
    let (done, report) = gaussian_with(&dir, "gpu.zarr", "gpu", Some("oom@2"), &sharded);
    assert_close(&read(&dir.join("gpu.zarr")), &read(&dir.join("cpu.zarr")));
    assert_eq!(report["jobs_done"], report["jobs_total"], "{report}");
    let gpu = &report["gpu"];
    assert_eq!(gpu["slabs"], 0, "{report}");
    assert_eq!(gpu["cpu_fallback_jobs"], 1, "{report}");
    let fault = gpu["fault"].as_str().unwrap();
    assert!(fault.contains("out of device memory"), "{fault}");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        stderr.contains("gpu fault: out of device memory (injected at submission 2); 1 of 27 jobs computed on the CPU instead"),
        "{stderr}"
    );
}

#[test]
fn a_lost_device_sends_the_rest_of_the_run_to_the_cpu() {
    if !gpu_or_notice("fault") {
        return;
    }
    let dir = scratch("lost");
    input(&dir);
    gaussian(&dir, "cpu.zarr", "cpu", None);
    let (done, report) = gaussian(&dir, "gpu.zarr", "gpu", Some("lost@2"));
    assert_close(&read(&dir.join("gpu.zarr")), &read(&dir.join("cpu.zarr")));
    assert_eq!(report["jobs_done"], 27, "{report}");
    let gpu = &report["gpu"];
    // The job of submission 1 may have finished on the device before the loss.
    let fallbacks = gpu["cpu_fallback_jobs"].as_u64().unwrap();
    assert!((26..=27).contains(&fallbacks), "{report}");
    // Submission 1, and at most one per other thread that passed its fault check
    // just before the loss (it then fails on waiting).
    assert!(gpu["submits"].as_u64().unwrap() <= 2, "{report}");
    let fault = gpu["fault"].as_str().unwrap();
    assert!(fault.contains("device lost"), "{fault}");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(stderr.contains("gpu fault: device lost"), "{stderr}");
}

#[test]
fn out_of_memory_mid_stream_keeps_the_slabs_already_submitted() {
    if !gpu_or_notice("fault") {
        return;
    }
    let dir = scratch("oom-mid-stream");
    input(&dir);
    gaussian(&dir, "cpu.zarr", "cpu", None);
    // Submissions 1 and 2 are the first slab (9 jobs), 3 the second's window, 4 its
    // stages: out of memory there. The first slab still finishes and is written; the
    // other 18 jobs go one by one, on the device.
    let (done, report) = gaussian(&dir, "gpu.zarr", "gpu", Some("oom@4"));
    assert_close(&read(&dir.join("gpu.zarr")), &read(&dir.join("cpu.zarr")));
    assert_eq!(report["jobs_done"], 27, "{report}");
    let gpu = &report["gpu"];
    assert_eq!(gpu["slabs"], 1, "{report}");
    assert_eq!(gpu["cpu_fallback_jobs"], 0, "{report}");
    // The first slab's two submissions, the second's window, then one per job.
    assert_eq!(gpu["submits"], 3 + 18, "{report}");
    let fault = gpu["fault"].as_str().unwrap();
    assert!(
        fault.contains("out of device memory (injected at submission 4)"),
        "{fault}"
    );
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(stderr.contains("(1 slabs streamed)"), "{stderr}");
}

/// A device slower than `--gpu-timeout` counts as hung: a timeout far below one job's
/// time on any device sends the job that met it, and the rest, to the CPU.
#[test]
fn a_hung_device_times_out_and_the_run_goes_on_on_the_cpu() {
    if !gpu_or_notice("fault") {
        return;
    }
    let dir = scratch("hung");
    input(&dir);
    gaussian(&dir, "cpu.zarr", "cpu", None);
    let (done, report) = gaussian_with(&dir, "gpu.zarr", "gpu", None, &["--gpu-timeout", "1e-6"]);
    assert_close(&read(&dir.join("gpu.zarr")), &read(&dir.join("cpu.zarr")));
    assert_eq!(report["jobs_done"], 27, "{report}");
    let gpu = &report["gpu"];
    // A slab whose work was done before its first wait may finish on the device; from
    // the first timeout on, every job goes to the CPU.
    let fallbacks = gpu["cpu_fallback_jobs"].as_u64().unwrap();
    assert!((1..=27).contains(&fallbacks), "{report}");
    let fault = gpu["fault"].as_str().unwrap();
    assert!(
        fault.contains("did not finish a submission within"),
        "{fault}"
    );
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(stderr.contains("(hung)"), "{stderr}");
}

#[test]
fn a_bad_injection_is_refused() {
    let dir = scratch("bad");
    input(&dir);
    let done = Command::new(env!("CARGO_BIN_EXE_haloflow"))
        .arg("gaussian")
        .arg(dir.join("in.zarr"))
        .arg(dir.join("out.zarr"))
        .args(["--sigma", "1", "--device", "gpu"])
        .env("HALOFLOW_INJECT_GPU_FAULT", "oom@0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    if haloflow::gpu::adapters().is_empty() {
        return;
    }
    assert!(!done.status.success(), "{stderr}");
    assert!(
        stderr.contains("HALOFLOW_INJECT_GPU_FAULT must be oom@K or lost@K"),
        "{stderr}"
    );
}
