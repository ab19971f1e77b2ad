//! Downsample and upsample on the device: `shaders/downsample.wgsl` and
//! `shaders/upsample.wgsl`, twins of `cpu/resample.rs`. Their tables come from
//! [`windows`] and [`corners`], the builders the CPU kernels use too.

use bytemuck::{Pod, Zeroable};

use super::dispatch::{AXES, Dispatch, axes, axes_above_one};
use super::shader::Shader;
use crate::block::c_strides;
use crate::region::AxisSet;
use crate::stage::{DownMethod, UpMethod, corners, denominator, windows};

/// Largest window (downsample mean) or weight denominator (upsample) the shaders'
/// exact integer arithmetic handles; beyond it the stage runs on the host.
pub(super) const MAX_DIVISOR: u64 = (1 << 31) - 1;

/// The parameters of `downsample.wgsl`, kept in sync with its `DownsampleParams`
/// (checked against the WGSL by a test in `shader.rs`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct DownsampleParams {
    /// Output elements.
    count: u32,
    pad: [u32; 3],
    /// Output extents.
    lens: [u32; AXES],
    /// Input strides, in elements.
    strides: [u32; AXES],
    /// Where each axis's windows start in the table buffer (in words).
    base: [u32; AXES],
}

const _: () = assert!(std::mem::size_of::<DownsampleParams>() == 16 + 3 * 4 * AXES);

/// The parameters of `upsample.wgsl`, kept in sync with its `UpsampleParams` (checked
/// against the WGSL by a test in `shader.rs`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct UpsampleParams {
    /// Output elements.
    count: u32,
    /// The weights' denominator: the product of `2f` over the axes.
    denom: u32,
    pad: [u32; 2],
    /// Output extents.
    lens: [u32; AXES],
    /// Where each axis's corners start in the table buffer (in words).
    base: [u32; AXES],
}

const _: () = assert!(std::mem::size_of::<UpsampleParams>() == 16 + 2 * 4 * AXES);

/// Reduces windows of `factor` input elements; `out` indexes the output (all with
/// [`AXES`] axes). The table buffer holds each axis's [`windows`].
pub(super) fn downsample(
    in_sets: &[AxisSet],
    out: &[AxisSet],
    in_shape: &[usize],
    factor: &[usize],
    method: DownMethod,
) -> Dispatch {
    assert!(
        (0..out.len()).all(|a| factor[a] > 1 || in_sets[a] == out[a]),
        "planner bug: a resampling input differs from its output on an axis of factor 1"
    );
    let strides = c_strides(&in_sets.iter().map(AxisSet::len).collect::<Vec<_>>());
    let mut tab = Vec::new();
    let mut base = [0u32; AXES];
    for a in 0..out.len() {
        base[a] = tab.len() as u32;
        let table = windows::<u32>(&in_sets[a], strides[a], &out[a], in_shape[a], factor[a]);
        tab.extend_from_slice(bytemuck::cast_slice(&table));
    }
    let count = out.iter().map(AxisSet::len).product::<usize>() as u32;
    let params = DownsampleParams {
        count,
        pad: [0; 3],
        lens: axes(out.iter().map(AxisSet::len)),
        strides: axes(strides.iter().copied()),
        base,
    };
    // The factors are compiled in: whole windows are walked with constant bounds.
    let factors = factor.iter().map(|&f| f as u32).collect();
    Dispatch::new(Shader::Downsample, &params, tab, count)
        .with_method(method as u32 | reduced_axes(factor))
        .with_compiled_in(factors)
}

/// Expands by `factor`; `out` indexes the output (all with [`AXES`] axes). The table
/// buffer holds each axis's [`corners`].
pub(super) fn upsample(
    in_sets: &[AxisSet],
    out: &[AxisSet],
    in_shape: &[usize],
    factor: &[usize],
    method: UpMethod,
) -> Dispatch {
    let strides = c_strides(&in_sets.iter().map(AxisSet::len).collect::<Vec<_>>());
    let mut tab = Vec::new();
    let mut base = [0u32; AXES];
    for a in 0..out.len() {
        base[a] = tab.len() as u32;
        let table = corners::<u32>(
            &in_sets[a],
            strides[a],
            &out[a],
            in_shape[a],
            factor[a],
            method,
        );
        tab.extend_from_slice(bytemuck::cast_slice(&table));
    }
    let count = out.iter().map(AxisSet::len).product::<usize>() as u32;
    let params = UpsampleParams {
        count,
        denom: denominator(factor) as u32,
        pad: [0; 2],
        lens: axes(out.iter().map(AxisSet::len)),
        base,
    };
    Dispatch::new(Shader::Upsample, &params, tab, count)
        .with_method(method as u32 | reduced_axes(factor))
}

/// What resampling kernels get above the method's number in `METHOD`: bit 8 + a set
/// where axis `a`'s factor is above 1. On an axis with factor 1, downsample reads the
/// output's own position (its input holds exactly the output's indices there, as the
/// planner's footprints do: checked), and upsample reads only the lower source.
fn reduced_axes(factor: &[usize]) -> u32 {
    axes_above_one(factor) << 8
}
