// Conversion to another element type: round half to even, saturate, NaN to 0.
// Twin of cpu/pointwise.rs `cast`; `cast_value` comes from the generated prelude.

struct Params {
    count: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<storage, read> P: Params;

fn compute(e: u32) -> Out {
    return cast_value(load(e));
}
