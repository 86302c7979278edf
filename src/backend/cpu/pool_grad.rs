//! CPU twin of `shaders/pool_grad.wgsl`: the backward of a pool piece.

use super::pool::l2_norm;
use crate::plan::{Norm, PoolGradOp};
use crate::scalar::Scalar;

/// Backward of one pool piece (SPEC §8.3): for each entry vector x with r = max(‖x‖, ε),
/// u = x/r and ĝ = (its output gradient)/R, writes dx (+)= (h − s·(uᵀh))/r (s = u for L2,
/// sign(x) for L1; h/ε when clamped, 0 at x = 0 when ε = 0; h for no norm), with h = γ ⊙ ĝ
/// (affine), 2u ⊙ ĝ (square) or ĝ; affine pieces also write ĝ ⊙ u and ĝ rows.
pub fn pool_grad<T: Scalar>(
    op: &PoolGradOp,
    x: &[T],
    gamma: Option<&[T]>,
    dout: &[T],
    dx: &mut [T],
    mut rows: Option<(&mut [T], &mut [T])>,
) {
    let p = &op.fwd;
    let e = p.channels * p.f;
    let gam: Option<Vec<f64>> = gamma.map(|g| g.iter().map(|v| v.to_f64()).collect());
    let rn = 1.0 / p.r as f64;
    let (mut u, mut g, mut h) = (vec![0.0f64; e], vec![0.0f64; e], vec![0.0f64; e]);
    for b in 0..p.batch {
        for s in 0..p.s {
            for c in 0..p.channels {
                for t in 0..p.f {
                    let src = (b * p.channels + c) * p.width + p.offset + s * p.f + t;
                    g[c * p.f + t] = dout[src].to_f64() * rn;
                }
            }
            for r in 0..p.r {
                let at = ((b * p.r + r) * p.s + s) * e;
                let v = &x[at..at + e];
                let norm = match p.norm {
                    Norm::None => 1.0,
                    Norm::L1 => v.iter().map(|a| a.to_f64().abs()).sum::<f64>(),
                    Norm::L2 => l2_norm(&v.iter().map(|a| a.to_f64()).collect::<Vec<_>>()),
                };
                let clamped = p.norm != Norm::None && norm <= p.eps;
                let denom = if p.norm == Norm::None {
                    1.0
                } else {
                    norm.max(p.eps)
                };
                for i in 0..e {
                    u[i] = if denom > 0.0 {
                        v[i].to_f64() / denom
                    } else {
                        0.0
                    };
                    h[i] = match (&gam, p.square) {
                        (Some(gm), _) => gm[i] * g[i],
                        (None, true) => 2.0 * u[i] * g[i],
                        (None, false) => g[i],
                    };
                }
                if let Some((gr, br)) = rows.as_mut() {
                    for i in 0..e {
                        gr[at + i] = T::from_f64(g[i] * u[i]);
                        br[at + i] = T::from_f64(g[i]);
                    }
                }
                let dot: f64 = u.iter().zip(&h).map(|(a, b)| a * b).sum();
                for i in 0..e {
                    let d = match p.norm {
                        Norm::None => h[i],
                        // Exact normalisation has no gradient at the zero vector.
                        _ if norm == 0.0 && p.eps == 0.0 => 0.0,
                        _ if clamped => h[i] / p.eps,
                        Norm::L2 => (h[i] - u[i] * dot) / norm,
                        Norm::L1 => {
                            let xi = v[i].to_f64();
                            let sign = if xi > 0.0 {
                                1.0
                            } else if xi < 0.0 {
                                -1.0
                            } else {
                                0.0
                            };
                            (h[i] - sign * dot) / norm
                        }
                    };
                    let o = &mut dx[at + i];
                    *o = T::from_f64(if op.accumulate { o.to_f64() + d } else { d });
                }
            }
        }
    }
}
