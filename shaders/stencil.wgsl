// N-D correlation with scipy boundary modes: the Gaussian's 1-D passes and `convolve`.
// Twin of cpu/stencil.rs, summing the same products in the same order: leading-axis
// taps in C order, then the last-axis taps, multiply then add.
//
// The boundary mode is folded into per-axis tap tables by the host. Leading axis `a`:
// `tab[base[a] + p * shape[a] + k]` is the input offset (position times stride) of tap
// `k` of output position `p`. Last axis: `tab[base[last] + p * shape[last] + k]` is the
// input position. NONE stands for `cval`. The weights follow, as f32 bits.

struct Params {
    count: u32,
    ndim: u32,
    // Number of leading-axis taps (product of shape[..last]).
    lead_taps: u32,
    // Where the weights start in `tab`.
    weights: u32,
    cval: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
    // Output extents.
    lens: array<u32, 8>,
    // Stencil extents.
    shape: array<u32, 8>,
    // Where each axis's tap table starts in `tab`.
    base: array<u32, 8>,
}

@group(0) @binding(0) var<storage, read> P: Params;

fn compute(e: u32) -> Out {
    let idx = unravel(e, P.ndim, P.lens);
    let last = P.ndim - 1u;
    let kl = P.shape[last];
    let last_taps = P.base[last] + idx[last] * kl;
    // Tap counters on the leading axes, last leading axis fastest.
    var k: array<u32, 8>;
    var acc = 0.0;
    for (var t = 0u; t < P.lead_taps; t++) {
        var row = 0u;
        var constant = false;
        for (var a = 0u; a < last; a++) {
            let off = tab[P.base[a] + idx[a] * P.shape[a] + k[a]];
            if (off == NONE) {
                constant = true;
            } else {
                row = row + off;
            }
        }
        let w0 = P.weights + t * kl;
        for (var j = 0u; j < kl; j++) {
            var x = P.cval;
            if (!constant) {
                let p = tab[last_taps + j];
                if (p != NONE) {
                    x = in_f32(load(row + p));
                }
            }
            let w = bitcast<f32>(tab[w0 + j]);
            acc = acc + w * x;
        }
        for (var a = i32(last) - 1; a >= 0; a--) {
            k[a] = k[a] + 1u;
            if (k[a] < P.shape[a]) {
                break;
            }
            k[a] = 0u;
        }
    }
    return acc;
}
