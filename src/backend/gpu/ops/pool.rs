//! `pool.wgsl`: one invariant-pool piece (normalise each entry vector, then average).

use super::{grid, u32_of, Encoded, Shader, WG};
use crate::backend::gpu::kernels::Kernel;
use crate::error::Result;
use crate::plan::{Norm, PoolOp};

uniform! {
    /// Shared with `pool_grad.wgsl`. Flags: norm (bits 0-1), square, affine, and in the backward
    /// accumulate (bit 4).
    PoolParams {
        batch: u32,
        r: u32,
        s: u32,
        e: u32,
        f: u32,
        width: u32,
        offset: u32,
        flags: u32,
        /// Threads per entry vector in `pool_grad.wgsl` (a power of two, at most 256); the
        /// forward gives each output column a whole workgroup and leaves it 0.
        lanes: u32,
        /// ε of the norm clamp, as f32 bits.
        eps_bits: u32,
        /// The activation of `pool_grad.wgsl`'s epilogue (`Activation::code`).
        act: u32,
        pad: u32,
    }
}

/// The shader.
pub const SHADER: Shader = shader!("pool", PoolParams);

/// A pool op: one workgroup per output column (b, s).
pub fn encode(q: &PoolOp) -> Result<Encoded> {
    let (groups, _) = grid(q.batch * q.s * WG as usize)?;
    let p = params(q, flags(q), 0)?;
    let bindings = vec![q.x, q.gamma.unwrap_or(q.x), q.beta.unwrap_or(q.x), q.out];
    Ok(Encoded::new(Kernel::Pool, bindings, &p, groups))
}

/// The flags the forward and backward share: norm (bits 0-1), square, affine.
pub(super) fn flags(q: &PoolOp) -> u32 {
    let norm = match q.norm {
        Norm::None => 0,
        Norm::L1 => 1,
        Norm::L2 => 2,
    };
    norm | (u32::from(q.square) << 2) | (u32::from(q.gamma.is_some()) << 3)
}

/// The uniform of a pool piece with these flags and threads per entry vector.
pub(super) fn params(q: &PoolOp, flags: u32, lanes: u32) -> Result<PoolParams> {
    Ok(PoolParams {
        batch: u32_of(q.batch, "batch")?,
        r: u32_of(q.r, "r")?,
        s: u32_of(q.s, "s")?,
        e: u32_of(q.channels * q.f, "e")?,
        f: u32_of(q.f, "f")?,
        width: u32_of(q.width, "width")?,
        offset: u32_of(q.offset, "offset")?,
        flags,
        lanes,
        eps_bits: (q.eps as f32).to_bits(),
        act: 0,
        pad: 0,
    })
}
