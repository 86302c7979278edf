//! The GPU backend: wgpu + WGSL, f32. A plan is compiled once into buffers and bind groups; each
//! run uploads the inputs, records every op into one compute pass of one encoder, submits once
//! and reads the outputs back at the end (DESIGN §4).

mod context;
mod kernels;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

pub use context::{list_adapters, AdapterChoice, GpuContext};
pub use kernels::SOURCES;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::plan::{
    BufId, BufKind, GemmOp, LossKind, Norm, Op, Plan, PoolOp, ReduceOp, SirenGradOp, SirenOp,
};
use kernels::{
    Kernels, ACTIVATION, ACTIVATION_GRAD, ADAM, GEMM, LOSS, MASK, POOL, POOL_GRAD, REDUCE, SIREN,
    SIREN_GRAD, STAT, SUM_SQUARES,
};

const WG: u32 = 256;
const MAX_GROUPS: u32 = 65_535;
/// Compiled plans kept per device; older ones are dropped past this many.
const PLAN_CACHE: usize = 16;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GemmParams {
    m: u32,
    k: u32,
    n: u32,
    flags: u32,
    k_begin: u32,
    k_end: u32,
    c_base: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ActParams {
    len: u32,
    act: u32,
    row: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct PoolParams {
    batch: u32,
    r: u32,
    s: u32,
    e: u32,
    f: u32,
    width: u32,
    offset: u32,
    flags: u32,
    row: u32,
    eps_bits: u32,
    pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ReduceParams {
    outer: u32,
    mid: u32,
    inner: u32,
    r: u32,
    xa: u32,
    xs: u32,
    xr: u32,
    ya: u32,
    ys: u32,
    alpha: f32,
    flags: u32,
    row: u32,
    x_base: u32,
    y_base: u32,
    pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct LossParams {
    len: u32,
    kind: u32,
    classes: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct AdamParams {
    len: u32,
    row: u32,
    flags: u32,
    pad: u32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    max_norm: f32,
    pad1: [f32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SumParams {
    len: u32,
    flags: u32,
    pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct StatParams {
    batch: u32,
    m: u32,
    channels: u32,
    f: u32,
    width: u32,
    offset: u32,
    row: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SirenParams {
    batch: u32,
    points: u32,
    layers: u32,
    d: u32,
    h2: u32,
    row: u32,
    omega: f32,
    flags: u32,
    widths: [u32; 8],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MaskParams {
    len: u32,
    block: u32,
    inner: u32,
    flags: u32,
    row: u32,
    pad: [u32; 3],
}

/// Widest SIREN layer and most layers the per-thread arrays of `siren*.wgsl` hold.
const SIREN_MAX_WIDTH: usize = 64;
const SIREN_MAX_LAYERS: usize = 7;
/// Points a SIREN parameter-gradient invocation sums over (lavapipe's loop limit).
const SIREN_MAX_POINTS: usize = 65_535;

/// The uniform of a SIREN forward or backward phase over `threads` invocations.
fn siren_uniform(s: &SirenOp, flags: u32, threads: usize) -> Result<(SirenParams, (u32, u32))> {
    let layers = s.widths.len() - 1;
    if layers > SIREN_MAX_LAYERS
        || s.widths.iter().any(|&w| w > SIREN_MAX_WIDTH)
        || s.points > SIREN_MAX_POINTS
    {
        return Err(Error::Spec(format!(
            "the GPU SIREN kernel takes at most {SIREN_MAX_LAYERS} layers of width at most {SIREN_MAX_WIDTH} and {SIREN_MAX_POINTS} points; got widths {:?} and {} points",
            s.widths, s.points
        )));
    }
    let (groups, row) = grid(threads)?;
    let mut widths = [0u32; 8];
    for (w, &n) in widths.iter_mut().zip(&s.widths) {
        *w = u32_of(n, "width")?;
    }
    let p = SirenParams {
        batch: u32_of(s.batch, "batch")?,
        points: u32_of(s.points, "points")?,
        layers: u32_of(layers, "layers")?,
        d: u32_of(SirenOp::params_per_sample(&s.widths), "parameters")?,
        h2: u32_of(SirenOp::trace_per_point(&s.widths), "trace")?,
        row,
        omega: s.omega as f32,
        flags,
        widths,
    };
    Ok((p, groups))
}

struct Dispatch {
    pipeline: usize,
    bind_group: wgpu::BindGroup,
    groups: (u32, u32),
}

/// A plan compiled for one device.
struct Prepared {
    stateful: bool,
    bufs: Vec<wgpu::Buffer>,
    dispatches: Vec<Dispatch>,
    staging: Vec<wgpu::Buffer>,
}

/// The wgpu backend.
pub struct Gpu {
    ctx: Arc<GpuContext>,
    kernels: Kernels,
    prepared: Mutex<HashMap<u64, Arc<Prepared>>>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gpu({})", self.ctx.describe())
    }
}

/// Workgroups for `threads` one-dimensional invocations, split over y past the x limit; returns
/// the grid and the thread count of one grid row.
fn grid(threads: usize) -> Result<((u32, u32), u32)> {
    let groups = threads.div_ceil(WG as usize).max(1);
    let x = groups.min(MAX_GROUPS as usize);
    let y = groups.div_ceil(x);
    if y > MAX_GROUPS as usize {
        return Err(Error::Device(format!(
            "{threads} threads exceed the dispatch limits"
        )));
    }
    Ok(((x as u32, y as u32), x as u32 * WG))
}

fn u32_of(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Device(format!("{what} = {v} does not fit in u32")))
}

/// Inner dimension a GEMM invocation sums at most (about 50k loop iterations in `gemm.wgsl`).
const K_CHUNK: usize = 2048;
/// Terms a strided-sum invocation adds at most.
const R_CHUNK: usize = 4096;

/// A dispatch-level step: a plan op, or a chunk of a long GEMM or strided sum. Software Vulkan
/// (lavapipe) stops any shader loop after 65,535 iterations, and on hardware GPUs chunking a long
/// inner dimension (the parameter gradients Aᵀ·dC) also spreads it over more workgroups.
enum Step {
    /// The plan's op at this index.
    Op(usize),
    /// op(A)·op(B) over k in [k_begin, k_end), written at `c_base` of `out`.
    GemmChunk {
        g: GemmOp,
        k_begin: usize,
        k_end: usize,
        out: BufId,
        c_base: usize,
    },
    /// A strided sum with x and y offsets.
    Reduce {
        r: ReduceOp,
        x_base: usize,
        y_base: usize,
    },
    /// Phase 0 (per point) or 1 (per parameter) of a SIREN backward.
    SirenGrad { g: SirenGradOp, phase: u32 },
}

/// The steps of `plan` and the lengths of the partial-sum buffers they add (numbered from
/// `first_extra`). Chunks are summed in a fixed order, so results stay deterministic.
fn split(plan: &Plan, first_extra: usize) -> (Vec<Step>, Vec<usize>) {
    let mut steps = Vec::with_capacity(plan.ops.len());
    let mut extra = Vec::new();
    for (i, op) in plan.ops.iter().enumerate() {
        match op {
            Op::Gemm(g) if g.k > K_CHUNK => {
                let chunks = g.k.div_ceil(K_CHUNK);
                let size = g.m * g.n;
                let part = first_extra + extra.len();
                extra.push(chunks * size);
                for c in 0..chunks {
                    steps.push(Step::GemmChunk {
                        g: g.clone(),
                        k_begin: c * K_CHUNK,
                        k_end: g.k.min((c + 1) * K_CHUNK),
                        out: part,
                        c_base: c * size,
                    });
                }
                let sum = ReduceOp::sum_rows(part, g.c, chunks, size, g.accumulate);
                steps.push(Step::Reduce {
                    r: sum,
                    x_base: 0,
                    y_base: 0,
                });
                if let Some(bias) = g.bias {
                    let add = ReduceOp {
                        x: bias,
                        y: g.c,
                        outer: g.m,
                        mid: 1,
                        inner: g.n,
                        r: 1,
                        x_strides: [0, 0, 0],
                        y_strides: [g.n, 0],
                        alpha: 1.0,
                        accumulate: true,
                    };
                    steps.push(Step::Reduce {
                        r: add,
                        x_base: 0,
                        y_base: 0,
                    });
                }
            }
            Op::Reduce(r) if r.r > R_CHUNK => {
                let chunks = r.r.div_ceil(R_CHUNK);
                let size = r.outer * r.mid * r.inner;
                let part = first_extra + extra.len();
                extra.push(chunks * size);
                for c in 0..chunks {
                    let chunk = ReduceOp {
                        y: part,
                        r: R_CHUNK.min(r.r - c * R_CHUNK),
                        y_strides: [r.mid * r.inner, r.inner],
                        alpha: 1.0,
                        accumulate: false,
                        ..r.clone()
                    };
                    steps.push(Step::Reduce {
                        r: chunk,
                        x_base: c * R_CHUNK * r.x_strides[2],
                        y_base: c * size,
                    });
                }
                let total = ReduceOp {
                    x: part,
                    r: chunks,
                    x_strides: [r.mid * r.inner, r.inner, size],
                    ..r.clone()
                };
                steps.push(Step::Reduce {
                    r: total,
                    x_base: 0,
                    y_base: 0,
                });
            }
            Op::SirenGrad(g) => {
                for phase in 0..2 {
                    steps.push(Step::SirenGrad {
                        g: g.clone(),
                        phase,
                    });
                }
            }
            _ => steps.push(Step::Op(i)),
        }
    }
    (steps, extra)
}

/// The uniform and grid of a GEMM dispatch over k in [k_begin, k_end), writing at `c_base`.
fn gemm_uniform(
    g: &GemmOp,
    accumulate: bool,
    bias: bool,
    k_begin: usize,
    k_end: usize,
    c_base: usize,
) -> Result<(GemmParams, (u32, u32))> {
    let flags = u32::from(accumulate)
        | (u32::from(bias) << 1)
        | (u32::from(g.trans_a) << 2)
        | (u32::from(g.trans_b) << 3);
    let gx = g.n.div_ceil(64);
    let gy = g.m.div_ceil(64);
    if gx > MAX_GROUPS as usize || gy > MAX_GROUPS as usize {
        return Err(Error::Device(format!(
            "GEMM {}x{} exceeds the dispatch limits",
            g.m, g.n
        )));
    }
    let p = GemmParams {
        m: u32_of(g.m, "m")?,
        k: u32_of(g.k, "k")?,
        n: u32_of(g.n, "n")?,
        flags,
        k_begin: u32_of(k_begin, "k")?,
        k_end: u32_of(k_end, "k")?,
        c_base: u32_of(c_base, "offset")?,
        pad: 0,
    };
    Ok((p, (gx.max(1) as u32, gy.max(1) as u32)))
}

/// The uniform and grid of a strided-sum dispatch with x and y offsets.
fn reduce_uniform(
    r: &ReduceOp,
    x_base: usize,
    y_base: usize,
) -> Result<(ReduceParams, (u32, u32))> {
    let (groups, row) = grid(r.outer * r.mid * r.inner)?;
    let [xa, xs, xr] = r.x_strides;
    let [ya, ys] = r.y_strides;
    let p = ReduceParams {
        outer: u32_of(r.outer, "outer")?,
        mid: u32_of(r.mid, "mid")?,
        inner: u32_of(r.inner, "inner")?,
        r: u32_of(r.r, "r")?,
        xa: u32_of(xa, "xa")?,
        xs: u32_of(xs, "xs")?,
        xr: u32_of(xr, "xr")?,
        ya: u32_of(ya, "ya")?,
        ys: u32_of(ys, "ys")?,
        alpha: r.alpha as f32,
        flags: u32::from(r.accumulate),
        row,
        x_base: u32_of(x_base, "offset")?,
        y_base: u32_of(y_base, "offset")?,
        pad: [0; 2],
    };
    Ok((p, groups))
}

/// Flags shared by `pool.wgsl` and `pool_grad.wgsl`: norm (bits 0-1), square, affine.
fn pool_flags(q: &PoolOp) -> u32 {
    let norm = match q.norm {
        Norm::None => 0,
        Norm::L1 => 1,
        Norm::L2 => 2,
    };
    norm | (u32::from(q.square) << 2) | (u32::from(q.gamma.is_some()) << 3)
}

/// The uniform of a pool piece (`row` left 0 for the caller).
fn pool_params(q: &PoolOp) -> Result<PoolParams> {
    Ok(PoolParams {
        batch: u32_of(q.batch, "batch")?,
        r: u32_of(q.r, "r")?,
        s: u32_of(q.s, "s")?,
        e: u32_of(q.channels * q.f, "e")?,
        f: u32_of(q.f, "f")?,
        width: u32_of(q.width, "width")?,
        offset: u32_of(q.offset, "offset")?,
        flags: pool_flags(q),
        row: 0,
        eps_bits: (q.eps as f32).to_bits(),
        pad: [0; 2],
    })
}

impl Gpu {
    /// Opens the adapter picked by `choice`; errors (never panics) when there is none.
    pub fn new(choice: &AdapterChoice) -> Result<Self> {
        let ctx = GpuContext::new(choice)?;
        let kernels = Kernels::new(&ctx.device)?;
        Ok(Gpu {
            ctx,
            kernels,
            prepared: Mutex::new(HashMap::new()),
        })
    }

    /// The device context.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    fn pipeline(&self, i: usize) -> &wgpu::ComputePipeline {
        &self.kernels.pipelines[i]
    }

    /// A dispatch of `pipeline` with `ids` bound in order and the uniform last.
    fn dispatch(
        &self,
        bufs: &[wgpu::Buffer],
        pipeline: usize,
        ids: &[usize],
        params: &wgpu::Buffer,
        groups: (u32, u32),
    ) -> Dispatch {
        let mut entries: Vec<wgpu::BindGroupEntry> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: bufs[id].as_entire_binding(),
            })
            .collect();
        entries.push(wgpu::BindGroupEntry {
            binding: ids.len() as u32,
            resource: params.as_entire_binding(),
        });
        let bind_group = self
            .ctx
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &self.pipeline(pipeline).get_bind_group_layout(0),
                entries: &entries,
            });
        Dispatch {
            pipeline,
            bind_group,
            groups,
        }
    }

    fn prepare(&self, plan: &Plan) -> Result<Prepared> {
        let dev = &self.ctx.device;
        let max = dev.limits().max_storage_buffer_binding_size;
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC;
        let mut bufs = Vec::with_capacity(plan.bufs.len());
        for (i, d) in plan.bufs.iter().enumerate() {
            let bytes = (d.len.max(1) * 4) as u64;
            if bytes > max {
                return Err(Error::Device(format!(
                    "buffer {i} needs {bytes} bytes, over the adapter's storage binding limit of {max}: use a smaller batch"
                )));
            }
            bufs.push(match &d.kind {
                BufKind::Param(v) => {
                    let data: Vec<f32> = v.iter().map(|&x| x as f32).collect();
                    dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: None,
                        contents: bytemuck::cast_slice(&data),
                        usage,
                    })
                }
                _ => dev.create_buffer(&wgpu::BufferDescriptor {
                    label: None,
                    size: bytes,
                    usage,
                    mapped_at_creation: false,
                }),
            });
        }
        // A spare storage buffer for unused read-write bindings (writable bindings may not alias).
        let dummy = bufs.len();
        bufs.push(dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unused binding"),
            size: 4,
            usage,
            mapped_at_creation: false,
        }));
        let uniform = |bytes: &[u8]| {
            dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytes,
                usage: wgpu::BufferUsages::UNIFORM,
            })
        };
        // Long GEMMs and sums run in chunks over extra partial-sum buffers (see `split`).
        let (steps, extra) = split(plan, bufs.len());
        for len in extra {
            bufs.push(dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("partial sums"),
                size: (len.max(1) * 4) as u64,
                usage,
                mapped_at_creation: false,
            }));
        }
        let mut dispatches = Vec::with_capacity(steps.len());
        for step in &steps {
            let op = match step {
                Step::Op(i) => &plan.ops[*i],
                Step::GemmChunk {
                    g,
                    k_begin,
                    k_end,
                    out,
                    c_base,
                } => {
                    let (p, groups) = gemm_uniform(g, false, false, *k_begin, *k_end, *c_base)?;
                    let ids = vec![g.a, g.b, g.b, *out];
                    dispatches.push(self.dispatch(
                        &bufs,
                        GEMM,
                        &ids,
                        &uniform(bytemuck::bytes_of(&p)),
                        groups,
                    ));
                    continue;
                }
                Step::SirenGrad { g, phase } => {
                    let f = &g.fwd;
                    let threads = f.batch
                        * if *phase == 0 {
                            f.points
                        } else {
                            SirenOp::params_per_sample(&f.widths)
                        };
                    let flags = u32::from(g.accumulate) | (phase << 1);
                    let (p, groups) = siren_uniform(f, flags, threads)?;
                    let ids = vec![f.params, f.coords, f.trace, g.dout, g.dz, g.dparams];
                    dispatches.push(self.dispatch(
                        &bufs,
                        SIREN_GRAD,
                        &ids,
                        &uniform(bytemuck::bytes_of(&p)),
                        groups,
                    ));
                    continue;
                }
                Step::Reduce { r, x_base, y_base } => {
                    let (p, groups) = reduce_uniform(r, *x_base, *y_base)?;
                    let ids = vec![r.x, r.y];
                    dispatches.push(self.dispatch(
                        &bufs,
                        REDUCE,
                        &ids,
                        &uniform(bytemuck::bytes_of(&p)),
                        groups,
                    ));
                    continue;
                }
            };
            let (pipeline, ids, params, groups): (usize, Vec<usize>, wgpu::Buffer, (u32, u32)) =
                match op {
                    Op::Gemm(g) => {
                        let (p, groups) =
                            gemm_uniform(g, g.accumulate, g.bias.is_some(), 0, g.k, 0)?;
                        (
                            GEMM,
                            vec![g.a, g.b, g.bias.unwrap_or(g.b), g.c],
                            uniform(bytemuck::bytes_of(&p)),
                            groups,
                        )
                    }
                    Op::Activation(a) => {
                        let (groups, row) = grid(a.len)?;
                        let p = ActParams {
                            len: u32_of(a.len, "len")?,
                            act: a.act.code(),
                            row,
                            pad: 0,
                        };
                        (
                            ACTIVATION,
                            vec![a.x, a.y],
                            uniform(bytemuck::bytes_of(&p)),
                            groups,
                        )
                    }
                    Op::Pool(q) => {
                        let (groups, row) = grid(q.batch * q.s * q.channels * q.f)?;
                        let p = PoolParams {
                            row,
                            ..pool_params(q)?
                        };
                        let ids = vec![q.x, q.gamma.unwrap_or(q.x), q.beta.unwrap_or(q.x), q.out];
                        (POOL, ids, uniform(bytemuck::bytes_of(&p)), groups)
                    }
                    Op::Reduce(r) => {
                        let (p, groups) = reduce_uniform(r, 0, 0)?;
                        (
                            REDUCE,
                            vec![r.x, r.y],
                            uniform(bytemuck::bytes_of(&p)),
                            groups,
                        )
                    }
                    Op::ActivationGrad(a) => {
                        let (groups, row) = grid(a.len)?;
                        let p = ActParams {
                            len: u32_of(a.len, "len")?,
                            act: a.act.code(),
                            row,
                            pad: u32::from(a.accumulate),
                        };
                        let ids = vec![a.x, a.dy, a.dx];
                        (
                            ACTIVATION_GRAD,
                            ids,
                            uniform(bytemuck::bytes_of(&p)),
                            groups,
                        )
                    }
                    Op::PoolGrad(g) => {
                        let q = &g.fwd;
                        let (groups, row) = grid(q.batch * q.r * q.s)?;
                        let p = PoolParams {
                            flags: pool_flags(q) | (u32::from(g.accumulate) << 4),
                            row,
                            ..pool_params(q)?
                        };
                        let (gr, br) = g.affine_rows.unwrap_or((dummy, dummy));
                        let ids = vec![q.x, q.gamma.unwrap_or(q.x), g.dout, g.dx, gr, br];
                        (POOL_GRAD, ids, uniform(bytemuck::bytes_of(&p)), groups)
                    }
                    Op::Loss(l) => {
                        let (kind, classes) = match l.kind {
                            LossKind::HalfSumSquares => (0, 1),
                            LossKind::Mse => (1, 1),
                            LossKind::Bce => (2, 1),
                            LossKind::SoftmaxCe { classes } => (3, classes),
                        };
                        let p = LossParams {
                            len: u32_of(l.len, "len")?,
                            kind,
                            classes: u32_of(classes, "classes")?,
                            pad: 0,
                        };
                        let ids = vec![l.pred, l.target.unwrap_or(l.pred), l.loss, l.dpred];
                        (LOSS, ids, uniform(bytemuck::bytes_of(&p)), (1, 1))
                    }
                    Op::Adam(a) => {
                        let (groups, row) = grid(a.len)?;
                        let p = AdamParams {
                            len: u32_of(a.len, "len")?,
                            row,
                            flags: u32::from(a.norm_sq.is_some()) | (u32::from(a.decoupled) << 1),
                            pad: 0,
                            beta1: a.beta1 as f32,
                            beta2: a.beta2 as f32,
                            eps: a.eps as f32,
                            weight_decay: a.weight_decay as f32,
                            max_norm: a.max_norm as f32,
                            pad1: [0.0; 3],
                        };
                        let ids = vec![
                            a.grad,
                            a.hyper,
                            a.norm_sq.unwrap_or(a.hyper),
                            a.param,
                            a.m,
                            a.v,
                        ];
                        (ADAM, ids, uniform(bytemuck::bytes_of(&p)), groups)
                    }
                    Op::SumSquares(q) => {
                        let p = SumParams {
                            len: u32_of(q.len, "len")?,
                            flags: u32::from(q.accumulate),
                            pad: [0; 2],
                        };
                        (
                            SUM_SQUARES,
                            vec![q.x, q.out],
                            uniform(bytemuck::bytes_of(&p)),
                            (1, 1),
                        )
                    }
                    Op::Siren(sr) => {
                        let (p, groups) = siren_uniform(sr, 0, sr.batch * sr.points)?;
                        let ids = vec![sr.params, sr.coords, sr.out, sr.trace];
                        (SIREN, ids, uniform(bytemuck::bytes_of(&p)), groups)
                    }
                    Op::SirenGrad(_) => {
                        return Err(Error::Spec(
                            "a SIREN gradient reached dispatch without its phases".into(),
                        ))
                    }
                    Op::Mask(m) => {
                        let len = m.outer * m.mid * m.inner;
                        let (groups, row) = grid(len)?;
                        let p = MaskParams {
                            len: u32_of(len, "len")?,
                            block: u32_of((m.mid * m.inner).max(1), "block")?,
                            inner: u32_of(m.inner.max(1), "inner")?,
                            flags: u32::from(m.accumulate),
                            row,
                            pad: [0; 3],
                        };
                        (
                            MASK,
                            vec![m.x, m.mask, m.y],
                            uniform(bytemuck::bytes_of(&p)),
                            groups,
                        )
                    }
                    Op::Stat(q) => {
                        // One workgroup per (b, c), split over y past the x limit.
                        let groups = q.batch * q.channels;
                        let gx = groups.clamp(1, MAX_GROUPS as usize);
                        let gy = groups.div_ceil(gx).max(1);
                        if gy > MAX_GROUPS as usize {
                            return Err(Error::Device(format!(
                                "{groups} workgroups exceed the dispatch limits"
                            )));
                        }
                        let p = StatParams {
                            batch: u32_of(q.batch, "batch")?,
                            m: u32_of(q.m, "m")?,
                            channels: u32_of(q.channels, "channels")?,
                            f: u32_of(q.f, "f")?,
                            width: u32_of(q.width, "width")?,
                            offset: u32_of(q.offset, "offset")?,
                            row: u32_of(gx, "row")?,
                            pad: 0,
                        };
                        let groups = (gx as u32, gy as u32);
                        (
                            STAT,
                            vec![q.x, q.out],
                            uniform(bytemuck::bytes_of(&p)),
                            groups,
                        )
                    }
                };
            dispatches.push(self.dispatch(&bufs, pipeline, &ids, &params, groups));
        }
        let staging = plan
            .outputs
            .iter()
            .map(|&id| {
                dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("staging"),
                    size: (plan.bufs[id].len.max(1) * 4) as u64,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        Ok(Prepared {
            stateful: plan.stateful,
            bufs,
            dispatches,
            staging,
        })
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
        if inputs.len() != plan.inputs.len() {
            return Err(Error::shape(
                "plan inputs",
                &[plan.inputs.len()],
                &[inputs.len()],
            ));
        }
        let prep = self.prepared(plan)?;
        let (dev, queue) = (&self.ctx.device, &self.ctx.queue);
        for (&id, data) in plan.inputs.iter().zip(inputs) {
            if data.len() != plan.bufs[id].len {
                return Err(Error::shape(
                    format!("plan input buffer {id}"),
                    &[plan.bufs[id].len],
                    &[data.len()],
                ));
            }
            let v: Vec<f32> = data.iter().map(|&x| x as f32).collect();
            queue.write_buffer(&prep.bufs[id], 0, bytemuck::cast_slice(&v));
        }
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
                pass.set_pipeline(self.pipeline(d.pipeline));
                pass.set_bind_group(0, &d.bind_group, &[]);
                pass.dispatch_workgroups(d.groups.0, d.groups.1, 1);
            }
        }
        for (&id, st) in plan.outputs.iter().zip(&prep.staging) {
            enc.copy_buffer_to_buffer(&prep.bufs[id], 0, st, 0, st.size());
        }
        queue.submit([enc.finish()]);
        if plan.outputs.is_empty() {
            // Nothing to read back: return while the GPU works (training steps).
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(Error::Device(format!("plan submission failed: {e}")));
            }
            return Ok(Vec::new());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        for (i, st) in prep.staging.iter().enumerate() {
            let tx = tx.clone();
            st.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send((i, r));
            });
        }
        dev.poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(format!("device poll failed: {e}")))?;
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Device(format!("forward pass failed: {e}")));
        }
        for _ in 0..prep.staging.len() {
            let (i, r) = rx
                .recv()
                .map_err(|_| Error::Device("readback channel closed".into()))?;
            r.map_err(|e| Error::Device(format!("mapping output {i} failed: {e}")))?;
        }
        let mut outs = Vec::with_capacity(plan.outputs.len());
        for (&id, st) in plan.outputs.iter().zip(&prep.staging) {
            let n = plan.bufs[id].len;
            {
                let view = st
                    .get_mapped_range(..)
                    .map_err(|e| Error::Device(format!("reading output: {e:?}")))?;
                let vals: &[f32] = bytemuck::cast_slice(&view);
                outs.push(vals[..n].iter().map(|&x| x as f64).collect());
            }
            st.unmap();
        }
        Ok(outs)
    }

    fn read(&self, plan: &Plan, ids: &[BufId]) -> Result<Vec<Vec<f64>>> {
        let prep = self.prepared(plan)?;
        let (dev, queue) = (&self.ctx.device, &self.ctx.queue);
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("read"),
        });
        let mut staging = Vec::with_capacity(ids.len());
        for &id in ids {
            let desc = plan
                .bufs
                .get(id)
                .ok_or_else(|| super::no_buffer(plan, id))?;
            let size = (desc.len.max(1) * 4) as u64;
            let st = dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("read staging"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            enc.copy_buffer_to_buffer(&prep.bufs[id], 0, &st, 0, size);
            staging.push((st, desc.len));
        }
        queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        for (st, _) in &staging {
            let tx = tx.clone();
            st.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        }
        dev.poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(format!("device poll failed: {e}")))?;
        for _ in &staging {
            rx.recv()
                .map_err(|_| Error::Device("readback channel closed".into()))?
                .map_err(|e| Error::Device(format!("mapping a buffer failed: {e}")))?;
        }
        let mut out = Vec::with_capacity(staging.len());
        for (st, n) in &staging {
            {
                let view = st
                    .get_mapped_range(..)
                    .map_err(|e| Error::Device(format!("reading a buffer: {e:?}")))?;
                let vals: &[f32] = bytemuck::cast_slice(&view);
                out.push(vals[..*n].iter().map(|&x| x as f64).collect());
            }
            st.unmap();
        }
        Ok(out)
    }

    fn write(&self, plan: &Plan, id: BufId, data: &[f64]) -> Result<()> {
        super::check_write(plan, id, data)?;
        let prep = self.prepared(plan)?;
        let v: Vec<f32> = data.iter().map(|&x| x as f32).collect();
        self.ctx
            .queue
            .write_buffer(&prep.bufs[id], 0, bytemuck::cast_slice(&v));
        Ok(())
    }

    fn release(&self, plan: &Plan) {
        self.prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&plan.id);
    }
}
