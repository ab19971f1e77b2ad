//! The open device: [`GpuContext`], its compiled pipelines, its buffer pool and its
//! counters.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::adapter::{AdapterChoice, AdapterInfo, NO_ADAPTER_HINT, auto_index, backends, instance};
use super::disk_cache::DiskCache;
use super::pool::{DEVICE, Pool, PooledBuffer, Staging};
use super::shader::{self, Fused, Shader};
use crate::dtype::DType;
use crate::error::{Error, Result};

/// A compiled pipeline's identity: kernel, method, input and output element types, and
/// the values compiled into its code (a small stencil's extents and weights,
/// downsampling's factors), and the pointwise stages fused into its store.
type PipelineKey = (Shader, u32, DType, DType, Vec<u32>, Vec<Fused>);

/// Jobs a pipeline keeps in flight on one device by default: while some compute, the
/// next ones upload and earlier ones read back.
const DEFAULT_JOBS_IN_FLIGHT: usize = 4;

/// Free buffers kept per size class for `jobs` jobs in flight.
fn pooled_per_class(jobs: usize) -> usize {
    2 * jobs + 2
}

/// Where a device's time went, summed over jobs since the last
/// [`GpuContext::take_times`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuTimes {
    /// Device time in each stage's compute passes, by stage index (timestamp queries,
    /// while profiling; empty otherwise or without timestamp queries).
    pub stages: Vec<Duration>,
    /// Host time spent gathering or copying inputs into mapped staging memory.
    pub copy_in: Duration,
    /// Host time spent copying results out of mapped readback memory.
    pub copy_out: Duration,
    /// Bytes uploaded (inputs, parameters and tables).
    pub bytes_in: u64,
    /// Bytes read back.
    pub bytes_out: u64,
    /// Device segments run: one submission each, with one upload and one readback.
    pub segments: usize,
    /// Compute passes (kernel launches) encoded.
    pub dispatches: usize,
    /// Host time threads spent blocked waiting for the device (submissions to finish,
    /// results to map).
    pub driver_wait: Duration,
    /// Slabs of a streamed Zarr run (each one window submission and one segment).
    pub slabs: usize,
    /// Jobs that failed on the device and were computed on the CPU instead.
    pub cpu_fallbacks: usize,
    /// The first device error that sent a job to the CPU.
    pub fault: Option<String>,
}

impl GpuTimes {
    /// The summed compute time of all stages.
    pub fn compute(&self) -> Duration {
        self.stages.iter().sum()
    }
}

/// The error scopes of one submission ([`GpuContext::scoped`]).
pub(super) struct Scoped {
    oom: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
}

/// An open GPU device, with its compiled pipelines and a buffer pool. Share it (it is
/// `Send + Sync`) through [`Backend::Gpu`](crate::Backend::Gpu).
///
/// How stages run on it: each job's input footprint is gathered once, straight into
/// mapped staging memory, together with every stage's parameters and tables; every
/// stage runs as one compute pass writing exactly the indices the next stage needs,
/// intermediates stay on the device, and only the job's output is read back, copied
/// from mapped memory straight to its destination. Up to
/// [`GpuContext::jobs_in_flight`] jobs are submitted at once (see `pool.rs` for how
/// buffers are reused). u8/i8 and u16/i16 data
/// travel packed in 32-bit words, u32/i32/f32 as they are. Stages whose input or
/// output is float64 (other than a stencil, which the CPU too computes in f32) run on
/// the host with the CPU kernels, as do jobs too large for one storage binding even
/// after splitting them down to a single output element. Results equal the CPU's bit
/// for bit for the integer-exact ops; float ops agree to f32 rounding.
pub struct GpuContext {
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    info: AdapterInfo,
    pub(super) limits: wgpu::Limits,
    pipeline_layout: wgpu::PipelineLayout,
    pub(super) layout: wgpu::BindGroupLayout,
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    pool: Arc<Pool>,
    max_binding: AtomicU64,
    jobs_in_flight: usize,
    timestamps: bool,
    unified: bool,
    profiling: AtomicBool,
    times: Mutex<GpuTimes>,
    /// The first error the device reported outside an error scope (or its loss, or a
    /// submission that did not finish in time): later jobs go to the CPU.
    fault: Arc<Mutex<Option<String>>>,
    /// How long to wait for one submission before calling the device hung, in ns.
    timeout: AtomicU64,
    /// Compiled pipelines kept on disk between runs, where the driver can.
    disk_cache: Option<DiskCache>,
    /// Forced faults for tests (`HALOFLOW_INJECT_GPU_FAULT`).
    #[cfg(feature = "fault-injection")]
    pub(super) injection: Option<super::inject::Injection>,
}

