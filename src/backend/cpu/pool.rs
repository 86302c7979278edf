//! CPU twin of `shaders/pool.wgsl`: normalise each entry vector, then average (SPEC §4).

use crate::plan::{Norm, PoolOp};
use crate::scalar::Scalar;

/// Smallest sum of squares taken as is by [`l2_norm`]: 2⁻⁹⁷⁰, so any term that lost range to
/// underflow weighs under 2⁻¹⁰⁰ of the sum.
const PLAIN_SUM_FLOOR: f64 = f64::MIN_POSITIVE * (1u64 << 52) as f64;

/// Σ aᵢbᵢ in f64 as four interleaved partial sums: a fixed order (so deterministic) that the
/// compiler vectorises, and no chain of dependent additions. Shared with `pool_grad.rs`.
pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// ‖v‖₂. The plain sum of squares when it neither overflows nor nears underflow (always the case
/// for f32 values held in f64); otherwise m·‖v/m‖₂ with m = max|v| (SPEC §9.4), so tiny or huge
/// f64 entries keep their norm. Shared with `pool_grad.rs`.
pub(super) fn l2_norm(v: &[f64]) -> f64 {
    let s = dot(v, v);
    if s.is_finite() && s >= PLAIN_SUM_FLOOR {
        return s.sqrt();
    }
    let m = v.iter().fold(0.0f64, |m, a| m.max(a.abs()));
    if m == 0.0 {
        return 0.0;
    }
    m * v.iter().map(|a| (a / m).powi(2)).sum::<f64>().sqrt()
}

/// Executes one pool piece, writing out[b, c, offset + s·f + t]. Norms and sums are taken in
/// f64 whatever `T` is.
pub fn pool<T: Scalar>(
    op: &PoolOp,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    out: &mut [T],
) {
    let e = op.channels * op.f;
    let affine: Option<(Vec<f64>, Vec<f64>)> = gamma.zip(beta).map(|(g, b)| {
        (
            g.iter().map(|v| v.to_f64()).collect(),
            b.iter().map(|v| v.to_f64()).collect(),
        )
    });
    let mut acc = vec![0.0f64; e];
    let mut u = vec![0.0f64; e];
    for b in 0..op.batch {
        for s in 0..op.s {
            acc.iter_mut().for_each(|v| *v = 0.0);
            for r in 0..op.r {
                let v = &x[((b * op.r + r) * op.s + s) * e..][..e];
                u.iter_mut().zip(v).for_each(|(d, s)| *d = s.to_f64());
                let denom = match op.norm {
                    Norm::None => 1.0,
                    Norm::L1 => u.iter().map(|a| a.abs()).sum::<f64>().max(op.eps),
                    Norm::L2 => l2_norm(&u).max(op.eps),
                };
                // Only a zero vector has a zero denominator (ε = 0): it maps to zero.
                let inv = if denom > 0.0 { 1.0 / denom } else { 0.0 };
                match (&affine, op.square) {
                    (Some((g, bt)), _) => {
                        for i in 0..e {
                            acc[i] += g[i] * (u[i] * inv) + bt[i];
                        }
                    }
                    (None, true) => acc
                        .iter_mut()
                        .zip(&u)
                        .for_each(|(a, x)| *a += (x * inv) * (x * inv)),
                    (None, false) => acc.iter_mut().zip(&u).for_each(|(a, x)| *a += x * inv),
                }
            }
            let rn = 1.0 / op.r as f64;
            for c in 0..op.channels {
                for t in 0..op.f {
                    let dst = (b * op.channels + c) * op.width + op.offset + s * op.f + t;
                    out[dst] = T::from_f64(acc[c * op.f + t] * rn);
                }
            }
        }
    }
}
