//! The execution plan: a model's forward pass lowered to a flat list of ops on numbered buffers.
//!
//! Forward passes reduce to a few op families (DESIGN §3): contiguous GEMMs (all
//! equivariant-layer terms and dense layers, thanks to the internal layout of `space.rs`),
//! elementwise activations, the normalise-and-average pool, strided sums (the means and
//! broadcasts of the permutation-only baselines, SPEC §5) and STATNN's statistics; training adds
//! their backward ops (`autodiff.rs`), losses and the optimizer. Each op has one WGSL file and one
//! CPU twin; both backends execute the same plan.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::nn::params::ParamSet;

/// Index of a buffer in a [`Plan`].
pub type BufId = usize;

/// Elementwise functions (SPEC §2.5, §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Activation {
    /// max(x, 0).
    Relu,
    /// tanh(x), computed as sign(x)(1 − 2/(exp(2|x|)+1)) (SPEC §9.7).
    Tanh,
    /// sin(x), range-reduced on the GPU (SPEC §9.7).
    Sin,
    /// |x|.
    Abs,
    /// 1/(1+exp(−x)).
    Sigmoid,
}

impl Activation {
    /// Code used in the WGSL uniform.
    pub fn code(self) -> u32 {
        match self {
            Activation::Relu => 0,
            Activation::Tanh => 1,
            Activation::Sin => 2,
            Activation::Abs => 3,
            Activation::Sigmoid => 4,
        }
    }
}

/// PyTorch's `F.normalize` clamp x / max(‖x‖, ε): the reference's ε, the pools' default.
pub const NORM_EPS: f64 = 1e-12;

/// The norm an entry vector is divided by in the pool (SPEC §4.1), clamped at the op's ε.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Norm {
    /// No normalisation (HNP/NP pools, the raw last bias).
    None,
    /// x / max(‖x‖₁, ε).
    L1,
    /// x / max(‖x‖₂, ε).
    L2,
}

/// C = op(A)·op(B) (+ C if `accumulate`) (+ bias broadcast over rows), all row-major and
/// contiguous; op transposes when the flag is set (backward passes, SPEC §8.1).
#[derive(Clone, Debug, PartialEq)]
pub struct GemmOp {
    /// A: m×k (stored k×m when `trans_a`).
    pub a: BufId,
    /// B: k×n (stored n×k when `trans_b`).
    pub b: BufId,
    /// Optional bias of length n.
    pub bias: Option<BufId>,
    /// C: m×n.
    pub c: BufId,
    /// Rows.
    pub m: usize,
    /// Inner dimension.
    pub k: usize,
    /// Columns.
    pub n: usize,
    /// Add to C instead of overwriting it.
    pub accumulate: bool,
    /// A is stored transposed.
    pub trans_a: bool,
    /// B is stored transposed.
    pub trans_b: bool,
}

/// y = act(x) over `len` elements.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationOp {
    /// Input.
    pub x: BufId,
    /// Output (may not alias the input).
    pub y: BufId,
    /// Function.
    pub act: Activation,
    /// Element count.
    pub len: usize,
}

/// One piece of an invariant pool (SPEC §4.2): x is (B, R, S, C·f); each entry vector x\[b,r,s,:\]
/// is normalised, optionally squared or affinely mapped, then averaged over r:
/// out[b, c, offset + s·f + t] = mean_r y[b, r, s, c·f + t], with out of shape (B, C, width).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolOp {
    /// Input feature.
    pub x: BufId,
    /// Output (B, C, width), written at `offset` (disjoint pieces, so no accumulation).
    pub out: BufId,
    /// Learned scale γ (length C·f) for `param_mul_L2`.
    pub gamma: Option<BufId>,
    /// Learned shift β (length C·f) for `param_mul_L2`.
    pub beta: Option<BufId>,
    /// Batch.
    pub batch: usize,
    /// Averaged axis.
    pub r: usize,
    /// Kept axis.
    pub s: usize,
    /// Channels C.
    pub channels: usize,
    /// Kernel positions f.
    pub f: usize,
    /// Norm of the entry vector.
    pub norm: Norm,
    /// The norm is clamped from below at eps (PyTorch's 1e-12); 0 means exact normalisation,
    /// with zero vectors mapped to zero.
    pub eps: f64,
    /// Square the normalised vector (`L2_square`).
    pub square: bool,
    /// Per-channel width F of the output.
    pub width: usize,
    /// Offset of this piece inside F.
    pub offset: usize,
}

