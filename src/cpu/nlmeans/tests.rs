//! Fast mode's paths against each other, and scikit-image's `_fast_exp`.

use super::*;

/// Non-local means of patch `patch` and window `distance` on an output box `out`
/// (its trailing `axes` axes), and a padded box of values: smooth structure plus
/// noise, or (`binary`) zeros and ones with σ 0 and `h` such that every patch pair
/// differing in 10 voxels lies exactly at the cut-off (to be decided in f64).
fn case(
    patch: usize,
    distance: usize,
    out: [usize; 3],
    axes: usize,
    binary: bool,
) -> (Geometry, Vec<f32>) {
    let size = patch.pow(axes as u32) as f64;
    let (h, sigma) = if binary {
        ((10.0 / (CUTOFF * size)).sqrt(), 0.0)
    } else {
        (0.3, 0.05)
    };
    let nl = NlMeans {
        patch,
        distance,
        h,
        sigma,
        fast: true,
        axes,
    };
    let bounds: Vec<_> = out.iter().map(|&n| 0..n).collect();
    let g = Geometry::new(&nl, &bounds, &out[3 - axes..]);
    let n: usize = g.padded_dims().iter().product();
    let mut state = 0x9e37_79b9_u32;
    let padded = (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = state as f32 / u32::MAX as f32;
            if binary {
                f32::from(u8::from(noise < 0.15))
            } else {
                (i as f32 * 0.013).sin() + noise * 0.3
            }
        })
        .collect();
    (g, padded)
}

#[cfg(target_arch = "x86_64")]
#[test]
fn fused_avx512_tiles_equal_the_generic_path() {
    if !std::arch::is_x86_feature_detected!("avx512f") {
        eprintln!("no AVX-512F here: the fused kernel is not compiled in");
        return;
    }
    // Every patch the fused kernel takes, 2-D and 3-D, rows shorter than, equal to
    // and longer than a strip and not a multiple of it, tiles away from the origin.
    for (patch, distance, out, axes) in [
        (3, 2, [5, 9, 37], 3),
        (5, 3, [6, 7, 16], 3),
        (5, 6, [1, 20, 29], 2),
        (7, 2, [4, 5, 21], 3),
        (9, 3, [3, 11, 40], 3),
        (9, 4, [1, 13, 17], 2),
    ] {
        for binary in [false, true] {
            let (g, padded) = case(patch, distance, out, axes, binary);
            let o = g.out;
            let part = ([0, o[1] / 2, 3], [o[0], o[1] - o[1] / 2, o[2] - 3]);
            for (start, len) in [([0, 0, 0], o), part] {
                let fused = avx512::fast_tile(&g, &padded, start, len).expect("a fused patch");
                let generic = fast_tile_lanes(&g, &padded, start, len);
                assert_eq!(fused.len(), generic.len());
                for (i, (a, b)) in fused.iter().zip(&generic).enumerate() {
                    assert!(
                        a.to_bits() == b.to_bits(),
                        "patch {patch} {out:?} at {i}: {a} != {b}"
                    );
                }
            }
        }
    }
    // Patches of 11 and more take the generic path.
    let (g, padded) = case(11, 2, [2, 6, 20], 3, false);
    assert!(avx512::fast_tile(&g, &padded, [0; 3], g.out).is_none());
}

#[test]
fn fast_exp_is_scikit_images() {
    // Values of skimage's _fast_exp (fast_exp.h), not exp.
    assert_eq!(fast_exp(0.0), 0.971_007_823_944_091_8);
    // The f32 weights are the doubles', but for the scaled value's rounding (a
    // step of 2^-20 at most).
    for d in [0.0f32, 1e-6, 0.3, 2.5, 4.999, 5.0] {
        let want = fast_exp(-f64::from(d));
        assert!((f64::from(weight_of(d)) - want).abs() <= 2e-6 * want, "{d}");
    }
    assert_eq!(weight_of(0.0), fast_exp(0.0) as f32);
    assert!((fast_exp(-5.0) - 0.006_752_1).abs() < 1e-7);
    assert!((fast_exp(-1.0) - (-1f64).exp()).abs() < 0.03);
}
