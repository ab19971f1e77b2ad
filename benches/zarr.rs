//! Zarr → Zarr on the CPU, per op: the streaming executor end to end (read, decode,
//! compute, encode, write, sync), and the codec alone on what each op writes.
//!
//! `cargo bench --bench zarr`; `HALOFLOW_BENCH_SHAPE=256,512,512` for the full volume.
//! The volume is float32 uniform in [50, 140) (as in `scripts/compare_zarr.py`), Zarr
//! v3, zstd level 3, chunks of at most 64×128×128, in the system's temporary
//! directory; every op writes the same layout.

mod common;

use std::borrow::Cow;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use haloflow::block::Block;
use haloflow::exec::{self, RunOptions};
use haloflow::store::{Input, Output, OutputSpec};
use haloflow::{DType, Op, Pipeline, Plan, Region};
use ndarray::{ArrayD, IxDyn};

/// Writes `volume` as a Zarr v3 array (zstd level 3) with chunks `chunk`.
fn write_volume(path: &Path, volume: &ArrayD<f32>, chunk: &[usize]) {
    let shape = volume.shape();
    let output = Output::create(path, &OutputSpec::new(shape, DType::F32, chunk), true)
        .expect("creates the input");
    let sets = Region::whole(shape).sets();
    let data = volume.as_slice().expect("standard layout");
    output
        .write(
            &Region::whole(shape),
            &Block::new(sets, Cow::Borrowed(data)).into_any(),
        )
        .expect("writes the input");
    output.flush().expect("commits the input");
}

/// One streamed run of `pipeline` into a fresh output; the time of the run alone.
fn run_once(pipeline: &Pipeline, input: &Input, chunk: &[usize], out: &Path) -> Duration {
    let (shape, dtype) = pipeline
        .output(input.shape(), input.dtype())
        .expect("valid pipeline");
    let chunk: Vec<usize> = chunk.iter().zip(&shape).map(|(&c, &n)| c.min(n)).collect();
    let plan = Plan::new(pipeline, input.shape(), input.dtype(), &chunk, &chunk).expect("plans");
    let output =
        Output::create(out, &OutputSpec::new(&shape, dtype, &chunk), true).expect("creates");
    let options = RunOptions {
        threads: 2,
        ..RunOptions::default()
    };
    let started = Instant::now();
    exec::run(&plan, input, &output, &options, None).expect("runs");
    started.elapsed()
}

fn zarr_to_zarr(c: &mut Criterion) {
    let shape = common::shape("HALOFLOW_BENCH_SHAPE", &[64, 256, 256]);
    let chunk: Vec<usize> = shape
        .iter()
        .zip([64, 128, 128].iter().chain(std::iter::repeat(&128)))
        .map(|(&n, &c)| n.min(c))
        .collect();
    let dir = std::env::temp_dir().join(format!("haloflow-bench-zarr-{}", std::process::id()));
    let volume = common::noise(&shape);
    let source = dir.join("volume.zarr");
    write_volume(&source, &volume, &chunk);
    let input = Input::open(&source).expect("opens the input");
    let out = dir.join("out.zarr");

    let mut group = c.benchmark_group("zarr_to_zarr_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((volume.len() * 4) as u64));
    let label = format!("f32_{}", common::label(&shape));
    let mut ops = vec![("copy", Pipeline::new(Vec::new()))];
    ops.extend(
        common::ops()
            .into_iter()
            .map(|(n, op)| (n, Pipeline::from(op))),
    );
    for (name, pipeline) in &ops {
        group.bench_with_input(BenchmarkId::new(*name, &label), pipeline, |b, p| {
            b.iter_custom(|iters| (0..iters).map(|_| run_once(p, &input, &chunk, &out)).sum())
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// zstd level 3 (the library zarrs links) on one chunk of the input and of what some
/// ops write: the codec's speed depends on the data, and sets each op's floor.
fn codec(c: &mut Criterion) {
    let shape = [64, 128, 128];
    let input = common::noise(&shape);
    let mut outputs = vec![("input", input.clone())];
    for (name, op) in [
        ("clip", Op::clip(60.0, 120.0)),
        ("gaussian_s2", Op::gaussian(&[2.0])),
    ] {
        let out = Pipeline::from(op)
            .apply(input.view())
            .expect("runs")
            .into_array::<f32>()
            .expect("float32");
        outputs.push((name, out.into_dimensionality::<IxDyn>().expect("n-d")));
    }
    let mut group = c.benchmark_group("zstd3_encode_chunk");
    group.throughput(Throughput::Bytes((input.len() * 4) as u64));
    for (name, data) in &outputs {
        let bytes: &[u8] = bytemuck::cast_slice(data.as_slice().expect("standard layout"));
        group.bench_with_input(
            BenchmarkId::new(*name, "f32_64x128x128"),
            bytes,
            |b, bytes| b.iter(|| zstd::bulk::compress(bytes, 3).expect("compresses")),
        );
    }
    group.finish();
}

criterion_group!(benches, zarr_to_zarr, codec);
criterion_main!(benches);
