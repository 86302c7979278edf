//! CPU twin of `shaders/activation_grad.wgsl`: the backward of an activation.

use rayon::prelude::*;

use super::activation::{tanh_abs, CHUNK};
use crate::plan::Activation;
use crate::scalar::Scalar;

/// dx (+)= dy ⊙ act'(x) with x the forward input (SPEC §8.2): ReLU 1\[x > 0\], tanh 1 − tanh²,
/// sin cos (both through `Scalar::sin_cos`, vectorised in f32), abs sign(x) with sign(0) = 0, sigmoid s(1 − s). ReLU and abs select instead of
/// multiplying, so tiny (subnormal) gradients pass at full speed.
pub fn activation_grad<T: Scalar>(
    act: Activation,
    x: &[T],
    dy: &[T],
    dx: &mut [T],
    accumulate: bool,
) {
    grad(act, x, dy, dx, accumulate, true)
}

/// [`activation_grad`] on the calling thread: the chain executor's variant (`fuse.rs`), which
/// already runs row blocks in parallel.
pub(super) fn activation_grad_rows<T: Scalar>(
    act: Activation,
    x: &[T],
    dy: &[T],
    dx: &mut [T],
    accumulate: bool,
) {
    grad(act, x, dy, dx, accumulate, false)
}

fn grad<T: Scalar>(
    act: Activation,
    x: &[T],
    dy: &[T],
    dx: &mut [T],
    accumulate: bool,
    parallel: bool,
) {
    let one = T::from_f64(1.0);
    let zero = T::default();
    match act {
        Activation::Relu => grad_map((x, dy, dx), (accumulate, parallel), |v, g| {
            if v > zero {
                g
            } else {
                zero
            }
        }),
        Activation::Abs => grad_map((x, dy, dx), (accumulate, parallel), |v, g| {
            if v > zero {
                g
            } else if v < zero {
                zero - g
            } else {
                zero
            }
        }),
        Activation::Tanh => grad_map((x, dy, dx), (accumulate, parallel), |v, g| {
            let t = tanh_abs(v.abs());
            g * (one - t * t)
        }),
        Activation::Sin => grad_map((x, dy, dx), (accumulate, parallel), |v, g| {
            g * v.abs().sin_cos().1
        }),
        Activation::Sigmoid => grad_map((x, dy, dx), (accumulate, parallel), |v, g| {
            let s = one / (one + (zero - v).exp());
            g * (s * (one - s))
        }),
    }
}

/// dx (+)= f(x, dy) elementwise, in parallel chunks or on the calling thread.
fn grad_map<T: Scalar>(
    (x, dy, dx): (&[T], &[T], &mut [T]),
    (accumulate, parallel): (bool, bool),
    f: impl Fn(T, T) -> T + Sync,
) {
    let chunk = |(dc, (xc, gc)): (&mut [T], (&[T], &[T]))| {
        if accumulate {
            for ((o, &xv), &g) in dc.iter_mut().zip(xc).zip(gc) {
                *o += f(xv, g);
            }
        } else {
            for ((o, &xv), &g) in dc.iter_mut().zip(xc).zip(gc) {
                *o = f(xv, g);
            }
        }
    };
    if parallel {
        dx.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
            .for_each(chunk);
    } else {
        chunk((dx, (x, dy)));
    }
}
