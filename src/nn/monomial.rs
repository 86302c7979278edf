//! `MonomialLinear`: the Monomial-NFN equivariant linear layer (SPEC §3.2 scale variant, §3.3 sign
//! variant), lowered to contiguous GEMMs over the internal layout (SPEC §3.6).

use rand::Rng;

use crate::error::{Error, Result};
use crate::nn::params::{Init, ParamSet};
use crate::nn::{pack, SpaceBufs};
use crate::plan::PlanBuilder;
use crate::spec::NetworkSpec;

/// Which monomial group the layer is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Variant {
    /// HNPSLinear: equivariant to every nonzero scale (used with ReLU: G^{>0}), SPEC §3.2.
    Scale,
    /// The complete G^{±1} layer: HNPSLinear plus Ω and Ξ (§3.3), and for L = 2 the two extra
    /// weight–weight terms of §3.1 that the reference omits.
    Sign,
}

/// An equivariant linear map between weight-space features with `c_in` and `c_out` channels.
///
/// Parameter names (shapes with F = f·c, F' = f·c' of the layer they touch):
/// `first.{phi (F',F,n0,n0), psi (F',c,n0), gamma (c',F,n0), lambda (c',c)}`,
/// `mid{i}.{phi (F',F), lambda (c',c)}`, `last.{phi (F',F,nL,nL), lambda (c',c,nL,nL), tau (c',nL)}`,
/// sign: `sign.omega (F'_L,c,nL)`, `sign.xi (c',F_L,nL)`, and for L = 2
/// `sign.w1_from_w2 (F'_1,F_2,n2,n0)`, `sign.w2_from_w1 (F'_2,F_1,n0,n2)`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MonomialLinear {
    /// The input networks' spec.
    pub spec: NetworkSpec,
    /// Input channels c.
    pub c_in: usize,
    /// Output channels c'.
    pub c_out: usize,
    /// Group variant.
    pub variant: Variant,
    /// Coefficients.
    #[serde(skip)]
    pub params: ParamSet,
}

impl MonomialLinear {
    /// A zero-initialised layer.
    pub fn zeros(spec: &NetworkSpec, c_in: usize, c_out: usize, variant: Variant) -> Result<Self> {
        spec.require_hidden()?;
        if c_in == 0 || c_out == 0 {
            return Err(Error::Spec(format!(
                "channel counts must be positive, got {c_in} -> {c_out}"
            )));
        }
        let (c, o) = (c_in, c_out);
        let l = spec.num_layers();
        let f = |i: usize| spec.layers[i].f();
        let (n0, nl) = (spec.n_in(), spec.n_out());
        let mut p = ParamSet::default();
        p.add_zeros("first.phi", vec![f(0) * o, f(0) * c, n0, n0]);
        p.add_zeros("first.psi", vec![f(0) * o, c, n0]);
        p.add_zeros("first.gamma", vec![o, f(0) * c, n0]);
        p.add_zeros("first.lambda", vec![o, c]);
        for i in 1..l - 1 {
            p.add_zeros(format!("mid{i}.phi"), vec![f(i) * o, f(i) * c]);
            p.add_zeros(format!("mid{i}.lambda"), vec![o, c]);
        }
        let fl = f(l - 1);
        p.add_zeros("last.phi", vec![fl * o, fl * c, nl, nl]);
        p.add_zeros("last.lambda", vec![o, c, nl, nl]);
        p.add_zeros("last.tau", vec![o, nl]);
        if variant == Variant::Sign {
            p.add_zeros("sign.omega", vec![fl * o, c, nl]);
            p.add_zeros("sign.xi", vec![o, fl * c, nl]);
            if l == 2 {
                p.add_zeros("sign.w1_from_w2", vec![f(0) * o, f(1) * c, nl, n0]);
                p.add_zeros("sign.w2_from_w1", vec![f(1) * o, f(0) * c, n0, nl]);
            }
        }
        Ok(MonomialLinear {
            spec: spec.clone(),
            c_in,
            c_out,
            variant,
            params: p,
        })
    }

