//! [`Pyramid`]: a multiscale OME-Zarr pyramid, every level in one pass over level 0
//! where a tile fits in memory, else level by level.

use std::path::PathBuf;

use super::image::{open_level, output_image};
use super::options::Options;
use super::progress::{Phase, Progress};
use super::run::{chunk_shape, plan};
use crate::backend::{Backend, Workload};
use crate::error::{Error, Result};
use crate::exec::{self, Report};
use crate::store::{Input, OmeImage, Output, OutputSpec};
use crate::{DType, DownMethod, Op, Pipeline};

/// How a pyramid level is made from the one before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PyramidMethod {
    /// The mean of each window (integers rounded half to even).
    #[default]
    Mean,
    /// The maximum of each window.
    Max,
    /// The minimum of each window.
    Min,
    /// The most frequent value of each window (ties: the smallest).
    Mode,
    /// Every factor-th element (`x[::f]`).
    Stride,
    /// A Gaussian of sigma f/3 on each reduced axis, then the window mean, cast back
    /// to the element type (scikit-image's `pyramid_gaussian`).
    Gaussian,
}

impl PyramidMethod {
    /// Every method, in the order the command lists them.
    pub const ALL: [PyramidMethod; 6] = [
        PyramidMethod::Mean,
        PyramidMethod::Max,
        PyramidMethod::Min,
        PyramidMethod::Mode,
        PyramidMethod::Stride,
        PyramidMethod::Gaussian,
    ];

    /// The name OME-Zarr records as the multiscale's `type` (`mean`, `gaussian`, ...).
    pub fn name(self) -> &'static str {
        match self {
            PyramidMethod::Mean => "mean",
            PyramidMethod::Max => "max",
            PyramidMethod::Min => "min",
            PyramidMethod::Mode => "mode",
            PyramidMethod::Stride => "stride",
            PyramidMethod::Gaussian => "gaussian",
        }
    }
}

impl std::str::FromStr for PyramidMethod {
    type Err = Error;

    /// A method by its [name](PyramidMethod::name).
    fn from_str(s: &str) -> Result<PyramidMethod> {
        PyramidMethod::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| Error::InvalidParameter {
                op: "pyramid",
                message: format!("method {s:?}: expected mean, max, min, mode, stride or gaussian"),
            })
    }
}

/// A multiscale pyramid of an array (an OME-Zarr image's level, or a plain array) as an
/// OME-Zarr image: levels `0`, `1`, ... until a level fits in one chunk (or
/// [`Pyramid::levels`]), each the previous reduced by [`Pyramid::factor`] with
/// [`Pyramid::method`]. Every level equals the previous one stepped down, exactly as
/// one run of that chain would give it.
///
/// ```no_run
/// use haloflow::zarr::{OmeAxes, Options, Pyramid, PyramidMethod};
///
/// let pyramid = Pyramid {
///     levels: Some(4),
///     method: PyramidMethod::Max,
///     options: Options {
///         // A plain array becomes an image with these axes and spacing.
///         ome: Some(OmeAxes {
///             axes: Some(vec!["z".into(), "y".into(), "x".into()]),
///             scale: Some(vec![2.0, 0.4, 0.4]),
///             units: Some(vec!["micrometer".into(); 3]),
///         }),
///         ..Options::default()
///     },
///     ..Pyramid::new("volume.zarr", "volume.ome.zarr")
/// };
/// let done = pyramid.run(None)?;
/// println!("{} levels, {} jobs", done.levels, done.report.jobs_done);
/// # Ok::<(), haloflow::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Pyramid {
    /// The input.
    pub input: PathBuf,
    /// The output OME-Zarr image (created, or resumed).
    pub output: PathBuf,
    /// Number of levels, level 0 included [default: until a level fits in one chunk].
    pub levels: Option<usize>,
    /// Factor between levels, one value or one per axis [default: 2 on space axes, 1 on
    /// time and channel axes].
    pub factor: Option<Vec<usize>>,
    /// How each level is made from the one before.
    pub method: PyramidMethod,
    /// How and where ([`Options::shards`] is not supported yet).
    pub options: Options,
}

