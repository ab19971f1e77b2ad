//! Operations users ask for, their parameters and validation, and chains of them.
//! (Layer: ops; see the layer map in `docs/ARCHITECTURE.md`.)

mod axes;
mod convolve;
mod gaussian;
mod rank;

pub use axes::per_axis;
pub use convolve::Kernel;
pub use gaussian::{gaussian_kernel, gaussian_weights};
pub use rank::{Footprint, Statistic};

use serde::{Deserialize, Serialize};

use crate::boundary::Boundary;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::stage::{DownMethod, ProjectMethod, Stage, UpMethod};

fn default_truncate() -> f64 {
    4.0
}

/// One operation, with the semantics of its scipy/numpy counterpart (see `DESIGN.md`).
///
/// Per-axis lists (`sigma`, `factor`) hold one value for all axes or one per axis.
/// The JSON form (`{"op": "gaussian", "sigma": [2.0], ...}`) is what output arrays
/// record in their attributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `x > above` as uint8 0/1.
    Threshold {
        /// The threshold.
        above: f64,
    },
    /// `np.clip(x, min, max)`, element type kept (integer bounds rounded half to even).
    Clip {
        /// Lower bound.
        min: f64,
        /// Upper bound (≥ `min`).
        max: f64,
    },
    /// `scipy.ndimage.gaussian_filter(x, sigma, mode=mode, cval=cval, truncate=truncate)`, float32 out.
    Gaussian {
        /// Standard deviation per axis (0 leaves the axis untouched).
        sigma: Vec<f64>,
        /// Boundary mode.
        #[serde(default)]
        mode: Boundary,
        /// Value beyond the edge in `constant` mode.
        #[serde(default)]
        cval: f64,
        /// Radius in standard deviations: radius = `int(truncate * sigma + 0.5)`.
        #[serde(default = "default_truncate")]
        truncate: f64,
    },
    /// `scipy.ndimage.convolve(x, kernel, mode=mode, cval=cval)`, float32 out; a kernel
    /// with fewer dimensions than the array applies to the trailing axes.
    Convolve {
        /// The kernel.
        kernel: Kernel,
        /// Boundary mode.
        #[serde(default)]
        mode: Boundary,
        /// Value beyond the edge in `constant` mode.
        #[serde(default)]
        cval: f64,
    },
    /// Reduce by integer factors; output size `ceil(n / f)`, edge windows partial.
    Downsample {
        /// Factor per axis (≥ 1).
        factor: Vec<usize>,
        /// How each window is reduced.
        method: DownMethod,
    },
    /// Enlarge by integer factors; output size `n * f`.
    Upsample {
        /// Factor per axis (≥ 1).
        factor: Vec<usize>,
        /// How new samples are made.
        method: UpMethod,
    },
    /// `scipy.ndimage.gaussian_laplace(x, sigma, mode=mode, cval=cval, truncate=truncate)`
    /// computed on `x` as float64, float32 out: the sum over the axes of the Gaussian
    /// with its second derivative along that axis.
    GaussianLaplace {
        /// Standard deviation per axis (0 leaves the axis untouched).
        sigma: Vec<f64>,
        /// Boundary mode.
        #[serde(default)]
        mode: Boundary,
        /// Value beyond the edge in `constant` mode.
        #[serde(default)]
        cval: f64,
        /// Radius in standard deviations.
        #[serde(default = "default_truncate")]
        truncate: f64,
    },
    /// `scipy.ndimage.gaussian_gradient_magnitude(x, sigma, ...)` on `x` as float64,
    /// float32 out: the root of the sum over the axes of the squared Gaussian first
    /// derivatives.
    GaussianGradientMagnitude {
        /// Standard deviation per axis (0 leaves the axis untouched).
        sigma: Vec<f64>,
        /// Boundary mode.
        #[serde(default)]
        mode: Boundary,
        /// Value beyond the edge in `constant` mode.
        #[serde(default)]
        cval: f64,
        /// Radius in standard deviations.
        #[serde(default = "default_truncate")]
        truncate: f64,
    },
    /// `scipy.ndimage.uniform_filter(x, size, mode=mode, cval=cval)`: the mean over a
    /// box of `size` voxels (1 leaves an axis untouched), float32 out.
    Uniform {
        /// The box's extent per axis (one value for all axes, or one per axis).
        size: Vec<usize>,
        /// Boundary mode.
        #[serde(default)]
        mode: Boundary,
        /// Value beyond the edge in `constant` mode.
        #[serde(default)]
        cval: f64,
    },
    /// `scipy.ndimage.median_filter(x, size, footprint, mode=mode, cval=cval)`, element
    /// type kept.
    Median {
        /// The box's extent per axis (one value for all axes, or one per axis).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        size: Vec<usize>,
        /// A footprint instead of a box (it wins where both are given).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footprint: Option<Footprint>,
        /// Boundary mode.
        #[serde(default)]
        mode: Boundary,
        /// Value beyond the edge in `constant` mode (cast to the element type).
        #[serde(default)]
        cval: f64,
    },
    /// `scipy.ndimage.percentile_filter(x, size, footprint, mode=mode, cval=cval)` (which also covers `rank_filter`), element
    /// type kept.
    Percentile {
        /// The percentile, -100 to 100 (negative counts from 100).
        percentile: f64,
        /// The box's extent per axis (one value for all axes, or one per axis).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        size: Vec<usize>,
        /// A footprint instead of a box (it wins where both are given).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footprint: Option<Footprint>,
        /// Boundary mode.
        #[serde(default)]
        mode: Boundary,
        /// Value beyond the edge in `constant` mode (cast to the element type).
        #[serde(default)]
        cval: f64,
    },
    /// `scipy.ndimage.minimum_filter(x, size, footprint, mode=mode, cval=cval)`, element
    /// type kept.
    Minimum {
        /// The box's extent per axis (one value for all axes, or one per axis).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        size: Vec<usize>,
        /// A footprint instead of a box (it wins where both are given).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footprint: Option<Footprint>,
        /// Boundary mode.
        #[serde(default)]
        mode: Boundary,
        /// Value beyond the edge in `constant` mode (cast to the element type).
        #[serde(default)]
        cval: f64,
    },
    /// `scipy.ndimage.maximum_filter(x, size, footprint, mode=mode, cval=cval)`, element
    /// type kept.
    Maximum {
        /// The box's extent per axis (one value for all axes, or one per axis).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        size: Vec<usize>,
        /// A footprint instead of a box (it wins where both are given).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footprint: Option<Footprint>,
        /// Boundary mode.
        #[serde(default)]
        mode: Boundary,
        /// Value beyond the edge in `constant` mode (cast to the element type).
        #[serde(default)]
        cval: f64,
    },
    /// `x > t` as uint8, `t` being `skimage.filters.threshold_otsu` of the whole input
    /// (see [`stats::otsu`](crate::stats::otsu)). The statistic is computed first
    /// ([`Pipeline::resolve`]); the op must come first in its chain.
    ThresholdOtsu {},
    /// `x > t` as uint8, `t` being `np.nanpercentile(input, percentile)` of the whole
    /// input (resolved first, as [`Op::ThresholdOtsu`]).
    ThresholdPercentile {
        /// The percentile, 0 to 100.
        percentile: f64,
    },
    /// `(x - lo) / (hi - lo + 1e-20)` in float32, `lo` and `hi` being percentiles of
    /// the whole input (CSBDeep's `normalize`, computed as its float32 arithmetic does),
    /// optionally clipped to `[0, 1]`. The percentiles' values are filled in by
    /// [`Pipeline::resolve`]; the op must come first in its chain.
    Normalize {
        /// The low and high percentiles (CSBDeep's defaults: 1 and 99.8).
        percentiles: [f64; 2],
        /// Clip the result to `[0, 1]`.
        #[serde(default)]
        clip: bool,
        /// The percentiles' values, once resolved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        values: Option<[f64; 2]>,
    },
    /// numpy's `x.max(axis)`, `x.min(axis)`, `x.mean(axis)` or `x.sum(axis)`: the
    /// axis is dropped (kept at size 1 with `keepdims`). Max and min keep the type;
    /// mean and sum give float64 for integers (exact: numpy's sum would be int64)
    /// and keep float types (summed in f64). Without `keepdims` it must come last in
    /// a chain.
    Project {
        /// The axis reduced.
        axis: usize,
        /// The reduction.
        method: ProjectMethod,
        /// Keep the axis, at size 1.
        #[serde(default)]
        keepdims: bool,
    },
    /// Convert to another element type inside a chain (round half to even,
    /// saturate; `x.astype` after `np.rint` for integers), as `Pipeline::with_dtype`
    /// does at its end.
    Cast {
        /// The element type.
        dtype: DType,
    },
}

