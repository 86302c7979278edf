//! `siren_grad.wgsl`: a SIREN backward in two phases, per point (0) then per parameter (1).

use super::siren::{self, SirenParams};
use super::{Encoded, Shader};
use crate::backend::gpu::kernels::Kernel;
use crate::error::Result;
use crate::plan::{SirenGradOp, SirenOp};

/// The shader (its uniform is `siren.wgsl`'s).
pub const SHADER: Shader = shader!("siren_grad", SirenParams);

/// Phase `phase` of a SIREN backward op.
pub fn encode(g: &SirenGradOp, phase: u32) -> Result<Encoded> {
    let f = &g.fwd;
    let threads = f.batch
        * if phase == 0 {
            f.points
        } else {
            SirenOp::params_per_sample(&f.widths)
        };
    let flags = u32::from(g.accumulate) | (phase << 1);
    let (p, groups) = siren::params(f, flags, threads)?;
    let bindings = vec![f.params, f.coords, f.trace, g.dout, g.dz, g.dparams];
    Ok(Encoded::new(Kernel::SirenGrad, bindings, &p, groups))
}
