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
    /// Its place in the list [`adapters`] returns (what `--adapter N` takes).
    pub index: usize,
    /// The PCI bus id (`"0000:41:00.0"`), where the backend gives one.
    pub pci_bus_id: Option<String>,
}

impl AdapterInfo {
    pub(super) fn from_wgpu(info: &wgpu::AdapterInfo, index: usize) -> Self {
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
            index,
            pci_bus_id: Some(info.device_pci_bus_id.trim().to_string()).filter(|b| !b.is_empty()),
        }
    }

    /// The line `haloflow devices` prints: the index, the description and the PCI bus
    /// id if known.
    pub fn listing(&self) -> String {
        match &self.pci_bus_id {
            Some(bus) => format!("{}: {self} [pci {bus}]", self.index),
            None => format!("{}: {self}", self.index),
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

/// The adapters haloflow can use (Vulkan, Metal, DX12, or those `WGPU_BACKEND` names),
/// in the order wgpu lists them (their [`AdapterInfo::index`]).
pub fn adapters() -> Vec<AdapterInfo> {
    let instance = instance();
    pollster::block_on(instance.enumerate_adapters(backends()))
        .iter()
        .enumerate()
        .map(|(i, a)| AdapterInfo::from_wgpu(&a.get_info(), i))
        .collect()
}

/// The adapter [`AdapterChoice::Auto`] takes for process `task`, among adapters of
/// which `is_cpu` says which are software renderers: hardware adapter number
/// `task mod count`; `None` where there is no hardware adapter.
pub(super) fn auto_index(is_cpu: &[bool], task: usize) -> Option<usize> {
    let hardware: Vec<usize> = (0..is_cpu.len()).filter(|&i| !is_cpu[i]).collect();
    (!hardware.is_empty()).then(|| hardware[task % hardware.len()])
}

/// The index of the adapter `--adapter auto` takes for process `task` (its part
/// index), so that the processes of an array job on one node spread over its GPUs;
/// `None` where the machine has no hardware adapter (then the usual choice applies).
pub fn auto_adapter(task: usize) -> Option<usize> {
    let flags: Vec<bool> = adapters().iter().map(|a| a.is_cpu).collect();
    auto_index(&flags, task)
}

/// How `--adapter` names an adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdapterChoice {
    /// The system's preferred adapter (a high-performance one).
    Preferred,
    /// The adapter at this place in [`adapters`]' list.
    Index(usize),
    /// The first adapter whose name contains this (case-insensitive).
    Name(String),
    /// One adapter per process on a node with several: the hardware adapter number
    /// `task mod count` (software renderers left out), `task` being this process's
    /// part index (`--part I/N` or `--part auto`).
    Auto,
}

impl AdapterChoice {
    /// `"auto"`, an index (digits), or (part of) a name; nothing or blank: the
    /// preferred adapter, or the one `WGPU_ADAPTER_NAME` names.
    pub fn parse(text: Option<&str>) -> AdapterChoice {
        let text = text
            .map(str::to_owned)
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        match text {
            None => AdapterChoice::Preferred,
            Some(t) if t.eq_ignore_ascii_case("auto") => AdapterChoice::Auto,
            Some(t) => match t.parse() {
                Ok(i) => AdapterChoice::Index(i),
                Err(_) => AdapterChoice::Name(t),
            },
        }
    }
}

/// What to tell a user whose machine has no adapter.
pub(super) const NO_ADAPTER_HINT: &str = "haloflow uses Vulkan, Metal or DX12 (WGPU_BACKEND overrides); \
     on Linux install a Vulkan driver (your GPU vendor's, or mesa-vulkan-drivers for the \
     software renderer lavapipe), or run on the CPU";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_spreads_tasks_over_the_hardware_adapters_only() {
        // Two GPUs and a software renderer listed between them.
        let is_cpu = [false, true, false];
        let picks: Vec<Option<usize>> = (0..5).map(|t| auto_index(&is_cpu, t)).collect();
        assert_eq!(picks, [Some(0), Some(2), Some(0), Some(2), Some(0)]);
        assert_eq!(auto_index(&[true], 3), None);
        assert_eq!(auto_index(&[], 0), None);
    }

    #[test]
    fn an_adapter_is_chosen_by_index_name_or_auto() {
        assert_eq!(AdapterChoice::parse(Some("1")), AdapterChoice::Index(1));
        assert_eq!(AdapterChoice::parse(Some(" AUTO ")), AdapterChoice::Auto);
        assert_eq!(
            AdapterChoice::parse(Some("A100")),
            AdapterChoice::Name("A100".into())
        );
    }
}
