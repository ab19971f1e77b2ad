// One term of a sum of separable filters added into the accumulator (the output
// buffer, read and written in place): `acc = acc + v` (or `v * v`), the first term
// added to 0, and the root taken after the last term if asked. Twin of the
// accumulation in cpu/derivatives.rs, operation for operation in f32.

struct AccumulateParams {
    count: u32,
    // 1: the first term (the accumulator starts at 0, not read).
    first: u32,
    // 1: add the term's square (the gradient magnitude).
    square: u32,
    // 1: the last term of a magnitude: take the square root after adding.
    root: u32,
}

@group(0) @binding(0) var<storage, read> P: AccumulateParams;

fn compute(e: u32) -> Out {
    let v = in_f32(load(e));
    var acc = 0.0;
    if (P.first == 0u) {
        acc = bitcast<f32>(dst[e]);
    }
    if (P.square == 1u) {
        acc = acc + v * v;
    } else {
        acc = acc + v;
    }
    if (P.root == 1u) {
        acc = sqrt(acc);
    }
    return acc;
}
