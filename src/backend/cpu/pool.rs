//! CPU twin of `shaders/pool.wgsl`: normalise each entry vector, then average (SPEC §4).

use multiversion::multiversion;

use crate::plan::{Norm, PoolOp};
use crate::scalar::Scalar;

/// ‖v‖₂ computed as m·‖v/m‖₂ with m = max|v|, so tiny (or huge) entries neither underflow nor
/// overflow (SPEC §9.4). The squares go through `squares` first, so their divisions run several
/// at a time while the sum stays in order. Shared with `pool_grad.rs`; inlined into their AVX2
/// clones.
#[inline]
pub(super) fn l2_norm(v: &[f64], squares: &mut [f64]) -> f64 {
    let m = v.iter().fold(0.0f64, |m, a| m.max(a.abs()));
    if m == 0.0 {
        return 0.0;
    }
    let squares = &mut squares[..v.len()];
    squares
        .iter_mut()
        .zip(v)
        .for_each(|(q, a)| *q = (a / m).powi(2));
    m * squares.iter().sum::<f64>().sqrt()
}

/// Executes one pool piece, writing out[b, c, offset + s·f + t]. Norms and sums are taken in
/// f64 whatever `T` is; the AVX2 clone divides four values at a time (the same bits).
#[multiversion(targets("x86_64+avx2"))]
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
    let (mut u, mut squares) = (vec![0.0f64; e], vec![0.0f64; e]);
    for b in 0..op.batch {
        for s in 0..op.s {
            acc.iter_mut().for_each(|v| *v = 0.0);
            for r in 0..op.r {
                let v = &x[((b * op.r + r) * op.s + s) * e..][..e];
                u.iter_mut().zip(v).for_each(|(d, s)| *d = s.to_f64());
                let denom = match op.norm {
                    Norm::None => 1.0,
                    Norm::L1 => u.iter().map(|a| a.abs()).sum::<f64>().max(op.eps),
                    Norm::L2 => l2_norm(&u, &mut squares).max(op.eps),
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