/// A strided sum over one axis, which also broadcasts (R = 1 with a zero stride):
/// y[a·ya + s·ys + k] (+)= alpha · Σ_{r<R} x[a·xa + s·xs + r·xr + k] for a < A, s < S, k < K.
/// The output positions of distinct (a, s, k) must be distinct.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceOp {
    /// Input.
    pub x: BufId,
    /// Output (may not alias the input).
    pub y: BufId,
    /// Outer extent A.
    pub outer: usize,
    /// Middle extent S.
    pub mid: usize,
    /// Contiguous inner extent K.
    pub inner: usize,
    /// Summed extent R.
    pub r: usize,
    /// Input strides of a, s and r.
    pub x_strides: [usize; 3],
    /// Output strides of a and s.
    pub y_strides: [usize; 2],
    /// Factor applied to the sum (1/R for a mean).
    pub alpha: f64,
    /// Add to y instead of overwriting it.
    pub accumulate: bool,
}

/// dx (+)= dy ⊙ act'(x) over `len` elements, with x the activation's input (SPEC §8.2).
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationGradOp {
    /// The forward input (pre-activation); for ReLU the autodiff passes the output instead,
    /// which gives the same derivative.
    pub x: BufId,
    /// Gradient of the forward output.
    pub dy: BufId,
    /// Gradient of the forward input.
    pub dx: BufId,
    /// Function.
    pub act: Activation,
    /// Element count.
    pub len: usize,
    /// Add to dx instead of overwriting it.
    pub accumulate: bool,
}

/// Backward of one pool piece (SPEC §8.3): dx (+)= J·ĝ per entry vector, with ĝ the piece's output
/// gradient divided by R. For affine pieces it also writes one row of the γ and β gradients per
/// batch item and position s (Σ_r ĝ ⊙ u and Σ_r ĝ, each (B·S, E)), which strided sums then
/// reduce over B·S: no atomics, and no row per entry.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolGradOp {
    /// The forward piece.
    pub fwd: PoolOp,
    /// Gradient of the pool output (B, C, width).
    pub dout: BufId,
    /// Gradient of the piece's input.
    pub dx: BufId,
    /// Add to dx instead of overwriting it.
    pub accumulate: bool,
    /// Rows of ∂γ and ∂β for affine pieces, (B·S, E) each.
    pub affine_rows: Option<(BufId, BufId)>,
}

/// The scalar losses of training and of the golden gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossKind {
    /// ½ Σ pred² (the goldens' layer loss: the gradient is the output itself).
    HalfSumSquares,
    /// mean (pred − target)².
    Mse,
    /// Binary cross-entropy on probabilities, each log clamped at −100 (PyTorch's `BCELoss`).
    Bce,
    /// Softmax cross-entropy of logits (rows of `classes`) against target probabilities.
    SoftmaxCe {
        /// Classes per row.
        classes: usize,
    },
}

/// The loss in words, for error messages.
impl std::fmt::Display for LossKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LossKind::HalfSumSquares => write!(f, "half sum of squares"),
            LossKind::Mse => write!(f, "mean squared error"),
            LossKind::Bce => write!(f, "binary cross-entropy"),
            LossKind::SoftmaxCe { classes } => {
                write!(f, "softmax cross-entropy over {classes} classes")
            }
        }
    }
}

/// loss\[0\] = L(pred, target) and dpred = ∂L/∂pred over `len` predictions (SPEC §8.4).
#[derive(Clone, Debug, PartialEq)]
pub struct LossOp {
    /// Predictions.
    pub pred: BufId,
    /// Targets (same length; unused by `HalfSumSquares`).
    pub target: Option<BufId>,
    /// One-element loss output.
    pub loss: BufId,
    /// Gradient of the loss with respect to the predictions.
    pub dpred: BufId,
    /// Which loss.
    pub kind: LossKind,
    /// Number of predictions.
    pub len: usize,
}

