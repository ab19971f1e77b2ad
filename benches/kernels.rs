//! In-memory CPU kernels (the chunked path with chunks in RAM), per op.
//!
//! `cargo bench --bench kernels`; `HALOFLOW_BENCH_SHAPE=256,512,512` for the full volume.

mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use haloflow::{Op, Pipeline};

fn kernels(c: &mut Criterion) {
    let shape = common::shape("HALOFLOW_BENCH_SHAPE", &[64, 256, 256]);
    let f32_volume = common::volume(&shape);
    let u16_volume = f32_volume.mapv(|x| (x * 500.0) as u16);
    let mut group = c.benchmark_group("in_memory_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((f32_volume.len() * 4) as u64));
    let label = common::label(&shape);
    for (name, op) in common::ops() {
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
