//! proptest strategies shared by the chunk-invariance properties (CPU and GPU).

use haloflow::ops::{Edge, Interp};
use haloflow::{
    ArrayAny, Boundary, DownMethod, Footprint, InterpMode, Kernel, Op, ProjectMethod, UpMethod,
};
use proptest::prelude::*;

/// Any boundary mode.
pub fn mode() -> impl Strategy<Value = Boundary> + Clone {
    prop::sample::select(Boundary::ALL.to_vec())
}

/// One value for all axes, or one per axis.
pub fn per_axis<S: Strategy + Clone>(s: S, ndim: usize) -> impl Strategy<Value = Vec<S::Value>> {
    prop_oneof![
        prop::collection::vec(s.clone(), 1),
        prop::collection::vec(s, ndim)
    ]
}

/// Any operation, with any parameters, on an `ndim`-D array.
pub fn op(ndim: usize) -> impl Strategy<Value = Op> {
    let per_axis_sigma = per_axis(prop_oneof![Just(0.0), 0.3f64..2.5], ndim);
    let factors = |max: usize| per_axis(1usize..=max, ndim);
    let kernel = (1..=ndim.min(3))
        .prop_flat_map(|kd| prop::collection::vec(1usize..=5, kd))
        .prop_flat_map(|shape| {
            let n = shape.iter().product::<usize>();
            (Just(shape), prop::collection::vec(-2.0f64..2.0, n))
        })
        .prop_map(|(shape, data)| Kernel::new(shape, data));
    prop_oneof![
        (-20.0f64..120.0).prop_map(Op::threshold),
        (-20.0f64..60.0, 0.0f64..80.0).prop_map(|(lo, w)| Op::clip(lo, lo + w)),
        (
            per_axis_sigma,
            mode(),
            -5.0f64..5.0,
            1.0f64..4.5,
            // Modes per axis, and derivatives, now and then.
            prop_oneof![3 => Just(Vec::new()), 1 => per_axis(mode(), ndim)],
            prop_oneof![3 => Just(Vec::new()), 1 => per_axis(0u32..=2, ndim)],
        )
            .prop_map(|(sigma, mode, cval, truncate, modes, order)| Op::Gaussian {
                sigma,
                edge: Edge { mode, cval },
                truncate,
                modes,
                order,
            }),
        (kernel, mode(), -5.0f64..5.0).prop_map(|(k, m, c)| Op::convolve(k).with_mode(m, c)),
        (factors(4), mode(), -5.0f64..5.0).prop_map(|(s, m, c)| Op::uniform(&s).with_mode(m, c)),
        // Projections keep the axis here: chains go on after them.
        (
            0..ndim,
            prop::sample::select(vec![
                ProjectMethod::Max,
                ProjectMethod::Min,
                ProjectMethod::Mean,
                ProjectMethod::Sum,
            ])
        )
            .prop_map(|(axis, method)| Op::Project {
                axis,
                method,
                keepdims: true
            }),
        (
            per_axis(prop_oneof![Just(0.0), 0.3f64..2.0], ndim),
            mode(),
            -5.0f64..5.0,
            any::<bool>()
        )
            .prop_map(|(sigma, mode, cval, magnitude)| if magnitude {
                Op::GaussianGradientMagnitude {
                    sigma,
                    edge: Edge { mode, cval },
                    truncate: 4.0,
                    modes: Vec::new(),
                }
            } else {
                Op::GaussianLaplace {
                    sigma,
                    edge: Edge { mode, cval },
                    truncate: 4.0,
                    modes: Vec::new(),
                }
            }),
        // Rank filters: boxes of up to 2 per axis and footprints of up to 3×3 keep
        // the networks small (each is compiled into a pipeline of its own on a GPU).
        (factors(2), mode(), -5.0f64..5.0, 0..4, -100.0f64..=100.0)
            .prop_map(|(s, m, c, kind, p)| rank_op(kind, p, &s).with_mode(m, c)),
        (
            footprint(ndim),
            mode(),
            -5.0f64..5.0,
            0..4,
            -100.0f64..=100.0
        )
            .prop_map(|(f, m, c, kind, p)| rank_op(kind, p, &[1])
                .with_footprint(f)
                .with_mode(m, c)),
        (
            factors(4),
            prop::sample::select(vec![
                DownMethod::Mean,
                DownMethod::Max,
                DownMethod::Min,
                DownMethod::Stride,
                DownMethod::Mode,
            ])
        )
            .prop_map(|(f, m)| Op::downsample(&f, m)),
        (
            factors(3),
            prop::sample::select(vec![UpMethod::Nearest, UpMethod::Linear])
        )
            .prop_map(|(f, m)| Op::upsample(&f, m)),
        // Geometric transforms with the exact interpolations (orders 0 and 1: higher
        // orders' prefilter is overlapped, equal within 1e-12 rather than bit for bit).
        (
            prop::collection::vec(-0.6f64..0.6, ndim * ndim),
            prop::collection::vec(-3.0f64..3.0, ndim),
            interp(),
        )
            .prop_map(move |(noise, offset, interp)| Op::Affine {
                matrix: (0..ndim)
                    .map(|h| {
                        (0..ndim)
                            .map(|l| noise[h * ndim + l] + f64::from(h == l))
                            .collect()
                    })
                    .collect(),
                offset,
                output_shape: Vec::new(),
                interp,
            }),
        (per_axis(0.7f64..2.2, ndim), any::<bool>(), interp()).prop_map(
            |(zoom, grid_mode, interp)| Op::Zoom {
                zoom,
                grid_mode,
                interp
            }
        ),
        // (A 1-D array has no plane to rotate: a zoom by 1 instead.)
        (-180.0f64..180.0, any::<bool>(), interp()).prop_map(move |(angle, reshape, interp)| {
            if ndim < 2 {
                return Op::Zoom {
                    zoom: vec![1.0],
                    grid_mode: false,
                    interp,
                };
            }
            Op::Rotate {
                angle,
                axes: [0, ndim as i64 - 1],
                reshape,
                interp,
            }
        }),
    ]
}

