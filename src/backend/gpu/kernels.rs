//! The compute kernels, one per WGSL file (DESIGN §4): named by [`Kernel`], their modules and
//! pipelines kept per device in [`Kernels`].

use std::collections::HashMap;
use std::sync::Mutex;

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

/// Every kernel's shader module on one device, validated when the device opens, and its
/// compute pipelines, one per variant of its shader, compiled on first use (a run uses a few
/// of the GEMM's fifteen).
#[derive(Debug)]
pub struct Kernels {
    device: wgpu::Device,
    modules: HashMap<Kernel, wgpu::ShaderModule>,
    pipelines: Mutex<HashMap<(Kernel, usize), wgpu::ComputePipeline>>,
}

impl Kernels {
    /// Compiles every shader module inside an error scope, so a bad shader is an `Error`, not a
    /// panic.
    pub fn new(device: &wgpu::Device) -> Result<Self> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let modules = Kernel::ALL
            .iter()
            .map(|&k| {
                let shader: &Shader = k.shader();
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(shader.name),
                    source: wgpu::ShaderSource::Wgsl(shader.source().into()),
                });
                (k, module)
            })
            .collect();
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Device(format!("shader compilation failed: {e}")));
        }
        Ok(Kernels {
            device: device.clone(),
            modules,
            pipelines: Mutex::new(HashMap::new()),
        })
    }

    /// The pipeline of `kernel` compiled for its shader's `variant`, compiled now if this is
    /// its first use (errors surface in the caller's error scope: plan compilation).
    pub fn get(&self, kernel: Kernel, variant: usize) -> wgpu::ComputePipeline {
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        pipelines
            .entry((kernel, variant))
            .or_insert_with(|| self.compile(kernel, variant))
            .clone()
    }

    /// A new pipeline of `kernel` for its shader's `variant`, not cached (so a check compiles
    /// each, even one that failed before).
    pub fn compile(&self, kernel: Kernel, variant: usize) -> wgpu::ComputePipeline {
        let shader = kernel.shader();
        self.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(shader.name),
                layout: None,
                module: &self.modules[&kernel],
                entry_point: Some(shader.name),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: shader.variants[variant],
                    ..Default::default()
                },
                cache: None,
            })
    }
}
