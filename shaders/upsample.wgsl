// Expand by integer factors: nearest or linear. Twin of cpu/resample.rs `upsample`.
//
// Per axis `a` and output position `p`: two (input offset, weight numerator) pairs at
// `tab[base[a] + 4p ..]` (a `Corners` of src/stage/tables.rs); weights are numerators over 2f per axis, the product of all
// axes' numerators is over `denom`. Terms are visited in the CPU's order (first axis
// outermost, zero weights skipped). Integers are exact (64-bit key sums, rounded half
// to even); floats sum `x * (w / denom)` in f32.

// METHOD (compiled in): UP_NEAREST or UP_LINEAR (generated from `UpMethod`) in its low
// byte; bit 8 + a set where axis `a` is upsampled (factor above 1).

// The sources to visit on axis `a`: 2, or 1 where the factor is 1.
fn sources(a: u32) -> u32 {
    return select(1u, 2u, (METHOD & (256u << a)) != 0u);
}

struct UpsampleParams {
    count: u32,
    denom: u32,
    pad: array<u32, 2>,
    lens: array<u32, AXES>,
    base: array<u32, AXES>,
}

@group(0) @binding(0) var<storage, read> P: UpsampleParams;

// Axis `a`'s corners for output position `p`: (lower offset, its weight, upper offset,
// its weight). An axis with factor 1 reads its one source (weight 2) and no more.
fn corners_of(a: u32, p: u32) -> vec4<u32> {
    let t = P.base[a] + 4u * p;
    if ((METHOD & (256u << a)) == 0u) {
        return vec4<u32>(tab[t], 2u, 0u, 0u);
    }
    return vec4<u32>(tab[t], tab[t + 1u], tab[t + 2u], tab[t + 3u]);
}

// Source `c` (0 lower, 1 upper) of corners `k`: (offset, weight).
fn pick(k: vec4<u32>, c: u32) -> vec2<u32> {
    return select(k.xy, k.zw, c == 1u);
}

fn compute(e: u32) -> Out {
    let i = unravel(e, P.lens);
    let k0 = corners_of(0u, i.i0);
    let k1 = corners_of(1u, i.i1);
    let k2 = corners_of(2u, i.i2);
    let k3 = corners_of(3u, i.i3);
    let k4 = corners_of(4u, i.i4);
    if ((METHOD & 0xffu) == UP_NEAREST) {
        // The CPU computes 0 + x * 1, which turns -0.0 into +0.0.
        return out_from_in_nearest(load(k0.x + k1.x + k2.x + k3.x + k4.x));
    }
    var fsum = 0.0;
    var isum = U64(0u, 0u);
    for (var c0 = 0u; c0 < sources(0u); c0++) {
        let p0 = pick(k0, c0);
        if (p0.y == 0u) {
            continue;
        }
        for (var c1 = 0u; c1 < sources(1u); c1++) {
            let p1 = pick(k1, c1);
            let m1 = p0.y * p1.y;
            if (m1 == 0u) {
                continue;
            }
            for (var c2 = 0u; c2 < sources(2u); c2++) {
                let p2 = pick(k2, c2);
                let m2 = m1 * p2.y;
                if (m2 == 0u) {
                    continue;
                }
                for (var c3 = 0u; c3 < sources(3u); c3++) {
                    let p3 = pick(k3, c3);
                    let m3 = m2 * p3.y;
                    if (m3 == 0u) {
                        continue;
                    }
                    let row = p0.x + p1.x + p2.x + p3.x;
                    for (var c4 = 0u; c4 < sources(4u); c4++) {
                        let p4 = pick(k4, c4);
                        let w = m3 * p4.y;
                        if (w == 0u) {
                            continue;
                        }
                        let x = load(row + p4.x);
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