/// Adam / AdamW on one parameter buffer (PyTorch's update, SPEC §6.1): with g = grad·c, where
/// c = min(1, max_norm/(‖grads‖ + 1e-6)) when clipping (‖grads‖² read from `norm_sq`),
/// g += wd·p (Adam) or p −= lr·wd·p (AdamW), m = β₁m + (1−β₁)g, v = β₂v + (1−β₂)g²,
/// p −= lr·(m/bc₁)/(√(v/bc₂) + eps). lr, bc₁ = 1−β₁ᵗ, bc₂ = 1−β₂ᵗ come from `hyper` per step.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamOp {
    /// Parameters, updated in place.
    pub param: BufId,
    /// Their gradient.
    pub grad: BufId,
    /// First moment.
    pub m: BufId,
    /// Second moment.
    pub v: BufId,
    /// [lr, bc₁, bc₂] of this step.
    pub hyper: BufId,
    /// ‖all gradients‖² when clipping.
    pub norm_sq: Option<BufId>,
    /// Clipping threshold (used with `norm_sq`).
    pub max_norm: f64,
    /// Element count.
    pub len: usize,
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Decoupled weight decay (AdamW).
    pub decoupled: bool,
}

/// out\[0\] (+)= Σ x² over `len` elements, in a fixed-order tree (gradient-norm clipping).
#[derive(Clone, Debug, PartialEq)]
pub struct SumSquaresOp {
    /// Input.
    pub x: BufId,
    /// One-element output.
    pub out: BufId,
    /// Element count.
    pub len: usize,
    /// Add to out instead of overwriting it.
    pub accumulate: bool,
}

/// The seven STATNN statistics (SPEC §5.4) of one tensor: x is (B, M, C·f) and this op writes
/// out[b, c, offset + k], k < 7: mean, unbiased variance, quantiles 0, .25, .5, .75, 1 over the
/// M·f values of channel c. Not differentiable (STATNN's features feed no gradient).
#[derive(Clone, Debug, PartialEq)]
pub struct StatOp {
    /// Input feature.
    pub x: BufId,
    /// Output (B, C, width).
    pub out: BufId,
    /// Batch.
    pub batch: usize,
    /// Entries M.
    pub m: usize,
    /// Channels C.
    pub channels: usize,
    /// Kernel positions f.
    pub f: usize,
    /// Per-channel output width.
    pub width: usize,
    /// Offset of this tensor's statistics.
    pub offset: usize,
}

/// A batch of SIRENs with per-sample weights, evaluated at shared points (SPEC §1.4, §6.3):
/// a₀ = coords\[p\], zᵢ = Wᵢ aᵢ₋₁ + bᵢ, aᵢ = sin(ω zᵢ) for hidden layers, out\[b, p, :\] = z_L.
/// Each sample's parameters are one row of `params`: per layer Wᵢ (nᵢ × nᵢ₋₁, row-major) then
/// bᵢ. The trace keeps, per (b, p) and hidden layer, aᵢ then ω cos(ω zᵢ) for the backward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct SirenOp {
    /// Per-sample parameters (B, D).
    pub params: BufId,
    /// Evaluation points (P, n₀).
    pub coords: BufId,
    /// Outputs (B, P, n_L).
    pub out: BufId,
    /// Hidden activations and derivatives (B, P, 2·Σ hidden widths).
    pub trace: BufId,
    /// Samples B.
    pub batch: usize,
    /// Points P.
    pub points: usize,
    /// Widths n₀, n₁, …, n_L.
    pub widths: Vec<usize>,
    /// Frequency ω of the hidden sin (30 for SIRENs).
    pub omega: f64,
}

impl SirenOp {
    /// Parameters per sample D = Σᵢ nᵢ(nᵢ₋₁ + 1).
    pub fn params_per_sample(widths: &[usize]) -> usize {
        widths.windows(2).map(|w| w[1] * (w[0] + 1)).sum()
    }

    /// Trace values per (sample, point): 2·Σ hidden widths.
    pub fn trace_per_point(widths: &[usize]) -> usize {
        2 * widths[1..widths.len() - 1].iter().sum::<usize>()
    }

    /// Pre-activation gradients per (sample, point) in the backward pass: Σ_{i≥1} nᵢ.
    pub fn dz_per_point(widths: &[usize]) -> usize {
        widths[1..].iter().sum()
    }
}

