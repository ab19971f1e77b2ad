//! The volume and the operations every benchmark (and `examples/speedup.rs`) times.

#![allow(dead_code)]

use haloflow::{DownMethod, Kernel, Op, UpMethod};
use ndarray::{ArrayD, Dimension, IxDyn};

/// The volume shape: `var` (`"z,y,x"`) from the environment, else `default`.
pub fn shape(var: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(var).ok().map_or_else(
        || default.to_vec(),
        |s| {
            s.split(',')
                .map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{var}: a,b,c")))
                .collect()
        },
    )
}

/// `64x256x256`.
pub fn label(shape: &[usize]) -> String {
    shape
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// A float32 volume of hashed values in [50, 140).
pub fn volume(shape: &[usize]) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(shape), |i| {
        let h = i.slice().iter().fold(0usize, |h, &x| {
            h.wrapping_mul(73_856_093) ^ (x * 19_349_663)
        });
        50.0 + (h % 9_001) as f32 / 100.0
    })
}

/// A float32 volume uniform in [50, 140) (splitmix64): like the side-by-side
/// comparison's volume, barely compressible.
pub fn noise(shape: &[usize]) -> ArrayD<f32> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        50.0 + 90.0 * (z >> 40) as f32 / (1u64 << 24) as f32
    })
}

/// One operation of each kind, named.
pub fn ops() -> Vec<(&'static str, Op)> {
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
