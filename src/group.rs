//! The monomial symmetry groups of weight spaces (SPEC §2): sampling, action, inverse.

use rand::seq::SliceRandom;
use rand::Rng;

use crate::error::{Error, Result};
use crate::space::WeightSpace;
use crate::spec::NetworkSpec;
use crate::tensor::Tensor;

/// Which subgroup of the monomial group a [`GroupElement`] is drawn from (SPEC §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Symmetry {
    /// Hidden-neuron permutations only (P).
    Permutation,
    /// Permutations and positive per-neuron scales (G^{>0}, ReLU networks).
    PositiveScale,
    /// Permutations and sign flips (G^{±1}, tanh/sin networks).
    Sign,
    /// Permutations and any nonzero factors (G): positive scales times random signs.
    Monomial,
}

/// How positive factors are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScaleRange {
    /// log-uniform in [lo, hi].
    LogUniform { lo: f64, hi: f64 },
    /// uniform in [lo, hi] (the paper's augmentation uses [1, 10^k], SPEC §6.1).
    Uniform { lo: f64, hi: f64 },
}

impl Default for ScaleRange {
    /// log-uniform in [1e-4, 1e4].
    fn default() -> Self {
        ScaleRange::LogUniform { lo: 1e-4, hi: 1e4 }
    }
}

impl ScaleRange {
    fn sample(&self, rng: &mut impl Rng) -> f64 {
        match *self {
            ScaleRange::LogUniform { lo, hi } => {
                (lo.ln() + (hi.ln() - lo.ln()) * rng.random::<f64>()).exp()
            }
            ScaleRange::Uniform { lo, hi } => lo + (hi - lo) * rng.random::<f64>(),
        }
    }
}

/// g = (D_1 P_1, …, D_{L-1} P_{L-1}) acting on hidden neurons; inputs and outputs stay fixed (§2.2).
///
/// `perms[i][j]` is a *gather* index and `factors[i][j]` the factor at the destination, for the
/// output neurons of weight layer i (0-based): W'_i\[j,k\] = d_i\[j\]/d_{i-1}\[k\] · W_i\[perm_i\[j\], perm_{i-1}\[k\]\].
/// This is the goldens' encoding (SPEC A.1.9).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupElement {
    /// Per hidden layer, a permutation used as a gather index.
    pub perms: Vec<Vec<usize>>,
    /// Per hidden layer, the nonzero factor of each destination neuron.
    pub factors: Vec<Vec<f64>>,
}

impl GroupElement {
    /// The identity of `spec`'s group.
    pub fn identity(spec: &NetworkSpec) -> Self {
        let hidden = &spec.layers[..spec.num_layers() - 1];
        GroupElement {
            perms: hidden.iter().map(|l| (0..l.n_out).collect()).collect(),
            factors: hidden.iter().map(|l| vec![1.0; l.n_out]).collect(),
        }
    }

    /// Draws a random element of the given subgroup.
    pub fn sample(
        spec: &NetworkSpec,
        symmetry: Symmetry,
        range: ScaleRange,
        rng: &mut impl Rng,
    ) -> Self {
        let mut g = Self::identity(spec);
        for (perm, factors) in g.perms.iter_mut().zip(g.factors.iter_mut()) {
            perm.shuffle(rng);
            for d in factors.iter_mut() {
                *d = match symmetry {
                    Symmetry::Permutation => 1.0,
                    Symmetry::PositiveScale => range.sample(rng),
                    Symmetry::Sign => {
                        if rng.random::<bool>() {
                            1.0
                        } else {
                            -1.0
                        }
                    }
                    Symmetry::Monomial => {
                        let s = range.sample(rng);
                        if rng.random::<bool>() {
                            s
                        } else {
                            -s
                        }
                    }
                };
            }
        }
        g
    }

    /// g⁻¹, so that `g.inverse().act(&g.act(u))` = u (up to rounding of the factors).
    pub fn inverse(&self) -> Self {
        let mut perms = Vec::new();
        let mut factors = Vec::new();
        for (p, d) in self.perms.iter().zip(&self.factors) {
            let mut inv = vec![0; p.len()];
            for (j, &src) in p.iter().enumerate() {
                inv[src] = j;
            }
            factors.push(inv.iter().map(|&j| 1.0 / d[j]).collect());
            perms.push(inv);
        }
        GroupElement { perms, factors }
    }

    /// Applies g to a weight space of any batch and channel count (SPEC §2.2).
    pub fn act(&self, spec: &NetworkSpec, u: &WeightSpace) -> Result<WeightSpace> {
        u.validate_shapes(spec)?;
        let l = spec.num_layers();
        if self.perms.len() != l - 1 {
            return Err(Error::shape(
                "group element hidden layers",
                &[l - 1],
                &[self.perms.len()],
            ));
        }
        for (i, p) in self.perms.iter().enumerate() {
            if p.len() != spec.layers[i].n_out || self.factors[i].len() != p.len() {
                return Err(Error::shape(
                    format!("group element layer {i}"),
                    &[spec.layers[i].n_out],
                    &[p.len(), self.factors[i].len()],
                ));
            }
            // Indices come from public fields and files: reject anything but a permutation
            // (an out-of-range index would otherwise panic below) and any zero or non-finite factor.
            let mut seen = vec![false; p.len()];
            for &src in p {
                if src >= p.len() || std::mem::replace(&mut seen[src], true) {
                    return Err(Error::Input(format!(
                        "group element layer {i}: index {src} makes it no permutation of 0..{}",
                        p.len()
                    )));
                }
            }
            if let Some(d) = self.factors[i]
                .iter()
                .find(|d| !d.is_finite() || **d == 0.0)
            {
                return Err(Error::Input(format!(
                    "group element layer {i}: factor {d} is not finite and nonzero"
                )));
            }
        }
        let (b, c) = (u.batch(), u.channels());
        let row = |i: usize, j: usize| -> (usize, f64) {
            if i + 1 < l {
                (self.perms[i][j], self.factors[i][j])
            } else {
                (j, 1.0)
            }
        };
        let col = |i: usize, k: usize| -> (usize, f64) {
            if i > 0 {
                (self.perms[i - 1][k], self.factors[i - 1][k])
            } else {
                (k, 1.0)
            }
        };
        let mut weights = Vec::with_capacity(l);
        let mut biases = Vec::with_capacity(l);
        for (i, layer) in spec.layers.iter().enumerate() {
            let (n, m, f) = (layer.n_out, layer.n_in, layer.f());
            let src = &u.weights[i].data;
            let mut w = vec![0.0; src.len()];
            for bc in 0..b * c {
                for j in 0..n {
                    let (sj, dj) = row(i, j);
                    for k in 0..m {
                        let (sk, dk) = col(i, k);
                        let factor = dj / dk;
                        let d0 = ((bc * n + j) * m + k) * f;
                        let s0 = ((bc * n + sj) * m + sk) * f;
                        for t in 0..f {
                            w[d0 + t] = factor * src[s0 + t];
                        }
                    }
                }
            }
            weights.push(Tensor::new(u.weights[i].shape.clone(), w)?);
            let src = &u.biases[i].data;
            let mut bias = vec![0.0; src.len()];
            for bc in 0..b * c {
                for j in 0..n {
                    let (sj, dj) = row(i, j);
                    bias[bc * n + j] = dj * src[bc * n + sj];
                }
            }
            biases.push(Tensor::new(u.biases[i].shape.clone(), bias)?);
        }
        Ok(WeightSpace { weights, biases })
    }
}
