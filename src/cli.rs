//! The `haloflow` command: Zarr in, Zarr out, one operation per run. A thin layer over
//! the library: it parses flags, opens the arrays, and reports. The binary calls
//! [`main`]; [`command`] runs one command line in-process (the Python package's `run`
//! goes through it, so that it behaves exactly as the command).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::backend::{Backend, Device, Setting};
use crate::exec::{self, Part, Report, RunOptions, Sink, Source};
use crate::store::{Axis, Compression, Input, NgffVersion, OmeImage, Output, OutputSpec};
use crate::{Boundary, DType, DownMethod, Kernel, Op, Pipeline, Plan, ProjectMethod, UpMethod};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "haloflow",
    version,
    about = "Chunked filters on Zarr arrays, exact against scipy.ndimage",
    long_about = "Chunked filters on Zarr arrays (v2 and v3), exact against scipy.ndimage \
                  whatever the chunking. Runs are bounded in memory, resume after a kill \
                  (run the same command again), and split across processes with --part I/N."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Op(OpCommand),
    /// Show an array's shape, dtype, chunks and codecs, and the job plan of an op.
    Info(InfoArgs),
    /// Whole-array statistics: min, max, mean, std, NaN count, exact percentiles
    /// (numpy's `linear`), a histogram; over the array or per index along an axis.
    Stats(StatsArgs),
    /// A multiscale pyramid of level 0 as an OME-Zarr image: each level the previous
    /// one downsampled (mean, max, min, mode, stride, or gaussian smoothing first).
    /// Level 0's chunks are copied as they are encoded where the output's chunks, type
    /// and codecs are the input's.
    Pyramid(PyramidArgs),
    /// Create an op's output (array metadata, OME-Zarr group) without computing it, and
    /// print its jobs and the memory a task needs: `init gaussian IN OUT --sigma 2`
    /// before an array job of `gaussian IN OUT --sigma 2 --part auto`.
    Init(InitArgs),
    /// Check that every job of an output (an array, or each level of an OME-Zarr
    /// image) is done; exits non-zero if any is missing.
    Verify(VerifyArgs),
    /// List the GPU adapters wgpu sees (name, backend, type).
    Devices,
}

/// The ops: each reads an input and writes an output (and `init` creates that output).
#[derive(Subcommand)]
enum OpCommand {
    /// `x > T` as uint8 0/1.
    Threshold(Run<ThresholdArgs>),
    /// `np.clip(x, LO, HI)`, dtype kept.
    Clip(Run<ClipArgs>),
    /// `scipy.ndimage.gaussian_filter`, float32 out.
    Gaussian(Run<GaussianArgs>),
    /// `scipy.ndimage.convolve` with a kernel from a .npy file, float32 out.
    Convolve(Run<ConvolveArgs>),
    /// `scipy.ndimage.gaussian_laplace` (Laplacian of Gaussian), float32 out.
    GaussianLaplace(Run<DerivativeArgs>),
    /// `scipy.ndimage.gaussian_gradient_magnitude`, float32 out.
    GaussianGradientMagnitude(Run<MagnitudeArgs>),
    /// `scipy.ndimage.uniform_filter`: the mean over a box, float32 out.
    Uniform(Run<UniformArgs>),
    /// `(x - p_lo) / (p_hi - p_lo)` in float32 from the whole input's percentiles
    /// (CSBDeep's normalisation), optionally clipped to [0, 1].
    Normalize(Run<NormalizeArgs>),
    /// `scipy.ndimage.median_filter` over a box or a footprint, element type kept.
    Median(Run<RankArgs>),
    /// `scipy.ndimage.percentile_filter` (and `rank_filter`), element type kept.
    Percentile(Run<PercentileArgs>),
    /// `scipy.ndimage.minimum_filter` (grey erosion), element type kept.
    Minimum(Run<MinimumArgs>),
    /// `scipy.ndimage.maximum_filter` (grey dilation), element type kept.
    Maximum(Run<MaximumArgs>),
    /// Reduce by integer factors (mean, max, min, stride, mode).
    Downsample(Run<DownsampleArgs>),
    /// Reduce one axis (numpy's max, min, mean, sum): a maximum-intensity projection.
    Project(Run<ProjectArgs>),
    /// Enlarge by integer factors (nearest, linear).
    Upsample(Run<UpsampleArgs>),
    /// Re-encode, rechunk (--chunks) and cast (--dtype): no operation, the I/O ceiling.
    Copy(Run<CopyArgs>),
    /// A chain of ops in one pass, no intermediate array:
    /// `run IN OUT [FLAGS] gaussian --sigma 2 + threshold --above 100 + downsample --factor 2`.
    Run(Run<ChainArgs>),
}

/// `init OP IN OUT [FLAGS]`.
#[derive(Args)]
struct InitArgs {
    /// The op and its arguments, exactly as for the run itself.
    #[command(subcommand)]
    op: OpCommand,
}

