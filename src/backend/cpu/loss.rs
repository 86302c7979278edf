//! CPU twin of `shaders/loss.wgsl`: a loss and its gradient (SPEC §8.4), summed in f64.

use crate::plan::{LossKind, LossOp};
use crate::scalar::Scalar;

/// Writes loss\[0\] and dpred for `op`.
pub fn loss<T: Scalar>(
    op: &LossOp,
    pred: &[T],
    target: Option<&[T]>,
    loss: &mut [T],
    dpred: &mut [T],
) {
    let p = |i: usize| pred[i].to_f64();
    let t = |i: usize| target.map_or(0.0, |t| t[i].to_f64());
    let n = op.len as f64;
    let mut total = 0.0;
    match op.kind {
        LossKind::HalfSumSquares => {
            for (i, d) in dpred[..op.len].iter_mut().enumerate() {
                total += 0.5 * p(i) * p(i);
                *d = pred[i];
            }
        }
        LossKind::Mse => {
            for (i, dp) in dpred[..op.len].iter_mut().enumerate() {
                let d = p(i) - t(i);
                total += d * d / n;
                *dp = T::from_f64(2.0 * d / n);
            }
        }
        LossKind::Bce => {
            // PyTorch's BCELoss: logs clamped at −100; gradient (p − y)/max(p(1 − p), 1e-12)/N.
            for (i, dp) in dpred[..op.len].iter_mut().enumerate() {
                let (pi, yi) = (p(i), t(i));
                total -= (yi * pi.ln().max(-100.0) + (1.0 - yi) * (1.0 - pi).ln().max(-100.0)) / n;
                *dp = T::from_f64((pi - yi) / (pi * (1.0 - pi)).max(1e-12) / n);
            }
        }
        LossKind::SoftmaxCe { classes } => {
            let rows = op.len / classes;
            for r in 0..rows {
                let at = r * classes;
                let max = (at..at + classes).map(p).fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = (at..at + classes).map(|i| (p(i) - max).exp()).sum();
                for (i, dp) in dpred[at..at + classes].iter_mut().enumerate() {
                    let i = at + i;
                    let sm = (p(i) - max).exp() / z;
                    total -= t(i) * ((p(i) - max) - z.ln()) / rows as f64;
                    *dp = T::from_f64((sm - t(i)) / rows as f64);
                }
            }
        }
    }
    loss[0] = T::from_f64(total);
}
