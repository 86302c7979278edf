//! Plan ops as dispatch-level steps: long GEMMs and strided sums split into chunks over
//! partial-sum buffers (DESIGN §4), SIREN backwards, losses and sums of squares into their two
//! phases.

use super::ops::{gemm, loss, reduce, sum_groups};
use crate::plan::{BufId, GemmOp, Op, Plan, ReduceOp, SirenGradOp};

/// Inner dimension a GEMM invocation sums at most (about 50k loop iterations in `gemm.wgsl`).
const K_CHUNK: usize = 2048;
/// Terms a strided-sum invocation adds at most.
const R_CHUNK: usize = 4096;
/// Shortest k chunk a GEMM is split into for parallelism (a multiple of the shader's k tile).
const K_MIN: usize = 256;
/// Fewest terms a strided-sum chunk adds when split for parallelism.
const R_MIN: usize = 64;
/// Fewest terms each lane of a tiled strided sum adds when split for parallelism.
const TILED_RUN: usize = 16;
/// Workgroups a split GEMM aims for: several per multiprocessor on a large GPU.
const GEMM_GROUPS: usize = 1024;
/// Workgroups (tiles × k chunks) a GEMM with fewer tiles than this needs to take the tile
/// fitted to its shape: its chunks, not its rows, supply the parallelism.
const FITTED_GROUPS: usize = 128;
/// Threads a split strided sum aims for.
const REDUCE_THREADS: usize = 1 << 17;
/// Most chunks a split adds for parallelism (the grid's z limit).
const MAX_CHUNKS: usize = 65_535;

/// How a dispatch splits an inner dimension of `total` terms: chunk c (workgroup z = c) takes
/// [c·len, min((c + 1)·len, total)). Depends on shapes only, so every device gets the same
/// chunks (and, summed in a fixed order, the same rounding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// Chunks (workgroups along z).
    pub chunks: usize,
    /// Terms per chunk (the last may have fewer).
    pub len: usize,
}

impl Split {
    /// One chunk of all `total` terms.
    pub fn whole(total: usize) -> Self {
        Split {
            chunks: 1,
            len: total,
        }
    }

    /// Chunks of at most `max` terms (lavapipe's loop limit), and more, down to `min` terms
    /// each, until `work` (workgroups or threads per chunk) times the chunks reaches `target`:
    /// a long inner dimension with few outputs (parameter gradients Aᵀ·dC, bias gradients)
    /// would otherwise run on a handful of workgroups. Lengths are multiples of `align`.
    fn new(total: usize, max: usize, min: usize, work: usize, target: usize, align: usize) -> Self {
        if total == 0 {
            return Split::whole(0);
        }
        let wanted = target
            .div_ceil(work.max(1))
            .min(total / min)
            .min(MAX_CHUNKS);
        let chunks = total.div_ceil(max).max(wanted).max(1);
        let len = total.div_ceil(chunks).next_multiple_of(align);
        Split {
            chunks: total.div_ceil(len),
            len,
        }
    }
}

