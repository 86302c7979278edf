//! CPU twin of `shaders/pool_grad.wgsl`: the backward of a pool piece.

use multiversion::multiversion;
use rayon::prelude::*;

use super::activation_grad::activation_grad_rows;
use super::pool::{dot8, l2_norm, squares_in_range, sum8, sums8};
use crate::plan::{Activation, Norm, PoolGradOp, PoolOp};
use crate::scalar::Scalar;

/// One batch item's dx slice and, for affine pieces, its S rows of Σ_r ĝ ⊙ u and Σ_r ĝ.
type Item<'a, T> = (&'a mut [T], Option<(&'a mut [T], &'a mut [T])>);

/// An activation gradient applied to a pool gradient as it is written (`fuse::Role::
/// PoolGradAct`): each entry's pool gradient goes to a scratch row, then `dx (+)= dy ⊙ act′(x)`
/// with dy that row while it is in cache, the same arithmetic as the two ops one after the
/// other.
pub struct ActGrad<'a, T> {
    /// The activation.
    pub act: Activation,
    /// Its forward input (for ReLU, its output), laid out as the pool gradient's dx.
    pub x: &'a [T],
    /// Add to dx instead of overwriting it.
    pub accumulate: bool,
}

/// Backward of one pool piece (SPEC §8.3): for each entry vector x with r = max(‖x‖, ε),
/// u = x/r and ĝ = (its output gradient)/R, writes dx (+)= (h − s·(uᵀh))/r (s = u for L2,
/// sign(x) for L1; h/ε when clamped, 0 at x = 0 when ε = 0; h for no norm), with h = γ ⊙ ĝ
/// (affine), 2u ⊙ ĝ (square) or ĝ; affine pieces also write, per batch item and position s,
/// rows of Σ_r ĝ ⊙ u and Σ_r ĝ (the output gradient itself). Batch items run in parallel; each
/// value's arithmetic does not depend on the split.
/// With `then`, each entry goes on through that activation gradient as it is written, and dx
/// is the activation gradient's (the pool gradient must not accumulate).
pub fn pool_grad<T: Scalar>(
    op: &PoolGradOp,
    x: &[T],
    gamma: Option<&[T]>,
    dout: &[T],
    dx: &mut [T],
    rows: Option<(&mut [T], &mut [T])>,
    then: Option<ActGrad<T>>,
) {
    let p = &op.fwd;
    let per_item = p.r * p.s * p.channels * p.f;
    if per_item == 0 {
        return;
    }
    let gam: Option<Vec<f64>> = gamma.map(|g| g.iter().map(|v| v.to_f64()).collect());
    let dx = &mut dx[..p.batch * per_item];
    let item_rows = p.s * p.channels * p.f;
    let items: Vec<Item<T>> = match rows {
        Some((gr, br)) => dx
            .chunks_mut(per_item)
            .zip(gr.chunks_mut(item_rows).zip(br.chunks_mut(item_rows)))
            .map(|(d, (g, b))| (d, Some((g, b))))
            .collect(),
        None => dx.chunks_mut(per_item).map(|d| (d, None)).collect(),
    };
    let work = |b: usize, (d, r): Item<T>| {
        let then = then.as_ref().map(|t| ActGrad {
            x: &t.x[b * per_item..][..per_item],
            ..*t
        });
        item_grad(
            op,
            gam.as_deref(),
            b,
            &x[b * per_item..][..per_item],
            dout,
            (d, then),
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

/// The backward for batch item `b`: `x`, `dx` and the rows are that item's slices. Each entry's
/// dx is (a·h − c·s)·(1/q) with per-entry scalars a, c and q, so the element loops are
/// branch-free and divide once per entry; sums run in eight fixed-order partial sums
/// ([`sum8`]), so results do not depend on the thread count.
#[multiversion(targets("x86_64+avx2"))]
fn item_grad<T: Scalar>(
    op: &PoolGradOp,
    gam: Option<&[f64]>,
    b: usize,
    x: &[T],
    dout: &[T],
    (dx, then): (&mut [T], Option<ActGrad<T>>),
    mut rows: Option<(&mut [T], &mut [T])>,
) {
    let p: &PoolOp = &op.fwd;
    let e = p.channels * p.f;
    let rn = 1.0 / p.r as f64;
    let (mut u, mut g, mut h) = (vec![0.0f64; e], vec![0.0f64; e], vec![0.0f64; e]);
    // One entry's pool gradient before `then` reads it.
    let mut staged = vec![T::default(); if then.is_some() { e } else { 0 }];
    // Σ_r u of the affine rows.
    let mut u_sum = vec![0.0f64; if rows.is_some() { e } else { 0 }];
    // s of the L1 backward: sign(x), with sign(0) = 0.
    let mut sign = vec![0.0f64; if p.norm == Norm::L1 { e } else { 0 }];
    // The square mode's h = 2u ⊙ ĝ depends on the normalised u.
    let square_h = p.square && gam.is_none();
    for s in 0..p.s {
        for c in 0..p.channels {
            for t in 0..p.f {
                let src = (b * p.channels + c) * p.width + p.offset + s * p.f + t;
                g[c * p.f + t] = dout[src].to_f64() * rn;
                // Σ_r ĝ = R·(dout / R): the output gradient itself.
                if let Some((_, br)) = rows.as_mut() {
                    br[s * e + c * p.f + t] = dout[src];
                }
            }
        }
        u_sum.iter_mut().for_each(|v| *v = 0.0);
        // h = γ ⊙ ĝ or ĝ is the same for every entry; only the square mode's depends on u.
        match gam {
            Some(gm) => h
                .iter_mut()
                .zip(gm.iter().zip(&g))
                .for_each(|(h, (a, b))| *h = a * b),
            None => h.copy_from_slice(&g),
        }
        for r in 0..p.r {
            let at = (r * p.s + s) * e;
            let v = &x[at..at + e];
            // `u` holds x in f64; `su` scales it to x / max(‖x‖, ε) where it is read.
            u.iter_mut().zip(v).for_each(|(d, a)| *d = a.to_f64());
            // L2 with h independent of u (the usual case): Σx² and xᵀh in one pass, u left
            // unscaled. Out of range (a zero, tiny or huge entry) or otherwise: normalise u first.
            let direct = (p.norm == Norm::L2 && !square_h)
                .then(|| sums8(&u, &h, |a, b| [a * a, a * b]))
                .filter(|&[sq, uh]| squares_in_range(sq) && uh.is_finite());
            let (norm, uh, su) = match direct {
                Some([sq, uh]) => {
                    let norm = sq.sqrt();
                    let inv = 1.0 / norm.max(p.eps);
                    (norm, uh * inv, inv)
                }
                None => {
                    let norm = normalise(p, &mut u, &mut sign);
                    if square_h {
                        h.iter_mut()
                            .zip(u.iter().zip(&g))
                            .for_each(|(h, (a, b))| *h = 2.0 * a * b);
                    }
                    (norm, dot8(&u, &h), 1.0)
                }
            };
            u_sum.iter_mut().zip(&u).for_each(|(a, u)| *a += u * su);
            // dx = (h − s·(uᵀh))/‖x‖ (s = u for L2, sign(x) for L1); h/ε when clamped; 0 at
            // x = 0 when ε = 0 (exact normalisation has no gradient there); h for no norm.
            // Written as (a·h − c·s)·(1/q) with per-entry scalars, so the loops have no
            // branches; c carries su, as s = u does.
            let (a, c, q) = match p.norm {
                Norm::None => (1.0, 0.0, 1.0),
                _ if norm == 0.0 && p.eps == 0.0 => (0.0, 0.0, 1.0),
                _ if norm <= p.eps => (1.0, 0.0, p.eps),
                _ => (1.0, uh * su, norm),
            };
            let s_vec = if p.norm == Norm::L1 { &sign } else { &u };
            let row = match then {
                Some(_) => &mut staged[..],
                None => &mut dx[at..at + e],
            };
            // 1/q where finite; a subnormal q (as in `normalise`) divides instead.
            let inv_q = 1.0 / q;
            if inv_q.is_finite() {
                write_dx(op.accumulate, row, &h, s_vec, (a, c), |v| v * inv_q);
            } else {
                write_dx(op.accumulate, row, &h, s_vec, (a, c), |v| v / q);
            }
            if let Some(t) = &then {
                let (x, dx) = (&t.x[at..at + e], &mut dx[at..at + e]);
                activation_grad_rows(t.act, x, &staged, dx, t.accumulate);
            }
        }
        if let Some((gr, _)) = rows.as_mut() {
            let row = &mut gr[s * e..(s + 1) * e];
            for (d, (g, u)) in row.iter_mut().zip(g.iter().zip(&u_sum)) {
                *d = T::from_f64(g * u);
            }
        }
    }
}

/// Normalises entry `u` in place to u / max(‖u‖, ε) (L1 also fills `sign` with sign(u),
/// sign(0) = 0) and returns its norm; a zero vector with ε = 0 stays zero. No norm: 1.
#[inline(always)]
fn normalise(p: &PoolOp, u: &mut [f64], sign: &mut [f64]) -> f64 {
    let norm = match p.norm {
        Norm::None => return 1.0,
        Norm::L1 => sum8(u, f64::abs),
        Norm::L2 => l2_norm(u),
    };
    if p.norm == Norm::L1 {
        sign.iter_mut().zip(&*u).for_each(|(d, &a)| {
            *d = if a > 0.0 {
                1.0
            } else if a < 0.0 {
                -1.0
            } else {
                0.0
            }
        });
    }
    let denom = norm.max(p.eps);
    // Only a zero vector has a zero denominator (ε = 0): it maps to zero. A subnormal
    // denominator (f64 entries below 1e-308) has no finite reciprocal: divide.
    let inv = if denom > 0.0 { 1.0 / denom } else { 0.0 };
    if inv.is_finite() {
        u.iter_mut().for_each(|a| *a *= inv);
    } else {
        u.iter_mut().for_each(|a| *a /= denom);
    }
    norm
}

/// dx (+)= scale(a·h − c·s) over one entry vector. Zipped, not indexed: without bounds checks
/// the loop vectorises.
#[inline(always)]
fn write_dx<T: Scalar>(
    accumulate: bool,
    dx: &mut [T],
    h: &[f64],
    s: &[f64],
    (a, c): (f64, f64),
    scale: impl Fn(f64) -> f64,
) {
    let terms = dx.iter_mut().zip(h.iter().zip(s));
    if accumulate {
        for (d, (h, s)) in terms {
            *d = T::from_f64(d.to_f64() + scale(a * h - c * s));
        }
    } else {
        for (d, (h, s)) in terms {
            *d = T::from_f64(scale(a * h - c * s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::pool::pool;

    /// A pool piece of one batch item, one entry of `e` values, L2 norm with ε = 0.
    fn piece(e: usize) -> PoolGradOp {
        let fwd = PoolOp {
            x: 0,
            out: 1,
            gamma: None,
            beta: None,
            batch: 1,
            r: 1,
            s: 1,
            channels: e,
            f: 1,
            norm: Norm::L2,
            eps: 0.0,
            square: false,
            width: 1,
            offset: 0,
        };
        PoolGradOp {
            fwd,
            dout: 2,
            dx: 3,
            accumulate: false,
            affine_rows: None,
        }
    }

    /// An f64 entry whose norm is subnormal (no finite reciprocal) pools and back-propagates
    /// like the same entry scaled into the normal range: normalisation is scale-invariant, and
    /// the gradient scales by the inverse factor (1e310 here, brought back by the output
    /// gradient's 1e-10 and 1e-300).
    #[test]
    fn subnormal_entries_pool_like_normal_ones() {
        let op = piece(3);
        let normal = [3.0f64, -4.0, 0.0];
        let tiny: Vec<f64> = normal.iter().map(|v| v * 1e-310).collect();
        let dout = [0.5f64, -1.0, 2.0];
        let (mut out_n, mut out_t) = ([0.0f64; 3], [0.0f64; 3]);
        pool(&op.fwd, &normal, None, None, &mut out_n);
        pool(&op.fwd, &tiny, None, None, &mut out_t);
        for (n, t) in out_n.iter().zip(&out_t) {
            assert!((n - t).abs() <= 1e-15, "{out_n:?} vs {out_t:?}");
        }
        // The gradient grows by 1e310: a small output gradient keeps it finite.
        let dout_t: Vec<f64> = dout.iter().map(|v| v * 1e-10).collect();
        let (mut dx_n, mut dx_t) = ([0.0f64; 3], [0.0f64; 3]);
        pool_grad(&op, &normal, None, &dout, &mut dx_n, None, None);
        pool_grad(&op, &tiny, None, &dout_t, &mut dx_t, None, None);
        let dx_t = dx_t.map(|v| v * 1e-300);
        for (n, t) in dx_n.iter().zip(&dx_t) {
            assert!((t - n).abs() <= 1e-12, "{dx_n:?} vs {dx_t:?}");
        }
    }
}
