//! Validation metrics (SPEC §6.4): Kendall's τ-b (the paper's metric for predicting
//! generalisation), accuracy and mean squared error.

use crate::error::{Error, Result};

/// Which metric, and whether higher is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Kendall's τ-b between predictions and targets (ties handled as scipy does), over all
    /// values of the flattened matrices.
    KendallTau,
    /// Fraction of rows whose arg-max prediction is the arg-max target (with one column: both
    /// on the same side of 0.5).
    Accuracy,
    /// Mean squared error.
    Mse,
}

impl Metric {
    /// Whether a larger value is better (for best-epoch selection).
    pub fn higher_is_better(self) -> bool {
        self != Metric::Mse
    }

    /// The metric of `pred` against `target`, both `rows` × `cols` row-major.
    pub fn eval(self, pred: &[f64], target: &[f64], cols: usize) -> Result<f64> {
        if pred.len() != target.len() || cols == 0 || pred.len() % cols != 0 {
            return Err(Error::shape(
                "metric inputs",
                &[target.len()],
                &[pred.len()],
            ));
        }
        Ok(match self {
            Metric::KendallTau => kendall_tau(pred, target),
            Metric::Mse => {
                pred.iter()
                    .zip(target)
                    .map(|(p, t)| (p - t) * (p - t))
                    .sum::<f64>()
                    / pred.len().max(1) as f64
            }
            Metric::Accuracy => {
                let rows = pred.len() / cols;
                let hits = pred
                    .chunks(cols)
                    .zip(target.chunks(cols))
                    .filter(|(p, t)| {
                        if cols == 1 {
                            (p[0] > 0.5) == (t[0] > 0.5)
                        } else {
                            argmax(p) == argmax(t)
                        }
                    })
                    .count();
                hits as f64 / rows.max(1) as f64
            }
        })
    }
}

/// Kendall's τ-b: (concordant − discordant) / sqrt((n₀ − ties_x)(n₀ − ties_y)), O(n²).
/// Undefined (NaN, as scipy) when either side is constant or holds a non-finite value.
pub fn kendall_tau(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    // Undefined (NaN, as scipy) for non-finite values; never a silent 0.
    if x[..n].iter().chain(&y[..n]).any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    let (mut s, mut tx, mut ty, mut pairs) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let dx = (x[i] - x[j]).partial_cmp(&0.0).map_or(0, |o| o as i64);
            let dy = (y[i] - y[j]).partial_cmp(&0.0).map_or(0, |o| o as i64);
            pairs += 1;
            if dx == 0 {
                tx += 1;
            }
            if dy == 0 {
                ty += 1;
            }
            s += dx * dy;
        }
    }
    let denom = (((pairs - tx) as f64) * ((pairs - ty) as f64)).sqrt();
    if denom == 0.0 {
        // Constant predictions (or targets) rank nothing: τ is undefined.
        f64::NAN
    } else {
        s as f64 / denom
    }
}

/// The index of the largest value (the first on ties; 0 when all are NaN).
pub fn argmax(r: &[f64]) -> usize {
    r.iter()
        .enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |b, (i, &v)| if v > b.1 { (i, v) } else { b },
        )
        .0
}
