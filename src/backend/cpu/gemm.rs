//! CPU twin of `shaders/gemm.wgsl`: C = A·B (+C) (+bias), rows split across rayon.

use rayon::prelude::*;

use crate::plan::GemmOp;
use crate::scalar::Scalar;

/// Rows per rayon task; each task runs a single-threaded GEMM on its row block, so the result
/// of every element is independent of the split (bitwise-deterministic).
const ROW_BLOCK: usize = 64;

/// Strides of op(A) rows starting at row `r0`, and the offset of that row in A's storage.
fn a_view(op: &GemmOp, r0: usize) -> (usize, (usize, usize)) {
    if op.trans_a {
        (r0, (1, op.m))
    } else {
        (r0 * op.k, (op.k, 1))
    }
}

/// Strides of op(B).
fn b_strides(op: &GemmOp) -> (usize, usize) {
    if op.trans_b {
        (1, op.k)
    } else {
        (op.n, 1)
    }
}

/// Executes one GEMM op.
pub fn gemm<T: Scalar>(op: &GemmOp, a: &[T], b: &[T], bias: Option<&[T]>, c: &mut [T]) {
    let (k, n) = (op.k, op.n);
    let beta = if op.accumulate {
        T::from_f64(1.0)
    } else {
        T::default()
    };
    let run = |(blk, c_blk): (usize, &mut [T])| {
        let rows = c_blk.len() / n;
        let (offset, sa) = a_view(op, blk * ROW_BLOCK);
        if k == 0 {
            if !op.accumulate {
                c_blk.iter_mut().for_each(|v| *v = T::default());
            }
        } else {
            T::gemm(rows, k, n, &a[offset..], sa, b, b_strides(op), beta, c_blk);
        }
        if let Some(bias) = bias {
            for row in c_blk.chunks_mut(n) {
                for (v, &bv) in row.iter_mut().zip(bias) {
                    *v += bv;
                }
            }
        }
    };
    let c = &mut c[..op.m * n];
    if op.m * k * n < 1 << 16 {
        c.chunks_mut(ROW_BLOCK * n).enumerate().for_each(run);
    } else {
        c.par_chunks_mut(ROW_BLOCK * n).enumerate().for_each(run);
    }
}

/// C = A·B (+bias) for `op.m` rows on the calling thread (no accumulation); used per block by
/// the chain executor (`fuse.rs`).
pub(crate) fn gemm_rows<T: Scalar>(op: &GemmOp, a: &[T], b: &[T], bias: Option<&[T]>, c: &mut [T]) {
    let n = op.n;
    if op.k == 0 {
        c.iter_mut().for_each(|v| *v = T::default());
    } else {
        let (_, sa) = a_view(op, 0);
        T::gemm(op.m, op.k, n, a, sa, b, b_strides(op), T::default(), c);
    }
    if let Some(bias) = bias {
        for row in c.chunks_mut(n) {
            for (v, &bv) in row.iter_mut().zip(bias) {
                *v += bv;
            }
        }
    }
}
