//! CPU twin of `shaders/adam.wgsl`: the optimizer step.

use multiversion::multiversion;
use rayon::prelude::*;

use std::ops::IndexMut;

use crate::plan::{AdamOp, BufId};
use crate::scalar::Scalar;

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

/// One op's per-step constants. The update is p ← shrink·p − step·m / (√(v·inv_bc2) + ε): one
/// division and one square root per element, so the loop vectorises.
#[derive(Clone, Copy)]
struct Step {
    clip: f64,
    couple: f64,
    shrink: f64,
    step: f64,
    inv_bc2: f64,
    b1: f64,
    b2: f64,
    eps: f64,
}

impl Step {
    fn new<T: Scalar>(op: &AdamOp, hyper: &[T], norm_sq: Option<&[T]>) -> Self {
        let (lr, bc1, bc2) = (hyper[0].to_f64(), hyper[1].to_f64(), hyper[2].to_f64());
        let clip = norm_sq.map_or(1.0, |n| {
            (op.max_norm / (n[0].to_f64().sqrt() + 1e-6)).min(1.0)
        });
        // Decoupled (AdamW) decay shrinks p before the step; coupled decay adds wd·p to g.
        let (shrink, couple) = if op.decoupled {
            (1.0 - lr * op.weight_decay, 0.0)
        } else {
            (1.0, op.weight_decay)
        };
        Step {
            clip,
            couple,
            shrink,
            step: lr / bc1,
            inv_bc2: 1.0 / bc2,
            b1: op.beta1,
            b2: op.beta2,
            eps: op.eps,
        }
    }
}

/// Updates one chunk in place; arithmetic in f64. Its square roots and divisions dominate: the
/// AVX2 clone runs them four at a time instead of two (the same bits: nothing is fused or
/// reordered).
#[multiversion(targets("x86_64+avx2"))]
fn apply<T: Scalar>(s: &Step, p: &mut [T], m: &mut [T], v: &mut [T], grad: &[T]) {
    for (((pi, mi), vi), gi) in p.iter_mut().zip(m).zip(v).zip(grad) {
        let p0 = pi.to_f64();
        let g = gi.to_f64() * s.clip + s.couple * p0;
        let mn = s.b1 * mi.to_f64() + (1.0 - s.b1) * g;
        let vn = s.b2 * vi.to_f64() + (1.0 - s.b2) * g * g;
        let den = (vn * s.inv_bc2).sqrt() + s.eps;
        *pi = T::from_f64(s.shrink * p0 - s.step * mn / den);
        *mi = T::from_f64(mn);
        *vi = T::from_f64(vn);
    }
}

/// Runs Adam/AdamW updates (see [`AdamOp`]) that touch none of each other's buffers as one
/// parallel loop over every op's chunks. A training step's plan ends with one op per parameter
/// tensor, mostly small: one hand-off for all of them instead of one each. Each element's
/// arithmetic is the same whatever the grouping.
pub fn adam_group<T: Scalar, B: IndexMut<BufId, Output = Vec<T>> + ?Sized>(
    ops: &[&AdamOp],
    bufs: &mut B,
) {
    let mut state: Vec<[Vec<T>; 3]> = ops
        .iter()
        .map(|a| [a.param, a.m, a.v].map(|id| std::mem::take(&mut bufs[id])))
        .collect();
    {
        let view = &*bufs;
        let mut work = Vec::new();
        for (a, [p, m, v]) in ops.iter().zip(state.iter_mut()) {
            let step = Step::new(a, &view[a.hyper], a.norm_sq.map(|n| view[n].as_slice()));
            let chunks = p.chunks_mut(CHUNK).zip(m.chunks_mut(CHUNK));
            let chunks = chunks.zip(v.chunks_mut(CHUNK).zip(view[a.grad].chunks(CHUNK)));
            work.extend(chunks.map(|((p, m), (v, g))| (step, p, m, v, g)));
        }
        work.into_par_iter()
            .for_each(|(step, p, m, v, g)| apply(&step, p, m, v, g));
    }
    for (a, [p, m, v]) in ops.iter().zip(state) {
        bufs[a.param] = p;
        bufs[a.m] = m;
        bufs[a.v] = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three ops over buffers [p, g, m, v] each, sharing hyper (buffer 12) and a clip norm (13).
    fn setup() -> (Vec<AdamOp>, Vec<Vec<f32>>) {
        let lens = [5, CHUNK + 3, 40_000];
        let mut bufs = Vec::new();
        let mut ops = Vec::new();
        for (t, &len) in lens.iter().enumerate() {
            let base = bufs.len();
            for s in 0..4 {
                bufs.push(
                    (0..len)
                        .map(|i| (((i * 31 + t * 7 + s * 3) % 97) as f32 / 97.0 - 0.3) * 0.5)
                        .map(|x| if s == 3 { x.abs() } else { x })
                        .collect(),
                );
            }
            ops.push(AdamOp {
                param: base,
                grad: base + 1,
                m: base + 2,
                v: base + 3,
                hyper: 12,
                norm_sq: (t == 1).then_some(13),
                max_norm: 0.5,
                len,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: [0.0, 1e-2, 5e-2][t],
                decoupled: t == 2,
            });
        }
        bufs.push(vec![1e-3, 0.271, 0.0030]);
        bufs.push(vec![4.0]);
        (ops, bufs)
    }

    #[test]
    fn a_group_updates_bitwise_as_one_op_at_a_time() {
        let (ops, bufs) = setup();
        let refs: Vec<&AdamOp> = ops.iter().collect();
        let mut grouped = bufs.clone();
        adam_group(&refs, &mut grouped);
        let mut single = bufs.clone();
        for op in &refs {
            adam_group(&[op], &mut single);
        }
        assert_eq!(grouped, single);
        assert_ne!(grouped, bufs, "the step moved nothing");
    }
}
