// `x > above` as uint8 0/1. Twin of cpu/pointwise.rs (`map` with the comparison).
//
// The CPU compares in f64; the host turns `above` into a threshold of the input's own
// type with the same answer for every input value (integers: floor(above); float32:
// above rounded toward -inf), or into a constant answer when `above` lies beyond the
// type's range.

struct ThresholdParams {
    count: u32,
    // 0: compare with `above`; 1: always 1; 2: always 0.
    always: u32,
    // The threshold, as the bits of an `In`.
    above: u32,
    pad: u32,
}

@group(0) @binding(0) var<storage, read> P: ThresholdParams;

fn compute(e: u32) -> Out {
    if (P.always == 1u) {
        return 1u;
    }
    if (P.always == 2u) {
        return 0u;
    }
    return select(0u, 1u, load(e) > bitcast<In>(P.above));
}
