//! Backend-agnostic model definition: layers, their parameters and initialisation, and how each
//! lowers to plan ops (`plan.rs`).

pub mod baseline;
pub mod dropout;
pub mod edit;
pub mod fourier;
pub mod head;
pub mod inr;
pub mod model;
pub mod monomial;
pub mod params;
pub mod pool;
pub mod posenc;
pub mod stat;

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

/// The coefficient indices of a k×n row-major packed matrix, from `index(row, col)`.
pub(crate) fn pack(k: usize, n: usize, index: impl Fn(usize, usize) -> usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(k * n);
    for r in 0..k {
        for c in 0..n {
            out.push(index(r, c));
        }
    }
    out
}
