//! The command line's grammar: subcommands, the flags every run shares ([`Common`],
//! turned into the library's [`Options`]), and the parsers of sizes, parts and
//! compression.

use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use super::geometry::{AffineArgs, DeskewArgs, RotateCommand, ZoomArgs};
use super::ops::{
    ChainArgs, ClipArgs, ConvolveArgs, CopyArgs, DerivativeArgs, DownsampleArgs, GaussianArgs,
    MagnitudeArgs, MaximumArgs, MinimumArgs, NormalizeArgs, PercentileArgs, ProjectArgs, RankArgs,
    ThresholdArgs, UniformArgs, UpsampleArgs, flag_error,
};
use super::restore::{AnscombeArgs, DeconvolveArgs, DenoiseArgs, InverseAnscombeArgs};
use crate::backend::Device;
use crate::exec::Part;
use crate::store::{Compression, NgffVersion};
use crate::zarr::{OmeAxes, Options, PyramidMethod};

#[derive(Parser)]
#[command(
    name = "haloflow",
    version,
    about = "Chunked filters on Zarr arrays, exact against scipy.ndimage",
    long_about = "Chunked filters on Zarr arrays (v2 and v3), exact against scipy.ndimage \
                  whatever the chunking. Runs are bounded in memory, resume after a kill \
                  (run the same command again), and split across processes with --part I/N."
)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
    /// Requests kept in flight to an object store (`s3://`, `https://` inputs and
    /// outputs), whatever the compute threads: reads fetched ahead, writes in the
    /// background.
    #[arg(long, global = true, value_name = "N", default_value_t = crate::store::remote::DEFAULT_IO_CONCURRENCY,
          value_parser = clap::value_parser!(u32).range(1..=4096).map(|n| n as usize))]
    pub(super) io_concurrency: usize,
}

#[derive(Subcommand)]
pub(super) enum Command {
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
    /// Connected components, numbered as `scipy.ndimage.label` numbers them whatever
    /// the chunking (labels in raster order of each object's first voxel), uint32 by
    /// default (--dtype). Split a large array with `--part I/N` in N processes, then
    /// `label --merge` once; at the end of a chain: `run IN OUT ... + label`.
    Label(Run<LabelArgs>),
    /// A table of a label array's objects (CSV or Parquet), one row each: area, centroid, bounding
    /// box, and with --intensity the mean, min, max and sum of an image over each
    /// (skimage's regionprops_table), streamed chunk by chunk.
    Objects(ObjectsArgs),
    /// Check that every job of an output (an array, or each level of an OME-Zarr
    /// image) is done; exits non-zero if any is missing.
    Verify(VerifyArgs),
    /// List the GPU adapters wgpu sees: number, name, type, backend, PCI bus id.
    Devices,
    /// Convert an instrument's file (TIFF, OME-TIFF, NIfTI) or any array to an
    /// OME-Zarr image (or a plain array with --plain) in one streamed pass, its axes,
    /// pixel sizes, units and channel names carried over; with --pyramid, with its
    /// lower levels too.
    Convert(ConvertArgs),
    /// A PNG picture of an array: a maximum or mean projection, or a slice, with the
    /// contrast from percentiles; on a pyramid, from the level nearest --size.
    Preview(PreviewArgs),
}

