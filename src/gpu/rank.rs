//! Rank filters on the device: `shaders/rank.wgsl`, twin of `cpu/rank.rs`. Its tap
//! tables are the stencil's ([`stencil::tables`](super::stencil)), and its selection
//! network the CPU's ([`Rank::network`]), written out into the pipeline's code.

use bytemuck::{Pod, Zeroable};

use super::dispatch::{AXES, Dispatch, axes};
use super::pointwise::element_bits;
use super::shader::Shader;
use super::stencil::Tables;
use crate::dtype::DType;
use crate::region::AxisSet;
use crate::stage::Rank;

/// The parameters of `rank.wgsl`, kept in sync with its `RankParams` (checked against
/// the WGSL by a test in `shader.rs`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct RankParams {
    /// Output elements.
    count: u32,
    /// The constant of `constant` mode, as the bits of the shader's `In`.
    cval: u32,
    pad: [u32; 2],
    /// Output extents.
    lens: [u32; AXES],
    /// Footprint extents.
    shape: [u32; AXES],
    /// Where each axis's tap table starts in the table buffer.
    base: [u32; AXES],
    /// Where each axis's first-tap offsets start in the table buffer.
    firsts: [u32; AXES],
    /// Input strides, in elements.
    strides: [u32; AXES],
}

const _: () = assert!(std::mem::size_of::<RankParams>() == 16 + 5 * 4 * AXES);

/// Footprints of at most this many taps run on the device (the network is written out
/// into the pipeline: 125 taps, a 5×5×5 box, is about 1,500 comparators); larger
/// ones run on the host.
pub(super) const MAX_TAPS: usize = 125;

/// The `rank`-th smallest under `r`'s footprint for the output indices `out` of an
/// input block over `in_sets` (an array of `in_shape`), all with [`AXES`] axes, in
/// elements of `dtype`.
///
/// Compiled in: the number of taps, the rank, the comparators, and each tap's position
/// in the footprint (see [`super::shader::source`]).
pub(super) fn rank(
    r: &Rank,
    in_sets: &[AxisSet],
    out: &[AxisSet],
    in_shape: &[usize],
    dtype: DType,
) -> Dispatch {
    let Tables {
        tab,
        base,
        firsts,
        strides,
    } = Tables::new(&r.window, in_sets, out, in_shape);
    let lens: Vec<usize> = out.iter().map(AxisSet::len).collect();
    let count = lens.iter().product::<usize>() as u32;
    let params = RankParams {
        count,
        cval: element_bits(dtype, r.cval),
        pad: [0; 2],
        lens: axes(lens.iter().copied()),
        shape: axes(r.window.shape.iter().copied()),
        base,
        firsts,
        strides,
    };
    let network = r.network();
    let mut compiled = vec![r.taps() as u32, r.rank as u32, network.len() as u32];
    for (t, &w) in r.window.weights.iter().enumerate() {
        if w != 0.0 {
            compiled.extend(
                crate::region::unravel(t, &r.window.shape)
                    .into_iter()
                    .map(|k| k as u32),
            );
        }
    }
    for c in network {
        compiled.extend([
            c.lo as u32,
            c.hi as u32,
            u32::from(c.min) | u32::from(c.max) << 1,
        ]);
    }
    Dispatch::new(Shader::Rank, &params, tab, count).with_compiled_in(compiled)
}
