//! What a run computes: a chain of ops whose Gaussian sigmas may be lengths, resolved
//! into a [`Pipeline`] in pixels once the input's spacing is known; and the chain an
//! output records, read back to replay it.

use std::path::Path;

use super::units::{Sigma, Spacing};
use crate::boundary::Boundary;
use crate::error::{Error, Result};
use crate::ops::Edge;
use crate::{DType, Op, Pipeline};

/// Which of the Gaussian family a [`Step::Gaussian`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GaussianKind {
    /// `scipy.ndimage.gaussian_filter`.
    Smooth,
    /// `scipy.ndimage.gaussian_laplace`.
    Laplace,
    /// `scipy.ndimage.gaussian_gradient_magnitude`.
    GradientMagnitude,
}

/// One op of a [`Chain`].
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// An op as it is (sigmas in pixels).
    Op(Op),
    /// A Gaussian, Laplacian of Gaussian or gradient magnitude whose sigma may be given
    /// as lengths ([`Sigma`]): divided by the pixel spacing of the array it reads (the
    /// input's, changed by the resampling ops before it).
    Gaussian {
        /// Which op.
        kind: GaussianKind,
        /// One sigma, or one per axis.
        sigma: Vec<Sigma>,
        /// How it reads beyond the array's edge.
        edge: Edge,
        /// Kernel radius in standard deviations.
        truncate: f64,
        /// One boundary mode per axis in place of the edge's (empty: the edge's).
        modes: Vec<Boundary>,
        /// The derivative's order per axis (`Smooth` only; empty: none).
        order: Vec<u32>,
    },
}

impl Step {
    /// A Gaussian (`kind`) with scipy's defaults (`reflect`, truncate 4).
    pub fn gaussian(kind: GaussianKind, sigma: &[Sigma]) -> Step {
        Step::Gaussian {
            kind,
            sigma: sigma.to_vec(),
            edge: Edge::default(),
            truncate: 4.0,
            modes: Vec::new(),
            order: Vec::new(),
        }
    }

    /// The op, reading an array of pixel spacing `spacing` (if known).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a length without a known spacing, or on an axis
    /// without a length unit.
    pub fn op(&self, spacing: Option<&Spacing>) -> Result<Op> {
        let Step::Gaussian {
            kind,
            sigma,
            edge,
            truncate,
            modes,
            order,
        } = self
        else {
            let Step::Op(op) = self else { unreachable!() };
            return Ok(op.clone());
        };
        let name = match kind {
            GaussianKind::Smooth => "gaussian",
            GaussianKind::Laplace => "gaussian_laplace",
            GaussianKind::GradientMagnitude => "gaussian_gradient_magnitude",
        };
        let physical = sigma.iter().any(|s| s.micrometers().is_some());
        let sigma = match (physical, spacing) {
            (false, _) => sigma.iter().map(Sigma::value).collect(),
            (true, None) => {
                return Err(Error::InvalidParameter {
                    op: name,
                    message: "a sigma with a unit needs the pixel spacing: an OME-Zarr input, \
                              or --ome with --scale and --units"
                        .into(),
                });
            }
            (true, Some(space)) => space.pixels(name, sigma)?,
        };
        let (edge, truncate, modes) = (*edge, *truncate, modes.clone());
        Ok(match kind {
            GaussianKind::Smooth => Op::Gaussian {
                sigma,
                edge,
                truncate,
                modes,
                order: order.clone(),
            },
            _ if !order.is_empty() => {
                return Err(Error::InvalidParameter {
                    op: name,
                    message: "a derivative order is the Gaussian's (gaussian --order)".into(),
                });
            }
            GaussianKind::Laplace => Op::GaussianLaplace {
                sigma,
                edge,
                truncate,
                modes,
            },
            GaussianKind::GradientMagnitude => Op::GaussianGradientMagnitude {
                sigma,
                edge,
                truncate,
                modes,
            },
        })
    }
}

impl From<Op> for Step {
    fn from(op: Op) -> Step {
        Step::Op(op)
    }
}

