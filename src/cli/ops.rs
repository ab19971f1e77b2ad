//! Each op's flags, and the chain of `run` and `info` (`OP [FLAGS] + OP [FLAGS]`),
//! turned into the library's [`Step`]s and [`Chain`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::ToOp;
use super::geometry::{AffineArgs, DeskewArgs, RotateArgs, ZoomArgs};
use super::restore::{AnscombeArgs, DeconvolveArgs, DenoiseArgs, InverseAnscombeArgs};
use crate::ops::Edge;
use crate::zarr::{Chain, GaussianKind, Sigma, Step};
use crate::{Boundary, DownMethod, Kernel, Op, ProjectMethod, UpMethod};

/// `copy` has only the common flags.
#[derive(Args, Clone)]
pub(super) struct CopyArgs {}

/// The chain of `run` and `info`: ops on the command line, or a pipeline file.
#[derive(Args, Clone)]
pub(super) struct ChainArgs {
    /// The chain from a file: JSON or TOML in the form outputs record it
    /// (`{"ops": [{"op": "gaussian", "sigma": [2.0]}, ...]}`), or an output (its
    /// directory, `zarr.json` or `.zattrs`), to replay the run that wrote it.
    #[arg(long)]
    pub(super) pipeline: Option<PathBuf>,
    /// The ops, after the common flags: `OP [FLAGS] + OP [FLAGS] + ...`, each OP one of
    /// threshold, clip, gaussian, convolve, downsample, upsample, with its own flags.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "OP [FLAGS] + OP [FLAGS]"
    )]
    pub(super) chain: Vec<String>,
}

/// One op of a chain, parsed with the op's own flags.
#[derive(Parser)]
#[command(name = "op", no_binary_name = true)]
pub(super) struct OpLine {
    #[command(subcommand)]
    pub(super) op: InfoOp,
}

impl ChainArgs {
    /// The chain: from the file, or the ops on the command line.
    pub(super) fn chain(&self) -> crate::Result<Chain> {
        let bad = |message: String| crate::Error::InvalidParameter { op: "run", message };
        match (&self.pipeline, self.chain.is_empty()) {
            (Some(_), false) => Err(bad(
                "give the chain either on the command line or with --pipeline, not both".into(),
            )),
            (None, true) => Err(bad(
                "no ops: give them after the flags (`gaussian --sigma 2 + threshold --above 100`) \
                 or with --pipeline FILE"
                    .into(),
            )),
            (Some(path), true) => Chain::recorded(path),
            (None, false) => {
                const COMMON: [&str; 13] = [
                    "--device",
                    "--adapter",
                    "--threads",
                    "--chunks",
                    "--dtype",
                    "--zarr-format",
                    "--compression",
                    "--part",
                    "--overwrite",
                    "--memory-limit",
                    "--quiet",
                    "--report",
                    "--shards",
                ];
                if let Some(flag) = self.chain.iter().find(|w| {
                    COMMON.contains(&w.split('=').next().unwrap_or_default()) || *w == "-q"
                }) {
                    return Err(bad(format!(
                        "{flag} is a flag of the whole run: put it before the first op \
                         (`run IN OUT {flag} ... gaussian --sigma 2 + ...`)"
                    )));
                }
                let mut steps = Vec::new();
                for (i, words) in self.chain.split(|w| w == "+").enumerate() {
                    if words.is_empty() {
                        return Err(bad(format!(
                            "op {} of the chain is empty (a '+' at an end, or two in a row)",
                            i + 1
                        )));
                    }
                    let line = OpLine::try_parse_from(words).map_err(|e| {
                        let text = e.render().to_string();
                        let first = text.lines().next().unwrap_or_default();
                        bad(format!(
                            "op {} ('{}'): {}",
                            i + 1,
                            words[0],
                            first.trim_start_matches("error: ")
                        ))
                    })?;
                    steps.push(line.op.to_step()?);
                }
                Ok(Chain::new(steps))
            }
        }
    }
}

#[derive(Args, Clone)]
#[group(required = true, multiple = false)]
pub(super) struct ThresholdArgs {
    /// Voxels above this value become 1, others 0.
    #[arg(long, allow_negative_numbers = true)]
    pub(super) above: Option<f64>,
    /// The threshold is Otsu's of the whole input (skimage.filters.threshold_otsu,
    /// 256 bins), computed first.
    #[arg(long)]
    pub(super) otsu: bool,
    /// The threshold is this percentile of the whole input (numpy's, exact), computed
    /// first.
    #[arg(long)]
    pub(super) percentile: Option<f64>,
}

