//! Choosing where jobs run: the CPU (rayon) or a GPU (wgpu).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::block::BlockAny;
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::plan::{Job, Plan};
use crate::workers::Workers;

/// The device a user asks for (`--device auto|cpu|gpu`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Device {
    /// A GPU if an adapter can be opened, else the CPU (saying so on stderr).
    #[default]
    Auto,
    /// The CPU kernels, on rayon's thread pool.
    Cpu,
    /// A GPU; an error ([`Error::NoGpu`]) if none can be opened.
    Gpu,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Device::Auto => "auto",
            Device::Cpu => "cpu",
            Device::Gpu => "gpu",
        })
    }
}

impl FromStr for Device {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "gpu" => Ok(Device::Gpu),
            other => Err(Error::InvalidParameter {
                op: "device",
                message: format!("unknown device '{other}' (expected auto, cpu or gpu)"),
            }),
        }
    }
}

/// Where a pipeline's jobs run.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The CPU kernels.
    Cpu,
    /// An open GPU device (shared: clone the `Arc` to use it from several pipelines).
    Gpu(Arc<GpuContext>),
}

impl Backend {
    /// Opens the backend for `device`; `adapter_name` (or `WGPU_ADAPTER_NAME`) picks a
    /// GPU adapter by name. `Auto` without a usable hardware adapter (none, or only a
    /// software renderer not asked for by name) prints why on stderr and returns
    /// [`Backend::Cpu`]; `Gpu` without an adapter fails with [`Error::NoGpu`].
    pub fn select(device: Device, adapter_name: Option<&str>) -> Result<Backend> {
        match device {
            Device::Cpu => Ok(Backend::Cpu),
            Device::Gpu => Ok(Backend::Gpu(Arc::new(GpuContext::new(adapter_name)?))),
            Device::Auto => {
                let named =
                    adapter_name.is_some() || std::env::var_os("WGPU_ADAPTER_NAME").is_some();
                // A software renderer (lavapipe, WARP) is a CPU behind a GPU API: slower
                // than the CPU backend, so `auto` takes one only when asked for by name,
                // and does not open a device to find that out.
                if !named {
                    let found = crate::gpu::adapters();
                    if found.iter().all(|a| a.is_cpu) {
                        match found.first() {
                            Some(a) => eprintln!(
                                "haloflow: no hardware GPU (only the software renderer {}); using the CPU",
                                a.name
                            ),
                            None => eprintln!("haloflow: no GPU adapter found; using the CPU"),
                        }
                        return Ok(Backend::Cpu);
                    }
                }
                match GpuContext::new(adapter_name) {
                    Ok(ctx) => Ok(Backend::Gpu(Arc::new(ctx))),
                    Err(e) => {
                        eprintln!("haloflow: {e}; using the CPU");
                        Ok(Backend::Cpu)
                    }
                }
            }
        }
    }

    /// Runs every stage of `job` from `source` (a block holding at least the job's
    /// footprint) and returns the dense output block: the one backend dispatch, for
    /// the in-memory and the Zarr paths alike.
    pub(crate) fn run_job(
        &self,
        plan: &Plan,
        job: &Job,
        source: &BlockAny<'_>,
    ) -> Result<BlockAny<'static>> {
        match self {
            Backend::Cpu => Ok(crate::cpu::run_job(plan, job, source)),
            Backend::Gpu(ctx) => crate::gpu::run_job(ctx, plan, job, source),
        }
    }

    /// The workers of an in-memory run: rayon's pool on the CPU; on a GPU, one thread
    /// per job in flight (each waits for its own submission).
    pub(crate) fn in_memory_workers(&self) -> Workers {
        match self {
            Backend::Cpu => Workers::RayonPool,
            Backend::Gpu(ctx) => Workers::Threads(ctx.jobs_in_flight()),
        }
    }

    /// A short description: `cpu`, or `gpu: <adapter>`.
    pub fn describe(&self) -> String {
        match self {
            Backend::Cpu => "cpu".to_string(),
            Backend::Gpu(ctx) => format!("gpu: {}", ctx.adapter()),
        }
    }
}
