//! Connected-component labelling in memory, timed on random masks (the hardest case
//! for run-based labelling: runs of one or two voxels) and on blobs.
//!
//! `cargo run --release --example label_time [-- Z,Y,X]` (default 256,512,512). Prints,
//! per mask and connectivity, the objects found and the best of five runs on one
//! thread and on every core.

use std::time::Instant;

use haloflow::{DType, Foreground, Structure, label_array};
use ndarray::{ArrayD, IxDyn};

/// Best wall time of five runs of `f` (after a warm-up run).
fn best(mut f: impl FnMut()) -> f64 {
    f();
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// A mask with each voxel set with probability `p` (xorshift, seeded).
fn random(shape: &[usize], p: f64, seed: u64) -> ArrayD<u8> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let cut = (p * u32::MAX as f64) as u64;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        u8::from((s >> 32) < cut)
    })
}

/// Blobs: a random mask smoothed by a 5-voxel box along each axis, thresholded.
fn blobs(shape: &[usize]) -> ArrayD<u8> {
    let noise = random(shape, 0.5, 7).mapv(f32::from);
    let smooth = haloflow::Pipeline::from(haloflow::Op::uniform(&[5]))
        .apply(haloflow::ArrayViewAny::from(noise.view()))
        .expect("a box filter")
        .into_array::<f32>()
        .expect("float32");
    smooth.mapv(|v| u8::from(v > 0.53))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shape: Vec<usize> = match std::env::args().nth(1) {
        Some(s) => s.split(',').map(str::parse).collect::<Result<_, _>>()?,
        None => vec![256, 512, 512],
    };
    let cores = rayon::current_num_threads();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    println!("shape {shape:?}, {cores} cores");
    println!("| mask | connectivity | objects | 1 thread (s) | {cores} threads (s) |");
    println!("|---|---|---|---|---|");
    let mut masks: Vec<(String, ArrayD<u8>)> = [0.1, 0.3, 0.6]
        .iter()
        .map(|&p| (format!("random {}%", p * 100.0), random(&shape, p, 1)))
        .collect();
    masks.push(("blobs".into(), blobs(&shape)));
    for (name, mask) in &masks {
        for k in [1, shape.len()] {
            let s = Structure::connectivity(shape.len(), k)?;
            let run = || label_array(mask.view().into(), &s, Foreground::NonZero, DType::I32);
            let count = run()?.1;
            let single = best(|| {
                one.install(|| run().expect("labels"));
            });
            let all = best(|| {
                run().expect("labels");
            });
            println!("| {name} | {k} | {count} | {single:.3} | {all:.3} |");
        }
    }
    Ok(())
}
