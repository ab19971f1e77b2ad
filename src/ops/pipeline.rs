//! [`Pipeline`]: a chain of ops applied in order, then an optional cast; its output
//! shape and type, and the statistics of the input it needs.

use serde::{Deserialize, Serialize};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::stage::Stage;

use super::op::Op;

/// The statistics of its input a pipeline needs before it can run (see
/// [`Pipeline::needs`]).
#[derive(Clone, Debug, PartialEq)]
pub enum NeededStatistics {
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
    pub fn needs(&self) -> Result<Option<NeededStatistics>> {
        let needed = |op: &Op| match op {
            Op::ThresholdOtsu {} => Some(NeededStatistics::Otsu),
            Op::ThresholdPercentile { percentile } => {
                Some(NeededStatistics::Percentiles(vec![*percentile]))
            }
            Op::Normalize {
                percentiles,
                values: None,
                ..
            } => Some(NeededStatistics::Percentiles(percentiles.to_vec())),
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
    use crate::boundary::Boundary;
    use crate::stage::{DownMethod, UpMethod};

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
