//! Downsample and upsample: window and corner tables and parameters for
//! `shaders/downsample.wgsl` and `shaders/upsample.wgsl`. Twin of `cpu/resample.rs`.

use bytemuck::{Pod, Zeroable};

use super::job::{AXES, Dispatch, axes};
use super::shader::Kernel;
use crate::block::c_strides;
use crate::region::AxisSet;
use crate::stage::{DownMethod, UpMethod, linear_source, linear_weights};

/// Largest window (downsample mean) or weight denominator (upsample linear) the
/// shaders' exact integer arithmetic handles; beyond it the stage runs on the host.
pub(super) const MAX_DIVISOR: u64 = (1 << 31) - 1;

/// Mirrors `Params` in `downsample.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct DownParams {
    count: u32,
    pad: [u32; 3],
    lens: [u32; AXES],
    strides: [u32; AXES],
    base: [u32; AXES],
}

/// Mirrors `Params` in `upsample.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct UpParams {
    count: u32,
    denom: u32,
    pad: [u32; 2],
    lens: [u32; AXES],
    base: [u32; AXES],
}

fn position(held: &AxisSet, index: usize) -> usize {
    held.position(index)
        .expect("planner bug: a footprint misses an index")
}

/// Reduces windows of `factor` input elements; `out` indexes the output (all with
/// [`AXES`] axes).
pub(super) fn downsample(
    in_sets: &[AxisSet],
    out: &[AxisSet],
    in_shape: &[usize],
    factor: &[usize],
    method: DownMethod,
) -> Dispatch {
    let ndim = out.len();
    let strides = c_strides(&in_sets.iter().map(AxisSet::len).collect::<Vec<_>>());
    let mut tab = Vec::new();
    let mut base = [0u32; AXES];
    for a in 0..ndim {
        base[a] = tab.len() as u32;
        for o in out[a].iter() {
            let start = o * factor[a];
            let len = factor[a].min(in_shape[a] - start);
            tab.push((position(&in_sets[a], start) * strides[a]) as u32);
            tab.push(len as u32);
        }
    }
    let count = out.iter().map(AxisSet::len).product::<usize>() as u32;
    let method = match method {
        DownMethod::Mean => 0,
        DownMethod::Max => 1,
        DownMethod::Min => 2,
        DownMethod::Stride => 3,
        DownMethod::Mode => 4,
    };
    let params = DownParams {
        count,
        pad: [0; 3],
        lens: axes(out.iter().map(AxisSet::len)),
        strides: axes(strides.iter().copied()),
        base,
    };
    Dispatch::new(Kernel::Downsample, &params, tab, count).with_method(method)
}

/// Expands by `factor`; `out` indexes the output (all with [`AXES`] axes).
pub(super) fn upsample(
    in_sets: &[AxisSet],
    out: &[AxisSet],
    in_shape: &[usize],
    factor: &[usize],
    method: UpMethod,
) -> Dispatch {
    let ndim = out.len();
    let strides = c_strides(&in_sets.iter().map(AxisSet::len).collect::<Vec<_>>());
    let mut tab = Vec::new();
    let mut base = [0u32; AXES];
    for a in 0..ndim {
        base[a] = tab.len() as u32;
        let f = factor[a];
        let offset = |i: usize| (position(&in_sets[a], i) * strides[a]) as u32;
        for o in out[a].iter() {
            let corners = match method {
                UpMethod::Nearest => [offset(o / f), 2 * f as u32, 0, 0],
                UpMethod::Linear => {
                    let (i0, i1) = linear_source(o, f, in_shape[a]);
                    let (_, m) = linear_weights(o, f);
                    [offset(i0), (2 * f as i64 - m) as u32, offset(i1), m as u32]
                }
            };
            tab.extend_from_slice(&corners);
        }
    }
    let count = out.iter().map(AxisSet::len).product::<usize>() as u32;
    let params = UpParams {
        count,
        denom: denominator(factor) as u32,
        pad: [0; 2],
        lens: axes(out.iter().map(AxisSet::len)),
        base,
    };
    Dispatch::new(Kernel::Upsample, &params, tab, count).with_method(match method {
        UpMethod::Nearest => 0,
        UpMethod::Linear => 1,
    })
}

/// The weight denominator of an upsample: the product of `2f` over the axes.
pub(super) fn denominator(factor: &[usize]) -> u64 {
    factor
        .iter()
        .map(|&f| 2 * f as u64)
        .fold(1u64, u64::saturating_mul)
}
