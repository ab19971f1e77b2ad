//! Property: for random shapes, chunkings (including 1 and non-divisors), dtypes and
//! chains of ops, the chunked result is bitwise equal to the one-block result.

mod common;

use haloflow::{ArrayAny, DType, DownMethod, Kernel, Mode, Op, Pipeline, UpMethod};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

fn mode() -> impl Strategy<Value = Mode> {
    prop::sample::select(Mode::ALL.to_vec())
}

/// One value for all axes, or one per axis.
fn per_axis<S: Strategy + Clone>(s: S, ndim: usize) -> impl Strategy<Value = Vec<S::Value>> {
    prop_oneof![
        prop::collection::vec(s.clone(), 1),
        prop::collection::vec(s, ndim)
    ]
}

fn op(ndim: usize) -> impl Strategy<Value = Op> {
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
        (per_axis_sigma, mode(), -5.0f64..5.0, 1.0f64..4.5).prop_map(
            |(sigma, mode, cval, truncate)| {
                Op::Gaussian {
                    sigma,
                    mode,
                    cval,
                    truncate,
                }
            }
        ),
        (kernel, mode(), -5.0f64..5.0).prop_map(|(k, m, c)| Op::convolve(k).with_mode(m, c)),
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
    ]
}

/// A random case: shape, dtype, data seed, a chain of 1–3 ops.
fn case() -> impl Strategy<Value = (Vec<usize>, DType, u64, Vec<Op>)> {
    (1usize..=5).prop_flat_map(|ndim| {
        let longest = if ndim >= 4 { 6 } else { 13 };
        (
            prop::collection::vec(1usize..=longest, ndim),
            prop::sample::select(vec![
                DType::F32,
                DType::U16,
                DType::I16,
                DType::U8,
                DType::F64,
            ]),
            any::<u64>(),
            prop::collection::vec(op(ndim), 1..=3),
        )
    })
}

/// Deterministic pseudo-random data in 0..100 (integers) for any dtype.
fn data(shape: &[usize], dtype: DType, seed: u64) -> ArrayAny {
    let mut state = seed | 1;
    let values = ArrayD::from_shape_fn(IxDyn(shape), |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 100) as f64
    });
    match dtype {
        DType::F32 => values.mapv(|v| v as f32 * 1.01).into(),
        DType::F64 => values.mapv(|v| v * 1.01).into(),
        DType::U16 => values.mapv(|v| v as u16).into(),
        DType::I16 => values.mapv(|v| v as i16 - 50).into(),
        _ => values.mapv(|v| v as u8).into(),
    }
}

/// Bit patterns of every element, so that -0.0 and 0.0 differ.
fn bits(a: &ArrayAny) -> Vec<u64> {
    match a {
        ArrayAny::F32(a) => a.iter().map(|x| x.to_bits() as u64).collect(),
        other => common::as_f64(other)
            .into_iter()
            .map(f64::to_bits)
            .collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn chunked_equals_one_block(
        (shape, dtype, seed, ops) in case(),
        block_seed in prop::collection::vec(1usize..=12, 5),
    ) {
        let input = data(&shape, dtype, seed);
        let pipeline = Pipeline::new(ops);
        let (out_shape, _) = pipeline.output(&shape, dtype).unwrap();
        let block: Vec<usize> = out_shape.iter().zip(&block_seed).map(|(&n, &b)| b.min(n)).collect();
        let whole = pipeline.apply_blocks(input.view(), &out_shape).unwrap();
        let chunked = pipeline.apply_blocks(input.view(), &block).unwrap();
        prop_assert_eq!(whole.dtype(), chunked.dtype());
        prop_assert_eq!(whole.shape(), chunked.shape());
        prop_assert!(bits(&whole) == bits(&chunked), "blocks {:?} change the result", block);
    }
}
