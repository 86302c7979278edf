//! CPU twin of `shaders/activation.wgsl`.

use crate::plan::Activation;
use crate::scalar::Scalar;

/// y = act(x) elementwise. Odd functions are computed on |x| with the sign restored, so sign
/// flips commute with them bitwise (SPEC §9.7).
pub fn activation<T: Scalar>(act: Activation, x: &[T], y: &mut [T]) {
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv = T::from_f64(apply(act, xv.to_f64()));
    }
}

fn apply(act: Activation, x: f64) -> f64 {
    match act {
        Activation::Relu => x.max(0.0),
        Activation::Abs => x.abs(),
        Activation::Tanh => x.signum() * (1.0 - 2.0 / ((2.0 * x.abs()).exp() + 1.0)),
        Activation::Sin => x.signum() * x.abs().sin(),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
    }
}
