//! `pool_grad.wgsl`: the backward of one pool piece.

use super::pool::{self, PoolParams};
use super::{grid, Encoded, Shader};
use crate::backend::gpu::kernels::Kernel;
use crate::error::Result;
use crate::plan::{BufId, PoolGradOp};

/// The shader (its uniform is `pool.wgsl`'s).
pub const SHADER: Shader = shader!("pool_grad", PoolParams);

/// A pool backward op; `spare` stands in for the γ and β row buffers of a piece without affine.
pub fn encode(g: &PoolGradOp, spare: BufId) -> Result<Encoded> {
    let q = &g.fwd;
    let (groups, row) = grid(q.batch * q.r * q.s)?;
    let flags = pool::flags(q) | (u32::from(g.accumulate) << 4);
    let p = pool::params(q, flags, row)?;
    let (gr, br) = g.affine_rows.unwrap_or((spare, spare));
    let bindings = vec![q.x, q.gamma.unwrap_or(q.x), g.dout, g.dx, gr, br];
    Ok(Encoded::new(Kernel::PoolGrad, bindings, &p, groups))
}
