//! The GPU backend: wgpu compute shaders, one per stage, twins of the CPU kernels.
//!
//! [`GpuContext`] opens one adapter and device, compiles each pipeline once (per kernel
//! and element types) and pools buffers. A job's stages run on the device back to back
//! with their intermediates kept there; see [`GpuContext`] for what runs on the host.
//!
//! Backends: Vulkan, Metal and DX12 by default (not GL, so that a machine without a
//! Vulkan driver reports "no GPU" instead of silently using a slow GL emulation);
//! `WGPU_BACKEND` overrides the list and `WGPU_ADAPTER_NAME` picks an adapter by name.

mod job;
mod pointwise;
mod resample;
mod shader;
mod stencil;

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) use job::run_job;
use shader::Shader;

use crate::dtype::DType;
use crate::error::{Error, Result};

/// A GPU adapter, as the system reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterInfo {
    /// The adapter's name (`"llvmpipe (LLVM 15.0.6, 256 bits)"`, `"NVIDIA RTX A4000"`, ...).
    pub name: String,
    /// The graphics API wgpu drives it through (`"vulkan"`, `"metal"`, `"dx12"`).
    pub backend: String,
    /// The kind of device (`"discrete GPU"`, `"integrated GPU"`, `"CPU"`, ...).
    pub device_type: String,
    /// The driver's name and version, where the driver says.
    pub driver: String,
    /// Whether the adapter is a software renderer running on the CPU (lavapipe,
    /// WARP, SwiftShader): correct, but no faster than the CPU backend.
    pub is_cpu: bool,
}

impl AdapterInfo {
    fn from_wgpu(info: &wgpu::AdapterInfo) -> Self {
        let device_type = match info.device_type {
            wgpu::DeviceType::DiscreteGpu => "discrete GPU",
            wgpu::DeviceType::IntegratedGpu => "integrated GPU",
            wgpu::DeviceType::VirtualGpu => "virtual GPU",
            wgpu::DeviceType::Cpu => "CPU",
            wgpu::DeviceType::Other => "other",
        };
        AdapterInfo {
            name: info.name.clone(),
            backend: info.backend.to_string(),
            device_type: device_type.to_string(),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_string(),
            is_cpu: info.device_type == wgpu::DeviceType::Cpu,
        }
    }
}

impl fmt::Display for AdapterInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.device_type, self.backend)?;
        if self.is_cpu {
            write!(f, " [a software renderer on the CPU]")?;
        }
        Ok(())
    }
}

/// The backends haloflow asks for unless `WGPU_BACKEND` says otherwise.
fn backends() -> wgpu::Backends {
    wgpu::Backends::VULKAN
        .union(wgpu::Backends::METAL)
        .union(wgpu::Backends::DX12)
        .with_env()
}

/// Keeps the Vulkan loader quiet on a machine without a display, before the first
/// Vulkan instance of the process (called from every instance this module creates;
/// the command calls it first thing, before any other thread exists).
///
/// Mesa's implicit `VK_LAYER_MESA_device_select` layer connects to a Wayland
/// compositor while it lists devices, and libwayland prints `error: XDG_RUNTIME_DIR is
/// invalid or not set in the environment.` wherever that variable is unset: on headless
/// servers and HPC nodes, for every instance. Without a runtime directory there is no
/// compositor to ask, so the layer has nothing to select by; haloflow then disables it
/// the documented way (`NODEVICE_SELECT=1`), unless the user set `NODEVICE_SELECT` or
/// chose a device with `MESA_VK_DEVICE_SELECT`.
pub fn quiet_vulkan_loader() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let absolute = |name: &str| {
            std::env::var_os(name).is_some_and(|v| std::path::Path::new(&v).is_absolute())
        };
        let no_display = !absolute("XDG_RUNTIME_DIR") && !absolute("WAYLAND_DISPLAY");
        let chosen = std::env::var_os("NODEVICE_SELECT").is_some()
            || std::env::var_os("MESA_VK_DEVICE_SELECT").is_some();
        if no_display && !chosen {
            // SAFETY: the command calls this before it starts any thread. A library
            // caller that opens its first GPU while other threads run may race their
            // C-level `getenv`; glibc's first `setenv` of a process copies the
            // environment into a new array and frees nothing, so such a reader still
            // sees a valid (old) environment.
            unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
        }
    });
}

