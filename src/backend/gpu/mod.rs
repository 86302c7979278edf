//! The GPU backend: wgpu + WGSL, f32. A plan is compiled once into buffers and bind groups; each
//! run uploads the inputs, records every op into one compute pass of one encoder, submits once
//! and reads the outputs back at the end (DESIGN §4).

mod arena;
mod context;
mod epilogue;
mod kernels;
mod memory;
mod ops;
mod profile;
mod readback;
mod steps;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

pub use context::{list_adapters, AdapterChoice, GpuContext, NO_GPU_ENV};
pub use kernels::Kernel;
pub use ops::{Shader, UniformLayout};

/// `f` of every value of `data`, on all threads when large (a batch of 1,024 CNN-Zoo networks
/// is 5 million values): f64 → f32 for uploads, f32 → f64 for readbacks.
fn convert<A: Copy + Sync, B: Send>(data: &[A], f: fn(A) -> B) -> Vec<B> {
    use rayon::prelude::*;
    if data.len() < crate::space::PAR_VALUES {
        data.iter().map(|&x| f(x)).collect()
    } else {
        data.par_iter().map(|&x| f(x)).collect()
    }
}

/// `data` as f32 for upload.
fn to_f32(data: &[f64]) -> Vec<f32> {
    convert(data, |x| x as f32)
}

/// Bytes allocated for a buffer of `len` f32s: at least 16, since GEMMs also bind their
/// operands as vec4 arrays.
fn buffer_bytes(len: usize) -> u64 {
    (len.max(4) * 4) as u64
}

/// The tile of C `(rows, columns)` each GEMM workgroup computes for an m×k×n product: the tile
/// shape the backend picks for it (one pipeline per shape, `shaders/gemm.wgsl`).
pub fn gemm_block(m: usize, k: usize, n: usize) -> (usize, usize) {
    ops::gemm::block(steps::gemm_split(m, k, n).0)
}
pub use profile::{DispatchTime, OpProfile, Profile, SLOWEST};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::plan::{BufId, Plan};
use arena::Arena;
use kernels::Kernels;
use memory::Memory;
use ops::Encoded;
use readback::Read;

/// Compiled plans kept per device; older ones are dropped past this many.
const PLAN_CACHE: usize = 16;

/// One recorded dispatch of a compiled plan, with its cost for `--profile`.
struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    groups: [u32; 3],
    /// The profile's family: the kernel's name, GEMMs by which operand is transposed.
    family: &'static str,
    /// A GEMM's shape, for the profile's trace (`RUST_LOG=debug`).
    shape: Option<String>,
    /// Floating-point operations (GEMMs) and bytes of the bound storage buffers.
    flops: f64,
    bytes: f64,
}

/// A plan compiled for one device.
struct Prepared {
    stateful: bool,
    mem: Memory,
    dispatches: Vec<Dispatch>,
    staging: Vec<wgpu::Buffer>,
}

/// The wgpu backend.
pub struct Gpu {
    ctx: Arc<GpuContext>,
    kernels: Kernels,
    prepared: Mutex<HashMap<u64, Arc<Prepared>>>,
    /// The largest buffer a plan may bind, in bytes (see [`Gpu::max_binding`]).
    max_binding: u64,
}

/// Environment variable that lowers the largest buffer a plan may bind below the adapter's
/// limits, in bytes (tests use it to exercise batch splitting without giant buffers).
pub const MAX_BINDING_ENV: &str = "MNFN_GPU_MAX_BINDING";

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gpu({})", self.ctx.describe())
    }
}

impl Gpu {
    /// Opens the adapter picked by `choice`; errors (never panics) when there is none.
    pub fn new(choice: &AdapterChoice) -> Result<Self> {
        let ctx = GpuContext::new(choice)?;
        let kernels = Kernels::new(&ctx.device)?;
        let limits = ctx.device.limits();
        let mut max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        if let Ok(v) = std::env::var(MAX_BINDING_ENV) {
            let lowered = v.trim().parse::<u64>().ok().filter(|&b| b >= 4);
            let lowered = lowered.ok_or_else(|| {
                Error::setting(MAX_BINDING_ENV, &v, "a whole number of bytes, at least 4")
            })?;
            max_binding = max_binding.min(lowered);
        }
        Ok(Gpu {
            ctx,
            kernels,
            prepared: Mutex::new(HashMap::new()),
            max_binding,
        })
    }

