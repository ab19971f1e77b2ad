//! Each op on the CPU and on the GPU (in-memory path, transfers included).
//!
//! `cargo bench --bench gpu`; `HALOFLOW_BENCH_SHAPE=64,256,256` for another volume.
//! Without a GPU adapter only the CPU side runs (with a notice).

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use haloflow::{Backend, DownMethod, GpuContext, Kernel, Op, Pipeline, UpMethod};
use ndarray::{ArrayD, IxDyn};

fn shape() -> Vec<usize> {
    std::env::var("HALOFLOW_BENCH_SHAPE")
        .ok()
        .map(|s| {
            s.split(',')
                .map(|v| v.trim().parse().expect("shape"))
                .collect()
        })
        .unwrap_or_else(|| vec![32, 128, 128])
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
    let shape = shape();
    let f32_volume = volume(&shape);
    let u16_volume = f32_volume.mapv(|x| (x * 500.0) as u16);
    let label = shape
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("x");
    let backends = backends();
    let mut group = c.benchmark_group("gpu_vs_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((f32_volume.len() * 4) as u64));
    for (name, op) in ops() {
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
