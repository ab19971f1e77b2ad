// Non-local means, one output element per invocation: METHOD 0 is scikit-image's fast
// mode (uniform patch weights over its box of (s-1)^n pixels from -s/2+1 to s/2,
// distances divided by h^2 s^n), METHOD 1 its classic mode (Gaussian patch weights from
// the table, the search window clipped to the array, the early exit before each patch
// plane). Twin of cpu/nlmeans.rs, in f32 (the host computes fast mode in f64, as
// scikit-image does): weights differ in their last bits, results by about 1e-6 of
// their range.
//
// Tables, per axis a (five, leading ones of extent 1): `tab[base[a] + j]` is the input
// offset of padded coordinate j (the output's bounds grown by the radius on the
// filtered axes, mirrored at the array's edges: NumPy's `reflect`), and
// `tab[opos[a] + i]` the padded coordinate of output position i. Classic mode's patch
// weights (f32 bits, C order over its extents) start at `tab[kernel]`.

struct NlMeansParams {
    count: u32,
    // 1 / (h^2 s^n).
    inv: f32,
    // Subtracted from each box sum: (s - 1)^n 2 sigma^2.
    subtract: f32,
    // 2 sigma^2.
    var2: f32,
    // Where classic mode's patch weights start in `tab`.
    kernel: u32,
    // Bit a: axis a is filtered.
    filtered: u32,
    pad: array<u32, 2>,
    // Output extents.
    lens: array<u32, AXES>,
    base: array<u32, AXES>,
    opos: array<u32, AXES>,
    // The search window's radius.
    dist: array<u32, AXES>,
    // The patch's radius, s / 2.
    off: array<u32, AXES>,
    // The array index of padded coordinate 0, and the array's extents.
    origin: array<i32, AXES>,
    extent: array<u32, AXES>,
}

@group(0) @binding(0) var<storage, read> P: NlMeansParams;

const CUTOFF: f32 = 5.0;

// scikit-image's `_fast_exp` (Schraudolph's approximation) for y in [-700, 0], as the
// f32 of the double it builds: the high word's exponent rebased, its 20 bits of
// mantissa shifted into place; 0 where that double is below f32's normal range.
fn fast_exp(y: f32) -> f32 {
    let high = i32(1512775.4 * y) + 1072632447;
    if (high < (897 << 20u)) {
        return 0.0;
    }
    return bitcast<f32>(u32(high - (896 << 20u)) << 3u);
}

// The value at padded coordinates (c0, ..., c4).
fn value(c0: i32, c1: i32, c2: i32, c3: i32, c4: i32) -> f32 {
    let o = tab[P.base[0] + u32(c0)] + tab[P.base[1] + u32(c1)] + tab[P.base[2] + u32(c2)]
        + tab[P.base[3] + u32(c3)] + tab[P.base[4] + u32(c4)];
    return in_f32(load(o));
}

// The box's first offset and extent on axis a: -s/2 + 1 and s - 1 on a filtered axis,
// 0 and 1 on the others.
fn box_lo(a: u32) -> i32 {
    return select(0, 1 - i32(P.off[a]), ((P.filtered >> a) & 1u) == 1u);
}

fn box_len(a: u32) -> i32 {
    return select(1, 2 * i32(P.off[a]), ((P.filtered >> a) & 1u) == 1u);
}

fn compute(e: u32) -> Out {
    let i = unravel(e, P.lens);
    let c0 = i32(tab[P.opos[0] + i.i0]);
    let c1 = i32(tab[P.opos[1] + i.i1]);
    let c2 = i32(tab[P.opos[2] + i.i2]);
    let c3 = i32(tab[P.opos[3] + i.i3]);
    let c4 = i32(tab[P.opos[4] + i.i4]);
    if (METHOD == 0u) {
        return fast(c0, c1, c2, c3, c4);
    }
    return classic(c0, c1, c2, c3, c4);
}

