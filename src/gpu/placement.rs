//! Placement and splitting: which stages of a plan run on the device, and how a job
//! too large for one storage binding is cut into parts that fit.

use super::context::GpuContext;
use super::dispatch::{device_bytes, len, pad};
use super::resample;
use crate::dtype::DType;
use crate::plan::Plan;
use crate::region::{AxisSet, Region};
use crate::stage::{DownMethod, Stage, UpMethod};

/// The largest mode window of a packed type (u8, u16, i8, i16) run on the device.
const MAX_PACKED_MODE_WINDOW: usize = 192;

/// Whether stage `k` of `plan` runs on the device. 64-bit integers have no device
/// type, and stages reading or writing them run on the host. Nor has float64: stages
/// reading or writing it run on the host, except a stencil, which reads its input
/// as f32 on both backends (and a normalisation, which computes in f32). Exact integer means and linear weights need divisors
/// below 2^31.
pub(super) fn on_device(plan: &Plan, k: usize) -> bool {
    let stage = &plan.stages()[k];
    let (input, output) = (plan.dtype_at(k), plan.dtype_at(k + 1));
    let wide_int = |d: DType| matches!(d, DType::U64 | DType::I64);
    if output == DType::F64
        || wide_int(input)
        || wide_int(output)
        || (input == DType::F64 && !matches!(stage, Stage::Stencil(_) | Stage::Normalize { .. }))
    {
        return false;
    }
    match stage {
        // Richardson–Lucy's iterations run with the CPU kernels.
        Stage::Deconvolve(_) => false,
        // Matrix maps and zooms at order 0 or 1 in `constant` mode, in float64 (see
        // gpu/geometry.rs).
        Stage::Geometric(g) => super::geometry::supported(g, plan.shape_at(k)),
        Stage::Downsample {
            factor,
            method: DownMethod::Mean,
        } => factor.iter().map(|&f| f as u64).product::<u64>() <= resample::MAX_DIVISOR,
        // Exact linear weights need the denominator below 2^31.
        Stage::Upsample {
            factor,
            method: UpMethod::Linear,
        } => crate::stage::denominator(&pad(factor, 1)) <= resample::MAX_DIVISOR,
        // Nearest reads no weight, but its table holds 2f in 32 bits too.
        Stage::Upsample { factor, .. } => factor.iter().all(|&f| 2 * (f as u64) < u32::MAX as u64),
        // The mode compares every pair of a window's elements. On lavapipe (Mesa 22.3,
        // LLVM 15), packed types (several outputs per invocation) with windows of 256
        // elements came back wrong, while 192-element windows and one output per
        // invocation were right: such windows run on the host.
        Stage::Downsample {
            factor,
            method: DownMethod::Mode,
        } => input.size() == 4 || factor.iter().product::<usize>() <= MAX_PACKED_MODE_WINDOW,
        Stage::Rank(r) => r.taps() <= super::rank::MAX_TAPS,
        // Sums of separable filters whose terms have the same passes' shapes and modes
        // (the Laplacian and gradient magnitude of a Gaussian: every term reads the same
        // footprint), each term's passes and its accumulation on the device.
        Stage::Derivatives { terms, .. } => {
            // (Terms in different modes, scipy's per-axis modes, read different
            // footprints: those run on the host.)
            let shapes =
                |t: &Vec<crate::stage::Stencil>| -> Vec<(Vec<usize>, crate::boundary::Boundary)> {
                    t.iter().map(|st| (st.shape.clone(), st.mode)).collect()
                };
            !terms.is_empty()
                && terms
                    .iter()
                    .all(|t| !t.is_empty() && shapes(t) == shapes(&terms[0]))
        }
        // Every projection of float32 and maxima and minima of any type on the device
        // (integer sums and means are float64, on the host: checked above).
        _ => true,
    }
}

/// The element type a device stage reads (float64 stencil input is uploaded as f32).
pub(super) fn device_input(plan: &Plan, k: usize) -> DType {
    match plan.dtype_at(k) {
        DType::F64 => DType::F32,
        d => d,
    }
}

/// Whether every stage runs on the device.
pub(super) fn all_on_device(plan: &Plan) -> bool {
    (0..plan.stages().len()).all(|k| on_device(plan, k))
}

/// Whether every device stage's input and output fit in one binding.
pub(super) fn fits(ctx: &GpuContext, plan: &Plan, sets: &[Vec<AxisSet>]) -> bool {
    let max = ctx.max_binding_size();
    (0..plan.stages().len()).all(|k| {
        !on_device(plan, k)
            || (device_bytes(len(&sets[k]), device_input(plan, k)) <= max
                && device_bytes(len(&sets[k + 1]), plan.dtype_at(k + 1)) <= max)
    })
}

/// Cuts `region` (of the output) until every part fits in one binding: halves along
/// the longest axis. A single element that still does not fit is returned as is,
/// marked as not fitting.
pub(super) fn split(
    ctx: &GpuContext,
    plan: &Plan,
    region: Region,
    parts: &mut Vec<(Region, bool)>,
) {
    if fits(ctx, plan, &plan.sets_for(&region)) {
        parts.push((region, true));
        return;
    }
    let axis = (0..region.ndim())
        .max_by_key(|&a| region.shape[a])
        .expect("at least one axis");
    let n = region.shape[axis];
    if n <= 1 {
        parts.push((region, false));
        return;
    }
    let mut first = region.clone();
    first.shape[axis] = n / 2;
    let mut second = region;
    second.start[axis] += n / 2;
    second.shape[axis] = n - n / 2;
    split(ctx, plan, first, parts);
    split(ctx, plan, second, parts);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProjectMethod;
    use crate::ops::{Op, Pipeline};

    #[test]
    fn float32_sums_and_means_run_on_the_device_and_integer_ones_on_the_host() {
        for (dtype, method, device) in [
            (DType::F32, ProjectMethod::Mean, true),
            (DType::F32, ProjectMethod::Sum, true),
            (DType::U16, ProjectMethod::Max, true),
            (DType::U16, ProjectMethod::Mean, false),
            (DType::I32, ProjectMethod::Sum, false),
        ] {
            let pipeline = Pipeline::from(Op::Project {
                axis: 0,
                method,
                keepdims: true,
            });
            let plan = Plan::new(&pipeline, &[4, 5], dtype, &[1, 5], &[1, 5]).unwrap();
            assert_eq!(on_device(&plan, 0), device, "{method:?} of {dtype}");
        }
    }

    #[test]
    fn matrix_maps_and_zooms_at_orders_0_and_1_in_constant_mode_run_on_the_device() {
        use crate::ops::Interp;
        use crate::stage::InterpMode;
        let rotate = |order: usize, mode: InterpMode| Op::Rotate {
            angle: 30.0,
            axes: [1, 2],
            reshape: true,
            interp: Interp {
                mode,
                ..Interp::order(order)
            },
        };
        let zoom = Op::Zoom {
            zoom: vec![1.5],
            grid_mode: false,
            interp: Interp::order(1),
        };
        for (op, device) in [
            (rotate(0, InterpMode::Constant), true),
            (rotate(1, InterpMode::Constant), true),
            (rotate(3, InterpMode::Constant), false),
            (rotate(1, InterpMode::Nearest), false),
            (zoom, true),
        ] {
            let pipeline = Pipeline::from(op.clone());
            let plan = Plan::new(&pipeline, &[4, 5, 6], DType::F32, &[4, 5, 6], &[4, 5, 6]);
            assert_eq!(on_device(&plan.unwrap(), 0), device, "{op:?}");
        }
    }
}