/// Backward of [`SirenOp`] to the per-sample parameters (SPEC §8.4): a per-point pass
/// back-propagates `dout` into ∂zᵢ (kept in `dz`), then a per-parameter pass sums
/// ∂Wᵢ\[j,k\] = Σ_p ∂zᵢ\[p,j\]·aᵢ₋₁\[p,k\] and ∂bᵢ\[j\] = Σ_p ∂zᵢ\[p,j\] in a fixed order.
#[derive(Clone, Debug, PartialEq)]
pub struct SirenGradOp {
    /// The forward op.
    pub fwd: SirenOp,
    /// Gradient of the outputs (B, P, n_L).
    pub dout: BufId,
    /// Scratch for ∂zᵢ (B, P, Σ_{i≥1} nᵢ).
    pub dz: BufId,
    /// Gradient of the parameters (B, D).
    pub dparams: BufId,
    /// Add to dparams instead of overwriting it.
    pub accumulate: bool,
}

/// y[a, s, k] (+)= x[a, s, k] · mask[a, k] over x of shape (A, S, K): dropout with a mask of
/// 0 or 1/(1 − p) drawn per step, per channel of a whole matrix (channel dropout, S = entries)
/// or per element (S = 1). Its own backward: dx (+)= dy · mask.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskOp {
    /// Input.
    pub x: BufId,
    /// Mask (A, K).
    pub mask: BufId,
    /// Output (may not alias the input).
    pub y: BufId,
    /// Outer extent A.
    pub outer: usize,
    /// Middle extent S, sharing one mask value.
    pub mid: usize,
    /// Inner extent K.
    pub inner: usize,
    /// Add to y instead of overwriting it.
    pub accumulate: bool,
}

impl ReduceOp {
    /// y (+)= Σ over `rows` rows of the rows × n matrix x.
    pub fn sum_rows(x: BufId, y: BufId, rows: usize, n: usize, accumulate: bool) -> Self {
        ReduceOp {
            x,
            y,
            outer: 1,
            mid: 1,
            inner: n,
            r: rows,
            x_strides: [0, 0, n],
            y_strides: [0, 0],
            alpha: 1.0,
            accumulate,
        }
    }
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A GEMM.
    Gemm(GemmOp),
    /// An activation.
    Activation(ActivationOp),
    /// A pool piece.
    Pool(PoolOp),
    /// A strided sum or broadcast.
    Reduce(ReduceOp),
    /// Backward of an activation.
    ActivationGrad(ActivationGradOp),
    /// Backward of a pool piece.
    PoolGrad(PoolGradOp),
    /// A loss and its gradient.
    Loss(LossOp),
    /// An optimizer update.
    Adam(AdamOp),
    /// A squared norm.
    SumSquares(SumSquaresOp),
    /// STATNN statistics.
    Stat(StatOp),
    /// A batch of SIRENs evaluated at shared points.
    Siren(SirenOp),
    /// Backward of a SIREN batch to its parameters.
    SirenGrad(SirenGradOp),
    /// Multiplication by a broadcast mask (dropout).
    Mask(MaskOp),
}

/// What a buffer holds.
#[derive(Clone, Debug, PartialEq)]
pub enum BufKind {
    /// Filled from the caller's input at each run.
    Input,
    /// A parameter, packed at plan build (values in f64).
    Param(Vec<f64>),
    /// Written by ops.
    Scratch,
}

/// Where a parameter buffer's values come from: element i is coefficient `indices[i]` of the
/// tensor `name` of model layer `layer`. Every packing is a gather that uses each coefficient at
/// most once, so a packed gradient maps back one to one.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSource {
    /// Index of the layer in its model.
    pub layer: usize,
    /// Parameter name within the layer.
    pub name: String,
    /// Coefficient index of each packed element.
    pub indices: Vec<usize>,
}

/// A buffer of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct BufDesc {
    /// Elements.
    pub len: usize,
    /// Role.
    pub kind: BufKind,
    /// For parameters packed from a model's coefficients: their origin.
    pub source: Option<ParamSource>,
}

/// A forward pass as ops over buffers, built once per (model, batch size).
#[derive(Debug)]
pub struct Plan {
    /// Unique id, so backends can cache what they compile from it.
    pub id: u64,
    /// All buffers.
    pub bufs: Vec<BufDesc>,
    /// Ops in execution order.
    pub ops: Vec<Op>,
    /// Input buffers in the order `run` expects them.
    pub inputs: Vec<BufId>,
    /// Output buffers in the order `run` returns them.
    pub outputs: Vec<BufId>,
    /// The plan carries state across runs (parameters updated in place, optimizer moments): a
    /// backend keeps its buffers until [`crate::Backend::release`], never evicting them.
    pub stateful: bool,
}

