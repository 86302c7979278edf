//! `WeightSpace`: a batch of network weights (or NFN features) in the reference layout (SPEC §1.3),
//! and its conversion to the engine's internal entry-major, channels-innermost layout (DESIGN §4b).

use crate::error::{Error, Result};
use crate::spec::NetworkSpec;
use crate::tensor::Tensor;

/// Per layer i a weight tensor (B, C, n_out, n_in[, kh, kw]) and a bias tensor (B, C, n_out).
#[derive(Clone, Debug, PartialEq)]
pub struct WeightSpace {
    /// Weight features, one per layer.
    pub weights: Vec<Tensor>,
    /// Bias features, one per layer.
    pub biases: Vec<Tensor>,
}

impl WeightSpace {
    /// Wraps tensors and checks them against `spec` (any batch, any channel count shared by all).
    pub fn new(spec: &NetworkSpec, weights: Vec<Tensor>, biases: Vec<Tensor>) -> Result<Self> {
        let ws = WeightSpace { weights, biases };
        ws.validate(spec, None)?;
        Ok(ws)
    }

    /// All-zero features of batch `batch` and `channels` channels.
    pub fn zeros(spec: &NetworkSpec, batch: usize, channels: usize) -> Self {
        let weights = spec
            .layers
            .iter()
            .map(|l| {
                let mut s = vec![batch, channels];
                s.extend(l.weight_dims());
                Tensor::zeros(s)
            })
            .collect();
        let biases = spec
            .layers
            .iter()
            .map(|l| Tensor::zeros(vec![batch, channels, l.n_out]))
            .collect();
        WeightSpace { weights, biases }
    }

    /// Batch size B (0 when there are no layers).
    pub fn batch(&self) -> usize {
        self.weights.first().map_or(0, |w| w.shape[0])
    }

