//! `activation.wgsl`: y = act(x) elementwise.

use super::{grid, u32_of, Encoded, Shader};
use crate::backend::gpu::kernels::Kernel;
use crate::error::Result;
use crate::plan::ActivationOp;

uniform! {
    /// Shared with `activation_grad.wgsl`, whose accumulate flag is bit 0 of `flags`.
    ActParams {
        len: u32,
        act: u32,
        row: u32,
        flags: u32,
    }
}

/// The shader.
pub const SHADER: Shader = shader!("activation", ActParams, math);

/// An activation op.
pub fn encode(a: &ActivationOp) -> Result<Encoded> {
    let (groups, row) = grid(a.len)?;
    let p = ActParams {
        len: u32_of(a.len, "len")?,
        act: a.act.code(),
        row,
        flags: 0,
    };
    Ok(Encoded::new(Kernel::Activation, vec![a.x, a.y], &p, groups))
}
