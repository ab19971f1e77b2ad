// Projections on the device: the maximum or minimum along one axis (numpy's
// `x.max(axis)`, `x.min(axis)`), the type kept, a NaN winning; and the sum or mean of
// float32 (`x.sum(axis)`, `x.mean(axis)`). Twin of cpu/project.rs, which sums in f64:
// here each sum is carried as a pair of f32, the running sum and the rounding errors
// of its additions (two-sum), added at the end. WGSL cannot forbid a compiler from
// simplifying the error terms away (Mesa's NIR may), so the result is within a few
// ulps of the f64 sum cast to f32, not always equal to it; numpy's own float32 sums
// (pairwise, in f32) differ from both by as much. Integer sums and means (float64
// out) run on the host.
//
// METHOD (compiled in): 0 for the maximum, 1 for the minimum, 2 for the sum, 3 for the
// mean.

struct ProjectParams {
    count: u32,
    // Elements along the reduced axis.
    n: u32,
    // The input stride of the reduced axis, in elements.
    stride: u32,
    pad: u32,
    // Output extents (1 on the reduced axis).
    lens: array<u32, AXES>,
    // Input strides, in elements.
    strides: array<u32, AXES>,
}

@group(0) @binding(0) var<storage, read> P: ProjectParams;

// `hi + lo + x` as a new pair: Knuth's two-sum (exact, with no multiply to contract),
// the rounding error of `hi + x` added into `lo`.
fn add_to(acc: vec2<f32>, x: f32) -> vec2<f32> {
    let s = acc.x + x;
    let b = s - acc.x;
    let err = (acc.x - (s - b)) + (x - b);
    return vec2<f32>(s, acc.y + err);
}

fn compute(e: u32) -> Out {
    let i = unravel(e, P.lens);
    let s = P.strides;
    let first = i.i0 * s[0] + i.i1 * s[1] + i.i2 * s[2] + i.i3 * s[3] + i.i4 * s[4];
    if (METHOD >= 2u) {
        var acc = vec2<f32>(0.0, 0.0);
        for (var k = 0u; k < P.n; k++) {
            acc = add_to(acc, in_f32(load(first + k * P.stride)));
        }
        // A NaN, an infinity or an f32 overflow leaves `hi` NaN or infinite (and `lo`
        // perhaps NaN): the result is `hi`, as the f64 sum cast to f32 would be.
        var total = acc.x + acc.y;
        if (!(abs(acc.x) < 3.4e38)) {
            total = acc.x;
        }
        if (METHOD == 3u) {
            total = total / f32(P.n);
        }
        return out_from_f32(total);
    }
    var best = load(first);
    for (var k = 1u; k < P.n; k++) {
        if (in_is_nan(best)) {
            break;
        }
        let x = load(first + k * P.stride);
        if (in_is_nan(x) || (METHOD == 0u && x > best) || (METHOD == 1u && x < best)) {
            best = x;
        }
    }
    return best;
}