fn instance() -> wgpu::Instance {
    quiet_vulkan_loader();
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    // WGPU_BACKEND, WGPU_VALIDATION, WGPU_DEBUG, ... override the defaults.
    wgpu::Instance::new(desc.with_env())
}

/// The adapters haloflow can use (Vulkan, Metal, DX12, or those `WGPU_BACKEND` names).
pub fn adapters() -> Vec<AdapterInfo> {
    let instance = instance();
    pollster::block_on(instance.enumerate_adapters(backends()))
        .iter()
        .map(|a| AdapterInfo::from_wgpu(&a.get_info()))
        .collect()
}

/// What to tell a user whose machine has no adapter.
const NO_ADAPTER_HINT: &str = "haloflow uses Vulkan, Metal or DX12 (WGPU_BACKEND overrides); \
     on Linux install a Vulkan driver (your GPU vendor's, or mesa-vulkan-drivers for the \
     software renderer lavapipe), or run on the CPU";

/// A compiled pipeline's identity: kernel, method, input and output element types, and
/// the values compiled into its code (a small stencil's extents and weights; empty for
/// the others).
type PipelineKey = (Shader, u32, DType, DType, Vec<u32>);

/// Buffers kept per (usage, size class) for reuse.
const POOL_PER_CLASS: usize = 4;

/// Jobs a pipeline keeps in flight on one device by default: while one job computes,
/// the next uploads and the previous reads back.
const DEFAULT_JOBS_IN_FLIGHT: usize = 2;

/// An open GPU device, with its compiled pipelines and a buffer pool. Share it (it is
/// `Send + Sync`) through [`Backend::Gpu`](crate::Backend::Gpu).
///
/// How stages run on it: each job's input footprint is uploaded once, every stage runs
/// as one compute pass writing exactly the indices the next stage needs, intermediates
/// stay on the device, and only the job's output is read back. u8/i8 and u16/i16 data
/// travel packed in 32-bit words, u32/i32/f32 as they are. Stages whose input or
/// output is float64 (other than a stencil, which the CPU too computes in f32) run on
/// the host with the CPU kernels, as do jobs too large for one storage binding even
/// after splitting them down to a single output element. Results equal the CPU's bit
/// for bit for the integer-exact ops; float ops agree to f32 rounding.
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: AdapterInfo,
    limits: wgpu::Limits,
    pipeline_layout: wgpu::PipelineLayout,
    layout: wgpu::BindGroupLayout,
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    pool: Arc<Pool>,
    max_binding: AtomicU64,
    jobs_in_flight: usize,
    timestamps: bool,
    profiling: AtomicBool,
    compute_ns: AtomicU64,
    /// The first error the device reported outside an error scope (or its loss).
    fault: Arc<Mutex<Option<String>>>,
}

impl fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.info)
            .finish_non_exhaustive()
    }
}

