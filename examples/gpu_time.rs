//! Times one pipeline on a `.npy` volume, on the CPU backend or a GPU, and says where
//! the time went.
//!
//! ```text
//! cargo run --release --example gpu_time -- IN.npy --pipeline '<pipeline JSON>' \
//!     [--device cpu|gpu] [--runs N] [--out OUT.npy]
//! ```
//!
//! The input is u8, u16 or f32; the pipeline is the JSON the command's `--report`
//! and the outputs' attributes carry (`{"ops": [{"gaussian": {"sigma": [2.0]}}]}`).
//! After one warm-up run, each of `--runs` runs prints its wall time and, on a GPU:
//! the host copy into staging memory ("copy in"), the compute of each stage
//! (timestamp queries), the copy out of mapped memory ("copy out"), and the bytes
//! uploaded and read back. Then, on a GPU, the same pipeline on data already resident
//! on the device ([`haloflow::DeviceArray`]), and the time of a plain `memcpy` of the
//! input plus the output, for scale. The adapter is named with its type and driver;
//! a software renderer is named as one. The last line is one JSON object with every
//! figure. `RAYON_NUM_THREADS` sets the CPU threads.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use haloflow::{ArrayAny, Backend, GpuContext, GpuTimes, Pipeline};
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// The input volume (`.npy`: uint8, uint16 or float32).
    input: PathBuf,
    /// The pipeline, as JSON.
    #[arg(long)]
    pipeline: String,
    /// Where to run: `cpu` or `gpu`.
    #[arg(long, default_value = "gpu")]
    device: String,
    /// Timed runs after the warm-up run.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Writes the last run's result here (`.npy`).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn read(path: &PathBuf) -> Result<ArrayAny, Box<dyn std::error::Error>> {
    let open = || File::open(path);
    if let Ok(a) = ArrayD::<f32>::read_npy(open()?) {
        return Ok(a.into());
    }
    if let Ok(a) = ArrayD::<u16>::read_npy(open()?) {
        return Ok(a.into());
    }
    Ok(ArrayD::<u8>::read_npy(open()?)?.into())
}

fn write(path: &PathBuf, a: &ArrayAny) -> Result<(), Box<dyn std::error::Error>> {
    let file = File::create(path)?;
    match a {
        ArrayAny::F32(a) => a.write_npy(file)?,
        ArrayAny::U16(a) => a.write_npy(file)?,
        ArrayAny::U8(a) => a.write_npy(file)?,
        ArrayAny::F64(a) => a.write_npy(file)?,
        ArrayAny::U32(a) => a.write_npy(file)?,
        ArrayAny::I32(a) => a.write_npy(file)?,
        ArrayAny::I16(a) => a.write_npy(file)?,
        ArrayAny::I8(a) => a.write_npy(file)?,
        ArrayAny::U64(a) => a.write_npy(file)?,
        ArrayAny::I64(a) => a.write_npy(file)?,
    }
    Ok(())
}

fn bytes_of(a: &ArrayAny) -> usize {
    a.shape().iter().product::<usize>() * a.dtype().size()
}