/// Flags of `clip`.
#[derive(Args, Clone)]
pub(super) struct ClipArgs {
    /// Lower bound.
    #[arg(long, allow_negative_numbers = true)]
    pub(super) min: f64,
    /// Upper bound.
    #[arg(long, allow_negative_numbers = true)]
    pub(super) max: f64,
}

/// Flags of `gaussian`.
#[derive(Args, Clone)]
pub(super) struct GaussianArgs {
    /// Standard deviation, one value or one per axis (0 leaves an axis untouched), in
    /// pixels, or with a length unit (`1.5um`, `300nm`, `0.002mm`) in the image's
    /// physical units: divided by each axis's pixel spacing (OME-Zarr input, or --ome
    /// with --scale and --units), so that anisotropic voxels get the right sigma.
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        allow_negative_numbers = true,
        value_parser = parse_sigma
    )]
    pub(super) sigma: Vec<Sigma>,
    /// Boundary mode (scipy.ndimage): one, or one per axis (`reflect,wrap,nearest`;
    /// for the Laplacian and the gradient magnitude, axis a's term in mode a).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "reflect")]
    pub(super) mode: Vec<ModeArg>,
    /// Value beyond the edge in constant mode.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub(super) cval: f64,
    /// Kernel radius in standard deviations.
    #[arg(long, default_value_t = 4.0)]
    pub(super) truncate: f64,
    /// `gaussian` only: the order of the Gaussian's derivative, one value or one per
    /// axis (scipy's `order`; 0, the default, smooths).
    #[arg(long, value_delimiter = ',')]
    pub(super) order: Vec<u32>,
}

/// Flags of `gaussian-laplace`: the Gaussian's.
#[derive(Args, Clone)]
pub(super) struct DerivativeArgs {
    #[command(flatten)]
    pub(super) gaussian: GaussianArgs,
}

/// Flags of `gaussian-gradient-magnitude`: the Gaussian's.
#[derive(Args, Clone)]
pub(super) struct MagnitudeArgs {
    #[command(flatten)]
    pub(super) gaussian: GaussianArgs,
}

/// Flags of `uniform`.
#[derive(Args, Clone)]
pub(super) struct UniformArgs {
    /// The box's extent, one value or one per axis (1 leaves an axis untouched).
    #[arg(long, value_delimiter = ',', required = true)]
    pub(super) size: Vec<usize>,
    /// Boundary mode (scipy.ndimage): one, or one per axis.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "reflect")]
    pub(super) mode: Vec<ModeArg>,
    /// Value beyond the edge in constant mode.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub(super) cval: f64,
    /// scipy's origin: the box shifted against each axis by this, one value or one per
    /// axis, each within -(size / 2)..=(size - 1) / 2.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub(super) origin: Vec<i64>,
}

impl ToOp for UniformArgs {
    fn to_op(&self) -> crate::Result<Op> {
        let (mode, modes) = modes_of(&self.mode);
        Ok(Op::uniform(&self.size)
            .with_mode(mode, self.cval)
            .with_modes(&modes)
            .with_origin(&self.origin))
    }
}

/// Flags of the rank filters (`median`, `minimum`, `maximum`, and `percentile`'s
/// footprint).
#[derive(Args, Clone)]
pub(super) struct RankArgs {
    /// The box's extent, one value or one per axis (1 leaves an axis untouched).
    #[arg(long, value_delimiter = ',', required_unless_present = "footprint")]
    pub(super) size: Vec<usize>,
    /// A footprint instead of a box: a .npy array, nonzero where a tap is in (a
    /// footprint of fewer dimensions applies to the trailing axes).
    #[arg(long, conflicts_with = "size")]
    pub(super) footprint: Option<PathBuf>,
    /// Boundary mode (scipy.ndimage).
    #[arg(long, value_enum, default_value_t = ModeArg::Reflect)]
    pub(super) mode: ModeArg,
    /// Value beyond the edge in constant mode (cast to the element type).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub(super) cval: f64,
    /// scipy's origin: the window shifted against each axis by this, one value or one
    /// per axis, each within -(extent / 2)..=(extent - 1) / 2.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub(super) origin: Vec<i64>,
}

impl RankArgs {
    /// `op` with this box or footprint, mode, constant and origin.
    fn apply(&self, op: Op) -> crate::Result<Op> {
        let op = op
            .with_mode(self.mode.into(), self.cval)
            .with_origin(&self.origin);
        Ok(match &self.footprint {
            Some(path) => op.with_footprint(crate::Footprint::from_npy(path)?),
            None => op,
        })
    }
}

impl ToOp for RankArgs {
    fn to_op(&self) -> crate::Result<Op> {
        self.apply(Op::median(&self.size))
    }
}

