//! Adapters: the wgpu instance haloflow opens, the adapters it lists, and how they are
//! described to users.

use std::fmt;

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
    pub(super) fn from_wgpu(info: &wgpu::AdapterInfo) -> Self {
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
pub(super) fn backends() -> wgpu::Backends {
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

pub(super) fn instance() -> wgpu::Instance {
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
pub(super) const NO_ADAPTER_HINT: &str = "haloflow uses Vulkan, Metal or DX12 (WGPU_BACKEND overrides); \
     on Linux install a Vulkan driver (your GPU vendor's, or mesa-vulkan-drivers for the \
     software renderer lavapipe), or run on the CPU";
