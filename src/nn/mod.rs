//! Backend-agnostic model definition: layers, their parameters and initialisation, and how each
//! lowers to plan ops (`plan.rs`).

pub mod baseline;
pub mod head;
pub mod model;
pub mod monomial;
pub mod params;
pub mod pool;

use crate::plan::BufId;

/// A weight-space feature inside a plan: per layer an internal-layout weight and bias buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct SpaceBufs {
    /// Weight buffers (B, R, S, C·f), see `space::InternalLayout`.
    pub w: Vec<BufId>,
    /// Bias buffers (B, n_out, C).
    pub b: Vec<BufId>,
    /// Channels C.
    pub channels: usize,
}

/// Builds a k×n row-major packed matrix from `value(row, col)`.
pub(crate) fn pack(k: usize, n: usize, value: impl Fn(usize, usize) -> f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(k * n);
    for r in 0..k {
        for c in 0..n {
            out.push(value(r, c));
        }
    }
    out
}
