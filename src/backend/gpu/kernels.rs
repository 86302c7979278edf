//! The compute kernels, one per WGSL file (DESIGN §4): named by [`Kernel`], compiled once per
//! device into [`Kernels`].

use std::collections::HashMap;

use super::ops::{self, Shader};
use crate::error::{Error, Result};

/// A compute kernel: one file of `shaders/`, encoded by the op module of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `gemm.wgsl`.
    Gemm,
    /// `activation.wgsl`.
    Activation,
    /// `activation_grad.wgsl`.
    ActivationGrad,
    /// `pool.wgsl`.
    Pool,
    /// `pool_grad.wgsl`.
    PoolGrad,
    /// `reduce.wgsl`.
    Reduce,
    /// `loss.wgsl`.
    Loss,
    /// `adam.wgsl`.
    Adam,
    /// `sum_squares.wgsl`.
    SumSquares,
    /// `stat.wgsl`.
    Stat,
    /// `siren.wgsl`.
    Siren,
    /// `siren_grad.wgsl`.
    SirenGrad,
    /// `mask.wgsl`.
    Mask,
}

impl Kernel {
    /// Every kernel.
    pub const ALL: [Kernel; 13] = [
        Kernel::Gemm,
        Kernel::Activation,
        Kernel::ActivationGrad,
        Kernel::Pool,
        Kernel::PoolGrad,
        Kernel::Reduce,
        Kernel::Loss,
        Kernel::Adam,
        Kernel::SumSquares,
        Kernel::Stat,
        Kernel::Siren,
        Kernel::SirenGrad,
        Kernel::Mask,
    ];

    /// Its shader: name, source and uniform layout.
    pub fn shader(self) -> &'static Shader {
        match self {
            Kernel::Gemm => &ops::gemm::SHADER,
            Kernel::Activation => &ops::activation::SHADER,
            Kernel::ActivationGrad => &ops::activation_grad::SHADER,
            Kernel::Pool => &ops::pool::SHADER,
            Kernel::PoolGrad => &ops::pool_grad::SHADER,
            Kernel::Reduce => &ops::reduce::SHADER,
            Kernel::Loss => &ops::loss::SHADER,
            Kernel::Adam => &ops::adam::SHADER,
            Kernel::SumSquares => &ops::sum_squares::SHADER,
            Kernel::Stat => &ops::stat::SHADER,
            Kernel::Siren => &ops::siren::SHADER,
            Kernel::SirenGrad => &ops::siren_grad::SHADER,
            Kernel::Mask => &ops::mask::SHADER,
        }
    }
}

/// Every kernel's compute pipelines on one device, one per variant of its shader.
#[derive(Debug)]
pub struct Kernels {
    pipelines: HashMap<(Kernel, usize), wgpu::ComputePipeline>,
}

impl Kernels {
    /// Compiles every shader inside an error scope, so a bad shader is an `Error`, not a panic.
    pub fn new(device: &wgpu::Device) -> Result<Self> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut pipelines = HashMap::new();
        for k in Kernel::ALL {
            let shader: &Shader = k.shader();
            let name = shader.name;
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(shader.source().into()),
            });
            for (variant, constants) in shader.variants.iter().enumerate() {
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(name),
                    layout: None,
                    module: &module,
                    entry_point: Some(name),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants,
                        ..Default::default()
                    },
                    cache: None,
                });
                pipelines.insert((k, variant), pipeline);
            }
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Device(format!("shader compilation failed: {e}")));
        }
        Ok(Kernels { pipelines })
    }

    /// The pipeline of `kernel` compiled for its shader's `variant`.
    pub fn get(&self, kernel: Kernel, variant: usize) -> &wgpu::ComputePipeline {
        &self.pipelines[&(kernel, variant)]
    }
}
