// N-D correlation with scipy boundary modes: the Gaussian's 1-D passes and `convolve`.
// Twin of cpu/stencil.rs, summing the same products in the same order: leading-axis
// taps in C order, then the last-axis taps, multiply then add.
//
// The boundary mode is folded into per-axis tap tables by the host. Leading axis `a`:
// `tab[base[a] + p * shape[a] + k]` is the input offset (position times stride) of tap
// `k` of output position `p`. Last axis: `tab[base[4] + p * shape[4] + k]` is the
// input position (both a `TapTable` of src/stage/tables.rs). NONE stands for `cval`. The weights follow, as f32 bits, C order.

struct StencilParams {
    count: u32,
    // Where the weights start in `tab`.
    weights: u32,
    cval: f32,
    pad: u32,
    // Output extents.
    lens: array<u32, AXES>,
    // Stencil extents.
    shape: array<u32, AXES>,
    // Where each axis's tap table starts in `tab`.
    base: array<u32, AXES>,
}

@group(0) @binding(0) var<storage, read> P: StencilParams;

fn compute(e: u32) -> Out {
    let i = unravel(e, P.lens);
    let s0 = P.shape[0];
    let s1 = P.shape[1];
    let s2 = P.shape[2];
    let s3 = P.shape[3];
    let kl = P.shape[4];
    let t0 = P.base[0] + i.i0 * s0;
    let t1 = P.base[1] + i.i1 * s1;
    let t2 = P.base[2] + i.i2 * s2;
    let t3 = P.base[3] + i.i3 * s3;
    let tl = P.base[4] + i.i4 * kl;
    var w = P.weights;
    var acc = 0.0;
    for (var k0 = 0u; k0 < s0; k0++) {
        let o0 = tab[t0 + k0];
        for (var k1 = 0u; k1 < s1; k1++) {
            let o1 = tab[t1 + k1];
            for (var k2 = 0u; k2 < s2; k2++) {
                let o2 = tab[t2 + k2];
                for (var k3 = 0u; k3 < s3; k3++) {
                    let o3 = tab[t3 + k3];
                    // A row outside the array (constant mode) contributes cval taps.
                    let constant = o0 == NONE || o1 == NONE || o2 == NONE || o3 == NONE;
                    let row = o0 + o1 + o2 + o3;
                    for (var j = 0u; j < kl; j++) {
                        var x = P.cval;
                        if (!constant) {
                            let p = tab[tl + j];
                            if (p != NONE) {
                                x = in_f32(load(row + p));
                            }
                        }
                        acc = acc + bitcast<f32>(tab[w]) * x;
                        w = w + 1u;
                    }
                }
            }
        }
    }
    return acc;
}
