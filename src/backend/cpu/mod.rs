//! The CPU backend, generic over f32 (fast path) and f64 (the reference every GPU output is
//! checked against). One file per shader, named after it (its CPU twin), plus `fuse.rs`
//! (row-blocked chains) and `wave.rs` (independent units side by side).

mod activation;
mod activation_grad;
mod adam;
mod cache;
mod fuse;
mod gemm;
mod loss;
mod machine;
mod mask;
mod pool;
mod pool_grad;
mod reduce;
mod siren;
mod siren_grad;
mod stat;
mod sum_squares;
mod wave;

use std::collections::HashMap;
use std::ops::IndexMut;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::backend::Backend;
use crate::error::Result;
use crate::plan::{ActivationGradOp, AdamOp, BufId, BufKind, Op, Plan, PoolGradOp};
use crate::scalar::Scalar;

pub use activation::activation;
pub use activation_grad::activation_grad;
pub use adam::adam_group;
pub use cache::L2_ENV;
pub use gemm::gemm;
pub use loss::loss;
pub use machine::describe as describe_machine;
pub use mask::mask;
pub use pool::pool;
pub use pool_grad::{pool_grad, ActGrad};
pub use reduce::reduce;
pub use siren::siren;
pub use siren_grad::siren_grad;
pub use stat::stat;
pub use sum_squares::sum_squares;

/// Prepared plans kept; older ones are dropped past this many.
const PLAN_CACHE: usize = 16;

/// Executes plans on the host in precision `T`, with rayon over rows/batch. Each plan's buffers
/// (parameters converted to `T`, scratch space) and chain schedule are built once and reused.
#[derive(Debug, Default)]
pub struct Cpu<T: Scalar> {
    cache: Mutex<HashMap<u64, Prepared<T>>>,
}

/// A plan's buffers and its schedule: chains (`fuse.rs`) and waves of units run side by side
/// (`wave.rs`).
#[derive(Debug)]
struct Prepared<T> {
    stateful: bool,
    bufs: Vec<Vec<T>>,
    chains: Vec<fuse::Chain>,
    waves: Vec<Vec<wave::Unit>>,
}

impl<T: Scalar> Cpu<T> {
    /// A CPU backend in precision `T`.
    pub fn new() -> Self {
        Cpu {
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The prepared plan: cached (taken out while running) or freshly built. A plan is meant to
    /// run on one thread at a time: concurrent runs of one stateful plan would each start from a
    /// fresh copy of its state.
    fn take(&self, plan: &Plan) -> Prepared<T> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&plan.id);
        cached.unwrap_or_else(|| {
            let (chains, roles) = fuse::find_chains(plan);
            for c in &chains {
                let ops: Vec<&Op> = c.ops.iter().map(|&i| &plan.ops[i]).collect();
                log::trace!(
                    "chain of {} rows in blocks of {} (steps of {}), parameter gradients {:?}: {ops:?}",
                    c.rows,
                    c.block,
                    c.step,
                    c.taps
                );
            }
            let bufs = plan
                .bufs
                .iter()
                .map(|d| match &d.kind {
                    BufKind::Param(v) => v.iter().map(|&x| T::from_f64(x)).collect(),
                    BufKind::Input => Vec::new(),
                    BufKind::Scratch => vec![T::default(); d.len],
                })
                .collect();
            let waves = group_adam(plan, wave::waves(units(plan, &chains, &roles)));
            log::debug!(
                "{} units in {} waves ({} side by side)",
                waves.iter().map(Vec::len).sum::<usize>(),
                waves.len(),
                waves.iter().filter(|w| w.len() > 1).map(Vec::len).sum::<usize>()
            );
            Prepared {
                stateful: plan.stateful,
                bufs,
                chains,
                waves,
            }
        })
    }

    fn give_back(&self, plan: &Plan, prepared: Prepared<T>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= PLAN_CACHE {
            // Stateful plans hold training state: only `release` drops them.
            cache.retain(|_, p| p.stateful);
        }
        cache.insert(plan.id, prepared);
    }
}