/// The ops of a run in order, then an optional cast: a [`Pipeline`] whose Gaussian
/// sigmas may be lengths.
///
/// ```
/// use haloflow::zarr::{Chain, GaussianKind, Step};
/// use haloflow::{Op, Pipeline};
///
/// // From a pipeline (sigmas in pixels) ...
/// let chain = Chain::from(Pipeline::new(vec![Op::gaussian(&[2.0]), Op::threshold(100.0)]));
/// assert_eq!(chain.pipeline(None)?.ops.len(), 2);
/// // ... or with a sigma of 0.8 µm in y and x: the spacing turns it into pixels.
/// let sigma = ["0".parse()?, "0.8um".parse()?, "0.8um".parse()?];
/// let chain = Chain::new(vec![Step::gaussian(GaussianKind::Smooth, &sigma), Op::threshold(1.0).into()]);
/// assert!(chain.pipeline(None).is_err()); // a length needs the image's spacing
/// # Ok::<(), haloflow::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chain {
    /// The ops, in order.
    pub steps: Vec<Step>,
    /// The element type of the result (round half to even, saturate), if not the ops'.
    pub dtype: Option<DType>,
}

impl Chain {
    /// A chain of `steps`, with the ops' own output type.
    pub fn new(steps: Vec<Step>) -> Chain {
        Chain { steps, dtype: None }
    }

    /// The chain cast to `dtype` at the end.
    pub fn with_dtype(mut self, dtype: DType) -> Chain {
        self.dtype = Some(dtype);
        self
    }

    /// The pipeline in pixels, each op reading an array of the spacing `spacing` (the
    /// input's, if known) leaves after the ops before it.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] as [`Step::op`].
    pub fn pipeline(&self, spacing: Option<&Spacing>) -> Result<Pipeline> {
        let mut spacing = spacing.cloned();
        let mut ops = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            let op = step.op(spacing.as_ref())?;
            if let Some(s) = spacing.as_mut() {
                s.after(&op)?;
            }
            ops.push(op);
        }
        let pipeline = Pipeline::new(ops);
        Ok(match self.dtype {
            Some(d) => pipeline.with_dtype(d),
            None => pipeline,
        })
    }

    /// The chain an output records (to replay the run that wrote it), or a pipeline
    /// file: JSON or TOML, a pipeline itself (`{"ops": [...]}`) or the attributes (or
    /// whole metadata) of an output, which record it under `haloflow.pipeline`; a
    /// directory is read through its `zarr.json` or `.zattrs`.
    ///
    /// # Errors
    /// [`Error::Store`] if the file cannot be read or holds no pipeline.
    pub fn recorded(path: &Path) -> Result<Chain> {
        let pipeline = read_pipeline(path)?;
        Ok(Chain {
            steps: pipeline.ops.into_iter().map(Step::Op).collect(),
            dtype: pipeline.dtype,
        })
    }
}

impl From<Pipeline> for Chain {
    fn from(p: Pipeline) -> Chain {
        Chain {
            steps: p.ops.into_iter().map(Step::Op).collect(),
            dtype: p.dtype,
        }
    }
}

impl From<Op> for Chain {
    fn from(op: Op) -> Chain {
        Chain::new(vec![Step::Op(op)])
    }
}

fn read_pipeline(path: &Path) -> Result<Pipeline> {
    let fail = |message: String| Error::Store {
        path: path.to_path_buf(),
        message,
    };
    let file = if path.is_dir() {
        [path.join("zarr.json"), path.join(".zattrs")]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| fail("a directory without zarr.json or .zattrs".into()))?
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| fail(e.to_string()))?;
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(json) => toml::from_str(&text)
            .map_err(|toml| fail(format!("neither JSON ({json}) nor TOML ({toml})")))?,
    };
    let found = [
        &value,
        &value["haloflow"]["pipeline"],
        &value["attributes"]["haloflow"]["pipeline"],
        &value["multiscales"][0]["metadata"]["pipeline"],
        &value["attributes"]["ome"]["multiscales"][0]["metadata"]["pipeline"],
    ]
    .into_iter()
    .find(|v| v.get("ops").is_some())
    .ok_or_else(|| {
        fail("no pipeline in it (expected \"ops\", or haloflow.pipeline in attributes)".into())
    })?;
    serde_json::from_value(found.clone()).map_err(|e| fail(format!("not a pipeline: {e}")))
}
