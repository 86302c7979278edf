//! Adapter and device selection (DESIGN §4): chosen on purpose, never panicking.

use std::sync::Arc;

use crate::error::{Error, Result};

/// Options for picking an adapter.
#[derive(Clone, Debug, Default)]
pub struct AdapterChoice {
    /// Case-insensitive substring of the adapter name (`WGPU_ADAPTER_NAME` when unset).
    pub name: Option<String>,
    /// Ask for the software fallback adapter (lavapipe) only.
    pub force_fallback: bool,
}

/// A wgpu device with the adapter it came from.
#[derive(Debug)]
pub struct GpuContext {
    /// The adapter.
    pub adapter: wgpu::Adapter,
    /// The device (limits raised to what the adapter offers).
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// Adapter description.
    pub info: wgpu::AdapterInfo,
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if std::env::var_os("WGPU_BACKEND").is_none() {
        desc.backends = wgpu::Backends::PRIMARY;
    }
    wgpu::Instance::new(desc)
}

/// Every adapter wgpu can see (for `mnfn info`).
pub fn list_adapters() -> Vec<wgpu::AdapterInfo> {
    let inst = instance();
    pollster::block_on(inst.enumerate_adapters(inst_backends()))
        .iter()
        .map(|a| a.get_info())
        .collect()
}

fn inst_backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY)
}

/// Environment variable that, set to 1, makes every adapter request fail as if the machine had
/// no GPU: `--backend auto` then falls back to the CPU with a warning, `--backend gpu` is an
/// error (tests use it to exercise both paths on machines that have an adapter).
pub const NO_GPU_ENV: &str = "MNFN_NO_GPU";

impl GpuContext {
    /// Picks an adapter (by name, fallback, or high performance) and opens a device on it.
    pub fn new(choice: &AdapterChoice) -> Result<Arc<Self>> {
        if std::env::var(NO_GPU_ENV).is_ok_and(|v| v == "1") {
            return Err(Error::Device(format!(
                "no GPU adapter: {NO_GPU_ENV}=1 hides every adapter"
            )));
        }
        let inst = instance();
        let name = choice
            .name
            .clone()
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok());
        let adapter = if let Some(name) = name {
            let want = name.to_lowercase();
            let all = pollster::block_on(inst.enumerate_adapters(inst_backends()));
            let seen: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
            all.into_iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&want))
                .ok_or_else(|| {
                    Error::Device(format!(
                        "no adapter name contains WGPU_ADAPTER_NAME '{name}': set it to part of one of {}",
                        seen.join(", ")
                    ))
                })?
        } else {
            let opts = wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: choice.force_fallback,
                compatible_surface: None,
                apply_limit_buckets: false,
            };
            pollster::block_on(inst.request_adapter(&opts)).map_err(|e| {
                Error::Device(format!(
                    "no GPU adapter found ({e}); install a Vulkan/Metal/DX12 driver (for a software one: apt-get install mesa-vulkan-drivers)"
                ))
            })?
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("monomial-nfn"),
            // Timestamp queries where the adapter has them, for `mnfn bench --profile`.
            required_features: adapter.features() & wgpu::Features::TIMESTAMP_QUERY,
            required_limits: limits,
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| Error::Device(format!("could not open a device on {}: {e}", info.name)))?;
        device.on_uncaptured_error(Arc::new(|e| log::error!("wgpu uncaptured error: {e}")));
        Ok(Arc::new(GpuContext {
            adapter,
            device,
            queue,
            info,
        }))
    }

    /// One line: name, backend, device type.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }
}