/// The ops: each reads an input and writes an output (and `init` creates that output).
#[derive(Subcommand)]
pub(super) enum OpCommand {
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
    /// skimage.restoration.richardson_lucy: Richardson-Lucy deconvolution with a PSF
    /// (.npy) or a Gaussian one, float32 out, unclipped unless --clip.
    Deconvolve(Run<DeconvolveArgs>),
    /// skimage.restoration.denoise_nl_means (preserve_range=True): non-local means on
    /// 2-D images and 3-D volumes (the leading axes of 4-D and 5-D one volume at a
    /// time), float32 out; optionally in the Anscombe domain of a Poisson-Gaussian
    /// noise model (--noise poisson-gaussian).
    Denoise(Run<DenoiseArgs>),
    /// The generalized Anscombe transform of Poisson-Gaussian data, float32 out:
    /// 2/G * sqrt(max(G*x + 3/8*G^2 + S^2 - G*O, 0)), unit-variance noise.
    Anscombe(Run<AnscombeArgs>),
    /// The closed-form unbiased inverse of `anscombe` (Makitalo and Foi, 2013),
    /// float32 out.
    InverseAnscombe(Run<InverseAnscombeArgs>),
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
    /// `scipy.ndimage.affine_transform`: the output at index o is the input
    /// interpolated (splines of order 0 to 5) at matrix . o + offset; element type kept.
    Affine(Run<AffineArgs>),
    /// `scipy.ndimage.zoom` by any factor per axis (output round(n * factor)).
    Zoom(Run<ZoomArgs>),
    /// `scipy.ndimage.rotate` by an angle in the plane of two axes (--axes I,J;
    /// default 1,0).
    Rotate(Run<RotateCommand>),
    /// Lattice light-sheet / oblique-plane deskew of (z, y, x): with s = scan-step *
    /// cos(angle) / pixel-size, out[z, y, x] = in[z, y, x - z*s] (linear, 0 outside),
    /// x grown by ceil((nz - 1) * s): affine_transform with [[1,0,0],[0,1,0],[-s,0,1]],
    /// order 1, mode constant. --rotate also rotates to the coverslip in the same
    /// transform; --mip also writes the maximum projections along z, y and x.
    Deskew(Run<DeskewArgs>),
    /// Re-encode, rechunk (--chunks) and cast (--dtype): no operation, the I/O ceiling.
    Copy(Run<CopyArgs>),
    /// A chain of ops in one pass, no intermediate array:
    /// `run IN OUT [FLAGS] gaussian --sigma 2 + threshold --above 100 + downsample --factor 2`.
    Run(Run<ChainArgs>),
}

/// `init OP IN OUT [FLAGS]`.
#[derive(Args)]
pub(super) struct InitArgs {
    /// The op and its arguments, exactly as for the run itself.
    #[command(subcommand)]
    pub(super) op: OpCommand,
}

/// `verify OUT`.
#[derive(Args)]
pub(super) struct VerifyArgs {
    /// The output: an array, or an OME-Zarr image (every level).
    pub(super) output: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub(super) json: bool,
}

/// `preview IN OUT.png`.
#[derive(Args)]
pub(super) struct PreviewArgs {
    /// The array: a Zarr array, an OME-Zarr image, a TIFF or NIfTI file.
    pub(super) input: PathBuf,
    /// The PNG to write.
    pub(super) output: PathBuf,
    /// The axis projected or sliced, by number or name (`z`) [default: the third from
    /// last, z of …zyx; none for 2-D or c,y,x arrays].
    #[arg(long)]
    pub(super) axis: Option<String>,
    /// How: `max` (a maximum-intensity projection), `mean`, or `slice` (at --index).
    #[arg(long, default_value = "max", value_parser = ["max", "mean", "slice"])]
    pub(super) method: String,
    /// The index a slice shows [default: the middle].
    #[arg(long)]
    pub(super) index: Option<usize>,
    /// The channel shown, along the `c` axis [default: 0].
    #[arg(long)]
    pub(super) channel: Option<usize>,
    /// The contrast window: `auto` (the 0.1st to 99.9th percentiles) or `LO,HI`.
    #[arg(long, default_value = "auto")]
    pub(super) contrast: String,
    /// The colour map.
    #[arg(long, default_value = "gray", value_parser = ["gray", "magma", "viridis"])]
    pub(super) colormap: String,
    /// The picture's longer side in pixels [default: the projection's own size].
    #[arg(long)]
    pub(super) size: Option<usize>,
    /// The level of an OME-Zarr image [default: the coarsest at least --size].
    #[arg(long)]
    pub(super) level: Option<usize>,
    /// The scene of a CZI input (0, the first, by default).
    #[arg(long)]
    pub(super) scene: Option<usize>,
    /// Reader threads [default: all cores].
    #[arg(long)]
    pub(super) threads: Option<usize>,
}

