// Expand by integer factors: nearest or linear. Twin of cpu/resample.rs `upsample`.
//
// Per axis `a` and output position `p`: two (input offset, weight numerator) pairs at
// `tab[base[a] + 4p ..]`; weights are numerators over 2f per axis, the product of all
// axes' numerators is over `denom`. Terms are visited in the CPU's order (first axis
// outermost, zero weights skipped). Integers are exact (64-bit key sums, rounded half
// to even); floats sum `x * (w / denom)` in f32.

struct Params {
    count: u32,
    ndim: u32,
    // 0 nearest, 1 linear.
    method: u32,
    denom: u32,
    lens: array<u32, 8>,
    base: array<u32, 8>,
}

@group(0) @binding(0) var<storage, read> P: Params;

fn compute(e: u32) -> Out {
    let idx = unravel(e, P.ndim, P.lens);
    var t: array<u32, 8>;
    for (var a = 0u; a < P.ndim; a++) {
        t[a] = P.base[a] + 4u * idx[a];
    }
    if (P.method == 0u) {
        var off = 0u;
        for (var a = 0u; a < P.ndim; a++) {
            off = off + tab[t[a]];
        }
        // The CPU computes 0 + x * 1, which turns -0.0 into +0.0.
        return out_from_in_nearest(load(off));
    }
    var fsum = 0.0;
    var isum = U64(0u, 0u);
    let terms = 1u << P.ndim;
    for (var c = 0u; c < terms; c++) {
        var off = 0u;
        var w = 1u;
        for (var a = 0u; a < P.ndim; a++) {
            let corner = (c >> (P.ndim - 1u - a)) & 1u;
            off = off + tab[t[a] + 2u * corner];
            w = w * tab[t[a] + 2u * corner + 1u];
        }
        if (w == 0u) {
            continue;
        }
        let x = load(off);
        if (IN_FLOAT) {
            fsum = fsum + in_f32(x) * (f32(w) / f32(P.denom));
        } else {
            isum = u64_add(isum, u64_mul(in_key(x), w));
        }
    }
    if (IN_FLOAT) {
        return out_from_f32(fsum);
    }
    return out_from_key(u64_div_round(isum, P.denom));
}