/// A dispatch-level step: a plan op, a split GEMM or strided sum, or a phase of a two-phase op.
/// Software Vulkan (lavapipe) stops any shader loop after 65,535 iterations, so long inner
/// dimensions are split; on hardware GPUs the split also spreads them over more workgroups.
pub enum Step {
    /// The plan's op at this index.
    Op(usize),
    /// op(A)·op(B) with k split by `split`, in tiles of `variant` (`gemm.wgsl`'s pipelines):
    /// chunk c's partial product at c·m·n of `out`.
    GemmSplit {
        g: GemmOp,
        split: Split,
        variant: usize,
        out: BufId,
    },
    /// The op at index `op` (a whole GEMM or a pool gradient), then the activation or
    /// activation gradient `then` that reads its output, in one dispatch (`epilogue::fold`).
    Then { op: usize, then: usize },
    /// A strided sum with its r terms split by `split`: chunk c writes y at c·outer·mid·inner.
    ReduceSplit { r: ReduceOp, split: Split },
    /// The affine pool gradient at this index, its per-entry ĝ ⊙ u rows into `rows` (a
    /// strided sum over r follows), with the activation gradient `then` folded in, if any.
    PoolGrad {
        op: usize,
        rows: BufId,
        then: Option<usize>,
    },
    /// Phase 0 (per point) or 1 (per parameter) of a SIREN backward.
    SirenGrad { g: SirenGradOp, phase: u32 },
    /// The Adam op at this index with its run's parameters, gradients and moments in the four
    /// `arenas` of `len` elements each (`arena::Arena`): one dispatch for every tensor.
    AdamGroup {
        op: usize,
        len: usize,
        arenas: [BufId; 4],
    },
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
            Op::Gemm(g) => push_gemm(i, g, &mut steps, &mut extra, first_extra),
            Op::Reduce(r) => push_reduce(r, &mut steps, &mut extra, first_extra),
            Op::PoolGrad(g) => match g.affine_rows {
                // Per-entry rows of ĝ ⊙ u into a partial buffer, then their sum over r.
                Some((gamma_rows, _)) => {
                    let q = &g.fwd;
                    let e = q.channels * q.f;
                    let rows = first_extra + extra.len();
                    extra.push(q.batch * q.r * q.s * e);
                    steps.push(Step::PoolGrad {
                        op: i,
                        rows,
                        then: None,
                    });
                    let sum = ReduceOp {
                        x: rows,
                        y: gamma_rows,
                        outer: q.batch,
                        mid: q.s,
                        inner: e,
                        r: q.r,
                        x_strides: [q.r * q.s * e, e, q.s * e],
                        y_strides: [q.s * e, e],
                        alpha: 1.0,
                        accumulate: false,
                    };
                    push_reduce(&sum, &mut steps, &mut extra, first_extra);
                }
                None => steps.push(Step::Op(i)),
            },
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

/// The steps of the GEMM op at index `i`: whole, or split along k by [`gemm_split`] with its
/// chunks' partial products into a new partial buffer, then their fixed-order sum into C and
/// the bias added.
fn push_gemm(
    i: usize,
    g: &GemmOp,
    steps: &mut Vec<Step>,
    extra: &mut Vec<usize>,
    first_extra: usize,
) {
    let (variant, split) = gemm_split(g.m, g.k, g.n);
    if split.chunks == 1 {
        steps.push(Step::Op(i));
        return;
    }
    let size = g.m * g.n;
    let part = first_extra + extra.len();
    extra.push(split.chunks * size);
    steps.push(Step::GemmSplit {
        g: g.clone(),
        split,
        variant,
        out: part,
    });
    let sum = ReduceOp::sum_rows(part, g.c, split.chunks, size, g.accumulate);
    push_reduce(&sum, steps, extra, first_extra);
    if let Some(bias) = g.bias {
        steps.push(whole(ReduceOp {
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
        }));
    }
}

/// The steps of a strided sum: whole, or split by [`reduce_split`] with its chunks' partial
/// sums into a new partial buffer, then their fixed-order sum into `r.y`.
fn push_reduce(r: &ReduceOp, steps: &mut Vec<Step>, extra: &mut Vec<usize>, first_extra: usize) {
    let split = reduce_split(r);
    if split.chunks == 1 {
        steps.push(whole(r.clone()));
        return;
    }
    let size = r.outer * r.mid * r.inner;
    let part = first_extra + extra.len();
    extra.push(split.chunks * size);
    steps.push(Step::ReduceSplit {
        r: ReduceOp {
            y: part,
            y_strides: [r.mid * r.inner, r.inner],
            alpha: 1.0,
            accumulate: false,
            ..r.clone()
        },
        split,
    });
    steps.push(whole(ReduceOp {
        x: part,
        r: split.chunks,
        x_strides: [r.mid * r.inner, r.inner, size],
        ..r.clone()
    }));
}

/// The tile variant of an m×k×n GEMM and how its k is split over the tiles' workgroups. Tall
/// products keep `gemm::tile`. Products with fewer than [`FITTED_GROUPS`] tiles of the fitted
/// shape (`gemm::fitted`) take it where their k chunks bring the workgroups (tiles × chunks) to
/// at least that many: on the H200 that halved the parameter gradients 144×65,536×144 and
/// 9×65,536×144, whose 64×64 tiles computed mostly padding.
pub fn gemm_split(m: usize, k: usize, n: usize) -> (usize, Split) {
    let split = |variant: usize| {
        let (gx, gy) = gemm::groups(variant, m, n);
        (
            gx * gy,
            Split::new(k, K_CHUNK, K_MIN, gx * gy, GEMM_GROUPS, gemm::KT),
        )
    };
    let fitted = gemm::fitted(m, n);
    let (tiles, s) = split(fitted);
    if tiles < FITTED_GROUPS && tiles * s.chunks >= FITTED_GROUPS {
        return (fitted, s);
    }
    let tall = gemm::tile(m, n);
    (tall, split(tall).1)
}

/// How `r`'s terms are split. Tiled sums (`reduce::k_tile`): over their workgroups, as
/// many as a split GEMM aims for, each lane adding at least [`TILED_RUN`] terms. Otherwise
/// over the outputs' threads, in at most about √R chunks of at least √R terms, so that the sum
/// over chunks (one thread per output) loops no longer than each chunk does.
pub fn reduce_split(r: &ReduceOp) -> Split {
    if let Some(kt) = reduce::k_tile(r) {
        let lanes = 256 / kt;
        let tiles = reduce::tiles(r, kt);
        return Split::new(
            r.r,
            R_CHUNK * lanes,
            TILED_RUN * lanes,
            tiles,
            GEMM_GROUPS,
            lanes,
        );
    }
    let outputs = r.outer * r.mid * r.inner;
    let min = R_MIN.max(r.r.isqrt());
    Split::new(r.r, R_CHUNK, min, outputs, REDUCE_THREADS, 1)
}

/// A strided sum over all its terms in one chunk.
fn whole(r: ReduceOp) -> Step {
    let split = Split::whole(r.r);
    Step::ReduceSplit { r, split }
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

/// The GEMM a step runs, whole or split; None for the other steps.
fn gemm_of<'a>(step: &'a Step, plan: &'a Plan) -> Option<&'a GemmOp> {
    match step {
        Step::GemmSplit { g, .. } => Some(g),
        Step::Op(i) | Step::Then { op: i, .. } => match &plan.ops[*i] {
            Op::Gemm(g) => Some(g),
            _ => None,
        },
        _ => None,
    }
}

/// A GEMM step's shape for the profile's trace: `m×k×n`, and its k chunks when split.
pub fn gemm_shape(step: &Step, plan: &Plan) -> Option<String> {
    let g = gemm_of(step, plan)?;
    let shape = format!("{}×{}×{}", g.m, g.k, g.n);
    Some(match step {
        Step::GemmSplit { split, .. } => {
            format!("{shape} in {} chunks of {}", split.chunks, split.len)
        }
        _ => shape,
    })
}

/// The profile's family of a GEMM step, in the kernels' style (one word per table cell):
/// `gemm`, `gemm_at` (A stored transposed, B either way: the parameter gradients Aᵀ·dC) or
/// `gemm_bt` (only B stored transposed: the input gradients dC·Bᵀ); None for the other steps.
pub fn gemm_family(step: &Step, plan: &Plan) -> Option<&'static str> {
    let g = gemm_of(step, plan)?;
    Some(match (g.trans_a, g.trans_b) {
        (true, _) => "gemm_at",
        (_, true) => "gemm_bt",
        _ => "gemm",
    })
}

/// Floating-point operations of a step: 2·m·k·n for GEMMs (split or not), else 0
/// (the profile reports the other kernels in bytes moved).
pub fn flops(step: &Step, plan: &Plan) -> f64 {
    gemm_of(step, plan).map_or(0.0, |g| 2.0 * (g.m * g.k * g.n) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every split covers its terms exactly once in chunks of at most `max` terms (lavapipe's
    /// loop budget), aligned, and splits long sums with few outputs into many chunks.
    #[test]
    fn splits_cover_every_term_within_the_loop_budget() {
        for total in [
            1, 15, 256, 511, 2048, 2049, 70_001, 65_536, 300_001, 10_000_000,
        ] {
            for work in [1, 6, 1000, 1 << 20] {
                for (max, min, align) in [
                    (K_CHUNK, K_MIN, 16),
                    (R_CHUNK, R_MIN, 1),
                    (R_CHUNK * 8, TILED_RUN * 8, 8),
                ] {
                    let s = Split::new(total, max, min, work, GEMM_GROUPS, align);
                    assert!(s.len <= max && s.len % align == 0, "{total} {work}: {s:?}");
                    assert!(s.chunks * s.len >= total && (s.chunks - 1) * s.len < total);
                    assert!(s.chunks <= MAX_CHUNKS.max(total.div_ceil(max)));
                }
            }
        }
        // A parameter gradient over 65,536 rows with six output tiles: 171 chunks of 384.
        let s = Split::new(65_536, K_CHUNK, K_MIN, 6, GEMM_GROUPS, 16);
        assert_eq!(
            s,
            Split {
                chunks: 171,
                len: 384
            }
        );
        // Short inner dimensions stay whole.
        assert_eq!(
            Split::new(144, K_CHUNK, K_MIN, 6, GEMM_GROUPS, 16).chunks,
            1
        );
        // A bias gradient (45 outputs over 65,536 rows) takes the tiled pipeline: two tiles of
        // 32 outputs with 8 lanes each; 512 chunks make 1,024 workgroups, each lane adding 16
        // terms, and the sum over the chunks (tiled too) 64 per lane.
        let mut bias = ReduceOp::sum_rows(0, 1, 65_536, 45, false);
        assert_eq!(reduce::k_tile(&bias), Some(32));
        assert_eq!(
            reduce_split(&bias),
            Split {
                chunks: 512,
                len: 128
            }
        );
        // Many outputs keep one thread each, split until about 2^17 threads.
        bias.inner = 4500;
        assert_eq!(reduce::k_tile(&bias), None);
        assert_eq!(
            reduce_split(&bias),
            Split {
                chunks: 30,
                len: 2185
            }
        );
    }

    /// Tall products keep the tall tiles, split along k or not; long parameter gradients whose
    /// k chunks fill the GPU take the tile fitted to m×n; short ones keep the tall tiles' extra
    /// workgroups.
    #[test]
    fn split_gemms_take_fitted_tiles_when_their_chunks_fill_the_gpu() {
        use crate::backend::gpu::gemm_block;
        for (m, k, n, block) in [
            (65_536, 144, 144, (128, 64)),
            (16_384, 144, 45, (64, 64)),
            (144, 65_536, 144, (144, 48)),
            (144, 65_536, 45, (144, 48)),
            (9, 65_536, 144, (16, 144)),
            (144, 65_536, 5, (144, 16)),
            (144, 4_096, 144, (64, 64)),
            (16, 4_096, 45, (64, 64)),
            (40_000, 1_024, 144, (128, 64)),
        ] {
            assert_eq!(gemm_block(m, k, n), block, "{m}×{k}×{n}");
        }
    }
}
