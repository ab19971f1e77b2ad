//! [`Options`]: how a whole-array run reads, computes and writes.

use crate::Pipeline;
use crate::backend::{Backend, Device};
use crate::error::Result;
use crate::exec::{Part, RunOptions};
use crate::store::{Compression, Input, NgffVersion};

use super::image::OmeAxes;

/// How a [`Run`](super::Run) or [`Pyramid`](super::Pyramid) reads, computes and
/// writes. Every field has the command's default ([`Options::default`]); set the ones
/// you need:
///
/// ```
/// use haloflow::zarr::{Options, Part};
/// use haloflow::Device;
///
/// let options = Options {
///     chunks: Some(vec![64, 256, 256]),
///     part: Part::new(3, 8)?,
///     device: Device::Cpu,
///     ..Options::default()
/// };
/// assert_eq!(options.zarr_format, 3);
/// # Ok::<(), haloflow::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The level of an OME-Zarr input to read (0, the finest).
    pub level: usize,
    /// Output chunk shape, one value or one per axis [default: the input's].
    pub chunks: Option<Vec<usize>>,
    /// Write the output sharded: the shard shape, one value or one per axis, a whole
    /// number of chunks. A part then owns whole shards.
    pub shards: Option<Vec<usize>>,
    /// The output's Zarr format, 2 or 3 (an OME-Zarr output follows its NGFF version).
    pub zarr_format: u8,
    /// How output chunks are compressed (zstd level 3, as zarr-python).
    pub compression: Compression,
    /// This process's share of the jobs (`Part::ALL`, or one of an array job's tasks:
    /// [`Part::from_environment`]).
    pub part: Part,
    /// Recompute and replace an existing output, even an incompatible one.
    pub overwrite: bool,
    /// Memory budget in bytes for jobs in flight and decoded chunks [default: a
    /// quarter of the machine's memory]. A run keeps fewer jobs in flight than
    /// [`Options::threads`] where that many would not fit.
    pub memory_limit: Option<u64>,
    /// Worker threads (jobs in flight) [default: every core].
    pub threads: Option<usize>,
    /// Where to compute: `Auto` weighs the chain and takes a hardware GPU only where it
    /// pays off.
    pub device: Device,
    /// The GPU adapter: its index in [`adapters`](crate::gpu::adapters)' list, (part
    /// of) its name, or `auto`: hardware adapter number `part.index mod count`, so that
    /// the parts of an array job on one node spread over its GPUs.
    pub adapter: Option<String>,
    /// How long one GPU submission may take before the device counts as hung and the
    /// run goes on on the CPU [default: [`DEFAULT_GPU_TIMEOUT`](crate::gpu::DEFAULT_GPU_TIMEOUT)].
    pub gpu_timeout: Option<std::time::Duration>,
    /// Make an OME-Zarr image of a plain array input, with these axes, spacing and
    /// units (an OME-Zarr input always gives one).
    pub ome: Option<OmeAxes>,
    /// The NGFF version of an OME-Zarr output [default: the input's; 0.5 for `ome`].
    pub ngff_version: Option<NgffVersion>,
    /// Write a plain Zarr array even where the input is an OME-Zarr image or a file
    /// with metadata (its spacing still gives physical units their meaning).
    pub plain: bool,
    /// Also write the output's maximum projections along each of its last three axes,
    /// in the same pass, into a Zarr group at this path (one array per axis, named
    /// after it: `z` holds the maximum along z). See [`default_mip_path`](super::default_mip_path).
    pub mip: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            level: 0,
            chunks: None,
            shards: None,
            zarr_format: 3,
            compression: Compression::Zstd { level: 3 },
            part: Part::ALL,
            overwrite: false,
            memory_limit: None,
            threads: None,
            device: Device::Auto,
            adapter: None,
            gpu_timeout: None,
            ome: None,
            ngff_version: None,
            plain: false,
            mip: None,
        }
    }
}

impl Options {
    /// The adapter to open: `auto` resolved to this part's hardware adapter (none
    /// without hardware adapters: then the usual choice applies).
    pub(super) fn adapter(&self) -> Option<String> {
        match crate::gpu::AdapterChoice::parse(self.adapter.as_deref()) {
            crate::gpu::AdapterChoice::Auto => {
                crate::gpu::auto_adapter(self.part.index).map(|i| i.to_string())
            }
            _ => self.adapter.clone(),
        }
    }

    /// The executor's options for these, on `backend` (chosen for `reason`).
    pub(super) fn run_options(&self, backend: Backend, reason: String) -> RunOptions {
        if let (Backend::Gpu(ctx), Some(timeout)) = (&backend, self.gpu_timeout) {
            ctx.set_timeout(timeout);
        }
        let mut options = RunOptions {
            backend,
            device_reason: Some(reason),
            overwrite: self.overwrite,
            part: self.part,
            ..RunOptions::default()
        };
        if let Some(t) = self.threads {
            options.threads = t.max(1);
        }
        if let Some(m) = self.memory_limit {
            options.memory_limit = m;
        }
        options
    }
}

/// `pipeline` with the statistics of `input` its first op needs filled in (none: as it
/// is), computed with `options.threads` readers keeping half the memory limit of
/// decoded chunks between passes; and the values used.
///
/// # Errors
/// [`crate::Error`] for a failed read.
pub fn resolve_statistics(
    pipeline: &Pipeline,
    input: &Input,
    options: &Options,
) -> Result<(Pipeline, Option<serde_json::Value>)> {
    let defaults = RunOptions::default();
    let threads = options.threads.unwrap_or(defaults.threads);
    let keep = options.memory_limit.unwrap_or(defaults.memory_limit) / 2;
    crate::stats::resolve(pipeline, input, threads, keep)
}

/// Runs `work` on a pool of `threads` threads, or on rayon's global pool (every core)
/// when `None`.
///
/// # Errors
/// [`crate::Error::InvalidParameter`] if the pool cannot start; `work`'s errors.
pub(crate) fn on_threads<R: Send>(
    threads: Option<usize>,
    work: impl FnOnce() -> crate::Result<R> + Send,
) -> crate::Result<R> {
    match threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
            .map_err(|e| crate::Error::InvalidParameter {
                op: "threads",
                message: e.to_string(),
            })?
            .install(work),
        None => work(),
    }
}
