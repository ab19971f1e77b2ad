//! Element-wise kernels on the device (threshold, clip, cast): `shaders/threshold.wgsl`,
//! `clip.wgsl` and `cast.wgsl`, twins of `cpu/pointwise.rs`. No tables: the
//! parameters are all.

use bytemuck::{Pod, Zeroable};

use super::dispatch::{AXES, Dispatch, axes};
use super::shader::Shader;
use crate::dtype::{DType, Element};

/// The parameters of `threshold.wgsl`, kept in sync with its `ThresholdParams`
/// (checked against the WGSL by a test in `shader.rs`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct ThresholdParams {
    /// Output elements.
    count: u32,
    /// 0: compare with `above`; 1: always 1; 2: always 0.
    always: u32,
    /// The threshold, as the bits of an input element (see `threshold_in`).
    above: u32,
    pad: u32,
}

/// The parameters of `clip.wgsl`, kept in sync with its `ClipParams`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct ClipParams {
    /// Output elements.
    count: u32,
    /// The bounds, cast to the element type, as the bits of an input element.
    lo: u32,
    hi: u32,
    pad: u32,
}

/// The parameters of `cast.wgsl`, kept in sync with its `CastParams`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct CastParams {
    /// Output elements.
    count: u32,
    pad: [u32; 3],
}

/// The parameters of `accumulate.wgsl`, kept in sync with its `AccumulateParams`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct AccumulateParams {
    count: u32,
    first: u32,
    square: u32,
    root: u32,
}

/// Adds one term (f32, `count` elements) into the accumulator (the output buffer):
/// the first term to 0, its square if `square`, and the root after it if `root`.
pub(super) fn accumulate(count: u32, first: bool, square: bool, root: bool) -> Dispatch {
    let params = AccumulateParams {
        count,
        first: u32::from(first),
        square: u32::from(square),
        root: u32::from(root),
    };
    Dispatch::new(Shader::Accumulate, &params, Vec::new(), count)
}

/// The parameters of `normalize.wgsl`, kept in sync with its `NormalizeParams`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct NormalizeParams {
    /// Output elements.
    count: u32,
    low: f32,
    /// `high - low + 1e-20`, computed here as the CPU computes it.
    denominator: f32,
    /// 1: clip to `[0, 1]`.
    clip: u32,
}

const _: () = assert!(std::mem::size_of::<NormalizeParams>() == 16);

/// The parameters of `anscombe.wgsl`, kept in sync with its `AnscombeParams`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct AnscombeParams {
    count: u32,
    a: f32,
    b: f32,
    c: f32,
}

const _: () = assert!(std::mem::size_of::<AnscombeParams>() == 16);

/// The parameters of `project.wgsl`, kept in sync with its `ProjectParams`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct ProjectParams {
    /// Output elements.
    count: u32,
    /// Elements along the reduced axis.
    n: u32,
    /// The input stride of the reduced axis.
    stride: u32,
    pad: u32,
    /// Output extents (1 on the reduced axis).
    lens: [u32; AXES],
    /// Input strides.
    strides: [u32; AXES],
}
const _: () = assert!(std::mem::size_of::<ThresholdParams>() == 16);
const _: () = assert!(std::mem::size_of::<ClipParams>() == 16);
const _: () = assert!(std::mem::size_of::<CastParams>() == 16);

/// `v` cast to `d` by the crate's rule, as the bits of the shader's `In` value
/// (integers widened to 32 bits with their sign).
pub(super) fn element_bits(d: DType, v: f64) -> u32 {
    match d {
        DType::U8 => u8::from_f64(v) as u32,
        DType::U16 => u16::from_f64(v) as u32,
        DType::U32 => u32::from_f64(v),
        DType::I8 => i8::from_f64(v) as i32 as u32,
        DType::I16 => i16::from_f64(v) as i32 as u32,
        DType::I32 => i32::from_f64(v) as u32,
        DType::F32 => f32::from_f64(v).to_bits(),
        DType::U64 | DType::I64 | DType::F64 => unreachable!("64-bit stages run on the host"),
    }
}

/// `x > above` (compared in f64 on the CPU) as a comparison in the input's own type:
/// `(always, threshold bits)` with always 0 = compare, 1 = true, 2 = false.
pub(super) fn threshold_in(d: DType, above: f64) -> (u32, u32) {
    if d == DType::F32 {
        // For f32 x: x > above exactly when x > (above rounded toward -inf).
        let mut t = above as f32;
        if t as f64 > above {
            t = t.next_down();
        }
        return (0, t.to_bits());
    }
    // For integer x: x > above exactly when x > floor(above).
    let f = above.floor();
    let (lo, hi) = if matches!(d, DType::I8 | DType::I16 | DType::I32) {
        (i32::MIN as f64, i32::MAX as f64)
    } else {
        (0.0, u32::MAX as f64)
    };
    if f < lo {
        (1, 0)
    } else if f >= hi {
        (2, 0)
    } else if lo < 0.0 {
        (0, f as i32 as u32)
    } else {
        (0, f as u32)
    }
}

