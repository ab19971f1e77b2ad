// Geometric resampling at spline order 0 or 1 in scipy's `constant` mode: the twin of
// cpu/geometry.rs for a matrix map (`affine_transform`, `rotate`, `deskew`) and a
// zoom. Needs the
// device's float64 (SHADER_F64): every coordinate, weight and sum is the CPU's f64
// operation in the CPU's order, so outputs equal the CPU's (and scipy's).
//
// Per output element: its global index `o` (the job's output start plus its place),
// each interpolated input axis's coordinate `c = offset + o0*M0 + ... + o4*M4` summed
// in axis order; an axis that passes through reads index `o` itself. A coordinate
// outside [0, n - 1] gives the cval. Order 1: taps floor(c) and floor(c) + 1 with
// weights 1 - (c - floor(c)) and 1 minus that (a tap past the array's end reads the
// cval, with weight 0); order 0: floor(c + 0.5). Then every combination of the axes'
// taps in C order, each sample times the axes' weights in axis order, summed.
//
// METHOD (compiled in): the spline order (0 or 1) in its low byte; bit 8 + a set
// where axis `a` passes through; bit 16 set where the output is float32; bit 17 for a
// zoom (`c = o * ratio`, the ratio on the matrix's diagonal), and bit 18 for a zoom
// on the grid (`c = (o + 0.5) * ratio - 0.5`), scipy's `zoom` as cpu/geometry.rs
// computes it.

struct GeometryParams {
    count: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
    out_lens: array<u32, AXES>,
    out_first: array<u32, AXES>,
    in_first: array<u32, AXES>,
    in_strides: array<u32, AXES>,
    n: array<u32, AXES>,
    pad3: u32,
    matrix: array<f64, 25>,
    offset: array<f64, AXES>,
    cval: f64,
    in_bias: f64,
    out_min: f64,
    out_max: f64,
    out_bias: f64,
}

@group(0) @binding(0) var<storage, read> P: GeometryParams;

// An axis's taps: the input offsets of the two taps (the second only at order 1), their
// weights, whether the second lies past the array (the cval), and whether the
// coordinate is outside the array (the whole output is the cval).
struct Taps {
    o0: u32,
    o1: u32,
    w0: f64,
    w1: f64,
    past: bool,
    outside: bool,
}

fn through(a: u32) -> bool {
    return (METHOD & (256u << a)) != 0u;
}

fn taps(a: u32, o: array<u32, AXES>) -> Taps {
    var t: Taps;
    t.w0 = f64(1.0);
    t.w1 = f64(0.0);
    t.past = false;
    t.outside = false;
    if (through(a)) {
        t.o0 = (o[a] - P.in_first[a]) * P.in_strides[a];
        t.o1 = t.o0;
        return t;
    }
    var c = P.offset[a];
    if ((METHOD & 0x20000u) != 0u) {
        // A zoom: the ratio on the diagonal; on the grid, pixel edges aligned.
        let k = f64(o[a]);
        let ratio = P.matrix[a * AXES + a];
        if ((METHOD & 0x40000u) != 0u) {
            c = (k + f64(0.5)) * ratio - f64(0.5);
        } else {
            c = k * ratio;
        }
    } else {
        for (var l = 0u; l < AXES; l++) {
            c = c + f64(o[l]) * P.matrix[a * AXES + l];
        }
    }
    let last = f64(P.n[a]) - f64(1.0);
    if (!(c >= f64(0.0) && c <= last)) {
        t.outside = true;
        return t;
    }
    if ((METHOD & 0xffu) == 0u) {
        let i = u32(floor(c + f64(0.5)));
        t.o0 = (i - P.in_first[a]) * P.in_strides[a];
        t.o1 = t.o0;
        return t;
    }
    let f = floor(c);
    let i = u32(f);
    t.o0 = (i - P.in_first[a]) * P.in_strides[a];
    t.w0 = f64(1.0) - (c - f);
    t.w1 = f64(1.0) - t.w0;
    if (i + 1u >= P.n[a]) {
        t.past = true;
        t.o1 = t.o0;
    } else {
        t.o1 = t.o0 + P.in_strides[a];
    }
    return t;
}

