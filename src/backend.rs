//! Choosing where jobs run: the CPU (rayon) or a GPU (wgpu).
//! (Layer: backends; see the layer map in `docs/ARCHITECTURE.md`.)

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::block::BlockAny;
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::plan::{Job, Plan};
use crate::region::Region;
use crate::workers::{Workers, for_each_job};

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

/// Where a chain's data come from and go: what `auto` weighs the device against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Arrays in memory ([`Pipeline::apply_on`](crate::Pipeline::apply_on)).
    InMemory,
    /// Zarr to Zarr: chunks decoded and encoded on the CPU either way.
    Zarr,
}

/// The rates `auto` assumes, conservative for the GPU, so that `auto` picks it only
/// where it clearly pays. Measured on the CPU backend (AVX2, 2 threads, BENCHMARKS.md);
/// assumed for a datacenter GPU and its host link.
mod rates {
    /// Multiply-adds (taps) per second per CPU core, in the CPU kernels.
    pub const CPU_TAPS: f64 = 10e9;
    /// Taps per second on a hardware GPU.
    pub const GPU_TAPS: f64 = 1e12;
    /// Bytes per second through the host link, staging copies included.
    pub const LINK: f64 = 12e9;
    /// Bytes per second per core through the codecs (decoding the input and encoding
    /// the output, per byte of either).
    pub const CODEC: f64 = 0.4e9;
    /// The GPU must be estimated this much faster to be picked.
    pub const MARGIN: f64 = 1.5;
}

/// The work of `plan` (taps over all stages) and the bytes it reads and writes.
fn chain_cost(plan: &Plan) -> (f64, f64, f64) {
    use crate::stage::{Stage, UpMethod};
    let elements = |shape: &[usize]| shape.iter().product::<usize>() as f64;
    let n = plan.stages().len();
    let taps: f64 = plan
        .stages()
        .iter()
        .enumerate()
        .map(|(k, stage)| {
            let out = elements(plan.shape_at(k + 1));
            let per_output = match stage {
                Stage::Stencil(s) => s.shape.iter().product::<usize>() as f64,
                // A comparator is about two taps' work (a min and a max).
                Stage::Rank(r) => 2.0 * r.network().len() as f64,
                Stage::Project { axis, .. } => plan.shape_at(k)[*axis] as f64,
                Stage::Derivatives { terms, .. } => terms
                    .iter()
                    .flatten()
                    .map(|s| s.shape.iter().product::<usize>() as f64)
                    .sum(),
                Stage::Downsample { factor, .. } => factor.iter().product::<usize>() as f64,
                Stage::Upsample {
                    method: UpMethod::Linear,
                    factor,
                } => (1u64 << factor.iter().filter(|&&f| f > 1).count()) as f64,
                _ => 1.0,
            };
            out * per_output
        })
        .sum();
    let bytes_in = elements(plan.shape_at(0)) * plan.dtype_at(0).size() as f64;
    let bytes_out = elements(plan.shape_at(n)) * plan.dtype_at(n).size() as f64;
    (taps, bytes_in, bytes_out)
}

