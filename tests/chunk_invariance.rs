//! Property: for random shapes, chunkings (including 1 and non-divisors), dtypes and
//! chains of ops, the chunked result is bitwise equal to the one-block result.

mod common;

use common::props::{bits, op};
use haloflow::{ArrayAny, DType, Op, Pipeline};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

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
