//! `stat.wgsl`: the STATNN statistics of each (sample, channel), one workgroup each.

use super::{u32_of, Encoded, Shader, MAX_GROUPS};
use crate::backend::gpu::kernels::Kernel;
use crate::error::{Error, Result};
use crate::plan::StatOp;

uniform! {
    /// `row` is the grid's x extent (workgroups per grid row).
    StatParams {
        batch: u32,
        m: u32,
        channels: u32,
        f: u32,
        width: u32,
        offset: u32,
        row: u32,
        pad: u32,
    }
}

/// The shader.
pub const SHADER: Shader = shader!("stat", StatParams);

/// A statistics op: one workgroup per (b, c), split over y past the x limit.
pub fn encode(q: &StatOp) -> Result<Encoded> {
    let groups = q.batch * q.channels;
    let gx = groups.clamp(1, MAX_GROUPS as usize);
    let gy = groups.div_ceil(gx).max(1);
    if gy > MAX_GROUPS as usize {
        return Err(Error::Device(format!(
            "{groups} workgroups exceed the dispatch limits"
        )));
    }
    let p = StatParams {
        batch: u32_of(q.batch, "batch")?,
        m: u32_of(q.m, "m")?,
        channels: u32_of(q.channels, "channels")?,
        f: u32_of(q.f, "f")?,
        width: u32_of(q.width, "width")?,
        offset: u32_of(q.offset, "offset")?,
        row: u32_of(gx, "row")?,
        pad: 0,
    };
    let groups = (gx as u32, gy as u32);
    Ok(Encoded::new(Kernel::Stat, vec![q.x, q.out], &p, groups))
}
