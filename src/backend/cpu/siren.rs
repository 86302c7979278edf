//! CPU twin of `shaders/siren.wgsl`: a batch of SIRENs with per-sample weights evaluated at
//! shared points (SPEC §1.4, §6.3). Rayon over samples; each layer of a sample is one small
//! GEMM over all points, and each hidden unit's sin and ω·cos come from one `sin_cos`.

use rayon::prelude::*;

use crate::plan::SirenOp;
use crate::scalar::Scalar;

/// Offset of each layer's (W, b) in a sample's parameter row.
pub(super) fn param_offsets(widths: &[usize]) -> Vec<usize> {
    let mut off = vec![0];
    for w in widths.windows(2) {
        off.push(off.last().copied().unwrap_or(0) + w[1] * (w[0] + 1));
    }
    off
}

/// Offset of each hidden layer's values in a point's trace row (layer i at index i − 1).
pub(super) fn trace_offsets(widths: &[usize]) -> Vec<usize> {
    let hidden = &widths[1..widths.len() - 1];
    let mut off = Vec::with_capacity(hidden.len());
    let mut acc = 0;
    for &n in hidden {
        off.push(acc);
        acc += 2 * n;
    }
    off
}

/// out[b, p, :] = z_L and trace[b, p, …] = (aᵢ, ω cos(ω zᵢ)) per hidden layer i.
pub fn siren<T: Scalar>(op: &SirenOp, params: &[T], coords: &[T], out: &mut [T], trace: &mut [T]) {
    let w = &op.widths;
    let (n0, nl, p) = (w[0], w[w.len() - 1], op.points);
    let d = SirenOp::params_per_sample(w);
    let h2 = SirenOp::trace_per_point(w);
    let poff = param_offsets(w);
    let toff = trace_offsets(w);
    let omega = T::from_f64(op.omega);
    let widest = w.iter().copied().max().unwrap_or(0);
    out[..op.batch * p * nl]
        .par_chunks_mut(p * nl)
        .zip(trace.par_chunks_mut((p * h2).max(1)))
        .zip(params.par_chunks(d))
        .for_each(|((out_b, trace_b), row)| {
            let mut z = vec![T::default(); p * widest];
            for i in 1..w.len() {
                let (n_in, n_out) = (w[i - 1], w[i]);
                let weight = &row[poff[i - 1]..poff[i - 1] + n_out * n_in];
                let bias = &row[poff[i - 1] + n_out * n_in..poff[i]];
                let z = &mut z[..p * n_out];
                for zp in z.chunks_mut(n_out) {
                    zp.copy_from_slice(bias);
                }
                // z (P × n_out) += a_{i−1} (P × n_in) · Wᵀ.
                if i == 1 {
                    T::gemm(
                        p,
                        n_in,
                        n_out,
                        coords,
                        (n0, 1),
                        weight,
                        (1, n_in),
                        T::from_f64(1.0),
                        z,
                    );
                } else {
                    let a = &trace_b[toff[i - 2]..];
                    T::gemm(
                        p,
                        n_in,
                        n_out,
                        a,
                        (h2, 1),
                        weight,
                        (1, n_in),
                        T::from_f64(1.0),
                        z,
                    );
                }
                if i + 1 == w.len() {
                    out_b.copy_from_slice(&z[..p * nl]);
                } else {
                    for (zp, tp) in z.chunks(n_out).zip(trace_b.chunks_mut(h2)) {
                        let (a, da) = tp[toff[i - 1]..toff[i - 1] + 2 * n_out].split_at_mut(n_out);
                        for ((&zv, av), dv) in zp.iter().zip(a).zip(da) {
                            let (s, c) = (omega * zv).sin_cos();
                            *av = s;
                            *dv = omega * c;
                        }
                    }
                }
            }
        });
}
