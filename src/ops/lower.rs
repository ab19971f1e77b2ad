//! Lowering: each op's parameters checked against the array's dimensions and turned
//! into the stages a backend runs (a Gaussian into one 1-D stencil per axis, a
//! convolution into one N-D stencil, a rank filter into a rank stage ...).

use crate::boundary::Boundary;
use crate::error::{Error, Result};
use crate::stage::{
    Deconvolution, Geometric, Interpolation, NlMeans, NoiseModel, Stage, Transform,
};

use super::axes::per_axis;
use super::convolve::Kernel;
use super::gaussian;
use super::op::{Edge, Interp, Neighborhood, Op};
use super::rank;
use super::rank::RankOrder;

impl Op {
    /// Checks the parameters against an input of `ndim` dimensions and lowers the
    /// operation to its stages.
    pub(crate) fn stages(&self, ndim: usize) -> Result<Vec<Stage>> {
        let invalid = |message: String| Error::InvalidParameter {
            op: self.name(),
            message,
        };
        match self {
            Op::Deconvolve {
                psf,
                psf_sigma,
                iterations,
                filter_epsilon,
                clip,
                overlap,
            } => {
                if *iterations < 1 {
                    return Err(invalid(format!(
                        "iterations must be >= 1, got {iterations}"
                    )));
                }
                if let Some(e) = filter_epsilon
                    && !e.is_finite()
                {
                    return Err(invalid(format!("filter-epsilon must be finite, got {e}")));
                }
                let psf = match (psf, psf_sigma) {
                    (Some(k), None) => k.clone(),
                    (None, Some(sigma)) => Kernel::gaussian(&per_axis("psf_sigma", sigma, ndim)?)?,
                    _ => {
                        return Err(invalid(
                            "give the point-spread function or a Gaussian one's sigma (psf-sigma), one of them"
                                .into(),
                        ));
                    }
                };
                let (psf_stencil, mirror) = psf.same_stencils(ndim)?;
                let passes = psf
                    .separable_factors()
                    .map(|factors| {
                        factors
                            .iter()
                            .map(|f| f.same_stencils(ndim))
                            .collect::<Result<Vec<_>>>()
                    })
                    .transpose()?
                    .unwrap_or_default();
                Ok(vec![Stage::Deconvolve(Box::new(Deconvolution {
                    psf: psf_stencil,
                    mirror,
                    passes,
                    iterations: *iterations,
                    // scikit-image's `if filter_epsilon:` (0 is off).
                    filter_epsilon: filter_epsilon.filter(|e| *e != 0.0).map(|e| e as f32),
                    clip: *clip,
                    overlap: *overlap,
                }))])
            }
            Op::Denoise {
                patch_size,
                patch_distance,
                h,
                sigma,
                fast_mode,
                noise,
            } => {
                if *patch_size < 1 {
                    return Err(invalid(format!(
                        "patch-size must be >= 1, got {patch_size}"
                    )));
                }
                if *patch_distance < 1 {
                    return Err(invalid(format!(
                        "patch-distance must be >= 1, got {patch_distance}"
                    )));
                }
                if !(h.is_finite() && *h > 0.0) {
                    return Err(invalid(format!("h must be finite and > 0, got {h}")));
                }
                if !(sigma.is_finite() && *sigma >= 0.0) {
                    return Err(invalid(format!(
                        "sigma must be finite and >= 0, got {sigma}"
                    )));
                }
                if ndim < 2 {
                    return Err(invalid(format!(
                        "non-local means filters 2-D images and 3-D volumes, not a {ndim}-D array"
                    )));
                }
                let denoise = Stage::NlMeans(NlMeans {
                    // scikit-image's `if s % 2 == 0: s += 1`.
                    patch: patch_size | 1,
                    distance: *patch_distance,
                    h: *h,
                    sigma: *sigma,
                    fast: *fast_mode,
                    axes: if ndim == 2 { 2 } else { 3 },
                });
                Ok(match noise {
                    None => vec![denoise],
                    Some(model) => {
                        // The model's checks, in this op's name.
                        let transform = |op: Op| {
                            op.stages(ndim).map_err(|e| match e {
                                Error::InvalidParameter { message, .. } => invalid(message),
                                other => other,
                            })
                        };
                        let mut stages = transform(Op::Anscombe { model: *model })?;
                        stages.push(denoise);
                        stages.extend(transform(Op::InverseAnscombe { model: *model })?);
                        stages
                    }
                })
            }
            Op::Anscombe { model } | Op::InverseAnscombe { model } => {
                let NoiseModel {
                    gain,
                    offset,
                    read_noise,
                } = model;
                if !(gain.is_finite() && *gain > 0.0) {
                    return Err(invalid(format!(
                        "the gain must be finite and > 0, got {gain}"
                    )));
                }
                if !offset.is_finite() {
                    return Err(invalid(format!("the offset must be finite, got {offset}")));
                }
                if !(read_noise.is_finite() && *read_noise >= 0.0) {
                    return Err(invalid(format!(
                        "the read noise must be finite and >= 0, got {read_noise}"
                    )));
                }
                Ok(vec![match self {
                    Op::Anscombe { .. } => Stage::Anscombe(*model),
                    _ => Stage::InverseAnscombe(*model),
                }])
            }
            Op::Threshold { above } => {
                if above.is_nan() {
                    return Err(invalid("the threshold is NaN".into()));
                }
                Ok(vec![Stage::Threshold { above: *above }])
            }
            Op::Clip { min, max } => {
                if min.is_nan() || max.is_nan() || min > max {
                    return Err(invalid(format!("need min <= max, got min={min} max={max}")));
                }
                Ok(vec![Stage::Clip {
                    min: *min,
                    max: *max,
                }])
            }
            Op::Gaussian {
                sigma,
                edge: Edge { mode, cval },
                truncate,
                modes,
                ..
            }
            | Op::GaussianLaplace {
                sigma,
                edge: Edge { mode, cval },
                truncate,
                modes,
            }
            | Op::GaussianGradientMagnitude {
                sigma,
                edge: Edge { mode, cval },
                truncate,
                modes,
            } => {
                let sigma = per_axis("sigma", sigma, ndim)?;
                if let Some(s) = sigma.iter().find(|s| !(s.is_finite() && **s >= 0.0)) {
                    return Err(invalid(format!("sigma must be finite and >= 0, got {s}")));
                }
                if !(truncate.is_finite() && *truncate >= 0.0) {
                    return Err(invalid(format!(
                        "truncate must be finite and >= 0, got {truncate}"
                    )));
                }
                let modes = axis_modes(modes, *mode, ndim)?;
                let cval = *cval;
                Ok(match self {
                    Op::Gaussian { order, .. } => {
                        let order = match order.as_slice() {
                            [] => vec![0; ndim],
                            o => per_axis("order", o, ndim)?,
                        };
                        gaussian::stages(&sigma, &order, *truncate, &modes, cval)
                    }
                    _ => {
                        let magnitude = matches!(self, Op::GaussianGradientMagnitude { .. });
                        gaussian::derivative_stages(&sigma, *truncate, &modes, cval, magnitude)
                    }
                })
            }
            Op::Convolve {
                kernel,
                edge: Edge { mode, cval },
                origin,
            } => {
                let origin = origins(origin, &kernel.shape)?;
                Ok(vec![kernel.stage_at(ndim, *mode, *cval, &origin)?])
            }
            Op::Downsample { factor, method } => Ok(vec![Stage::Downsample {
                factor: factors(self.name(), factor, ndim)?,
                method: *method,
            }]),
            Op::Upsample { factor, method } => Ok(vec![Stage::Upsample {
                factor: factors(self.name(), factor, ndim)?,
                method: *method,
            }]),
            Op::Uniform {
                size,
                edge: Edge { mode, cval },
                origin,
                modes,
            } => {
                let size = per_axis("size", size, ndim)?;
                if size.contains(&0) {
                    return Err(invalid(format!(
                        "size must be >= 1 on every axis, got {size:?}"
                    )));
                }
                let origin = origins(origin, &size)?;
                let modes = axis_modes(modes, *mode, ndim)?;
                gaussian::uniform_stages(&size, &origin, &modes, *cval)
            }
            Op::Median {
                neighborhood: Neighborhood { size, footprint },
                edge: Edge { mode, cval },
                origin,
            }
            | Op::Percentile {
                neighborhood: Neighborhood { size, footprint },
                edge: Edge { mode, cval },
                origin,
                ..
            }
            | Op::Minimum {
                neighborhood: Neighborhood { size, footprint },
                edge: Edge { mode, cval },
                origin,
            }
            | Op::Maximum {
                neighborhood: Neighborhood { size, footprint },
                edge: Edge { mode, cval },
                origin,
            } => {
                let statistic = match self {
                    Op::Median { .. } => RankOrder::Median,
                    Op::Percentile { percentile, .. } => {
                        if percentile.is_nan() {
                            return Err(invalid("the percentile is NaN".into()));
                        }
                        RankOrder::Percentile(*percentile)
                    }
                    Op::Minimum { .. } => RankOrder::Minimum,
                    _ => RankOrder::Maximum,
                };
                rank::stages(
                    self.name(),
                    statistic,
                    size,
                    footprint.as_ref(),
                    (*mode, *cval),
                    origin,
                    ndim,
                )
            }
            Op::ThresholdOtsu {} | Op::ThresholdPercentile { .. } => Err(invalid(
                "the threshold comes from the input's statistics, computed before the op runs \
                 (Pipeline::resolve)"
                    .into(),
            )),
            Op::Normalize {
                percentiles,
                clip,
                values,
            } => {
                if percentiles.iter().any(|p| !(0.0..=100.0).contains(p)) {
                    return Err(invalid(format!(
                        "percentiles must be in 0..=100, got {percentiles:?}"
                    )));
                }
                let Some([low, high]) = values else {
                    return Err(invalid(
                        "the percentiles' values come from the input's statistics, computed \
                         before the op runs (Pipeline::resolve)"
                            .into(),
                    ));
                };
                Ok(vec![Stage::Normalize {
                    low: *low as f32,
                    high: *high as f32,
                    clip: *clip,
                }])
            }
            Op::Project {
                axis,
                method,
                keepdims,
            } => {
                if *axis >= ndim {
                    return Err(invalid(format!(
                        "axis {axis} is out of range for a {ndim}-dimensional array"
                    )));
                }
                if ndim == 1 && !keepdims {
                    return Err(invalid(
                        "the projection of a 1-D array is one value: keep its axis (keepdims)"
                            .into(),
                    ));
                }
                Ok(vec![Stage::Project {
                    axis: *axis,
                    method: *method,
                }])
            }
            Op::Cast { dtype } => Ok(vec![Stage::Cast(*dtype)]),
            Op::Affine {
                matrix,
                offset,
                output_shape,
                interp,
            } => {
                let (matrix, offset) = affine_matrix(matrix, offset, ndim).map_err(invalid)?;
                let output_shape = match output_shape.as_slice() {
                    [] => None,
                    s if s.len() != ndim => {
                        return Err(Error::AxisCount {
                            what: "output_shape",
                            ndim,
                            got: s.len(),
                        });
                    }
                    s if s.contains(&0) => {
                        return Err(invalid(format!(
                            "output-shape must be >= 1 on every axis, got {s:?}"
                        )));
                    }
                    s => Some(s.to_vec()),
                };
                geometric(
                    Transform::Affine {
                        matrix,
                        offset,
                        output_shape,
                    },
                    interp,
                )
                .map_err(invalid)
            }
            Op::Zoom {
                zoom,
                grid_mode,
                interp,
            } => {
                let factor = per_axis("zoom", zoom, ndim)?;
                if let Some(f) = factor.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
                    return Err(invalid(format!(
                        "zoom factors must be > 0 and finite, got {f}"
                    )));
                }
                geometric(
                    Transform::Zoom {
                        factor,
                        grid_mode: *grid_mode,
                    },
                    interp,
                )
                .map_err(invalid)
            }
            Op::Rotate {
                angle,
                axes,
                reshape,
                interp,
            } => {
                if !angle.is_finite() {
                    return Err(invalid(format!("angle must be finite, got {angle}")));
                }
                if ndim < 2 {
                    return Err(invalid("the input must have at least 2 dimensions".into()));
                }
                let axis = |a: i64| {
                    let b = if a < 0 { a + ndim as i64 } else { a };
                    usize::try_from(b)
                        .ok()
                        .filter(|&b| b < ndim)
                        .ok_or_else(|| invalid(format!("axes {axes:?}: invalid rotation plane")))
                };
                let (mut a0, mut a1) = (axis(axes[0])?, axis(axes[1])?);
                if a0 == a1 {
                    return Err(invalid(format!("axes {axes:?}: two different axes needed")));
                }
                if a0 > a1 {
                    std::mem::swap(&mut a0, &mut a1);
                }
                geometric(
                    Transform::Rotate {
                        angle: *angle,
                        axes: [a0, a1],
                        reshape: *reshape,
                    },
                    interp,
                )
                .map_err(invalid)
            }
            Op::Deskew {
                angle,
                scan_step,
                pixel_size,
                rotate,
            } => {
                if ndim < 3 {
                    return Err(invalid(
                        "the input must have at least 3 dimensions (z, y, x)".into(),
                    ));
                }
                if !(angle.is_finite() && *angle > 0.0 && *angle < 90.0) {
                    return Err(invalid(format!(
                        "angle must be between 0 and 90 degrees, got {angle}"
                    )));
                }
                for (name, v) in [("scan-step", scan_step), ("pixel-size", pixel_size)] {
                    if !(v.is_finite() && *v > 0.0) {
                        return Err(invalid(format!("{name} must be > 0 and finite, got {v}")));
                    }
                }
                let transform = Transform::Deskew {
                    angle: *angle,
                    scan_step: *scan_step,
                    pixel_size: *pixel_size,
                    rotate: *rotate,
                };
                geometric(transform, &Interp::order(1)).map_err(invalid)
            }
        }
    }
}