/// `convert IN OUT`.
#[derive(Args)]
pub(super) struct ConvertArgs {
    /// Input: a TIFF, OME-TIFF or ImageJ TIFF, a NIfTI file (.nii, .nii.gz), or a Zarr
    /// array or OME-Zarr image.
    pub(super) input: PathBuf,
    /// Output OME-Zarr image (or plain array with --plain).
    pub(super) output: PathBuf,
    /// Write a plain Zarr array, not an OME-Zarr image.
    #[arg(long, conflicts_with = "pyramid")]
    pub(super) plain: bool,
    /// Also write lower resolution levels (means of 2×2(×2) blocks of the space axes):
    /// LEVELS levels in all, level 0 included [default without a value: until a
    /// level fits in one chunk].
    #[arg(long, value_name = "LEVELS", num_args = 0..=1)]
    pub(super) pyramid: Option<Option<usize>>,
    #[command(flatten)]
    pub(super) common: Common,
}

/// `pyramid IN OUT`.
#[derive(Args)]
pub(super) struct PyramidArgs {
    /// Input: an OME-Zarr image (its --level, 0 by default) or a plain array.
    pub(super) input: PathBuf,
    /// Output OME-Zarr image (levels `0`, `1`, ...; created, or resumed).
    pub(super) output: PathBuf,
    /// Number of levels, level 0 included [default: until a level fits in one chunk].
    #[arg(long)]
    pub(super) levels: Option<usize>,
    /// Factor between levels, one value or one per axis [default: 2 on space axes, 1 on
    /// time and channel axes].
    #[arg(long, value_delimiter = ',')]
    pub(super) factor: Option<Vec<usize>>,
    /// How a level is made from the previous one: a downsampling method, or
    /// `gaussian` (a Gaussian of sigma f/3 on each downsampled axis, then the mean of
    /// each window, cast back to the element type, as scikit-image's
    /// `pyramid_gaussian` and ngff-zarr's Gaussian method smooth before subsampling).
    #[arg(
        long,
        default_value = "mean",
        value_parser = clap::builder::PossibleValuesParser::new(PyramidMethod::ALL.map(PyramidMethod::name))
            .map(|s| s.parse::<PyramidMethod>().expect("a listed method"))
    )]
    pub(super) method: PyramidMethod,
    #[command(flatten)]
    pub(super) common: Common,
}

/// An op's run: input, output, the op's flags, the common flags.
#[derive(Args)]
pub(super) struct Run<A: Args> {
    /// Input: a Zarr array (the directory holding `.zarray` or `zarr.json`, e.g.
    /// image.zarr/0), an OME-Zarr image, or a TIFF, OME-TIFF or NIfTI file.
    pub(super) input: PathBuf,
    /// Output array directory (created, or resumed if it exists with the same metadata).
    pub(super) output: PathBuf,
    #[command(flatten)]
    pub(super) op: A,
    #[command(flatten)]
    pub(super) common: Common,
}

