//! CPU twin of `shaders/pool.wgsl`: normalise each entry vector, then average (SPEC §4).

use multiversion::multiversion;

use crate::plan::{Norm, PoolOp};
use crate::scalar::Scalar;

/// Smallest sum of squares whose root is taken as it is. Above it any square that underflowed
/// lost less than 2⁻¹⁰⁷⁴ of a sum of at least 2⁻⁹⁷⁰, far below f64's rounding.
const SQUARES_MIN: f64 = f64::MIN_POSITIVE / f64::EPSILON;

/// Whether Σv² = `sq` gives ‖v‖₂ as √sq to f64's rounding: finite (no square overflowed) and
/// not so small that underflowed squares matter (SPEC §9.4).
#[inline]
pub(super) fn squares_in_range(sq: f64) -> bool {
    sq.is_finite() && sq >= SQUARES_MIN
}

/// ‖v‖₂: √Σv² in one pass when the sum is in range ([`squares_in_range`]: always for f32
/// values, whose squares are normal f64), else m·‖v/m‖₂ with m = max|v|, so tiny (or huge)
/// entries neither underflow nor overflow (SPEC §9.4). v/m is v·(1/m) where 1/m is finite (one
/// division per vector instead of one per value). Squares are summed in eight interleaved
/// partial sums added in a fixed order ([`sum8`]). Shared with `pool_grad.rs`; inlined into
/// their AVX2 clones.
#[inline]
pub(super) fn l2_norm(v: &[f64]) -> f64 {
    let sq = sum8(v, |a| a * a);
    if squares_in_range(sq) {
        return sq.sqrt();
    }
    let m = v.iter().fold(0.0f64, |m, a| m.max(a.abs()));
    if m == 0.0 {
        return 0.0;
    }
    let inv = 1.0 / m;
    let sum = if inv.is_finite() {
        sum8(v, |a| (a * inv) * (a * inv))
    } else {
        sum8(v, |a| (a / m) * (a / m))
    };
    m * sum.sqrt()
}

/// Σ f(v) in eight interleaved partial sums added in a fixed order: the same bits on every run
/// and thread count, with eight independent adds per step instead of one chain of dependent ones.
#[inline]
pub(super) fn sum8(v: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += f(*x);
        }
    }
    for (a, x) in acc.iter_mut().zip(rest) {
        *a += f(*x);
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// aᵀb in eight interleaved partial sums added in a fixed order, as [`sum8`].
#[inline]
pub(super) fn dot8(a: &[f64], b: &[f64]) -> f64 {
    sums8(a, b, |x, y| [x * y])[0]
}

/// Σ f(aᵢ, bᵢ) for N sums at once (one pass over a and b), each in eight interleaved partial
/// sums added in a fixed order, as [`sum8`].
#[inline(always)]
pub(super) fn sums8<const N: usize>(
    a: &[f64],
    b: &[f64],
    f: impl Fn(f64, f64) -> [f64; N],
) -> [f64; N] {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [[0.0f64; 8]; N];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            let v = f(x[i], y[i]);
            for j in 0..N {
                acc[j][i] += v[j];
            }
        }
    }
    for (i, (x, y)) in ra.iter().zip(rb).enumerate() {
        let v = f(*x, *y);
        for j in 0..N {
            acc[j][i] += v[j];
        }
    }
    acc.map(|a| ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])))
}

/// Executes one pool piece, writing out[b, c, offset + s·f + t]. Norms and sums are taken in
/// f64 whatever `T` is.
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
    let mut u = vec![0.0f64; e];
    for b in 0..op.batch {
        for s in 0..op.s {
            acc.iter_mut().for_each(|v| *v = 0.0);
            for r in 0..op.r {
                let v = &x[((b * op.r + r) * op.s + s) * e..][..e];
                u.iter_mut().zip(v).for_each(|(d, s)| *d = s.to_f64());
                let denom = match op.norm {
                    Norm::None => 1.0,
                    Norm::L1 => sum8(&u, f64::abs).max(op.eps),
                    Norm::L2 => l2_norm(&u).max(op.eps),
                };
                // Only a zero vector has a zero denominator (ε = 0): it maps to zero. A subnormal
                // denominator (f64 entries below 1e-308) has no finite reciprocal: divide.
                let mut inv = if denom > 0.0 { 1.0 / denom } else { 0.0 };
                if !inv.is_finite() {
                    u.iter_mut().for_each(|a| *a /= denom);
                    inv = 1.0;
                }
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
