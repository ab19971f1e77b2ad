//! The GPU backend: wgpu compute shaders, one per stage, twins of the CPU kernels.
//! (Layer: the kernels; see the layer map in `docs/ARCHITECTURE.md`.)
//!
//! [`GpuContext`] opens one adapter and device, compiles each pipeline once (per kernel
//! and element types) and pools buffers. A job's stages run on the device back to back
//! with their intermediates kept there; see [`GpuContext`] for what runs on the host.
//!
//! Backends: Vulkan, Metal and DX12 by default (not GL, so that a machine without a
//! Vulkan driver reports "no GPU" instead of silently using a slow GL emulation);
//! `WGPU_BACKEND` overrides the list and `WGPU_ADAPTER_NAME` picks an adapter by name.
//!
//! The modules, leaves first:
//! - `adapter`: the instance, the adapters and their description;
//! - `shader`: the WGSL sources and their generated constants;
//! - `dispatch`: the dispatch vocabulary (padding to five axes, buffer sizes, grids);
//! - `pointwise`, `stencil`, `rank`, `resample`: each kernel's parameters and tables;
//! - `pool`: the buffer pool, with its policy;
//! - `context`: the open device, its pipelines and counters;
//! - `disk_cache`: compiled pipelines kept on disk between runs;
//! - `placement`: which stages run on the device, and splitting jobs to fit a binding;
//! - `launch`, `upload`, `encode`, `timing`: a segment's launches, its staging
//!   buffer, its compute passes and their timestamps;
//! - `segment`: one run of device stages: upload, encode, submit, read back;
//! - `inject` (the `fault-injection` feature only): forced device faults for tests;
//! - `job`: a job's stages (device segments and host stages), and the in-memory
//!   driver keeping several jobs in flight;
//! - `stream`: a Zarr run's slabs, their input windows assembled on the device
//!   from the planes the last window holds and the ones uploaded;
//! - `resident`: arrays kept on the device across pipelines.

mod adapter;
mod context;
mod disk_cache;
mod dispatch;
mod encode;
mod geometry;
#[cfg(feature = "fault-injection")]
mod inject;
mod job;
mod launch;
mod nlmeans;
mod placement;
mod pointwise;
mod pool;
mod rank;
mod resample;
mod resident;
mod segment;
mod shader;
mod stencil;
mod stream;
mod timing;
mod upload;

pub use adapter::{AdapterChoice, AdapterInfo, adapters, auto_adapter, quiet_vulkan_loader};
pub use context::{DEFAULT_GPU_TIMEOUT, GpuContext, GpuTimes};
pub(crate) use job::{run_job, run_jobs};
pub use resident::DeviceArray;
pub(crate) use stream::{Slab, SlabStream, missing_planes, streamable, window_dtype};
