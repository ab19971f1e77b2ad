// Reduce windows of `factor` elements: mean, max, min, stride, mode. Twin of
// cpu/resample.rs `downsample`; the window is visited in C order, as there.
//
// Per axis `a` and output position `p`: `tab[base[a] + 2p]` is the input offset of the
// window's first element, `tab[base[a] + 2p + 1]` the window's length on that axis
// (partial at the array's edge): a `Window` of src/stage/tables.rs.
//
// Integer means are exact: keys (x, or x + 2^31 for signed types) summed in 64 bits,
// divided and rounded half to even, as the CPU's f64 sum and division give for any
// window below 2^31 elements. Float means sum in f32 in window order.

// METHOD (compiled in): one of DOWN_MEAN, DOWN_MAX, DOWN_MIN, DOWN_STRIDE, DOWN_MODE
// (generated from `DownMethod`).

struct DownsampleParams {
    count: u32,
    pad: array<u32, 3>,
    lens: array<u32, AXES>,
    // Input strides, in elements.
    strides: array<u32, AXES>,
    base: array<u32, AXES>,
}

@group(0) @binding(0) var<storage, read> P: DownsampleParams;

// One output element's window: offset of its first element, extent per axis.
struct Window {
    first: u32,
    n0: u32,
    n1: u32,
    n2: u32,
    n3: u32,
    n4: u32,
    size: u32,
}

fn window(e: u32) -> Window {
    let i = unravel(e, P.lens);
    let t0 = P.base[0] + 2u * i.i0;
    let t1 = P.base[1] + 2u * i.i1;
    let t2 = P.base[2] + 2u * i.i2;
    let t3 = P.base[3] + 2u * i.i3;
    let t4 = P.base[4] + 2u * i.i4;
    var w: Window;
    w.first = tab[t0] + tab[t1] + tab[t2] + tab[t3] + tab[t4];
    w.n0 = tab[t0 + 1u];
    w.n1 = tab[t1 + 1u];
    w.n2 = tab[t2 + 1u];
    w.n3 = tab[t3 + 1u];
    w.n4 = tab[t4 + 1u];
    w.size = w.n0 * w.n1 * w.n2 * w.n3 * w.n4;
    return w;
}

// The `k`-th window element in C order.
fn element(w: Window, k: u32) -> In {
    let j4 = k % w.n4;
    var rest = k / w.n4;
    let j3 = rest % w.n3;
    rest = rest / w.n3;
    let j2 = rest % w.n2;
    rest = rest / w.n2;
    let j1 = rest % w.n1;
    let j0 = rest / w.n1;
    let s = P.strides;
    return load(w.first + j0 * s[0] + j1 * s[1] + j2 * s[2] + j3 * s[3] + j4);
}

fn compute(e: u32) -> Out {
    let w = window(e);
    let first = load(w.first);
    switch METHOD {
        case DOWN_MEAN: {
            if (IN_FLOAT) {
                var sum = 0.0;
                for (var k = 0u; k < w.size; k++) {
                    sum = sum + in_f32(element(w, k));
                }
                return out_from_f32(sum / f32(w.size));
            }
            var sum = U64(0u, 0u);
            for (var k = 0u; k < w.size; k++) {
                sum = u64_add(sum, U64(in_key(element(w, k)), 0u));
            }
            return out_from_key(u64_div_round(sum, w.size));
        }
        case DOWN_MAX, DOWN_MIN: {
            // numpy semantics: the first NaN wins; otherwise the first extreme value.
            var m = first;
            for (var k = 0u; k < w.size; k++) {
                let x = element(w, k);
                if (in_is_nan(x)) {
                    return x;
                }
                if ((METHOD == DOWN_MAX && x > m) || (METHOD == DOWN_MIN && x < m)) {
                    m = x;
                }
            }
            return m;
        }
        case DOWN_STRIDE: {
            return first;
        }
        default: {
            // DOWN_MODE. Most frequent value, ties to the smallest: count each candidate's equals.
            var best = first;
            var best_count = 0u;
            for (var k = 0u; k < w.size; k++) {
                let x = element(w, k);
                var n = 0u;
                for (var l = 0u; l < w.size; l++) {
                    if (element(w, l) == x) {
                        n = n + 1u;
                    }
                }
                if (n > best_count || (n == best_count && x < best)) {
                    best = x;
                    best_count = n;
                }
            }
            return best;
        }
    }
}
