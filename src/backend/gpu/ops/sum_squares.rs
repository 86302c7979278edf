//! `sum_squares.wgsl`: out\[0\] (+)= Σ x², the squared gradient norm, in two phases: partial
//! sums over many workgroups (0), then one workgroup combining them in a fixed order (1).

use super::{sum_groups, u32_of, Encoded, Shader};
use crate::backend::gpu::kernels::Kernel;
use crate::error::Result;
use crate::plan::{BufId, SumSquaresOp};

uniform! {
    /// Flags: bit 0 accumulate, bit 1 phase.
    SumParams {
        len: u32,
        flags: u32,
        /// Elements per workgroup of phase 0.
        span: u32,
        /// Workgroups of phase 0: the partial sums phase 1 adds.
        groups: u32,
    }
}

/// The shader.
pub const SHADER: Shader = shader!("sum_squares", SumParams, workgroup);

/// Phase `phase` of a sum-of-squares op, with its partial sums in `partials` (`sum_groups`
/// long).
pub fn encode(q: &SumSquaresOp, phase: u32, partials: BufId) -> Result<Encoded> {
    let (groups, span) = sum_groups(q.len);
    let p = SumParams {
        len: u32_of(q.len, "len")?,
        flags: u32::from(q.accumulate) | (phase << 1),
        span: u32_of(span, "span")?,
        groups: u32_of(groups, "groups")?,
    };
    let grid = if phase == 0 { p.groups } else { 1 };
    Ok(Encoded::new(
        Kernel::SumSquares,
        vec![q.x, q.out, partials],
        &p,
        (grid, 1),
    ))
}
