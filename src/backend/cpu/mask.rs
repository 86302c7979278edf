//! CPU twin of `shaders/mask.wgsl`: y[a, s, k] (+)= x[a, s, k] · mask[a, k] (dropout).

use rayon::prelude::*;

use crate::plan::MaskOp;
use crate::scalar::Scalar;

/// Multiplies x by the mask broadcast over the middle axis.
pub fn mask<T: Scalar>(op: &MaskOp, x: &[T], m: &[T], y: &mut [T]) {
    let block = op.mid * op.inner;
    y[..op.outer * block]
        .par_chunks_mut(block.max(1))
        .zip(x.par_chunks(block.max(1)))
        .zip(m.par_chunks(op.inner.max(1)))
        .for_each(|((ya, xa), ma)| {
            for (ys, xs) in ya.chunks_mut(op.inner).zip(xa.chunks(op.inner)) {
                for ((yv, &xv), &mv) in ys.iter_mut().zip(xs).zip(ma) {
                    *yv = if op.accumulate {
                        *yv + xv * mv
                    } else {
                        xv * mv
                    };
                }
            }
        });
}
