//! The image the `zarr_*` examples open when not given one: a synthetic light-sheet-like
//! volume (bright blobs on noise, uint16 as a camera writes), saved as an OME-Zarr image
//! with anisotropic voxels (2 µm in z, 0.4 µm in y and x).

use std::path::PathBuf;

use haloflow::zarr::{OmeAxes, write_array};
use ndarray::{ArrayD, IxDyn};

/// The image named on the command line, or the demo image written under `target/`.
pub fn image_from_args() -> Result<PathBuf, haloflow::Error> {
    if let Some(path) = std::env::args().nth(1) {
        return Ok(PathBuf::from(path));
    }
    let path = PathBuf::from("target/haloflow-examples/demo.ome.zarr");
    let volume = ArrayD::from_shape_fn(IxDyn(&[32, 128, 128]), |i| {
        let (z, y, x) = (i[0] as f32, i[1] as f32, i[2] as f32);
        let blob = ((z * 0.3).sin() * (y * 0.13).cos() * (x * 0.17).sin()).max(0.0);
        let noise = ((i[0] * 7919 + i[1] * 104_729 + i[2] * 1_299_709) % 397) as f32;
        (400.0 + 3000.0 * blob + noise) as u16
    });
    let axes = OmeAxes {
        axes: Some(vec!["z".into(), "y".into(), "x".into()]),
        scale: Some(vec![2.0, 0.4, 0.4]),
        units: Some(vec!["micrometer".into(); 3]),
    };
    write_array(&path, &volume.view().into(), &[16, 64, 64], Some(&axes))?;
    println!("wrote the demo image {}", path.display());
    Ok(path)
}
