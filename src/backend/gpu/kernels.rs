//! The compute pipelines, created once per device (DESIGN §4): one per WGSL file.

use crate::error::{Error, Result};

/// WGSL sources, validated by naga in `tests/shaders.rs`.
pub const SOURCES: [(&str, &str); 4] = [
    ("gemm", include_str!("../../../shaders/gemm.wgsl")),
    (
        "activation",
        include_str!("../../../shaders/activation.wgsl"),
    ),
    ("pool", include_str!("../../../shaders/pool.wgsl")),
    ("reduce", include_str!("../../../shaders/reduce.wgsl")),
];

/// Cached pipelines.
#[derive(Debug)]
pub struct Kernels {
    /// `gemm.wgsl`.
    pub gemm: wgpu::ComputePipeline,
    /// `activation.wgsl`.
    pub activation: wgpu::ComputePipeline,
    /// `pool.wgsl`.
    pub pool: wgpu::ComputePipeline,
    /// `reduce.wgsl`.
    pub reduce: wgpu::ComputePipeline,
}

impl Kernels {
    /// Compiles every shader inside an error scope, so a bad shader is an `Error`, not a panic.
    pub fn new(device: &wgpu::Device) -> Result<Self> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let make = |i: usize| {
            let (name, src) = SOURCES[i];
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: None,
                module: &module,
                entry_point: Some(name),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let kernels = Kernels {
            gemm: make(0),
            activation: make(1),
            pool: make(2),
            reduce: make(3),
        };
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Device(format!("shader compilation failed: {e}")));
        }
        Ok(kernels)
    }
}
