//! The built-in sample: a synthetic light-sheet-like volume, smoothed, thresholded and
//! downsampled in one chunked pass, checked against the same pass in one block.
//!
//! `cargo run --release --example sample [-- Z Y X]`

use std::time::Instant;

use haloflow::{DownMethod, Mode, Op, Pipeline};
use ndarray::{ArrayD, IxDyn};

fn main() -> Result<(), haloflow::Error> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("sizes are integers"))
        .collect();
    let shape = if args.len() == 3 {
        args
    } else {
        vec![96, 256, 256]
    };

    // Bright blobs on a noisy background, as uint16 like a camera writes.
    let volume = ArrayD::from_shape_fn(IxDyn(&shape), |i| {
        let (z, y, x) = (i[0] as f32, i[1] as f32, i[2] as f32);
        let blob = ((z * 0.21).sin() * (y * 0.13).cos() * (x * 0.17).sin()).max(0.0);
        let noise = ((i[0] * 7919 + i[1] * 104_729 + i[2] * 1_299_709) % 997) as f32;
        (1000.0 + 3000.0 * blob + noise) as u16
    });
    let pipeline = Pipeline::new(vec![
        Op::gaussian(&[1.0, 2.0, 2.0]).with_mode(Mode::Reflect, 0.0),
        Op::threshold(2000.0),
        Op::downsample(&[2], DownMethod::Max),
    ]);
    let (out_shape, out_dtype) = pipeline.output(&shape, haloflow::DType::U16)?;
    println!(
        "input  {shape:?} uint16 ({} MB)",
        volume.len() * 2 / 1_000_000
    );
    println!("chain  gaussian(sigma 1,2,2) -> threshold(2000) -> downsample(max, 2)");
    println!("output {out_shape:?} {out_dtype}");

    let t = Instant::now();
    let mask = pipeline.apply(volume.view())?.into_array::<u8>()?;
    let chunked_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let one_block = pipeline
        .apply_blocks(volume.view(), &out_shape)?
        .into_array::<u8>()?;
    let whole_s = t.elapsed().as_secs_f64();

    let foreground = mask.iter().filter(|&&v| v == 1).count();
    println!(
        "foreground {:.1}% of {} voxels",
        100.0 * foreground as f64 / mask.len() as f64,
        mask.len()
    );
    println!(
        "chunked run   {chunked_s:.3} s ({} threads)",
        rayon::current_num_threads()
    );
    println!("one block     {whole_s:.3} s");
    assert_eq!(mask, one_block, "chunked and one-block results differ");
    println!("chunked result == one-block result: ok");
    Ok(())
}
