//! Dropout in training plans only (SPEC §6.2): a mask of 0 or 1/(1 − p) drawn per step is
//! multiplied in (`MaskOp`); evaluation plans pass values through. On weight-space features
//! weights drop whole channels of a matrix (2-D channel dropout) and biases drop elementwise; on
//! flat features every element drops on its own.

use rand::Rng;

use crate::error::{Error, Result};

/// Dropout with rate `p`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Dropout {
    /// Probability of zeroing a unit.
    pub p: f64,
}

impl Dropout {
    /// Dropout with rate p in [0, 1).
    pub fn new(p: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::Spec(format!(
                "dropout rate must be in [0, 1), got {p}"
            )));
        }
        Ok(Dropout { p })
    }
}

/// A mask input of a training plan: `len` values, each 0 with probability `p`, else 1/(1 − p).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaskInput {
    /// Values.
    pub len: usize,
    /// Drop rate.
    pub p: f64,
}

impl MaskInput {
    /// A fresh inverted-dropout mask.
    pub fn sample(&self, rng: &mut impl Rng) -> Vec<f64> {
        let keep = 1.0 / (1.0 - self.p);
        (0..self.len)
            .map(|_| {
                if rng.random::<f64>() < self.p {
                    0.0
                } else {
                    keep
                }
            })
            .collect()
    }
}