/// What a [`Pyramid`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct PyramidReport {
    /// Jobs, bytes and times, every level together.
    pub report: Report,
    /// Levels written, level 0 included.
    pub levels: usize,
    /// Whether every level came from one pass over level 0 (else level by level).
    pub one_pass: bool,
    /// Whether level 0's chunks were stored as the input encodes them (not encoded
    /// again).
    pub level0_copied: bool,
}

impl Pyramid {
    /// A pyramid of `input` at `output` with the default levels, factor, method and
    /// [`Options`].
    pub fn new(input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Pyramid {
        Pyramid {
            input: input.into(),
            output: output.into(),
            levels: None,
            factor: None,
            method: PyramidMethod::Mean,
            options: Options::default(),
        }
    }

    /// Writes this part of the pyramid, skipping what is already written.
    ///
    /// # Errors
    /// [`Error`] as [`Run::run`](super::Run::run), and [`Error::InvalidParameter`] for factors that
    /// do not shrink the array or levels it cannot give.
    pub fn run(&self, progress: Option<&dyn Progress>) -> Result<PyramidReport> {
        let o = &self.options;
        let bad = |message: String| Error::InvalidParameter {
            op: "pyramid",
            message,
        };
        if o.mip.is_some() {
            return Err(bad(
                "maximum projections (mip) are written by a run, not a pyramid".into(),
            ));
        }
        if o.shards.is_some() {
            return Err(bad(
                "--shards is not supported by pyramid yet (its levels are written chunk by chunk)"
                    .into(),
            ));
        }
        if OmeImage::is_label_image(&self.input)
            && !matches!(self.method, PyramidMethod::Mode | PyramidMethod::Stride)
        {
            return Err(bad(format!(
                "{} is a label image: its levels are made by --method mode or stride, never by {} (that would invent labels)",
                self.input.display(),
                self.method.name()
            )));
        }
        let (input_path, ome_input) = open_level(&self.input, o.level)?;
        let input = Input::open(&input_path)?;
        let ndim = input.shape().len();
        let dtype = input.dtype();
        let base = output_image(
            ome_input,
            o.ome.as_ref(),
            true,
            o.ngff_version,
            &Pipeline::new(vec![]),
            input.shape(),
            (dtype, dtype),
        )?
        .expect("an image, forced");
        let factor = match &self.factor {
            Some(f) => crate::ops::per_axis("factor", f, ndim)?,
            None => base
                .axes
                .iter()
                .map(|a| {
                    if a.kind.as_deref() == Some("space") {
                        2
                    } else {
                        1
                    }
                })
                .collect(),
        };
        if factor.iter().all(|&f| f == 1) {
            return Err(bad("every factor is 1: the levels would not shrink".into()));
        }
        let step = self.step(&factor, dtype);
        let chains = self.chains(&input, &step, &factor)?;
        let plans = chains
            .iter()
            .map(|chain| plan(chain, &input, o.chunks.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        let (backend, reason) = Backend::select_for(
            o.device,
            o.adapter().as_deref(),
            plans.last().expect("a level"),
            Workload::Zarr,
        )?;
        let mut image = base.clone();
        image.levels.clear();
        for (k, chain) in chains.iter().enumerate() {
            let derived = base.derived(0, chain, input.shape(), dtype, dtype, base.version)?;
            let mut level = derived.levels[0].clone();
            level.path = k.to_string();
            image.levels.push(level);
        }
        image.check_target(&self.output)?;
        let mut outputs = Vec::new();
        for (k, (chain, plan)) in chains.iter().zip(&plans).enumerate() {
            let mut attributes = serde_json::Map::new();
            attributes.insert("haloflow".into(), serde_json::json!({ "pipeline": chain }));
            let spec = OutputSpec::new(
                plan.output_shape(),
                plan.output_dtype(),
                plan.output_chunk(),
            )
            .with_zarr_format(image.version.zarr_format())
            .with_compression(o.compression)
            .with_attributes(attributes)
            .with_dimension_names(image.axes.iter().map(|a| a.name.clone()).collect());
            outputs.push(Output::create(
                &self.output.join(k.to_string()),
                &spec,
                o.overwrite,
            )?);
        }
        image.write_group(
            &self.output,
            &Pipeline::new(step.clone()),
            Some(self.method.name()),
        )?;

        let options = o.run_options(backend, reason);
        let total: usize = plans
            .iter()
            .map(|pl| options.part.jobs(pl.num_jobs()).len())
            .sum();
        let started = std::time::Instant::now();
        // One streamed pass over level 0 when the levels' chunks tile evenly and a tile
        // fits in the memory budget; else each level from level 0 by its own chain.
        // Level 0's chunks are stored as the input holds them where the output encodes
        // them the same way (no second encode of level 0).
        let copy = |region: &crate::Region| outputs[0].copy_encoded(&input, region);
        let one_pass = exec::OnePassPyramid {
            source: &input,
            sinks: outputs.iter().map(|o| o as &dyn exec::Sink).collect(),
            chunks: plans.iter().map(|p| p.output_chunk().to_vec()).collect(),
            step: Pipeline::new(step.clone()),
            factor: factor.clone(),
            copy_level0: match outputs[0].encodes_like(&input)? {
                true => Some(&copy),
                false => None,
            },
        };
        let level0_copied = one_pass.copy_level0.is_some();
        let tiles = plans.last().map_or(1, |p| p.num_jobs());
        if let Some(p) = progress {
            p.begin(Phase::Tiles, options.part.jobs(tiles).len());
        }
        let advance = |done: usize, bytes: u64| {
            if let Some(p) = progress {
                p.advance(done, bytes);
            }
        };
        if let Some(report) = one_pass.run(&options, Some(&advance))? {
            return Ok(PyramidReport {
                report,
                levels: chains.len(),
                one_pass: true,
                level0_copied,
            });
        }
        if let Some(p) = progress {
            p.begin(Phase::Levels, total);
        }
        let mut report = Report::default();
        let mut done_before = 0;
        for (plan, output) in plans.iter().zip(&outputs) {
            let on_progress = |done: usize, bytes: u64| advance(done_before + done, bytes);
            let level = exec::run(plan, &input, output, &options, Some(&on_progress))?;
            done_before += level.jobs_total;
            report.add(level);
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(PyramidReport {
            report,
            levels: chains.len(),
            one_pass: false,
            level0_copied: false,
        })
    }

    /// The ops making a level from the one before.
    fn step(&self, factor: &[usize], dtype: DType) -> Vec<Op> {
        let method = match self.method {
            PyramidMethod::Gaussian => {
                let sigma = factor
                    .iter()
                    .map(|&f| if f > 1 { f as f64 / 3.0 } else { 0.0 })
                    .collect::<Vec<_>>();
                let mut ops = vec![
                    Op::gaussian(&sigma),
                    Op::downsample(factor, DownMethod::Mean),
                ];
                if dtype != DType::F32 {
                    ops.push(Op::Cast { dtype });
                }
                return ops;
            }
            PyramidMethod::Mean => DownMethod::Mean,
            PyramidMethod::Max => DownMethod::Max,
            PyramidMethod::Min => DownMethod::Min,
            PyramidMethod::Mode => DownMethod::Mode,
            PyramidMethod::Stride => DownMethod::Stride,
        };
        vec![Op::downsample(factor, method)]
    }

    /// The chain making each level from level 0.
    fn chains(&self, input: &Input, step: &[Op], factor: &[usize]) -> Result<Vec<Pipeline>> {
        let (ndim, dtype) = (input.shape().len(), input.dtype());
        let mut chains = vec![Pipeline::new(vec![])];
        loop {
            let last = chains.last().expect("level 0");
            let (shape, _) = last.output(input.shape(), dtype)?;
            let chunk = chunk_shape(self.options.chunks.as_deref(), input.chunk_shape(), &shape)?;
            let done = match self.levels {
                Some(n) => chains.len() >= n.max(1),
                // Axes not downsampled (channels, time) never shrink: they do not count.
                None => {
                    (0..ndim).all(|a| factor[a] == 1 || shape[a] <= chunk[a]) || chains.len() >= 32
                }
            };
            let next = Pipeline::new(last.ops.iter().chain(step).cloned().collect());
            let (next_shape, _) = next.output(input.shape(), dtype)?;
            if done || next_shape == shape {
                if self.levels.is_some_and(|n| chains.len() < n) {
                    return Err(Error::InvalidParameter {
                        op: "pyramid",
                        message: format!(
                            "only {} levels shrink the array (shape {shape:?})",
                            chains.len()
                        ),
                    });
                }
                return Ok(chains);
            }
            chains.push(next);
        }
    }
}
