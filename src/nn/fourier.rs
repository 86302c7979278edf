//! Gaussian Fourier features (SPEC §6.2, §6.3): every entry's channel vector x ∈ R^C becomes
//! [sin(2π x·B), cos(2π x·B)] with a fixed B ∈ R^{C×m} ~ N(0, σ²), so 2m channels. Lowered per
//! tensor to one GEMM with the constant [2πB, 2πB] and bias [0, π/2] followed by sin
//! (cos t = sin(t + π/2)), so it runs on both backends and differentiates like any GEMM.

use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::error::{Error, Result};
use crate::nn::SpaceBufs;
use crate::plan::{Activation, PlanBuilder};
use crate::space::InternalLayout;
use crate::spec::NetworkSpec;

/// Fixed (untrained) Gaussian Fourier features.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FourierFeatures {
    /// Input channels C.
    pub c_in: usize,
    /// Frequencies m (output channels 2m).
    pub m: usize,
    /// The projection B (C × m), row-major.
    pub b: Vec<f64>,
}

impl FourierFeatures {
    /// B ~ N(0, σ²) with `m` frequencies.
    pub fn new(c_in: usize, m: usize, sigma: f64, rng: &mut impl Rng) -> Result<Self> {
        if c_in == 0 || m == 0 || !(sigma.is_finite() && sigma > 0.0) {
            return Err(Error::Spec(format!(
                "Fourier features need channels ≥ 1, frequencies ≥ 1 and σ > 0 (got {c_in}, {m}, {sigma})"
            )));
        }
        let normal = Normal::new(0.0, sigma).map_err(|e| Error::Spec(format!("σ {sigma}: {e}")))?;
        let b = (0..c_in * m).map(|_| normal.sample(rng)).collect();
        Ok(FourierFeatures { c_in, m, b })
    }

    /// Output channels 2m.
    pub fn c_out(&self) -> usize {
        2 * self.m
    }

    /// Appends the features of every weight and bias of `x`.
    pub fn emit(
        &self,
        pb: &mut PlanBuilder,
        spec: &NetworkSpec,
        x: &SpaceBufs,
        batch: usize,
    ) -> Result<SpaceBufs> {
        if x.channels != self.c_in {
            return Err(Error::shape(
                "Fourier feature input channels",
                &[self.c_in],
                &[x.channels],
            ));
        }
        let two_pi = 2.0 * std::f64::consts::PI;
        let mut proj = Vec::with_capacity(self.c_in * 2 * self.m);
        for row in self.b.chunks(self.m) {
            proj.extend(row.iter().map(|v| two_pi * v));
            proj.extend(row.iter().map(|v| two_pi * v));
        }
        let w = pb.param(proj);
        let mut shift = vec![0.0; self.m];
        shift.extend(std::iter::repeat_n(std::f64::consts::FRAC_PI_2, self.m));
        let bias = pb.param(shift);
        let mut apply = |buf: usize, rows: usize| {
            let y = pb.scratch(rows * 2 * self.m);
            pb.gemm(buf, w, Some(bias), y, rows, self.c_in, 2 * self.m, false);
            pb.activation(y, Activation::Sin)
        };
        let mut out = SpaceBufs {
            w: Vec::new(),
            b: Vec::new(),
            channels: 2 * self.m,
        };
        for (i, (&wb, &bb)) in x.w.iter().zip(&x.b).enumerate() {
            let lay = InternalLayout::of(spec, i, batch, 1);
            if lay.f != 1 {
                return Err(Error::Spec(
                    "Fourier features are built for dense weight spaces (SIRENs)".into(),
                ));
            }
            out.w.push(apply(wb, lay.weight_len()));
            out.b.push(apply(bb, lay.bias_len()));
        }
        Ok(out)
    }
}
