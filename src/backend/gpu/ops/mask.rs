//! `mask.wgsl`: y (+)= x ⊙ mask, the mask broadcast over the middle axis (dropout).

use super::{grid, u32_of, Encoded, Shader};
use crate::backend::gpu::kernels::Kernel;
use crate::error::Result;
use crate::plan::MaskOp;

uniform! {
    /// Flags: bit 0 accumulate.
    MaskParams {
        len: u32,
        block: u32,
        inner: u32,
        flags: u32,
        row: u32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
    }
}

/// The shader.
pub const SHADER: Shader = shader!("mask", MaskParams);

/// A mask op.
pub fn encode(m: &MaskOp) -> Result<Encoded> {
    let len = m.outer * m.mid * m.inner;
    let (groups, row) = grid(len)?;
    let p = MaskParams {
        len: u32_of(len, "len")?,
        block: u32_of((m.mid * m.inner).max(1), "block")?,
        inner: u32_of(m.inner.max(1), "inner")?,
        flags: u32::from(m.accumulate),
        row,
        pad0: 0,
        pad1: 0,
        pad2: 0,
    };
    Ok(Encoded::new(
        Kernel::Mask,
        vec![m.x, m.mask, m.y],
        &p,
        groups,
    ))
}
