//! Plan ops as dispatch-level steps: long GEMMs and strided sums split into chunks over
//! partial-sum buffers (DESIGN §4), SIREN backwards, losses and sums of squares into their two
//! phases.

use super::ops::{loss, sum_groups};
use crate::plan::{BufId, GemmOp, Op, Plan, ReduceOp, SirenGradOp};

/// Inner dimension a GEMM invocation sums at most (about 50k loop iterations in `gemm.wgsl`).
const K_CHUNK: usize = 2048;
/// Terms a strided-sum invocation adds at most.
const R_CHUNK: usize = 4096;

/// A dispatch-level step: a plan op, or a chunk of a long GEMM or strided sum. Software Vulkan
/// (lavapipe) stops any shader loop after 65,535 iterations, and on hardware GPUs chunking a long
/// inner dimension (the parameter gradients Aᵀ·dC) also spreads it over more workgroups.
pub enum Step {
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
    /// Phase 0 (partial sums over many workgroups, into `partials`) or 1 (their fixed-order
    /// sum) of the loss or sum-of-squares op at this index.
    Sum {
        op: usize,
        phase: u32,
        partials: BufId,
    },
}

/// The steps of `plan` and the lengths of the partial-sum buffers they add (numbered from
/// `first_extra`). Chunks are summed in a fixed order, so results stay deterministic.
pub fn split(plan: &Plan, first_extra: usize) -> (Vec<Step>, Vec<usize>) {
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
            Op::Loss(l) => {
                let partials = first_extra + extra.len();
                extra.push(sum_groups(loss::items(l)).0);
                steps.extend(sum_phases(i, partials));
            }
            Op::SumSquares(q) => {
                let partials = first_extra + extra.len();
                extra.push(sum_groups(q.len).0);
                steps.extend(sum_phases(i, partials));
            }
            _ => steps.push(Step::Op(i)),
        }
    }
    (steps, extra)
}

/// The two phases of the whole-buffer sum of op `op`, over the partial sums in `partials`: one
/// per workgroup of phase 0, never more than its input's length / 256 + 1, so the buffer never
/// outgrows the input's binding.
fn sum_phases(op: usize, partials: BufId) -> [Step; 2] {
    [0, 1].map(|phase| Step::Sum {
        op,
        phase,
        partials,
    })
}

/// Floating-point operations of a step: 2·m·k·n for GEMMs (of its k range for a chunk), else 0
/// (the profile reports the other kernels in bytes moved).
pub fn flops(step: &Step, plan: &Plan) -> f64 {
    let gemm = |g: &GemmOp, k: usize| 2.0 * (g.m * k * g.n) as f64;
    match step {
        Step::GemmChunk {
            g, k_begin, k_end, ..
        } => gemm(g, k_end - k_begin),
        Step::Op(i) => match &plan.ops[*i] {
            Op::Gemm(g) => gemm(g, g.k),
            _ => 0.0,
        },
        _ => 0.0,
    }
}
