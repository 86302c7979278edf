//! The networks a zoo holds, run on the CPU: stride-2 'same'-padded convs (as in the Small CNN
//! Zoo), global average pooling, then dense layers; hidden activation per [`NetActivation`]
//! (sin means the SIREN sin(30·z), SPEC §1.4). Parameters are one flat row in the layout's
//! TensorFlow order, so a trained row is written to a zoo as is. Forward runs in f32 or f64
//! (f64 for the symmetry diagnosis), backward in f32 (for the generator).

use super::layout::Layout;
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::spec::NetActivation;

/// Conv stride of every conv layer.
pub const STRIDE: usize = 2;

/// A float the networks run in: [`Scalar`] plus tanh.
pub trait Float: Scalar {
    /// Hyperbolic tangent (odd: tanh(−x) = −tanh(x) exactly).
    fn tanh(self) -> Self;
}

impl Float for f32 {
    /// Through one exp (faster than libm's tanhf, which dominated tanh zoo training), within a
    /// few ulp; odd by construction.
    fn tanh(self) -> Self {
        let a = self.abs();
        let r = if a < 0.01 {
            a - a * a * a / 3.0
        } else {
            let t = (-2.0 * a).exp();
            (1.0 - t) / (1.0 + t)
        };
        r.copysign(self)
    }
}

impl Float for f64 {
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
}

/// The hidden activation σ(z).
pub fn activate<T: Float>(act: NetActivation, z: T) -> T {
    match act {
        NetActivation::Relu => z.max(T::default()),
        NetActivation::Tanh => z.tanh(),
        NetActivation::Sin => (T::from_f64(30.0) * z).sin(),
    }
}

/// σ'(z) given z and a = σ(z), for the backward pass.
fn derivative<T: Float>(act: NetActivation, z: T, a: T) -> T {
    let one = T::from_f64(1.0);
    match act {
        NetActivation::Relu => {
            if z > T::default() {
                one
            } else {
                T::default()
            }
        }
        NetActivation::Tanh => one - a * a,
        NetActivation::Sin => {
            // 30 cos(30 z) = 30 sin(30 z + π/2).
            let w = T::from_f64(30.0);
            w * (w * z + T::from_f64(std::f64::consts::FRAC_PI_2)).sin()
        }
    }
}

/// Geometry of one layer's GEMM: `rows_per_sample` × `k` input patches times a k × n kernel.
#[derive(Clone, Copy, Debug)]
struct Geo {
    conv: bool,
    /// The input is the global average of the previous conv layer's maps.
    pooled: bool,
    h_in: usize,
    w_in: usize,
    h_out: usize,
    w_out: usize,
    pad_top: usize,
    pad_left: usize,
    kh: usize,
    kw: usize,
    c_in: usize,
    c_out: usize,
}

impl Geo {
    fn rows_per_sample(&self) -> usize {
        self.h_out * self.w_out
    }
    fn k(&self) -> usize {
        self.kh * self.kw * self.c_in
    }
}

/// A network architecture bound to its input size, ready to run rows of a [`Layout`].
#[derive(Clone, Debug)]
pub struct Net {
    layout: Layout,
    geo: Vec<Geo>,
}

/// What a forward pass keeps for the backward pass.
#[derive(Clone, Debug, Default)]
pub struct Trace<T> {
    /// Per layer, the GEMM's input matrix (im2col patches, pooled or plain activations).
    inputs: Vec<Vec<T>>,
    /// Per hidden layer, σ'(z).
    derivs: Vec<Vec<T>>,
    /// Per hidden layer, the dropout multiplier of each unit (empty without dropout).
    masks: Vec<Vec<T>>,
    /// The outputs (logits), batch × n_L.
    pub logits: Vec<T>,
}

/// TensorFlow 'same' padding: (output size, padding before).
fn same(n: usize, k: usize) -> (usize, usize) {
    let out = n.div_ceil(STRIDE);
    let total = ((out - 1) * STRIDE + k).saturating_sub(n);
    (out, total / 2)
}

impl Net {
    /// Binds `layout` to inputs of h × w pixels with n_0 channels (NHWC); a net that starts with
    /// a dense layer reads n_0 values per sample and ignores h and w. Convs come before dense
    /// layers.
    pub fn new(layout: &Layout, h: usize, w: usize) -> Result<Self> {
        let spec = layout.spec();
        let mut geo = Vec::new();
        let (mut h, mut w) = (h, w);
        let mut after_conv = false;
        for (i, l) in spec.layers.iter().enumerate() {
            if l.conv {
                if i > 0 && !spec.layers[i - 1].conv {
                    return Err(Error::Spec(format!(
                        "layer {i} is a conv after a dense layer; zoo networks are convs, pool, dense"
                    )));
                }
                let (h_out, pad_top) = same(h, l.kh);
                let (w_out, pad_left) = same(w, l.kw);
                geo.push(Geo {
                    conv: true,
                    pooled: false,
                    h_in: h,
                    w_in: w,
                    h_out,
                    w_out,
                    pad_top,
                    pad_left,
                    kh: l.kh,
                    kw: l.kw,
                    c_in: l.n_in,
                    c_out: l.n_out,
                });
                (h, w) = (h_out, w_out);
                after_conv = true;
            } else {
                geo.push(Geo {
                    conv: false,
                    pooled: after_conv,
                    h_in: h,
                    w_in: w,
                    h_out: 1,
                    w_out: 1,
                    pad_top: 0,
                    pad_left: 0,
                    kh: 1,
                    kw: 1,
                    c_in: l.n_in,
                    c_out: l.n_out,
                });
                after_conv = false;
                (h, w) = (1, 1);
            }
        }
        Ok(Net {
            layout: layout.clone(),
            geo,
        })
    }

