//! CPU twin of `shaders/gemm.wgsl`: C = A·B (+C) (+bias), rows split across rayon.

use rayon::prelude::*;

use crate::plan::GemmOp;
use crate::scalar::Scalar;

/// Fewest rows per rayon task; each task runs a single-threaded GEMM on its row block, so the
/// result of every element is independent of the split (bitwise-deterministic).
const ROW_BLOCK: usize = 64;

/// Rows per task for an m-row product: about four tasks per thread, at least [`ROW_BLOCK`] and
/// at most 1,024 rows, a multiple of 8 (the kernel's row tile). Every call packs op(B) again, so
/// fewer, larger tasks pack it less often; matrixmultiply blocks each task for the cache itself.
fn rows_per_task(m: usize) -> usize {
    let target = m
        .div_ceil(4 * rayon::current_num_threads())
        .next_multiple_of(8);
    target.clamp(ROW_BLOCK, 1024)
}

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

/// Shortest inner-dimension slice of a split-K GEMM.
const K_SLICE_MIN: usize = 256;

/// Inner-dimension slice per task of a split-K GEMM: about an eighth of k, from 256 to 1,024.
/// It depends on k alone, so the sum's order (and every bit of C) does not depend on the
/// thread count; at batch 8 (k = 2,048) it still gives eight tasks.
pub(crate) fn k_slice(k: usize) -> usize {
    (k / 8).next_multiple_of(64).clamp(K_SLICE_MIN, 1024)
}

/// Whether `op` runs as a split-K product, in slices of [`k_slice`]`(op.k)` rows: few rows and a
/// long inner dimension, as in the parameter gradients Aᵀ·dC (SPEC §8.1).
pub(crate) fn is_split_k(op: &GemmOp) -> bool {
    op.trans_a && op.k >= 2 * K_SLICE_MIN && op.m <= 4 * ROW_BLOCK && op.bias.is_none()
}

/// Executes one GEMM op. Products with few rows and a long inner dimension are split along k
/// instead of rows.
pub fn gemm<T: Scalar>(op: &GemmOp, a: &[T], b: &[T], bias: Option<&[T]>, c: &mut [T]) {
    if is_split_k(op) {
        return gemm_split_k(op, a, b, c);
    }
    let (k, n) = (op.k, op.n);
    let beta = if op.accumulate {
        T::from_f64(1.0)
    } else {
        T::default()
    };
    let per_task = rows_per_task(op.m);
    if op.m <= per_task {
        if let Some(part) = column_part(op) {
            return gemm_columns(op, a, b, bias, beta, c, part);
        }
    }
    let run = |(blk, c_blk): (usize, &mut [T])| {
        let rows = c_blk.len() / n;
        let (offset, sa) = a_view(op, blk * per_task);
        if k == 0 {
            if !op.accumulate {
                c_blk.iter_mut().for_each(|v| *v = T::default());
            }
        } else {
            T::gemm(rows, k, n, &a[offset..], sa, b, b_strides(op), beta, c_blk);
        }
        add_bias(c_blk, bias);
    };
    let c = &mut c[..op.m * n];
    if op.m * k * n < 1 << 16 {
        c.chunks_mut(per_task * n).enumerate().for_each(run);
    } else {
        c.par_chunks_mut(per_task * n).enumerate().for_each(run);
    }
}

/// Adds the bias row to every row of `c` (if any).
fn add_bias<T: Scalar>(c: &mut [T], bias: Option<&[T]>) {
    if let Some(bias) = bias {
        for row in c.chunks_mut(bias.len()) {
            for (v, &bv) in row.iter_mut().zip(bias) {
                *v += bv;
            }
        }
    }
}

/// Most rows of a product whose columns are split instead of its rows (see [`column_part`]).
const FEW_ROWS: usize = 16;

/// Fewest multiply-adds per column part: below this, one call costs less than the hand-off.
const COLUMN_PART_MIN: usize = 1 << 18;

/// Columns per part when a product of at most [`FEW_ROWS`] rows is split by columns: each row
/// task would pack all of op(B), the bulk of such a product (the 1,000 × 1,000 hidden layer of
/// HNP's head at batch 8), so each thread packs its own share of the columns instead. A multiple
/// of 16 (the widest kernel tile); None when the product is too small to split.
pub(crate) fn column_part(op: &GemmOp) -> Option<usize> {
    let threads = rayon::current_num_threads();
    let part = op.n.div_ceil(threads).next_multiple_of(16);
    let enough = op.m * op.k * part >= COLUMN_PART_MIN;
    (threads > 1 && op.m <= FEW_ROWS && op.k > 0 && part < op.n && enough).then_some(part)
}

