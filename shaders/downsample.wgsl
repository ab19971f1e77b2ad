// Reduce windows of `factor` elements: mean, max, min, stride, mode. Twin of
// cpu/resample.rs `downsample`; the window is visited in C order, as there.
//
// Per axis `a` and output position `p`: `tab[base[a] + 2p]` is the input offset of the
// window's first element, `tab[base[a] + 2p + 1]` the window's length on that axis
// (partial at the array's edge).
//
// Integer means are exact: keys (x, or x + 2^31 for signed types) summed in 64 bits,
// divided and rounded half to even, as the CPU's f64 sum and division give for any
// window below 2^31 elements. Float means sum in f32 in window order.

struct Params {
    count: u32,
    ndim: u32,
    // 0 mean, 1 max, 2 min, 3 stride, 4 mode.
    method: u32,
    pad: u32,
    lens: array<u32, 8>,
    // Input strides, in elements.
    strides: array<u32, 8>,
    base: array<u32, 8>,
}

@group(0) @binding(0) var<storage, read> P: Params;

struct Window {
    off: array<u32, 8>,
    len: array<u32, 8>,
    size: u32,
}

fn window(e: u32) -> Window {
    let idx = unravel(e, P.ndim, P.lens);
    var w: Window;
    w.size = 1u;
    for (var a = 0u; a < P.ndim; a++) {
        let t = P.base[a] + 2u * idx[a];
        w.off[a] = tab[t];
        w.len[a] = tab[t + 1u];
        w.size = w.size * w.len[a];
    }
    return w;
}

// The input offset of the `i`-th window element in C order.
fn element(w: Window, i: u32) -> u32 {
    var rest = i;
    var off = 0u;
    for (var a = i32(P.ndim) - 1; a >= 0; a--) {
        off = off + w.off[a] + (rest % w.len[a]) * P.strides[a];
        rest = rest / w.len[a];
    }
    return off;
}

fn compute(e: u32) -> Out {
    let w = window(e);
    let first = load(element(w, 0u));
    switch P.method {
        case 0u: {
            if (IN_FLOAT) {
                var sum = 0.0;
                for (var i = 0u; i < w.size; i++) {
                    sum = sum + in_f32(load(element(w, i)));
                }
                return out_from_f32(sum / f32(w.size));
            }
            var sum = U64(0u, 0u);
            for (var i = 0u; i < w.size; i++) {
                sum = u64_add(sum, U64(in_key(load(element(w, i))), 0u));
            }
            return out_from_key(u64_div_round(sum, w.size));
        }
        case 1u, 2u: {
            // numpy semantics: the first NaN wins; otherwise the first extreme value.
            var m = first;
            for (var i = 0u; i < w.size; i++) {
                let x = load(element(w, i));
                if (in_is_nan(x)) {
                    return x;
                }
                if ((P.method == 1u && x > m) || (P.method == 2u && x < m)) {
                    m = x;
                }
            }
            return m;
        }
        case 3u: {
            return first;
        }
        default: {
            // Most frequent value, ties to the smallest: count each candidate's equals.
            var best = first;
            var best_count = 0u;
            for (var i = 0u; i < w.size; i++) {
                let x = load(element(w, i));
                var n = 0u;
                for (var j = 0u; j < w.size; j++) {
                    if (load(element(w, j)) == x) {
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
