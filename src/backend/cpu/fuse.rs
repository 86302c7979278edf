//! Row-blocked execution of op chains (DESIGN §4b). In a Monomial-NFN every middle-layer entry
//! goes through GEMM, activation, GEMM, … and the pool independently of every other entry, so a
//! chain of such ops can run block by block with intermediates kept in cache instead of written
//! to memory. This changes only the schedule: each value is computed by the same arithmetic as
//! the op-by-op path, so results are bitwise identical. Backward chains also run the split-K
//! parameter gradients that read their values ([`Tap`]).

use std::ops::IndexMut;

use rayon::prelude::*;

use crate::plan::{BufId, BufKind, GemmOp, Op, Plan, PoolOp};
use crate::scalar::Scalar;

use super::activation::activation_in_place;
use super::activation_grad::activation_grad_rows;
use super::wave::Bufs;
use super::{activation, pool};

/// Target rows per block: a block's input and output rows (f32, the widest op of the chain)
/// fill half of L2, leaving the rest for the weights (a 144×144 f32 matrix is 83 KB); 227 rows
/// of width 144 on a 512 KB L2.
fn target_rows(widest: usize) -> usize {
    let row_bytes = 2 * widest.max(1) * std::mem::size_of::<f32>();
    (super::cache::l2_bytes() / 2 / row_bytes).clamp(16, 4096)
}

/// Rows per block: at most about `target`, a multiple of `unit`. When the blocks are few (a small
/// batch) their count is a multiple of `threads` and they are of near-equal size, so no thread
/// works on a last block while the others wait. Any block size gives the same bits.
fn block_rows(rows: usize, unit: usize, target: usize, threads: usize) -> usize {
    let target = unit * (target / unit).max(1);
    let mut blocks = rows.div_ceil(target).max(1);
    if blocks < 8 * threads {
        blocks = blocks.next_multiple_of(threads.max(1));
    }
    rows.div_ceil(blocks).next_multiple_of(unit).max(unit)
}

/// Rows per step of a chain with taps whose blocks are `slice` rows: whole multiples of
/// [`super::gemm::K_STEP`] (so the taps' bits stay those of one call per slice), at most 2.5
/// times the cache `target`, and at most the slice. On a 1 MiB L2, 1,024-row steps (2.25 times
/// the target) were faster than 256-row ones, which pack the layers' weights four times as often
/// (BENCHMARKS.md).
fn tap_step(slice: usize, target: usize) -> usize {
    let k_step = super::gemm::K_STEP;
    ((5 * target / 2 / k_step).max(1) * k_step).min(slice)
}

/// Ops that run as one row-blocked unit; `ops[0]` is a GEMM.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Op indices in execution order.
    pub ops: Vec<usize>,
    /// Rows shared by every op.
    pub rows: usize,
    /// Rows per block (a multiple of the rows per batch item when the chain ends in a pool).
    pub block: usize,
    /// Rows per step within a block: the block, or with taps a multiple of
    /// [`super::gemm::K_STEP`] sized for the cache (or the whole block if smaller), so the taps
    /// read each step's values there.
    pub step: usize,
    /// Per op: its output is also read outside the chain (a backward pass), so each block is
    /// copied to the op's buffer as well.
    pub keep: Vec<bool>,
    /// Parameter gradients Aᵀ·dZ computed block by block while dZ is in cache.
    pub taps: Vec<Tap>,
}

/// A split-K parameter-gradient GEMM Aᵀ·dZ run inside a chain: each block is one of its k slices
/// (the chain's blocks are the slices), so its partial products and their ordered sum are those
/// of `gemm_split_k`, bit for bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tap {
    /// The GEMM op's index.
    pub op: usize,
    /// The chain position whose output is dZ; None for the chain's input.
    pub at: Option<usize>,
}

/// How the executor treats each op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Run on its own.
    Single,
    /// Runs chain `i` (it is the chain's first op).
    Start(usize),
    /// Already executed as part of a chain, or as a pool gradient's epilogue.
    Member,
    /// A pool gradient that applies the activation gradient at this index as it writes
    /// ([`find_pool_epilogues`]).
    PoolGradAct(usize),
}

