//! Geometric resampling on the device: `shaders/geometry.wgsl`, the twin of
//! `cpu/geometry.rs` for matrix maps (`affine`, `rotate`, `deskew`) and zooms at
//! spline order 0 or 1 in scipy's `constant` mode, computed in float64 (the device's SHADER_F64) with
//! the CPU's operations in the CPU's order. Other transforms, orders and modes run on
//! the host.

use std::sync::atomic::{AtomicBool, Ordering};

use bytemuck::{Pod, Zeroable};

use super::dispatch::{AXES, Dispatch, axes};
use super::shader::Shader;
use crate::block::c_strides;
use crate::dtype::DType;
use crate::region::AxisSet;
use crate::stage::{Geometric, InterpMode, Map};

/// Whether every device opened so far runs float64 shaders: geometric stages go to the
/// device only then (a device without SHADER_F64 clears it for the process).
static FLOAT64: AtomicBool = AtomicBool::new(true);

/// Records whether a device just opened has float64 shaders.
pub(super) fn device_opened(float64: bool) {
    if !float64 {
        FLOAT64.store(false, Ordering::Relaxed);
    }
}

/// The parameters of `geometry.wgsl`, kept in sync with its `GeometryParams` (checked
/// against the WGSL by a test in `shader.rs`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct GeometryParams {
    /// Output elements.
    count: u32,
    pad: [u32; 3],
    /// The job's output extents.
    out_lens: [u32; AXES],
    /// The job's first output index per axis (global).
    out_first: [u32; AXES],
    /// The footprint's first input index per axis (global).
    in_first: [u32; AXES],
    /// The footprint's strides, in elements.
    in_strides: [u32; AXES],
    /// The input array's extents.
    n: [u32; AXES],
    pad2: u32,
    /// `in = matrix · out + offset`, row-major 5 × 5.
    matrix: [f64; AXES * AXES],
    offset: [f64; AXES],
    cval: f64,
    /// Subtracted from an integer input's key (2^31 for signed types).
    in_bias: f64,
    /// The output type's range (integers).
    out_min: f64,
    out_max: f64,
    /// Added to an integer output before it becomes a key (2^31 for signed types).
    out_bias: f64,
}

const _: () = assert!(
    std::mem::size_of::<GeometryParams>() == 16 + 20 * AXES + 4 + 8 * (AXES * AXES + AXES + 5)
);

/// Whether `g` reading an input of `in_shape` has a device kernel: a matrix map or a
/// zoom at order 0 or 1 in `constant` mode on a device with float64 shaders, indices within
/// 32 bits.
pub(super) fn supported(g: &Geometric, in_shape: &[usize]) -> bool {
    g.interp.order <= 1
        && g.interp.mode == InterpMode::Constant
        && FLOAT64.load(Ordering::Relaxed)
        && in_shape.len() <= AXES
        && in_shape.iter().all(|&n| n < u32::MAX as usize)
        && g.resolve(in_shape)
            .out_shape
            .iter()
            .all(|&n| n < u32::MAX as usize)
}

/// The launch of `g` from `in_sets` (the footprint, one range per axis) to `out` (one
/// range per axis), both padded to [`AXES`] axes; `in_shape` is the unpadded input's.
pub(super) fn geometric(
    g: &Geometric,
    in_sets: &[AxisSet],
    out: &[AxisSet],
    in_shape: &[usize],
    input: DType,
    output: DType,
) -> Dispatch {
    let r = g.resolve(in_shape);
    let ndim = in_shape.len();
    let lead = AXES - ndim;
    let mut m = [0.0f64; AXES * AXES];
    let mut off = [0.0f64; AXES];
    // A zoom's ratios go on the diagonal (METHOD bit 17; bit 18 on the grid).
    let zoom = match &r.map {
        Map::Matrix { matrix, offset } => {
            for h in 0..ndim {
                off[lead + h] = offset[h];
                for l in 0..ndim {
                    m[(lead + h) * AXES + lead + l] = matrix[h * ndim + l];
                }
            }
            0
        }
        Map::Zoom { ratio, grid_mode } => {
            for h in 0..ndim {
                m[(lead + h) * AXES + lead + h] = ratio[h];
            }
            if *grid_mode { 0b11 << 17 } else { 1 << 17 }
        }
    };
    // Leading padded axes pass through, as do the map's own through axes.
    let mut through = (0..lead).fold(0u32, |t, a| t | 1 << a);
    for (h, &t) in r.through.iter().enumerate() {
        if t {
            through |= 1 << (lead + h);
        }
    }
    for (a, s) in in_sets.iter().chain(out).enumerate() {
        assert_eq!(
            s.runs().len(),
            1,
            "planner bug: a device geometric stage's sets are ranges (axis {a})"
        );
    }
    let in_lens: Vec<usize> = in_sets.iter().map(AxisSet::len).collect();
    let count = out.iter().map(AxisSet::len).product::<usize>() as u32;
    let (out_min, out_max) = if output.is_float() {
        (f64::NEG_INFINITY, f64::INFINITY)
    } else {
        let (lo, hi) = super::shader::int_range(output);
        (lo as f64, hi as f64)
    };
    let signed = |d: DType| matches!(d, DType::I8 | DType::I16 | DType::I32);
    let bias = |d: DType| if signed(d) { 2147483648.0 } else { 0.0 };
    let params = GeometryParams {
        count,
        pad: [0; 3],
        out_lens: axes(out.iter().map(AxisSet::len)),
        out_first: axes(out.iter().map(|s| s.bounds().start)),
        in_first: axes(in_sets.iter().map(|s| s.bounds().start)),
        in_strides: axes(c_strides(&in_lens).into_iter()),
        n: axes(super::dispatch::pad(in_shape, 1).into_iter()),
        pad2: 0,
        matrix: m,
        offset: off,
        cval: g.interp.cval,
        in_bias: bias(input),
        out_min,
        out_max,
        out_bias: bias(output),
    };
    let float_out = if output.is_float() { 1 << 16 } else { 0 };
    Dispatch::new(Shader::Geometry, &params, vec![0], count)
        .with_method(g.interp.order as u32 | through << 8 | float_out | zoom)
}