/// The plan's units in execution order: chains at their first op, then single ops.
fn units(plan: &Plan, chains: &[fuse::Chain], roles: &[fuse::Role]) -> Vec<wave::Unit> {
    let mut units = Vec::new();
    for (i, role) in roles.iter().enumerate() {
        let (kind, ops) = match *role {
            fuse::Role::Member => continue,
            fuse::Role::Start(c) => {
                let taps = chains[c].taps.iter().map(|t| t.op);
                (
                    wave::Kind::Chain(c),
                    chains[c].ops.iter().copied().chain(taps).collect(),
                )
            }
            fuse::Role::Single => (wave::Kind::Op(i), vec![i]),
            fuse::Role::PoolGradAct(a) => (wave::Kind::PoolGradAct(i, a), vec![i, a]),
        };
        units.push(access(plan, kind, &ops));
    }
    units
}

/// A unit running `ops`, with the buffers they read and write.
fn access(plan: &Plan, kind: wave::Kind, ops: &[usize]) -> wave::Unit {
    let (mut reads, mut writes) = (Vec::new(), Vec::new());
    for &o in ops {
        reads.extend(plan.ops[o].reads());
        writes.extend(plan.ops[o].writes_all());
    }
    wave::Unit::new(kind, reads, writes)
}

/// Each wave's Adam ops as one group, one parallel loop over all their chunks. A training step
/// ends with one Adam op per parameter tensor, mostly small; as single units each one joins the
/// wave after its gradient and the last read of its parameter, so the memory-bound updates run
/// beside the backward pass's GEMMs.
fn group_adam(plan: &Plan, waves: Vec<Vec<wave::Unit>>) -> Vec<Vec<wave::Unit>> {
    let is_adam =
        |u: &wave::Unit| matches!(u.kind, wave::Kind::Op(i) if matches!(plan.ops[i], Op::Adam(_)));
    waves
        .into_iter()
        .map(|units| {
            let (adam, mut rest): (Vec<_>, Vec<_>) = units.into_iter().partition(is_adam);
            let ops: Vec<usize> = adam
                .iter()
                .filter_map(|u| match u.kind {
                    wave::Kind::Op(i) => Some(i),
                    _ => None,
                })
                .collect();
            match ops.len() {
                0 => {}
                1 => rest.extend(adam),
                _ => rest.push(access(plan, wave::Kind::Adam(ops.clone()), &ops)),
            }
            rest
        })
        .collect()
}

/// Runs one op on its own.
fn run_op<T: Scalar, B: IndexMut<BufId, Output = Vec<T>> + ?Sized>(op: &Op, bufs: &mut B) {
    let mut out = std::mem::take(&mut bufs[op.writes()]);
    match op {
        Op::Gemm(g) => gemm(
            g,
            &bufs[g.a],
            &bufs[g.b],
            g.bias.map(|id| bufs[id].as_slice()),
            &mut out,
        ),
        Op::Activation(a) => activation(a.act, &bufs[a.x], &mut out),
        Op::Pool(p) => {
            let gamma = p.gamma.map(|id| bufs[id].as_slice());
            let beta = p.beta.map(|id| bufs[id].as_slice());
            pool(p, &bufs[p.x], gamma, beta, &mut out)
        }
        Op::Reduce(r) => reduce(r, &bufs[r.x], &mut out),
        Op::ActivationGrad(a) => {
            activation_grad(a.act, &bufs[a.x], &bufs[a.dy], &mut out, a.accumulate)
        }
        Op::PoolGrad(p) => run_pool_grad(p, None, &mut out, bufs),
        Op::Adam(a) => {
            bufs[a.param] = out;
            return adam_group(&[a], bufs);
        }
        Op::SumSquares(q) => sum_squares(q, &bufs[q.x], &mut out),
        Op::Stat(q) => stat(q, &bufs[q.x], &mut out),
        Op::Siren(sr) => {
            let mut trace = std::mem::take(&mut bufs[sr.trace]);
            siren(sr, &bufs[sr.params], &bufs[sr.coords], &mut out, &mut trace);
            bufs[sr.trace] = trace;
        }
        Op::SirenGrad(g) => {
            let f = &g.fwd;
            let mut dz = std::mem::take(&mut bufs[g.dz]);
            let (params, coords, trace) = (&bufs[f.params], &bufs[f.coords], &bufs[f.trace]);
            siren_grad(g, params, coords, trace, &bufs[g.dout], &mut dz, &mut out);
            bufs[g.dz] = dz;
        }
        Op::Mask(m) => mask(m, &bufs[m.x], &bufs[m.mask], &mut out),
        Op::Loss(l) => {
            let mut value = std::mem::take(&mut bufs[l.loss]);
            loss(
                l,
                &bufs[l.pred],
                l.target.map(|t| bufs[t].as_slice()),
                &mut value,
                &mut out,
            );
            bufs[l.loss] = value;
        }
    }
    bufs[op.writes()] = out;
}

