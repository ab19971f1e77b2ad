//! N-D correlation on the device: `shaders/stencil.wgsl`, twin of `cpu/stencil.rs`.
//! Its tap tables come from [`tap_table`], the builder the CPU kernel uses too.

use bytemuck::{Pod, Zeroable};

use super::job::{AXES, Dispatch, axes};
use super::shader::Shader;
use crate::block::c_strides;
use crate::region::AxisSet;
use crate::stage::{Stencil, tap_table};

/// The parameters of `stencil.wgsl`, kept in sync with its `StencilParams` (checked
/// against the WGSL by a test in `shader.rs`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct StencilParams {
    /// Output elements.
    count: u32,
    /// Where the weights start in the table buffer.
    weights: u32,
    /// The constant of `constant` mode.
    cval: f32,
    pad: u32,
    /// Output extents.
    lens: [u32; AXES],
    /// Stencil extents.
    shape: [u32; AXES],
    /// Where each axis's tap table starts in the table buffer.
    base: [u32; AXES],
}

const _: () = assert!(std::mem::size_of::<StencilParams>() == 16 + 3 * 4 * AXES);

/// Correlates an input block over `in_sets` (an array of `in_shape`) with `st`,
/// writing the output indices `out` (all with [`AXES`] axes).
///
/// The table buffer holds each axis's [`tap_table`] (element offsets; the last axis'
/// stride is 1, so there they are positions), then the weights as f32 bits.
pub(super) fn stencil(
    st: &Stencil,
    in_sets: &[AxisSet],
    out: &[AxisSet],
    in_shape: &[usize],
) -> Dispatch {
    let strides = c_strides(&in_sets.iter().map(AxisSet::len).collect::<Vec<_>>());
    let mut tab: Vec<u32> = Vec::new();
    let mut base = [0u32; AXES];
    for a in 0..out.len() {
        base[a] = tab.len() as u32;
        let table = tap_table::<u32>(st, a, &in_sets[a], strides[a], &out[a], in_shape[a]);
        tab.extend_from_slice(&table.entries);
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
    Dispatch::new(Shader::Stencil, &params, tab, count)
}
