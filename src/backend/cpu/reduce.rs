//! CPU twin of `shaders/reduce.wgsl`: strided sums and broadcasts (the means and broadcast terms
//! of the permutation-only baselines, SPEC §5).

use rayon::prelude::*;

use crate::plan::ReduceOp;
use crate::scalar::Scalar;

/// Executes one strided sum: y[a·ya + s·ys + k] (+)= alpha · Σ_r x[a·xa + s·xs + r·xr + k].
pub fn reduce<T: Scalar>(op: &ReduceOp, x: &[T], y: &mut [T]) {
    let [xa, xs, xr] = op.x_strides;
    let [ya, ys] = op.y_strides;
    let alpha = T::from_f64(op.alpha);
    let one_a = |a: usize, y_a: &mut [T]| {
        for s in 0..op.mid {
            for k in 0..op.inner {
                let base = a * xa + s * xs + k;
                let mut acc = T::default();
                for r in 0..op.r {
                    acc += x[base + r * xr];
                }
                let v = &mut y_a[s * ys + k];
                *v = if op.accumulate {
                    *v + alpha * acc
                } else {
                    alpha * acc
                };
            }
        }
    };
    // Each a owns the disjoint slice [a·ya, (a+1)·ya) when its (s, k) span fits in ya.
    let span = (op.mid - 1) * ys + op.inner;
    if ya >= span && y.len() >= op.outer * ya && op.outer > 1 {
        y[..op.outer * ya]
            .par_chunks_mut(ya)
            .enumerate()
            .for_each(|(a, y_a)| one_a(a, y_a));
    } else {
        for a in 0..op.outer {
            one_a(a, &mut y[a * ya..]);
        }
    }
}
