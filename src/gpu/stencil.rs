//! N-D correlation: tap tables and parameters for `shaders/stencil.wgsl`. Twin of
//! `cpu/stencil.rs`, whose tables this builds the same way (the boundary mode folded
//! in, `NONE` standing for `cval`).

use bytemuck::{Pod, Zeroable};

use super::job::{AXES, Dispatch, NONE, axes};
use super::shader::Kernel;
use crate::block::c_strides;
use crate::region::AxisSet;
use crate::stage::Stencil;

/// Mirrors `Params` in `stencil.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct StencilParams {
    count: u32,
    weights: u32,
    cval: f32,
    pad: u32,
    lens: [u32; AXES],
    shape: [u32; AXES],
    base: [u32; AXES],
}

/// Correlates an input block over `in_sets` (an array of `in_shape`) with `st`,
/// writing the output indices `out` (all with [`AXES`] axes).
pub(super) fn stencil(
    st: &Stencil,
    in_sets: &[AxisSet],
    out: &[AxisSet],
    in_shape: &[usize],
) -> Dispatch {
    let ndim = out.len();
    let last = ndim - 1;
    let strides = c_strides(&in_sets.iter().map(AxisSet::len).collect::<Vec<_>>());
    let mut tab: Vec<u32> = Vec::new();
    let mut base = [0u32; AXES];
    for a in 0..ndim {
        base[a] = tab.len() as u32;
        // Rank in the input block of every array index on this axis (the input set
        // is exactly what the taps need, so each lookup succeeds).
        let held = &in_sets[a];
        for o in out[a].iter() {
            for d in st.offsets(a) {
                let entry = st.mode.map(o as i64 + d, in_shape[a]).map(|i| {
                    let p = held
                        .position(i)
                        .expect("planner bug: a stencil tap is missing from the footprint");
                    // Leading axes: element offset of the row; last axis: position.
                    (if a == last { p } else { p * strides[a] }) as u32
                });
                tab.push(entry.unwrap_or(NONE));
            }
        }
    }
    let weights = tab.len() as u32;
    tab.extend(st.weights.iter().map(|w| w.to_bits()));
    let count = out.iter().map(AxisSet::len).product::<usize>() as u32;
    let params = StencilParams {
        count,
        weights,
        cval: st.cval,
        pad: 0,
        lens: axes(out.iter().map(AxisSet::len)),
        shape: axes(st.shape.iter().copied()),
        base,
    };
    Dispatch::new(Kernel::Stencil, &params, tab, count)
}