/// C (+)= A·B (+bias) with the columns split into parts of `part`, each computed by one call
/// into its own buffer and copied into C. Every element's arithmetic is that of one call over
/// all columns, so the bits are the same (tested).
fn gemm_columns<T: Scalar>(
    op: &GemmOp,
    a: &[T],
    b: &[T],
    bias: Option<&[T]>,
    beta: T,
    c: &mut [T],
    part: usize,
) {
    let (m, k, n) = (op.m, op.k, op.n);
    let (_, sa) = a_view(op, 0);
    let sb = b_strides(op);
    let c = &mut c[..m * n];
    let starts: Vec<usize> = (0..n).step_by(part).collect();
    let parts: Vec<Vec<T>> = starts
        .par_iter()
        .map(|&j0| {
            let cols = part.min(n - j0);
            let mut out: Vec<T> = Vec::with_capacity(m * cols);
            if op.accumulate {
                c.chunks(n).for_each(|row| out.extend(&row[j0..j0 + cols]));
            } else {
                out.resize(m * cols, T::default());
            }
            T::gemm(m, k, cols, a, sa, &b[j0 * sb.1..], sb, beta, &mut out);
            out
        })
        .collect();
    for (&j0, out) in starts.iter().zip(&parts) {
        let cols = part.min(n - j0);
        for (row, part_row) in c.chunks_mut(n).zip(out.chunks(cols)) {
            row[j0..j0 + cols].copy_from_slice(part_row);
        }
    }
    add_bias(c, bias);
}

/// C (+)= Aᵀ·B as a fixed-order sum of partial products over fixed k slices: parallel and cache
/// friendly, and bitwise-deterministic (the slicing does not depend on the thread count).
fn gemm_split_k<T: Scalar>(op: &GemmOp, a: &[T], b: &[T], c: &mut [T]) {
    let slice = k_slice(op.k);
    let starts: Vec<usize> = (0..op.k).step_by(slice).collect();
    let partials: Vec<Vec<T>> = starts
        .par_iter()
        .map(|&k0| {
            let b_off = if op.trans_b { k0 } else { k0 * op.n };
            split_k_partial(op, a, &b[b_off..], k0, slice.min(op.k - k0))
        })
        .collect();
    split_k_sum(op, &partials, c);
}

/// Rows of A and B per GEMM call inside a split-K slice: each slice's partial is accumulated
/// over steps of this many rows (or a multiple, in fused chains). It equals matrixmultiply's own
/// inner-dimension block, so the bits are those of one call over the slice (tested); the fused
/// chains (`fuse.rs`) add each step while its rows of B are still in cache.
pub(crate) const K_STEP: usize = 256;

/// One slice's partial product: rows `k0..k0 + kc` of A (stored k × m) times the same rows of
/// B, which `b` starts at, in steps of [`K_STEP`] rows ([`split_k_step`]).
fn split_k_partial<T: Scalar>(op: &GemmOp, a: &[T], b: &[T], k0: usize, kc: usize) -> Vec<T> {
    let mut part = vec![T::default(); op.m * op.n];
    for s in (0..kc).step_by(K_STEP) {
        let b_off = if op.trans_b { s } else { s * op.n };
        split_k_step(op, a, &b[b_off..], (k0 + s, K_STEP.min(kc - s)), &mut part);
    }
    part
}

/// One step of a slice's partial product: `part` = (when `k0` starts a slice) or += rows
/// `k0..k0 + kc` of A times the same rows of B, which `b` starts at.
pub(crate) fn split_k_step<T: Scalar>(
    op: &GemmOp,
    a: &[T],
    b: &[T],
    (k0, kc): (usize, usize),
    part: &mut [T],
) {
    let m = op.m;
    let beta = if k0 % k_slice(op.k) == 0 {
        T::default()
    } else {
        T::from_f64(1.0)
    };
    T::gemm(
        m,
        kc,
        op.n,
        &a[k0 * m..],
        (1, m),
        b,
        b_strides(op),
        beta,
        part,
    );
}

/// C (+)= the slices' partial products, added in slice order.
pub(crate) fn split_k_sum<T: Scalar, P: AsRef<[T]>>(op: &GemmOp, partials: &[P], c: &mut [T]) {
    let c = &mut c[..op.m * op.n];
    if !op.accumulate {
        c.iter_mut().for_each(|v| *v = T::default());
    }
    for part in partials {
        for (v, &p) in c.iter_mut().zip(part.as_ref()) {
            *v += p;
        }
    }
}

