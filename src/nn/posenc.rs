//! The IO sinusoidal position encoding (SPEC §6.2 item 3, §6.3): 2K+1 extra channels, zero
//! except on the fixed neurons: W⁽¹⁾ columns get enc(t_q), W⁽ᴸ⁾ rows and b⁽ᴸ⁾ get enc(t_p), with
//! t = linspace(−1, 1, n) and enc(t) = [sin(π t s_r), cos(π t s_r) (r ≤ K), t],
//! s = linspace(1, max_freq/2, K). Lowered to strided copies: a constant pattern broadcast over
//! the batch, then the input copied into the first C channels.

use crate::error::{Error, Result};
use crate::nn::SpaceBufs;
use crate::plan::{PlanBuilder, ReduceOp};
use crate::space::InternalLayout;
use crate::spec::NetworkSpec;

/// Position encoding of the input and output neurons.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PositionEncoding {
    /// Input channels C.
    pub c_in: usize,
    /// Highest frequency.
    pub max_freq: f64,
    /// Bands K.
    pub bands: usize,
}

impl PositionEncoding {
    /// Output channels C + 2K + 1.
    pub fn c_out(&self) -> usize {
        self.c_in + 2 * self.bands + 1
    }

    /// enc(t) for each of `n` positions t = linspace(−1, 1, n), rows of 2K+1.
    fn table(&self, n: usize) -> Vec<Vec<f64>> {
        let k = self.bands;
        let s = |r: usize| {
            if k > 1 {
                1.0 + (self.max_freq / 2.0 - 1.0) * r as f64 / (k - 1) as f64
            } else {
                1.0
            }
        };
        (0..n)
            .map(|i| {
                let t = if n > 1 {
                    -1.0 + 2.0 * i as f64 / (n - 1) as f64
                } else {
                    0.0
                };
                let pi_t = std::f64::consts::PI * t;
                let mut e: Vec<f64> = (0..k).map(|r| (pi_t * s(r)).sin()).collect();
                e.extend((0..k).map(|r| (pi_t * s(r)).cos()));
                e.push(t);
                e
            })
            .collect()
    }

    /// Appends the encoding to every tensor of `x`.
    pub fn emit(
        &self,
        pb: &mut PlanBuilder,
        spec: &NetworkSpec,
        x: &SpaceBufs,
        batch: usize,
    ) -> Result<SpaceBufs> {
        if x.channels != self.c_in || spec.layers.iter().any(|l| l.f() != 1) {
            return Err(Error::Spec(format!(
                "the position encoding takes {} channels of a dense weight space, got {}",
                self.c_in, x.channels
            )));
        }
        let (c, co) = (self.c_in, self.c_out());
        let l = spec.num_layers();
        let t_in = self.table(spec.n_in());
        let t_out = self.table(spec.n_out());
        let mut out = SpaceBufs {
            w: Vec::new(),
            b: Vec::new(),
            channels: co,
        };
        // One tensor: `entries` per network, the encoding of entry e given by `enc(e)`.
        type Enc<'a> = &'a dyn Fn(usize) -> Option<&'a Vec<f64>>;
        let encode = |pb: &mut PlanBuilder, buf: usize, entries: usize, enc: Enc| {
            let mut pattern = vec![0.0; entries * co];
            for e in 0..entries {
                if let Some(v) = enc(e) {
                    pattern[e * co + c..(e + 1) * co].copy_from_slice(v);
                }
            }
            let pattern = pb.param(pattern);
            let y = pb.scratch(batch * entries * co);
            pb.reduce(ReduceOp {
                x: pattern,
                y,
                outer: batch,
                mid: entries,
                inner: co,
                r: 1,
                x_strides: [0, co, 0],
                y_strides: [entries * co, co],
                alpha: 1.0,
                accumulate: false,
            });
            pb.reduce(ReduceOp {
                x: buf,
                y,
                outer: batch * entries,
                mid: 1,
                inner: c,
                r: 1,
                x_strides: [c, 0, 0],
                y_strides: [co, 0],
                alpha: 1.0,
                accumulate: false,
            });
            y
        };
        for i in 0..l {
            let lay = InternalLayout::of(spec, i, batch, c);
            let (rn, sn) = lay.rs();
            // Entry e = r·S + s; the first layer's s is the input neuron q, the last layer's s
            // the output neuron p (its R is the hidden k).
            let w = encode(pb, x.w[i], rn * sn, &|e| {
                if i == 0 {
                    t_in.get(e % sn)
                } else if i + 1 == l {
                    t_out.get(e % sn)
                } else {
                    None
                }
            });
            let b = encode(pb, x.b[i], lay.n_out, &|e| (i + 1 == l).then(|| &t_out[e]));
            out.w.push(w);
            out.b.push(b);
        }
        Ok(out)
    }
}
