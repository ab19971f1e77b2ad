//! A multiscale pyramid of an OME-Zarr image: levels 0, 1, 2 (factor 2 in y and x,
//! the Gaussian method of scikit-image's `pyramid_gaussian`), written in one pass over
//! level 0, with each level's scale and translation in the image's metadata.
//!
//! `cargo run --release --example zarr_pyramid [-- IMAGE.ome.zarr]`

mod common;

use haloflow::zarr::{Options, Pyramid, PyramidMethod};

fn main() -> Result<(), haloflow::Error> {
    let image = common::image_from_args()?;
    let output = image.with_file_name("pyramid.ome.zarr");
    let pyramid = Pyramid {
        levels: Some(3),
        factor: Some(vec![1, 2, 2]),
        method: PyramidMethod::Gaussian,
        options: Options {
            overwrite: true,
            ..Options::default()
        },
        ..Pyramid::new(&image, &output)
    };
    let done = pyramid.run(None)?;
    println!(
        "{}: {} levels ({}), {} jobs in {:.2} s",
        output.display(),
        done.levels,
        if done.one_pass {
            "one pass over level 0"
        } else {
            "level by level"
        },
        done.report.jobs_done,
        done.report.seconds
    );
    for level in 0..done.levels {
        let (array, ome) = haloflow::zarr::open_level(&output, level)?;
        let scale = &ome.expect("an OME-Zarr image").0.levels[level].scale;
        let input = haloflow::Input::open(&array)?;
        println!(
            "  level {level}: shape {:?}, scale {scale:?}",
            input.shape()
        );
    }
    Ok(())
}