/// Finds maximal chains: each intermediate buffer is written by one op and first read by the
/// next op of the chain; the other inputs are parameters. Intermediates with other readers (or
/// that are plan outputs) are kept: every block is also stored to their buffers. The chain runs
/// at its first op, so every later reader sees them.
pub fn find_chains(plan: &Plan) -> (Vec<Chain>, Vec<Role>) {
    let (writers, readers) = access_lists(plan);
    let is_param = |id: usize| matches!(plan.bufs[id].kind, BufKind::Param(_));
    let mut roles = vec![Role::Single; plan.ops.len()];
    let mut chains = Vec::new();
    for (start, op) in plan.ops.iter().enumerate() {
        let Op::Gemm(g) = op else { continue };
        if roles[start] != Role::Single || g.accumulate || g.trans_a || writers[g.c] != [start] {
            continue;
        }
        let rows = g.m;
        let mut ops = vec![start];
        let mut keep = Vec::new();
        let mut unit = 1;
        loop {
            let last = ops[ops.len() - 1];
            let out = plan.ops[last].writes();
            let Some(&next) = readers[out].first() else {
                break;
            };
            if next <= last || matches!(plan.ops[last], Op::Pool(_)) {
                break;
            }
            let ok = match &plan.ops[next] {
                Op::Activation(a) => a.x == out && writers[a.y] == [next],
                Op::Gemm(n) => {
                    n.a == out
                        && !n.accumulate
                        && !n.trans_a
                        && n.m == rows
                        && writers[n.c] == [next]
                        && is_param(n.b)
                        && n.bias.is_none_or(is_param)
                }
                // The backward's dy = dZ·Wᵀ is turned into dx while still in cache. The op moves
                // up to the chain's start, so x and dx must be final there and dx unread in
                // between; dx is written, not accumulated (a block's scratch holds no earlier
                // dx).
                Op::ActivationGrad(a) => {
                    a.dy == out
                        && !a.accumulate
                        && writers[a.x].iter().all(|&w| w < start)
                        && writers[a.dx].iter().all(|&w| w < start || w == next)
                        && readers[a.dx].iter().all(|&r| r < start || r > next)
                }
                Op::Pool(p) => {
                    let params = p.gamma.is_none_or(is_param) && p.beta.is_none_or(is_param);
                    if p.x == out && params && p.batch * p.r * p.s == rows {
                        unit = p.r * p.s;
                        true
                    } else {
                        false
                    }
                }
                _ => false,
            };
            if !ok {
                break;
            }
            keep.push(readers[out].len() > 1 || plan.outputs.contains(&out));
            ops.push(next);
        }
        if ops.len() < 2 {
            continue;
        }
        keep.push(false);
        let widest = ops
            .iter()
            .map(|&o| width(plan, &plan.ops[o], rows))
            .fold(g.k, usize::max);
        let target = target_rows(widest);
        let mut taps = find_taps(plan, &ops, rows, &writers, &readers, &roles);
        // Taps need blocks equal to their k slices, and 256-row steps at most four times the
        // cache target (wider rows keep cache-sized blocks and run the gradients on their own).
        let (block, step) = if !taps.is_empty() && unit == 1 && super::gemm::K_STEP <= 4 * target {
            let slice = super::gemm::k_slice(rows);
            (slice, tap_step(slice, target))
        } else {
            taps.clear();
            // A few-row chain whose GEMMs split by columns runs as one block, so each thread
            // packs its share of the weights once instead of every block packing them all.
            let splits = |&o: &usize| matches!(&plan.ops[o], Op::Gemm(g) if super::gemm::column_part(g).is_some());
            let block = if ops.iter().any(splits) {
                rows
            } else {
                block_rows(rows, unit, target, rayon::current_num_threads())
            };
            (block, block)
        };
        roles[start] = Role::Start(chains.len());
        for &o in ops[1..].iter().chain(taps.iter().map(|t| &t.op)) {
            roles[o] = Role::Member;
        }
        chains.push(Chain {
            ops,
            rows,
            block,
            step,
            keep,
            taps,
        });
    }
    find_pool_epilogues(plan, &writers, &readers, &mut roles);
    (chains, roles)
}

/// The ops writing and reading each buffer, in plan order.
fn access_lists(plan: &Plan) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let nb = plan.bufs.len();
    let mut writers = vec![Vec::new(); nb];
    let mut readers = vec![Vec::new(); nb];
    for (i, op) in plan.ops.iter().enumerate() {
        for w in op.writes_all() {
            writers[w].push(i);
        }
        for r in op.reads() {
            readers[r].push(i);
        }
    }
    (writers, readers)
}

