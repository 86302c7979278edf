//! `siren.wgsl`: a batch of SIREN forwards, one invocation per (sample, point).

use super::{grid, u32_of, Encoded, Shader};
use crate::backend::gpu::kernels::Kernel;
use crate::error::{Error, Result};
use crate::plan::SirenOp;

uniform! {
    /// Shared with `siren_grad.wgsl` (flags: bit 0 accumulate, bit 1 phase).
    SirenParams {
        batch: u32,
        points: u32,
        layers: u32,
        d: u32,
        h2: u32,
        row: u32,
        omega: f32,
        flags: u32,
        /// Layer widths n_0 … n_L (a uniform array's stride is 16 bytes, hence vec4s).
        widths: [u32; 8] => "array<vec4<u32>, 2>",
    }
}

/// The shader.
pub const SHADER: Shader = shader!("siren", SirenParams, math);

/// Widest SIREN layer and most layers the per-thread arrays of `siren*.wgsl` hold.
const MAX_WIDTH: usize = 64;
const MAX_LAYERS: usize = 7;
/// Points a SIREN parameter-gradient invocation sums over (lavapipe's loop limit).
const MAX_POINTS: usize = 65_535;

/// A SIREN forward op.
pub fn encode(s: &SirenOp) -> Result<Encoded> {
    let (p, groups) = params(s, 0, s.batch * s.points)?;
    let bindings = vec![s.params, s.coords, s.out, s.trace];
    Ok(Encoded::new(Kernel::Siren, bindings, &p, groups))
}

/// The uniform and grid of a SIREN forward or backward phase over `threads` invocations.
pub(super) fn params(s: &SirenOp, flags: u32, threads: usize) -> Result<(SirenParams, (u32, u32))> {
    let layers = s.widths.len() - 1;
    if layers > MAX_LAYERS || s.widths.iter().any(|&w| w > MAX_WIDTH) || s.points > MAX_POINTS {
        return Err(Error::Spec(format!(
            "the GPU SIREN kernel takes at most {MAX_LAYERS} layers of width at most {MAX_WIDTH} and {MAX_POINTS} points; got widths {:?} and {} points",
            s.widths, s.points
        )));
    }
    let (groups, row) = grid(threads)?;
    let mut widths = [0u32; 8];
    for (w, &n) in widths.iter_mut().zip(&s.widths) {
        *w = u32_of(n, "width")?;
    }
    let p = SirenParams {
        batch: u32_of(s.batch, "batch")?,
        points: u32_of(s.points, "points")?,
        layers: u32_of(layers, "layers")?,
        d: u32_of(SirenOp::params_per_sample(&s.widths), "parameters")?,
        h2: u32_of(SirenOp::trace_per_point(&s.widths), "trace")?,
        row,
        omega: s.omega as f32,
        flags,
        widths,
    };
    Ok((p, groups))
}