/// A geometric stage with `interp` checked.
fn geometric(transform: Transform, interp: &Interp) -> std::result::Result<Vec<Stage>, String> {
    if interp.order > 5 {
        return Err(format!("order must be 0 to 5, got {}", interp.order));
    }
    Ok(vec![Stage::Geometric(Box::new(Geometric {
        transform,
        interp: Interpolation {
            order: interp.order,
            mode: interp.mode,
            cval: interp.cval,
            prefilter: interp.prefilter,
        },
    }))])
}

/// scipy's reading of an affine `matrix` and `offset` for `ndim` axes: N×N with the
/// offset given, or N×(N+1) and (N+1)×(N+1) homogeneous with the offset in the last
/// column (the bottom row then `[0, ..., 0, 1]`). Row-major N×N and the offset per axis.
fn affine_matrix(
    matrix: &[Vec<f64>],
    offset: &[f64],
    ndim: usize,
) -> std::result::Result<(Vec<f64>, Vec<f64>), String> {
    let rows = matrix.len();
    let cols = matrix.first().map_or(0, Vec::len);
    if matrix.iter().any(|r| r.len() != cols) {
        return Err("matrix rows differ in length".into());
    }
    if let Some(v) = matrix.iter().flatten().find(|v| !v.is_finite()) {
        return Err(format!("matrix values must be finite, got {v}"));
    }
    let homogeneous = cols == ndim + 1 && (rows == ndim || rows == ndim + 1);
    if !(homogeneous || (rows == ndim && cols == ndim)) {
        return Err(format!(
            "matrix must be {ndim}×{ndim}, {ndim}×{} or {}×{} for {ndim} dimensions, got {rows}×{cols}",
            ndim + 1,
            ndim + 1,
            ndim + 1
        ));
    }
    if rows == ndim + 1 {
        let expected: Vec<f64> = (0..=ndim).map(|i| f64::from(i == ndim)).collect();
        if matrix[ndim] != expected {
            return Err(format!(
                "a homogeneous matrix's bottom row must be {expected:?}, got {:?}",
                matrix[ndim]
            ));
        }
    }
    let m: Vec<f64> = matrix[..ndim]
        .iter()
        .flat_map(|r| r[..ndim].iter().copied())
        .collect();
    let offset = if homogeneous {
        matrix[..ndim].iter().map(|r| r[ndim]).collect()
    } else {
        match offset.len() {
            0 => vec![0.0; ndim],
            1 => vec![offset[0]; ndim],
            n if n == ndim => offset.to_vec(),
            n => return Err(format!("offset needs 1 or {ndim} values, got {n}")),
        }
    };
    if let Some(v) = offset.iter().find(|v| !v.is_finite()) {
        return Err(format!("offset values must be finite, got {v}"));
    }
    Ok((m, offset))
}

/// scipy's `origin` over axes of `sizes`: one value for all, one per axis, or none (0).
fn origins(origin: &[i64], sizes: &[usize]) -> Result<Vec<i64>> {
    if origin.is_empty() {
        return Ok(vec![0; sizes.len()]);
    }
    per_axis("origin", origin, sizes.len())
}

fn factors(op: &'static str, factor: &[usize], ndim: usize) -> Result<Vec<usize>> {
    let f = per_axis("factor", factor, ndim)?;
    if f.contains(&0) {
        return Err(Error::InvalidParameter {
            op,
            message: format!("factors must be >= 1, got {factor:?}"),
        });
    }
    Ok(f)
}

/// The boundary mode of each of `ndim` axes: `modes` (one for all, or one per axis), or
/// `mode` on every axis where it is empty.
fn axis_modes(modes: &[Boundary], mode: Boundary, ndim: usize) -> Result<Vec<Boundary>> {
    match modes {
        [] => Ok(vec![mode; ndim]),
        m => per_axis("modes", m, ndim),
    }
}
