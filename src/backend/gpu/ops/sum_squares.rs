//! `sum_squares.wgsl`: out\[0\] (+)= Σ x², the squared gradient norm, in one workgroup.

use super::{u32_of, Encoded, Shader};
use crate::backend::gpu::kernels::Kernel;
use crate::error::Result;
use crate::plan::SumSquaresOp;

uniform! {
    /// Flags: bit 0 accumulate.
    SumParams {
        len: u32,
        flags: u32,
        pad0: u32,
        pad1: u32,
    }
}

/// The shader.
pub const SHADER: Shader = shader!("sum_squares", SumParams);

/// A sum-of-squares op.
pub fn encode(q: &SumSquaresOp) -> Result<Encoded> {
    let p = SumParams {
        len: u32_of(q.len, "len")?,
        flags: u32::from(q.accumulate),
        pad0: 0,
        pad1: 0,
    };
    Ok(Encoded::new(
        Kernel::SumSquares,
        vec![q.x, q.out],
        &p,
        (1, 1),
    ))
}