impl Op {
    /// `threshold`: `x > above`.
    pub fn threshold(above: f64) -> Op {
        Op::Threshold { above }
    }

    /// `clip` to `[min, max]`.
    pub fn clip(min: f64, max: f64) -> Op {
        Op::Clip { min, max }
    }

    /// A Gaussian with scipy's defaults (`reflect`, `truncate = 4`).
    pub fn gaussian(sigma: &[f64]) -> Op {
        Op::Gaussian {
            sigma: sigma.to_vec(),
            mode: Boundary::Reflect,
            cval: 0.0,
            truncate: 4.0,
        }
    }

    /// A uniform (box mean) filter with scipy's default mode (`reflect`).
    pub fn uniform(size: &[usize]) -> Op {
        Op::Uniform {
            size: size.to_vec(),
            mode: Boundary::Reflect,
            cval: 0.0,
        }
    }

    /// A median filter over a box of `size`, with scipy's default mode (`reflect`).
    pub fn median(size: &[usize]) -> Op {
        Op::Median {
            size: size.to_vec(),
            footprint: None,
            mode: Boundary::Reflect,
            cval: 0.0,
        }
    }

    /// A percentile filter over a box of `size`, with scipy's default mode (`reflect`).
    pub fn percentile(percentile: f64, size: &[usize]) -> Op {
        Op::Percentile {
            percentile,
            size: size.to_vec(),
            footprint: None,
            mode: Boundary::Reflect,
            cval: 0.0,
        }
    }