fn fast(c0: i32, c1: i32, c2: i32, c3: i32, c4: i32) -> f32 {
    let d2 = i32(P.dist[2]);
    let d3 = i32(P.dist[3]);
    let d4 = i32(P.dist[4]);
    let l2 = box_lo(2u);
    let l3 = box_lo(3u);
    let l4 = box_lo(4u);
    let n2 = box_len(2u);
    let n3 = box_len(3u);
    let n4 = box_len(4u);
    var weights = 0.0;
    var sum = 0.0;
    for (var t2 = -d2; t2 <= d2; t2++) {
        for (var t3 = -d3; t3 <= d3; t3++) {
            for (var t4 = -d4; t4 <= d4; t4++) {
                var total = 0.0;
                for (var b2 = l2; b2 < l2 + n2; b2++) {
                    for (var b3 = l3; b3 < l3 + n3; b3++) {
                        for (var b4 = l4; b4 < l4 + n4; b4++) {
                            let d = value(c0, c1, c2 + b2, c3 + b3, c4 + b4)
                                - value(c0, c1, c2 + t2 + b2, c3 + t3 + b3, c4 + t4 + b4);
                            total = total + d * d;
                        }
                    }
                }
                let x = total - P.subtract;
                let distance = select(0.0, x * P.inv, x > 0.0);
                if (distance <= CUTOFF) {
                    let w = fast_exp(-distance);
                    weights = weights + w;
                    sum = sum + w * value(c0, c1, c2 + t2, c3 + t3, c4 + t4);
                }
            }
        }
    }
    return sum / weights;
}

fn classic(c0: i32, c1: i32, c2: i32, c3: i32, c4: i32) -> f32 {
    // The window in array indices, clipped to the array, per filtered axis.
    var lo: array<i32, 3>;
    var hi: array<i32, 3>;
    let c = array<i32, 3>(c2, c3, c4);
    for (var k = 0u; k < 3u; k++) {
        let g = P.origin[k + 2u] + c[k];
        let d = i32(P.dist[k + 2u]);
        lo[k] = max(g - d, 0);
        hi[k] = min(g + d, i32(P.extent[k + 2u]) - 1);
    }
    let o2 = i32(P.off[2]);
    let o3 = i32(P.off[3]);
    let o4 = i32(P.off[4]);
    let s2 = 2 * o2 + 1;
    let s3 = 2 * o3 + 1;
    let s4 = 2 * o4 + 1;
    var total = 0.0;
    var weights = 0.0;
    for (var q2 = lo[0]; q2 <= hi[0]; q2++) {
        for (var q3 = lo[1]; q3 <= hi[1]; q3++) {
            for (var q4 = lo[2]; q4 <= hi[2]; q4++) {
                // The window position's padded coordinates.
                let p2 = q2 - P.origin[2];
                let p3 = q3 - P.origin[3];
                let p4 = q4 - P.origin[4];
                var distance = 0.0;
                var cut = false;
                var k = 0u;
                for (var i = 0; i < s2; i++) {
                    if (s2 > 1 && distance > CUTOFF) {
                        cut = true;
                        break;
                    }
                    for (var j = 0; j < s3; j++) {
                        if (s2 == 1 && distance > CUTOFF) {
                            cut = true;
                            break;
                        }
                        for (var l = 0; l < s4; l++) {
                            let d = value(c0, c1, c2 - o2 + i, c3 - o3 + j, c4 - o4 + l)
                                - value(c0, c1, p2 - o2 + i, p3 - o3 + j, p4 - o4 + l);
                            distance = distance + bitcast<f32>(tab[P.kernel + k]) * (d * d - P.var2);
                            k++;
                        }
                    }
                    if (cut) {
                        break;
                    }
                }
                // scikit-image's fast_exp in double, then cast: the same value as ours
                // for distances of 0 to about 700; NaN counts as 0.
                let w = select(fast_exp(-min(select(0.0, distance, distance > 0.0), 700.0)), 0.0, cut);
                weights = weights + w;
                total = total + w * value(c0, c1, p2, p3, p4);
            }
        }
    }
    return total / weights;
}
