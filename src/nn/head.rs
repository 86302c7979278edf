//! Dense layers for the MLP head (SPEC §6.1).

use rand::Rng;

use crate::error::{Error, Result};
use crate::nn::monomial::transpose;
use crate::nn::params::ParamSet;
use crate::plan::PlanBuilder;

/// y = x·Wᵀ + b with W of shape (out, in), PyTorch's `Linear` layout.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Dense {
    /// Input features.
    pub n_in: usize,
    /// Output features.
    pub n_out: usize,
    /// `weight` (out, in) and `bias` (out).
    #[serde(skip)]
    pub params: ParamSet,
}

impl Dense {
    /// PyTorch's default init: W, b ~ U(±1/√in) (SPEC §7).
    pub fn new(n_in: usize, n_out: usize, rng: &mut impl Rng) -> Result<Self> {
        if n_in == 0 || n_out == 0 {
            return Err(Error::Spec(format!(
                "dense layer sizes must be positive, got {n_in} -> {n_out}"
            )));
        }
        let mut params = ParamSet::default();
        params.add_zeros("weight", vec![n_out, n_in]);
        params.add_zeros("bias", vec![n_out]);
        let bound = 1.0 / (n_in as f64).sqrt();
        params.init_uniform("weight", bound, rng);
        params.init_uniform("bias", bound, rng);
        Ok(Dense {
            n_in,
            n_out,
            params,
        })
    }

    /// Number of scalar parameters.
    pub fn num_params(&self) -> usize {
        self.params.count()
    }

    /// Appends the GEMM; `x` is (batch, n_in).
    pub fn emit(&self, pb: &mut PlanBuilder, x: usize, batch: usize) -> Result<usize> {
        if pb.len_of(x) != batch * self.n_in {
            return Err(Error::shape(
                "dense input (B, in)",
                &[batch, self.n_in],
                &[pb.len_of(x) / batch.max(1), batch],
            ));
        }
        let w = pb.coef(&self.params, "weight", transpose(self.n_out, self.n_in));
        let b = pb.coef(&self.params, "bias", (0..self.n_out).collect());
        let y = pb.scratch(batch * self.n_out);
        pb.gemm(x, w, Some(b), y, batch, self.n_in, self.n_out, false);
        Ok(y)
    }
}

impl Dense {
    /// Appends the layer on a whole weight space flattened (the MLP baseline on raw weights):
    /// each internal-layout tensor (B, len) meets its own block of columns of W, and the GEMMs
    /// accumulate, so no concatenated copy is made. Column order: weights then biases, each in
    /// the internal layout.
    pub fn emit_space(
        &self,
        pb: &mut PlanBuilder,
        x: &crate::nn::SpaceBufs,
        batch: usize,
    ) -> Result<usize> {
        let bufs: Vec<usize> = x.w.iter().chain(&x.b).copied().collect();
        let total: usize = bufs.iter().map(|&b| pb.len_of(b) / batch.max(1)).sum();
        if total != self.n_in {
            return Err(Error::shape(
                "dense input (flattened weights)",
                &[self.n_in],
                &[total],
            ));
        }
        let b = pb.coef(&self.params, "bias", (0..self.n_out).collect());
        let y = pb.scratch(batch * self.n_out);
        let mut off = 0;
        for (t, &buf) in bufs.iter().enumerate() {
            let len = pb.len_of(buf) / batch;
            let (n_in, n_out) = (self.n_in, self.n_out);
            let w = pb.coef(
                &self.params,
                "weight",
                crate::nn::pack(len, n_out, |r, c| c * n_in + off + r),
            );
            let bias = (t == 0).then_some(b);
            pb.gemm(buf, w, bias, y, batch, len, n_out, t > 0);
            off += len;
        }
        Ok(y)
    }
}
