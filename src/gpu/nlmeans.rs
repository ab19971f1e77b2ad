//! Non-local means on the device: `shaders/nlmeans.wgsl`, twin of `cpu/nlmeans.rs`
//! (fast mode in f32 there, f64 on the host). Its tables map each axis's padded
//! coordinates to input offsets and each output position to its padded coordinate.

use bytemuck::{Pod, Zeroable};

use super::dispatch::{AXES, Dispatch, axes};
use super::shader::Shader;
use crate::block::c_strides;
use crate::region::AxisSet;
use crate::stage::NlMeans;

/// The parameters of `nlmeans.wgsl`, kept in sync with its `NlMeansParams` (checked
/// against the WGSL by a test in `shader.rs`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct NlMeansParams {
    count: u32,
    /// `1 / (h² s^n)`.
    inv: f32,
    /// `(s - 1)^n · 2σ²`, subtracted from each box sum.
    subtract: f32,
    /// `2σ²`.
    var2: f32,
    /// Where classic mode's patch weights start in the table buffer.
    kernel: u32,
    /// Bit `a`: axis `a` is filtered.
    filtered: u32,
    pad: [u32; 2],
    /// Output extents.
    lens: [u32; AXES],
    /// Per axis, where its padded coordinates' input offsets start in the tables.
    base: [u32; AXES],
    /// Per axis, where its output positions' padded coordinates start.
    opos: [u32; AXES],
    /// The search window's radius.
    dist: [u32; AXES],
    /// The patch's radius.
    off: [u32; AXES],
    /// The array index of padded coordinate 0.
    origin: [i32; AXES],
    /// The array's extents.
    extent: [u32; AXES],
}

const _: () = assert!(std::mem::size_of::<NlMeansParams>() == 32 + 7 * 4 * AXES);

/// Non-local means `nl` at the output indices `out` of an input block over `in_sets`
/// (an array of `in_shape`), all with [`AXES`] axes.
pub(super) fn nl_means(
    nl: &NlMeans,
    in_sets: &[AxisSet],
    out: &[AxisSet],
    in_shape: &[usize],
) -> Dispatch {
    let strides = c_strides(&in_sets.iter().map(AxisSet::len).collect::<Vec<_>>());
    let r = nl.radius();
    let first = AXES - nl.axes;
    let mut tab: Vec<u32> = Vec::new();
    let (mut base, mut opos) = ([0u32; AXES], [0u32; AXES]);
    let (mut dist, mut off, mut origin) = ([0u32; AXES], [0u32; AXES], [0i32; AXES]);
    let position = |a: usize, i: usize| {
        (in_sets[a]
            .position(i)
            .expect("the input holds the footprint")
            * strides[a]) as u32
    };
    for a in 0..AXES {
        let filtered = a >= first;
        base[a] = tab.len() as u32;
        if filtered {
            let b = out[a].bounds();
            let lo = b.start as i64 - r as i64;
            tab.extend(
                nl.padded_positions(&in_sets[a], &b, in_shape[a])
                    .into_iter()
                    .map(|p| (p * strides[a]) as u32),
            );
            opos[a] = tab.len() as u32;
            tab.extend(out[a].iter().map(|i| (i as i64 - lo) as u32));
            dist[a] = nl.distance as u32;
            off[a] = (nl.patch / 2) as u32;
            origin[a] = lo as i32;
        } else {
            tab.extend(out[a].iter().map(|i| position(a, i)));
            opos[a] = tab.len() as u32;
            tab.extend(0..out[a].len() as u32);
        }
    }
    // Classic mode's patch weights (C order over the patch).
    let kernel_at = tab.len() as u32;
    if !nl.fast {
        tab.extend(nl.classic_weights().iter().map(|w| w.to_bits()));
    }
    let lens: Vec<usize> = out.iter().map(AxisSet::len).collect();
    let count = lens.iter().product::<usize>() as u32;
    let box_count = (nl.patch - 1).pow(nl.axes as u32) as f64;
    let var2 = 2.0 * nl.sigma * nl.sigma;
    let params = NlMeansParams {
        count,
        inv: (1.0 / (nl.h * nl.h * nl.patch.pow(nl.axes as u32) as f64)) as f32,
        subtract: (box_count * var2) as f32,
        var2: var2 as f32,
        kernel: kernel_at,
        filtered: (first..AXES).fold(0, |m, a| m | 1 << a),
        pad: [0; 2],
        lens: axes(lens.iter().copied()),
        base,
        opos,
        dist,
        off,
        origin,
        extent: axes(in_shape.iter().copied()),
    };
    Dispatch::new(Shader::NlMeans, &params, tab, count)
        .with_method(u32::from(!nl.fast))
        .with_compiled_in(vec![params.filtered, off[2], off[3], off[4]])
}