/// `verify OUT`.
#[derive(Args)]
struct VerifyArgs {
    /// The output: an array, or an OME-Zarr image (every level).
    output: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// `pyramid IN OUT`.
#[derive(Args)]
struct PyramidArgs {
    /// Input: an OME-Zarr image (its --level, 0 by default) or a plain array.
    input: PathBuf,
    /// Output OME-Zarr image (levels `0`, `1`, ...; created, or resumed).
    output: PathBuf,
    /// Number of levels, level 0 included [default: until a level fits in one chunk].
    #[arg(long)]
    levels: Option<usize>,
    /// Factor between levels, one value or one per axis [default: 2 on space axes, 1 on
    /// time and channel axes].
    #[arg(long, value_delimiter = ',')]
    factor: Option<Vec<usize>>,
    /// How a level is made from the previous one: a downsampling method, or
    /// `gaussian` (a Gaussian of sigma f/3 on each downsampled axis, then the mean of
    /// each window, cast back to the element type, as scikit-image's
    /// `pyramid_gaussian` and ngff-zarr's Gaussian method smooth before subsampling).
    #[arg(long, value_enum, default_value_t = PyramidMethod::Mean)]
    method: PyramidMethod,
    #[command(flatten)]
    common: Common,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum PyramidMethod {
    Mean,
    Max,
    Min,
    Mode,
    Stride,
    Gaussian,
}

/// An op's run: input, output, the op's flags, the common flags.
#[derive(Args)]
struct Run<A: Args> {
    /// Input array: the directory holding `.zarray` or `zarr.json` (e.g. image.zarr/0).
    input: PathBuf,
    /// Output array directory (created, or resumed if it exists with the same metadata).
    output: PathBuf,
    #[command(flatten)]
    op: A,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct Common {
    /// Where to compute: `auto` takes a hardware GPU if there is one, else the CPU.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    device: DeviceArg,
    /// The GPU adapter to use, by (part of its) name, as listed by `haloflow devices`.
    #[arg(long)]
    adapter: Option<String>,
    /// Worker threads (jobs in flight) [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Output chunk shape, one value or one per axis [default: the input's].
    #[arg(long, value_delimiter = ',')]
    chunks: Option<Vec<usize>>,
    /// Write the output sharded (Zarr v3 `sharding_indexed`): the shard shape, one value
    /// or one per axis, a whole number of chunks (e.g. `--chunks 64 --shards 256`).
    /// A shard is one file, written whole by one job group: a part owns whole shards,
    /// and a killed run resumes shard by shard.
    #[arg(long, value_delimiter = ',')]
    shards: Option<Vec<usize>>,
    /// Output dtype (round half to even, saturate) [default: the op's].
    #[arg(long)]
    dtype: Option<String>,
    /// Output Zarr format.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    zarr_format: u8,
    /// Output chunk compression: `zstd:LEVEL` (-7 to 22; lower is faster, 3 is
    /// zarr-python's default), `zstd` (level 3) or `none`.
    #[arg(long, default_value = "zstd:3", value_parser = parse_compression)]
    compression: Compression,
    /// Run only part I of N (0-based), e.g. a SLURM array task: `--part 3/8`; or
    /// `--part auto` (`auto/N` for Kubernetes' JOB_COMPLETION_INDEX) to take it from
    /// SLURM_ARRAY_TASK_ID, SGE_TASK_ID or JOB_COMPLETION_INDEX.
    #[arg(long, value_parser = parse_part)]
    part: Option<PartArg>,
    /// Recompute and replace an existing output, even an incompatible one.
    #[arg(long)]
    overwrite: bool,
    /// Memory budget for jobs in flight and decoded chunks, e.g. 2G, 512M [default: 1/4 of RAM].
    #[arg(long, value_parser = parse_size)]
    memory_limit: Option<u64>,
    /// No progress bar and no summary.
    #[arg(long, short)]
    quiet: bool,
    /// Write a JSON report of the run to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The level of an OME-Zarr input to read (0, the finest, by default; the level's
    /// own path works too).
    #[arg(long, default_value_t = 0)]
    level: usize,
    /// The NGFF version of an OME-Zarr output: 0.4 (Zarr v2) or 0.5 (Zarr v3)
    /// [default: the input's; 0.5 with --ome].
    #[arg(long)]
    ngff_version: Option<String>,
    /// Write an OME-Zarr image from a plain array input (an OME-Zarr input always
    /// gives one): axes from --axes, pixel spacing from --scale, units from --units.
    #[arg(long)]
    ome: bool,
    /// With --ome: the axis names, e.g. `z,y,x` or `t,c,z,y,x` [default: the last
    /// ones of t,c,z,y,x].
    #[arg(long, value_delimiter = ',', requires = "ome")]
    axes: Option<Vec<String>>,
    /// With --ome: the pixel spacing, one value or one per axis [default: 1].
    #[arg(long, value_delimiter = ',', requires = "ome")]
    scale: Option<Vec<f64>>,
    /// With --ome: the units, one per axis (`micrometer`, `second`, ...; `-` for none).
    #[arg(long, value_delimiter = ',', requires = "ome")]
    units: Option<Vec<String>>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum DeviceArg {
    Auto,
    Cpu,
    Gpu,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
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
enum DownArg {
    Mean,
    Max,
    Min,
    Stride,
    Mode,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProjectArg {
    Max,
    Min,
    Mean,
    Sum,
}

#[derive(Clone, Copy, ValueEnum)]
enum UpArg {
    Nearest,
    Linear,
}

/// `copy` has only the common flags.
#[derive(Args, Clone)]
struct CopyArgs {}

/// The chain of `run` and `info`: ops on the command line, or a pipeline file.
#[derive(Args, Clone)]
struct ChainArgs {
    /// The chain from a file: JSON or TOML in the form outputs record it
    /// (`{"ops": [{"op": "gaussian", "sigma": [2.0]}, ...]}`), or an output (its
    /// directory, `zarr.json` or `.zattrs`), to replay the run that wrote it.
    #[arg(long)]
    pipeline: Option<PathBuf>,
    /// The ops, after the common flags: `OP [FLAGS] + OP [FLAGS] + ...`, each OP one of
    /// threshold, clip, gaussian, convolve, downsample, upsample, with its own flags.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "OP [FLAGS] + OP [FLAGS]"
    )]
    chain: Vec<String>,
}

/// One op of a chain, parsed with the op's own flags.
#[derive(Parser)]
#[command(name = "op", no_binary_name = true)]
struct OpLine {
    #[command(subcommand)]
    op: InfoOp,
}

impl ChainArgs {
    /// The pipeline: from the file, or the ops on the command line (each reading an
    /// array of the spacing `space` leaves after the ops before it).
    fn pipeline(&self, mut space: Option<Space>) -> crate::Result<Pipeline> {
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
            (Some(path), true) => read_pipeline(path),
            (None, false) => {
                let mut ops = Vec::new();
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
                    let op = line.op.to_op_in(space.as_ref())?;
                    if let Some(s) = space.as_mut() {
                        s.after(&op)?;
                    }
                    ops.push(op);
                }
                Ok(Pipeline::new(ops))
            }
        }
    }
}

/// The pixel spacing of the input: its OME-Zarr level's, or `--ome`'s `--scale` and
/// `--units`.
fn physical_space(
    c: &Common,
    image: &Option<(OmeImage, usize)>,
    ndim: usize,
) -> crate::Result<Option<Space>> {
    if let Some((image, level)) = image {
        return Ok(Some(Space::of(image, *level)));
    }
    if !c.ome {
        return Ok(None);
    }
    let names = match &c.axes {
        Some(n) => n.clone(),
        None => OmeImage::default_axes(ndim)
            .into_iter()
            .map(|a| a.name)
            .collect(),
    };
    let scale = match &c.scale {
        Some(s) => crate::ops::per_axis("scale", s, ndim)?,
        None => vec![1.0; ndim],
    };
    let units: Vec<Option<f64>> = match &c.units {
        Some(u) if u.len() == ndim => u.iter().map(|u| micrometers_per(u)).collect(),
        _ => vec![None; ndim],
    };
    Ok(Some(Space {
        axes: names
            .into_iter()
            .zip(scale)
            .zip(units)
            .map(|((n, s), u)| (n, s, u))
            .collect(),
    }))
}

/// The array to read: `path` itself, or level `level` of the OME-Zarr image there;
/// with the image and level when the array is one.
fn resolve_input(path: &Path, level: usize) -> crate::Result<(PathBuf, Option<(OmeImage, usize)>)> {
    if let Some(image) = OmeImage::open(path)? {
        let array = image.level_path(level)?;
        return Ok((array, Some((image, level))));
    }
    Ok((path.to_path_buf(), OmeImage::of_level(path)?))
}

/// The OME-Zarr image to write, if any: derived from the input image's level, or
/// (`--ome`) made for a plain array from `--axes`, `--scale` and `--units`.
fn ome_output(
    c: &Common,
    force_ome: bool,
    input: Option<(OmeImage, usize)>,
    pipeline: &Pipeline,
    ndim: usize,
    (from, to): (DType, DType),
) -> crate::Result<Option<OmeImage>> {
    let bad = |message: String| crate::Error::InvalidParameter { op: "ome", message };
    let version = match (&c.ngff_version, &input) {
        (Some(v), _) => v.parse::<NgffVersion>()?,
        (None, Some((image, _))) => image.version,
        (None, None) => NgffVersion::V05,
    };
    let (image, level) = match input {
        Some(found) => found,
        None if c.ome || force_ome => {
            if !(2..=5).contains(&ndim) {
                return Err(bad(format!(
                    "OME-Zarr images have 2 to 5 axes; this array has {ndim}"
                )));
            }
            let mut axes = match &c.axes {
                Some(names) if names.len() != ndim => {
                    return Err(bad(format!(
                        "--axes gives {} names for {ndim} axes",
                        names.len()
                    )));
                }
                Some(names) => names
                    .iter()
                    .map(|n| Axis {
                        name: n.clone(),
                        kind: Some(OmeImage::axis_kind(n).to_string()),
                        unit: None,
                    })
                    .collect(),
                None => OmeImage::default_axes(ndim),
            };
            if let Some(units) = &c.units {
                if units.len() != ndim {
                    return Err(bad(format!(
                        "--units gives {} units for {ndim} axes",
                        units.len()
                    )));
                }
                for (a, u) in axes.iter_mut().zip(units) {
                    a.unit = (u != "-" && !u.is_empty()).then(|| u.clone());
                }
            }
            let scale = match &c.scale {
                Some(s) => crate::ops::per_axis("scale", s, ndim)?,
                None => vec![1.0; ndim],
            };
            if scale.iter().any(|&s| !(s > 0.0 && s.is_finite())) {
                return Err(bad(format!("--scale must be positive, got {scale:?}")));
            }
            (OmeImage::plain(axes, scale, version), 0)
        }
        None => {
            if c.ngff_version.is_some() {
                return Err(bad("--ngff-version needs an OME-Zarr input or --ome".into()));
            }
            return Ok(None);
        }
    };
    if image.axes.len() != ndim {
        return Err(bad("the image's axes do not match its array".into()));
    }
    Ok(Some(image.derived(level, pipeline, from, to, version)?))
}

/// Reads a pipeline from JSON or TOML: a pipeline itself, or the attributes (or whole
/// metadata) of an output, which record it under `haloflow.pipeline`; a directory is
/// read through its `zarr.json` or `.zattrs`.
fn read_pipeline(path: &Path) -> crate::Result<Pipeline> {
    let fail = |message: String| crate::Error::Store {
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

/// Flags of `threshold`.
#[derive(Args, Clone)]
#[group(required = true, multiple = false)]
struct ThresholdArgs {
    /// Voxels above this value become 1, others 0.
    #[arg(long, allow_negative_numbers = true)]
    above: Option<f64>,
    /// The threshold is Otsu's of the whole input (skimage.filters.threshold_otsu,
    /// 256 bins), computed first.
    #[arg(long)]
    otsu: bool,
    /// The threshold is this percentile of the whole input (numpy's, exact), computed
    /// first.
    #[arg(long)]
    percentile: Option<f64>,
}

/// Flags of `clip`.
#[derive(Args, Clone)]
struct ClipArgs {
    /// Lower bound.
    #[arg(long, allow_negative_numbers = true)]
    min: f64,
    /// Upper bound.
    #[arg(long, allow_negative_numbers = true)]
    max: f64,
}

/// Flags of `gaussian`.
#[derive(Args, Clone)]
struct GaussianArgs {
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
    sigma: Vec<Sigma>,
    /// Boundary mode (scipy.ndimage).
    #[arg(long, value_enum, default_value_t = ModeArg::Reflect)]
    mode: ModeArg,
    /// Value beyond the edge in constant mode.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    cval: f64,
    /// Kernel radius in standard deviations.
    #[arg(long, default_value_t = 4.0)]
    truncate: f64,
}

/// Flags of `gaussian-laplace`: the Gaussian's.
#[derive(Args, Clone)]
struct DerivativeArgs {
    #[command(flatten)]
    gaussian: GaussianArgs,
}

/// Flags of `gaussian-gradient-magnitude`: the Gaussian's.
#[derive(Args, Clone)]
struct MagnitudeArgs {
    #[command(flatten)]
    gaussian: GaussianArgs,
}

/// The Gaussian `op` as its Laplacian (`magnitude` false) or gradient magnitude.
fn derivative_of(op: Op, magnitude: bool) -> Op {
    let Op::Gaussian {
        sigma,
        mode,
        cval,
        truncate,
    } = op
    else {
        unreachable!("the Gaussian's flags make a Gaussian")
    };
    if magnitude {
        Op::GaussianGradientMagnitude {
            sigma,
            mode,
            cval,
            truncate,
        }
    } else {
        Op::GaussianLaplace {
            sigma,
            mode,
            cval,
            truncate,
        }
    }
}

impl ToOp for DerivativeArgs {
    fn to_op(&self) -> crate::Result<Op> {
        self.to_op_in(None)
    }

    fn to_op_in(&self, space: Option<&Space>) -> crate::Result<Op> {
        Ok(derivative_of(self.gaussian.to_op_in(space)?, false))
    }
}

impl ToOp for MagnitudeArgs {
    fn to_op(&self) -> crate::Result<Op> {
        self.to_op_in(None)
    }

    fn to_op_in(&self, space: Option<&Space>) -> crate::Result<Op> {
        Ok(derivative_of(self.gaussian.to_op_in(space)?, true))
    }
}

/// Flags of `uniform`.
#[derive(Args, Clone)]
struct UniformArgs {
    /// The box's extent, one value or one per axis (1 leaves an axis untouched).
    #[arg(long, value_delimiter = ',', required = true)]
    size: Vec<usize>,
    /// Boundary mode (scipy.ndimage).
    #[arg(long, value_enum, default_value_t = ModeArg::Reflect)]
    mode: ModeArg,
    /// Value beyond the edge in constant mode.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    cval: f64,
}

impl ToOp for UniformArgs {
    fn to_op(&self) -> crate::Result<Op> {
        Ok(Op::uniform(&self.size).with_mode(self.mode.into(), self.cval))
    }
}

/// Flags of the rank filters (`median`, `minimum`, `maximum`, and `percentile`'s
/// footprint).
#[derive(Args, Clone)]
struct RankArgs {
    /// The box's extent, one value or one per axis (1 leaves an axis untouched).
    #[arg(long, value_delimiter = ',', required_unless_present = "footprint")]
    size: Vec<usize>,
    /// A footprint instead of a box: a .npy array, nonzero where a tap is in (a
    /// footprint of fewer dimensions applies to the trailing axes).
    #[arg(long, conflicts_with = "size")]
    footprint: Option<PathBuf>,
    /// Boundary mode (scipy.ndimage).
    #[arg(long, value_enum, default_value_t = ModeArg::Reflect)]
    mode: ModeArg,
    /// Value beyond the edge in constant mode (cast to the element type).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    cval: f64,
}

impl RankArgs {
    /// `op` with this box or footprint, mode and constant.
    fn apply(&self, op: Op) -> crate::Result<Op> {
        let op = op.with_mode(self.mode.into(), self.cval);
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
struct MinimumArgs {
    #[command(flatten)]
    rank: RankArgs,
}

impl ToOp for MinimumArgs {
    fn to_op(&self) -> crate::Result<Op> {
        self.rank.apply(Op::minimum(&self.rank.size))
    }
}

/// Flags of `maximum`.
#[derive(Args, Clone)]
struct MaximumArgs {
    #[command(flatten)]
    rank: RankArgs,
}

impl ToOp for MaximumArgs {
    fn to_op(&self) -> crate::Result<Op> {
        self.rank.apply(Op::maximum(&self.rank.size))
    }
}

/// Flags of `percentile`.
#[derive(Args, Clone)]
struct PercentileArgs {
    /// The percentile, -100 to 100 (negative counts from 100), as scipy's.
    #[arg(long, allow_negative_numbers = true)]
    percentile: f64,
    #[command(flatten)]
    rank: RankArgs,
}

impl ToOp for PercentileArgs {
    fn to_op(&self) -> crate::Result<Op> {
        self.rank
            .apply(Op::percentile(self.percentile, &self.rank.size))
    }
}

/// Flags of `convolve`.
#[derive(Args, Clone)]
struct ConvolveArgs {
    /// The kernel, a .npy file of up to as many dimensions as the array (trailing axes).
    #[arg(long)]
    kernel: PathBuf,
    /// Boundary mode (scipy.ndimage).
    #[arg(long, value_enum, default_value_t = ModeArg::Reflect)]
    mode: ModeArg,
    /// Value beyond the edge in constant mode.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    cval: f64,
}

/// Flags of `downsample`.
#[derive(Args, Clone)]
struct DownsampleArgs {
    /// Factor, one value or one per axis.
    #[arg(long, value_delimiter = ',', required = true)]
    factor: Vec<usize>,
    /// How each window is reduced.
    #[arg(long, value_enum, default_value_t = DownArg::Mean)]
    method: DownArg,
}

/// Flags of `project`.
#[derive(Args, Clone)]
struct ProjectArgs {
    /// The axis to reduce (0 is the first).
    #[arg(long)]
    axis: usize,
    /// The reduction: numpy's max, min, mean or sum.
    #[arg(long, value_enum, default_value_t = ProjectArg::Max)]
    method: ProjectArg,
    /// Keep the axis, at size 1 (else the output has one dimension fewer).
    #[arg(long)]
    keepdims: bool,
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
struct UpsampleArgs {
    /// Factor, one value or one per axis.
    #[arg(long, value_delimiter = ',', required = true)]
    factor: Vec<usize>,
    /// How new samples are made.
    #[arg(long, value_enum, default_value_t = UpArg::Nearest)]
    method: UpArg,
}

/// `info IN [OP FLAGS]`.
#[derive(Args)]
struct InfoArgs {
    /// The array to describe.
    input: PathBuf,
    /// Output chunk shape for the plan [default: the input's].
    #[arg(long, value_delimiter = ',')]
    chunks: Option<Vec<usize>>,
    /// The level of an OME-Zarr image to describe and plan for.
    #[arg(long, default_value_t = 0)]
    level: usize,
    /// Show the job plan of this op or chain (`gaussian --sigma 2 + threshold --above 1`).
    #[command(flatten)]
    chain: ChainArgs,
}

/// `stats IN`.
#[derive(Args)]
struct StatsArgs {
    /// The array (an OME-Zarr image's --level, 0 by default, or a plain array).
    input: PathBuf,
    /// The level of an OME-Zarr image.
    #[arg(long, default_value_t = 0)]
    level: usize,
    /// Report per index along this axis (per channel, per time point ...).
    #[arg(long)]
    axis: Option<usize>,
    /// Histogram bins (np.histogram's: equal bins from min to max).
    #[arg(long)]
    histogram: Option<usize>,
    /// Percentiles to compute exactly, 0 to 100 (numpy's `linear` method).
    #[arg(long, value_delimiter = ',')]
    percentiles: Vec<f64>,
    /// Also write everything as JSON to this file (`-` for standard output only).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Reader threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// MiB of values the first pass may keep for float and 32-bit types: with
    /// percentiles alone, the values near them (resolved in that pass); with a
    /// histogram, the decoded chunks (each then decoded once). 0 keeps none.
    #[arg(long, default_value_t = 1024)]
    keep_decoded: u64,
    /// No summary on standard output (with --json FILE: only the file).
    #[arg(long, short)]
    quiet: bool,
}

/// The ops, as `info` and `run` parse them.
#[derive(Subcommand)]
enum InfoOp {
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
}

/// Turns an op's flags into an [`Op`].
trait ToOp {
    fn to_op(&self) -> crate::Result<Op>;

    /// The op reading an array of this pixel spacing (for physical units).
    fn to_op_in(&self, space: Option<&Space>) -> crate::Result<Op> {
        let _ = space;
        self.to_op()
    }
}

/// The pipeline a command runs: one op, none for `copy`, a chain for `run`; `space`
/// is the input's pixel spacing, where known (for sigmas in physical units).
trait ToPipeline {
    fn to_pipeline(&self, space: Option<Space>) -> crate::Result<Pipeline>;
}

impl<T: ToOp> ToPipeline for T {
    fn to_pipeline(&self, space: Option<Space>) -> crate::Result<Pipeline> {
        Ok(Pipeline::from(self.to_op_in(space.as_ref())?))
    }
}

impl ToPipeline for CopyArgs {
    fn to_pipeline(&self, _: Option<Space>) -> crate::Result<Pipeline> {
        Ok(Pipeline::new(Vec::new()))
    }
}

impl ToPipeline for ChainArgs {
    fn to_pipeline(&self, space: Option<Space>) -> crate::Result<Pipeline> {
        self.pipeline(space)
    }
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
struct NormalizeArgs {
    /// The low and high percentiles of the whole input mapped to 0 and 1.
    #[arg(long, value_delimiter = ',', num_args = 1, default_value = "1,99.8")]
    percentiles: Vec<f64>,
    /// Clip the result to [0, 1].
    #[arg(long)]
    clip: bool,
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

impl ToOp for GaussianArgs {
    fn to_op(&self) -> crate::Result<Op> {
        self.to_op_in(None)
    }

    fn to_op_in(&self, space: Option<&Space>) -> crate::Result<Op> {
        let bad = |message: String| crate::Error::InvalidParameter {
            op: "gaussian",
            message,
        };
        let physical = self.sigma.iter().any(|s| s.micrometers.is_some());
        let sigma = match (physical, space) {
            (false, _) => self.sigma.iter().map(|s| s.value).collect(),
            (true, None) => {
                return Err(bad(
                    "a sigma with a unit needs the pixel spacing: an OME-Zarr input, or --ome \
                     with --scale and --units"
                        .into(),
                ));
            }
            (true, Some(space)) => {
                let ndim = space.axes.len();
                let sigma = crate::ops::per_axis("sigma", &self.sigma, ndim)?;
                let mut out = Vec::with_capacity(ndim);
                for (s, (name, spacing, unit)) in sigma.iter().zip(&space.axes) {
                    out.push(match (s.micrometers, unit) {
                        (None, _) => s.value,
                        (Some(0.0), _) => 0.0,
                        (Some(um), Some(unit_um)) => um / (spacing * unit_um),
                        (Some(_), None) => {
                            return Err(bad(format!(
                                "axis '{name}' has no length unit, so a sigma with a unit cannot \
                                 apply to it (give 0 or pixels there)"
                            )));
                        }
                    });
                }
                out
            }
        };
        Ok(Op::Gaussian {
            sigma,
            mode: self.mode.into(),
            cval: self.cval,
            truncate: self.truncate,
        })
    }
}

/// A sigma on the command line: pixels, or a length (`value` in its unit, and the
/// same in micrometers).
#[derive(Clone, Copy, Debug)]
struct Sigma {
    value: f64,
    micrometers: Option<f64>,
}

/// Micrometers per unit of length, by the names NGFF uses and their short forms.
fn micrometers_per(unit: &str) -> Option<f64> {
    Some(match unit.trim().to_ascii_lowercase().as_str() {
        "angstrom" | "å" => 1e-4,
        "nm" | "nanometer" | "nanometre" => 1e-3,
        "um" | "µm" | "micrometer" | "micrometre" | "micron" => 1.0,
        "mm" | "millimeter" | "millimetre" => 1e3,
        "cm" | "centimeter" | "centimetre" => 1e4,
        "m" | "meter" | "metre" => 1e6,
        _ => return None,
    })
}

fn parse_sigma(s: &str) -> Result<Sigma, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(t.len());
    // The number ends at the first character that cannot be part of it (no unit
    // starts with e or E).
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{s}' is not a sigma (pixels, or a length such as 1.5um)"))?;
    if unit.trim().is_empty() {
        return Ok(Sigma {
            value,
            micrometers: None,
        });
    }
    let per = micrometers_per(unit).ok_or_else(|| {
        format!(
            "unknown unit '{}' in '{s}' (nm, um, mm, m, ...)",
            unit.trim()
        )
    })?;
    Ok(Sigma {
        value,
        micrometers: Some(value * per),
    })
}

/// The pixel spacing of the array a chain's op reads: per axis its name, spacing, and
/// micrometers per unit of its unit (if a length).
#[derive(Clone, Debug)]
struct Space {
    axes: Vec<(String, f64, Option<f64>)>,
}

impl Space {
    /// The spacing of an image's level.
    fn of(image: &OmeImage, level: usize) -> Space {
        let l = &image.levels[level];
        Space {
            axes: image
                .axes
                .iter()
                .zip(&l.scale)
                .map(|(a, &s)| {
                    (
                        a.name.clone(),
                        s,
                        a.unit.as_deref().and_then(micrometers_per),
                    )
                })
                .collect(),
        }
    }

    /// The spacing after `op` (resampling changes it).
    fn after(&mut self, op: &Op) -> crate::Result<()> {
        let (factor, down) = match op {
            Op::Downsample { factor, .. } => (factor, true),
            Op::Upsample { factor, .. } => (factor, false),
            _ => return Ok(()),
        };
        let f = crate::ops::per_axis("factor", factor, self.axes.len())?;
        for (a, f) in self.axes.iter_mut().zip(f) {
            a.1 = if down { a.1 * f as f64 } else { a.1 / f as f64 };
        }
        Ok(())
    }
}

impl ToOp for ConvolveArgs {
    fn to_op(&self) -> crate::Result<Op> {
        Ok(Op::convolve(Kernel::from_npy(&self.kernel)?).with_mode(self.mode.into(), self.cval))
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

impl ToOp for InfoOp {
    fn to_op(&self) -> crate::Result<Op> {
        self.to_op_in(None)
    }

    fn to_op_in(&self, space: Option<&Space>) -> crate::Result<Op> {
        match self {
            InfoOp::Threshold(a) => a.to_op(),
            InfoOp::Clip(a) => a.to_op(),
            InfoOp::Gaussian(a) => a.to_op_in(space),
            InfoOp::Convolve(a) => a.to_op(),
            InfoOp::GaussianLaplace(a) => a.to_op_in(space),
            InfoOp::GaussianGradientMagnitude(a) => a.to_op_in(space),
            InfoOp::Uniform(a) => a.to_op(),
            InfoOp::Normalize(a) => a.to_op(),
            InfoOp::Median(a) => a.to_op(),
            InfoOp::Percentile(a) => a.to_op(),
            InfoOp::Minimum(a) => a.to_op(),
            InfoOp::Maximum(a) => a.to_op(),
            InfoOp::Downsample(a) => a.to_op(),
            InfoOp::Project(a) => a.to_op(),
            InfoOp::Upsample(a) => a.to_op(),
        }
    }
}

/// `--part`: fixed, or from the scheduler's environment.
#[derive(Clone, Copy, Debug)]
enum PartArg {
    Fixed(Part),
    /// `auto`, with the task count where given (`auto/N`).
    Auto(Option<usize>),
}

fn parse_part(s: &str) -> Result<PartArg, String> {
    let t = s.trim();
    if t == "auto" {
        return Ok(PartArg::Auto(None));
    }
    if let Some(n) = t.strip_prefix("auto/") {
        return n
            .trim()
            .parse::<usize>()
            .map(|n| PartArg::Auto(Some(n)))
            .map_err(|_| format!("expected auto/N, got '{s}'"));
    }
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("expected I/N (e.g. 0/4), got '{s}'"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| format!("'{s}' is not I/N"))
    };
    Part::new(parse(i)?, parse(n)?)
        .map(PartArg::Fixed)
        .map_err(|e| e.to_string())
}

/// The part this process runs: `--part`, or the array task the scheduler's
/// environment names (said on stderr unless `--quiet`).
fn part_of(c: &Common) -> crate::Result<Part> {
    match c.part {
        None => Ok(Part::ALL),
        Some(PartArg::Fixed(p)) => Ok(p),
        Some(PartArg::Auto(count)) => {
            let (part, how) = Part::from_environment(|k| std::env::var(k).ok(), count)?;
            if !c.quiet {
                eprintln!("--part auto: part {}/{} from {how}", part.index, part.count);
            }
            Ok(part)
        }
    }
}

fn parse_compression(s: &str) -> Result<Compression, String> {
    let level = match s.trim().to_ascii_lowercase().as_str() {
        "none" => return Ok(Compression::None),
        "zstd" => 3,
        other => other
            .strip_prefix("zstd:")
            .and_then(|l| l.trim().parse::<i32>().ok())
            .ok_or_else(|| format!("expected zstd, zstd:LEVEL or none, got '{s}'"))?,
    };
    if !(-7..=22).contains(&level) {
        return Err(format!("zstd level {level} is outside -7..=22"));
    }
    Ok(Compression::Zstd { level })
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let t = t
        .strip_suffix("IB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(&t);
    let (digits, unit) = match t.chars().last() {
        Some(c @ ('K' | 'M' | 'G' | 'T')) => (&t[..t.len() - 1], c),
        _ => (t, ' '),
    };
    let value: f64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 2G, 512M, 1000000)"))?;
    let scale = match unit {
        'K' => 1u64 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        'T' => 1 << 40,
        _ => 1,
    };
    if value.is_nan() || value <= 0.0 {
        return Err(format!("the size '{s}' must be positive"));
    }
    Ok((value * scale as f64) as u64)
}

/// Tunes glibc's malloc for a run's large, short-lived buffers (decoded and encoded
/// chunks of megabytes):
/// - at most two arenas: with one per thread (workers, codec threads), freed decode
///   buffers lingered in each and resident memory grew to twice `--memory-limit`;
/// - such buffers come from the heap and stay there between chunks, instead of being
///   mapped and unmapped each time: first-touch page faults on fresh mappings cost
///   more than decoding (a copy took 0.65 s instead of 0.45 s).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// The `haloflow` binary: tunes the process (allocator, SIGPIPE, the Vulkan loader's
/// chatter), parses the command line, runs it, and prints an error as one line.
pub fn main() -> ExitCode {
    tune_malloc();
    // Like other command-line tools, end quietly when the reader of our output goes
    // away (`haloflow info ... | head`) instead of panicking on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before any thread starts: it may set an environment variable.
    crate::gpu::quiet_vulkan_loader();
    let cli = Cli::parse();
    let result = dispatch(&cli.command);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("haloflow: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command line in this process, `args` without the program name (e.g.
/// `["gaussian", "in.zarr", "out.zarr", "--sigma", "2"]`), as the binary does, except
/// that it neither tunes the process nor exits. `--help` and `--version` print and
/// succeed.
///
/// # Errors
/// The command's error; [`Error::InvalidParameter`](crate::Error::InvalidParameter)
/// (op `arguments`) for a command line that does not parse, with clap's message.
pub fn command<I, T>(args: I) -> crate::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let argv = std::iter::once(std::ffi::OsString::from("haloflow"))
        .chain(args.into_iter().map(Into::into));
    match Cli::try_parse_from(argv) {
        Ok(cli) => dispatch(&cli.command),
        Err(e) if !e.use_stderr() => {
            print!("{}", e.render());
            Ok(())
        }
        Err(e) => Err(crate::Error::InvalidParameter {
            op: "arguments",
            message: e
                .render()
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string(),
        }),
    }
}

/// Runs `command`.
fn dispatch(command: &Command) -> crate::Result<()> {
    match command {
        Command::Op(op) => run_op(op, false),
        Command::Init(i) => run_op(&i.op, true),
        Command::Verify(v) => verify(v),
        Command::Info(a) => info(a),
        Command::Stats(a) => stats(a),
        Command::Pyramid(p) => pyramid(p),
        Command::Devices => devices(),
    }
}

/// Runs an op, or with `init` only creates its output.
fn run_op(op: &OpCommand, init: bool) -> crate::Result<()> {
    match op {
        OpCommand::Threshold(r) => run(r, init),
        OpCommand::Clip(r) => run(r, init),
        OpCommand::Gaussian(r) => run(r, init),
        OpCommand::Convolve(r) => run(r, init),
        OpCommand::GaussianLaplace(r) => run(r, init),
        OpCommand::GaussianGradientMagnitude(r) => run(r, init),
        OpCommand::Uniform(r) => run(r, init),
        OpCommand::Normalize(r) => run(r, init),
        OpCommand::Median(r) => run(r, init),
        OpCommand::Percentile(r) => run(r, init),
        OpCommand::Minimum(r) => run(r, init),
        OpCommand::Maximum(r) => run(r, init),
        OpCommand::Downsample(r) => run(r, init),
        OpCommand::Project(r) => run(r, init),
        OpCommand::Upsample(r) => run(r, init),
        OpCommand::Copy(r) => run(r, init),
        OpCommand::Run(r) => run(r, init),
    }
}

/// Expands a per-axis list of chunk extents for an array of `ndim` dimensions.
fn chunk_shape(
    chunks: &Option<Vec<usize>>,
    default: Vec<usize>,
    shape: &[usize],
) -> crate::Result<Vec<usize>> {
    let chunk = match chunks {
        Some(c) => crate::ops::per_axis("chunks", c, shape.len())?,
        None => default,
    };
    if chunk.contains(&0) {
        return Err(crate::Error::InvalidParameter {
            op: "chunks",
            message: format!("chunk extents must be >= 1, got {chunk:?}"),
        });
    }
    // A chunk longer than the array is clamped: it holds the whole axis either way.
    Ok(chunk
        .iter()
        .zip(shape)
        .map(|(&c, &n)| c.min(n.max(1)))
        .collect())
}

/// Plans `pipeline` over `input`, one job per output chunk (`--chunks`, or the
/// input's chunk shape).
fn plan_for(
    pipeline: &Pipeline,
    input: &Input,
    chunks: &Option<Vec<usize>>,
) -> crate::Result<Plan> {
    let (out_shape, _) = pipeline.output(input.shape(), input.dtype())?;
    // --chunks gives the written array's chunks: without the axis a final projection
    // drops (planned at size 1).
    let chunks = match (pipeline.dropped_axis()?, chunks) {
        (Some(axis), Some(c)) => {
            if c.len() + 1 != out_shape.len() {
                return Err(crate::Error::AxisCount {
                    what: "chunks",
                    ndim: out_shape.len() - 1,
                    got: c.len(),
                });
            }
            let mut c = c.clone();
            c.insert(axis, 1);
            Some(c)
        }
        (_, c) => c.clone(),
    };
    let chunk = chunk_shape(&chunks, input.read_chunk_shape(), &out_shape)?;
    Plan::new(pipeline, input.shape(), input.dtype(), &chunk, &chunk)
}

fn run<A: Args + ToPipeline>(r: &Run<A>, init: bool) -> crate::Result<()> {
    let c = &r.common;
    // Before anything is created: a part that cannot be found leaves nothing behind.
    let part = part_of(c)?;
    let device = device_of(c);
    let (input_path, ome_input) = resolve_input(&r.input, c.level)?;
    let input = Input::open(&input_path)?;
    let space = physical_space(c, &ome_input, input.shape().len())?;
    let mut pipeline = r.op.to_pipeline(space)?;
    if let Some(d) = &c.dtype {
        pipeline = pipeline.with_dtype(d.parse::<DType>()?);
    }
    // A threshold or normalisation from the input's statistics: computed first, and
    // recorded with the pipeline.
    let (pipeline, statistics) = resolve_statistics(&pipeline, &input, c.threads, c.memory_limit)?;
    let plan = plan_for(&pipeline, &input, &c.chunks)?;
    // Before anything is created: a missing GPU must leave no output behind.
    let (backend, reason) =
        Backend::select_for(device, c.adapter.as_deref(), &plan, Setting::Zarr)?;
    let (mut out_shape, out_dtype, mut chunk) = (
        plan.output_shape().to_vec(),
        plan.output_dtype(),
        plan.output_chunk().to_vec(),
    );
    let dropped = pipeline.dropped_axis()?;
    if let Some(axis) = dropped {
        out_shape.remove(axis);
        chunk.remove(axis);
    }
    let mut attributes = serde_json::Map::new();
    let mut record = serde_json::json!({ "pipeline": pipeline });
    if let Some(values) = &statistics {
        record["statistics"] = values.clone();
    }
    attributes.insert("haloflow".into(), record);
    let ome = ome_output(
        c,
        false,
        ome_input,
        &pipeline,
        input.shape().len(),
        (input.dtype(), out_dtype),
    )?;
    let mut spec = OutputSpec::new(&out_shape, out_dtype, &chunk)
        .with_zarr_format(c.zarr_format)
        .with_compression(c.compression)
        .with_attributes(attributes);
    let array_path = match &ome {
        Some(image) => {
            image.check_target(&r.output)?;
            spec = spec
                .with_zarr_format(image.version.zarr_format())
                .with_dimension_names(image.axes.iter().map(|a| a.name.clone()).collect());
            r.output.join(&image.levels[0].path)
        }
        None => r.output.clone(),
    };
    if let Some(shards) = &c.shards {
        spec = spec.with_shards(crate::ops::per_axis("shards", shards, out_shape.len())?);
    }
    let output = Output::create(&array_path, &spec, c.overwrite)?;
    if let Some(image) = &ome {
        image.write_group(&r.output, &pipeline, None)?;
    }

    let options = run_options(c, part, backend, reason);
    if init {
        return print_init(&plan, &input, &output, &options, &r.output, dropped);
    }
    let squeezed;
    let sink: &dyn exec::Sink = match dropped {
        Some(axis) => {
            squeezed = exec::DropAxis {
                sink: &output,
                axis,
            };
            &squeezed
        }
        None => &output,
    };
    let groups = exec::job_groups(&plan, sink.write_unit().as_deref())?;
    let jobs: usize = groups[options.part.jobs(groups.len())]
        .iter()
        .map(Vec::len)
        .sum();
    let bar = progress_bar(c, jobs);
    let on_progress = |done: usize, bytes: u64| advance(&bar, done, bytes);
    let mut report = exec::run(&plan, &input, sink, &options, Some(&on_progress))?;
    report.statistics = statistics;
    finish(c, bar, &report, &r.output, "")
}

/// What `init` tells before an array job: the jobs, how a part splits them, and the
/// memory a task needs.
fn print_init(
    plan: &Plan,
    input: &Input,
    output: &Output,
    options: &RunOptions,
    path: &Path,
    dropped: Option<usize>,
) -> crate::Result<()> {
    let unit = match dropped {
        Some(axis) => exec::DropAxis { sink: output, axis }.write_unit(),
        None => output.spec().shard.clone(),
    };
    let groups = exec::job_groups(plan, unit.as_deref())?;
    let jobs = groups.len();
    let what = match &output.spec().shard {
        Some(s) => format!("shards of {s:?}"),
        None => format!("chunks of {:?}", output.spec().chunk),
    };
    let estimate = exec::memory_estimate(plan, input, options.threads);
    println!("created   {}", path.display());
    println!("jobs      {jobs} ({what}), one write each");
    if options.part.count > 1 {
        let mine = options.part.jobs(jobs).len();
        println!(
            "part      {}/{}: {mine} jobs (each of {} parts gets {} or {})",
            options.part.index,
            options.part.count,
            options.part.count,
            jobs / options.part.count,
            jobs.div_ceil(options.part.count)
        );
    }
    println!(
        "memory    about {} MiB per task with {} threads (at most --memory-limit {} MiB, which bounds the chunk cache)",
        estimate.min(options.memory_limit).div_ceil(1 << 20) + PROCESS_OVERHEAD_MIB,
        options.threads,
        options.memory_limit >> 20
    );
    println!(
        "next      run the same command with --part I/N or --part auto (N tasks, N <= {jobs}), then `haloflow verify {}`",
        path.display()
    );
    Ok(())
}

/// The process's own memory beyond its data: code, runtime, allocator arenas.
const PROCESS_OVERHEAD_MIB: u64 = 48;

/// `verify OUT`: every job of the output done, or the missing ones and a failure.
fn verify(v: &VerifyArgs) -> crate::Result<()> {
    let found = crate::store::verify(&v.output)?;
    let missing: usize = found.iter().map(|c| c.jobs_total - c.jobs_done).sum();
    if v.json {
        let json = serde_json::json!({
            "path": v.output,
            "complete": missing == 0,
            "arrays": found,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).expect("JSON values serialise")
        );
    } else {
        for c in &found {
            let mut line = format!(
                "{}: {} of {} jobs done",
                c.path.display(),
                c.jobs_done,
                c.jobs_total
            );
            if !c.complete() {
                let more = c.jobs_total - c.jobs_done - c.missing.len();
                line += &format!(
                    "; missing: {}{}",
                    c.missing.join(" "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                );
            }
            if !c.written_by_haloflow {
                line += " (not written by haloflow: other writers may leave fill-value chunks unstored)";
            }
            println!("{line}");
        }
    }
    if missing > 0 {
        return Err(crate::Error::Incomplete {
            path: v.output.clone(),
            missing,
        });
    }
    Ok(())
}

/// `pipeline` with the statistics of `input` that its first op needs filled in (none:
/// as it is), computed with `threads` readers (default: every core) keeping half of
/// `memory_limit` (default: the runs') of decoded chunks between passes; and the
/// values used.
fn resolve_statistics(
    pipeline: &Pipeline,
    input: &Input,
    threads: Option<usize>,
    memory_limit: Option<u64>,
) -> crate::Result<(Pipeline, Option<serde_json::Value>)> {
    let defaults = RunOptions::default();
    let threads = threads.unwrap_or(defaults.threads);
    let keep = memory_limit.unwrap_or(defaults.memory_limit) / 2;
    crate::stats::resolve(pipeline, input, threads, keep)
}

/// The options of a run from the common flags.
fn run_options(c: &Common, part: Part, backend: Backend, reason: String) -> RunOptions {
    let mut options = RunOptions {
        backend,
        device_reason: Some(reason),
        overwrite: c.overwrite,
        part,
        ..RunOptions::default()
    };
    if let Some(t) = c.threads {
        options.threads = t.max(1);
    }
    if let Some(m) = c.memory_limit {
        options.memory_limit = m;
    }
    options
}

fn device_of(c: &Common) -> Device {
    match c.device {
        DeviceArg::Auto => Device::Auto,
        DeviceArg::Cpu => Device::Cpu,
        DeviceArg::Gpu => Device::Gpu,
    }
}

/// `pyramid`: level 0 and each coarser level, every one planned as the chain of steps
/// that makes it from level 0, so that each level equals the previous one stepped
/// down, exactly as one run of that chain would give it (no level is read back).
fn pyramid(p: &PyramidArgs) -> crate::Result<()> {
    let c = &p.common;
    let part = part_of(c)?;
    let bad = |message: String| crate::Error::InvalidParameter {
        op: "pyramid",
        message,
    };
    if c.shards.is_some() {
        return Err(bad(
            "--shards is not supported by pyramid yet (its levels are written chunk by chunk)"
                .into(),
        ));
    }
    let (input_path, ome_input) = resolve_input(&p.input, c.level)?;
    let input = Input::open(&input_path)?;
    let ndim = input.shape().len();
    let dtype = input.dtype();
    let base = ome_output(
        c,
        true,
        ome_input,
        &Pipeline::new(vec![]),
        ndim,
        (dtype, dtype),
    )?
    .expect("an image, forced");
    let factor = match &p.factor {
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
    let step: Vec<Op> = match p.method {
        PyramidMethod::Gaussian => {
            let sigma = factor
                .iter()
                .map(|&f| if f > 1 { f as f64 / 3.0 } else { 0.0 })
                .collect::<Vec<_>>();
            let mut ops = vec![
                Op::gaussian(&sigma),
                Op::downsample(&factor, DownMethod::Mean),
            ];
            if dtype != DType::F32 {
                ops.push(Op::Cast { dtype });
            }
            ops
        }
        m => vec![Op::downsample(
            &factor,
            match m {
                PyramidMethod::Mean => DownMethod::Mean,
                PyramidMethod::Max => DownMethod::Max,
                PyramidMethod::Min => DownMethod::Min,
                PyramidMethod::Mode => DownMethod::Mode,
                _ => DownMethod::Stride,
            },
        )],
    };
    // The chain making each level from level 0.
    let mut chains = vec![Pipeline::new(vec![])];
    loop {
        let last = chains.last().expect("level 0");
        let (shape, _) = last.output(input.shape(), dtype)?;
        let chunk = chunk_shape(&c.chunks, input.chunk_shape(), &shape)?;
        let done = match p.levels {
            Some(n) => chains.len() >= n.max(1),
            // Axes not downsampled (channels, time) never shrink: they do not count.
            None => (0..ndim).all(|a| factor[a] == 1 || shape[a] <= chunk[a]) || chains.len() >= 32,
        };
        let next = Pipeline::new(last.ops.iter().chain(&step).cloned().collect());
        let (next_shape, _) = next.output(input.shape(), dtype)?;
        if done || next_shape == shape {
            if p.levels.is_some_and(|n| chains.len() < n) {
                return Err(bad(format!(
                    "only {} levels shrink the array (shape {shape:?})",
                    chains.len()
                )));
            }
            break;
        }
        chains.push(next);
    }
    let plans = chains
        .iter()
        .map(|chain| plan_for(chain, &input, &c.chunks))
        .collect::<crate::Result<Vec<_>>>()?;
    let (backend, reason) = Backend::select_for(
        device_of(c),
        c.adapter.as_deref(),
        plans.last().expect("a level"),
        Setting::Zarr,
    )?;
    let mut image = base.clone();
    image.levels.clear();
    for (k, chain) in chains.iter().enumerate() {
        let derived = base.derived(0, chain, dtype, dtype, base.version)?;
        let mut level = derived.levels[0].clone();
        level.path = k.to_string();
        image.levels.push(level);
    }
    image.check_target(&p.output)?;
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
        .with_compression(c.compression)
        .with_attributes(attributes)
        .with_dimension_names(image.axes.iter().map(|a| a.name.clone()).collect());
        outputs.push(Output::create(
            &p.output.join(k.to_string()),
            &spec,
            c.overwrite,
        )?);
    }
    let kind = p.method.to_possible_value().expect("no method is skipped");
    image.write_group(
        &p.output,
        &Pipeline::new(step.clone()),
        Some(kind.get_name()),
    )?;

    let options = run_options(c, part, backend, reason);
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
    let one_pass = exec::Pyramid {
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
    let copied = if one_pass.copy_level0.is_some() {
        ", level 0's chunks copied as the input encodes them"
    } else {
        ""
    };
    let tiles = plans.last().map_or(1, |p| p.num_jobs());
    let bar = progress_bar(c, options.part.jobs(tiles).len());
    let on_tile = |done: usize, bytes: u64| advance(&bar, done, bytes);
    if let Some(report) = one_pass.run(&options, Some(&on_tile))? {
        let how = format!(
            " ({} levels in one pass over level 0, a job per tile of the coarsest level's chunks{copied})",
            chains.len()
        );
        return finish(c, bar, &report, &p.output, &how);
    }
    if let Some(b) = &bar {
        b.set_length(total as u64);
        b.set_position(0);
    }
    let mut report = Report::default();
    let mut done_before = 0;
    for (plan, output) in plans.iter().zip(&outputs) {
        let on_progress = |done: usize, bytes: u64| advance(&bar, done_before + done, bytes);
        let level = exec::run(plan, &input, output, &options, Some(&on_progress))?;
        done_before += level.jobs_total;
        report.add(level);
    }
    report.seconds = started.elapsed().as_secs_f64();
    let how = format!(
        " ({} levels, each from level 0 by its own chain)",
        chains.len()
    );
    finish(c, bar, &report, &p.output, &how)
}

/// A progress bar over `jobs` jobs, when one is shown (not `--quiet`, stderr a
/// terminal).
fn progress_bar(c: &Common, jobs: usize) -> Option<indicatif::ProgressBar> {
    (!c.quiet && std::io::stderr().is_terminal()).then(|| new_progress_bar(jobs))
}

/// Shows `done` jobs and the rate of writing on the bar, if there is one.
fn advance(bar: &Option<indicatif::ProgressBar>, done: usize, bytes: u64) {
    if let Some(b) = bar {
        b.set_position(done as u64);
        let secs = b.elapsed().as_secs_f64().max(1e-3);
        b.set_message(format!("{:.0} MB/s", bytes as f64 / 1e6 / secs));
    }
}

/// The end of a run: clears the bar, prints the summary (followed by `how`) unless
/// `--quiet`, and writes the `--report`.
fn finish(
    c: &Common,
    bar: Option<indicatif::ProgressBar>,
    report: &Report,
    output: &Path,
    how: &str,
) -> crate::Result<()> {
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if !c.quiet {
        eprintln!("{}{how}", summary(report, output));
    }
    if let Some(path) = &c.report {
        write_report(path, report)?;
    }
    Ok(())
}

fn new_progress_bar(jobs: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(jobs as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} jobs  {msg}  elapsed {elapsed}  eta {eta}",
        )
        .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn summary(report: &Report, output: &Path) -> String {
    let s = &report.stages;
    let busy = (s.read + s.compute + s.write).max(1e-9);
    format!(
        "{}: {} jobs done, {} already done, of {} in {:.2} s ({:.0} MB/s written) on {}\n  \
         device choice: {}\n  \
         time per stage (summed over workers): read+decode {:.2} s ({:.0}%), compute {:.2} s ({:.0}%), encode+write {:.2} s ({:.0}%)",
        output.display(),
        report.jobs_done,
        report.jobs_skipped,
        report.jobs_total,
        report.seconds,
        report.bytes_written as f64 / 1e6 / report.seconds.max(1e-9),
        report.device,
        report
            .device_reason
            .as_deref()
            .unwrap_or("given by the caller"),
        s.read,
        100.0 * s.read / busy,
        s.compute,
        100.0 * s.compute / busy,
        s.write,
        100.0 * s.write / busy,
    )
}

fn write_report(path: &Path, report: &Report) -> crate::Result<()> {
    let text = serde_json::to_string_pretty(report).expect("a report serialises");
    std::fs::write(path, text + "\n").map_err(|e| crate::Error::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn devices() -> crate::Result<()> {
    let adapters = crate::gpu::adapters();
    if adapters.is_empty() {
        println!("no GPU adapter found (Vulkan, Metal or DX12); haloflow will use the CPU");
    }
    for a in adapters {
        println!("{a}");
    }
    Ok(())
}

fn stats(a: &StatsArgs) -> crate::Result<()> {
    let (path, _) = resolve_input(&a.input, a.level)?;
    let input = Input::open(&path)?;
    let options = crate::stats::StatsOptions {
        axis: a.axis,
        histogram: a.histogram,
        percentiles: a.percentiles.clone(),
        keep_decoded: a.keep_decoded << 20,
    };
    let threads = a.threads.unwrap_or(RunOptions::default().threads);
    let started = std::time::Instant::now();
    let s = crate::stats::statistics(&input, &options, threads)?;
    let json = serde_json::to_string_pretty(&s).expect("serialises");
    if a.json.as_deref() == Some(Path::new("-")) {
        println!("{json}");
        return Ok(());
    }
    if !a.quiet {
        print_statistics(&s, &path, started.elapsed().as_secs_f64());
    }
    if let Some(file) = &a.json {
        std::fs::write(file, json + "\n").map_err(|e| crate::Error::Store {
            path: file.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(())
}

/// `stats`' summary: one line per summary, its percentiles and histogram below.
fn print_statistics(s: &crate::stats::Statistics, path: &Path, seconds: f64) {
    println!(
        "{}: {:?} {}, {} pass{} in {:.2} s",
        path.display(),
        s.shape,
        s.dtype,
        s.passes,
        if s.passes == 1 { "" } else { "es" },
        seconds
    );
    for m in &s.summaries {
        let label = match (m.index, s.axis) {
            (Some(i), Some(axis)) => format!("axis {axis} index {i}: "),
            _ => String::new(),
        };
        println!(
            "{label}count {} NaN {} min {} max {} mean {} std {}",
            m.count, m.nan_count, m.min, m.max, m.mean, m.std
        );
        if !m.percentiles.is_empty() {
            let p: Vec<String> = m
                .percentiles
                .iter()
                .map(|p| format!("p{} = {}", p.percentile, p.value))
                .collect();
            println!("  {}", p.join(", "));
        }
        if let Some(h) = &m.histogram {
            println!(
                "  histogram: {} bins from {} to {}: {:?}",
                h.counts.len(),
                h.edges[0],
                h.edges[h.counts.len()],
                h.counts
            );
        }
    }
}

fn info(a: &InfoArgs) -> crate::Result<()> {
    let (path, image) = resolve_input(&a.input, a.level)?;
    if let Some((image, level)) = &image {
        println!("{}", image.path.display());
        print!("{}", image.describe());
        println!("level {level}:");
    }
    let input = Input::open(&path)?;
    println!("{}", path.display());
    println!("{}", input.describe());
    if a.chain.pipeline.is_some() || !a.chain.chain.is_empty() {
        let space = image.as_ref().map(|(i, l)| Space::of(i, *l));
        // A threshold or normalisation from statistics: computed, to plan the op the
        // run would plan.
        let (pipeline, statistics) =
            resolve_statistics(&a.chain.pipeline(space)?, &input, None, None)?;
        if let Some(values) = statistics {
            println!("statistics of the input: {values}");
        }
        let plan = plan_for(&pipeline, &input, &a.chunks)?;
        let (out_shape, out_dtype, chunk) = (
            plan.output_shape(),
            plan.output_dtype(),
            plan.output_chunk(),
        );
        println!(
            "plan: {}",
            serde_json::to_string(&pipeline).expect("serialises")
        );
        println!("  output shape {out_shape:?} {out_dtype}, chunks {chunk:?}");
        println!("  {} jobs (one per output chunk)", plan.num_jobs());
        let reads = |job: &crate::Job| {
            job.footprint()
                .iter()
                .map(|set| format!("{:?}", set.runs()))
                .collect::<Vec<_>>()
                .join(" x ")
        };
        for job in [plan.job(0), plan.job(plan.num_jobs() / 2)] {
            println!(
                "  job {}: output {:?}+{:?} reads {} (edge padding per stage {:?})",
                job.index,
                job.output.start,
                job.output.shape,
                reads(&job),
                plan.edge_padding(&job)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_parts_parse() {
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1G").is_err());
        assert!(
            matches!(parse_part("2/3"), Ok(PartArg::Fixed(p)) if p == Part::new(2, 3).unwrap())
        );
        assert!(matches!(parse_part("auto"), Ok(PartArg::Auto(None))));
        assert!(matches!(parse_part("auto/4"), Ok(PartArg::Auto(Some(4)))));
        assert!(parse_part("auto/x").is_err());
        assert!(parse_part("3/3").is_err());
        assert!(parse_part("1").is_err());
        assert_eq!(parse_compression("none").unwrap(), Compression::None);
        assert_eq!(
            parse_compression("zstd").unwrap(),
            Compression::Zstd { level: 3 }
        );
        assert_eq!(
            parse_compression("ZSTD:-3").unwrap(),
            Compression::Zstd { level: -3 }
        );
        assert!(parse_compression("zstd:99").is_err());
        assert!(parse_compression("gzip").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
