// `(x - low) / (high - low + 1e-20)` in float32, clipped to [0, 1] if asked (CSBDeep's
// percentile normalisation). Twin of cpu/pointwise.rs `normalize`, operation for
// operation in f32. The denominator comes from the host: a shader compiler may
// reassociate `high - low + 1e-20` into `(high + 1e-20) - low`, which is 0 for
// `high == low` (lavapipe does).

struct NormalizeParams {
    count: u32,
    low: f32,
    // high - low + 1e-20, in f32.
    denominator: f32,
    // 1: clip to [0, 1].
    clip: u32,
}

@group(0) @binding(0) var<storage, read> P: NormalizeParams;

fn compute(e: u32) -> Out {
    let x = in_f32(load(e));
    let v = (x - P.low) / P.denominator;
    if (P.clip == 0u) {
        return v;
    }
    // np.clip: NaN passes through (tested on the bits: a device compiler may assume no
    // NaNs and turn the selects into min and max, which drop them).
    if (f32_is_nan(v)) {
        return v;
    }
    return select(select(v, 1.0, v > 1.0), 0.0, v < 0.0);
}
