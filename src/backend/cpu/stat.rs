//! CPU twin of `shaders/stat.wgsl`: the seven STATNN statistics of one tensor per batch item and
//! channel (SPEC §5.4).

use crate::plan::StatOp;
use crate::scalar::Scalar;

/// The quantiles STATNN reports, after the mean and the unbiased variance.
pub const QUANTILES: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

/// Writes out[b, c, offset + k], k < 7: mean, unbiased variance, then the quantiles 0, .25, .5,
/// .75, 1 (linear interpolation between order statistics, as `torch.quantile`).
pub fn stat<T: Scalar>(op: &StatOp, x: &[T], out: &mut [T]) {
    let e = op.channels * op.f;
    let n = op.m * op.f;
    let mut v = Vec::with_capacity(n);
    for b in 0..op.batch {
        for c in 0..op.channels {
            v.clear();
            for m in 0..op.m {
                let at = (b * op.m + m) * e + c * op.f;
                v.extend(x[at..at + op.f].iter().map(|a| a.to_f64()));
            }
            let mean = v.iter().sum::<f64>() / n as f64;
            let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0).max(1.0);
            v.sort_by(f64::total_cmp);
            let dst = (b * op.channels + c) * op.width + op.offset;
            out[dst] = T::from_f64(mean);
            out[dst + 1] = T::from_f64(var);
            for (k, q) in QUANTILES.iter().enumerate() {
                let pos = q * (n - 1) as f64;
                let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
                let val = v[lo] + (pos - lo as f64) * (v[hi] - v[lo]);
                out[dst + 2 + k] = T::from_f64(val);
            }
        }
    }
}