/// How long a submission may take before the device counts as hung, by default:
/// far above any one job's compute on a GPU (milliseconds) or on lavapipe (seconds).
pub const DEFAULT_GPU_TIMEOUT: Duration = Duration::from_secs(120);

impl Drop for GpuContext {
    /// Keeps the pipelines compiled in this process for the next one.
    fn drop(&mut self) {
        if let Some(cache) = &self.disk_cache {
            cache.save();
        }
    }
}

impl fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.info)
            .finish_non_exhaustive()
    }
}

impl GpuContext {
    /// Opens the adapter `adapter` names ([`AdapterChoice::parse`]: an index in
    /// [`adapters`](super::adapters)' list, `auto`, or part of a name, case-insensitive),
    /// or else the one `WGPU_ADAPTER_NAME` names, or else the system's preferred
    /// high-performance adapter, with all of its limits. `auto` here takes the first
    /// hardware adapter (see [`GpuContext::open`] for one per process).
    ///
    /// Fails with [`Error::NoGpu`] when there is no such adapter or no device.
    pub fn new(adapter: Option<&str>) -> Result<GpuContext> {
        GpuContext::open(AdapterChoice::parse(adapter), 0)
    }

    /// Opens the adapter `choice` names; [`AdapterChoice::Auto`] takes hardware
    /// adapter number `task mod count` (the preferred adapter where none is
    /// hardware), so that the processes of an array job on one node spread over its
    /// GPUs.
    ///
    /// Fails with [`Error::NoGpu`] when there is no such adapter or no device.
    pub fn open(choice: AdapterChoice, task: usize) -> Result<GpuContext> {
        let instance = instance();
        let all = pollster::block_on(instance.enumerate_adapters(backends()));
        let infos: Vec<AdapterInfo> = all
            .iter()
            .enumerate()
            .map(|(i, a)| AdapterInfo::from_wgpu(&a.get_info(), i))
            .collect();
        let listed = || {
            if infos.is_empty() {
                return "none".to_string();
            }
            let names: Vec<String> = infos
                .iter()
                .map(|a| format!("{}: {}", a.index, a.name))
                .collect();
            names.join(", ")
        };
        let chosen = match &choice {
            AdapterChoice::Preferred => None,
            AdapterChoice::Index(i) if *i < infos.len() => Some(*i),
            AdapterChoice::Index(i) => {
                return Err(Error::NoGpu {
                    reason: format!("no adapter number {i} (found: {})", listed()),
                });
            }
            AdapterChoice::Name(name) => {
                let needle = name.to_lowercase();
                let found = infos
                    .iter()
                    .position(|a| a.name.to_lowercase().contains(&needle));
                Some(found.ok_or_else(|| Error::NoGpu {
                    reason: format!("no adapter named like '{name}' (found: {})", listed()),
                })?)
            }
            AdapterChoice::Auto => {
                let is_cpu: Vec<bool> = infos.iter().map(|a| a.is_cpu).collect();
                auto_index(&is_cpu, task)
            }
        };
        let (adapter, info) = match chosen {
            Some(i) => (all[i].clone(), infos[i].clone()),
            None => {
                let adapter =
                    pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
                        power_preference: wgpu::PowerPreference::HighPerformance,
                        force_fallback_adapter: false,
                        compatible_surface: None,
                        apply_limit_buckets: false,
                    }))
                    .map_err(|e| Error::NoGpu {
                        reason: format!("{e}; {NO_ADAPTER_HINT}"),
                    })?;
                let wgpu_info = adapter.get_info();
                let index = all
                    .iter()
                    .position(|a| a.get_info() == wgpu_info)
                    .unwrap_or(0);
                (adapter, AdapterInfo::from_wgpu(&wgpu_info, index))
            }
        };
        // The adapter's real limits: the defaults cap buffers at 256 MiB and more.
        let limits = adapter.limits();
        let shared = matches!(
            adapter.get_info().device_type,
            wgpu::DeviceType::Cpu | wgpu::DeviceType::IntegratedGpu
        );
        // Float64 shaders for geometric resampling (gpu/geometry.rs), where offered.
        let mut wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::PIPELINE_CACHE
            | wgpu::Features::SHADER_F64;
        if shared {
            wanted |= wgpu::Features::MAPPABLE_PRIMARY_BUFFERS;
        }
        let features = adapter.features() & wanted;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("haloflow"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::NoGpu {
            reason: format!("adapter {info} offers no device: {e}"),
        })?;
        super::geometry::device_opened(device.features().contains(wgpu::Features::SHADER_F64));
        let disk_cache = DiskCache::open(&device, &adapter.get_info());
        let pool = Arc::new(Pool::new(
            pooled_per_class(DEFAULT_JOBS_IN_FLIGHT),
            limits.max_buffer_size,
        ));
        let fault = Arc::new(Mutex::new(None));
        {
            let fault = fault.clone();
            // Errors outside our error scopes must not panic (wgpu's default).
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let mut f = fault.lock().unwrap_or_else(|p| p.into_inner());
                f.get_or_insert_with(|| e.to_string());
            }));
        }
        {
            let fault = fault.clone();
            device.set_device_lost_callback(move |reason, message| {
                let mut f = fault.lock().unwrap_or_else(|p| p.into_inner());
                f.get_or_insert_with(|| format!("device lost ({reason:?}): {message}"));
            });
        }
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        // Explicit layout: params, tables, input, output (an inferred layout would
        // drop the bindings a kernel does not use).
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("haloflow kernel"),
            entries: &[
                storage(0, true),
                storage(1, true),
                storage(2, true),
                storage(3, false),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("haloflow kernel"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            / 4
            * 4;
        Ok(GpuContext {
            timestamps: device.features().contains(wgpu::Features::TIMESTAMP_QUERY),
            unified: device
                .features()
                .contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
            device,
            queue,
            info,
            limits,
            pipeline_layout,
            layout,
            pipelines: Mutex::new(HashMap::new()),
            pool,
            max_binding: AtomicU64::new(max_binding),
            jobs_in_flight: DEFAULT_JOBS_IN_FLIGHT,
            profiling: AtomicBool::new(false),
            times: Mutex::default(),
            fault,
            timeout: AtomicU64::new(DEFAULT_GPU_TIMEOUT.as_nanos() as u64),
            disk_cache,
            #[cfg(feature = "fault-injection")]
            injection: super::inject::Injection::from_env()?,
        })
    }

    /// The adapter in use.
    pub fn adapter(&self) -> &AdapterInfo {
        &self.info
    }

    /// The largest storage binding a kernel gets, in bytes (the device's limit unless
    /// lowered by [`GpuContext::limit_binding_size`]). Larger jobs are split.
    pub fn max_binding_size(&self) -> u64 {
        self.max_binding.load(Ordering::Relaxed)
    }

    /// Lowers the largest storage binding used (at least 256 bytes; never above the
    /// device's limit), so that jobs are split sooner: for tests of the splitting, or
    /// to bound device memory per job.
    pub fn limit_binding_size(&self, bytes: u64) {
        let device = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        self.max_binding
            .store(bytes.clamp(256, device) / 4 * 4, Ordering::Relaxed);
    }

    /// How many jobs run on the device at once (upload, compute and readback of
    /// different jobs overlap).
    pub fn jobs_in_flight(&self) -> usize {
        self.jobs_in_flight
    }

    /// Sets how many jobs run on the device at once (at least 1).
    pub fn with_jobs_in_flight(mut self, jobs: usize) -> Self {
        self.jobs_in_flight = jobs.max(1);
        self.pool.set_keep(pooled_per_class(self.jobs_in_flight));
        self
    }

    /// Whether the device can time its compute passes (timestamp queries).
    pub fn has_timestamps(&self) -> bool {
        self.timestamps
    }

    /// Starts or stops timing compute passes with timestamp queries (no effect
    /// without [`GpuContext::has_timestamps`]); see [`GpuContext::take_compute_time`].
    pub fn set_profiling(&self, on: bool) {
        self.profiling.store(on, Ordering::Relaxed);
    }

    /// The device time spent in compute passes since the last call while profiling,
    /// summed over passes; `None` if the device has no timestamp queries. Resets the
    /// counters of [`GpuContext::take_times`] too.
    pub fn take_compute_time(&self) -> Option<Duration> {
        let times = self.take_times();
        self.timestamps.then(|| times.compute())
    }

    /// Where time went since the last call (compute per stage while profiling, host
    /// copies, bytes moved), and resets the counters.
    pub fn take_times(&self) -> GpuTimes {
        std::mem::take(&mut *self.times.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Adds a segment's figures to the counters.
    pub(super) fn record(&self, f: impl FnOnce(&mut GpuTimes)) {
        f(&mut self.times.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub(super) fn profiling(&self) -> bool {
        self.timestamps && self.profiling.load(Ordering::Relaxed)
    }

    /// Sets how long one submission may take before the device counts as hung (its
    /// job then goes to the CPU, and so do the jobs after it).
    pub fn set_timeout(&self, timeout: Duration) {
        self.timeout.store(
            timeout.as_nanos().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    /// How long one submission may take ([`GpuContext::set_timeout`]).
    pub fn timeout(&self) -> Duration {
        Duration::from_nanos(self.timeout.load(Ordering::Relaxed))
    }

    /// Records a fault that makes the device unusable (lost, hung): later jobs fail
    /// fast with it, and go to the CPU.
    pub(super) fn set_fault(&self, message: String) {
        let mut fault = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        fault.get_or_insert(message);
    }

    /// Records that a job failed on the device with `message` and was computed on the
    /// CPU instead.
    pub(crate) fn record_fallback(&self, message: &str) {
        self.record(|t| {
            t.cpu_fallbacks += 1;
            t.fault.get_or_insert_with(|| message.to_string());
        });
    }

    /// Opens the error scopes a submission is built and submitted under (out of device
    /// memory, validation), before its buffers and commands are created; see
    /// [`GpuContext::submit_scoped`].
    pub(super) fn scoped(&self) -> Scoped {
        Scoped {
            oom: self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory),
            validation: self.device.push_error_scope(wgpu::ErrorFilter::Validation),
        }
    }

    /// Submits `commands` and closes `scoped`: the submission, and the first error the
    /// scopes caught (or the fault the `fault-injection` feature forces), if any.
    pub(super) fn submit_scoped(
        &self,
        scoped: Scoped,
        commands: wgpu::CommandBuffer,
    ) -> (wgpu::SubmissionIndex, Option<String>) {
        let submission = self.queue.submit([commands]);
        let caught = [
            pollster::block_on(scoped.validation.pop()),
            pollster::block_on(scoped.oom.pop()),
        ];
        #[allow(unused_mut)]
        let mut failure = caught.into_iter().flatten().next().map(|e| e.to_string());
        #[cfg(feature = "fault-injection")]
        if failure.is_none() {
            failure = self.injected_fault();
        }
        (submission, failure)
    }

    /// Records a device error that a run recovered from other than by computing jobs
    /// on the CPU (a streamed run going on job by job), if it is the first.
    pub(crate) fn record_fault(&self, message: String) {
        self.record(|t| {
            t.fault.get_or_insert(message);
        });
    }

    /// Counts a submission just made; the error it is to fail with where the
    /// `fault-injection` feature's [`VARIABLE`](super::inject::VARIABLE) says so (a
    /// lost device is recorded as such).
    #[cfg(feature = "fault-injection")]
    pub(super) fn injected_fault(&self) -> Option<String> {
        let (message, lost) = super::inject::submitted(self.injection.as_ref()?)?;
        if lost {
            self.set_fault(message.clone());
        }
        Some(message)
    }

    /// Fails if the device reported an error outside a scope or was lost.
    pub(crate) fn check_fault(&self) -> Result<()> {
        let fault = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        match fault.as_ref() {
            Some(message) => Err(Error::Gpu {
                message: message.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The pipeline of `kernel` (with `method`, and `compiled_in` values: see
    /// [`shader::source`]) for these element types, compiled on first use.
    pub(super) fn pipeline(
        &self,
        kernel: Shader,
        method: u32,
        input: DType,
        output: DType,
        compiled_in: &[u32],
        fused: &[Fused],
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let key = (
            kernel,
            method,
            input,
            output,
            compiled_in.to_vec(),
            fused.to_vec(),
        );
        let mut cache = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(&key) {
            return Ok(p.clone());
        }
        let label = format!("{} (method {method}) {input}->{output}", kernel.name());
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&label),
                source: wgpu::ShaderSource::Wgsl(
                    shader::source(kernel, method, input, output, compiled_in, fused).into(),
                ),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: Some(&self.pipeline_layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: self.disk_cache.as_ref().map(DiskCache::compiling),
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                message: format!("compiling {label}: {e}"),
            });
        }
        let pipeline = Arc::new(pipeline);
        cache.insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// A buffer of at least `size` bytes with `usage`, from the pool if one is free.
    pub(super) fn buffer(&self, usage: wgpu::BufferUsages, size: u64) -> PooledBuffer {
        self.pool.buffer(&self.device, usage, size)
    }

    /// A device buffer (storage, copy source and destination) of at least `size` bytes.
    pub(super) fn device_buffer(&self, size: u64) -> PooledBuffer {
        self.buffer(DEVICE, size)
    }

    /// A staging buffer of at least `size` bytes, mapped for writing (with memory
    /// shared by host and device, kernels may read it).
    pub(super) fn staging(&self, size: u64) -> Staging {
        let mut usage = wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC;
        if self.unified {
            usage |= wgpu::BufferUsages::STORAGE;
        }
        self.pool.staging(&self.device, usage, size)
    }

    /// A buffer of at least `size` bytes to read results back through (with memory
    /// shared by host and device, kernels may write it).
    pub(super) fn readback_buffer(&self, size: u64) -> PooledBuffer {
        let mut usage = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
        if self.unified {
            usage |= wgpu::BufferUsages::STORAGE;
        }
        self.buffer(usage, size)
    }

    /// Whether host and device share memory and kernels bind mappable buffers: on
    /// software renderers and integrated GPUs (never discrete ones, where reading
    /// host memory from a kernel crosses the bus on every access), when the adapter
    /// offers `MAPPABLE_PRIMARY_BUFFERS`. Then a job's input is read from staging
    /// memory and its output written to readback memory, with no copy on the device.
    pub fn unified_memory(&self) -> bool {
        self.unified
    }

    /// Copies every job's input and output on the device even where memory is
    /// shared (see [`GpuContext::unified_memory`]): the path of discrete GPUs, for
    /// tests and comparisons.
    pub fn without_unified_memory(mut self) -> Self {
        self.unified = false;
        self
    }
}
