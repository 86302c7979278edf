//! Invariant pools (SPEC §4.2, §5.3): entry normalisation followed by means over hidden axes.

use rand::Rng;

use crate::error::{Error, Result};
use crate::nn::params::ParamSet;
use crate::nn::SpaceBufs;
use crate::plan::{Norm, Op, PlanBuilder, PoolOp};
use crate::spec::NetworkSpec;

/// How each entry vector is normalised before averaging (SPEC §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PoolMode {
    /// Plain means (HNPPool / NPPool): permutation-invariant only.
    Mean,
    /// x / ‖x‖₁ (every tensor; see `InvariantPool::reference_l1`).
    L1,
    /// x / ‖x‖₂.
    L2,
    /// (x / ‖x‖₂)², also sign-invariant.
    L2Square,
    /// γ ⊙ x/‖x‖₂ + β with learned γ, β (the paper's models).
    ParamMulL2,
}

impl PoolMode {
    /// Parses the reference's `mode_pooling` names.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "L1" => PoolMode::L1,
            "L2" => PoolMode::L2,
            "L2_square" => PoolMode::L2Square,
            "param_mul_L2" => PoolMode::ParamMulL2,
            "mean" => PoolMode::Mean,
            _ => return None,
        })
    }
}

/// Which hidden axes are averaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PoolAxes {
    /// HNPS/HNP: first weight keeps its input axis, last weight its output axis, last bias is raw.
    Hidden,
    /// NP: every weight and bias averaged over all its neurons.
    All,
}

/// An invariant pool producing (B, C, F) features.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InvariantPool {
    /// The input networks' spec.
    pub spec: NetworkSpec,
    /// Channels C of the pooled features.
    pub channels: usize,
    /// Normalisation mode.
    pub mode: PoolMode,
    /// Averaged axes.
    pub axes: PoolAxes,
    /// Reproduce the reference's L1 quirk: L1 only for conv weights, L2 for dense weights and
    /// biases (SPEC §4.1). Off by default: L1 means L1 everywhere.
    pub reference_l1: bool,
    /// Norm clamp ε: x / max(‖x‖, ε). The reference's 1e-12 (the default) makes entries with
    /// tiny nonzero norms (dead units whose weights decayed to ~1e-20) scale-dependent; 0 gives
    /// the exact normalisation, invariant for every nonzero entry.
    pub eps: f64,
    /// γ/β per tensor for `ParamMulL2`: `gamma_w{i}`, `beta_w{i}` (C·f_i), `gamma_b{i}`, `beta_b{i}` (C).
    #[serde(skip)]
    pub params: ParamSet,
}

impl InvariantPool {
    /// A pool; `ParamMulL2` parameters start at γ = 1, β = 0.
    pub fn new(
        spec: &NetworkSpec,
        channels: usize,
        mode: PoolMode,
        axes: PoolAxes,
    ) -> Result<Self> {
        spec.require_hidden()?;
        if channels == 0 {
            return Err(Error::Spec("pool channels must be positive".into()));
        }
        if axes == PoolAxes::All && mode != PoolMode::Mean {
            return Err(Error::Spec(
                "the NP pool (all axes) has no normalisation modes".into(),
            ));
        }
        let mut params = ParamSet::default();
        if mode == PoolMode::ParamMulL2 {
            for (i, l) in spec.layers.iter().enumerate() {
                params.add_zeros(format!("gamma_w{i}"), vec![channels * l.f()]);
                params.add_zeros(format!("beta_w{i}"), vec![channels * l.f()]);
                // The last bias is pooled raw; its γ/β exist (as in the reference) but are unused.
                params.add_zeros(format!("gamma_b{i}"), vec![channels]);
                params.add_zeros(format!("beta_b{i}"), vec![channels]);
            }
        }
        let mut pool = InvariantPool {
            spec: spec.clone(),
            channels,
            mode,
            axes,
            reference_l1: false,
            eps: crate::plan::NORM_EPS,
            params,
        };
        for i in 0..spec.num_layers() {
            for name in [format!("gamma_w{i}"), format!("gamma_b{i}")] {
                if let Some(t) = pool.params.get(&name) {
                    let ones = crate::tensor::Tensor::new(t.shape.clone(), vec![1.0; t.len()])?;
                    pool.params.set(&name, ones)?;
                }
            }
        }
        Ok(pool)
    }