/// Pool gradients whose output only an activation gradient reads (the backward of the
/// activation in front of a pool): the activation gradient runs as the pool gradient writes
/// each entry (`pool_grad::ActGrad`), so that output never goes to memory. Both ops keep their
/// arithmetic, so the bits are those of running them one after the other (tested). The
/// activation gradient moves up to the pool gradient, so its x must be final there, its dx
/// unread in between, and its dy the pool gradient's whole, freshly written output.
fn find_pool_epilogues(
    plan: &Plan,
    writers: &[Vec<usize>],
    readers: &[Vec<usize>],
    roles: &mut [Role],
) {
    for (p, op) in plan.ops.iter().enumerate() {
        let Op::PoolGrad(g) = op else { continue };
        let [a] = readers[g.dx][..] else { continue };
        let Op::ActivationGrad(act) = &plan.ops[a] else {
            continue;
        };
        let q = &g.fwd;
        let whole = q.batch * q.r * q.s * q.channels * q.f;
        let fits = act.dy == g.dx
            && a > p
            && !g.accumulate
            && roles[p] == Role::Single
            && roles[a] == Role::Single
            && act.len == whole
            && plan.bufs[g.dx].len == whole
            && writers[g.dx] == [p]
            && !plan.outputs.contains(&g.dx)
            && writers[act.x].iter().all(|&w| w < p)
            && writers[act.dx].iter().all(|&w| w < p || w == a)
            && readers[act.dx].iter().all(|&r| r < p || r >= a);
        if fits {
            roles[p] = Role::PoolGradAct(a);
            roles[a] = Role::Member;
        }
    }
}

/// Split-K GEMMs Aᵀ·dZ (`gemm.rs`) over the chain's rows whose dZ is the chain's input or one of
/// its values, and that may run when the chain does: A and an input dZ are final by the chain's
/// start, dZ from the chain is its final value (written before the GEMM reads it), and nothing
/// between the chain's start and the GEMM reads or writes the GEMM's output, which it overwrites.
fn find_taps(
    plan: &Plan,
    ops: &[usize],
    rows: usize,
    writers: &[Vec<usize>],
    readers: &[Vec<usize>],
    roles: &[Role],
) -> Vec<Tap> {
    let start = ops[0];
    let Op::Gemm(g0) = &plan.ops[start] else {
        return Vec::new();
    };
    let pooled = matches!(plan.ops[ops[ops.len() - 1]], Op::Pool(_));
    let values: Vec<(Option<usize>, usize)> = std::iter::once((None, g0.a))
        .chain(
            ops.iter()
                .enumerate()
                .filter(|&(p, _)| !(pooled && p + 1 == ops.len()))
                .map(|(p, &o)| (Some(p), plan.ops[o].writes())),
        )
        .collect();
    let final_by_start = |id: usize| writers[id].iter().all(|&w| w < start);
    let mut taps = Vec::new();
    for (gi, op) in plan.ops.iter().enumerate().skip(start + 1) {
        let Op::Gemm(g) = op else { continue };
        if roles[gi] != Role::Single
            || g.accumulate
            || g.trans_b
            || g.k != rows
            || !super::gemm::is_split_k(g)
        {
            continue;
        }
        let Some(&(at, _)) = values.iter().find(|&&(_, id)| id == g.b) else {
            continue;
        };
        let dz_ready = match at {
            None => final_by_start(g.b),
            Some(p) => ops[p] < gi,
        };
        if dz_ready
            && final_by_start(g.a)
            && writers[g.c] == [gi]
            && readers[g.c].iter().all(|&r| r < start || r > gi)
        {
            taps.push(Tap { op: gi, at });
        }
    }
    taps
}

/// Width (values per row) of the buffer op `i` writes, given the chain's row count.
fn width(plan: &Plan, op: &Op, rows: usize) -> usize {
    plan.bufs[op.writes()].len / rows
}

