//! CPU vs GPU on the in-memory path, op by op.
//!
//! `cargo run --release --example speedup` (`HALOFLOW_SPEEDUP_SHAPE=128,512,512` for
//! another volume; `WGPU_ADAPTER_NAME` to pick an adapter). Prints the adapter, then
//! for each op: CPU seconds, GPU seconds including uploads and readbacks, GPU seconds
//! in compute passes only (timestamp queries, where the adapter has them), and the
//! speedup (CPU / GPU with transfers). Best of three runs after a warm-up run.

use std::sync::Arc;
use std::time::Instant;

use haloflow::{ArrayAny, Backend, DownMethod, GpuContext, Kernel, Op, Pipeline, UpMethod};

const RUNS: usize = 3;

#[path = "../benches/common/mod.rs"]
mod common;

/// Best wall time of `RUNS` runs of `f` (after one warm-up run).
fn best(mut f: impl FnMut()) -> f64 {
    f();
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = match GpuContext::new(None) {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let info = ctx.adapter().clone();
    println!(
        "adapter: {} | type: {} | backend: {} | driver: {}",
        info.name, info.device_type, info.backend, info.driver
    );
    if info.is_cpu {
        println!(
            "NOTE: this adapter is a software renderer running on the CPU (e.g. Mesa's \
             lavapipe). Its timings measure a CPU emulating a GPU, not a GPU: correct \
             results, meaningless speedups."
        );
    }
    println!(
        "CPU backend: {} rayon threads; GPU: {} jobs in flight",
        rayon::current_num_threads(),
        ctx.jobs_in_flight()
    );
    let gpu = Backend::Gpu(ctx.clone());
    let shape = common::shape("HALOFLOW_SPEEDUP_SHAPE", &[64, 256, 256]);
    let label = shape
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("x");
    let f32_volume = common::volume(&shape);
    let u16_volume = f32_volume.mapv(|x| (x * 500.0) as u16);
    let cube: Vec<f64> = (0..27).map(|i| i as f64 / 27.0).collect();
    let cases: Vec<(&str, Op, ArrayAny)> = vec![
        ("threshold", Op::threshold(95.0), f32_volume.clone().into()),
        ("clip", Op::clip(60.0, 120.0), f32_volume.clone().into()),
        (
            "gaussian s=2",
            Op::gaussian(&[2.0]),
            f32_volume.clone().into(),
        ),
        (
            "gaussian s=2 u16",
            Op::gaussian(&[2.0]),
            u16_volume.clone().into(),
        ),
        (
            "convolve 3x3x3",
            Op::convolve(Kernel::new(vec![3, 3, 3], cube)),
            f32_volume.clone().into(),
        ),
        (
            "downsample mean 2",
            Op::downsample(&[2], DownMethod::Mean),
            f32_volume.clone().into(),
        ),
        (
            "downsample mean 2 u16",
            Op::downsample(&[2], DownMethod::Mean),
            u16_volume.into(),
        ),
        (
            "upsample linear 2",
            Op::upsample(&[2], UpMethod::Linear),
            f32_volume.into(),
        ),
    ];
    println!();
    println!(
        "| {:<22} | {:<20} | {:>8} | {:>17} | {:>15} | {:>7} |",
        "op", "size", "CPU s", "GPU s (+transfer)", "GPU s (compute)", "speedup"
    );
    println!(
        "|{:-<24}|{:-<22}|{:->10}|{:->19}|{:->17}|{:->9}|",
        "", "", "", "", "", ""
    );
    for (name, op, input) in cases {
        let pipeline = Pipeline::from(op);
        let cpu = best(|| {
            pipeline.apply(input.view()).expect("cpu run");
        });
        let with_transfers = best(|| {
            pipeline
                .apply_on(input.view(), None, &gpu)
                .expect("gpu run");
        });
        ctx.take_compute_time();
        ctx.set_profiling(true);
        pipeline.apply_on(input.view(), None, &gpu)?;
        ctx.set_profiling(false);
        let compute = match ctx.take_compute_time() {
            Some(t) => format!("{:.4}", t.as_secs_f64()),
            None => "n/a".to_string(),
        };
        println!(
            "| {:<22} | {:<20} | {:>8.4} | {:>17.4} | {:>15} | {:>6.2}x |",
            name,
            format!("{label} {}", input.dtype()),
            cpu,
            with_transfers,
            compute,
            cpu / with_transfers
        );
    }
    println!();
    println!(
        "GPU compute time sums the compute passes' timestamps over all jobs of one run \
         (jobs in flight overlap, so it can exceed the wall time)."
    );
    Ok(())
}