    /// The same device with the largest bindable buffer lowered to `bytes` (never raised past
    /// the adapter's limits).
    pub fn with_max_binding(mut self, bytes: u64) -> Self {
        self.max_binding = self.max_binding.min(bytes.max(4));
        self
    }

    /// The largest buffer a plan may bind, in bytes: the adapter's storage-binding and buffer
    /// limits, or less where [`MAX_BINDING_ENV`] or [`Gpu::with_max_binding`] lowered it.
    pub fn max_binding(&self) -> u64 {
        self.max_binding
    }

    /// Bytes of every buffer `plan` needs on the device, the chunking's partial sums included.
    fn plan_buffer_bytes(plan: &Plan) -> impl Iterator<Item = u64> {
        let (_, extra) = steps::split(plan, plan.bufs.len() + 1);
        let own: Vec<usize> = plan.bufs.iter().map(|d| d.len).collect();
        own.into_iter().chain(extra).map(buffer_bytes)
    }

    /// The device context.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Compiles every pipeline of every kernel now (they are otherwise compiled on first use)
    /// and returns how many there are; an error names the first the device refused.
    pub fn compile_all(&self) -> Result<usize> {
        let scope = self
            .ctx
            .device
            .push_error_scope(wgpu::ErrorFilter::Validation);
        let mut count = 0;
        for kernel in Kernel::ALL {
            for variant in 0..kernel.shader().variants.len() {
                self.kernels.compile(kernel, variant);
                count += 1;
            }
        }
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(Error::Device(format!("pipeline compilation failed: {e}"))),
            None => Ok(count),
        }
    }

    /// Binds an encoded step: its storage buffers in order, then a new uniform buffer.
    fn dispatch(&self, mem: &Memory, e: Encoded, step: &steps::Step, plan: &Plan) -> Dispatch {
        let dev = &self.ctx.device;
        let uniform = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: &e.uniform,
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut entries: Vec<wgpu::BindGroupEntry> = e
            .bindings
            .iter()
            .enumerate()
            .map(|(i, &id)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: wgpu::BindingResource::Buffer(mem.binding(id)),
            })
            .collect();
        entries.push(wgpu::BindGroupEntry {
            binding: e.bindings.len() as u32,
            resource: uniform.as_entire_binding(),
        });
        let pipeline = self.kernels.get(e.kernel, e.variant);
        let bind_group = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let bytes = e.bindings.iter().map(|&id| mem.size(id) as f64).sum();
        Dispatch {
            pipeline,
            bind_group,
            groups: e.groups,
            family: steps::gemm_family(step, plan).unwrap_or(e.kernel.shader().name),
            shape: steps::gemm_shape(step, plan),
            flops: steps::flops(step, plan),
            bytes,
        }
    }

    fn prepare(&self, plan: &Plan) -> Result<Prepared> {
        let dev = &self.ctx.device;
        let max = self.max_binding;
        if let Some(bytes) = Self::plan_buffer_bytes(plan).find(|&b| b > max) {
            return Err(Error::Device(format!(
                "a buffer of {bytes} bytes is over the device's binding limit of {max} \
                 (forward passes and training split their batch to fit; this plan cannot be \
                 split): use a smaller batch or model"
            )));
        }
        // The optimizer's parameters, gradients and moments in four arenas, members bound at
        // their offsets, when the plan's Adam ops can share a dispatch.
        let align = self
            .ctx
            .device
            .limits()
            .min_storage_buffer_offset_alignment
            .max(16)
            / 4;
        let arena = Arena::layout(plan, align as usize, max);
        let mut mem = Memory::allocate(dev, plan, arena.as_ref());
        // A spare storage buffer for unused read-write bindings (see `ops::encode`).
        let spare = mem.scratch("unused binding", 1);
        // Long GEMMs and sums run in chunks over extra partial-sum buffers (see `steps`).
        let (mut steps, extra) = steps::split(plan, mem.len());
        for len in extra {
            mem.scratch("partial sums", len);
        }
        if let Some(a) = &arena {
            steps = a.fuse(steps, mem.arenas(a));
        }
        let steps = epilogue::fold(steps, plan, |id| mem.home(id));
        let dispatches = steps
            .iter()
            .map(|step| {
                let e = ops::encode(step, plan, spare)?;
                Ok(self.dispatch(&mem, e, step, plan))
            })
            .collect::<Result<Vec<_>>>()?;
        let staging = plan
            .outputs
            .iter()
            .map(|&id| readback::staging(dev, plan.bufs[id].len))
            .collect();
        Ok(Prepared {
            stateful: plan.stateful,
            mem,
            dispatches,
            staging,
        })
    }

    /// The compiled plan with `inputs` written to its input buffers.
    fn upload(&self, plan: &Plan, inputs: &[Vec<f64>]) -> Result<Arc<Prepared>> {
        super::check_inputs(plan, inputs)?;
        let prep = self.prepared(plan)?;
        for (&id, data) in plan.inputs.iter().zip(inputs) {
            prep.mem.write(&self.ctx.queue, id, data);
        }
        Ok(prep)
    }

    fn prepared(&self, plan: &Plan) -> Result<Arc<Prepared>> {
        let mut cache = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(&plan.id) {
            return Ok(p.clone());
        }
        let scope = self
            .ctx
            .device
            .push_error_scope(wgpu::ErrorFilter::Validation);
        let prepared = self.prepare(plan);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Device(format!("plan compilation failed: {e}")));
        }
        let prepared = Arc::new(prepared?);
        if cache.len() >= PLAN_CACHE {
            // Stateful plans hold training state: only `release` drops them.
            cache.retain(|_, p| p.stateful);
        }
        cache.insert(plan.id, prepared.clone());
        Ok(prepared)
    }
}