/// One op of a chain applied to rows `row0..row0 + nrows`, held in `input`, writing `output`.
fn step<T: Scalar, B: Bufs<T> + ?Sized>(
    op: &Op,
    bufs: &B,
    input: &[T],
    output: &mut [T],
    (row0, nrows): (usize, usize),
) {
    match op {
        Op::Gemm(g) => {
            let sub = GemmOp {
                m: nrows,
                ..g.clone()
            };
            super::gemm::gemm_rows(
                &sub,
                input,
                &bufs[g.b],
                g.bias.map(|b| bufs[b].as_slice()),
                output,
            );
        }
        Op::Activation(a) => activation(a.act, input, output),
        Op::ActivationGrad(a) => {
            let w = output.len() / nrows;
            let x = &bufs[a.x][row0 * w..(row0 + nrows) * w];
            activation_grad_rows(a.act, x, input, output, a.accumulate);
        }
        Op::Pool(p) => {
            let sub = PoolOp {
                batch: nrows / (p.r * p.s),
                ..p.clone()
            };
            let gamma = p.gamma.map(|b| bufs[b].as_slice());
            let beta = p.beta.map(|b| bufs[b].as_slice());
            pool(&sub, input, gamma, beta, output);
        }
        _ => unreachable!("find_chains chains only GEMMs, activations, their gradients and pools"),
    }
}

/// Runs a chain block by block, in parallel over blocks.
pub fn run_chain<T: Scalar, B: Bufs<T> + IndexMut<BufId> + ?Sized>(
    plan: &Plan,
    chain: &Chain,
    bufs: &mut B,
) {
    let Op::Gemm(g0) = &plan.ops[chain.ops[0]] else {
        return;
    };
    let last = &plan.ops[chain.ops[chain.ops.len() - 1]];
    let mut out = std::mem::take(&mut bufs[last.writes()]);
    let kept_ids: Vec<usize> = chain
        .ops
        .iter()
        .zip(&chain.keep)
        .filter(|(_, &k)| k)
        .map(|(&i, _)| plan.ops[i].writes())
        .collect();
    let mut kept: Vec<Vec<T>> = kept_ids
        .iter()
        .map(|&id| std::mem::take(&mut bufs[id]))
        .collect();
    let partials = run_blocks(plan, chain, bufs, &bufs[g0.a], g0.k, &mut out, &mut kept);
    bufs[last.writes()] = out;
    for (id, buf) in kept_ids.into_iter().zip(kept) {
        bufs[id] = buf;
    }
    for (i, t) in chain.taps.iter().enumerate() {
        if let Op::Gemm(g) = &plan.ops[t.op] {
            let slices: Vec<&Vec<T>> = partials.iter().map(|p| &p[i]).collect();
            super::gemm::split_k_sum(g, &slices, &mut bufs[g.c]);
        }
    }
}

/// Runs every block, each in steps of `chain.step` rows; returns, per block, the partial product
/// of each tap.
fn run_blocks<T: Scalar, B: Bufs<T> + ?Sized>(
    plan: &Plan,
    chain: &Chain,
    bufs: &B,
    a: &[T],
    k: usize,
    out: &mut [T],
    kept: &mut [Vec<T>],
) -> Vec<Vec<Vec<T>>> {
    let last = &plan.ops[chain.ops[chain.ops.len() - 1]];
    // Values of the final output per `unit` rows (pool outputs are per batch item).
    let (unit, out_unit) = match last {
        Op::Pool(p) => (p.r * p.s, p.channels * p.width),
        op => (1, width(plan, op, chain.rows)),
    };
    let widths: Vec<usize> = chain
        .ops
        .iter()
        .map(|&i| width(plan, &plan.ops[i], chain.rows))
        .collect();
    let max_w = widths.iter().copied().max().unwrap_or(0);
    // Per block, the block's slice of every kept buffer (in chain order) and its width.
    let kept_widths: Vec<usize> = widths
        .iter()
        .zip(&chain.keep)
        .filter(|(_, &k)| k)
        .map(|(&w, _)| w)
        .collect();
    let mut per_block: Vec<Vec<&mut [T]>> = (0..chain.rows.div_ceil(chain.block))
        .map(|_| Vec::new())
        .collect();
    for (buf, &w) in kept.iter_mut().zip(&kept_widths) {
        for (blk, part) in buf.chunks_mut(chain.block * w).enumerate() {
            per_block[blk].push(part);
        }
    }
    let mut partials: Vec<Vec<Vec<T>>> = vec![vec![Vec::new(); chain.taps.len()]; per_block.len()];
    out.par_chunks_mut(chain.block / unit * out_unit)
        .zip(per_block)
        .zip(partials.par_iter_mut())
        .enumerate()
        .for_each_init(
            || {
                (
                    vec![T::default(); chain.step * max_w],
                    vec![T::default(); chain.step * max_w],
                )
            },
            |(ping, pong), (blk, ((out_chunk, mut keep_slices), parts))| {
                for (t, part) in chain.taps.iter().zip(parts.iter_mut()) {
                    if let Op::Gemm(g) = &plan.ops[t.op] {
                        *part = vec![T::default(); g.m * g.n];
                    }
                }
                let block0 = blk * chain.block;
                let block_rows = chain.block.min(chain.rows - block0);
                for s0 in (0..block_rows).step_by(chain.step) {
                    let rows = (block0 + s0, chain.step.min(block_rows - s0));
                    let io = StepRows {
                        input: &a[rows.0 * k..][..rows.1 * k],
                        out: &mut out_chunk[s0 / unit * out_unit..][..rows.1 / unit * out_unit],
                        kept: keep_slices
                            .iter_mut()
                            .zip(&kept_widths)
                            .map(|(slot, &w)| &mut slot[s0 * w..][..rows.1 * w])
                            .collect(),
                    };
                    run_step(plan, chain, bufs, rows, io, (ping, pong), parts);
                }
            },
        );
    partials
}