    /// A minimum filter over a box of `size`, with scipy's default mode (`reflect`).
    pub fn minimum(size: &[usize]) -> Op {
        Op::Minimum {
            size: size.to_vec(),
            footprint: None,
            mode: Boundary::Reflect,
            cval: 0.0,
        }
    }

    /// A maximum filter over a box of `size`, with scipy's default mode (`reflect`).
    pub fn maximum(size: &[usize]) -> Op {
        Op::Maximum {
            size: size.to_vec(),
            footprint: None,
            mode: Boundary::Reflect,
            cval: 0.0,
        }
    }

    /// A rank filter's footprint, replacing its box (others unchanged).
    pub fn with_footprint(mut self, new: Footprint) -> Op {
        if let Op::Median { footprint, .. }
        | Op::Percentile { footprint, .. }
        | Op::Minimum { footprint, .. }
        | Op::Maximum { footprint, .. } = &mut self
        {
            *footprint = Some(new);
        }
        self
    }

    /// A convolution with scipy's default mode (`reflect`).
    pub fn convolve(kernel: Kernel) -> Op {
        Op::Convolve {
            kernel,
            mode: Boundary::Reflect,
            cval: 0.0,
        }
    }

    /// Downsampling by `factor` with `method`.
    pub fn downsample(factor: &[usize], method: DownMethod) -> Op {
        Op::Downsample {
            factor: factor.to_vec(),
            method,
        }
    }

    /// Upsampling by `factor` with `method`.
    pub fn upsample(factor: &[usize], method: UpMethod) -> Op {
        Op::Upsample {
            factor: factor.to_vec(),
            method,
        }
    }

    /// Sets the boundary mode and constant of a filter (others unchanged).
    pub fn with_mode(mut self, new_mode: Boundary, new_cval: f64) -> Op {
        if let Op::Gaussian { mode, cval, .. }
        | Op::GaussianLaplace { mode, cval, .. }
        | Op::GaussianGradientMagnitude { mode, cval, .. }
        | Op::Convolve { mode, cval, .. }
        | Op::Uniform { mode, cval, .. }
        | Op::Median { mode, cval, .. }
        | Op::Percentile { mode, cval, .. }
        | Op::Minimum { mode, cval, .. }
        | Op::Maximum { mode, cval, .. } = &mut self
        {
            *mode = new_mode;
            *cval = new_cval;
        }
        self
    }