/// Builds a [`Plan`].
#[derive(Debug, Default)]
pub struct PlanBuilder {
    pub(crate) bufs: Vec<BufDesc>,
    pub(crate) ops: Vec<Op>,
    pub(crate) inputs: Vec<BufId>,
    layer: usize,
}

impl PlanBuilder {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&mut self, len: usize, kind: BufKind) -> BufId {
        self.bufs.push(BufDesc {
            len,
            kind,
            source: None,
        });
        self.bufs.len() - 1
    }

    /// Sets the model layer that following [`PlanBuilder::coef`] calls belong to.
    pub fn set_layer(&mut self, layer: usize) {
        self.layer = layer;
    }

    /// A parameter buffer gathered from tensor `name` of `params`: element i is coefficient
    /// `indices[i]` (recorded, so gradients can be mapped back).
    pub fn coef(&mut self, params: &ParamSet, name: &str, indices: Vec<usize>) -> BufId {
        let data = params.data(name);
        let id = self.param(indices.iter().map(|&i| data[i]).collect());
        self.bufs[id].source = Some(ParamSource {
            layer: self.layer,
            name: name.to_string(),
            indices,
        });
        id
    }

    /// A parameter buffer holding `data` that gradients reach and optimizers update, recorded
    /// as tensor `name` of the current layer (identity packing).
    pub fn trainable(&mut self, data: Vec<f64>, name: &str) -> BufId {
        let len = data.len();
        let id = self.param(data);
        self.bufs[id].source = Some(ParamSource {
            layer: self.layer,
            name: name.to_string(),
            indices: (0..len).collect(),
        });
        id
    }

    /// Ops appended so far (the forward part, before `append_backward`).
    pub fn num_ops(&self) -> usize {
        self.ops.len()
    }

    /// A new input buffer.
    pub fn input(&mut self, len: usize) -> BufId {
        let id = self.add(len, BufKind::Input);
        self.inputs.push(id);
        id
    }

    /// A new parameter buffer holding `data`.
    pub fn param(&mut self, data: Vec<f64>) -> BufId {
        self.add(data.len(), BufKind::Param(data))
    }

    /// A new scratch buffer.
    pub fn scratch(&mut self, len: usize) -> BufId {
        self.add(len, BufKind::Scratch)
    }

    /// Length of a buffer.
    pub fn len_of(&self, id: BufId) -> usize {
        self.bufs[id].len
    }

    /// Appends an op.
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// GEMM into `c` (which must already exist).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(
        &mut self,
        a: BufId,
        b: BufId,
        bias: Option<BufId>,
        c: BufId,
        m: usize,
        k: usize,
        n: usize,
        accumulate: bool,
    ) {
        debug_assert_eq!(self.len_of(a), m * k);
        debug_assert_eq!(self.len_of(b), k * n);
        debug_assert_eq!(self.len_of(c), m * n);
        self.push(Op::Gemm(GemmOp {
            a,
            b,
            bias,
            c,
            m,
            k,
            n,
            accumulate,
            trans_a: false,
            trans_b: false,
        }));
    }

    /// y = act(x) into a new buffer.
    pub fn activation(&mut self, x: BufId, act: Activation) -> BufId {
        let len = self.len_of(x);
        let y = self.scratch(len);
        self.push(Op::Activation(ActivationOp { x, y, act, len }));
        y
    }

    /// Renders `batch` SIRENs of `widths` (per-sample parameters (B, D) in `params`) at the
    /// `points` rows of `coords`; returns the output buffer (B, P, n_L). See [`SirenOp`].
    pub fn siren(
        &mut self,
        params: BufId,
        coords: BufId,
        batch: usize,
        widths: &[usize],
        omega: f64,
    ) -> crate::error::Result<BufId> {
        if widths.len() < 3 || widths.contains(&0) {
            return Err(crate::error::Error::Spec(format!(
                "a SIREN needs at least one hidden layer and nonzero widths, got {widths:?}"
            )));
        }
        let d = SirenOp::params_per_sample(widths);
        let n0 = widths[0];
        if self.len_of(params) != batch * d || self.len_of(coords) % n0 != 0 {
            return Err(crate::error::Error::shape(
                "SIREN parameters (B, D)",
                &[batch, d],
                &[self.len_of(params)],
            ));
        }
        let points = self.len_of(coords) / n0;
        let out = self.scratch(batch * points * widths[widths.len() - 1]);
        let trace = self.scratch(batch * points * SirenOp::trace_per_point(widths));
        self.push(Op::Siren(SirenOp {
            params,
            coords,
            out,
            trace,
            batch,
            points,
            widths: widths.to_vec(),
            omega,
        }));
        Ok(out)
    }

    /// y = x ⊙ mask broadcast over the middle axis of x (A, S, K), into a new buffer; the mask
    /// (A, K) is a new input filled per run (dropout). Returns (y, mask).
    pub fn mask(&mut self, x: BufId, outer: usize, mid: usize, inner: usize) -> (BufId, BufId) {
        debug_assert_eq!(self.len_of(x), outer * mid * inner);
        let mask = self.input(outer * inner);
        let y = self.scratch(outer * mid * inner);
        self.push(Op::Mask(MaskOp {
            x,
            mask,
            y,
            outer,
            mid,
            inner,
            accumulate: false,
        }));
        (y, mask)
    }

    /// Appends a strided sum (see [`ReduceOp`]).
    pub fn reduce(&mut self, op: ReduceOp) {
        // Elements spanned: 1 + Σ (extent − 1)·stride over every axis (K has stride 1).
        let span =
            |ext: &[(usize, usize)]| 1 + ext.iter().map(|&(n, st)| (n - 1) * st).sum::<usize>();
        let [xa, xs, xr] = op.x_strides;
        let [ya, ys] = op.y_strides;
        debug_assert!(
            span(&[(op.outer, xa), (op.mid, xs), (op.r, xr), (op.inner, 1)]) <= self.len_of(op.x)
        );
        debug_assert!(span(&[(op.outer, ya), (op.mid, ys), (op.inner, 1)]) <= self.len_of(op.y));
        self.push(Op::Reduce(op));
    }

    /// Finishes with the given outputs.
    pub fn finish(self, outputs: Vec<BufId>) -> Plan {
        self.build(outputs, false)
    }

    /// Finishes a plan whose buffers persist between runs (training steps).
    pub fn finish_stateful(self, outputs: Vec<BufId>) -> Plan {
        self.build(outputs, true)
    }

    fn build(self, outputs: Vec<BufId>, stateful: bool) -> Plan {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Plan {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            bufs: self.bufs,
            ops: self.ops,
            inputs: self.inputs,
            outputs,
            stateful,
        }
    }
}

