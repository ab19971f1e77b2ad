// Expand by integer factors: nearest or linear. Twin of cpu/resample.rs `upsample`.
//
// Per axis `a` and output position `p`: two (input offset, weight numerator) pairs at
// `tab[base[a] + 4p ..]` (a `Corners` of src/stage/tables.rs); weights are numerators over 2f per axis, the product of all
// axes' numerators is over `denom`. Terms are visited in the CPU's order (first axis
// outermost, zero weights skipped). Integers are exact (64-bit key sums, rounded half
// to even); floats sum `x * (w / denom)` in f32.

// METHOD (compiled in): UP_NEAREST or UP_LINEAR (generated from `UpMethod`).

struct UpsampleParams {
    count: u32,
    denom: u32,
    pad: array<u32, 2>,
    lens: array<u32, AXES>,
    base: array<u32, AXES>,
}

@group(0) @binding(0) var<storage, read> P: UpsampleParams;

fn compute(e: u32) -> Out {
    let i = unravel(e, P.lens);
    let t0 = P.base[0] + 4u * i.i0;
    let t1 = P.base[1] + 4u * i.i1;
    let t2 = P.base[2] + 4u * i.i2;
    let t3 = P.base[3] + 4u * i.i3;
    let t4 = P.base[4] + 4u * i.i4;
    if (METHOD == UP_NEAREST) {
        // The CPU computes 0 + x * 1, which turns -0.0 into +0.0.
        return out_from_in_nearest(load(tab[t0] + tab[t1] + tab[t2] + tab[t3] + tab[t4]));
    }
    var fsum = 0.0;
    var isum = U64(0u, 0u);
    for (var c0 = 0u; c0 < 4u; c0 += 2u) {
        let m0 = tab[t0 + c0 + 1u];
        if (m0 == 0u) {
            continue;
        }
        for (var c1 = 0u; c1 < 4u; c1 += 2u) {
            let m1 = m0 * tab[t1 + c1 + 1u];
            if (m1 == 0u) {
                continue;
            }
            for (var c2 = 0u; c2 < 4u; c2 += 2u) {
                let m2 = m1 * tab[t2 + c2 + 1u];
                if (m2 == 0u) {
                    continue;
                }
                for (var c3 = 0u; c3 < 4u; c3 += 2u) {
                    let m3 = m2 * tab[t3 + c3 + 1u];
                    if (m3 == 0u) {
                        continue;
                    }
                    let row = tab[t0 + c0] + tab[t1 + c1] + tab[t2 + c2] + tab[t3 + c3];
                    for (var c4 = 0u; c4 < 4u; c4 += 2u) {
                        let w = m3 * tab[t4 + c4 + 1u];
                        if (w == 0u) {
                            continue;
                        }
                        let x = load(row + tab[t4 + c4]);
                        if (IN_FLOAT) {
                            fsum = fsum + in_f32(x) * (f32(w) / f32(P.denom));
                        } else {
                            isum = u64_add(isum, u64_mul(in_key(x), w));
                        }
                    }
                }
            }
        }
    }
    if (IN_FLOAT) {
        return out_from_f32(fsum);
    }
    return out_from_key(u64_div_round(isum, P.denom));
}
