// Projections on the device: the maximum or minimum along one axis (numpy's
// `x.max(axis)`, `x.min(axis)`), the type kept, a NaN winning. Twin of cpu/project.rs
// for max and min (means and sums, summed in f64 there, run on the host).
//
// METHOD (compiled in): 0 for the maximum, 1 for the minimum.

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

fn compute(e: u32) -> Out {
    let i = unravel(e, P.lens);
    let s = P.strides;
    let first = i.i0 * s[0] + i.i1 * s[1] + i.i2 * s[2] + i.i3 * s[3] + i.i4 * s[4];
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
