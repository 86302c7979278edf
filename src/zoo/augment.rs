//! Group augmentation of weight-space datasets (SPEC §6.1): every network of a batch gets its own
//! seeded random group element (hidden permutations with positive scales from U[1, 10^k] for
//! ReLU zoos, with signs for tanh/sin zoos), drawn afresh each epoch, on the fly.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::group::{GroupElement, ScaleRange, Symmetry};
use crate::space::WeightSpace;
use crate::spec::{NetActivation, NetworkSpec};

/// A seeded augmentation policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augment {
    /// The subgroup the elements are drawn from.
    pub symmetry: Symmetry,
    /// How positive factors are drawn (ignored by permutations and signs).
    pub range: ScaleRange,
    /// Seed; with the epoch and the network's index it fixes each element.
    pub seed: u64,
}

impl Augment {
    /// The paper's policy for a zoo of `activation`: ReLU gets positive scales from U[1, 10^k]
    /// (k = `scale_exponent`, the paper uses 1..4); tanh and sin get signs.
    pub fn for_activation(activation: NetActivation, scale_exponent: u32, seed: u64) -> Self {
        let symmetry = match activation {
            NetActivation::Relu => Symmetry::PositiveScale,
            NetActivation::Tanh | NetActivation::Sin => Symmetry::Sign,
        };
        Augment {
            symmetry,
            range: ScaleRange::Uniform {
                lo: 1.0,
                hi: 10f64.powi(scale_exponent as i32),
            },
            seed,
        }
    }

    /// The element for network `index` in `epoch`, the same on every call.
    pub fn element(&self, spec: &NetworkSpec, epoch: u64, index: usize) -> GroupElement {
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.seed ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        rng.set_stream(index as u64);
        GroupElement::sample(spec, self.symmetry, self.range, &mut rng)
    }

    /// Transforms batch item b of `ws` by the element of network `indices[b]` in `epoch`.
    pub fn apply(
        &self,
        spec: &NetworkSpec,
        ws: &WeightSpace,
        epoch: u64,
        indices: &[usize],
    ) -> Result<WeightSpace> {
        ws.validate_shapes(spec)?;
        if indices.len() != ws.batch() {
            return Err(Error::shape(
                "augment indices",
                &[ws.batch()],
                &[indices.len()],
            ));
        }
        let mut out = ws.clone();
        for (b, &index) in indices.iter().enumerate() {
            let g = self.element(spec, epoch, index);
            let moved = g.act(spec, &super::batch_item(ws, b))?;
            for (dst, src) in out
                .weights
                .iter_mut()
                .chain(out.biases.iter_mut())
                .zip(moved.weights.iter().chain(&moved.biases))
            {
                let n = src.len();
                dst.data[b * n..(b + 1) * n].copy_from_slice(&src.data);
            }
        }
        Ok(out)
    }
}
