//! STATNN's input layer (SPEC §5.4): seven statistics of every weight and bias tensor per channel.

use crate::error::{Error, Result};
use crate::nn::SpaceBufs;
use crate::plan::{Op, PlanBuilder, StatOp};
use crate::spec::NetworkSpec;

/// Statistics per channel, in order W₀, b₀, W₁, b₁, …: mean, unbiased variance and the
/// quantiles 0, .25, .5, .75, 1 of each tensor, giving (B, C, 14·L). Permutation-invariant, not
/// scale-invariant; not differentiable with respect to its input.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatFeatures {
    /// The input networks' spec.
    pub spec: NetworkSpec,
    /// Channels of the input features.
    pub channels: usize,
}

impl StatFeatures {
    /// Statistics of `channels`-channel features of `spec`.
    pub fn new(spec: &NetworkSpec, channels: usize) -> Result<Self> {
        if channels == 0 {
            return Err(Error::Spec("STATNN channels must be positive".into()));
        }
        Ok(StatFeatures {
            spec: spec.clone(),
            channels,
        })
    }

    /// Per-channel width 14·L.
    pub fn width(&self) -> usize {
        14 * self.spec.num_layers()
    }

    /// Output features C·14·L.
    pub fn out_features(&self) -> usize {
        self.channels * self.width()
    }

    /// Appends the statistics ops; returns the (B, C, 14·L) buffer.
    pub fn emit(&self, pb: &mut PlanBuilder, x: &SpaceBufs, batch: usize) -> Result<usize> {
        if x.channels != self.channels {
            return Err(Error::shape(
                "STATNN input channels",
                &[self.channels],
                &[x.channels],
            ));
        }
        let out = pb.scratch(batch * self.out_features());
        for (i, s) in self.spec.layers.iter().enumerate() {
            for (k, (buf, m, f)) in [(x.w[i], s.n_out * s.n_in, s.f()), (x.b[i], s.n_out, 1)]
                .into_iter()
                .enumerate()
            {
                pb.push(Op::Stat(StatOp {
                    x: buf,
                    out,
                    batch,
                    m,
                    channels: self.channels,
                    f,
                    width: self.width(),
                    offset: 14 * i + 7 * k,
                }));
            }
        }
        Ok(out)
    }
}