/// One step's rows of the chain's input, of its final output and of each kept value.
struct StepRows<'a, T> {
    input: &'a [T],
    out: &'a mut [T],
    kept: Vec<&'a mut [T]>,
}

/// Runs the chain's ops over `rows` (first row, count) and adds the step to each tap's partial
/// in `parts`; `ping` and `pong` hold the values in between.
fn run_step<T: Scalar, B: Bufs<T> + ?Sized>(
    plan: &Plan,
    chain: &Chain,
    bufs: &B,
    (row0, nrows): (usize, usize),
    io: StepRows<T>,
    (ping, pong): (&mut [T], &mut [T]),
    parts: &mut [Vec<T>],
) {
    let n = chain.ops.len();
    let (a_rows, out_rows) = (io.input, io.out);
    let mut kept_rows = io.kept.into_iter();
    // This step's rows of every tap whose dZ is at chain position `at`.
    let mut tap = |at: Option<usize>, dz: &[T]| {
        for (t, part) in chain.taps.iter().zip(parts.iter_mut()) {
            if let (true, Op::Gemm(g)) = (t.at == at, &plan.ops[t.op]) {
                super::gemm::split_k_step(g, &bufs[g.a], dz, (row0, nrows), part);
            }
        }
    };
    tap(None, a_rows);
    // The chain's current values live in `ping` (after an even number of swaps) or `pong`; a
    // chain starts with a GEMM reading `a_rows` and writing `ping`.
    let mut in_ping = true;
    let mut prev = 0;
    for (idx, &oi) in chain.ops.iter().enumerate() {
        let op = &plan.ops[oi];
        let cur = nrows * width(plan, op, chain.rows);
        let (src, dst) = if in_ping {
            (&mut *ping, &mut *pong)
        } else {
            (&mut *pong, &mut *ping)
        };
        let result = match (idx, op) {
            (0, _) => {
                step(op, bufs, a_rows, &mut src[..cur], (row0, nrows));
                Some(&src[..cur])
            }
            (i, _) if i + 1 == n => {
                step(op, bufs, &src[..prev], out_rows, (row0, nrows));
                tap(Some(idx), out_rows);
                None
            }
            // Activations inside a chain run in place.
            (_, Op::Activation(a)) => {
                activation_in_place(a.act, &mut src[..cur]);
                Some(&src[..cur])
            }
            _ => {
                step(op, bufs, &src[..prev], &mut dst[..cur], (row0, nrows));
                in_ping = !in_ping;
                Some(&dst[..cur])
            }
        };
        if let Some(values) = result {
            tap(Some(idx), values);
        }
        if let (true, Some(values)) = (chain.keep[idx], result) {
            if let Some(slot) = kept_rows.next() {
                slot.copy_from_slice(values);
            }
        }
        prev = cur;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Activation, ActivationGradOp, ActivationOp, PlanBuilder};

    const ROWS: usize = 50;

    fn values(n: usize, seed: usize) -> Vec<f64> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f64 / 1001.0 - 1.0) * 1.7)
            .collect()
    }

    fn gemm(a: usize, b: usize, bias: Option<usize>, c: usize, (k, n): (usize, usize)) -> Op {
        Op::Gemm(GemmOp {
            a,
            b,
            bias,
            c,
            m: ROWS,
            k,
            n,
            accumulate: false,
            trans_a: false,
            trans_b: false,
        })
    }

    /// f32 buffers: parameters as given, every other buffer filled with distinct values.
    fn initial_bufs(plan: &Plan) -> Vec<Vec<f32>> {
        plan.bufs
            .iter()
            .enumerate()
            .map(|(i, d)| match &d.kind {
                BufKind::Param(v) => v.iter().map(|&x| x as f32).collect(),
                _ => values(d.len, 10 + i).iter().map(|&x| x as f32).collect(),
            })
            .collect()
    }

    /// Runs `plan` op by op and its one chain at several block sizes (the size follows the
    /// machine's L2): every block size must give the op-by-op `out` bitwise.
    fn assert_chain_matches_ops(plan: &Plan, chain_ops: &[usize], out: usize) {
        let (chains, _) = find_chains(plan);
        assert_eq!(chains.len(), 1);
        assert_eq!(chains[0].ops, chain_ops);
        let bufs = initial_bufs(plan);
        let mut reference = bufs.clone();
        for op in &plan.ops {
            super::super::run_op(op, &mut reference);
        }
        for block in [1, 7, 16, ROWS, 4 * ROWS] {
            let mut fused = bufs.clone();
            let chain = Chain {
                block,
                step: block,
                ..chains[0].clone()
            };
            run_chain(plan, &chain, &mut fused);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fused[out]), bits(&reference[out]), "block {block}");
        }
    }

    #[test]
    fn few_blocks_are_balanced_over_the_threads() {
        // 2,048 rows at a 227-row target: ten blocks of 205 (not nine of 227 and one of 5).
        assert_eq!(block_rows(2048, 1, 227, 2), 205);
        // Pool chains keep whole batch items; here eight blocks of 256 already split evenly.
        assert_eq!(block_rows(2048, 256, 227, 2), 256);
        assert_eq!(block_rows(2048, 256, 600, 4), 512);
        // Many blocks: as many as the target gives, of near-equal size (73 of at most 225).
        assert_eq!(block_rows(16384, 1, 227, 2), 225);
        assert_eq!(block_rows(5, 1, 227, 2), 3);
    }

    #[test]
    fn tap_steps_are_whole_k_steps_near_the_cache_target() {
        // 1 MiB, 512 KiB and 256 KiB L2s for rows of width 144 (targets 455, 227, 113 rows).
        assert_eq!(tap_step(1024, 455), 1024);
        assert_eq!(tap_step(1024, 227), 512);
        assert_eq!(tap_step(1024, 113), 256);
        // Never more than the slice, which need not be a multiple of 256.
        assert_eq!(tap_step(384, 455), 384);
        assert_eq!(tap_step(256, 227), 256);
    }

    #[test]
    fn every_block_size_gives_the_op_by_op_result_bitwise() {
        let (k, n1, n2) = (9, 13, 6);
        let mut pb = PlanBuilder::new();
        let a = pb.input(ROWS * k);
        let w1 = pb.param(values(k * n1, 1));
        let b1 = pb.param(values(n1, 2));
        let w2 = pb.param(values(n1 * n2, 3));
        let h = pb.scratch(ROWS * n1);
        let z = pb.scratch(ROWS * n1);
        let y = pb.scratch(ROWS * n2);
        pb.push(gemm(a, w1, Some(b1), h, (k, n1)));
        pb.push(Op::Activation(ActivationOp {
            x: h,
            y: z,
            act: Activation::Tanh,
            len: ROWS * n1,
        }));
        pb.push(gemm(z, w2, None, y, (n1, n2)));
        let plan = pb.finish(vec![y]);
        assert_chain_matches_ops(&plan, &[0, 1, 2], y);
    }

    /// A backward step dy = dZ·Wᵀ, dx = dy ⊙ act'(x), then the next layer's dZ·Wᵀ, with an
    /// unrelated op in between that reads dx when `read_dx_first`. Returns the plan and dx·W₂.
    fn backward_plan(accumulate: bool, read_dx_first: bool) -> (Plan, usize) {
        let (k, n) = (7, 11);
        let mut pb = PlanBuilder::new();
        let dz = pb.input(ROWS * k);
        let x = pb.input(ROWS * n);
        let w = pb.param(values(n * k, 1));
        let w2 = pb.param(values(n * n, 2));
        let (dy, dx, dy2, other) = (
            pb.scratch(ROWS * n),
            pb.scratch(ROWS * n),
            pb.scratch(ROWS * n),
            pb.scratch(ROWS * n),
        );
        let Op::Gemm(g) = gemm(dz, w, None, dy, (k, n)) else {
            unreachable!()
        };
        pb.push(Op::Gemm(GemmOp { trans_b: true, ..g }));
        let (seen, len) = if read_dx_first { (dx, n) } else { (dz, k) };
        pb.push(Op::Activation(ActivationOp {
            x: seen,
            y: other,
            act: Activation::Relu,
            len: ROWS * len,
        }));
        pb.push(Op::ActivationGrad(ActivationGradOp {
            x,
            dy,
            dx,
            act: Activation::Tanh,
            len: ROWS * n,
            accumulate,
        }));
        pb.push(gemm(dx, w2, None, dy2, (n, n)));
        (pb.finish(vec![dy2, dx]), dy2)
    }

    /// A backward chain dy = dZ·Wᵀ, dx = dy ⊙ tanh′(x), dy₂ = dx·W₂ over 2,600 rows, with the
    /// split-K parameter gradients dW = Hᵀ·dZ (op 1) and dW₂ = Xᵀ·dx (op 4); when `read_dw`, an
    /// unrelated op reads dW between the chain's start and op 1. Returns the plan and
    /// [dy₂, dW, dW₂].
    fn tap_plan(read_dw: bool) -> (Plan, [usize; 3]) {
        let (rows, k, n, m) = (2600, 7, 11, 13);
        let mut pb = PlanBuilder::new();
        let (dz, x, h) = (pb.input(rows * k), pb.input(rows * n), pb.input(rows * m));
        let w = pb.param(values(n * k, 1));
        let w2 = pb.param(values(n * n, 2));
        let (dy, dx, dy2) = (
            pb.scratch(rows * n),
            pb.scratch(rows * n),
            pb.scratch(rows * n),
        );
        let (dw, dw2, other) = (pb.scratch(m * k), pb.scratch(n * n), pb.scratch(m * k));
        let op = |a, b, c, (m, k, n), trans_a, trans_b| {
            Op::Gemm(GemmOp {
                a,
                b,
                bias: None,
                c,
                m,
                k,
                n,
                accumulate: false,
                trans_a,
                trans_b,
            })
        };
        pb.push(op(dz, w, dy, (rows, k, n), false, true));
        if read_dw {
            pb.push(Op::Activation(ActivationOp {
                x: dw,
                y: other,
                act: Activation::Relu,
                len: m * k,
            }));
        }
        pb.push(op(h, dz, dw, (m, rows, k), true, false));
        pb.push(Op::ActivationGrad(ActivationGradOp {
            x,
            dy,
            dx,
            act: Activation::Tanh,
            len: rows * n,
            accumulate: false,
        }));
        pb.push(op(dx, w2, dy2, (rows, n, n), false, false));
        pb.push(op(x, dx, dw2, (n, rows, n), true, false));
        (pb.finish(vec![dy2, dw, dw2, other]), [dy2, dw, dw2])
    }

    /// Parameter gradients Aᵀ·dZ of the chain's input and of a value inside it run block by
    /// block, the blocks being their k slices (six of 384 rows and one of 296), each in one step
    /// or in steps of 256 rows and the rest: bitwise the split-K GEMMs run op by op. A gradient
    /// whose output is read after the chain's start but before the gradient runs stays on its
    /// own.
    #[test]
    fn parameter_gradients_tap_backward_chains_bitwise() {
        let (plan, outputs) = tap_plan(false);
        let (chains, roles) = find_chains(&plan);
        assert_eq!(chains.len(), 1);
        assert_eq!(chains[0].ops, [0, 2, 3]);
        let taps = [Tap { op: 1, at: None }, Tap { op: 4, at: Some(1) }];
        assert_eq!(chains[0].taps, taps);
        assert_eq!(chains[0].block, 384);
        let bufs = initial_bufs(&plan);
        let mut reference = bufs.clone();
        for op in &plan.ops {
            super::super::run_op(op, &mut reference);
        }
        for step in [super::super::gemm::K_STEP, 384] {
            let chain = Chain {
                step,
                ..chains[0].clone()
            };
            let mut fused = bufs.clone();
            for (op, role) in plan.ops.iter().zip(&roles) {
                match role {
                    Role::Start(_) => run_chain(&plan, &chain, &mut fused),
                    Role::Member => {}
                    Role::Single => super::super::run_op(op, &mut fused),
                    Role::PoolGradAct(_) => unreachable!("the tap plan has no pool"),
                }
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            for id in outputs {
                assert_eq!(
                    bits(&fused[id]),
                    bits(&reference[id]),
                    "buffer {id}, step {step}"
                );
            }
        }
        let (plan, _) = tap_plan(true);
        let (chains, _) = find_chains(&plan);
        assert_eq!(chains[0].taps, [Tap { op: 5, at: Some(1) }]);
    }

    /// The activation gradient joins the backward chain (moved up past the unrelated op),
    /// bitwise as op by op.
    #[test]
    fn activation_gradients_join_backward_chains_bitwise() {
        let (plan, out) = backward_plan(false, false);
        assert_chain_matches_ops(&plan, &[0, 2, 3], out);
        // An accumulating gradient, or one whose dx is read before it, stays on its own.
        for (accumulate, read_dx_first) in [(true, false), (false, true)] {
            let (plan, _) = backward_plan(accumulate, read_dx_first);
            let (chains, _) = find_chains(&plan);
            assert!(chains.iter().all(|c| !c.ops.contains(&2)), "{chains:?}");
        }
    }

    /// A pool gradient (affine, L2) whose dx only an activation gradient reads runs with that
    /// gradient applied as it writes: the same bits as the two ops one after the other, for
    /// ReLU and tanh, overwriting and accumulating. When dx is read elsewhere (here: a plan
    /// output) the two run on their own.
    #[test]
    fn activation_gradients_after_pool_gradients_run_as_they_write_bitwise() {
        use crate::plan::{Norm, PoolGradOp, PoolOp};
        let (batch, r, s, channels, f) = (3, 5, 2, 4, 3);
        let (e, width) = (channels * f, s * f);
        let len = batch * r * s * e;
        for act in [Activation::Relu, Activation::Tanh] {
            for accumulate in [false, true] {
                for dx_is_output in [false, true] {
                    let mut pb = PlanBuilder::new();
                    let x = pb.input(len);
                    let dout = pb.input(batch * channels * width);
                    let act_x = pb.input(len);
                    let gamma = pb.param(values(e, 3));
                    let beta = pb.param(values(e, 4));
                    let (dx, out) = (pb.scratch(len), pb.scratch(len));
                    let rows = (pb.scratch(batch * s * e), pb.scratch(batch * s * e));
                    let fwd = PoolOp {
                        x,
                        out: dout,
                        gamma: Some(gamma),
                        beta: Some(beta),
                        batch,
                        r,
                        s,
                        channels,
                        f,
                        norm: Norm::L2,
                        eps: 0.0,
                        square: false,
                        width,
                        offset: 0,
                    };
                    pb.push(Op::PoolGrad(PoolGradOp {
                        fwd,
                        dout,
                        dx,
                        accumulate: false,
                        affine_rows: Some(rows),
                    }));
                    pb.push(Op::ActivationGrad(ActivationGradOp {
                        x: act_x,
                        dy: dx,
                        dx: out,
                        act,
                        len,
                        accumulate,
                    }));
                    let mut outputs = vec![out, rows.0, rows.1];
                    if dx_is_output {
                        outputs.push(dx);
                    }
                    let plan = pb.finish(outputs);
                    let (_, roles) = find_chains(&plan);
                    let want = if dx_is_output {
                        [Role::Single, Role::Single]
                    } else {
                        [Role::PoolGradAct(1), Role::Member]
                    };
                    assert_eq!(roles, want, "{act:?} accumulate {accumulate}");
                    let bufs = initial_bufs(&plan);
                    let mut reference = bufs.clone();
                    for op in &plan.ops {
                        super::super::run_op(op, &mut reference);
                    }
                    let mut fused = bufs;
                    let kind = super::super::wave::Kind::PoolGradAct(0, 1);
                    super::super::run_unit(&plan, &[], &kind, &mut fused);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    for id in [out, rows.0, rows.1] {
                        assert_eq!(
                            bits(&fused[id]),
                            bits(&reference[id]),
                            "{act:?} buffer {id}"
                        );
                    }
                }
            }
        }
    }
}
