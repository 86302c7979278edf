//! `reduce.wgsl`: strided sums and broadcasts, y (+)= alpha · Σ_r x.

use super::{grid, u32_of, Encoded, Shader, MAX_GROUPS};
use crate::backend::gpu::kernels::Kernel;
use crate::backend::gpu::steps::Split;
use crate::error::{Error, Result};
use crate::plan::ReduceOp;

uniform! {
    /// Strides of x (xa, xs, xr) and y (ya, ys), and the offsets a chunk reads and writes at.
    ReduceParams {
        outer: u32,
        mid: u32,
        inner: u32,
        r: u32,
        xa: u32,
        xs: u32,
        xr: u32,
        ya: u32,
        ys: u32,
        alpha: f32,
        flags: u32,
        row: u32,
        /// Terms per chunk and y's offset per chunk of a split sum (`steps::Split`).
        r_chunk: u32,
        y_chunk: u32,
        pad0: u32,
        pad1: u32,
    }
}

/// The shader.
pub const SHADER: Shader = shader!("reduce", ReduceParams);

/// A strided sum with its terms split by `split`: chunk z writes its partial sums at
/// z·outer·mid·inner of y.
pub fn encode(r: &ReduceOp, split: &Split) -> Result<Encoded> {
    let (groups, row) = grid(r.outer * r.mid * r.inner)?;
    let [xa, xs, xr] = r.x_strides;
    let [ya, ys] = r.y_strides;
    let p = ReduceParams {
        outer: u32_of(r.outer, "outer")?,
        mid: u32_of(r.mid, "mid")?,
        inner: u32_of(r.inner, "inner")?,
        r: u32_of(r.r, "r")?,
        xa: u32_of(xa, "xa")?,
        xs: u32_of(xs, "xs")?,
        xr: u32_of(xr, "xr")?,
        ya: u32_of(ya, "ya")?,
        ys: u32_of(ys, "ys")?,
        alpha: r.alpha as f32,
        flags: u32::from(r.accumulate),
        row,
        r_chunk: u32_of(split.len, "r")?,
        y_chunk: u32_of(r.outer * r.mid * r.inner, "offset")?,
        pad0: 0,
        pad1: 0,
    };
    let mut e = Encoded::new(Kernel::Reduce, vec![r.x, r.y], &p, groups);
    if split.chunks > MAX_GROUPS as usize {
        return Err(Error::Device(format!(
            "a sum of {} terms in {} chunks exceeds the dispatch limits",
            r.r, split.chunks
        )));
    }
    e.groups[2] = split.chunks as u32;
    Ok(e)
}
