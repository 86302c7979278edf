//! `gemm.wgsl`: C (+)= op(A)·op(B) (+ bias), in output tiles shaped per GEMM.

use super::{u32_of, Encoded, Shader, MAX_GROUPS};
use crate::backend::gpu::kernels::Kernel;
use crate::error::{Error, Result};
use crate::plan::{BufId, GemmOp};

uniform! {
    /// Flags: bit 0 accumulate, bit 1 bias, bit 2 transpose A, bit 3 transpose B, bit 4 load A
    /// and bit 5 load B as vec4 (their contiguous dimension is a multiple of 4).
    GemmParams {
        m: u32,
        k: u32,
        n: u32,
        flags: u32,
        /// This dispatch sums k in \[k_begin, k_end) and writes C at c_base + (row·n + col):
        /// long inner dimensions are split into chunks summed afterwards, keeping every
        /// invocation's loop short (lavapipe stops loops after 65,535 iterations).
        k_begin: u32,
        k_end: u32,
        c_base: u32,
        pad: u32,
    }
}

/// The shader, compiled once per tile shape: each thread owns an RM×RN block of C, so a 16×16
/// workgroup covers a (16·RM)×(16·RN) tile.
pub const SHADER: Shader = Shader {
    variants: &[
        &[("RM", 4.0), ("RN", 1.0)],
        &[("RM", 4.0), ("RN", 2.0)],
        &[("RM", 4.0), ("RN", 4.0)],
        &[("RM", 8.0), ("RN", 1.0)],
        &[("RM", 8.0), ("RN", 2.0)],
        &[("RM", 8.0), ("RN", 4.0)],
    ],
    ..shader!("gemm", GemmParams)
};

/// The C block `(RM, RN)` of one thread in `variant`.
pub fn block(variant: usize) -> (usize, usize) {
    let v = SHADER.variants[variant];
    (v[0].1 as usize, v[1].1 as usize)
}

/// The variant for an m×n product: columns per thread as few as n allows (n ≤ 16 or ≤ 32 wastes
/// no lanes on padding columns), rows per thread 8 once m fills enough 128-row tiles to keep
/// the GPU busy, else 4.
pub fn tile(m: usize, n: usize) -> usize {
    let rn = match n {
        0..=16 => 1,
        17..=32 => 2,
        _ => 4,
    };
    let rm = if m >= 4096 { 8 } else { 4 };
    (0..SHADER.variants.len())
        .find(|&v| block(v) == (rm, rn))
        .expect("every (rm, rn) pair is a variant")
}

/// A whole GEMM op.
pub fn encode(g: &GemmOp) -> Result<Encoded> {
    let (p, groups) = params(g, g.accumulate, g.bias.is_some(), 0, g.k, 0)?;
    let bindings = vec![g.a, g.b, g.bias.unwrap_or(g.b), g.c, g.a, g.b];
    Ok(Encoded {
        variant: tile(g.m, g.n),
        ..Encoded::new(Kernel::Gemm, bindings, &p, groups)
    })
}

/// One chunk of a long GEMM: the partial product over k in [k_begin, k_end), written (not
/// accumulated, no bias) at `c_base` of `out`.
pub fn encode_chunk(
    g: &GemmOp,
    k_begin: usize,
    k_end: usize,
    out: BufId,
    c_base: usize,
) -> Result<Encoded> {
    let (p, groups) = params(g, false, false, k_begin, k_end, c_base)?;
    Ok(Encoded {
        variant: tile(g.m, g.n),
        ..Encoded::new(Kernel::Gemm, vec![g.a, g.b, g.b, out, g.a, g.b], &p, groups)
    })
}

/// The uniform and grid of a GEMM dispatch over k in [k_begin, k_end), writing at `c_base`.
fn params(
    g: &GemmOp,
    accumulate: bool,
    bias: bool,
    k_begin: usize,
    k_end: usize,
    c_base: usize,
) -> Result<(GemmParams, (u32, u32))> {
    // vec4 loads run along each operand's contiguous dimension; k chunks start at multiples of 4.
    let vec_a = if g.trans_a { g.m } else { g.k } % 4 == 0;
    let vec_b = if g.trans_b { g.k } else { g.n } % 4 == 0;
    let flags = u32::from(accumulate)
        | (u32::from(bias) << 1)
        | (u32::from(g.trans_a) << 2)
        | (u32::from(g.trans_b) << 3)
        | (u32::from(vec_a) << 4)
        | (u32::from(vec_b) << 5);
    let (rm, rn) = block(tile(g.m, g.n));
    let gx = g.n.div_ceil(16 * rn);
    let gy = g.m.div_ceil(16 * rm);
    if gx > MAX_GROUPS as usize || gy > MAX_GROUPS as usize {
        return Err(Error::Device(format!(
            "GEMM {}x{} exceeds the dispatch limits",
            g.m, g.n
        )));
    }
    let p = GemmParams {
        m: u32_of(g.m, "m")?,
        k: u32_of(g.k, "k")?,
        n: u32_of(g.n, "n")?,
        flags,
        k_begin: u32_of(k_begin, "k")?,
        k_end: u32_of(k_end, "k")?,
        c_base: u32_of(c_base, "offset")?,
        pad: 0,
    };
    Ok((p, (gx.max(1) as u32, gy.max(1) as u32)))
}
