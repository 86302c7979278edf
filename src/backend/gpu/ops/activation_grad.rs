//! `activation_grad.wgsl`: dx (+)= dy ⊙ act'(x).

use super::activation::ActParams;
use super::{grid, u32_of, Encoded, Shader};
use crate::backend::gpu::kernels::Kernel;
use crate::error::Result;
use crate::plan::ActivationGradOp;

/// The shader (its uniform is `activation.wgsl`'s).
pub const SHADER: Shader = shader!("activation_grad", ActParams, math);

/// An activation backward op.
pub fn encode(a: &ActivationGradOp) -> Result<Encoded> {
    let (groups, row) = grid(a.len)?;
    let p = ActParams {
        len: u32_of(a.len, "len")?,
        act: a.act.code(),
        row,
        flags: u32::from(a.accumulate),
    };
    let bindings = vec![a.x, a.dy, a.dx];
    Ok(Encoded::new(Kernel::ActivationGrad, bindings, &p, groups))
}