    /// A layer initialised with `init` over the coefficient groups of SPEC §7.
    pub fn new(
        spec: &NetworkSpec,
        c_in: usize,
        c_out: usize,
        variant: Variant,
        init: Init,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let mut layer = Self::zeros(spec, c_in, c_out, variant)?;
        let l = spec.num_layers();
        let (y, n) = (true, false);
        let p = &mut layer.params;
        p.init_group(
            &[("first.phi", &[n, y, y, n]), ("first.psi", &[n, y, n])],
            init,
            rng,
        );
        p.init_group(
            &[("first.gamma", &[n, y, y]), ("first.lambda", &[n, y])],
            init,
            rng,
        );
        for i in 1..l - 1 {
            p.init_group(&[(&format!("mid{i}.phi"), &[n, y])], init, rng);
            p.init_group(&[(&format!("mid{i}.lambda"), &[n, y])], init, rng);
        }
        p.init_group(&[("last.phi", &[n, y, y, n])], init, rng);
        p.init_group(
            &[("last.lambda", &[n, y, y, n]), ("last.tau", &[n, n])],
            init,
            rng,
        );
        if variant == Variant::Sign {
            p.init_group(&[("sign.omega", &[n, y, n])], init, rng);
            p.init_group(&[("sign.xi", &[n, y, y])], init, rng);
            if l == 2 {
                p.init_group(&[("sign.w1_from_w2", &[n, y, y, n])], init, rng);
                p.init_group(&[("sign.w2_from_w1", &[n, y, y, n])], init, rng);
            }
        }
        Ok(layer)
    }

    /// Number of scalar coefficients.
    pub fn num_params(&self) -> usize {
        self.params.count()
    }

