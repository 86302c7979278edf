//! The compute pipelines, created once per device (DESIGN §4): one per WGSL file.

use crate::error::{Error, Result};

/// WGSL sources, validated by naga in `tests/shaders.rs`; a pipeline's index is its position.
pub const SOURCES: [(&str, &str); 13] = [
    ("gemm", include_str!("../../../shaders/gemm.wgsl")),
    (
        "activation",
        include_str!("../../../shaders/activation.wgsl"),
    ),
    ("pool", include_str!("../../../shaders/pool.wgsl")),
    ("reduce", include_str!("../../../shaders/reduce.wgsl")),
    (
        "activation_grad",
        include_str!("../../../shaders/activation_grad.wgsl"),
    ),
    ("pool_grad", include_str!("../../../shaders/pool_grad.wgsl")),
    ("loss", include_str!("../../../shaders/loss.wgsl")),
    ("adam", include_str!("../../../shaders/adam.wgsl")),
    (
        "sum_squares",
        include_str!("../../../shaders/sum_squares.wgsl"),
    ),
    ("stat", include_str!("../../../shaders/stat.wgsl")),
    ("siren", include_str!("../../../shaders/siren.wgsl")),
    (
        "siren_grad",
        include_str!("../../../shaders/siren_grad.wgsl"),
    ),
    ("mask", include_str!("../../../shaders/mask.wgsl")),
];

/// Pipeline indices into [`SOURCES`].
pub const GEMM: usize = 0;
/// `activation.wgsl`.
pub const ACTIVATION: usize = 1;
/// `pool.wgsl`.
pub const POOL: usize = 2;
/// `reduce.wgsl`.
pub const REDUCE: usize = 3;
/// `activation_grad.wgsl`.
pub const ACTIVATION_GRAD: usize = 4;
/// `pool_grad.wgsl`.
pub const POOL_GRAD: usize = 5;
/// `loss.wgsl`.
pub const LOSS: usize = 6;
/// `adam.wgsl`.
pub const ADAM: usize = 7;
/// `sum_squares.wgsl`.
pub const SUM_SQUARES: usize = 8;
/// `stat.wgsl`.
pub const STAT: usize = 9;
/// `siren.wgsl`.
pub const SIREN: usize = 10;
/// `siren_grad.wgsl`.
pub const SIREN_GRAD: usize = 11;
/// `mask.wgsl`.
pub const MASK: usize = 12;

/// Cached pipelines, one per entry of [`SOURCES`].
#[derive(Debug)]
pub struct Kernels {
    /// Pipelines in [`SOURCES`] order.
    pub pipelines: Vec<wgpu::ComputePipeline>,
}

impl Kernels {
    /// Compiles every shader inside an error scope, so a bad shader is an `Error`, not a panic.
    pub fn new(device: &wgpu::Device) -> Result<Self> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipelines = SOURCES
            .iter()
            .map(|&(name, src)| {
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
            })
            .collect();
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Device(format!("shader compilation failed: {e}")));
        }
        Ok(Kernels { pipelines })
    }
}
