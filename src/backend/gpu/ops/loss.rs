//! `loss.wgsl`: a loss and its gradient, in two phases: partial sums over many workgroups (0),
//! then one workgroup combining them in a fixed order (1).

use super::{sum_groups, u32_of, Encoded, Shader};
use crate::backend::gpu::kernels::Kernel;
use crate::error::Result;
use crate::plan::{BufId, LossKind, LossOp};

uniform! {
    /// Kind: 0 half sum of squares, 1 MSE, 2 BCE, 3 softmax cross-entropy over `classes`.
    LossParams {
        len: u32,
        kind: u32,
        classes: u32,
        /// 0: partial sums, 1: their combination.
        phase: u32,
        /// Items (elements, or softmax rows) per workgroup of phase 0.
        span: u32,
        /// Workgroups of phase 0: the partial sums phase 1 adds.
        groups: u32,
        pad0: u32,
        pad1: u32,
    }
}

/// The shader.
pub const SHADER: Shader = shader!("loss", LossParams, workgroup);

/// The items phase 0 spreads over its workgroups: elements, or rows for softmax.
pub fn items(l: &LossOp) -> usize {
    match l.kind {
        LossKind::SoftmaxCe { classes } => l.len / classes,
        _ => l.len,
    }
}

/// Phase `phase` of a loss op, with its partial sums in `partials` (`sum_groups` long).
pub fn encode(l: &LossOp, phase: u32, partials: BufId) -> Result<Encoded> {
    let (kind, classes) = match l.kind {
        LossKind::HalfSumSquares => (0, 1),
        LossKind::Mse => (1, 1),
        LossKind::Bce => (2, 1),
        LossKind::SoftmaxCe { classes } => (3, classes),
    };
    let (groups, span) = sum_groups(items(l));
    let p = LossParams {
        len: u32_of(l.len, "len")?,
        kind,
        classes: u32_of(classes, "classes")?,
        phase,
        span: u32_of(span, "span")?,
        groups: u32_of(groups, "groups")?,
        pad0: 0,
        pad1: 0,
    };
    let bindings = vec![
        l.pred,
        l.target.unwrap_or(l.pred),
        l.loss,
        l.dpred,
        partials,
    ];
    let grid = if phase == 0 { p.groups } else { 1 };
    Ok(Encoded::new(Kernel::Loss, bindings, &p, (grid, 1)))
}