/// Flags of `minimum`.
#[derive(Args, Clone)]
pub(super) struct MinimumArgs {
    #[command(flatten)]
    pub(super) rank: RankArgs,
}

impl ToOp for MinimumArgs {
    fn to_op(&self) -> crate::Result<Op> {
        self.rank.apply(Op::minimum(&self.rank.size))
    }
}

/// Flags of `maximum`.
#[derive(Args, Clone)]
pub(super) struct MaximumArgs {
    #[command(flatten)]
    pub(super) rank: RankArgs,
}

impl ToOp for MaximumArgs {
    fn to_op(&self) -> crate::Result<Op> {
        self.rank.apply(Op::maximum(&self.rank.size))
    }
}

/// Flags of `percentile`.
#[derive(Args, Clone)]
pub(super) struct PercentileArgs {
    /// The percentile, -100 to 100 (negative counts from 100), as scipy's.
    #[arg(long, allow_negative_numbers = true)]
    pub(super) percentile: f64,
    #[command(flatten)]
    pub(super) rank: RankArgs,
}

impl ToOp for PercentileArgs {
    fn to_op(&self) -> crate::Result<Op> {
        self.rank
            .apply(Op::percentile(self.percentile, &self.rank.size))
    }
}

/// Flags of `convolve`.
#[derive(Args, Clone)]
pub(super) struct ConvolveArgs {
    /// The kernel, a .npy file of up to as many dimensions as the array (trailing axes).
    #[arg(long)]
    pub(super) kernel: PathBuf,
    /// Boundary mode (scipy.ndimage).
    #[arg(long, value_enum, default_value_t = ModeArg::Reflect)]
    pub(super) mode: ModeArg,
    /// Value beyond the edge in constant mode.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub(super) cval: f64,
    /// scipy's origin: the kernel shifted against each axis by this, one value or one
    /// per kernel axis.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub(super) origin: Vec<i64>,
}

/// Flags of `downsample`.
#[derive(Args, Clone)]
pub(super) struct DownsampleArgs {
    /// Factor, one value or one per axis.
    #[arg(long, value_delimiter = ',', required = true)]
    pub(super) factor: Vec<usize>,
    /// How each window is reduced.
    #[arg(long, value_enum, default_value_t = DownArg::Mean)]
    pub(super) method: DownArg,
}

/// Flags of `project`.
#[derive(Args, Clone)]
pub(super) struct ProjectArgs {
    /// The axis to reduce (0 is the first).
    #[arg(long)]
    pub(super) axis: usize,
    /// The reduction: numpy's max, min, mean or sum.
    #[arg(long, value_enum, default_value_t = ProjectArg::Max)]
    pub(super) method: ProjectArg,
    /// Keep the axis, at size 1 (else the output has one dimension fewer).
    #[arg(long)]
    pub(super) keepdims: bool,
}

impl ToOp for ProjectArgs {
    fn to_op(&self) -> crate::Result<Op> {
        Ok(Op::Project {
            axis: self.axis,
            method: match self.method {
                ProjectArg::Max => ProjectMethod::Max,
                ProjectArg::Min => ProjectMethod::Min,
                ProjectArg::Mean => ProjectMethod::Mean,
                ProjectArg::Sum => ProjectMethod::Sum,
            },
            keepdims: self.keepdims,
        })
    }
}

/// Flags of `upsample`.
#[derive(Args, Clone)]
pub(super) struct UpsampleArgs {
    /// Factor, one value or one per axis.
    #[arg(long, value_delimiter = ',', required = true)]
    pub(super) factor: Vec<usize>,
    /// How new samples are made.
    #[arg(long, value_enum, default_value_t = UpArg::Nearest)]
    pub(super) method: UpArg,
}

impl ToOp for ThresholdArgs {
    fn to_op(&self) -> crate::Result<Op> {
        Ok(match (self.above, self.percentile) {
            (Some(above), _) => Op::threshold(above),
            (_, Some(percentile)) => Op::ThresholdPercentile { percentile },
            _ => Op::ThresholdOtsu {},
        })
    }
}

/// Flags of `normalize`.
#[derive(Args, Clone)]
pub(super) struct NormalizeArgs {
    /// The low and high percentiles of the whole input mapped to 0 and 1.
    #[arg(long, value_delimiter = ',', num_args = 1, default_value = "1,99.8")]
    pub(super) percentiles: Vec<f64>,
    /// Clip the result to [0, 1].
    #[arg(long)]
    pub(super) clip: bool,
}