/// Runs pool gradient `p` into `out`: its dx, or with an activation gradient `act` applied as
/// it writes (`fuse::Role::PoolGradAct`), that op's dx.
fn run_pool_grad<T: Scalar, B: IndexMut<BufId, Output = Vec<T>> + ?Sized>(
    p: &PoolGradOp,
    act: Option<&ActivationGradOp>,
    out: &mut [T],
    bufs: &mut B,
) {
    let mut rows = p
        .affine_rows
        .map(|(g, b)| (std::mem::take(&mut bufs[g]), std::mem::take(&mut bufs[b])));
    let gamma = p.fwd.gamma.map(|id| bufs[id].as_slice());
    let r = rows
        .as_mut()
        .map(|(g, b)| (g.as_mut_slice(), b.as_mut_slice()));
    let then = act.map(|a| ActGrad {
        act: a.act,
        x: &bufs[a.x],
        accumulate: a.accumulate,
    });
    pool_grad(p, &bufs[p.fwd.x], gamma, &bufs[p.dout], out, r, then);
    if let (Some((gi, bi)), Some((g, b))) = (p.affine_rows, rows) {
        bufs[gi] = g;
        bufs[bi] = b;
    }
}

/// Runs one unit; returns its op family (for profiles).
fn run_unit<T: Scalar, B: wave::Bufs<T> + IndexMut<BufId> + ?Sized>(
    plan: &Plan,
    chains: &[fuse::Chain],
    kind: &wave::Kind,
    bufs: &mut B,
) -> &'static str {
    match kind {
        wave::Kind::Op(i) => {
            run_op(&plan.ops[*i], bufs);
            plan.ops[*i].family()
        }
        wave::Kind::Chain(c) => {
            fuse::run_chain(plan, &chains[*c], bufs);
            "fused chain"
        }
        wave::Kind::PoolGradAct(p, a) => {
            if let (Op::PoolGrad(p), Op::ActivationGrad(a)) = (&plan.ops[*p], &plan.ops[*a]) {
                let mut out = std::mem::take(&mut bufs[a.dx]);
                run_pool_grad(p, Some(a), &mut out, bufs);
                bufs[a.dx] = out;
            }
            "pool grad"
        }
        wave::Kind::Adam(ops) => {
            let group: Vec<&AdamOp> = ops
                .iter()
                .filter_map(|&i| match &plan.ops[i] {
                    Op::Adam(a) => Some(a),
                    _ => None,
                })
                .collect();
            adam_group(&group, bufs);
            "adam"
        }
    }
}

