//! `pool_grad.wgsl`: the backward of one pool piece, a segment of threads per entry vector.

use super::pool::{self, PoolParams};
use super::{grid, u32_of, Encoded, Epilogue, Shader, WG};
use crate::backend::gpu::kernels::Kernel;
use crate::error::{Error, Result};
use crate::plan::{BufId, Op, PoolGradOp};

/// The shader (its uniform is `pool.wgsl`'s), compiled without and with the activation
/// gradient epilogue (pipeline constant EPILOGUE 0 and 2, as in `gemm.wgsl`).
pub const SHADER: Shader = Shader {
    variants: &[&[("EPILOGUE", 0.0)], &[("EPILOGUE", 2.0)]],
    ..shader!("pool_grad", PoolParams, workgroup, math)
};

/// A pool backward op; an affine piece writes its per-entry ĝ ⊙ u rows to `entry_rows`
/// (`steps::Step::PoolGrad`), and `spare` stands in for the row buffers a piece does not use
/// and the epilogue's output when there is no activation gradient `then` to fold in.
pub fn encode(
    g: &PoolGradOp,
    spare: BufId,
    entry_rows: Option<BufId>,
    then: Option<&Op>,
) -> Result<Encoded> {
    let q = &g.fwd;
    // Threads per entry vector: its length rounded up to a power of two, at most a workgroup,
    // so short entries share a workgroup and long ones loop E / 256 times at most.
    let lanes = (q.channels * q.f).next_power_of_two().min(WG as usize);
    let (groups, _) = grid(q.batch * q.r * q.s * lanes)?;
    let flags = pool::flags(q) | (u32::from(g.accumulate) << 4);
    let mut p = pool::params(q, flags, u32_of(lanes, "lanes")?)?;
    let e = Epilogue::of(then, spare, "pool gradient")?;
    if e.kind == 1 {
        return Err(Error::Spec(
            "an activation cannot follow a pool gradient in its dispatch".into(),
        ));
    }
    p.act = e.act;
    p.flags |= u32::from(e.accumulate) << 5;
    let gr = entry_rows.unwrap_or(spare);
    let br = g.affine_rows.map_or(spare, |(_, b)| b);
    if g.affine_rows.is_some() != entry_rows.is_some() {
        return Err(Error::Spec(
            "an affine pool gradient runs with its per-entry rows, others without".into(),
        ));
    }
    let input = e.input.unwrap_or(q.x);
    let bindings = vec![
        q.x,
        q.gamma.unwrap_or(q.x),
        g.dout,
        g.dx,
        gr,
        br,
        e.out,
        input,
    ];
    let mut encoded = Encoded::new(Kernel::PoolGrad, bindings, &p, groups);
    encoded.variant = usize::from(e.kind == 2);
    Ok(encoded)
}