/// Seconds of one plain copy of `bytes` bytes (best of three).
fn memcpy_seconds(bytes: usize) -> f64 {
    let src = vec![1u8; bytes];
    let mut dst = vec![0u8; bytes];
    (0..3)
        .map(|_| {
            let t = Instant::now();
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&dst);
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn secs(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

fn times_json(wall: f64, t: &GpuTimes) -> serde_json::Value {
    json!({
        "wall_s": wall,
        "copy_in_s": secs(t.copy_in),
        "copy_out_s": secs(t.copy_out),
        "compute_s": secs(t.compute()),
        "stages_s": t.stages.iter().map(|d| secs(*d)).collect::<Vec<_>>(),
        "bytes_in": t.bytes_in,
        "bytes_out": t.bytes_out,
        "segments": t.segments,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    haloflow::gpu::quiet_vulkan_loader();
    let args = Args::parse();
    let input = read(&args.input)?;
    let pipeline: Pipeline = serde_json::from_str(&args.pipeline)?;
    let (backend, ctx) = match args.device.as_str() {
        "cpu" => (Backend::Cpu, None),
        "gpu" => {
            let ctx = Arc::new(GpuContext::new(None)?);
            (Backend::Gpu(ctx.clone()), Some(ctx))
        }
        other => return Err(format!("unknown device '{other}' (expected cpu or gpu)").into()),
    };
    let adapter = ctx.as_ref().map(|c| c.adapter().clone());
    match &adapter {
        Some(a) => {
            println!(
                "adapter: {} | type: {} | backend: {} | driver: {}",
                a.name, a.device_type, a.backend, a.driver
            );
            if a.is_cpu {
                println!(
                    "NOTE: a software renderer on the CPU, not a GPU: its times measure a CPU \
                     emulating a GPU"
                );
            }
        }
        None => println!(
            "device: cpu backend, {} rayon threads",
            rayon::current_num_threads()
        ),
    }
    println!(
        "input: {:?} {} | pipeline: {}",
        input.shape(),
        input.dtype(),
        args.pipeline
    );
    if let Some(c) = &ctx {
        c.set_profiling(true);
    }

    let mut result = Some(pipeline.apply_on(input.view(), None, &backend)?);
    let mut runs = Vec::new();
    for run in 1..=args.runs.max(1) {
        drop(result.take());
        if let Some(c) = &ctx {
            c.take_times();
        }
        let t = Instant::now();
        let out = pipeline.apply_on(input.view(), None, &backend)?;
        let wall = t.elapsed().as_secs_f64();
        result = Some(out);
        match &ctx {
            Some(c) => {
                let t = c.take_times();
                let stages: Vec<String> = t
                    .stages
                    .iter()
                    .map(|d| format!("{:.4}", secs(*d)))
                    .collect();
                println!(
                    "run {run}: wall {wall:.4} s | copy in {:.4} s | compute {:.4} s (stages: {}) | \
                     copy out {:.4} s | host copies {:.4} s | uploaded {:.1} MB, read back {:.1} MB in {} segments",
                    secs(t.copy_in),
                    secs(t.compute()),
                    if c.has_timestamps() {
                        stages.join(", ")
                    } else {
                        "no timestamps".into()
                    },
                    secs(t.copy_out),
                    secs(t.copy_in + t.copy_out),
                    t.bytes_in as f64 / 1e6,
                    t.bytes_out as f64 / 1e6,
                    t.segments,
                );
                runs.push(times_json(wall, &t));
            }
            None => {
                println!("run {run}: wall {wall:.4} s");
                runs.push(json!({ "wall_s": wall }));
            }
        }
    }
    let result = result.expect("at least one run");

    // The same pipeline on data already on the device.
    let mut resident = Vec::new();
    let mut resident_note = None;
    if let Some(c) = &ctx {
        match c.upload(input.view()) {
            Ok(on_device) => {
                let warm = on_device.apply(&pipeline);
                match warm {
                    Ok(_) => {
                        for run in 1..=args.runs.max(1) {
                            c.take_times();
                            let t = Instant::now();
                            let out = on_device.apply(&pipeline)?;
                            let wall = t.elapsed().as_secs_f64();
                            let times = c.take_times();
                            println!(
                                "resident {run}: wall {wall:.4} s | compute {:.4} s",
                                secs(times.compute())
                            );
                            resident.push(times_json(wall, &times));
                            drop(out);
                        }
                    }
                    Err(e) => resident_note = Some(e.to_string()),
                }
            }
            Err(e) => resident_note = Some(e.to_string()),
        }
        if let Some(note) = &resident_note {
            println!("resident: not run ({note})");
        }
    }

    let copied = bytes_of(&input) + bytes_of(&result);
    let memcpy = memcpy_seconds(copied);
    println!(
        "memcpy of input + output ({:.1} MB): {memcpy:.4} s",
        copied as f64 / 1e6
    );
    if let Some(path) = &args.out {
        write(path, &result)?;
    }
    let best = runs
        .iter()
        .filter_map(|r| r["wall_s"].as_f64())
        .fold(f64::INFINITY, f64::min);
    let summary = json!({
        "device": args.device,
        "adapter": adapter.as_ref().map(|a| json!({
            "name": a.name,
            "type": a.device_type,
            "backend": a.backend,
            "driver": a.driver,
            "software": a.is_cpu,
        })),
        "threads": rayon::current_num_threads(),
        "shape": input.shape(),
        "dtype": input.dtype().to_string(),
        "pipeline": serde_json::from_str::<serde_json::Value>(&args.pipeline)?,
        "runs": runs,
        "best_wall_s": best,
        "resident": resident,
        "resident_note": resident_note,
        "memcpy_s": memcpy,
        "memcpy_bytes": copied,
    });
    println!("{summary}");
    Ok(())
}
