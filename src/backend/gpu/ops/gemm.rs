//! `gemm.wgsl`: C (+)= op(A)·op(B) (+ bias), in output tiles shaped per GEMM.

use super::{u32_of, Encoded, Epilogue, Shader, MAX_GROUPS};
use crate::backend::gpu::kernels::Kernel;
use crate::backend::gpu::steps::Split;
use crate::error::{Error, Result};
use crate::plan::{BufId, GemmOp, Op};

uniform! {
    /// Flags: bit 0 accumulate, bit 1 bias, bit 2 transpose A, bit 3 transpose B, bit 4 load A
    /// as vec4 (its contiguous dimension is a multiple of 4), bit 5 load B as vec4 (stored k×n
    /// with n a multiple of 4), bit 6 the epilogue's activation gradient accumulates.
    GemmParams {
        m: u32,
        k: u32,
        n: u32,
        flags: u32,
        /// Workgroup z sums k in \[z·k_chunk, min((z + 1)·k_chunk, k)) and writes C at
        /// z·c_chunk + (row·n + col): a long inner dimension is split into chunks summed
        /// afterwards (`steps::Split`), in one dispatch.
        k_chunk: u32,
        c_chunk: u32,
        /// The epilogue's activation (`Activation::code`).
        act: u32,
        pad: u32,
    }
}

/// k per shared tile: splits of k are multiples of it.
pub const KT: usize = 16;

/// Tile shapes (TX threads along columns, four columns each, TY along rows, each owning RM
/// rows: a (RM·TY)×(4·TX) tile per workgroup). The first four serve tall products (`tile`);
/// the last three fit this model's parameter gradients (144×144, 9×144, 144×45, 144×5) with
/// little or no padding (`fitted`).
const TILES: usize = 7;

/// Tall tiles also compiled with each epilogue (the GEMMs it folds into run whole, in them).
const TALL: usize = 4;