    /// The layout of the rows this net runs.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Values per input sample.
    pub fn input_len(&self) -> usize {
        let g = &self.geo[0];
        if g.conv {
            g.h_in * g.w_in * g.c_in
        } else {
            g.c_in
        }
    }

    /// Outputs per sample (n_L).
    pub fn output_len(&self) -> usize {
        self.layout.spec().n_out()
    }

    /// Runs `batch` samples `x` (NHWC) through the network whose parameters are `row`. With
    /// `dropout = Some((p, rng))` hidden units are zeroed with probability p and the rest scaled
    /// by 1/(1−p). `keep` keeps what [`Net::backward`] needs.
    pub fn forward<T: Float>(
        &self,
        row: &[T],
        x: &[T],
        batch: usize,
        mut dropout: Option<(f32, &mut dyn rand::RngCore)>,
        keep: bool,
    ) -> Trace<T> {
        let act = self.layout.spec().activation;
        let last = self.geo.len() - 1;
        let mut trace = Trace::default();
        let mut cur: Vec<T> = x.to_vec();
        for (i, g) in self.geo.iter().enumerate() {
            let a = if g.conv {
                im2col(g, &cur, batch)
            } else if g.pooled {
                pool(&cur, batch, g.h_in * g.w_in, g.c_in)
            } else {
                cur
            };
            let m = batch * g.rows_per_sample();
            let bias = self.layout.bias(row, i);
            let mut z: Vec<T> = Vec::with_capacity(m * g.c_out);
            for _ in 0..m {
                z.extend_from_slice(bias);
            }
            T::gemm(
                m,
                g.k(),
                g.c_out,
                &a,
                (g.k(), 1),
                self.layout.kernel(row, i),
                (g.c_out, 1),
                T::from_f64(1.0),
                &mut z,
            );
            if keep {
                trace.inputs.push(a);
            }
            if i == last {
                trace.logits = z;
                break;
            }
            if keep {
                let mut d = Vec::with_capacity(z.len());
                for v in z.iter_mut() {
                    let a = activate(act, *v);
                    d.push(derivative(act, *v, a));
                    *v = a;
                }
                trace.derivs.push(d);
            } else {
                z.iter_mut().for_each(|v| *v = activate(act, *v));
            }
            if let Some((p, rng)) = dropout.as_mut() {
                let mask = dropout_mask::<T>(z.len(), *p, &mut **rng);
                z.iter_mut().zip(&mask).for_each(|(v, &s)| *v = *v * s);
                if keep {
                    trace.masks.push(mask);
                }
            }
            cur = z;
        }
        trace
    }

    /// Gradient of a loss with respect to every parameter, added into `grad` (a row), given the
    /// loss gradient `dlogits` of a forward pass kept with `keep = true`.
    pub fn backward(
        &self,
        row: &[f32],
        trace: &Trace<f32>,
        batch: usize,
        dlogits: Vec<f32>,
        grad: &mut [f32],
    ) {
        let mut dz = dlogits;
        for i in (0..self.geo.len()).rev() {
            let g = &self.geo[i];
            let (m, k, n) = (batch * g.rows_per_sample(), g.k(), g.c_out);
            let x = &trace.inputs[i];
            {
                let (gk, gb) = self.layout.kernel_bias_mut(grad, i);
                // gK += Xᵀ dZ
                f32::gemm(k, m, n, x, (1, k), &dz, (n, 1), 1.0, gk);
                for r in dz.chunks_exact(n) {
                    gb.iter_mut().zip(r).for_each(|(b, d)| *b += d);
                }
            }
            if i == 0 {
                break;
            }
            // dX = dZ Kᵀ
            let kernel = self.layout.kernel(row, i);
            let mut dx = vec![0f32; m * k];
            f32::gemm(m, n, k, &dz, (n, 1), kernel, (1, n), 1.0, &mut dx);
            let mut da = if g.conv {
                col2im(g, &dx, batch)
            } else if g.pooled {
                let p = g.h_in * g.w_in;
                let inv = 1.0 / p as f32;
                let mut out = vec![0f32; batch * p * g.c_in];
                for (b, d) in dx.chunks_exact(g.c_in).enumerate() {
                    for pos in 0..p {
                        let o = &mut out[(b * p + pos) * g.c_in..(b * p + pos + 1) * g.c_in];
                        o.iter_mut().zip(d).for_each(|(o, d)| *o = d * inv);
                    }
                }
                out
            } else {
                dx
            };
            if let Some(mask) = trace.masks.get(i - 1) {
                da.iter_mut().zip(mask).for_each(|(d, s)| *d *= s);
            }
            da.iter_mut()
                .zip(&trace.derivs[i - 1])
                .for_each(|(d, s)| *d *= s);
            dz = da;
        }
    }
}

