//! Each op on the CPU and on the GPU (in-memory path, transfers included).
//!
//! `cargo bench --bench gpu`; `HALOFLOW_BENCH_SHAPE=64,256,256` for another volume.
//! Without a GPU adapter only the CPU side runs (with a notice).

use std::sync::Arc;

mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use haloflow::{Backend, GpuContext, Op, Pipeline};

fn backends() -> Vec<(&'static str, Backend)> {
    let mut all = vec![("cpu", Backend::Cpu)];
    match GpuContext::new(None) {
        Ok(ctx) => {
            eprintln!("GPU: {}", ctx.adapter());
            all.push(("gpu", Backend::Gpu(Arc::new(ctx))));
        }
        Err(e) => eprintln!("NOTICE: GPU side skipped: {e}"),
    }
    all
}

fn gpu_vs_cpu(c: &mut Criterion) {
    let shape = common::shape("HALOFLOW_BENCH_SHAPE", &[32, 128, 128]);
    let f32_volume = common::volume(&shape);
    let u16_volume = f32_volume.mapv(|x| (x * 500.0) as u16);
    let label = common::label(&shape);
    let backends = backends();
    let mut group = c.benchmark_group("gpu_vs_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((f32_volume.len() * 4) as u64));
    for (name, op) in common::ops() {
        let pipeline = Pipeline::from(op);
        for (backend_name, backend) in &backends {
            group.bench_with_input(
                BenchmarkId::new(format!("{name}/{backend_name}"), format!("f32_{label}")),
                &pipeline,
                |b, p| b.iter(|| p.apply_on(f32_volume.view(), None, backend).expect("runs")),
            );
        }
    }
    let gaussian = Pipeline::from(Op::gaussian(&[2.0]));
    for (backend_name, backend) in &backends {
        group.bench_with_input(
            BenchmarkId::new(
                format!("gaussian_s2/{backend_name}"),
                format!("u16_{label}"),
            ),
            &gaussian,
            |b, p| b.iter(|| p.apply_on(u16_volume.view(), None, backend).expect("runs")),
        );
    }
    group.finish();
}

criterion_group!(benches, gpu_vs_cpu);
criterion_main!(benches);
