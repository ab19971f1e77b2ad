//! A chain with a physical sigma, OME-Zarr in and out, on the GPU if there is one:
//! a Gaussian of 0.8 µm in y and x and 2 µm in z (the image's spacing turns lengths
//! into pixels: 1, 2 and 2 here), then a threshold, written as an OME-Zarr image that
//! keeps the axes, units and scale and records the chain.
//!
//! `cargo run --release --example zarr_chain [-- IMAGE.ome.zarr]` (default: a demo
//! image written under `target/`).

mod common;

use haloflow::zarr::{Chain, GaussianKind, Options, Run, Sigma, Step};
use haloflow::{Device, Op};

fn main() -> Result<(), haloflow::Error> {
    let image = common::image_from_args()?;
    let output = image.with_file_name("mask.ome.zarr");
    let sigma: Vec<Sigma> = ["2um", "0.8um", "0.8um"]
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let chain = Chain::new(vec![
        Step::gaussian(GaussianKind::Smooth, &sigma),
        Op::threshold(1500.0).into(),
    ]);
    // Device::Auto would weigh the chain and may keep a light one on the CPU; this
    // example asks for a GPU wherever an adapter exists (Mesa's software one counts).
    let device = if haloflow::gpu::adapters().is_empty() {
        Device::Cpu
    } else {
        Device::Gpu
    };
    let run = Run::new(&image, &output, chain).with_options(Options {
        device,
        overwrite: true,
        ..Options::default()
    });
    let report = run.run(None)?;
    println!(
        "{} -> {}: {} jobs in {:.2} s on {}",
        image.display(),
        output.display(),
        report.jobs_done,
        report.seconds,
        report.device
    );
    Ok(())
}
