//! CPU twin of `shaders/pool.wgsl`: normalise each entry vector, then average (SPEC §4).

use crate::plan::{Norm, PoolOp};
use crate::scalar::Scalar;

/// PyTorch's `F.normalize` clamp: x / max(‖x‖, ε).
pub const NORM_EPS: f64 = 1e-12;

/// Executes one pool piece, writing out[b, c, offset + s·f + t].
pub fn pool<T: Scalar>(
    op: &PoolOp,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    out: &mut [T],
) {
    let e = op.channels * op.f;
    let mut acc = vec![0.0f64; e];
    for b in 0..op.batch {
        for s in 0..op.s {
            acc.iter_mut().for_each(|v| *v = 0.0);
            for r in 0..op.r {
                let v = &x[((b * op.r + r) * op.s + s) * e..][..e];
                let denom = match op.norm {
                    Norm::None => 1.0,
                    Norm::L1 => v
                        .iter()
                        .map(|a| a.to_f64().abs())
                        .sum::<f64>()
                        .max(NORM_EPS),
                    Norm::L2 => v
                        .iter()
                        .map(|a| a.to_f64() * a.to_f64())
                        .sum::<f64>()
                        .sqrt()
                        .max(NORM_EPS),
                };
                for (i, a) in acc.iter_mut().enumerate() {
                    let mut u = v[i].to_f64() / denom;
                    if op.square {
                        u *= u;
                    }
                    if let (Some(g), Some(bt)) = (gamma, beta) {
                        u = g[i].to_f64() * u + bt[i].to_f64();
                    }
                    *a += u;
                }
            }
            for c in 0..op.channels {
                for t in 0..op.f {
                    let dst = (b * op.channels + c) * op.width + op.offset + s * op.f + t;
                    out[dst] = T::from_f64(acc[c * op.f + t] / op.r as f64);
                }
            }
        }
    }
}