/// Inverted-dropout multipliers: 0 with probability p, else 1/(1 − p); four 16-bit draws per
/// random u64 (dropout masks were a fifth of the generator's time with one draw per unit).
fn dropout_mask<T: Float>(n: usize, p: f32, rng: &mut dyn rand::RngCore) -> Vec<T> {
    let scale = T::from_f64(1.0 / (1.0 - p as f64));
    let threshold = (p * 65536.0) as u32;
    let mut mask = Vec::with_capacity(n + 3);
    while mask.len() < n {
        let bits = rng.next_u64();
        for k in 0..4 {
            let u = (bits >> (16 * k)) as u32 & 0xffff;
            mask.push(if u < threshold { T::default() } else { scale });
        }
    }
    mask.truncate(n);
    mask
}

/// Calls `visit(map, patch)` with the offsets of every in-bounds pair of a map pixel's c_in
/// values (NHWC) and the slot they fill in a patch row; padding slots are skipped.
fn for_each_patch(g: &Geo, batch: usize, mut visit: impl FnMut(usize, usize)) {
    for b in 0..batch {
        for oy in 0..g.h_out {
            for ox in 0..g.w_out {
                let r = (b * g.h_out + oy) * g.w_out + ox;
                for ky in 0..g.kh {
                    let iy = (oy * STRIDE + ky).wrapping_sub(g.pad_top);
                    if iy >= g.h_in {
                        continue;
                    }
                    for kx in 0..g.kw {
                        let ix = (ox * STRIDE + kx).wrapping_sub(g.pad_left);
                        if ix < g.w_in {
                            visit(
                                ((b * g.h_in + iy) * g.w_in + ix) * g.c_in,
                                r * g.k() + (ky * g.kw + kx) * g.c_in,
                            );
                        }
                    }
                }
            }
        }
    }
}

/// NHWC maps (batch, h_in, w_in, c_in) -> patches (batch·h_out·w_out, kh·kw·c_in), zero-padded.
fn im2col<T: Float>(g: &Geo, x: &[T], batch: usize) -> Vec<T> {
    let mut out = vec![T::default(); batch * g.rows_per_sample() * g.k()];
    for_each_patch(g, batch, |src, dst| {
        out[dst..dst + g.c_in].copy_from_slice(&x[src..src + g.c_in])
    });
    out
}

/// The adjoint of [`im2col`]: patch gradients summed back onto the maps.
fn col2im(g: &Geo, d: &[f32], batch: usize) -> Vec<f32> {
    let mut out = vec![0f32; batch * g.h_in * g.w_in * g.c_in];
    for_each_patch(g, batch, |dst, src| {
        out[dst..dst + g.c_in]
            .iter_mut()
            .zip(&d[src..src + g.c_in])
            .for_each(|(o, v)| *o += v)
    });
    out
}

/// Global average pooling: (batch, positions, c) -> (batch, c).
fn pool<T: Float>(x: &[T], batch: usize, positions: usize, c: usize) -> Vec<T> {
    let inv = T::from_f64(1.0 / positions as f64);
    let mut out = vec![T::default(); batch * c];
    for b in 0..batch {
        let o = &mut out[b * c..(b + 1) * c];
        for p in 0..positions {
            let src = &x[(b * positions + p) * c..(b * positions + p + 1) * c];
            o.iter_mut().zip(src).for_each(|(o, &v)| *o += v);
        }
        o.iter_mut().for_each(|v| *v = *v * inv);
    }
    out
}

/// Softmax cross-entropy over `classes` logits per sample: (mean loss, dlogits of the mean,
/// number of correct argmax predictions).
pub fn softmax_xent(logits: &[f32], labels: &[u8], classes: usize) -> (f32, Vec<f32>, usize) {
    let b = labels.len();
    let mut grad = vec![0f32; logits.len()];
    let (mut loss, mut correct) = (0f64, 0);
    for (n, (z, &y)) in logits.chunks_exact(classes).zip(labels).enumerate() {
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = z.iter().map(|v| (v - max).exp()).sum();
        let g = &mut grad[n * classes..(n + 1) * classes];
        for (j, (gj, &zj)) in g.iter_mut().zip(z).enumerate() {
            let p = (zj - max).exp() / sum;
            *gj = (p - (j == y as usize) as u8 as f32) / b as f32;
        }
        loss += (sum.ln() + max - z[y as usize]) as f64;
        let arg = (0..classes).fold(0, |a, j| if z[j] > z[a] { j } else { a });
        correct += (arg == y as usize) as usize;
    }
    ((loss / b as f64) as f32, grad, correct)
}
