// Reduce windows of `factor` elements: mean, max, min, stride, mode. Twin of
// cpu/resample.rs `downsample`; the window is visited in C order, as there.
//
// Per axis `a` and output position `p`: `tab[base[a] + 2p]` is the input offset of the
// window's first element, `tab[base[a] + 2p + 1]` the window's length on that axis
// (partial at the array's edge): a `Window` of src/stage/tables.rs.
//
// Mean, max and min walk the window with plain strides (no division per element); the
// mode indexes it (`element`). Integer means are exact: keys (x, or x + 2^31 for
// signed types) summed in 64 bits,
// divided and rounded half to even, as the CPU's f64 sum and division give for any
// window below 2^31 elements. Float means sum in f32 in window order.

// METHOD (compiled in): one of DOWN_MEAN, DOWN_MAX, DOWN_MIN, DOWN_STRIDE, DOWN_MODE
// (generated from `DownMethod`) in its low byte; bit 8 + a set where axis `a` is
// reduced (factor above 1).

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

// Axis `a`'s window for output position `p`: (offset of its first element, length). An
// axis with factor 1 (METHOD's bit 8 + a clear) holds the output's own indices: its
// window is the one element at position `p`, found without the table.
fn window_on(a: u32, p: u32) -> vec2<u32> {
    if ((METHOD & (256u << a)) == 0u) {
        return vec2<u32>(p * P.strides[a], 1u);
    }
    let t = P.base[a] + 2u * p;
    return vec2<u32>(tab[t], tab[t + 1u]);
}

fn window(e: u32) -> Window {
    let i = unravel(e, P.lens);
    let w0 = window_on(0u, i.i0);
    let w1 = window_on(1u, i.i1);
    let w2 = window_on(2u, i.i2);
    let w3 = window_on(3u, i.i3);
    let w4 = window_on(4u, i.i4);
    var w: Window;
    w.first = w0.x + w1.x + w2.x + w3.x + w4.x;
    w.n0 = w0.y;
    w.n1 = w1.y;
    w.n2 = w2.y;
    w.n3 = w3.y;
    w.n4 = w4.y;
    w.size = w.n0 * w.n1 * w.n2 * w.n3 * w.n4;
    return w;
}

// What `walk` accumulates, per invocation: the mean's sums, or the extreme so far and
// whether a NaN was met (numpy: the first NaN wins; else the first extreme value).
var<private> sum_f: f32;
var<private> sum_k: U64;
// u8 and u16 keys (below 2^16) summed in 32 bits: exact for windows of up to 2^16 + 1
// elements (`narrow`).
var<private> sum_n: u32;
var<private> narrow: bool;
var<private> extreme: In;
var<private> nan_found: bool;

fn visit(x: In) {
    if ((METHOD & 0xffu) == DOWN_MEAN) {
        if (IN_FLOAT) {
            sum_f = sum_f + in_f32(x);
        } else if (IN_NARROW && narrow) {
            sum_n = sum_n + in_key(x);
        } else {
            sum_k = u64_add(sum_k, U64(in_key(x), 0u));
        }
    } else if (!nan_found) {
        if (in_is_nan(x)) {
            extreme = x;
            nan_found = true;
        } else if ((METHOD & 0xffu) == DOWN_MAX && x > extreme
            || (METHOD & 0xffu) == DOWN_MIN && x < extreme) {
            extreme = x;
        }
    }
}

// Visits a whole window (F0 x ... x F4 elements) in C order: constant bounds, so the
// loops unroll.
fn walk_whole(first: u32) {
    var o0 = first;
    for (var j0 = 0u; j0 < F0; j0++) {
        var o1 = o0;
        for (var j1 = 0u; j1 < F1; j1++) {
            var o2 = o1;
            for (var j2 = 0u; j2 < F2; j2++) {
                var o3 = o2;
                for (var j3 = 0u; j3 < F3; j3++) {
                    for (var j4 = 0u; j4 < F4; j4++) {
                        visit(load(o3 + j4));
                    }
                    o3 = o3 + P.strides[3];
                }
                o2 = o2 + P.strides[2];
            }
            o1 = o1 + P.strides[1];
        }
        o0 = o0 + P.strides[0];
    }
}

// Visits the window's elements in C order, with plain strides (no division).
fn walk(w: Window) {
    if (w.size == F0 * F1 * F2 * F3 * F4) {
        walk_whole(w.first);
        return;
    }
    var o0 = w.first;
    for (var j0 = 0u; j0 < w.n0; j0++) {
        var o1 = o0;
        for (var j1 = 0u; j1 < w.n1; j1++) {
            var o2 = o1;
            for (var j2 = 0u; j2 < w.n2; j2++) {
                var o3 = o2;
                for (var j3 = 0u; j3 < w.n3; j3++) {
                    var o4 = o3;
                    for (var j4 = 0u; j4 < w.n4; j4++) {
                        visit(load(o4));
                        o4 = o4 + 1u;
                    }
                    o3 = o3 + P.strides[3];
                }
                o2 = o2 + P.strides[2];
            }
            o1 = o1 + P.strides[1];
        }
        o0 = o0 + P.strides[0];
    }
}

// The `k`-th window element in C order (for the mode, which compares pairs).
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
    switch METHOD & 0xffu {
        case DOWN_MEAN: {
            sum_f = 0.0;
            sum_k = U64(0u, 0u);
            sum_n = 0u;
            narrow = w.size <= 65537u;
            walk(w);
            if (IN_FLOAT) {
                return out_from_f32(sum_f / f32(w.size));
            }
            if (IN_NARROW && narrow) {
                return out_from_key(u32_div_round(sum_n, w.size));
            }
            return out_from_key(u64_div_round(sum_k, w.size));
        }
        case DOWN_MAX, DOWN_MIN: {
            extreme = first;
            nan_found = false;
            walk(w);
            return extreme;
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
