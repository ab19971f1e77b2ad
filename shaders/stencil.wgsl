// N-D correlation with scipy boundary modes: the Gaussian's 1-D passes and `convolve`.
// Twin of cpu/stencil.rs, summing the same products in the same order: taps in C order
// over the stencil (leading axes outermost, the last axis innermost), multiply then add.
//
// The boundary mode is folded into per-axis tap tables by the host (each a `TapTable`
// of src/stage/tables.rs): `tab[base[a] + p * shape[a] + k]` is the input's element
// offset (position times stride) of tap `k` of output position `p` on axis `a`, NONE
// for `cval`. Inside the array every tap of an output sits one stride after the
// previous one, so `tab[firsts[a] + p]` holds the offset of its first tap (NONE near
// the edge): an output whose five first offsets are all set walks its taps with plain
// strides and reads no table per tap (`interior`). The weights follow, as f32 bits, in
// C order.
//
// METHOD (compiled in) is the mask of the axes along which the stencil has more than
// one tap: the loops over the other axes fold away, so a separable pass is one loop.
//
// One invocation per output element, on a grid shaped like the output: x runs along the
// last axis, and each workgroup row (y, then z beyond 65535) is one multi-index of the
// leading axes, the same for every lane.

struct StencilParams {
    count: u32,
    // Where the weights start in `tab`.
    weights: u32,
    cval: f32,
    // Rows of the output (the product of the leading extents): the grid's y * z.
    rows: u32,
    // Output extents.
    lens: array<u32, AXES>,
    // Stencil extents.
    shape: array<u32, AXES>,
    // Where each axis's tap table starts in `tab`.
    base: array<u32, AXES>,
    // Where each axis's first-tap offsets start in `tab`.
    firsts: array<u32, AXES>,
    // Input strides, in elements.
    strides: array<u32, AXES>,
}

@group(0) @binding(0) var<storage, read> P: StencilParams;

// The number of taps along axis `a`: 1, a constant, unless METHOD says it varies.
fn taps(a: u32) -> u32 {
    return select(1u, P.shape[a], (METHOD & (1u << a)) != 0u);
}

// The offset of the first tap of output index `i` on axis `a`, NONE near the edge. On
// an axis with one tap the input holds the output's indices, so no table is needed.
fn first(a: u32, i: u32) -> u32 {
    if ((METHOD & (1u << a)) == 0u) {
        return i * P.strides[a];
    }
    return tab[P.firsts[a] + i];
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let row = wid.y + wid.z * groups.y;
    if (row >= P.rows) {
        return;
    }
    // The leading multi-index, from the row (uniform across the workgroup).
    let i3 = row % P.lens[3];
    var rest = row / P.lens[3];
    let i2 = rest % P.lens[2];
    rest = rest / P.lens[2];
    let i1 = rest % P.lens[1];
    let i0 = rest / P.lens[1];
    // Rows longer than the grid's x are walked in steps of it.
    for (var i4 = gid.x; i4 < P.lens[4]; i4 += groups.x * WORKGROUP) {
        dst[row * P.lens[4] + i4] = bitcast<u32>(correlate(i0, i1, i2, i3, i4));
    }
}

fn correlate(i0: u32, i1: u32, i2: u32, i3: u32, i4: u32) -> f32 {
    let s0 = taps(0u);
    let s1 = taps(1u);
    let s2 = taps(2u);
    let s3 = taps(3u);
    let s4 = taps(4u);
    let f0 = first(0u, i0);
    let f1 = first(1u, i1);
    let f2 = first(2u, i2);
    let f3 = first(3u, i3);
    let f4 = first(4u, i4);
    if (f0 != NONE && f1 != NONE && f2 != NONE && f3 != NONE && f4 != NONE) {
        // Inside the array: every tap one stride after the previous one.
        return interior(f0 + f1 + f2 + f3 + f4);
    }
    var w = P.weights;
    var acc = 0.0;
    // Near the edge: every tap through the tables.
    let t0 = P.base[0] + i0 * s0;
    let t1 = P.base[1] + i1 * s1;
    let t2 = P.base[2] + i2 * s2;
    let t3 = P.base[3] + i3 * s3;
    let t4 = P.base[4] + i4 * s4;
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
                    for (var k4 = 0u; k4 < s4; k4++) {
                        var x = P.cval;
                        if (!constant) {
                            let p = tab[t4 + k4];
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

// The taps of an output inside the array whose first tap is at `o`, walked with plain
// strides, the weights read from the table buffer. A stencil of few taps has this walk
// written out tap by tap instead, its weights as constants (`fn interior`, generated by
// src/gpu/stencil.rs); a larger one's `interior` calls this.
fn interior_loop(o: u32) -> f32 {
    let s0 = taps(0u);
    let s1 = taps(1u);
    let s2 = taps(2u);
    let s3 = taps(3u);
    let s4 = taps(4u);
    var w = P.weights;
    var acc = 0.0;
    var o0 = o;
    for (var k0 = 0u; k0 < s0; k0++) {
        var o1 = o0;
        for (var k1 = 0u; k1 < s1; k1++) {
            var o2 = o1;
            for (var k2 = 0u; k2 < s2; k2++) {
                var o3 = o2;
                for (var k3 = 0u; k3 < s3; k3++) {
                    var o4 = o3;
                    for (var k4 = 0u; k4 < s4; k4++) {
                        acc = acc + bitcast<f32>(tab[w]) * in_f32(load(o4));
                        w = w + 1u;
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
    return acc;
}