    /// The operation's name (`"gaussian"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Threshold { .. } => "threshold",
            Op::Clip { .. } => "clip",
            Op::Gaussian { .. } => "gaussian",
            Op::GaussianLaplace { .. } => "gaussian_laplace",
            Op::GaussianGradientMagnitude { .. } => "gaussian_gradient_magnitude",
            Op::Convolve { .. } => "convolve",
            Op::Downsample { .. } => "downsample",
            Op::Upsample { .. } => "upsample",
            Op::Uniform { .. } => "uniform",
            Op::Median { .. } => "median",
            Op::Percentile { .. } => "percentile",
            Op::Minimum { .. } => "minimum",
            Op::Maximum { .. } => "maximum",
            Op::ThresholdOtsu { .. } => "threshold_otsu",
            Op::ThresholdPercentile { .. } => "threshold_percentile",
            Op::Normalize { .. } => "normalize",
            Op::Project { .. } => "project",
            Op::Cast { .. } => "cast",
        }
    }

    /// Checks the parameters against an input of `ndim` dimensions and lowers the
    /// operation to its stages.
    pub(crate) fn stages(&self, ndim: usize) -> Result<Vec<Stage>> {
        let invalid = |message: String| Error::InvalidParameter {
            op: self.name(),
            message,
        };
        match self {
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
                mode,
                cval,
                truncate,
            }
            | Op::GaussianLaplace {
                sigma,
                mode,
                cval,
                truncate,
            }
            | Op::GaussianGradientMagnitude {
                sigma,
                mode,
                cval,
                truncate,
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
                let (mode, cval) = (*mode, *cval as f32);
                Ok(match self {
                    Op::Gaussian { .. } => gaussian::stages(&sigma, *truncate, mode, cval),
                    _ => {
                        let magnitude = matches!(self, Op::GaussianGradientMagnitude { .. });
                        gaussian::derivative_stages(&sigma, *truncate, mode, cval, magnitude)
                    }
                })
            }
            Op::Convolve { kernel, mode, cval } => {
                Ok(vec![kernel.stage(ndim, *mode, *cval as f32)?])
            }
            Op::Downsample { factor, method } => Ok(vec![Stage::Downsample {
                factor: factors(self.name(), factor, ndim)?,
                method: *method,
            }]),
            Op::Upsample { factor, method } => Ok(vec![Stage::Upsample {
                factor: factors(self.name(), factor, ndim)?,
                method: *method,
            }]),
            Op::Uniform { size, mode, cval } => {
                let size = per_axis("size", size, ndim)?;
                if size.contains(&0) {
                    return Err(invalid(format!(
                        "size must be >= 1 on every axis, got {size:?}"
                    )));
                }
                Ok(gaussian::uniform_stages(&size, *mode, *cval as f32))
            }
            Op::Median {
                size,
                footprint,
                mode,
                cval,
            }
            | Op::Percentile {
                size,
                footprint,
                mode,
                cval,
                ..
            }
            | Op::Minimum {
                size,
                footprint,
                mode,
                cval,
            }
            | Op::Maximum {
                size,
                footprint,
                mode,
                cval,
            } => {
                let statistic = match self {
                    Op::Median { .. } => Statistic::Median,
                    Op::Percentile { percentile, .. } => {
                        if percentile.is_nan() {
                            return Err(invalid("the percentile is NaN".into()));
                        }
                        Statistic::Percentile(*percentile)
                    }
                    Op::Minimum { .. } => Statistic::Minimum,
                    _ => Statistic::Maximum,
                };
                rank::stages(
                    self.name(),
                    statistic,
                    size,
                    footprint.as_ref(),
                    *mode,
                    *cval,
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
        }
    }
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

/// The statistics of its input a pipeline needs before it can run (see
/// [`Pipeline::needs`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Needed {
    /// Otsu's threshold.
    Otsu,
    /// These percentiles (numpy's `linear`, NaNs left out).
    Percentiles(Vec<f64>),
}

/// A chain of operations applied in order, then an optional cast of the result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// The operations, first applied first.
    pub ops: Vec<Op>,
    /// Element type of the result (round half to even, saturate); `None` keeps the ops' own.
    #[serde(default)]
    pub dtype: Option<DType>,
}

impl Pipeline {
    /// A pipeline of `ops` with no final cast.
    pub fn new(ops: Vec<Op>) -> Self {
        Pipeline { ops, dtype: None }
    }

    /// Appends an operation.
    pub fn then(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }

