//! CPU twin of `shaders/adam.wgsl`: the optimizer step.

use rayon::prelude::*;

use crate::plan::AdamOp;
use crate::scalar::Scalar;

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

/// One Adam/AdamW update of `p`, `m`, `v` in place (see [`AdamOp`]); arithmetic in f64.
pub fn adam<T: Scalar>(
    op: &AdamOp,
    p: &mut [T],
    m: &mut [T],
    v: &mut [T],
    grad: &[T],
    hyper: &[T],
    norm_sq: Option<&[T]>,
) {
    let (lr, bc1, bc2) = (hyper[0].to_f64(), hyper[1].to_f64(), hyper[2].to_f64());
    let clip = norm_sq.map_or(1.0, |n| {
        (op.max_norm / (n[0].to_f64().sqrt() + 1e-6)).min(1.0)
    });
    p.par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK).zip(grad.par_chunks(CHUNK)))
        .for_each(|((pc, mc), (vc, gc))| {
            for i in 0..pc.len() {
                let mut pi = pc[i].to_f64();
                let mut g = gc[i].to_f64() * clip;
                if op.decoupled {
                    pi -= lr * op.weight_decay * pi;
                } else {
                    g += op.weight_decay * pi;
                }
                let mi = op.beta1 * mc[i].to_f64() + (1.0 - op.beta1) * g;
                let vi = op.beta2 * vc[i].to_f64() + (1.0 - op.beta2) * g * g;
                pi -= lr * (mi / bc1) / ((vi / bc2).sqrt() + op.eps);
                pc[i] = T::from_f64(pi);
                mc[i] = T::from_f64(mi);
                vc[i] = T::from_f64(vi);
            }
        });
}