/// C = A·B (+bias) for `op.m` rows (no accumulation); used per block by the chain executor
/// (`fuse.rs`). Runs on the calling thread, or split by columns for a few-row product with large
/// weights ([`column_part`]).
pub(crate) fn gemm_rows<T: Scalar>(op: &GemmOp, a: &[T], b: &[T], bias: Option<&[T]>, c: &mut [T]) {
    let n = op.n;
    if op.k == 0 {
        c.iter_mut().for_each(|v| *v = T::default());
    } else if let Some(part) = column_part(op) {
        return gemm_columns(op, a, b, bias, T::default(), c, part);
    } else {
        let (_, sa) = a_view(op, 0);
        T::gemm(op.m, op.k, n, a, sa, b, b_strides(op), T::default(), c);
    }
    add_bias(&mut c[..op.m * n], bias);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.0 - 1.0)
            .collect()
    }

    /// A slice's partial in steps of [`K_STEP`] rows is bitwise one GEMM call over the slice
    /// (matrixmultiply blocks the inner dimension by 256 itself), for 1,024-, 600- and 40-row
    /// slices.
    #[test]
    fn slice_steps_give_the_bits_of_one_call() {
        for (m, kc, n) in [(144, 1024, 144), (45, 600, 144), (9, 40, 5)] {
            let op = GemmOp {
                a: 0,
                b: 1,
                bias: None,
                c: 2,
                m,
                k: 8 * kc,
                n,
                accumulate: false,
                trans_a: true,
                trans_b: false,
            };
            let (a, b) = (values(m * kc, 3), values(kc * n, 4));
            let stepped = split_k_partial(&op, &a, &b, 0, kc);
            let mut whole = vec![0f32; m * n];
            f32::gemm(m, kc, n, &a, (1, m), &b, (n, 1), 0.0, &mut whole);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&stepped), bits(&whole), "{m}x{kc}x{n}");
        }
    }

    /// Row splits and k slices follow the thread count and k, never the order of the sum: C is
    /// the same bits on 1, 2 and 3 threads, for split-K (batch 8's k = 2,048 and batch 64's
    /// 16,384) and row-split products.
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        for (m, k, n, trans_a) in [
            (9, 2048, 144, true),
            (144, 2048, 45, true),
            (16, 16384, 5, true),
            (1000, 144, 45, false),
        ] {
            let op = GemmOp {
                a: 0,
                b: 1,
                bias: None,
                c: 2,
                m,
                k,
                n,
                accumulate: false,
                trans_a,
                trans_b: false,
            };
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let bits: Vec<Vec<u32>> = [1, 2, 3]
                .iter()
                .map(|&threads| {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let mut c = vec![0f32; m * n];
                    pool.install(|| gemm(&op, &a, &b, None, &mut c));
                    c.iter().map(|x| x.to_bits()).collect()
                })
                .collect();
            assert!(bits.iter().all(|b| b == &bits[0]), "{m}x{k}x{n}");
        }
    }

    /// A few-row product split by columns (HNP's head at batch 8) gives the bits of one call,
    /// through the op and through a chain's `gemm_rows`, with op(B) transposed or not, with
    /// accumulation and with a bias.
    #[test]
    fn column_parts_give_the_bits_of_one_call() {
        for (m, k, n, trans_b, accumulate) in [
            (8, 250, 1000, false, false),
            (8, 1000, 1000, true, false),
            (5, 1000, 700, false, true),
        ] {
            let op = GemmOp {
                a: 0,
                b: 1,
                bias: Some(3),
                c: 2,
                m,
                k,
                n,
                accumulate,
                trans_a: false,
                trans_b,
            };
            let (a, b, bias) = (values(m * k, 5), values(k * n, 6), values(n, 7));
            let c0 = values(m * n, 8);
            let run = |threads: usize, rows: bool| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    assert_eq!(column_part(&op).is_some(), threads > 1, "{m}x{k}x{n}");
                    let mut c = c0.clone();
                    if rows {
                        gemm_rows(
                            &GemmOp {
                                accumulate: false,
                                ..op.clone()
                            },
                            &a,
                            &b,
                            Some(&bias),
                            &mut c,
                        );
                    } else {
                        gemm(&op, &a, &b, Some(&bias), &mut c);
                    }
                    c.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                })
            };
            for rows in [false, true] {
                let whole = run(1, rows);
                assert_eq!(run(2, rows), whole, "{m}x{k}x{n}, 2 threads");
                assert_eq!(run(3, rows), whole, "{m}x{k}x{n}, 3 threads");
            }
        }
    }
}
