//! In-memory CPU kernels (the chunked path with chunks in RAM), per op.
//!
//! `cargo bench --bench kernels`; `HALOFLOW_BENCH_SHAPE=256,512,512` for the full volume.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use haloflow::{DownMethod, Kernel, Op, Pipeline, UpMethod};
use ndarray::{ArrayD, IxDyn};

fn shape() -> Vec<usize> {
    std::env::var("HALOFLOW_BENCH_SHAPE")
        .ok()
        .map(|s| {
            s.split(',')
                .map(|v| v.trim().parse().expect("shape"))
                .collect()
        })
        .unwrap_or_else(|| vec![64, 256, 256])
}

fn volume(shape: &[usize]) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(shape), |i| {
        let h = (i[0] * 73_856_093) ^ (i[1] * 19_349_663) ^ (i[2] * 83_492_791);
        50.0 + (h % 9_001) as f32 / 100.0
    })
}

fn ops() -> Vec<(&'static str, Op)> {
    vec![
        ("threshold", Op::threshold(95.0)),
        ("clip", Op::clip(60.0, 120.0)),
        ("gaussian_s2", Op::gaussian(&[2.0])),
        (
            "convolve_3x3x3",
            Op::convolve(Kernel::new(
                vec![3, 3, 3],
                (0..27).map(|i| i as f64 / 27.0).collect(),
            )),
        ),
        ("downsample_mean_2", Op::downsample(&[2], DownMethod::Mean)),
        ("upsample_linear_2", Op::upsample(&[2], UpMethod::Linear)),
    ]
}

fn kernels(c: &mut Criterion) {
    let shape = shape();
    let f32_volume = volume(&shape);
    let u16_volume = f32_volume.mapv(|x| (x * 500.0) as u16);
    let mut group = c.benchmark_group("in_memory_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((f32_volume.len() * 4) as u64));
    let label = shape
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("x");
    for (name, op) in ops() {
        let pipeline = Pipeline::from(op);
        group.bench_with_input(
            BenchmarkId::new(name, format!("f32_{label}")),
            &pipeline,
            |b, p| b.iter(|| p.apply(f32_volume.view()).expect("runs")),
        );
    }
    let gaussian = Pipeline::from(Op::gaussian(&[2.0]));
    group.bench_with_input(
        BenchmarkId::new("gaussian_s2", format!("u16_{label}")),
        &gaussian,
        |b, p| b.iter(|| p.apply(u16_volume.view()).expect("runs")),
    );
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
