//! N-D correlation on the device: `shaders/stencil.wgsl`, twin of `cpu/stencil.rs`.
//! Its tap tables come from [`tap_table`], the builder the CPU kernel uses too.

use bytemuck::{Pod, Zeroable};

use super::dispatch::{AXES, Dispatch, axes, axes_above_one};
use super::shader::{MARCH, Shader};
use crate::block::c_strides;
use crate::region::AxisSet;
use crate::stage::{Offset, Stencil, tap_table};

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
    /// Output rows: the product of the leading extents.
    rows: u32,
    /// Output extents.
    lens: [u32; AXES],
    /// Stencil extents.
    shape: [u32; AXES],
    /// Where each axis's tap table starts in the table buffer.
    base: [u32; AXES],
    /// Where each axis's first-tap offsets start in the table buffer.
    firsts: [u32; AXES],
    /// Input strides, in elements.
    strides: [u32; AXES],
    /// The outputs along axis 2 whose taps are all inside the array (first and end),
    /// where a marching stencil walks in blocks (`fn marched`); 0 and 0 otherwise.
    inside: [u32; 2],
}

const _: () = assert!(std::mem::size_of::<StencilParams>() == 16 + 5 * 4 * AXES + 8);

/// Correlates an input block over `in_sets` (an array of `in_shape`) with `st`,
/// writing the output indices `out` (all with [`AXES`] axes).
///
/// The table buffer holds each axis's [`tap_table`] (element offsets; the last axis'
/// stride is 1, so there they are positions), then each axis's first-tap offsets
/// ([`TapTable::firsts`](crate::stage::TapTable::firsts)), then the weights as f32
/// bits. The pipeline is compiled per mask of the axes with more than one tap.
pub(super) fn stencil(
    st: &Stencil,
    in_sets: &[AxisSet],
    out: &[AxisSet],
    in_shape: &[usize],
) -> Dispatch {
    // The kernel computes one-tap axes' offsets from the output index: the input must
    // hold exactly the output's indices there (as the planner's footprints do).
    assert!(
        (0..out.len()).all(|a| st.shape[a] > 1 || in_sets[a] == out[a]),
        "planner bug: a stencil's input differs from its output on an axis without taps"
    );
    let Tables {
        mut tab,
        base,
        firsts,
        strides,
    } = Tables::new(st, in_sets, out, in_shape);
    let weights = tab.len() as u32;
    tab.extend(st.weights.iter().map(|w| w.to_bits()));
    let lens: Vec<usize> = out.iter().map(AxisSet::len).collect();
    let count = lens.iter().product::<usize>() as u32;
    let rows = lens[..AXES - 1].iter().product::<usize>() as u32;
    let mask = axes_above_one(&st.shape);
    let march = st.weights.len() > MAX_WRITTEN_OUT && mask == DENSE_LAST_THREE;
    // Along axis 2, the outputs from the first to the last whose taps are all inside.
    let inside = if march {
        let set = |f: &u32| *f != <u32 as Offset>::NONE;
        let along = &tab[firsts[2] as usize..][..lens[2]];
        let lo = along.iter().position(set).unwrap_or(0);
        let hi = along.iter().rposition(set).map_or(lo, |h| h + 1);
        [lo as u32, hi as u32]
    } else {
        [0, 0]
    };
    let params = StencilParams {
        count,
        weights,
        cval: st.cval,
        rows,
        lens: axes(lens.iter().copied()),
        shape: axes(st.shape.iter().copied()),
        base,
        firsts,
        strides,
        inside,
    };
    let dispatch = Dispatch::new(Shader::Stencil, &params, tab, count).with_method(mask);
    if march {
        // Marching along axis 2: one workgroup row per output near the edge there, and
        // per block of MARCH outputs inside.
        let [lo, hi] = inside.map(|i| i as usize);
        let blocks = lo + (hi - lo).div_ceil(MARCH) + (lens[2] - hi);
        let rows = lens[0] * lens[1] * blocks * lens[3];
        let shape = st.shape.iter().map(|&n| n as u32).collect();
        return dispatch
            .with_rows(lens[AXES - 1] as u32, rows as u32)
            .with_compiled_in(shape);
    }
    let dispatch = dispatch.with_rows(lens[AXES - 1] as u32, rows);
    if st.weights.len() <= MAX_WRITTEN_OUT {
        let shape = st.shape.iter().map(|&n| n as u32);
        let weights = st.weights.iter().map(|w| w.to_bits());
        dispatch.with_compiled_in(shape.chain(weights).collect())
    } else {
        dispatch
    }
}

/// The mask of a stencil with several taps along each of the last three axes, and one
/// along the others: dense 3-D kernels, which march (`fn march` in `shader.rs`).
const DENSE_LAST_THREE: u32 = 0b11100;

/// Stencils of at most this many taps get their walk inside the array written out tap
/// by tap, weights as constants (a pipeline per weight set); larger ones loop.
const MAX_WRITTEN_OUT: usize = 64;

/// A stencil's (or a rank filter's window's) tables, as `stencil.wgsl` and
/// `rank.wgsl` read them: each axis's [`tap_table`] (element offsets; the last axis'
/// stride is 1, so there they are positions), then each axis's first-tap offsets
/// ([`TapTable::firsts`](crate::stage::TapTable::firsts)).
pub(super) struct Tables {
    /// The table buffer's words.
    pub tab: Vec<u32>,
    /// Where each axis's tap table starts.
    pub base: [u32; AXES],
    /// Where each axis's first-tap offsets start.
    pub firsts: [u32; AXES],
    /// The input block's strides, in elements.
    pub strides: [u32; AXES],
}

impl Tables {
    /// The tables of `st` reading an input block over `in_sets` (an array of
    /// `in_shape`) for the output indices `out`, all with [`AXES`] axes.
    pub(super) fn new(
        st: &Stencil,
        in_sets: &[AxisSet],
        out: &[AxisSet],
        in_shape: &[usize],
    ) -> Tables {
        let strides = c_strides(&in_sets.iter().map(AxisSet::len).collect::<Vec<_>>());
        let tables: Vec<_> = (0..out.len())
            .map(|a| tap_table::<u32>(st, a, &in_sets[a], strides[a], &out[a], in_shape[a]))
            .collect();
        let mut tab: Vec<u32> = Vec::new();
        let mut base = [0u32; AXES];
        for (a, table) in tables.iter().enumerate() {
            base[a] = tab.len() as u32;
            tab.extend_from_slice(&table.entries);
        }
        let mut firsts = [0u32; AXES];
        for (a, table) in tables.iter().enumerate() {
            firsts[a] = tab.len() as u32;
            tab.extend(table.firsts(strides[a]));
        }
        Tables {
            tab,
            base,
            firsts,
            strides: axes(strides.iter().copied()),
        }
    }
}