    /// Casts the result to `dtype`.
    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = Some(dtype);
        self
    }

    /// The statistics of the pipeline's input that its first op needs (an
    /// [`Op::ThresholdOtsu`], [`Op::ThresholdPercentile`] or unresolved
    /// [`Op::Normalize`]), if any.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if such an op is not the first: statistics are of the
    /// input array.
    pub fn needs(&self) -> Result<Option<Needed>> {
        let needed = |op: &Op| match op {
            Op::ThresholdOtsu {} => Some(Needed::Otsu),
            Op::ThresholdPercentile { percentile } => Some(Needed::Percentiles(vec![*percentile])),
            Op::Normalize {
                percentiles,
                values: None,
                ..
            } => Some(Needed::Percentiles(percentiles.to_vec())),
            _ => None,
        };
        if let Some(op) = self.ops.iter().skip(1).find(|op| needed(op).is_some()) {
            return Err(Error::InvalidParameter {
                op: op.name(),
                message: "its statistics are the input array's: it must come first in the chain"
                    .into(),
            });
        }
        Ok(self.ops.first().and_then(needed))
    }

    /// The pipeline with its first op's statistics filled in from `values` (what
    /// [`Pipeline::needs`] asked for: Otsu's threshold, or the percentiles' values):
    /// a threshold from statistics becomes a plain threshold, a normalisation gets
    /// its values. A pipeline that needs nothing is returned as it is.
    ///
    /// # Errors
    /// As [`Pipeline::needs`].
    pub fn resolve(&self, values: &[f64]) -> Result<Pipeline> {
        let mut out = self.clone();
        if self.needs()?.is_none() {
            return Ok(out);
        }
        out.ops[0] = match &self.ops[0] {
            Op::ThresholdOtsu {} | Op::ThresholdPercentile { .. } => Op::threshold(values[0]),
            Op::Normalize {
                percentiles, clip, ..
            } => Op::Normalize {
                percentiles: *percentiles,
                clip: *clip,
                values: Some([values[0], values[1]]),
            },
            other => other.clone(),
        };
        Ok(out)
    }

    /// The axis a final `project` drops (one without `keepdims`): the pipeline runs
    /// with it kept at size 1, and the result loses it.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if a projection that drops its axis is not the last
    /// op.
    pub fn dropped_axis(&self) -> Result<Option<usize>> {
        let drops = |op: &Op| match op {
            Op::Project {
                axis,
                keepdims: false,
                ..
            } => Some(*axis),
            _ => None,
        };
        let n = self.ops.len();
        if self
            .ops
            .iter()
            .take(n.saturating_sub(1))
            .any(|op| drops(op).is_some())
        {
            return Err(Error::InvalidParameter {
                op: "project",
                message: "a projection that drops its axis must come last in a chain (or keep \
                          it: keepdims)"
                    .into(),
            });
        }
        Ok(self.ops.last().and_then(drops))
    }

    /// Validates the pipeline for an input of `ndim` dimensions and lowers it to stages.
    pub(crate) fn stages(&self, ndim: usize) -> Result<Vec<Stage>> {
        self.dropped_axis()?;
        if !(1..=crate::MAX_NDIM).contains(&ndim) {
            return Err(Error::Shape(format!(
                "arrays of 1 to {} dimensions are supported, got {ndim}",
                crate::MAX_NDIM
            )));
        }
        let mut stages = Vec::new();
        for op in &self.ops {
            stages.extend(op.stages(ndim)?);
        }
        if let Some(d) = self.dtype {
            stages.push(Stage::Cast(d));
        }
        Ok(stages)
    }

    /// The shape and element type of the result for an input of `shape` and `dtype`.
    pub fn output(&self, shape: &[usize], dtype: DType) -> Result<(Vec<usize>, DType)> {
        let stages = self.stages(shape.len())?;
        Ok(stages.iter().fold((shape.to_vec(), dtype), |(s, d), st| {
            (st.out_shape(&s), st.out_dtype(d))
        }))
    }
}

impl From<Op> for Pipeline {
    fn from(op: Op) -> Self {
        Pipeline::new(vec![op])
    }
}

impl From<Vec<Op>> for Pipeline {
    fn from(ops: Vec<Op>) -> Self {
        Pipeline::new(ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameters_are_rejected() {
        assert!(matches!(
            Op::gaussian(&[-1.0]).stages(3),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            Op::gaussian(&[1.0, 2.0]).stages(3),
            Err(Error::AxisCount { got: 2, .. })
        ));
        assert!(Op::downsample(&[2, 0], DownMethod::Mean).stages(2).is_err());
        assert!(Op::clip(5.0, 1.0).stages(1).is_err());
        assert!(Pipeline::from(Op::threshold(1.0)).stages(6).is_err());
    }

    #[test]
    fn output_shape_and_dtype_follow_the_chain() {
        let p = Pipeline::new(vec![
            Op::gaussian(&[1.0]),
            Op::threshold(0.5),
            Op::downsample(&[2], DownMethod::Max),
        ]);
        assert_eq!(
            p.output(&[5, 8], DType::U16).unwrap(),
            (vec![3, 4], DType::U8)
        );
        let p = Pipeline::from(Op::upsample(&[3], UpMethod::Linear)).with_dtype(DType::F64);
        assert_eq!(p.output(&[2], DType::U8).unwrap(), (vec![6], DType::F64));
    }

    #[test]
    fn ops_round_trip_through_json() {
        let op = Op::gaussian(&[2.0, 1.0]).with_mode(Boundary::Constant, 1.5);
        let text = serde_json::to_string(&op).unwrap();
        assert!(text.contains("\"op\":\"gaussian\""));
        assert_eq!(serde_json::from_str::<Op>(&text).unwrap(), op);
    }
}
