//! CPU twin of `shaders/activation.wgsl`.

use rayon::prelude::*;

use crate::plan::Activation;
use crate::scalar::Scalar;

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

/// y = act(x) elementwise. Odd functions are computed on |x| with the sign restored, so sign
/// flips commute with them bitwise (SPEC §9.7).
pub fn activation<T: Scalar>(act: Activation, x: &[T], y: &mut [T]) {
    let one = T::from_f64(1.0);
    let two = T::from_f64(2.0);
    let zero = T::default();
    match act {
        Activation::Relu => map(x, y, |v| if v > zero { v } else { zero }),
        Activation::Abs => map(x, y, |v| v.abs()),
        Activation::Tanh => map(x, y, |v| {
            v.signum() * (one - two / ((two * v.abs()).exp() + one))
        }),
        Activation::Sin => map(x, y, |v| v.signum() * v.abs().sin()),
        Activation::Sigmoid => map(x, y, |v| one / (one + (zero - v).exp())),
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
