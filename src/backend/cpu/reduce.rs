//! CPU twin of `shaders/reduce.wgsl`: strided sums and broadcasts (the means and broadcast terms
//! of the permutation-only baselines, SPEC §5).

use rayon::prelude::*;

use crate::plan::ReduceOp;
use crate::scalar::Scalar;

/// Executes one strided sum: y[a·ya + s·ys + k] (+)= alpha · Σ_r x[a·xa + s·xs + r·xr + k].
/// Each output is summed over r in ascending order (so results do not depend on threading);
/// the k axis is innermost, so rows of x are read contiguously and the adds vectorise.
pub fn reduce<T: Scalar>(op: &ReduceOp, x: &[T], y: &mut [T]) {
    let [xa, xs, xr] = op.x_strides;
    let [ya, ys] = op.y_strides;
    let alpha = T::from_f64(op.alpha);
    let k_len = op.inner;
    // One (a, s): y_s[k] (+)= alpha · Σ_r x[base + r·xr + k]. A broadcast (r = 1) adds its one
    // row straight to y: 0 + x is the same bits as the sum's first step.
    let one = |base: usize, y_s: &mut [T], acc: &mut Vec<T>| {
        let y_s = &mut y_s[..k_len];
        if op.r == 1 {
            let row = x[base..base + k_len].iter().map(|&v| T::default() + v);
            return store(y_s, row, alpha, op.accumulate);
        }
        acc.clear();
        acc.resize(k_len, T::default());
        for r in 0..op.r {
            let row = &x[base + r * xr..base + r * xr + k_len];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v;
            }
        }
        store(y_s, acc.iter().copied(), alpha, op.accumulate);
    };
    let span = (op.mid - 1) * ys + op.inner;
    if ya >= span && y.len() >= op.outer * ya && op.outer > 1 {
        // Each a owns the disjoint slice [a·ya, (a+1)·ya).
        y[..op.outer * ya]
            .par_chunks_mut(ya)
            .enumerate()
            .for_each_init(Vec::new, |acc, (a, y_a)| {
                for s in 0..op.mid {
                    one(a * xa + s * xs, &mut y_a[s * ys..], acc);
                }
            });
    } else if op.outer == 1 && op.mid > 1 && ys >= op.inner && y.len() >= op.mid * ys {
        // Each s owns the disjoint slice [s·ys, (s+1)·ys).
        y[..op.mid * ys]
            .par_chunks_mut(ys)
            .enumerate()
            .for_each_init(Vec::new, |acc, (s, y_s)| one(s * xs, y_s, acc));
    } else {
        let mut acc = Vec::new();
        for a in 0..op.outer {
            for s in 0..op.mid {
                one(a * xa + s * xs, &mut y[a * ya + s * ys..], &mut acc);
            }
        }
    }
}

/// y (+)= alpha · sums, with the branch outside the loop so each loop vectorises.
fn store<T: Scalar>(y: &mut [T], sums: impl Iterator<Item = T>, alpha: T, accumulate: bool) {
    if accumulate {
        y.iter_mut().zip(sums).for_each(|(v, a)| *v += alpha * a);
    } else {
        y.iter_mut().zip(sums).for_each(|(v, a)| *v = alpha * a);
    }
}