/// Orders 0 and 1 of interpolation, any mode and constant.
fn interp() -> impl Strategy<Value = Interp> {
    (
        0usize..=1,
        prop::sample::select(InterpMode::ALL.to_vec()),
        -5.0f64..5.0,
    )
        .prop_map(|(order, mode, cval)| Interp {
            order,
            mode,
            cval,
            prefilter: true,
        })
}

/// A rank filter over a box: median, percentile `p`, minimum or maximum (`kind` 0 to 3).
fn rank_op(kind: i32, p: f64, size: &[usize]) -> Op {
    match kind {
        0 => Op::median(size),
        1 => Op::percentile(p, size),
        2 => Op::minimum(size),
        _ => Op::maximum(size),
    }
}

/// A footprint of up to 3 on each of up to 2 trailing axes, holding at least its
/// first element.
fn footprint(ndim: usize) -> impl Strategy<Value = Footprint> {
    (1..=ndim.min(2))
        .prop_flat_map(|fd| prop::collection::vec(1usize..=3, fd))
        .prop_flat_map(|shape| {
            let n = shape.iter().product::<usize>();
            (Just(shape), prop::collection::vec(any::<bool>(), n))
        })
        .prop_map(|(shape, mut mask)| {
            mask[0] = true;
            Footprint { shape, mask }
        })
}

/// Bit patterns of every element, so that -0.0 and 0.0 differ.
pub fn bits(a: &ArrayAny) -> Vec<u64> {
    match a {
        ArrayAny::F32(a) => a.iter().map(|x| x.to_bits() as u64).collect(),
        other => super::as_f64(other).into_iter().map(f64::to_bits).collect(),
    }
}
