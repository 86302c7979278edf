//! CPU twin of `shaders/pool_grad.wgsl`: the backward of a pool piece.

use rayon::prelude::*;

use super::pool::l2_norm;
use crate::plan::{Norm, PoolGradOp, PoolOp};
use crate::scalar::Scalar;

/// One batch item's dx slice and, for affine pieces, its ĝ ⊙ u and ĝ row slices.
type Item<'a, T> = (&'a mut [T], Option<(&'a mut [T], &'a mut [T])>);

/// Backward of one pool piece (SPEC §8.3): for each entry vector x with r = max(‖x‖, ε),
/// u = x/r and ĝ = (its output gradient)/R, writes dx (+)= (h − s·(uᵀh))/r (s = u for L2,
/// sign(x) for L1; h/ε when clamped, 0 at x = 0 when ε = 0; h for no norm), with h = γ ⊙ ĝ
/// (affine), 2u ⊙ ĝ (square) or ĝ; affine pieces also write ĝ ⊙ u and ĝ rows. Batch items run
/// in parallel; each value's arithmetic does not depend on the split.
pub fn pool_grad<T: Scalar>(
    op: &PoolGradOp,
    x: &[T],
    gamma: Option<&[T]>,
    dout: &[T],
    dx: &mut [T],
    rows: Option<(&mut [T], &mut [T])>,
) {
    let p = &op.fwd;
    let per_item = p.r * p.s * p.channels * p.f;
    if per_item == 0 {
        return;
    }
    let gam: Option<Vec<f64>> = gamma.map(|g| g.iter().map(|v| v.to_f64()).collect());
    let dx = &mut dx[..p.batch * per_item];
    let items: Vec<Item<T>> = match rows {
        Some((gr, br)) => dx
            .chunks_mut(per_item)
            .zip(gr.chunks_mut(per_item).zip(br.chunks_mut(per_item)))
            .map(|(d, (g, b))| (d, Some((g, b))))
            .collect(),
        None => dx.chunks_mut(per_item).map(|d| (d, None)).collect(),
    };
    let work = |b: usize, (d, r): Item<T>| {
        item_grad(
            op,
            gam.as_deref(),
            b,
            &x[b * per_item..][..per_item],
            dout,
            d,
            r,
        )
    };
    // Below a few thousand values a rayon hand-off costs more than it saves.
    if p.batch * per_item < 1 << 14 {
        items
            .into_iter()
            .enumerate()
            .for_each(|(b, it)| work(b, it));
    } else {
        items
            .into_par_iter()
            .enumerate()
            .for_each(|(b, it)| work(b, it));
    }
}

/// The backward for batch item `b`: `x`, `dx` and the rows are that item's slices.
fn item_grad<T: Scalar>(
    op: &PoolGradOp,
    gam: Option<&[f64]>,
    b: usize,
    x: &[T],
    dout: &[T],
    dx: &mut [T],
    mut rows: Option<(&mut [T], &mut [T])>,
) {
    let p: &PoolOp = &op.fwd;
    let e = p.channels * p.f;
    let rn = 1.0 / p.r as f64;
    let (mut u, mut g, mut h) = (vec![0.0f64; e], vec![0.0f64; e], vec![0.0f64; e]);
    for s in 0..p.s {
        for c in 0..p.channels {
            for t in 0..p.f {
                let src = (b * p.channels + c) * p.width + p.offset + s * p.f + t;
                g[c * p.f + t] = dout[src].to_f64() * rn;
            }
        }
        for r in 0..p.r {
            let at = (r * p.s + s) * e;
            let v = &x[at..at + e];
            // `u` holds x in f64 until it is divided by the norm.
            u.iter_mut().zip(v).for_each(|(d, a)| *d = a.to_f64());
            let norm = match p.norm {
                Norm::None => 1.0,
                Norm::L1 => u.iter().map(|a| a.abs()).sum::<f64>(),
                Norm::L2 => l2_norm(&u),
            };
            let clamped = p.norm != Norm::None && norm <= p.eps;
            let denom = if p.norm == Norm::None {
                1.0
            } else {
                norm.max(p.eps)
            };
            for i in 0..e {
                u[i] = if denom > 0.0 { u[i] / denom } else { 0.0 };
                h[i] = match (gam, p.square) {
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