fn value(i: u32) -> f64 {
    let x = load(i);
    if (IN_FLOAT) {
        return f64(in_f32(x));
    }
    return f64(in_key(x)) - P.in_bias;
}

// scipy's store: floats rounded to the type; integers rounded half away from zero
// (unsigned: negatives to 0) and clamped.
fn store(t: f64) -> Out {
    if ((METHOD & 0x10000u) != 0u) {
        return out_from_f32(f32(t));
    }
    var r = f64(0.0);
    if (t > f64(0.0)) {
        r = trunc(t + f64(0.5));
    } else if (P.out_min < f64(0.0)) {
        r = trunc(t - f64(0.5));
    }
    if (r != r) {
        r = f64(0.0);
    }
    r = clamp(r, P.out_min, P.out_max);
    return out_from_key(u32(r + P.out_bias));
}

fn compute(e: u32) -> Out {
    let i = unravel(e, P.out_lens);
    let local = array<u32, AXES>(i.i0, i.i1, i.i2, i.i3, i.i4);
    var o: array<u32, AXES>;
    for (var a = 0u; a < AXES; a++) {
        o[a] = P.out_first[a] + local[a];
    }
    let t0 = taps(0u, o);
    let t1 = taps(1u, o);
    let t2 = taps(2u, o);
    let t3 = taps(3u, o);
    let t4 = taps(4u, o);
    if (t0.outside || t1.outside || t2.outside || t3.outside || t4.outside) {
        return store(P.cval);
    }
    // Taps per axis: two at order 1, one at order 0 and on an axis passing through.
    let count = select(1u, 2u, (METHOD & 0xffu) == 1u);
    let n0 = select(count, 1u, through(0u));
    let n1 = select(count, 1u, through(1u));
    let n2 = select(count, 1u, through(2u));
    let n3 = select(count, 1u, through(3u));
    let n4 = select(count, 1u, through(4u));
    var sum = f64(0.0);
    for (var c0 = 0u; c0 < n0; c0++) {
        let w0 = select(t0.w0, t0.w1, c0 == 1u);
        let p0 = c0 == 1u && t0.past;
        let q0 = select(t0.o0, t0.o1, c0 == 1u);
        for (var c1 = 0u; c1 < n1; c1++) {
            let w1 = select(t1.w0, t1.w1, c1 == 1u);
            let p1 = p0 || (c1 == 1u && t1.past);
            let q1 = q0 + select(t1.o0, t1.o1, c1 == 1u);
            for (var c2 = 0u; c2 < n2; c2++) {
                let w2 = select(t2.w0, t2.w1, c2 == 1u);
                let p2 = p1 || (c2 == 1u && t2.past);
                let q2 = q1 + select(t2.o0, t2.o1, c2 == 1u);
                for (var c3 = 0u; c3 < n3; c3++) {
                    let w3 = select(t3.w0, t3.w1, c3 == 1u);
                    let p3 = p2 || (c3 == 1u && t3.past);
                    let q3 = q2 + select(t3.o0, t3.o1, c3 == 1u);
                    for (var c4 = 0u; c4 < n4; c4++) {
                        let w4 = select(t4.w0, t4.w1, c4 == 1u);
                        let p4 = p3 || (c4 == 1u && t4.past);
                        let q4 = q3 + select(t4.o0, t4.o1, c4 == 1u);
                        var coeff = P.cval;
                        if (!p4) {
                            coeff = value(q4);
                        }
                        coeff = coeff * w0;
                        coeff = coeff * w1;
                        coeff = coeff * w2;
                        coeff = coeff * w3;
                        coeff = coeff * w4;
                        sum = sum + coeff;
                    }
                }
            }
        }
    }
    return store(sum);
}