/// One pipeline's constants: a tile shape and the epilogue (0 none, 1 activation, 2 activation
/// gradient).
const fn shape(tx: f64, ty: f64, rm: f64, epilogue: f64) -> [(&'static str, f64); 4] {
    [("TX", tx), ("TY", ty), ("RM", rm), ("EPILOGUE", epilogue)]
}

/// The shader, compiled once per tile shape, and the tall tiles again once per epilogue
/// (`with_epilogue`): an override constant, so GEMMs without one run no epilogue code.
pub const SHADER: Shader = Shader {
    variants: &[
        &shape(16.0, 16.0, 8.0, 0.0),
        &shape(16.0, 16.0, 4.0, 0.0),
        &shape(8.0, 32.0, 4.0, 0.0),
        &shape(4.0, 64.0, 2.0, 0.0),
        &shape(12.0, 16.0, 9.0, 0.0),
        &shape(36.0, 4.0, 4.0, 0.0),
        &shape(4.0, 48.0, 3.0, 0.0),
        &shape(16.0, 16.0, 8.0, 1.0),
        &shape(16.0, 16.0, 4.0, 1.0),
        &shape(8.0, 32.0, 4.0, 1.0),
        &shape(4.0, 64.0, 2.0, 1.0),
        &shape(16.0, 16.0, 8.0, 2.0),
        &shape(16.0, 16.0, 4.0, 2.0),
        &shape(8.0, 32.0, 4.0, 2.0),
        &shape(4.0, 64.0, 2.0, 2.0),
    ],
    ..shader!("gemm", GemmParams, math)
};

/// The pipeline of tall tile `variant` (< 4) with `epilogue` (1 activation, 2 gradient).
fn with_epilogue(variant: usize, epilogue: usize) -> usize {
    TILES + (epilogue - 1) * TALL + variant
}

/// The value of the pipeline constant `name` (TX, TY, RM or EPILOGUE) in `variant`.
fn constant(variant: usize, name: &str) -> usize {
    SHADER.variants[variant]
        .iter()
        .find(|(k, _)| *k == name)
        .map_or(0, |&(_, v)| v as usize)
}

/// The output tile `(rows, columns)` of one workgroup in `variant`.
pub fn block(variant: usize) -> (usize, usize) {
    let (tx, ty, rm) = (
        constant(variant, "TX"),
        constant(variant, "TY"),
        constant(variant, "RM"),
    );
    (rm * ty, 4 * tx)
}

/// The variant for an m×n product that gets its parallelism from its rows (tall products, and
/// any GEMM that is not split along k): columns per workgroup as few as n allows (n ≤ 16 or
/// ≤ 32 wastes no lanes on padding columns), and for wide products 128-row tiles where they make
/// enough workgroups to fill a large GPU, else 64. On the H200 these beat tiles that fit 144
/// exactly for tall products (BENCHMARKS.md, eleventh session).
pub fn tile(m: usize, n: usize) -> usize {
    match n {
        0..=16 => 3,
        17..=32 => 2,
        _ if m.div_ceil(128) * n.div_ceil(64) >= 256 => 0,
        _ => 1,
    }
}

/// The variant that fits an m×n product best: the least work counting padding (lanes computing
/// padding are wasted) and the tile's loads from memory (tm + tn values per k for tm·tn
/// outputs, weighed as four multiply-adds each). For products split along k, whose chunks
/// supply the parallelism (parameter gradients Aᵀ·dC: 144×144, 9×144, 144×45 over the batch).
pub fn fitted(m: usize, n: usize) -> usize {
    let cost = |v: usize| {
        let (tm, tn) = block(v);
        let padded = m.max(1).next_multiple_of(tm) * n.max(1).next_multiple_of(tn);
        padded as f64 * (1.0 + 4.0 * (tm + tn) as f64 / (tm * tn) as f64)
    };
    (0..TILES)
        .min_by(|&a, &b| cost(a).total_cmp(&cost(b)))
        .unwrap_or(0)
}

/// Workgroups along x (columns) and y (rows) covering an m×n product's output tiles of
/// `variant`.
pub fn groups(variant: usize, m: usize, n: usize) -> (usize, usize) {
    let (tm, tn) = block(variant);
    (n.div_ceil(tn).max(1), m.div_ceil(tm).max(1))
}

/// A whole GEMM op, in one chunk, in the tall products' tiles, with the activation or
/// activation gradient `then` folded in (`epilogue`); `spare` is bound as the unused
/// epilogue output.
pub fn encode(g: &GemmOp, then: Option<&Op>, spare: BufId) -> Result<Encoded> {
    let mut p = params(g, g.accumulate, g.bias.is_some(), &Split::whole(g.k))?;
    let e = Epilogue::of(then, spare, "GEMM")?;
    p.act = e.act;
    p.flags |= u32::from(e.accumulate) << 6;
    let tall = tile(g.m, g.n);
    let variant = match e.kind {
        0 => tall,
        kind => with_epilogue(tall, kind as usize),
    };
    let input = e.input.unwrap_or(g.b);
    let bindings = vec![g.a, g.b, g.bias.unwrap_or(g.b), g.c, g.a, g.b, e.out, input];
    gridded(g, p, bindings, variant, 1)
}

/// A GEMM with k split by `split`, in tiles of `variant`: chunk z's partial product written
/// (not accumulated, no bias) at z·m·n of `out`.
pub fn encode_split(
    g: &GemmOp,
    split: &Split,
    variant: usize,
    out: BufId,
    spare: BufId,
) -> Result<Encoded> {
    let p = params(g, false, false, split)?;
    gridded(
        g,
        p,
        vec![g.a, g.b, g.b, out, g.a, g.b, spare, g.b],
        variant,
        split.chunks,
    )
}

/// The dispatch: output tiles along x and y, chunks along z.
fn gridded(
    g: &GemmOp,
    p: GemmParams,
    bindings: Vec<BufId>,
    variant: usize,
    chunks: usize,
) -> Result<Encoded> {
    let (gx, gy) = groups(variant, g.m, g.n);
    if [gx, gy, chunks].iter().any(|&v| v > MAX_GROUPS as usize) {
        return Err(Error::Device(format!(
            "GEMM {}x{} in {chunks} chunks exceeds the dispatch limits",
            g.m, g.n
        )));
    }
    let mut e = Encoded::new(Kernel::Gemm, bindings, &p, (gx as u32, gy as u32));
    e.variant = variant;
    e.groups[2] = chunks as u32;
    Ok(e)
}

/// The uniform of a GEMM dispatch whose k is split by `split`.
fn params(g: &GemmOp, accumulate: bool, bias: bool, split: &Split) -> Result<GemmParams> {
    // vec4 loads run along A's contiguous dimension (k chunks start at multiples of 4) and along
    // the rows of B stored k×n; a transposed B is read a scalar at a time (gemm.wgsl's load_b).
    let vec_a = if g.trans_a { g.m } else { g.k } % 4 == 0;
    let vec_b = !g.trans_b && g.n % 4 == 0;
    let flags = u32::from(accumulate)
        | (u32::from(bias) << 1)
        | (u32::from(g.trans_a) << 2)
        | (u32::from(g.trans_b) << 3)
        | (u32::from(vec_a) << 4)
        | (u32::from(vec_b) << 5);
    Ok(GemmParams {
        m: u32_of(g.m, "m")?,
        k: u32_of(g.k, "k")?,
        n: u32_of(g.n, "n")?,
        flags,
        k_chunk: u32_of(split.len, "k")?,
        c_chunk: u32_of(if split.chunks > 1 { g.m * g.n } else { 0 }, "offset")?,
        act: 0,
        pad: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pipeline sets TX, TY, RM and EPILOGUE only (the shader derives the workgroup size
    /// and shared array lengths from them), with RM within the shader's nine accumulators and
    /// rows in whole vec4s (its vec4 loads of a transposed A); each epilogue pipeline is its
    /// tall tile's shape. `tests/shaders.rs` checks each pipeline's threads and workgroup
    /// memory against WebGPU's minimum limits.
    #[test]
    fn every_pipeline_sets_its_four_constants_within_the_shaders_range() {
        for (variant, v) in SHADER.variants.iter().enumerate() {
            let names: Vec<&str> = v.iter().map(|(k, _)| *k).collect();
            assert_eq!(names, ["TX", "TY", "RM", "EPILOGUE"], "{v:?}");
            let (tm, tn) = block(variant);
            assert!((1..=9).contains(&constant(variant, "RM")), "{v:?}");
            assert!(tm % 4 == 0 && tn > 0, "{v:?}");
            if variant < TILES {
                assert_eq!(constant(variant, "EPILOGUE"), 0, "{v:?}");
            }
        }
        assert_eq!(SHADER.variants.len(), TILES + 2 * TALL);
        for e in 1..=2 {
            for v in 0..TALL {
                let w = with_epilogue(v, e);
                assert_eq!((block(w), constant(w, "EPILOGUE")), (block(v), e));
            }
        }
    }

    /// Fitted tiles: the model's parameter gradients 144×144, 144×45, 9×144 and 144×5 get the
    /// tiles made for them (no padding rows; columns padded to 48 or 16 at most), and other
    /// shapes the general tiles where those pad less.
    #[test]
    fn fitted_tiles_cover_the_models_products() {
        for (m, n, tm, tn) in [
            (144, 144, 144, 48),
            (144, 45, 144, 48),
            (9, 144, 16, 144),
            (16, 144, 16, 144),
            (144, 5, 144, 16),
            (160, 160, 64, 64),
            (65_536, 256, 128, 64),
        ] {
            assert_eq!(block(fitted(m, n)), (tm, tn), "{m}×{n}");
        }
    }
}