impl ToOp for NormalizeArgs {
    fn to_op(&self) -> crate::Result<Op> {
        let [lo, hi] = self.percentiles[..] else {
            return Err(crate::Error::InvalidParameter {
                op: "normalize",
                message: format!(
                    "--percentiles takes two values (low,high), got {:?}",
                    self.percentiles
                ),
            });
        };
        Ok(Op::Normalize {
            percentiles: [lo, hi],
            clip: self.clip,
            values: None,
        })
    }
}

impl ToOp for ClipArgs {
    fn to_op(&self) -> crate::Result<Op> {
        Ok(Op::clip(self.min, self.max))
    }
}

impl ToOp for ConvolveArgs {
    fn to_op(&self) -> crate::Result<Op> {
        Ok(Op::convolve(Kernel::from_npy(&self.kernel)?)
            .with_mode(self.mode.into(), self.cval)
            .with_origin(&self.origin))
    }
}

impl ToOp for DownsampleArgs {
    fn to_op(&self) -> crate::Result<Op> {
        let method = match self.method {
            DownArg::Mean => DownMethod::Mean,
            DownArg::Max => DownMethod::Max,
            DownArg::Min => DownMethod::Min,
            DownArg::Stride => DownMethod::Stride,
            DownArg::Mode => DownMethod::Mode,
        };
        Ok(Op::downsample(&self.factor, method))
    }
}

impl ToOp for UpsampleArgs {
    fn to_op(&self) -> crate::Result<Op> {
        let method = match self.method {
            UpArg::Nearest => UpMethod::Nearest,
            UpArg::Linear => UpMethod::Linear,
        };
        Ok(Op::upsample(&self.factor, method))
    }
}

