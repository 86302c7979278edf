//! `adam.wgsl`: one Adam/AdamW step of a parameter buffer.

use super::{grid, u32_of, Encoded, Shader};
use crate::backend::gpu::kernels::Kernel;
use crate::error::Result;
use crate::plan::AdamOp;

uniform! {
    /// Flags: bit 0 clip by the gradient norm, bit 1 decoupled weight decay (AdamW).
    AdamParams {
        len: u32,
        row: u32,
        flags: u32,
        pad: u32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        max_norm: f32,
        pad1: f32,
        pad2: f32,
        pad3: f32,
    }
}

/// The shader.
pub const SHADER: Shader = shader!("adam", AdamParams);

/// An Adam op.
pub fn encode(a: &AdamOp) -> Result<Encoded> {
    let (groups, row) = grid(a.len)?;
    let p = AdamParams {
        len: u32_of(a.len, "len")?,
        row,
        flags: u32::from(a.norm_sq.is_some()) | (u32::from(a.decoupled) << 1),
        pad: 0,
        beta1: a.beta1 as f32,
        beta2: a.beta2 as f32,
        eps: a.eps as f32,
        weight_decay: a.weight_decay as f32,
        max_norm: a.max_norm as f32,
        pad1: 0.0,
        pad2: 0.0,
        pad3: 0.0,
    };
    let bindings = vec![
        a.grad,
        a.hyper,
        a.norm_sq.unwrap_or(a.hyper),
        a.param,
        a.m,
        a.v,
    ];
    Ok(Encoded::new(Kernel::Adam, bindings, &p, groups))
}
