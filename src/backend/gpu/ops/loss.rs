//! `loss.wgsl`: a loss and its gradient, in one workgroup.

use super::{u32_of, Encoded, Shader};
use crate::backend::gpu::kernels::Kernel;
use crate::error::Result;
use crate::plan::{LossKind, LossOp};

uniform! {
    /// Kind: 0 half sum of squares, 1 MSE, 2 BCE, 3 softmax cross-entropy over `classes`.
    LossParams {
        len: u32,
        kind: u32,
        classes: u32,
        pad: u32,
    }
}

/// The shader.
pub const SHADER: Shader = shader!("loss", LossParams);

/// A loss op.
pub fn encode(l: &LossOp) -> Result<Encoded> {
    let (kind, classes) = match l.kind {
        LossKind::HalfSumSquares => (0, 1),
        LossKind::Mse => (1, 1),
        LossKind::Bce => (2, 1),
        LossKind::SoftmaxCe { classes } => (3, classes),
    };
    let p = LossParams {
        len: u32_of(l.len, "len")?,
        kind,
        classes: u32_of(classes, "classes")?,
        pad: 0,
    };
    let bindings = vec![l.pred, l.target.unwrap_or(l.pred), l.loss, l.dpred];
    Ok(Encoded::new(Kernel::Loss, bindings, &p, (1, 1)))
}