    /// γ, β drawn i.i.d. N(0, 1) as in the reference (SPEC §7).
    pub fn randomize(&mut self, rng: &mut impl Rng) {
        let names: Vec<String> = self.params.iter().map(|(n, _)| n.to_string()).collect();
        for n in names {
            self.params.init_standard_normal(&n, rng);
        }
    }

    /// Per-channel output width F (SPEC §4.2, §5.3).
    pub fn width(&self) -> usize {
        self.pieces().iter().map(|p| p.s * p.f).sum()
    }

    /// Output features C·F.
    pub fn out_features(&self) -> usize {
        self.channels * self.width()
    }

    /// One entry per pooled tensor, in output order (W_0, b_0, W_1, b_1, …).
    fn pieces(&self) -> Vec<Piece> {
        let l = self.spec.num_layers();
        let mut out = Vec::new();
        for (i, s) in self.spec.layers.iter().enumerate() {
            let (r, ss) = match (self.axes, i) {
                (PoolAxes::All, _) => (s.n_out * s.n_in, 1),
                (PoolAxes::Hidden, 0) => (s.n_out, s.n_in),
                (PoolAxes::Hidden, i) if i + 1 == l => (s.n_in, s.n_out),
                _ => (s.n_out * s.n_in, 1),
            };
            out.push(Piece {
                layer: i,
                bias: false,
                r,
                s: ss,
                f: s.f(),
                conv: s.conv,
            });
            let raw_last = self.axes == PoolAxes::Hidden && i + 1 == l;
            let (r, ss) = if raw_last { (1, s.n_out) } else { (s.n_out, 1) };
            out.push(Piece {
                layer: i,
                bias: true,
                r,
                s: ss,
                f: 1,
                conv: false,
            });
        }
        out
    }

    /// Number of scalar parameters (including the unused last-bias γ/β, as the reference counts them).
    pub fn num_params(&self) -> usize {
        self.params.count()
    }

    /// Appends the pool ops; returns the (B, C, F) output buffer.
    pub fn emit(&self, pb: &mut PlanBuilder, x: &SpaceBufs, batch: usize) -> Result<usize> {
        if x.channels != self.channels {
            return Err(Error::shape(
                "pool input channels",
                &[self.channels],
                &[x.channels],
            ));
        }
        let width = self.width();
        let out = pb.scratch(batch * self.channels * width);
        let l = self.spec.num_layers();
        let mut offset = 0;
        for piece in self.pieces() {
            let raw = piece.bias && piece.layer + 1 == l && self.axes == PoolAxes::Hidden;
            let norm = match self.mode {
                _ if raw => Norm::None,
                PoolMode::Mean => Norm::None,
                PoolMode::L1 if self.reference_l1 && !piece.conv => Norm::L2,
                PoolMode::L1 => Norm::L1,
                PoolMode::L2 | PoolMode::L2Square | PoolMode::ParamMulL2 => Norm::L2,
            };
            let (gamma, beta) = if self.mode == PoolMode::ParamMulL2 && !raw {
                let tag = if piece.bias { "b" } else { "w" };
                let (g, b) = (
                    format!("gamma_{tag}{}", piece.layer),
                    format!("beta_{tag}{}", piece.layer),
                );
                let all = (0..self.channels * piece.f).collect::<Vec<_>>();
                let g = pb.coef(&self.params, &g, all.clone());
                let b = pb.coef(&self.params, &b, all);
                (Some(g), Some(b))
            } else {
                (None, None)
            };
            let src = if piece.bias {
                x.b[piece.layer]
            } else {
                x.w[piece.layer]
            };
            pb.push(Op::Pool(PoolOp {
                x: src,
                out,
                gamma,
                beta,
                batch,
                r: piece.r,
                s: piece.s,
                channels: self.channels,
                f: piece.f,
                norm,
                eps: self.eps,
                square: self.mode == PoolMode::L2Square && !raw,
                width,
                offset,
            }));
            offset += piece.s * piece.f;
        }
        Ok(out)
    }
}

struct Piece {
    layer: usize,
    bias: bool,
    r: usize,
    s: usize,
    f: usize,
    conv: bool,
}
