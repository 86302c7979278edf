//! Named parameter tensors and the initialisation schemes of SPEC §7.

use std::cell::Cell;

use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

thread_local! {
    static BUDGET: Cell<Option<usize>> = const { Cell::new(None) };
    static OVER: Cell<bool> = const { Cell::new(false) };
}

/// Runs `build` (layer constructors) allowing at most `limit` parameter scalars in all: a file
/// that describes a layer never allocates more than its own tensors justify. Over the budget,
/// `build`'s result is replaced by a spec error.
pub(crate) fn with_param_budget<T>(limit: usize, build: impl FnOnce() -> Result<T>) -> Result<T> {
    BUDGET.with(|b| b.set(Some(limit)));
    OVER.with(|o| o.set(false));
    let out = build();
    BUDGET.with(|b| b.set(None));
    if OVER.with(|o| o.replace(false)) {
        return Err(Error::Spec(format!(
            "the described layers need more than {limit} parameters"
        )));
    }
    out
}

/// Ordered named parameters of one module.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamSet {
    entries: Vec<(String, Tensor)>,
}

impl ParamSet {
    /// Adds a zero tensor. Inside `with_param_budget` (checkpoint loading), a tensor over the remaining budget is
    /// added empty and the budget marked exceeded instead of allocated.
    pub fn add_zeros(&mut self, name: impl Into<String>, shape: Vec<usize>) {
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let fits = BUDGET.with(|b| match (b.get(), n) {
            (None, _) => true,
            (Some(left), Some(n)) if n <= left => {
                b.set(Some(left - n));
                true
            }
            _ => {
                b.set(Some(0));
                OVER.with(|o| o.set(true));
                false
            }
        });
        let t = if fits {
            Tensor::zeros(shape)
        } else {
            Tensor::zeros(vec![0])
        };
        self.entries.push((name.into(), t));
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The tensor called `name`, or a spec error naming it.
    pub fn expect(&self, name: &str) -> Result<&Tensor> {
        self.get(name)
            .ok_or_else(|| Error::Spec(format!("missing parameter {name}")))
    }

    /// Replaces the values of `name`, checking the shape.
    pub fn set(&mut self, name: &str, value: Tensor) -> Result<()> {
        let slot = self
            .entries
            .iter_mut()
            .find(|(n, _)| n == name)
            .ok_or_else(|| Error::Spec(format!("no parameter named {name}")))?;
        value.expect_shape(name, &slot.1.shape)?;
        slot.1 = value;
        Ok(())
    }

    /// Iterates (name, tensor) in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Total number of scalars.
    pub fn count(&self) -> usize {
        self.entries.iter().map(|(_, t)| t.len()).sum()
    }

    /// Data of `name` (panics only on an internal naming bug: every name used is added in `new`).
    pub(crate) fn data(&self, name: &str) -> &[f64] {
        match self.get(name) {
            Some(t) => &t.data,
            None => unreachable!("parameter {name} is created with its module"),
        }
    }

    fn get_mut(&mut self, name: &str) -> &mut Tensor {
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some((_, t)) => t,
            None => unreachable!("parameter {name} is created with its module"),
        }
    }

    /// Fills every member of `group` from `init`, with fans summed over the group (SPEC §7).
    /// Each member is (name, fan-in mask over its axes).
    pub fn init_group(&mut self, group: &[(&str, &[bool])], init: Init, rng: &mut impl Rng) {
        let (mut fan_in, mut fan_out) = (0usize, 0usize);
        for (name, mask) in group {
            let shape = &self.data_shape(name);
            let masked: Vec<usize> = shape
                .iter()
                .zip(*mask)
                .filter(|(_, &m)| m)
                .map(|(&s, _)| s)
                .collect();
            let unmasked: Vec<usize> = shape
                .iter()
                .zip(*mask)
                .filter(|(_, &m)| !m)
                .map(|(&s, _)| s)
                .collect();
            fan_in += if masked.is_empty() {
                0
            } else {
                masked.iter().product()
            };
            fan_out += if unmasked.is_empty() {
                0
            } else {
                unmasked.iter().product()
            };
        }
        for (name, _) in group {
            let t = self.get_mut(name);
            init.fill(&mut t.data, fan_in, fan_out, rng);
        }
    }

    fn data_shape(&self, name: &str) -> Vec<usize> {
        self.get(name).map(|t| t.shape.clone()).unwrap_or_default()
    }

    /// Fills `name` with i.i.d. N(0, 1) (the pool's γ, β, SPEC §7).
    pub fn init_standard_normal(&mut self, name: &str, rng: &mut impl Rng) {
        let t = self.get_mut(name);
        for v in &mut t.data {
            *v = rand_distr::StandardNormal.sample(rng);
        }
    }

    /// Fills `name` with U(±bound).
    pub fn init_uniform(&mut self, name: &str, bound: f64, rng: &mut impl Rng) {
        let t = self.get_mut(name);
        for v in &mut t.data {
            *v = bound * (2.0 * rng.random::<f64>() - 1.0);
        }
    }
}

/// Initialisation schemes of SPEC §7, with `in`/`out` the group's summed fans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Init {
    /// U(±1/√in) (the HNPS layers' default).
    #[default]
    PytorchDefault,
    /// N(0, √(2/in)).
    KaimingNormal,
    /// N(0, √(2/(in+out))) (used by the paper's CNN-Zoo models).
    XavierNormal,
    /// U(±√(6/(in+out))).
    XavierUniform,
}

impl Init {
    fn fill(self, data: &mut [f64], fan_in: usize, fan_out: usize, rng: &mut impl Rng) {
        let (fi, fo) = (fan_in.max(1) as f64, fan_out as f64);
        let uniform = |b: f64, rng: &mut dyn rand::RngCore| b * (2.0 * rng.random::<f64>() - 1.0);
        match self {
            Init::PytorchDefault => data
                .iter_mut()
                .for_each(|v| *v = uniform(1.0 / fi.sqrt(), rng)),
            Init::XavierUniform => {
                let b = (6.0 / (fi + fo)).sqrt();
                data.iter_mut().for_each(|v| *v = uniform(b, rng))
            }
            Init::KaimingNormal | Init::XavierNormal => {
                let std = if self == Init::KaimingNormal {
                    (2.0 / fi).sqrt()
                } else {
                    (2.0 / (fi + fo)).sqrt()
                };
                // std > 0 and finite, so the distribution is valid.
                let normal = Normal::new(0.0, std).unwrap_or_else(|_| unreachable!());
                data.iter_mut().for_each(|v| *v = normal.sample(rng))
            }
        }
    }
}