/// A `--mode` list as one mode (the first) and, where several are given, one per axis.
fn modes_of(modes: &[ModeArg]) -> (Boundary, Vec<Boundary>) {
    let all: Vec<Boundary> = modes.iter().map(|&m| m.into()).collect();
    let first = all.first().copied().unwrap_or_default();
    (first, if all.len() > 1 { all } else { Vec::new() })
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum ModeArg {
    Reflect,
    Mirror,
    Nearest,
    Constant,
    Wrap,
}

impl From<ModeArg> for Boundary {
    fn from(m: ModeArg) -> Boundary {
        match m {
            ModeArg::Reflect => Boundary::Reflect,
            ModeArg::Mirror => Boundary::Mirror,
            ModeArg::Nearest => Boundary::Nearest,
            ModeArg::Constant => Boundary::Constant,
            ModeArg::Wrap => Boundary::Wrap,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum DownArg {
    Mean,
    Max,
    Min,
    Stride,
    Mode,
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum ProjectArg {
    Max,
    Min,
    Mean,
    Sum,
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum UpArg {
    Nearest,
    Linear,
}

/// The ops, as `info` and `run` parse them.
#[derive(Subcommand)]
pub(super) enum InfoOp {
    /// Plan a threshold.
    Threshold(ThresholdArgs),
    /// Plan a clip.
    Clip(ClipArgs),
    /// Plan a Gaussian.
    Gaussian(GaussianArgs),
    /// Plan a convolution.
    Convolve(ConvolveArgs),
    /// Plan a Laplacian of Gaussian.
    GaussianLaplace(DerivativeArgs),
    /// Plan a gradient magnitude of Gaussian.
    GaussianGradientMagnitude(MagnitudeArgs),
    /// Plan a uniform filter.
    Uniform(UniformArgs),
    /// Plan a normalisation from percentiles.
    Normalize(NormalizeArgs),
    /// Plan a Richardson-Lucy deconvolution.
    Deconvolve(DeconvolveArgs),
    /// Plan a non-local means denoising.
    Denoise(DenoiseArgs),
    /// Plan a generalized Anscombe transform.
    Anscombe(AnscombeArgs),
    /// Plan its inverse.
    InverseAnscombe(InverseAnscombeArgs),
    /// Plan a median filter.
    Median(RankArgs),
    /// Plan a percentile filter.
    Percentile(PercentileArgs),
    /// Plan a minimum filter.
    Minimum(MinimumArgs),
    /// Plan a maximum filter.
    Maximum(MaximumArgs),
    /// Plan a downsampling.
    Downsample(DownsampleArgs),
    /// Plan a projection.
    Project(ProjectArgs),
    /// Plan an upsampling.
    Upsample(UpsampleArgs),
    /// Plan an affine transform.
    Affine(AffineArgs),
    /// Plan a zoom.
    Zoom(ZoomArgs),
    /// Plan a rotation.
    Rotate(RotateArgs),
    /// Plan a deskew.
    Deskew(DeskewArgs),
}

/// Turns an op's flags into a [`Step`] of a chain: an [`Op`], or a Gaussian whose
/// sigma may be a length.
pub(super) trait ToStep {
    fn to_step(&self) -> crate::Result<Step>;
}

/// The [`Step`] of each op that has no physical units: the op itself.
macro_rules! steps_of_ops {
    ($($args:ty),* $(,)?) => {
        $(impl ToStep for $args {
            fn to_step(&self) -> crate::Result<Step> {
                self.to_op().map(Step::Op)
            }
        })*
    };
}

steps_of_ops!(
    DeconvolveArgs,
    DenoiseArgs,
    AnscombeArgs,
    InverseAnscombeArgs,
    ThresholdArgs,
    ClipArgs,
    ConvolveArgs,
    UniformArgs,
    NormalizeArgs,
    RankArgs,
    PercentileArgs,
    MinimumArgs,
    MaximumArgs,
    DownsampleArgs,
    ProjectArgs,
    UpsampleArgs,
    AffineArgs,
    ZoomArgs,
    RotateArgs,
    DeskewArgs,
);

impl GaussianArgs {
    /// The Gaussian `kind` with these flags.
    fn step(&self, kind: GaussianKind) -> Step {
        let (mode, modes) = modes_of(&self.mode);
        Step::Gaussian {
            kind,
            sigma: self.sigma.clone(),
            edge: Edge::new(mode, self.cval),
            truncate: self.truncate,
            modes,
            order: self.order.clone(),
        }
    }
}

impl ToStep for GaussianArgs {
    fn to_step(&self) -> crate::Result<Step> {
        Ok(self.step(GaussianKind::Smooth))
    }
}

impl ToStep for DerivativeArgs {
    fn to_step(&self) -> crate::Result<Step> {
        Ok(self.gaussian.step(GaussianKind::Laplace))
    }
}

impl ToStep for MagnitudeArgs {
    fn to_step(&self) -> crate::Result<Step> {
        Ok(self.gaussian.step(GaussianKind::GradientMagnitude))
    }
}

impl ToStep for InfoOp {
    fn to_step(&self) -> crate::Result<Step> {
        match self {
            InfoOp::Threshold(a) => a.to_step(),
            InfoOp::Clip(a) => a.to_step(),
            InfoOp::Gaussian(a) => a.to_step(),
            InfoOp::Convolve(a) => a.to_step(),
            InfoOp::GaussianLaplace(a) => a.to_step(),
            InfoOp::GaussianGradientMagnitude(a) => a.to_step(),
            InfoOp::Uniform(a) => a.to_step(),
            InfoOp::Normalize(a) => a.to_step(),
            InfoOp::Deconvolve(a) => a.to_step(),
            InfoOp::Denoise(a) => a.to_step(),
            InfoOp::Anscombe(a) => a.to_step(),
            InfoOp::InverseAnscombe(a) => a.to_step(),
            InfoOp::Median(a) => a.to_step(),
            InfoOp::Percentile(a) => a.to_step(),
            InfoOp::Minimum(a) => a.to_step(),
            InfoOp::Maximum(a) => a.to_step(),
            InfoOp::Downsample(a) => a.to_step(),
            InfoOp::Project(a) => a.to_step(),
            InfoOp::Upsample(a) => a.to_step(),
            InfoOp::Affine(a) => a.to_step(),
            InfoOp::Zoom(a) => a.to_step(),
            InfoOp::Rotate(a) => a.to_step(),
            InfoOp::Deskew(a) => a.to_step(),
        }
    }
}

/// The chain a command runs: one op, none for `copy`, a chain for `run`.
pub(super) trait ToChain {
    fn to_chain(&self) -> crate::Result<Chain>;
}

impl<T: ToStep> ToChain for T {
    fn to_chain(&self) -> crate::Result<Chain> {
        Ok(Chain::new(vec![self.to_step()?]))
    }
}

impl ToChain for CopyArgs {
    fn to_chain(&self) -> crate::Result<Chain> {
        Ok(Chain::default())
    }
}

impl ToChain for ChainArgs {
    fn to_chain(&self) -> crate::Result<Chain> {
        self.chain()
    }
}

/// A `--sigma` value: pixels, or a length (`1.5um`).
fn parse_sigma(s: &str) -> Result<Sigma, String> {
    s.parse::<Sigma>().map_err(flag_error)
}

/// A flag's value refused by the library, as clap shows it: the message alone.
pub(super) fn flag_error(e: crate::Error) -> String {
    match e {
        crate::Error::InvalidParameter { message, .. } => message,
        other => other.to_string(),
    }
}
