//! CPU twin of `shaders/activation.wgsl`.

use rayon::prelude::*;

use crate::plan::Activation;
use crate::scalar::Scalar;

/// Elements per rayon task (shared with `activation_grad.rs`).
pub(super) const CHUNK: usize = 1 << 14;

/// y = act(x) elementwise. Odd functions are computed on |x| with the sign restored, so sign
/// flips commute with them bitwise (SPEC §9.7).
pub fn activation<T: Scalar>(act: Activation, x: &[T], y: &mut [T]) {
    let one = T::from_f64(1.0);
    let zero = T::default();
    match act {
        Activation::Relu => map(x, y, |v| if v > zero { v } else { zero }),
        Activation::Abs => map(x, y, |v| v.abs()),
        Activation::Tanh => map(x, y, |v| v.signum() * tanh_abs(v.abs())),
        Activation::Sin => map(x, y, |v| v.signum() * v.abs().sin_cos().0),
        Activation::Sigmoid => map(x, y, |v| one / (one + (zero - v).exp())),
    }
}

/// tanh(a) for a ≥ 0 without overflow (SPEC §9.7) and without cancellation near 0: the odd
/// series a − a³/3 + 2a⁵/15 − 17a⁷/315 + 62a⁹/2835 below `T::TANH_SERIES_BELOW`.
pub fn tanh_abs<T: Scalar>(a: T) -> T {
    let c = |v: f64| T::from_f64(v);
    if a < c(T::TANH_SERIES_BELOW) {
        let a2 = a * a;
        a * (c(1.0)
            + a2 * (c(-1.0 / 3.0)
                + a2 * (c(2.0 / 15.0) + a2 * (c(-17.0 / 315.0) + a2 * c(62.0 / 2835.0)))))
    } else {
        c(1.0) - c(2.0) / ((c(2.0) * a).exp() + c(1.0))
    }
}

fn map<T: Scalar>(x: &[T], y: &mut [T], f: impl Fn(T) -> T + Sync) {
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(yc, xc)| {
            for (yv, &xv) in yc.iter_mut().zip(xc) {
                *yv = f(xv);
            }
        });
}

/// act applied in place (the chain executor's variant, `fuse.rs`).
pub fn activation_in_place<T: Scalar>(act: Activation, x: &mut [T]) {
    let zero = T::default();
    match act {
        Activation::Relu => x
            .iter_mut()
            .for_each(|v| *v = if *v > zero { *v } else { zero }),
        _ => {
            let src = x.to_vec();
            activation(act, &src, x);
        }
    }
}
