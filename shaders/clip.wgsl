// `np.clip(x, min, max)`, element type kept. Twin of cpu/pointwise.rs `clip`: the
// bounds arrive already cast to the element type, and NaN passes through.

struct ClipParams {
    count: u32,
    // The bounds, as the bits of an `In`.
    lo: u32,
    hi: u32,
    pad: u32,
}

@group(0) @binding(0) var<storage, read> P: ClipParams;

fn compute(e: u32) -> Out {
    let x = load(e);
    let lo = bitcast<In>(P.lo);
    let hi = bitcast<In>(P.hi);
    // Tested on the bits: a device compiler may assume no NaNs and turn the selects
    // below into min and max, which drop them (NVIDIA's does).
    if (in_is_nan(x)) {
        return x;
    }
    return select(select(x, hi, x > hi), lo, x < lo);
}