    /// The networks at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Result<WeightSpace> {
        let pick = |ts: &[Tensor]| ts.iter().map(|t| t.select_rows(idx)).collect::<Result<_>>();
        Ok(WeightSpace {
            weights: pick(&self.weights)?,
            biases: pick(&self.biases)?,
        })
    }

    /// `parts` (weight spaces of one spec) stacked into one batch, in order.
    pub fn concat(parts: &[WeightSpace]) -> Result<WeightSpace> {
        let first = parts
            .first()
            .ok_or_else(|| Error::Input("no weight spaces to concatenate".into()))?;
        let stack = |pick: fn(&WeightSpace) -> &Vec<Tensor>| {
            (0..pick(first).len())
                .map(|i| {
                    let ts: Vec<Tensor> = parts
                        .iter()
                        .map(|p| pick(p).get(i).cloned())
                        .collect::<Option<_>>()
                        .ok_or_else(|| Error::Input("weight spaces of different depths".into()))?;
                    Tensor::concat_rows(&ts)
                })
                .collect::<Result<Vec<_>>>()
        };
        Ok(WeightSpace {
            weights: stack(|w| &w.weights)?,
            biases: stack(|w| &w.biases)?,
        })
    }

    /// Channel count C.
    pub fn channels(&self) -> usize {
        self.weights.first().map_or(0, |w| w.shape[1])
    }

    /// Checks only the shapes against `spec` (any batch and channel count, values unchecked).
    pub fn validate_shapes(&self, spec: &NetworkSpec) -> Result<()> {
        self.check(spec, None, false)
    }

    /// Checks every shape against `spec`, a nonzero batch, optionally the channel count, and that
    /// every value is finite (a NaN or infinity would poison every output it reaches).
    pub fn validate(&self, spec: &NetworkSpec, channels: Option<usize>) -> Result<()> {
        self.check(spec, channels, true)
    }

    fn check(&self, spec: &NetworkSpec, channels: Option<usize>, values: bool) -> Result<()> {
        let l = spec.num_layers();
        if self.weights.len() != l || self.biases.len() != l {
            return Err(Error::shape(
                "number of weight/bias layers",
                &[l, l],
                &[self.weights.len(), self.biases.len()],
            ));
        }
        let b = self.batch();
        if b == 0 && values {
            return Err(Error::Input("empty batch (B = 0)".into()));
        }
        let c = channels.unwrap_or_else(|| self.channels());
        for (i, layer) in spec.layers.iter().enumerate() {
            let mut ws = vec![b, c];
            ws.extend(layer.weight_dims());
            self.weights[i]
                .expect_shape(&format!("weight {i} (B, C, n_out, n_in[, kh, kw])"), &ws)?;
            self.biases[i]
                .expect_shape(&format!("bias {i} (B, C, n_out)"), &[b, c, layer.n_out])?;
        }
        if !values {
            return Ok(());
        }
        for (kind, ts) in [("weight", &self.weights), ("bias", &self.biases)] {
            for (i, t) in ts.iter().enumerate() {
                if let Some(pos) = t.data.iter().position(|v| !v.is_finite()) {
                    return Err(Error::Input(format!(
                        "{kind} {i} holds a non-finite value ({}) at flat index {pos}",
                        t.data[pos]
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Geometry of one layer's feature in the internal layout: weight as (B, R, S, C·f) and bias as
/// (B, n_out, C). For every layer but the last R = n_out and S = n_in (row-major entries); for the
/// last layer R = n_in and S = n_out, so the hidden index k is outermost and each HNPS term is a
/// contiguous GEMM (SPEC §3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InternalLayout {
    /// Batch.
    pub batch: usize,
    /// Channels C.
    pub channels: usize,
    /// Kernel positions f.
    pub f: usize,
    /// Rows n_out of the weight.
    pub n_out: usize,
    /// Columns n_in of the weight.
    pub n_in: usize,
    /// True for the last layer (column-major entries).
    pub transposed: bool,
}

impl InternalLayout {
    /// Layout of layer `i` of `spec` for the given batch and channels.
    pub fn of(spec: &NetworkSpec, i: usize, batch: usize, channels: usize) -> Self {
        let l = spec.layers[i];
        InternalLayout {
            batch,
            channels,
            f: l.f(),
            n_out: l.n_out,
            n_in: l.n_in,
            transposed: i + 1 == spec.num_layers(),
        }
    }

    /// Folded channels C·f (innermost axis of the weight).
    pub fn folded(&self) -> usize {
        self.channels * self.f
    }

    /// (R, S): outer and inner entry axes.
    pub fn rs(&self) -> (usize, usize) {
        if self.transposed {
            (self.n_in, self.n_out)
        } else {
            (self.n_out, self.n_in)
        }
    }

    /// Elements in the weight buffer.
    pub fn weight_len(&self) -> usize {
        self.batch * self.n_out * self.n_in * self.folded()
    }

    /// Elements in the bias buffer.
    pub fn bias_len(&self) -> usize {
        self.batch * self.n_out * self.channels
    }

    /// Internal index of reference element (b, c, j, k, yx).
    fn weight_index(&self, b: usize, c: usize, j: usize, k: usize, t: usize) -> usize {
        let (r, s) = if self.transposed { (k, j) } else { (j, k) };
        let (rn, sn) = self.rs();
        ((b * rn + r) * sn + s) * self.folded() + c * self.f + t
    }

    /// Converts a reference-layout weight (B, C, n_out, n_in[, kh, kw]) to the internal layout.
    pub fn pack_weight<T: crate::Scalar>(&self, data: &[f64]) -> Vec<T> {
        let mut out = vec![T::default(); self.weight_len()];
        let one = self.item();
        by_item(self.batch, data, &mut out, |d, o| {
            one.for_each_weight(|src, dst| o[dst] = T::from_f64(d[src]))
        });
        out
    }

    /// Converts an internal weight back to the reference layout.
    pub fn unpack_weight<T: crate::Scalar>(&self, data: &[T]) -> Vec<f64> {
        let mut out = vec![0.0; self.weight_len()];
        let one = self.item();
        by_item(self.batch, data, &mut out, |d, o| {
            one.for_each_weight(|src, dst| o[src] = d[dst].to_f64())
        });
        out
    }

    /// Converts a reference bias (B, C, n) to the internal (B, n, C).
    pub fn pack_bias<T: crate::Scalar>(&self, data: &[f64]) -> Vec<T> {
        let mut out = vec![T::default(); self.bias_len()];
        let one = self.item();
        by_item(self.batch, data, &mut out, |d, o| {
            one.for_each_bias(|src, dst| o[dst] = T::from_f64(d[src]))
        });
        out
    }

    /// Converts an internal bias back to the reference (B, C, n).
    pub fn unpack_bias<T: crate::Scalar>(&self, data: &[T]) -> Vec<f64> {
        let mut out = vec![0.0; self.bias_len()];
        let one = self.item();
        by_item(self.batch, data, &mut out, |d, o| {
            one.for_each_bias(|src, dst| o[src] = d[dst].to_f64())
        });
        out
    }

    /// The layout of one batch item: every batch item is contiguous in both layouts.
    fn item(&self) -> Self {
        InternalLayout { batch: 1, ..*self }
    }

    fn for_each_weight(&self, mut visit: impl FnMut(usize, usize)) {
        let mut src = 0;
        for b in 0..self.batch {
            for c in 0..self.channels {
                for j in 0..self.n_out {
                    for k in 0..self.n_in {
                        for t in 0..self.f {
                            visit(src, self.weight_index(b, c, j, k, t));
                            src += 1;
                        }
                    }
                }
            }
        }
    }

    fn for_each_bias(&self, mut visit: impl FnMut(usize, usize)) {
        let mut src = 0;
        for b in 0..self.batch {
            for c in 0..self.channels {
                for j in 0..self.n_out {
                    visit(src, (b * self.n_out + j) * self.channels + c);
                    src += 1;
                }
            }
        }
    }
}

/// Values below which a layout or precision conversion runs on the calling thread (a hand-off
/// to the thread pool costs more than it saves); also the GPU backend's uploads and readbacks.
pub(crate) const PAR_VALUES: usize = 1 << 16;

/// Runs `convert` on each of `batch` items' slices of `src` and `dst` (equal parts of each), in
/// parallel for large buffers: packing a batch of 1,024 CNN-Zoo networks is 5 million values, a
/// fair share of a GPU forward pass's wall time when done on one thread.
fn by_item<S: Sync, D: Send>(
    batch: usize,
    src: &[S],
    dst: &mut [D],
    convert: impl Fn(&[S], &mut [D]) + Sync,
) {
    if batch == 0 || src.is_empty() || dst.is_empty() {
        return;
    }
    let (s, d) = (src.len() / batch, dst.len() / batch);
    if dst.len() < PAR_VALUES {
        src.chunks(s)
            .zip(dst.chunks_mut(d))
            .for_each(|(a, b)| convert(a, b));
    } else {
        use rayon::prelude::*;
        src.par_chunks(s)
            .zip(dst.par_chunks_mut(d))
            .for_each(|(a, b)| convert(a, b));
    }
}

impl WeightSpace {
    /// i.i.d. N(0, 1) features (for tests, examples and benchmarks).
    pub fn random(
        spec: &NetworkSpec,
        batch: usize,
        channels: usize,
        rng: &mut impl rand::Rng,
    ) -> Self {
        use rand_distr::Distribution;
        let mut ws = Self::zeros(spec, batch, channels);
        for t in ws.weights.iter_mut().chain(ws.biases.iter_mut()) {
            for v in &mut t.data {
                *v = rand_distr::StandardNormal.sample(rng);
            }
        }
        ws
    }
}