/// Whether a hardware GPU pays for `plan` in `workload` on a machine of `cores` CPU
/// cores, and why (see [`Backend::select_for`]).
fn weigh(plan: &Plan, workload: Workload, cores: usize) -> (bool, String) {
    let (taps, bytes_in, bytes_out) = chain_cost(plan);
    let cores = cores.max(1) as f64;
    let link = (bytes_in + bytes_out) / rates::LINK;
    let cpu_kernels = taps / (cores * rates::CPU_TAPS);
    let gpu_kernels = link + taps / rates::GPU_TAPS;
    let codecs = match workload {
        Workload::InMemory => 0.0,
        Workload::Zarr => (bytes_in + bytes_out) / (cores * rates::CODEC),
    };
    let cpu = codecs + cpu_kernels;
    let gpu = codecs.max(gpu_kernels);
    let codec_note = if codecs > 0.0 {
        format!(", codecs {codecs:.3} s")
    } else {
        String::new()
    };
    let estimate = format!(
        "estimated {cpu:.3} s on the CPU ({:.1} taps per input byte on {cores} cores{codec_note}) \
         against {gpu:.3} s with the GPU (host link {link:.3} s)",
        taps / bytes_in.max(1.0),
    );
    if gpu * rates::MARGIN < cpu {
        (
            true,
            format!("auto: the GPU, as this chain's work outweighs the host link: {estimate}"),
        )
    } else if codecs > gpu_kernels {
        (
            false,
            format!("auto: the CPU, as the codecs dominate: {estimate}"),
        )
    } else {
        (
            false,
            format!("auto: the CPU, as the host link dominates: {estimate}"),
        )
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

    /// Opens the backend for `device` to run `plan` in `workload`, and says why: as
    /// [`Backend::select`], except that `auto` weighs the chain: it takes a hardware
    /// GPU only when the chain's estimated time there (the host link, then the
    /// kernels; codecs overlapping on the CPU in a Zarr workload) beats the CPU
    /// backend's (kernels on every core, after the codecs) by a margin. Single
    /// element-wise ops never pay for the link; long stencils and chains may. The
    /// estimate uses fixed rates (see `rates` in this module's source), not a
    /// measurement.
    pub fn select_for(
        device: Device,
        adapter_name: Option<&str>,
        plan: &Plan,
        workload: Workload,
    ) -> Result<(Backend, String)> {
        match device {
            Device::Cpu => return Ok((Backend::Cpu, "cpu (asked for)".into())),
            Device::Gpu => {
                let backend = Backend::select(Device::Gpu, adapter_name)?;
                return Ok((backend, "gpu (asked for)".into()));
            }
            Device::Auto => {}
        }
        let named = adapter_name.is_some() || std::env::var_os("WGPU_ADAPTER_NAME").is_some();
        if named {
            let backend = Backend::select(Device::Auto, adapter_name)?;
            let why = match &backend {
                Backend::Gpu(_) => "auto: the adapter named",
                Backend::Cpu => "auto: the adapter named could not be opened",
            };
            return Ok((backend, why.into()));
        }
        let found = crate::gpu::adapters();
        if !found.iter().any(|a| !a.is_cpu) {
            let why = match found.first() {
                Some(a) => format!(
                    "auto: no hardware GPU (only the software renderer {}, slower than the CPU backend)",
                    a.name
                ),
                None => "auto: no GPU adapter".to_string(),
            };
            return Ok((Backend::Cpu, why));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (gpu, why) = weigh(plan, workload, cores);
        if !gpu {
            return Ok((Backend::Cpu, why));
        }
        match GpuContext::new(None) {
            Ok(ctx) => Ok((Backend::Gpu(Arc::new(ctx)), why)),
            Err(e) => Ok((Backend::Cpu, format!("auto: {e}; using the CPU"))),
        }
    }

    /// Runs every stage of `job` from `source` (a block holding at least the job's
    /// footprint) and returns the dense output block: the one backend dispatch, for
    /// the in-memory and the Zarr paths alike.
    ///
    /// A job that fails on the GPU (out of device memory, a validation error, a lost
    /// or hung device) is computed on the CPU instead, and counted
    /// ([`GpuTimes::cpu_fallbacks`](crate::GpuTimes::cpu_fallbacks), with the first
    /// error): a fault costs speed, never the run. After a lost or hung device every
    /// later job goes to the CPU at once.
    pub(crate) fn run_job(
        &self,
        plan: &Plan,
        job: &Job,
        source: &BlockAny<'_>,
    ) -> Result<BlockAny<'static>> {
        match self {
            Backend::Cpu => Ok(crate::cpu::run_job(plan, job, source)),
            Backend::Gpu(ctx) => match crate::gpu::run_job(ctx, plan, job, source) {
                Err(Error::Gpu { message }) => {
                    ctx.record_fallback(&message);
                    Ok(crate::cpu::run_job(plan, job, source))
                }
                result => result,
            },
        }
    }

    /// Runs every job of `plan` from `source` (the whole input, in memory), calling
    /// `write(region, block)` with each job's output: on the CPU, jobs spread over
    /// rayon's pool, each writing its region whole or plane by plane as it computes
    /// them, or straight into the array `direct` places ([`crate::cpu::run_job_into`]);
    /// on a GPU, one thread keeps several jobs in
    /// flight (see [`GpuContext::jobs_in_flight`]), each writing its whole region.
    pub(crate) fn run_in_memory(
        &self,
        plan: &Plan,
        source: &BlockAny<'_>,
        write: &(dyn Fn(&Region, &BlockAny<'_>) + Sync),
        direct: Option<&crate::cpu::Direct<'_>>,
    ) -> Result<()> {
        match self {
            Backend::Cpu => for_each_job(Workers::RayonPool, plan.num_jobs(), |i| {
                let job = plan.job(i);
                crate::cpu::run_job_into(
                    plan,
                    &job,
                    source,
                    &mut |region, block| write(region, block),
                    direct,
                );
                Ok(())
            }),
            Backend::Gpu(ctx) => crate::gpu::run_jobs(ctx, plan, source, write),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;
    use crate::ops::{Kernel, Op, Pipeline};

    fn plan(ops: Vec<Op>) -> Plan {
        let shape = [256, 512, 512];
        Plan::new(
            &Pipeline::new(ops),
            &shape,
            DType::F32,
            &[64, 128, 128],
            &[64, 128, 128],
        )
        .unwrap()
    }

    #[test]
    fn auto_weighs_the_work_of_a_chain_against_the_host_link_and_the_codecs() {
        let threshold = plan(vec![Op::threshold(1.0)]);
        let gaussian = plan(vec![Op::gaussian(&[2.0])]);
        let cube = plan(vec![Op::convolve(Kernel::new(
            vec![9, 9, 9],
            vec![1.0; 729],
        ))]);
        for cores in [2, 16, 128] {
            for workload in [Workload::InMemory, Workload::Zarr] {
                let (gpu, why) = weigh(&threshold, workload, cores);
                assert!(!gpu, "{why}");
                assert!(why.starts_with("auto: the CPU"), "{why}");
            }
        }
        // A 9x9x9 correlation (729 taps per voxel) pays for the link, unless the CPU
        // has very many cores.
        assert!(weigh(&cube, Workload::InMemory, 16).0);
        assert!(weigh(&cube, Workload::Zarr, 16).0);
        assert!(!weigh(&cube, Workload::InMemory, 1024).0);
        let (_, why) = weigh(&threshold, Workload::Zarr, 16);
        assert!(why.contains("codecs dominate"), "{why}");
        let (_, why) = weigh(&threshold, Workload::InMemory, 16);
        assert!(why.contains("host link dominates"), "{why}");
        // A Gaussian pays on a small machine, not on one with many cores.
        assert!(weigh(&gaussian, Workload::InMemory, 2).0);
        assert!(!weigh(&gaussian, Workload::InMemory, 128).0);
    }
}
