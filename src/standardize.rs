//! Per-coordinate input standardisation with training-set statistics, as the NP baseline of
//! the reference does (`np_inv`, SPEC §5.4). Saved in checkpoints so predictions later use the
//! statistics the model was trained with.

use crate::error::{Error, Result};
use crate::space::WeightSpace;
use crate::tensor::Tensor;

/// Mean and standard deviation of every weight and bias coordinate (W_0, …, W_L−1, b_0, …).
#[derive(Clone, Debug, PartialEq)]
pub struct Standardize {
    /// Per tensor, the mean of each coordinate.
    pub mean: Vec<Vec<f64>>,
    /// Per tensor, the standard deviation of each coordinate (std < 1e-5 counts as 1).
    pub std: Vec<Vec<f64>>,
}

impl Standardize {
    /// Statistics of a training set (unbiased variance).
    pub fn fit(ws: &WeightSpace) -> Self {
        let n = ws.batch() as f64;
        let (mut mean, mut std) = (Vec::new(), Vec::new());
        for t in ws.weights.iter().chain(&ws.biases) {
            let row = t.len() / ws.batch();
            let mut m = vec![0.0; row];
            let mut s = vec![0.0; row];
            for chunk in t.data.chunks(row) {
                m.iter_mut().zip(chunk).for_each(|(a, v)| *a += v / n);
            }
            for chunk in t.data.chunks(row) {
                s.iter_mut()
                    .zip(chunk.iter().zip(&m))
                    .for_each(|(a, (v, mu))| *a += (v - mu).powi(2) / (n - 1.0).max(1.0));
            }
            let s = s
                .into_iter()
                .map(|v| if v.sqrt() < 1e-5 { 1.0 } else { v.sqrt() })
                .collect();
            mean.push(m);
            std.push(s);
        }
        Standardize { mean, std }
    }

    /// (x − mean) / std per coordinate; an error when `ws` has other tensor sizes.
    pub fn apply(&self, ws: &WeightSpace) -> Result<WeightSpace> {
        let mut out = ws.clone();
        let tensors = out.weights.iter_mut().chain(out.biases.iter_mut());
        let n = ws.weights.len() + ws.biases.len();
        if n != self.mean.len() {
            return Err(Error::shape(
                "standardised tensors",
                &[self.mean.len()],
                &[n],
            ));
        }
        for ((t, m), s) in tensors.zip(&self.mean).zip(&self.std) {
            if m.is_empty() || t.len() != m.len() * ws.batch() {
                return Err(Error::shape(
                    "standardised coordinates",
                    &[m.len() * ws.batch()],
                    &[t.len()],
                ));
            }
            for chunk in t.data.chunks_mut(m.len()) {
                for ((v, mu), sd) in chunk.iter_mut().zip(m).zip(s) {
                    *v = (*v - mu) / sd;
                }
            }
        }
        Ok(out)
    }

    /// The statistics as tensors `{prefix}mean.{k}` and `{prefix}std.{k}`.
    pub fn to_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (kind, v) in [("mean", &self.mean), ("std", &self.std)] {
            for (k, x) in v.iter().enumerate() {
                out.push((
                    format!("{prefix}{kind}.{k}"),
                    Tensor {
                        shape: vec![x.len()],
                        data: x.clone(),
                    },
                ));
            }
        }
        out
    }

    /// Reads `count` tensors' statistics written by [`Standardize::to_tensors`]; `get` looks a
    /// tensor up by name. Every std must be finite and positive.
    pub fn from_tensors<'a>(
        prefix: &str,
        count: usize,
        get: impl Fn(&str) -> Result<&'a Tensor>,
    ) -> Result<Self> {
        let mut st = Standardize {
            mean: Vec::new(),
            std: Vec::new(),
        };
        for k in 0..count {
            let m = get(&format!("{prefix}mean.{k}"))?;
            let s = get(&format!("{prefix}std.{k}"))?;
            if m.len() != s.len()
                || !m.data.iter().all(|v| v.is_finite())
                || !s.data.iter().all(|v| v.is_finite() && *v > 0.0)
            {
                return Err(Error::Input(format!(
                    "standardisation statistics {k} are not finite means and positive deviations of one length"
                )));
            }
            st.mean.push(m.data.clone());
            st.std.push(s.data.clone());
        }
        Ok(st)
    }
}