impl Op {
    /// Buffers the op reads (its main input first).
    pub fn reads(&self) -> Vec<BufId> {
        match self {
            Op::Gemm(g) => {
                let mut v = vec![g.a, g.b];
                v.extend(g.bias);
                if g.accumulate {
                    v.push(g.c);
                }
                v
            }
            Op::Activation(a) => vec![a.x],
            Op::Pool(p) => [Some(p.x), p.gamma, p.beta].into_iter().flatten().collect(),
            Op::Reduce(r) if r.accumulate => vec![r.x, r.y],
            Op::Reduce(r) => vec![r.x],
            Op::ActivationGrad(a) if a.accumulate => vec![a.dy, a.x, a.dx],
            Op::ActivationGrad(a) => vec![a.dy, a.x],
            Op::PoolGrad(p) => {
                let f = &p.fwd;
                let mut v = vec![p.dout, f.x];
                v.extend(f.gamma.iter().chain(&f.beta));
                if p.accumulate {
                    v.push(p.dx);
                }
                v
            }
            Op::Loss(l) => [Some(l.pred), l.target].into_iter().flatten().collect(),
            Op::Adam(a) => {
                let mut v = vec![a.grad, a.param, a.m, a.v, a.hyper];
                v.extend(a.norm_sq);
                v
            }
            Op::SumSquares(q) if q.accumulate => vec![q.x, q.out],
            Op::SumSquares(q) => vec![q.x],
            Op::Stat(q) => vec![q.x],
            Op::Siren(s) => vec![s.params, s.coords],
            Op::SirenGrad(g) => {
                let f = &g.fwd;
                let mut v = vec![g.dout, f.params, f.coords, f.trace];
                if g.accumulate {
                    v.push(g.dparams);
                }
                v
            }
            Op::Mask(m) if m.accumulate => vec![m.x, m.mask, m.y],
            Op::Mask(m) => vec![m.x, m.mask],
        }
    }