    /// Appends this layer's GEMMs to a plan; `x` has `c_in` channels, the result `c_out`.
    pub fn emit(&self, pb: &mut PlanBuilder, x: &SpaceBufs, batch: usize) -> Result<SpaceBufs> {
        if x.channels != self.c_in {
            return Err(Error::shape(
                "MonomialLinear input channels",
                &[self.c_in],
                &[x.channels],
            ));
        }
        let spec = &self.spec;
        let l = spec.num_layers();
        let (c, o) = (self.c_in, self.c_out);
        let (n0, nl) = (spec.n_in(), spec.n_out());
        let f = |i: usize| spec.layers[i].f();
        let w: Vec<_> = spec
            .layers
            .iter()
            .map(|s| pb.scratch(batch * s.n_out * s.n_in * s.f() * o))
            .collect();
        let b: Vec<_> = spec
            .layers
            .iter()
            .map(|s| pb.scratch(batch * s.n_out * o))
            .collect();

        // First layer (SPEC §3.2): rows (b, j); X columns (q, n), Y columns (k, m).
        let (fi, fo) = (f(0) * c, f(0) * o);
        let rows = batch * spec.layers[0].n_out;
        let bp = pb.coef(
            &self.params,
            "first.phi",
            pack(n0 * fi, n0 * fo, |r, cc| {
                let (q, n, k, m) = (r / fi, r % fi, cc / fo, cc % fo);
                ((m * fi + n) * n0 + q) * n0 + k
            }),
        );
        pb.gemm(x.w[0], bp, None, w[0], rows, n0 * fi, n0 * fo, false);
        let bp = pb.coef(
            &self.params,
            "first.psi",
            pack(c, n0 * fo, |n, cc| {
                let (k, m) = (cc / fo, cc % fo);
                (m * c + n) * n0 + k
            }),
        );
        pb.gemm(x.b[0], bp, None, w[0], rows, c, n0 * fo, true);
        let bp = pb.coef(
            &self.params,
            "first.gamma",
            pack(n0 * fi, o, |r, m| {
                let (q, n) = (r / fi, r % fi);
                (m * fi + n) * n0 + q
            }),
        );
        pb.gemm(x.w[0], bp, None, b[0], rows, n0 * fi, o, false);
        let bp = pb.coef(&self.params, "first.lambda", transpose(o, c));
        pb.gemm(x.b[0], bp, None, b[0], rows, c, o, true);

        // Middle layers: per-entry channel mixes.
        for i in 1..l - 1 {
            let s = spec.layers[i];
            let (fi, fo) = (f(i) * c, f(i) * o);
            let bp = pb.coef(&self.params, &format!("mid{i}.phi"), transpose(fo, fi));
            pb.gemm(
                x.w[i],
                bp,
                None,
                w[i],
                batch * s.n_out * s.n_in,
                fi,
                fo,
                false,
            );
            let bp = pb.coef(&self.params, &format!("mid{i}.lambda"), transpose(o, c));
            pb.gemm(x.b[i], bp, None, b[i], batch * s.n_out, c, o, false);
        }

        // Last layer: rows (b, k) over the hidden neurons of layer L-1; columns (p, n) -> (j, m).
        let last = l - 1;
        let (fi, fo) = (f(last) * c, f(last) * o);
        let rows = batch * spec.layers[last].n_in;
        let bp = pb.coef(
            &self.params,
            "last.phi",
            pack(nl * fi, nl * fo, |r, cc| {
                let (p, n, j, m) = (r / fi, r % fi, cc / fo, cc % fo);
                ((m * fi + n) * nl + p) * nl + j
            }),
        );
        pb.gemm(x.w[last], bp, None, w[last], rows, nl * fi, nl * fo, false);
        let bp = pb.coef(
            &self.params,
            "last.lambda",
            pack(nl * c, nl * o, |r, cc| {
                let (p, n, j, m) = (r / c, r % c, cc / o, cc % o);
                ((m * c + n) * nl + p) * nl + j
            }),
        );
        let tb = pb.coef(
            &self.params,
            "last.tau",
            pack(1, nl * o, |_, cc| (cc % o) * nl + cc / o),
        );
        pb.gemm(
            x.b[last],
            bp,
            Some(tb),
            b[last],
            batch,
            nl * c,
            nl * o,
            false,
        );

        if self.variant == Variant::Sign {
            // Ω: W'^(L)[·,k] += Ω · b^(L-1)[k]; Ξ: b'^(L-1)[k] += Ξ · W^(L)[·,k] (SPEC §3.3).
            let bp = pb.coef(
                &self.params,
                "sign.omega",
                pack(c, nl * fo, |n, cc| {
                    let (j, m) = (cc / fo, cc % fo);
                    (m * c + n) * nl + j
                }),
            );
            pb.gemm(x.b[last - 1], bp, None, w[last], rows, c, nl * fo, true);
            let bp = pb.coef(
                &self.params,
                "sign.xi",
                pack(nl * fi, o, |r, m| {
                    let (p, n) = (r / fi, r % fi);
                    (m * fi + n) * nl + p
                }),
            );
            pb.gemm(x.w[last], bp, None, b[last - 1], rows, nl * fi, o, true);
            if l == 2 {
                // The L = 2 weight-weight terms of SPEC §3.1, per hidden neuron j of layer 1.
                let (f1i, f1o, f2i, f2o) = (f(0) * c, f(0) * o, f(1) * c, f(1) * o);
                let bp = pb.coef(
                    &self.params,
                    "sign.w1_from_w2",
                    pack(nl * f2i, n0 * f1o, |r, cc| {
                        let (p, n, k, m) = (r / f2i, r % f2i, cc / f1o, cc % f1o);
                        ((m * f2i + n) * nl + p) * n0 + k
                    }),
                );
                pb.gemm(x.w[1], bp, None, w[0], rows, nl * f2i, n0 * f1o, true);
                let bp = pb.coef(
                    &self.params,
                    "sign.w2_from_w1",
                    pack(n0 * f1i, nl * f2o, |r, cc| {
                        let (q, n, j, m) = (r / f1i, r % f1i, cc / f2o, cc % f2o);
                        ((m * f1i + n) * n0 + q) * nl + j
                    }),
                );
                pb.gemm(x.w[0], bp, None, w[1], rows, n0 * f1i, nl * f2o, true);
            }
        }
        Ok(SpaceBufs { w, b, channels: o })
    }
}

/// Indices that transpose a rows×cols row-major matrix (coefficient (out, in) -> GEMM operand
/// (in, out)).
pub(crate) fn transpose(rows: usize, cols: usize) -> Vec<usize> {
    pack(cols, rows, |r, c| c * cols + r)
}
