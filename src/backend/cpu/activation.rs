//! CPU twins of `shaders/activation.wgsl` and `shaders/activation_grad.wgsl`.

use rayon::prelude::*;

use crate::plan::Activation;
use crate::scalar::Scalar;

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

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
    let one = T::from_f64(1.0);
    let zero = T::default();
    match act {
        Activation::Relu => grad_map(
            x,
            dy,
            dx,
            accumulate,
            |v, g| if v > zero { g } else { zero },
        ),
        Activation::Abs => grad_map(x, dy, dx, accumulate, |v, g| {
            if v > zero {
                g
            } else if v < zero {
                zero - g
            } else {
                zero
            }
        }),
        Activation::Tanh => grad_map(x, dy, dx, accumulate, |v, g| {
            let t = tanh_abs(v.abs());
            g * (one - t * t)
        }),
        Activation::Sin => grad_map(x, dy, dx, accumulate, |v, g| g * v.abs().sin_cos().1),
        Activation::Sigmoid => grad_map(x, dy, dx, accumulate, |v, g| {
            let s = one / (one + (zero - v).exp());
            g * (s * (one - s))
        }),
    }
}

/// dx (+)= f(x, dy) elementwise, in parallel chunks.
fn grad_map<T: Scalar>(
    x: &[T],
    dy: &[T],
    dx: &mut [T],
    accumulate: bool,
    f: impl Fn(T, T) -> T + Sync,
) {
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(dc, (xc, gc))| {
            if accumulate {
                for ((o, &xv), &g) in dc.iter_mut().zip(xc).zip(gc) {
                    *o += f(xv, g);
                }
            } else {
                for ((o, &xv), &g) in dc.iter_mut().zip(xc).zip(gc) {
                    *o = f(xv, g);
                }
            }
        });
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
