// The generalized Anscombe transform (METHOD 0) and Mäkitalo and Foi's closed-form
// unbiased inverse (METHOD 1), in float32. Twins of cpu/pointwise.rs `anscombe` and
// `inverse_anscombe`, operation for operation; the constants come from the host
// (stage/mod.rs `Variance`). NaN passes through (the comparisons are false for it).

struct AnscombeParams {
    count: u32,
    // Forward: gain, 3/8 gain^2 + read_noise^2 - gain offset, 2 / gain.
    // Inverse: gain, offset, 1/8 + (read_noise / gain)^2.
    a: f32,
    b: f32,
    c: f32,
}

@group(0) @binding(0) var<storage, read> P: AnscombeParams;

fn compute(e: u32) -> Out {
    let x = in_f32(load(e));
    if (METHOD == 0u) {
        let v = P.a * x + P.b;
        return P.c * sqrt(select(v, 0.0, v < 0.0));
    }
    // sqrt(3/2)
    let root = 1.2247449;
    let d = select(x, 1.0, x < 1.0);
    let r = 1.0 / d;
    let i = 0.25 * d * d + 0.25 * root * r - 1.375 * r * r + 0.625 * root * r * r * r - P.c;
    return P.a * select(i, 0.0, i < 0.0) + P.b;
}
