//! The built-in sample, end to end: a synthetic light-sheet-like volume is written as a
//! Zarr v3 array, then smoothed, thresholded and downsampled zarr -> zarr in one
//! streamed pass (the same executor as the `haloflow` command), and the result is read
//! back and checked against the in-memory pipeline on the whole array.
//!
//! `cargo run --release --example sample [-- OUT_DIR]` (default `target/haloflow-sample`)

use std::borrow::Cow;
use std::path::PathBuf;

use haloflow::block::Block;
use haloflow::exec::{self, RunOptions};
use haloflow::store::{Input, Output, OutputSpec};
use haloflow::{Boundary, DType, DownMethod, Op, Pipeline, Plan, Region};
use ndarray::{ArrayD, IxDyn};

fn main() -> Result<(), haloflow::Error> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/haloflow-sample"), PathBuf::from);
    let shape = [96, 256, 256];

    // Bright blobs on a noisy background, as uint16 like a camera writes.
    let volume = ArrayD::from_shape_fn(IxDyn(&shape), |i| {
        let (z, y, x) = (i[0] as f32, i[1] as f32, i[2] as f32);
        let blob = ((z * 0.21).sin() * (y * 0.13).cos() * (x * 0.17).sin()).max(0.0);
        let noise = ((i[0] * 7919 + i[1] * 104_729 + i[2] * 1_299_709) % 997) as f32;
        (1000.0 + 3000.0 * blob + noise) as u16
    });
    let input_path = dir.join("volume.zarr");
    let spec = OutputSpec::new(&shape, DType::U16, &[32, 64, 64]);
    let sets = Region::whole(&shape).sets();
    let data = volume.as_slice().expect("standard layout");
    let writer = Output::create(&input_path, &spec, true)?;
    writer.write(
        &Region::whole(&shape),
        &Block::new(sets, Cow::Borrowed(data)).into_any(),
    )?;
    writer.flush()?;
    println!(
        "wrote {} ({shape:?} uint16, chunks 32x64x64, zstd)",
        input_path.display()
    );

    let pipeline = Pipeline::new(vec![
        Op::gaussian(&[1.0, 2.0, 2.0]).with_mode(Boundary::Reflect, 0.0),
        Op::threshold(2000.0),
        Op::downsample(&[2], DownMethod::Max),
    ]);
    let input = Input::open(&input_path)?;
    let (out_shape, out_dtype) = pipeline.output(input.shape(), input.dtype())?;
    let chunk = [16, 32, 32];
    let plan = Plan::new(&pipeline, input.shape(), input.dtype(), &chunk, &chunk)?;
    let output_path = dir.join("mask.zarr");
    let output = Output::create(
        &output_path,
        &OutputSpec::new(&out_shape, out_dtype, &chunk),
        true,
    )?;
    println!("gaussian(sigma 1,2,2) -> threshold(2000) -> downsample(max, 2), streamed:");
    let report = exec::run(&plan, &input, &output, &RunOptions::default(), None)?;
    let s = &report.stages;
    println!(
        "  {} jobs in {:.2} s on {}; read+decode {:.2} s, compute {:.2} s, encode+write {:.2} s (summed over workers)",
        report.jobs_done, report.seconds, report.device, s.read, s.compute, s.write
    );

    let written = Input::open(&output_path)?.read_region(&Region::whole(&out_shape))?;
    let streamed = written.typed::<u8>().data.to_vec();
    let in_memory = pipeline.apply(volume.view())?.into_array::<u8>()?;
    let foreground = streamed.iter().filter(|&&v| v == 1).count();
    println!(
        "wrote {} ({out_shape:?} {out_dtype}); foreground {:.1}%",
        output_path.display(),
        100.0 * foreground as f64 / streamed.len() as f64
    );
    assert_eq!(
        streamed,
        in_memory.as_slice().expect("standard layout"),
        "streamed and in-memory results differ"
    );
    println!("streamed result == in-memory result on the whole array: ok");
    println!(
        "next: cargo run --release -- gaussian {} smoothed.zarr --sigma 2",
        input_path.display()
    );
    Ok(())
}