pub(super) fn threshold(input: DType, above: f64, count: u32) -> Dispatch {
    let (always, above) = threshold_in(input, above);
    Dispatch::new(
        Shader::Threshold,
        &ThresholdParams {
            count,
            always,
            above,
            pad: 0,
        },
        Vec::new(),
        count,
    )
}

/// Clip's bounds cast to `d`, as the bits of the shader's `In` values.
pub(super) fn clip_bounds(d: DType, min: f64, max: f64) -> (u32, u32) {
    (element_bits(d, min), element_bits(d, max))
}

pub(super) fn clip(input: DType, min: f64, max: f64, count: u32) -> Dispatch {
    let (lo, hi) = clip_bounds(input, min, max);
    Dispatch::new(
        Shader::Clip,
        &ClipParams {
            count,
            lo,
            hi,
            pad: 0,
        },
        Vec::new(),
        count,
    )
}

pub(super) fn cast(count: u32) -> Dispatch {
    Dispatch::new(
        Shader::Cast,
        &CastParams { count, pad: [0; 3] },
        Vec::new(),
        count,
    )
}

/// The generalized Anscombe transform (`inverse`: its closed-form unbiased inverse)
/// with the constants of [`NoiseModel`](crate::stage::NoiseModel).
pub(super) fn anscombe(v: &crate::stage::NoiseModel, inverse: bool, count: u32) -> Dispatch {
    let [a, b, c] = if inverse { v.inverse() } else { v.forward() };
    let params = AnscombeParams { count, a, b, c };
    Dispatch::new(Shader::Anscombe, &params, Vec::new(), count).with_method(u32::from(inverse))
}

/// `(x - low) / (high - low + 1e-20)` in f32, clipped to `[0, 1]` if `clip`.
pub(super) fn normalize(low: f32, high: f32, clip: bool, count: u32) -> Dispatch {
    let params = NormalizeParams {
        count,
        low,
        denominator: crate::cpu::normalize_denominator(low, high),
        clip: u32::from(clip),
    };
    Dispatch::new(Shader::Normalize, &params, Vec::new(), count)
}

/// The projection `method` along `axis` of an input block over `in_sets`, for the
/// output indices `out` (all with [`AXES`] axes; the input holds the whole axis and
/// exactly the output's indices elsewhere, as the planner's footprints do).
pub(super) fn project(
    in_sets: &[crate::region::AxisSet],
    out: &[crate::region::AxisSet],
    axis: usize,
    method: crate::stage::ProjectMethod,
) -> Dispatch {
    use crate::region::AxisSet;
    use crate::stage::ProjectMethod;
    assert!(
        (0..out.len()).all(|a| a == axis || in_sets[a] == out[a]),
        "planner bug: a projection's input differs from its output off the axis"
    );
    let strides = crate::block::c_strides(&in_sets.iter().map(AxisSet::len).collect::<Vec<_>>());
    let lens: Vec<usize> = out.iter().map(AxisSet::len).collect();
    let count = lens.iter().product::<usize>() as u32;
    let params = ProjectParams {
        count,
        n: in_sets[axis].len() as u32,
        stride: strides[axis] as u32,
        pad: 0,
        lens: axes(lens.iter().copied()),
        strides: axes(strides.iter().copied()),
    };
    let code = match method {
        ProjectMethod::Max => 0,
        ProjectMethod::Min => 1,
        ProjectMethod::Sum => 2,
        ProjectMethod::Mean => 3,
    };
    Dispatch::new(Shader::Project, &params, Vec::new(), count).with_method(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_agree_with_the_f64_comparison() {
        for above in [
            -1e40,
            -3.5,
            -0.5,
            0.0,
            0.3,
            2.5,
            7.0,
            1e10,
            5e9,
            f64::INFINITY,
        ] {
            for x in [0u32, 1, 2, 7, 8, u32::MAX] {
                let (always, t) = threshold_in(DType::U32, above);
                let got = match always {
                    1 => true,
                    2 => false,
                    _ => x > t,
                };
                assert_eq!(got, x as f64 > above, "{x} > {above}");
            }
            for x in [i32::MIN, -4, -1, 0, 3, i32::MAX] {
                let (always, t) = threshold_in(DType::I32, above);
                let got = match always {
                    1 => true,
                    2 => false,
                    _ => x > t as i32,
                };
                assert_eq!(got, x as f64 > above, "{x} > {above}");
            }
            let (_, t) = threshold_in(DType::F32, above);
            for x in [f32::MIN, -3.5, 0.1, 0.3, 2.5, 1e10, f32::INFINITY, f32::NAN] {
                assert_eq!(x > f32::from_bits(t), x as f64 > above, "{x} > {above}");
            }
        }
    }
}
