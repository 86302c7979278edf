//! CPU twin of `shaders/siren_grad.wgsl`: the backward pass of a SIREN batch to its per-sample
//! parameters (SPEC §8.4). Per sample: ∂z of every layer over all points (one GEMM per layer
//! through Wᵢ), then ∂Wᵢ = ∂zᵢᵀ·aᵢ₋₁ and ∂bᵢ = Σ_p ∂zᵢ, summed over points in a fixed order.

use rayon::prelude::*;

use super::siren::{param_offsets, trace_offsets};
use crate::plan::{SirenGradOp, SirenOp};
use crate::scalar::Scalar;

/// dparams (+)= ∂loss/∂params given dout = ∂loss/∂out; `dz` is scratch (B, P, Σ_{i≥1} nᵢ).
#[allow(clippy::too_many_arguments)]
pub fn siren_grad<T: Scalar>(
    op: &SirenGradOp,
    params: &[T],
    coords: &[T],
    trace: &[T],
    dout: &[T],
    dz: &mut [T],
    dparams: &mut [T],
) {
    let f = &op.fwd;
    let w = &f.widths;
    let (n0, l, p) = (w[0], w.len() - 1, f.points);
    let d = SirenOp::params_per_sample(w);
    let h2 = SirenOp::trace_per_point(w);
    let s = SirenOp::dz_per_point(w);
    let poff = param_offsets(w);
    let toff = trace_offsets(w);
    // ∂zᵢ sits at column zoff[i − 1] of a point's dz row.
    let zoff: Vec<usize> = (0..l).map(|i| w[1..=i].iter().sum()).collect();
    let widest = w.iter().copied().max().unwrap_or(0);
    let beta = if op.accumulate {
        T::from_f64(1.0)
    } else {
        T::default()
    };
    dparams[..f.batch * d]
        .par_chunks_mut(d)
        .zip(dz.par_chunks_mut(p * s))
        .zip(params.par_chunks(d))
        .zip(trace.par_chunks((p * h2).max(1)))
        .zip(dout.par_chunks(p * w[l]))
        .for_each(|((((grad, dz_b), row), trace_b), dout_b)| {
            for (zp, dp) in dz_b.chunks_mut(s).zip(dout_b.chunks(w[l])) {
                zp[zoff[l - 1]..].copy_from_slice(dp);
            }
            let mut da = vec![T::default(); p * widest];
            for i in (2..=l).rev() {
                let (n_in, n_out) = (w[i - 1], w[i]);
                let weight = &row[poff[i - 1]..poff[i - 1] + n_out * n_in];
                // ∂a_{i−1} (P × n_in) = ∂zᵢ (P × n_out) · Wᵢ.
                let da = &mut da[..p * n_in];
                let dzi = &dz_b[zoff[i - 1]..];
                T::gemm(
                    p,
                    n_out,
                    n_in,
                    dzi,
                    (s, 1),
                    weight,
                    (n_in, 1),
                    T::default(),
                    da,
                );
                for ((zp, tp), dap) in dz_b
                    .chunks_mut(s)
                    .zip(trace_b.chunks(h2))
                    .zip(da.chunks(n_in))
                {
                    let deriv = &tp[toff[i - 2] + n_in..toff[i - 2] + 2 * n_in];
                    for ((z, &g), &dv) in zp[zoff[i - 2]..zoff[i - 2] + n_in]
                        .iter_mut()
                        .zip(dap)
                        .zip(deriv)
                    {
                        *z = g * dv;
                    }
                }
            }
            for i in 1..=l {
                let (n_in, n_out) = (w[i - 1], w[i]);
                let (gw, gb) = grad[poff[i - 1]..poff[i]].split_at_mut(n_out * n_in);
                let dzi = &dz_b[zoff[i - 1]..];
                // ∂Wᵢ (n_out × n_in) = ∂zᵢᵀ · a_{i−1}.
                if i == 1 {
                    T::gemm(n_out, p, n_in, dzi, (1, s), coords, (n0, 1), beta, gw);
                } else {
                    let a = &trace_b[toff[i - 2]..];
                    T::gemm(n_out, p, n_in, dzi, (1, s), a, (h2, 1), beta, gw);
                }
                for (j, g) in gb.iter_mut().enumerate() {
                    let mut acc = T::default();
                    for zp in dz_b.chunks(s) {
                        acc += zp[zoff[i - 1] + j];
                    }
                    *g = if op.accumulate { *g + acc } else { acc };
                }
            }
        });
}