#[derive(Args)]
pub(super) struct Common {
    /// Where to compute: `auto` takes a hardware GPU if there is one, else the CPU.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub(super) device: DeviceArg,
    /// The GPU adapter: its number or (part of) its name, as `haloflow devices` lists
    /// them; or `auto`, hardware adapter number I mod count for `--part I/N`, so that
    /// the parts of an array job spread over a node's GPUs.
    #[arg(long)]
    pub(super) adapter: Option<String>,
    /// Seconds one GPU submission may take before the device counts as hung: that job
    /// and every later one are computed on the CPU, and the summary says so [default:
    /// 120].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub(super) gpu_timeout: Option<std::time::Duration>,
    /// Worker threads (jobs in flight) [default: all cores].
    #[arg(long)]
    pub(super) threads: Option<usize>,
    /// Output chunk shape, one value or one per axis [default: the input's].
    #[arg(long, value_delimiter = ',')]
    pub(super) chunks: Option<Vec<usize>>,
    /// Write the output sharded (Zarr v3 `sharding_indexed`): the shard shape, one value
    /// or one per axis, a whole number of chunks (e.g. `--chunks 64 --shards 256`).
    /// A shard is one file, written whole by one job group: a part owns whole shards,
    /// and a killed run resumes shard by shard.
    #[arg(long, value_delimiter = ',')]
    pub(super) shards: Option<Vec<usize>>,
    /// Output dtype (round half to even, saturate) [default: the op's].
    #[arg(long)]
    pub(super) dtype: Option<String>,
    /// Output Zarr format.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub(super) zarr_format: u8,
    /// Output chunk compression: `zstd:LEVEL` (-7 to 22; lower is faster, 3 is
    /// zarr-python's default), `zstd` (level 3) or `none`.
    #[arg(long, default_value = "zstd:3", value_parser = parse_compression)]
    pub(super) compression: Compression,
    /// Run only part I of N (0-based), e.g. a SLURM array task: `--part 3/8`; or
    /// `--part auto` (`auto/N` for Kubernetes' JOB_COMPLETION_INDEX) to take it from
    /// SLURM_ARRAY_TASK_ID, SGE_TASK_ID or JOB_COMPLETION_INDEX.
    #[arg(long, value_parser = parse_part)]
    pub(super) part: Option<PartArg>,
    /// Recompute and replace an existing output, even an incompatible one.
    #[arg(long)]
    pub(super) overwrite: bool,
    /// Memory budget for jobs in flight and decoded chunks, e.g. 2G, 512M [default: 1/4 of RAM]; fewer
    /// jobs run at once where --threads would not fit.
    #[arg(long, value_parser = parse_size)]
    pub(super) memory_limit: Option<u64>,
    /// No progress bar and no summary.
    #[arg(long, short)]
    pub(super) quiet: bool,
    /// Write a JSON report of the run to this file.
    #[arg(long)]
    pub(super) report: Option<PathBuf>,
    /// The level of an OME-Zarr input to read (0, the finest, by default; the level's
    /// own path works too).
    #[arg(long, default_value_t = 0)]
    pub(super) level: usize,
    /// The scene of a CZI input (0, the first, by default).
    #[arg(long)]
    pub(super) scene: Option<usize>,
    /// The NGFF version of an OME-Zarr output: 0.4 (Zarr v2) or 0.5 (Zarr v3)
    /// [default: the input's; 0.5 with --ome].
    #[arg(long)]
    pub(super) ngff_version: Option<String>,
    /// Write an OME-Zarr image from a plain array input (an OME-Zarr input always
    /// gives one): axes from --axes, pixel spacing from --scale, units from --units.
    #[arg(long)]
    pub(super) ome: bool,
    /// With --ome: the axis names, e.g. `z,y,x` or `t,c,z,y,x` [default: the last
    /// ones of t,c,z,y,x]. For `rotate` without --ome: the rotation plane, two axis
    /// numbers (`1,2`).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub(super) axes: Option<Vec<String>>,
    /// With --ome: the pixel spacing, one value or one per axis [default: 1].
    #[arg(long, value_delimiter = ',', requires = "ome")]
    pub(super) scale: Option<Vec<f64>>,
    /// With --ome: the units, one per axis (`micrometer`, `second`, ...; `-` for none).
    #[arg(long, value_delimiter = ',', requires = "ome")]
    pub(super) units: Option<Vec<String>>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub(super) enum DeviceArg {
    Auto,
    Cpu,
    Gpu,
}

#[derive(Args)]
pub(super) struct InfoArgs {
    /// The array to describe.
    pub(super) input: PathBuf,
    /// Output chunk shape for the plan [default: the input's].
    #[arg(long, value_delimiter = ',')]
    pub(super) chunks: Option<Vec<usize>>,
    /// The level of an OME-Zarr image to describe and plan for.
    #[arg(long, default_value_t = 0)]
    pub(super) level: usize,
    /// The scene of a CZI input (0, the first, by default).
    #[arg(long)]
    pub(super) scene: Option<usize>,
    /// Show the job plan of this op or chain (`gaussian --sigma 2 + threshold --above 1`).
    #[command(flatten)]
    pub(super) chain: ChainArgs,
}

/// `stats IN`.
#[derive(Args)]
pub(super) struct StatsArgs {
    /// The array (an OME-Zarr image's --level, 0 by default, or a plain array).
    pub(super) input: PathBuf,
    /// The level of an OME-Zarr image.
    #[arg(long, default_value_t = 0)]
    pub(super) level: usize,
    /// The scene of a CZI input (0, the first, by default).
    #[arg(long)]
    pub(super) scene: Option<usize>,
    /// Report per index along this axis (per channel, per time point ...).
    #[arg(long)]
    pub(super) axis: Option<usize>,
    /// Histogram bins (np.histogram's: equal bins from min to max).
    #[arg(long)]
    pub(super) histogram: Option<usize>,
    /// Percentiles to compute exactly, 0 to 100 (numpy's `linear` method).
    #[arg(long, value_delimiter = ',')]
    pub(super) percentiles: Vec<f64>,
    /// Draw the histogram (256 bins unless --histogram says) as a PNG, with the
    /// percentiles asked for (1, 50 and 99 unless --percentiles says) marked.
    #[arg(long, value_name = "HIST.png", conflicts_with = "axis")]
    pub(super) plot: Option<PathBuf>,
    /// Also write everything as JSON to this file (`-` for standard output only).
    #[arg(long)]
    pub(super) json: Option<PathBuf>,
    /// Reader threads [default: all cores].
    #[arg(long)]
    pub(super) threads: Option<usize>,
    /// MiB of values the first pass may keep for float and 32-bit types: with
    /// percentiles alone, the values near them (resolved in that pass); with a
    /// histogram, the decoded chunks (each then decoded once). 0 keeps none.
    #[arg(long, default_value_t = 1024)]
    pub(super) keep_decoded: u64,
    /// No summary on standard output (with --json FILE: only the file).
    #[arg(long, short)]
    pub(super) quiet: bool,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum PartArg {
    Fixed(Part),
    /// `auto`, with the task count where given (`auto/N`).
    Auto(Option<usize>),
}

pub(super) fn parse_part(s: &str) -> Result<PartArg, String> {
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

pub(super) fn parse_compression(s: &str) -> Result<Compression, String> {
    s.parse().map_err(flag_error)
}

pub(super) fn parse_size(s: &str) -> Result<u64, String> {
    crate::zarr::parse_size(s).map_err(flag_error)
}

impl Common {
    /// The part this process runs: `--part`, or the array task the scheduler's
    /// environment names (said on stderr unless `--quiet`).
    pub(super) fn part(&self) -> crate::Result<Part> {
        match self.part {
            None => Ok(Part::ALL),
            Some(PartArg::Fixed(p)) => Ok(p),
            Some(PartArg::Auto(count)) => {
                let (part, how) = Part::from_environment(|k| std::env::var(k).ok(), count)?;
                if !self.quiet {
                    eprintln!("--part auto: part {}/{} from {how}", part.index, part.count);
                }
                Ok(part)
            }
        }
    }

    /// `--axes` as `rotate`'s plane (two axis numbers, without --ome), if given so.
    pub(super) fn rotation_plane(&self) -> crate::Result<Option<[i64; 2]>> {
        let Some(axes) = self.axes.as_ref().filter(|_| !self.ome) else {
            return Ok(None);
        };
        let numbers: Vec<i64> = axes.iter().filter_map(|a| a.trim().parse().ok()).collect();
        match numbers[..] {
            [a, b] if axes.len() == 2 => Ok(Some([a, b])),
            _ => Err(crate::Error::InvalidParameter {
                op: "rotate",
                message: format!(
                    "--axes takes the rotation plane's two axis numbers (I,J), got {axes:?}"
                ),
            }),
        }
    }

    /// Refuses `--axes` without `--ome` (only `rotate` reads it so).
    pub(super) fn check_axes(&self) -> crate::Result<()> {
        if self.axes.is_some() && !self.ome {
            return Err(crate::Error::InvalidParameter {
                op: "axes",
                message: "--axes names an OME-Zarr output's axes: it needs --ome".into(),
            });
        }
        Ok(())
    }

    /// The path of `input` to read: itself, or the CZI scene `--scene` names.
    pub(super) fn input(&self, input: &std::path::Path) -> PathBuf {
        crate::formats::scene_path(input, self.scene.unwrap_or(0))
    }

    /// The library's options for these flags, running `part`.
    pub(super) fn options(&self, part: Part) -> crate::Result<Options> {
        Ok(Options {
            level: self.level,
            chunks: self.chunks.clone(),
            shards: self.shards.clone(),
            zarr_format: self.zarr_format,
            compression: self.compression,
            part,
            overwrite: self.overwrite,
            memory_limit: self.memory_limit,
            threads: self.threads,
            device: match self.device {
                DeviceArg::Auto => Device::Auto,
                DeviceArg::Cpu => Device::Cpu,
                DeviceArg::Gpu => Device::Gpu,
            },
            adapter: self.adapter.clone(),
            gpu_timeout: self.gpu_timeout,
            ome: self.ome.then(|| OmeAxes {
                axes: self.axes.clone(),
                scale: self.scale.clone(),
                units: self.units.clone(),
            }),
            ngff_version: self
                .ngff_version
                .as_deref()
                .map(str::parse::<NgffVersion>)
                .transpose()?,
            mip: None,
            plain: false,
        })
    }
}

/// A positive number of seconds.
fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(std::time::Duration::from_secs_f64(x)),
        _ => Err(format!("expected a positive number of seconds, got {s:?}")),
    }
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

/// Flags of `label`.
#[derive(Args, Clone)]
pub(super) struct LabelArgs {
    /// Which neighbours join voxels into one object: 1 joins faces only (scipy's
    /// default), up to the number of axes, which joins every neighbour
    /// (`scipy.ndimage.generate_binary_structure(ndim, connectivity)`).
    #[arg(long, default_value_t = 1)]
    pub(super) connectivity: usize,
    /// Objects are the voxels above this value [default: the voxels that are not zero;
    /// a float input needs a threshold].
    #[arg(long, allow_negative_numbers = true)]
    pub(super) above: Option<f64>,
    /// After every `--part I/N` has labelled its chunks: join the objects across
    /// chunks, number them and write the labels (of this part's chunks, with --part;
    /// of every chunk without).
    #[arg(long)]
    pub(super) merge: bool,
}

/// Flags of `objects`.
#[derive(Args)]
pub(super) struct ObjectsArgs {
    /// The label array (0 is background), e.g. what `label` wrote.
    pub(super) labels: PathBuf,
    /// An image of the same shape: each object's mean, min, max and sum of it.
    #[arg(long)]
    pub(super) intensity: Option<PathBuf>,
    /// The table written, CSV (`.csv`) or Parquet (`.parquet`, Snappy; labels, areas
    /// and boxes as uint64, the rest float64): one row per object, skimage's
    /// `regionprops_table` column names (label, area, centroid-0 …, bbox-0 …,
    /// intensity_mean …); centroids also in physical units for an OME-Zarr input.
    #[arg(long)]
    pub(super) table: PathBuf,
    /// The level of an OME-Zarr input.
    #[arg(long, default_value_t = 0)]
    pub(super) level: usize,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub(super) threads: Option<usize>,
    /// No summary.
    #[arg(long, short)]
    pub(super) quiet: bool,
}