impl Backend for Gpu {
    fn describe(&self) -> String {
        format!("gpu-f32 {}", self.ctx.describe())
    }

    fn run(&self, plan: &Plan, inputs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        let prep = self.upload(plan, inputs)?;
        let dev = &self.ctx.device;
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("forward"),
        });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("forward"),
                timestamp_writes: None,
            });
            for d in &prep.dispatches {
                pass.set_pipeline(&d.pipeline);
                pass.set_bind_group(0, &d.bind_group, &[]);
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
            }
        }
        let reads: Vec<Read> = plan
            .outputs
            .iter()
            .zip(&prep.staging)
            .map(|(&id, staging)| prep.mem.read(id, staging, plan.bufs[id].len))
            .collect();
        // Training steps read nothing: this returns while the GPU works.
        let outs = readback::submit_and_read(&self.ctx, enc, &reads);
        if let Some(e) = pollster::block_on(scope.pop()) {
            let what = if reads.is_empty() {
                "plan submission"
            } else {
                "forward pass"
            };
            return Err(Error::Device(format!("{what} failed: {e}")));
        }
        outs
    }

    fn read(&self, plan: &Plan, ids: &[BufId]) -> Result<Vec<Vec<f64>>> {
        let prep = self.prepared(plan)?;
        let dev = &self.ctx.device;
        let lens = ids
            .iter()
            .map(|&id| {
                let desc = plan
                    .bufs
                    .get(id)
                    .ok_or_else(|| super::no_buffer(plan, id))?;
                Ok(desc.len)
            })
            .collect::<Result<Vec<_>>>()?;
        let staging: Vec<_> = lens.iter().map(|&n| readback::staging(dev, n)).collect();
        let reads: Vec<Read> = ids
            .iter()
            .zip(&lens)
            .zip(&staging)
            .map(|((&id, &len), staging)| prep.mem.read(id, staging, len))
            .collect();
        let enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("read"),
        });
        readback::submit_and_read(&self.ctx, enc, &reads)
    }

    fn write(&self, plan: &Plan, id: BufId, data: &[f64]) -> Result<()> {
        super::check_write(plan, id, data)?;
        let prep = self.prepared(plan)?;
        prep.mem.write(&self.ctx.queue, id, data);
        Ok(())
    }

    fn release(&self, plan: &Plan) {
        self.prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&plan.id);
    }

    fn fits(&self, plan: &Plan) -> bool {
        Self::plan_buffer_bytes(plan).all(|b| b <= self.max_binding)
    }
}
