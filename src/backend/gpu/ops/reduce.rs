//! `reduce.wgsl`: strided sums and broadcasts, y (+)= alpha · Σ_r x.

use super::{grid, u32_of, Encoded, Shader, MAX_GROUPS, WG};
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
        /// The tiled pipeline's outputs k per workgroup, and tiles per (a, s).
        k_tile: u32,
        k_tiles: u32,
    }
}

/// The shader: one thread per output, or (TILED) one workgroup per tile of outputs.
pub const SHADER: Shader = Shader {
    variants: &[&[("TILED", 0.0)], &[("TILED", 1.0)]],
    ..shader!("reduce", ReduceParams, workgroup)
};

/// Fewer outputs than this over at least [`TILED_TERMS`] terms take the tiled pipeline: one
/// thread per output would leave most of a large GPU idle, each thread adding a long run.
const TILED_OUTPUTS: usize = 4096;
/// Fewest terms a sum takes the tiled pipeline for.
const TILED_TERMS: usize = 64;
/// Most outputs k in one tile: its 256 threads are k_tile outputs times 256 / k_tile lanes.
const MAX_K_TILE: usize = 32;

/// The outputs k per workgroup when `r` takes the tiled pipeline: a power of two covering K,
/// at most [`MAX_K_TILE`], so 256 / k_tile ≥ 8 lanes share each output's terms.
pub fn k_tile(r: &ReduceOp) -> Option<usize> {
    let outputs = r.outer * r.mid * r.inner;
    (outputs > 0 && outputs < TILED_OUTPUTS && r.r >= TILED_TERMS)
        .then(|| r.inner.next_power_of_two().min(MAX_K_TILE))
}

/// Workgroups per chunk of the tiled pipeline (one per tile of `k_tile` outputs).
pub fn tiles(r: &ReduceOp, k_tile: usize) -> usize {
    r.outer * r.mid * r.inner.div_ceil(k_tile)
}

/// A strided sum with its terms split by `split`: chunk z writes its partial sums at
/// z·outer·mid·inner of y. The pipeline follows the shape ([`k_tile`]).
pub fn encode(r: &ReduceOp, split: &Split) -> Result<Encoded> {
    let tile = k_tile(r);
    let (groups, row) = match tile {
        Some(kt) => grid(tiles(r, kt) * WG as usize)?,
        None => grid(r.outer * r.mid * r.inner)?,
    };
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
        k_tile: tile.unwrap_or(1) as u32,
        k_tiles: u32_of(r.inner.div_ceil(tile.unwrap_or(1)), "k tiles")?,
    };
    let mut e = Encoded::new(Kernel::Reduce, vec![r.x, r.y], &p, groups);
    e.variant = usize::from(tile.is_some());
    if split.chunks > MAX_GROUPS as usize {
        return Err(Error::Device(format!(
            "a sum of {} terms in {} chunks exceeds the dispatch limits",
            r.r, split.chunks
        )));
    }
    e.groups[2] = split.chunks as u32;
    Ok(e)
}
