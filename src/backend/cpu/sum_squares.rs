//! CPU twin of `shaders/sum_squares.wgsl`: the squared gradient norm the optimizer clips by.

use crate::plan::SumSquaresOp;
use crate::scalar::Scalar;

/// out\[0\] (+)= Σ x², summed in f64 in a fixed order.
pub fn sum_squares<T: Scalar>(op: &SumSquaresOp, x: &[T], out: &mut [T]) {
    let s: f64 = x[..op.len].iter().map(|v| v.to_f64().powi(2)).sum();
    out[0] = T::from_f64(if op.accumulate {
        out[0].to_f64() + s
    } else {
        s
    });
}
