// Conversion to another element type: round half to even, saturate, NaN to 0.
// Twin of cpu/pointwise.rs `cast`; `cast_value` comes from the generated prelude.

struct CastParams {
    count: u32,
    pad: array<u32, 3>,
}

@group(0) @binding(0) var<storage, read> P: CastParams;

fn compute(e: u32) -> Out {
    return cast_value(load(e));
}