impl GpuContext {
    /// Opens the adapter whose name contains `adapter_name` (case-insensitive), or
    /// else the one named by `WGPU_ADAPTER_NAME`, or else the system's preferred
    /// high-performance adapter, with all of its limits.
    ///
    /// Fails with [`Error::NoGpu`] when there is no such adapter or no device.
    pub fn new(adapter_name: Option<&str>) -> Result<GpuContext> {
        let instance = instance();
        let wanted = adapter_name
            .map(str::to_owned)
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .filter(|s| !s.trim().is_empty());
        let adapter = match wanted {
            Some(name) => {
                let all = pollster::block_on(instance.enumerate_adapters(backends()));
                let needle = name.to_lowercase();
                let found = all
                    .iter()
                    .position(|a| a.get_info().name.to_lowercase().contains(&needle));
                match found {
                    Some(i) => all.into_iter().nth(i).expect("found"),
                    None => {
                        let names: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
                        return Err(Error::NoGpu {
                            reason: format!(
                                "no adapter named like '{name}' (found: {})",
                                if names.is_empty() {
                                    "none".to_string()
                                } else {
                                    names.join(", ")
                                }
                            ),
                        });
                    }
                }
            }
            None => pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            }))
            .map_err(|e| Error::NoGpu {
                reason: format!("{e}; {NO_ADAPTER_HINT}"),
            })?,
        };
        let info = AdapterInfo::from_wgpu(&adapter.get_info());
        // The adapter's real limits: the defaults cap buffers at 256 MiB and more.
        let limits = adapter.limits();
        let features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
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
            device,
            queue,
            info,
            limits,
            pipeline_layout,
            layout,
            pipelines: Mutex::new(HashMap::new()),
            pool: Arc::new(Pool::default()),
            max_binding: AtomicU64::new(max_binding),
            jobs_in_flight: DEFAULT_JOBS_IN_FLIGHT,
            profiling: AtomicBool::new(false),
            compute_ns: AtomicU64::new(0),
            fault,
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
    /// summed over passes; `None` if the device has no timestamp queries.
    pub fn take_compute_time(&self) -> Option<Duration> {
        self.timestamps
            .then(|| Duration::from_nanos(self.compute_ns.swap(0, Ordering::Relaxed)))
    }

    fn profiling(&self) -> bool {
        self.timestamps && self.profiling.load(Ordering::Relaxed)
    }

    /// Fails if the device reported an error outside a scope or was lost.
    fn check_fault(&self) -> Result<()> {
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
    fn pipeline(
        &self,
        kernel: Shader,
        method: u32,
        input: DType,
        output: DType,
        compiled_in: &[u32],
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let key = (kernel, method, input, output, compiled_in.to_vec());
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
                    shader::source(kernel, method, input, output, compiled_in).into(),
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
                cache: None,
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
    fn buffer(&self, usage: wgpu::BufferUsages, size: u64) -> PooledBuffer {
        let class = size
            .max(256)
            .next_power_of_two()
            .min(self.limits.max_buffer_size.max(size));
        let key = (usage.bits(), class);
        let reused = self
            .pool
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&key)
            .and_then(Vec::pop);
        let buffer = reused.unwrap_or_else(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("haloflow"),
                size: class,
                usage,
                mapped_at_creation: false,
            })
        });
        PooledBuffer {
            buffer: Some(buffer),
            mapped: false,
            key,
            pool: self.pool.clone(),
        }
    }
}

/// Free buffers by (usage bits, size class).
#[derive(Default)]
struct Pool {
    free: Mutex<HashMap<(u32, u64), Vec<wgpu::Buffer>>>,
}

/// A buffer that returns to the pool when dropped (only once the device is done with it).
struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    /// Set while the buffer is mapped for reading.
    mapped: bool,
    key: (u32, u64),
    pool: Arc<Pool>,
}

impl PooledBuffer {
    fn get(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("present until dropped")
    }

    /// Reads the first `len` bytes of a buffer mapped for reading with `f`, then unmaps it.
    fn read_mapped<R>(&mut self, len: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let result = self
            .get()
            .slice(..len)
            .get_mapped_range()
            .map(|view| f(&view))
            .map_err(|e| Error::Gpu {
                message: format!("reading results back: {e}"),
            });
        self.get().unmap();
        self.mapped = false;
        result
    }

    /// A binding of the first `bytes` bytes.
    fn binding(&self, bytes: u64) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.get(),
            offset: 0,
            size: NonZeroU64::new(bytes.max(4)),
        })
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            // A readback abandoned on an error path may still be mapped.
            if self.mapped {
                buffer.unmap();
            }
            let mut free = self.pool.free.lock().unwrap_or_else(|p| p.into_inner());
            let list = free.entry(self.key).or_default();
            if list.len() < POOL_PER_CLASS {
                list.push(buffer);
            }
        }
    }
}