/// Runs the plan wave by wave (the units of a wave side by side, chains block by block) and
/// returns the time per op family. Units of one wave overlap, so the times add up to more than
/// the wall time when waves run in parallel.
fn execute<T: Scalar>(
    plan: &Plan,
    prepared: &mut Prepared<T>,
) -> std::collections::BTreeMap<&'static str, f64> {
    let mut times: std::collections::BTreeMap<&str, f64> = Default::default();
    for units in &prepared.waves {
        // Each unit's written buffers are moved out for the wave; the rest are shared.
        let mut owned: Vec<Vec<(BufId, Vec<T>)>> = units
            .iter()
            .map(|u| {
                let take = |&id: &BufId| (id, std::mem::take(&mut prepared.bufs[id]));
                u.writes.iter().map(take).collect()
            })
            .collect();
        let (shared, chains) = (&prepared.bufs, &prepared.chains);
        let wave_t0 = std::time::Instant::now();
        let run = |(unit, own): (&wave::Unit, &mut Vec<(BufId, Vec<T>)>)| {
            let t0 = std::time::Instant::now();
            let family = run_unit(
                plan,
                chains,
                &unit.kind,
                &mut wave::View::new(shared, unit, own),
            );
            (family, t0.elapsed().as_secs_f64())
        };
        let done: Vec<(&str, f64)> = if units.len() == 1 {
            units.iter().zip(owned.iter_mut()).map(run).collect()
        } else {
            units
                .par_iter()
                .zip(owned.par_iter_mut())
                .map(run)
                .collect()
        };
        log::trace!(
            "cpu-{} wave of {} units {:.3} ms",
            T::NAME,
            units.len(),
            1e3 * wave_t0.elapsed().as_secs_f64()
        );
        for (unit, (family, dt)) in units.iter().zip(done) {
            let first = match &unit.kind {
                wave::Kind::Op(i) | wave::Kind::PoolGradAct(i, _) => *i,
                wave::Kind::Chain(c) => chains[*c].ops[0],
                wave::Kind::Adam(ops) => ops[0],
            };
            let op = &plan.ops[first];
            log::trace!(
                "cpu-{} op {first} {family} {:.3} ms: {op:?}",
                T::NAME,
                1e3 * dt
            );
            *times.entry(family).or_default() += dt;
        }
        for (id, buf) in owned.into_iter().flatten() {
            prepared.bufs[id] = buf;
        }
    }
    times
}

impl<T: Scalar> Backend for Cpu<T> {
    fn describe(&self) -> String {
        format!("cpu-{} ({} threads)", T::NAME, rayon::current_num_threads())
    }

    fn run(&self, plan: &Plan, inputs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        super::check_inputs(plan, inputs)?;
        let mut prepared = self.take(plan);
        for (&id, data) in plan.inputs.iter().zip(inputs) {
            let buf = &mut prepared.bufs[id];
            buf.clear();
            buf.extend(data.iter().map(|&x| T::from_f64(x)));
        }
        // Time per op family, reported at debug level (RUST_LOG=debug).
        // One hand-off to the thread pool per run instead of one per op: run from a pool thread,
        // each op's parallel loop splits locally, and a loop of one chunk runs inline.
        let times = rayon::scope(|_| execute(plan, &mut prepared));
        if log::log_enabled!(log::Level::Debug) {
            let parts: Vec<String> = times
                .iter()
                .map(|(k, t)| format!("{k} {:.2} ms", 1e3 * t))
                .collect();
            log::debug!("cpu-{}: {}", T::NAME, parts.join(", "));
        }
        let outs = plan
            .outputs
            .iter()
            .map(|&id| prepared.bufs[id].iter().map(|x| x.to_f64()).collect())
            .collect();
        self.give_back(plan, prepared);
        Ok(outs)
    }

    fn read(&self, plan: &Plan, ids: &[BufId]) -> Result<Vec<Vec<f64>>> {
        let prepared = self.take(plan);
        let out = ids
            .iter()
            .map(|&id| {
                let b = prepared
                    .bufs
                    .get(id)
                    .ok_or_else(|| super::no_buffer(plan, id))?;
                Ok(b.iter().map(|x| x.to_f64()).collect())
            })
            .collect();
        self.give_back(plan, prepared);
        out
    }

    fn write(&self, plan: &Plan, id: BufId, data: &[f64]) -> Result<()> {
        super::check_write(plan, id, data)?;
        let mut prepared = self.take(plan);
        prepared.bufs[id] = data.iter().map(|&x| T::from_f64(x)).collect();
        self.give_back(plan, prepared);
        Ok(())
    }

    fn release(&self, plan: &Plan) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&plan.id);
    }
}