    /// The buffer the op writes (its main output).
    pub fn writes(&self) -> BufId {
        match self {
            Op::Gemm(g) => g.c,
            Op::Activation(a) => a.y,
            Op::Pool(p) => p.out,
            Op::Reduce(r) => r.y,
            Op::ActivationGrad(a) => a.dx,
            Op::PoolGrad(p) => p.dx,
            Op::Loss(l) => l.dpred,
            Op::Adam(a) => a.param,
            Op::SumSquares(q) => q.out,
            Op::Stat(q) => q.out,
            Op::Siren(s) => s.out,
            Op::SirenGrad(g) => g.dparams,
            Op::Mask(m) => m.y,
        }
    }

    /// The op family's name (for profiles).
    pub fn family(&self) -> &'static str {
        match self {
            Op::Gemm(g) if g.trans_a => "gemm Aᵀ",
            Op::Gemm(g) if g.trans_b => "gemm Bᵀ",
            Op::Gemm(_) => "gemm",
            Op::Activation(_) => "activation",
            Op::Pool(_) => "pool",
            Op::Reduce(_) => "reduce",
            Op::ActivationGrad(_) => "activation grad",
            Op::PoolGrad(_) => "pool grad",
            Op::Loss(_) => "loss",
            Op::Adam(_) => "adam",
            Op::SumSquares(_) => "sum squares",
            Op::Stat(_) => "stat",
            Op::Siren(_) => "siren",
            Op::SirenGrad(_) => "siren grad",
            Op::Mask(_) => "mask",
        }
    }

    /// Every buffer the op writes.
    pub fn writes_all(&self) -> Vec<BufId> {
        match self {
            Op::PoolGrad(p) => {
                let mut v = vec![p.dx];
                v.extend(p.affine_rows.iter().flat_map(|&(g, b)| [g, b]));
                v
            }
            Op::Loss(l) => vec![l.dpred, l.loss],
            Op::Adam(a) => vec![a.param, a.m, a.v],
            Op::Siren(s) => vec![s.out, s.trace],
            Op::SirenGrad(g) => vec![g.dparams, g.dz],
            op => vec![op.writes()],
        }
    }
}

impl Plan {
    /// Floating-point operations of one run (2·m·k·n per GEMM; activations and pools counted
    /// as one per element and ~4 per pooled element), for GFLOP/s reports.
    pub fn flops(&self) -> f64 {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Gemm(g) => 2.0 * (g.m * g.k * g.n) as f64,
                Op::Activation(a) => a.len as f64,
                Op::Pool(p) => 4.0 * (p.batch * p.r * p.s * p.channels * p.f) as f64,
                Op::Reduce(r) => (r.outer * r.mid * r.inner * r.r) as f64,
                Op::ActivationGrad(a) => 2.0 * a.len as f64,
                Op::PoolGrad(p) => {
                    8.0 * (p.fwd.batch * p.fwd.r * p.fwd.s * p.fwd.channels * p.fwd.f) as f64
                }
                Op::Loss(l) => 4.0 * l.len as f64,
                Op::Adam(a) => 12.0 * a.len as f64,
                Op::SumSquares(q) => 2.0 * q.len as f64,
                Op::Stat(q) => 16.0 * (q.batch * q.m * q.channels * q.f) as f64,
                Op::Siren(s) => siren_flops(s),
                Op::SirenGrad(g) => 2.0 * siren_flops(&g.fwd),
                Op::Mask(m) => (m.outer * m.mid * m.inner) as f64,
            })
            .sum()
    }
}

/// 2 FLOPs per weight and ~4 per hidden unit (sin/cos counted once) for every (sample, point).
fn siren_flops(s: &SirenOp) -> f64 {
    let per_point = 2 * SirenOp::params_per_sample(&s.widths) + SirenOp::trace_per_point(&s.widths);
    (s.batch * s.points * per_point) as f64
}
