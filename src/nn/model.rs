//! `Model`: a sequence of layers over weight-space features, lowered to a [`Plan`] per batch size
//! and run on any [`Backend`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::Rng;

use crate::autodiff::{append_backward, Backward};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::nn::baseline::{PermKind, PermLinear};
use crate::nn::dropout::{Dropout, MaskInput};
use crate::nn::edit::EditRender;
use crate::nn::fourier::FourierFeatures;
use crate::nn::head::Dense;
use crate::nn::monomial::{MonomialLinear, Variant};
use crate::nn::params::Init;
use crate::nn::params::ParamSet;
use crate::nn::pool::{InvariantPool, PoolAxes, PoolMode};
use crate::nn::posenc::PositionEncoding;
use crate::nn::stat::StatFeatures;
use crate::nn::SpaceBufs;
use crate::plan::{Activation, BufId, LossKind, LossOp, Op, Plan, PlanBuilder};
use crate::space::{InternalLayout, WeightSpace};
use crate::spec::NetworkSpec;
use crate::tensor::Tensor;

/// One layer of a model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Layer {
    /// Equivariant linear layer.
    Monomial(MonomialLinear),
    /// Permutation-only baseline layer (NP or HNP).
    Perm(PermLinear),
    /// Elementwise function on every tensor.
    Activation(Activation),
    /// Invariant pool: weight-space features -> (B, C·F).
    Pool(InvariantPool),
    /// Dense layer on pooled features.
    Dense(Dense),
    /// STATNN statistics: weight-space features -> (B, C, 14·L).
    Stat(StatFeatures),
    /// Fixed Gaussian Fourier features of every entry (SPEC §6.2).
    Fourier(FourierFeatures),
    /// IO sinusoidal position encoding channels (SPEC §6.2).
    PosEncoding(PositionEncoding),
    /// Dropout, active in training plans only.
    Dropout(Dropout),
    /// LearnedScale, U + s·Δ with the model's input U, and the render of the edited SIRENs
    /// (SPEC §6.3): weight-space Δ -> (B, h·w·n_L).
    EditRender(EditRender),
}

/// What a model returns: weight-space features (equivariant models) or a (B, width) matrix.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Equivariant output in the reference layout.
    Space(WeightSpace),
    /// Invariant output (B, width); pools alone return (B, C, F).
    Features(Tensor),
}

enum Value {
    Space(SpaceBufs),
    Flat { buf: usize, shape: Vec<usize> },
}

/// A sequence of layers applied to a batch of weight spaces with `in_channels` channels.
#[derive(Debug)]
pub struct Model {
    spec: NetworkSpec,
    in_channels: usize,
    layers: Vec<Layer>,
    plans: Mutex<HashMap<usize, Arc<Plan>>>,
    grad_plans: Mutex<HashMap<(usize, LossKind), Arc<GradPlan>>>,
}

/// A forward + loss + backward plan and where its outputs go.
#[derive(Debug)]
struct GradPlan {
    plan: Plan,
    /// Loss buffers come first among the outputs.
    losses: usize,
    backward: Backward,
    /// Whether the plan takes a target input (after the weight-space inputs).
    target: bool,
}

/// Forward, loss and backward of a training step, lowered by [`Model::loss_backward`]; the
/// optimizer's ops are appended before the plan is finished.
#[derive(Debug)]
pub struct LossBackward {
    /// The plan so far.
    pub builder: PlanBuilder,
    /// One-element buffer accumulating the loss of every step.
    pub loss_sum: BufId,
    /// Gradients of every reached parameter.
    pub backward: Backward,
    /// Whether the plan takes a target input.
    pub has_target: bool,
    /// Dropout masks, inputs after the weight space and before the target, drawn per step.
    pub masks: Vec<MaskInput>,
}

/// Gradients of a scalar loss with respect to every parameter and the input (SPEC §8).
#[derive(Clone, Debug)]
pub struct Gradients {
    /// The loss value.
    pub loss: f64,
    /// Per layer, (parameter name, gradient shaped like the parameter) in the layer's order;
    /// parameters the loss does not reach get zeros.
    pub params: Vec<Vec<(String, Tensor)>>,
    /// ∂loss/∂input in the reference layout.
    pub input: WeightSpace,
}

impl Clone for Model {
    fn clone(&self) -> Self {
        Model::new(self.spec.clone(), self.in_channels, self.layers.clone())
    }
}

impl Model {
    /// Wraps layers (checked when the first plan is built).
    pub fn new(spec: NetworkSpec, in_channels: usize, layers: Vec<Layer>) -> Self {
        Model {
            spec,
            in_channels,
            layers,
            plans: Mutex::new(HashMap::new()),
            grad_plans: Mutex::new(HashMap::new()),
        }
    }

    /// The Monomial-NFN of the paper's CNN-Zoo experiment (SPEC §6.1): HNPSLinear [16, 16, 5]
    /// with ReLU (ReLU zoos) or tanh, tanh, abs (tanh zoos), a `param_mul_L2` pool and a
    /// 250 -> 200 -> 200 -> 1 sigmoid head; 254,619 parameters.
    pub fn monomial_cnn_zoo(
        activation: crate::spec::NetActivation,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let spec = NetworkSpec::cnn_zoo(activation);
        let (act, last) = match activation {
            crate::spec::NetActivation::Relu => (Activation::Relu, Activation::Relu),
            _ => (Activation::Tanh, Activation::Abs),
        };
        Self::monomial_invariant(
            &spec,
            1,
            &[16, 16, 5],
            act,
            last,
            Variant::Scale,
            Init::XavierNormal,
            PoolMode::ParamMulL2,
            &[200, 200],
            rng,
        )
    }

    /// An invariant Monomial-NFN: equivariant layers of the given widths with `act` between them
    /// and `last_act` after the last, a pool, and a ReLU MLP head ending in one sigmoid output.
    #[allow(clippy::too_many_arguments)]
    pub fn monomial_invariant(
        spec: &NetworkSpec,
        in_channels: usize,
        widths: &[usize],
        act: Activation,
        last_act: Activation,
        variant: Variant,
        init: Init,
        pool_mode: PoolMode,
        head: &[usize],
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let (body, c) = stack(in_channels, widths, |c, w| {
            Ok(Layer::Monomial(MonomialLinear::new(
                spec, c, w, variant, init, rng,
            )?))
        })?;
        let mut pool = InvariantPool::new(spec, c, pool_mode, PoolAxes::Hidden)?;
        pool.randomize(rng);
        Self::invariant(spec, in_channels, body, act, last_act, pool, head, rng)
    }

    /// The HNP baseline of the paper's CNN-Zoo experiment (SPEC §6.1, `hnp_inv`): HNPLinear
    /// [16, 16, 5] with ReLU, HNPPool and a 250 -> 1000 -> 1000 -> 1 sigmoid head; 2,811,743
    /// parameters.
    pub fn hnp_cnn_zoo(rng: &mut impl Rng) -> Result<Self> {
        Self::perm_invariant(
            &NetworkSpec::cnn_zoo(crate::spec::NetActivation::Relu),
            1,
            &[16, 16, 5],
            PermKind::Hnp,
            &[1000, 1000],
            rng,
        )
    }

    /// The NP baseline of the paper's CNN-Zoo experiment (`np_inv`): NPLinear with io embedding
    /// [16, 16, 5] with ReLU and the HNP model's pool and head; 2,031,390 parameters. (The
    /// reference also standardises inputs with train-set statistics; that belongs to the data.)
    pub fn np_cnn_zoo(rng: &mut impl Rng) -> Result<Self> {
        let kind = PermKind::Np { io_embed: true };
        Self::perm_invariant(
            &NetworkSpec::cnn_zoo(crate::spec::NetActivation::Relu),
            1,
            &[16, 16, 5],
            kind,
            &[1000, 1000],
            rng,
        )
    }

    /// The STATNN baseline (SPEC §5.4): seven statistics per tensor (56 features for the CNN
    /// Zoo) and a ReLU MLP 1000 -> 1000 -> 1 with a sigmoid output; 1,059,001 parameters.
    pub fn stat_cnn_zoo(rng: &mut impl Rng) -> Result<Self> {
        let spec = NetworkSpec::cnn_zoo(crate::spec::NetActivation::Relu);
        let stat = StatFeatures::new(&spec, 1)?;
        let mut n = stat.out_features();
        let mut layers = vec![Layer::Stat(stat)];
        for h in [1000, 1000] {
            layers.push(Layer::Dense(Dense::new(n, h, rng)?));
            layers.push(Layer::Activation(Activation::Relu));
            n = h;
        }
        layers.push(Layer::Dense(Dense::new(n, 1, rng)?));
        layers.push(Layer::Activation(Activation::Sigmoid));
        Ok(Model::new(spec, 1, layers))
    }

    /// An invariant permutation-only NFN: NP/HNP layers of the given widths, each followed by
    /// ReLU, the HNP pool (plain means) and a ReLU MLP head ending in one sigmoid output.
    pub fn perm_invariant(
        spec: &NetworkSpec,
        in_channels: usize,
        widths: &[usize],
        kind: PermKind,
        head: &[usize],
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let (body, c) = stack(in_channels, widths, |c, w| {
            Ok(Layer::Perm(PermLinear::new(spec, c, w, kind, rng)?))
        })?;
        let pool = InvariantPool::new(spec, c, PoolMode::Mean, PoolAxes::Hidden)?;
        let relu = Activation::Relu;
        Self::invariant(spec, in_channels, body, relu, relu, pool, head, rng)
    }

    /// Assembles an invariant model: each equivariant layer of `body` followed by `act` (the
    /// last by `last_act`), then `pool`, then a ReLU MLP head of widths `head` ending in one
    /// sigmoid output.
    #[allow(clippy::too_many_arguments)]
    pub fn invariant(
        spec: &NetworkSpec,
        in_channels: usize,
        body: Vec<Layer>,
        act: Activation,
        last_act: Activation,
        pool: InvariantPool,
        head: &[usize],
        rng: &mut impl Rng,
    ) -> Result<Self> {
        if body.is_empty() {
            return Err(Error::Spec(
                "an NFN needs at least one equivariant layer".into(),
            ));
        }
        let n_body = body.len();
        let mut layers = Vec::new();
        for (i, layer) in body.into_iter().enumerate() {
            layers.push(layer);
            layers.push(Layer::Activation(if i + 1 == n_body {
                last_act
            } else {
                act
            }));
        }
        let mut n = pool.out_features();
        layers.push(Layer::Pool(pool));
        for &h in head {
            layers.push(Layer::Dense(Dense::new(n, h, rng)?));
            layers.push(Layer::Activation(Activation::Relu));
            n = h;
        }
        layers.push(Layer::Dense(Dense::new(n, 1, rng)?));
        layers.push(Layer::Activation(Activation::Sigmoid));
        Ok(Model::new(spec.clone(), in_channels, layers))
    }

    /// Sets the norm clamp ε of every pool (see [`InvariantPool::eps`]): the reference's 1e-12
    /// by default; 0 makes normalising pools exactly scale-invariant even for networks with
    /// near-zero (dead) units.
    pub fn set_norm_eps(&mut self, eps: f64) -> Result<()> {
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(Error::Input(format!(
                "the norm clamp must be finite and non-negative, got {eps}"
            )));
        }
        for layer in self.layers_mut() {
            if let Layer::Pool(p) = layer {
                p.eps = eps;
            }
        }
        Ok(())
    }

    /// Frees what `backend` keeps for this model's cached plans (e.g. a temporary copy made for
    /// validation).
    pub fn release(&self, backend: &dyn Backend) {
        for plan in self
            .plans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            backend.release(plan);
        }
        for gp in self
            .grad_plans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            backend.release(&gp.plan);
        }
    }

    /// The input networks' spec.
    pub fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    /// Channels of the input features.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// The layers.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Mutable layers (drops every cached plan, since parameters may change).
    pub fn layers_mut(&mut self) -> &mut Vec<Layer> {
        self.plans
            .get_mut()
            .map(|p| p.clear())
            .unwrap_or_else(|e| e.into_inner().clear());
        self.grad_plans
            .get_mut()
            .map(|p| p.clear())
            .unwrap_or_else(|e| e.into_inner().clear());
        &mut self.layers
    }

    /// Number of scalar parameters.
    pub fn num_params(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                Layer::Monomial(m) => m.num_params(),
                Layer::Perm(m) => m.num_params(),
                Layer::Pool(p) => p.num_params(),
                Layer::Dense(d) => d.num_params(),
                Layer::EditRender(e) => e.params.count(),
                Layer::Activation(_)
                | Layer::Stat(_)
                | Layer::Fourier(_)
                | Layer::PosEncoding(_)
                | Layer::Dropout(_) => 0,
            })
            .sum()
    }

    /// The plan for `batch` (built on first use, then cached).
    pub fn plan(&self, batch: usize) -> Result<Arc<Plan>> {
        let mut cache = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(&batch) {
            return Ok(p.clone());
        }
        let plan = Arc::new(self.build_plan(batch)?);
        cache.insert(batch, plan.clone());
        Ok(plan)
    }

    fn build_plan(&self, batch: usize) -> Result<Plan> {
        let mut pb = PlanBuilder::new();
        let outputs = self.emit_forward(&mut pb, batch, None)?;
        Ok(pb.finish(outputs))
    }

    /// Appends the forward pass (inputs first: every weight, then every bias, internal layout);
    /// returns the output buffers (every weight then every bias, or the one feature matrix).
    /// With `masks` (training) dropout layers add mask inputs, recorded there in input order;
    /// without, they pass values through.
    fn emit_forward(
        &self,
        pb: &mut PlanBuilder,
        batch: usize,
        mut masks: Option<&mut Vec<MaskInput>>,
    ) -> Result<Vec<usize>> {
        let mut w = Vec::new();
        for i in 0..self.spec.num_layers() {
            w.push(
                pb.input(InternalLayout::of(&self.spec, i, batch, self.in_channels).weight_len()),
            );
        }
        let mut b = Vec::new();
        for i in 0..self.spec.num_layers() {
            b.push(pb.input(InternalLayout::of(&self.spec, i, batch, self.in_channels).bias_len()));
        }
        let input = SpaceBufs {
            w,
            b,
            channels: self.in_channels,
        };
        let mut v = Value::Space(input.clone());
        for (i, layer) in self.layers.iter().enumerate() {
            let layer_spec = match layer {
                Layer::Monomial(m) => Some(&m.spec),
                Layer::Perm(m) => Some(&m.spec),
                Layer::Pool(p) => Some(&p.spec),
                Layer::Stat(p) => Some(&p.spec),
                _ => None,
            };
            pb.set_layer(i);
            if layer_spec.is_some_and(|s| s.layers != self.spec.layers) {
                return Err(Error::Spec(format!(
                    "layer {i} was built for another network architecture than the model's"
                )));
            }
            v = match (layer, v) {
                (Layer::Monomial(m), Value::Space(s)) => Value::Space(m.emit(pb, &s, batch)?),
                (Layer::Perm(m), Value::Space(s)) => Value::Space(m.emit(pb, &s, batch)?),
                (Layer::Activation(a), Value::Space(s)) => Value::Space(SpaceBufs {
                    w: s.w.iter().map(|&x| pb.activation(x, *a)).collect(),
                    b: s.b.iter().map(|&x| pb.activation(x, *a)).collect(),
                    channels: s.channels,
                }),
                (Layer::Activation(a), Value::Flat { buf, shape }) => Value::Flat {
                    buf: pb.activation(buf, *a),
                    shape,
                },
                (Layer::Pool(p), Value::Space(s)) => Value::Flat {
                    buf: p.emit(pb, &s, batch)?,
                    shape: vec![batch, p.channels, p.width()],
                },
                (Layer::Stat(st), Value::Space(s)) => Value::Flat {
                    buf: st.emit(pb, &s, batch)?,
                    shape: vec![batch, st.channels, st.width()],
                },
                (Layer::Dense(d), Value::Flat { buf, .. }) => Value::Flat {
                    buf: d.emit(pb, buf, batch)?,
                    shape: vec![batch, d.n_out],
                },
                (Layer::Dense(d), Value::Space(s)) => Value::Flat {
                    buf: d.emit_space(pb, &s, batch)?,
                    shape: vec![batch, d.n_out],
                },
                (Layer::EditRender(e), Value::Space(s)) => Value::Flat {
                    buf: e.emit(pb, &input, &s, batch)?,
                    shape: vec![batch, e.width()],
                },
                (Layer::Fourier(f), Value::Space(s)) => {
                    Value::Space(f.emit(pb, &self.spec, &s, batch)?)
                }
                (Layer::PosEncoding(e), Value::Space(s)) => {
                    Value::Space(e.emit(pb, &self.spec, &s, batch)?)
                }
                (Layer::Dropout(d), v) => match masks.as_deref_mut() {
                    Some(masks) if d.p > 0.0 => {
                        let mut drop =
                            |pb: &mut PlanBuilder, x: usize, outer: usize, inner: usize| {
                                let mid = pb.len_of(x) / (outer * inner).max(1);
                                masks.push(MaskInput {
                                    len: outer * inner,
                                    p: d.p,
                                });
                                pb.mask(x, outer, mid, inner).0
                            };
                        match v {
                            Value::Space(s) => {
                                let c = s.channels;
                                let mut out = SpaceBufs {
                                    w: Vec::new(),
                                    b: Vec::new(),
                                    channels: c,
                                };
                                for (i, &w) in s.w.iter().enumerate() {
                                    let f = self.spec.layers[i].f();
                                    out.w.push(drop(pb, w, batch, c * f));
                                }
                                for &b in &s.b {
                                    out.b.push(drop(pb, b, pb.len_of(b) / c, c));
                                }
                                Value::Space(out)
                            }
                            Value::Flat { buf, shape } => Value::Flat {
                                buf: drop(pb, buf, batch, pb.len_of(buf) / batch.max(1)),
                                shape,
                            },
                        }
                    }
                    _ => v,
                },
                (layer, _) => {
                    return Err(Error::Spec(format!(
                        "layer {i} ({}) cannot follow the layers before it",
                        match layer {
                            Layer::Monomial(_) | Layer::Perm(_) => "equivariant layer after a pool",
                            Layer::Fourier(_) | Layer::PosEncoding(_) => {
                                "weight-space encoding after a pool"
                            }
                            Layer::Pool(_) | Layer::Stat(_) | Layer::EditRender(_) => {
                                "second pool or render"
                            }
                            Layer::Activation(_) | Layer::Dense(_) | Layer::Dropout(_) => {
                                "layer"
                            }
                        }
                    )))
                }
            };
        }
        Ok(match &v {
            Value::Space(s) => s.w.iter().chain(&s.b).copied().collect(),
            Value::Flat { buf, .. } => vec![*buf],
        })
    }

    fn grad_plan(&self, batch: usize, kind: LossKind) -> Result<Arc<GradPlan>> {
        self.check_loss(batch, kind)?;
        let mut cache = self.grad_plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(&(batch, kind)) {
            return Ok(p.clone());
        }
        let mut pb = PlanBuilder::new();
        let outputs = self.emit_forward(&mut pb, batch, None)?;
        let forward_ops = pb.ops.len();
        let target = kind != LossKind::HalfSumSquares;
        if target && self.output_shape(batch).is_none() {
            return Err(Error::Spec(format!(
                "the {kind} loss needs a model with a feature output (a pool and head); an equivariant model's output takes the half sum of squares only"
            )));
        }
        let mut seeds = Vec::new();
        let mut losses = Vec::new();
        for &out in &outputs {
            let len = pb.len_of(out);
            let t = target.then(|| pb.input(len));
            let (loss, dpred) = (pb.scratch(1), pb.scratch(len));
            pb.push(Op::Loss(LossOp {
                pred: out,
                target: t,
                loss,
                dpred,
                kind,
                len,
            }));
            seeds.push((out, dpred));
            losses.push(loss);
        }
        let backward = append_backward(&mut pb, forward_ops, &seeds, true)?;
        let mut outs = losses.clone();
        outs.extend(backward.params.iter().map(|&(_, g)| g));
        outs.extend(backward.inputs.iter().flatten());
        let gp = Arc::new(GradPlan {
            plan: pb.finish(outs),
            losses: losses.len(),
            backward,
            target,
        });
        cache.insert((batch, kind), gp.clone());
        Ok(gp)
    }

    /// The loss of the model's output on `input` and its gradients with respect to every
    /// parameter and the input (an error for STATNN, whose statistics have no input gradient;
    /// it trains through [`Model::loss_backward`], which needs none). `target` (shaped like the
    /// output) is required by every loss but `HalfSumSquares`.
    pub fn gradients(
        &self,
        backend: &dyn Backend,
        input: &WeightSpace,
        target: Option<&Tensor>,
        kind: LossKind,
    ) -> Result<Gradients> {
        input.validate(&self.spec, Some(self.in_channels))?;
        let batch = input.batch();
        let gp = self.grad_plan(batch, kind)?;
        let mut inputs = self.pack_input(input, batch);
        if gp.target {
            let t = target.ok_or_else(|| {
                Error::Input(format!(
                    "the {kind} loss needs a target shaped like the model's output"
                ))
            })?;
            let want = self.output_shape(batch).unwrap_or_default();
            t.expect_shape("target", &want)
                .or_else(|_| t.expect_shape("target", &[batch]))?;
            if let Some(pos) = t.data.iter().position(|v| !v.is_finite()) {
                return Err(Error::Input(format!(
                    "target holds a non-finite value at {pos}"
                )));
            }
            inputs.push(t.data.clone());
        }
        let outs = backend.run(&gp.plan, &inputs)?;
        let loss = outs[..gp.losses].iter().map(|v| v[0]).sum();
        let mut params: Vec<Vec<(String, Tensor)>> = self
            .layers
            .iter()
            .map(|l| {
                layer_params(l)
                    .map(|p| {
                        p.iter()
                            .map(|(n, t)| (n.to_string(), Tensor::zeros(t.shape.clone())))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let mut next = gp.losses;
        for &(buf, _) in &gp.backward.params {
            let src = gp.plan.bufs[buf]
                .source
                .as_ref()
                .ok_or_else(|| Error::Spec("parameter gradient without a source".into()))?;
            let slot = params[src.layer]
                .iter_mut()
                .find(|(n, _)| *n == src.name)
                .ok_or_else(|| Error::Spec(format!("unknown parameter {}", src.name)))?;
            for (&i, &g) in src.indices.iter().zip(&outs[next]) {
                slot.1.data[i] += g;
            }
            next += 1;
        }
        let l = self.spec.num_layers();
        let mut grad_input = WeightSpace::zeros(&self.spec, batch, self.in_channels);
        for (k, g) in gp.backward.inputs.iter().enumerate().take(2 * l) {
            if g.is_none() {
                continue;
            }
            let lay = InternalLayout::of(&self.spec, k % l, batch, self.in_channels);
            if k < l {
                grad_input.weights[k].data = lay.unpack_weight(&outs[next]);
            } else {
                grad_input.biases[k - l].data = lay.unpack_bias(&outs[next]);
            }
            next += 1;
        }
        Ok(Gradients {
            loss,
            params,
            input: grad_input,
        })
    }

    /// Forward, `kind` loss against a target input and backward of a training step, the loss
    /// summed into [`LossBackward::loss_sum`]; the training module appends the optimizer.
    /// Inputs so far: the weight space (as [`Model::forward`]), dropout masks, the target.
    pub fn loss_backward(&self, batch: usize, kind: LossKind) -> Result<LossBackward> {
        if self.output_shape(batch).is_none() {
            return Err(Error::Spec(
                "training needs a model with a feature output (a pool and head)".into(),
            ));
        }
        self.check_loss(batch, kind)?;
        let mut pb = PlanBuilder::new();
        let mut masks = Vec::new();
        let outputs = self.emit_forward(&mut pb, batch, Some(&mut masks))?;
        let forward_ops = pb.ops.len();
        let pred = outputs[0];
        let len = pb.len_of(pred);
        let target = (kind != LossKind::HalfSumSquares).then(|| pb.input(len));
        let (loss, dpred) = (pb.scratch(1), pb.scratch(len));
        pb.push(Op::Loss(LossOp {
            pred,
            target,
            loss,
            dpred,
            kind,
            len,
        }));
        let backward = append_backward(&mut pb, forward_ops, &[(pred, dpred)], false)?;
        let loss_sum = pb.scratch(1);
        pb.reduce(crate::plan::ReduceOp::sum_rows(loss, loss_sum, 1, 1, true));
        Ok(LossBackward {
            builder: pb,
            loss_sum,
            backward,
            has_target: target.is_some(),
            masks,
        })
    }

    /// Copies parameter values read from plan buffers (`sources` in the plan) into the model.
    pub fn set_packed_params(&mut self, plan: &Plan, values: &[(usize, Vec<f64>)]) -> Result<()> {
        for (buf, vals) in values {
            let src = plan.bufs[*buf]
                .source
                .as_ref()
                .ok_or_else(|| Error::Spec(format!("buffer {buf} is not a parameter")))?;
            let params = layer_params_mut(&mut self.layers[src.layer])
                .ok_or_else(|| Error::Spec(format!("layer {} has no parameters", src.layer)))?;
            let mut t = params.expect(&src.name)?.clone();
            for (&i, &v) in src.indices.iter().zip(vals) {
                t.data[i] = v;
            }
            params.set(&src.name, t)?;
        }
        self.layers_mut();
        Ok(())
    }

    /// Softmax cross-entropy needs whole rows of `classes` logits.
    fn check_loss(&self, batch: usize, kind: LossKind) -> Result<()> {
        if let LossKind::SoftmaxCe { classes } = kind {
            // Values per network (rows must not straddle two networks).
            let width = self
                .output_shape(batch)
                .map_or(0, |s| s[1..].iter().product::<usize>());
            if classes == 0 || width % classes != 0 {
                return Err(Error::Spec(format!(
                    "softmax cross-entropy over {classes} classes does not divide the {width} outputs per network"
                )));
            }
        }
        Ok(())
    }

    /// The weight-space input in the plan's input order and layout.
    pub(crate) fn pack_input(&self, input: &WeightSpace, batch: usize) -> Vec<Vec<f64>> {
        let l = self.spec.num_layers();
        let layout = |i: usize| InternalLayout::of(&self.spec, i, batch, self.in_channels);
        let mut inputs = Vec::with_capacity(2 * l + 1);
        for i in 0..l {
            inputs.push(layout(i).pack_weight::<f64>(&input.weights[i].data));
        }
        for i in 0..l {
            inputs.push(layout(i).pack_bias::<f64>(&input.biases[i].data));
        }
        inputs
    }

    /// Runs the model on a batch of weight spaces. A batch whose plan is over the backend's
    /// buffer limits ([`Backend::fits`]) runs in parts that fit, stacked in order: no network's
    /// output depends on another's, so the result is that of one pass.
    pub fn forward(&self, backend: &dyn Backend, input: &WeightSpace) -> Result<Output> {
        input.validate(&self.spec, Some(self.in_channels))?;
        let batch = input.batch();
        let part = self.part_size(backend, batch)?;
        if part == batch {
            return self.forward_whole(backend, input);
        }
        let outs = (0..batch)
            .step_by(part)
            .map(|start| {
                let idx: Vec<usize> = (start..batch.min(start + part)).collect();
                self.forward_whole(backend, &input.select(&idx)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Output::concat(outs)
    }

    /// The largest part of `batch` whose forward plan fits `backend` (`batch` when it does;
    /// 1 when nothing does, so that the backend reports what is too large).
    fn part_size(&self, backend: &dyn Backend, batch: usize) -> Result<usize> {
        let whole = self.plan(batch)?;
        if backend.fits(&whole) {
            return Ok(batch);
        }
        // Buffers grow with the batch: bisect with uncached probe plans (lo fits, hi does not).
        let (mut lo, mut hi) = (1, batch);
        if !backend.fits(&self.build_plan(1)?) {
            return Ok(1);
        }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if backend.fits(&self.build_plan(mid)?) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// [`Model::forward`] in one plan (`input` already validated).
    fn forward_whole(&self, backend: &dyn Backend, input: &WeightSpace) -> Result<Output> {
        let batch = input.batch();
        let plan = self.plan(batch)?;
        let l = self.spec.num_layers();
        let layout = |i: usize, c: usize| InternalLayout::of(&self.spec, i, batch, c);
        let inputs = self.pack_input(input, batch);
        let outs = backend.run(&plan, &inputs)?;
        // The output kind is fixed by the layers; rebuild it cheaply from the last layer.
        match self.output_shape(batch) {
            None => {
                let c = self.out_channels();
                let mut weights = Vec::new();
                let mut biases = Vec::new();
                for (i, s) in self.spec.layers.iter().enumerate() {
                    let lay = layout(i, c);
                    let mut shape = vec![batch, c];
                    shape.extend(s.weight_dims());
                    weights.push(Tensor::new(shape, lay.unpack_weight(&outs[i]))?);
                    biases.push(Tensor::new(
                        vec![batch, c, s.n_out],
                        lay.unpack_bias(&outs[l + i]),
                    )?);
                }
                Ok(Output::Space(WeightSpace { weights, biases }))
            }
            Some(shape) => {
                let data = outs.into_iter().next().unwrap_or_default();
                Ok(Output::Features(Tensor::new(shape, data)?))
            }
        }
    }

    /// Channels after the last equivariant layer.
    fn out_channels(&self) -> usize {
        self.layers
            .iter()
            .rev()
            .find_map(|l| match l {
                Layer::Monomial(m) => Some(m.c_out),
                Layer::Perm(m) => Some(m.c_out),
                Layer::Fourier(f) => Some(f.c_out()),
                Layer::PosEncoding(e) => Some(e.c_out()),
                _ => None,
            })
            .unwrap_or(self.in_channels)
    }

    /// Shape of an invariant output, or None for an equivariant model.
    fn output_shape(&self, batch: usize) -> Option<Vec<usize>> {
        let mut shape = None;
        for l in &self.layers {
            match l {
                Layer::Pool(p) => shape = Some(vec![batch, p.channels, p.width()]),
                Layer::Stat(p) => shape = Some(vec![batch, p.channels, p.width()]),
                Layer::Dense(d) => shape = Some(vec![batch, d.n_out]),
                Layer::EditRender(e) => shape = Some(vec![batch, e.width()]),
                _ => {}
            }
        }
        shape
    }
}

/// The parameters of a layer, if it has any.
pub fn layer_params(layer: &Layer) -> Option<&ParamSet> {
    match layer {
        Layer::Monomial(m) => Some(&m.params),
        Layer::Perm(m) => Some(&m.params),
        Layer::Pool(p) => Some(&p.params),
        Layer::Dense(d) => Some(&d.params),
        Layer::EditRender(e) => Some(&e.params),
        _ => None,
    }
}

/// The parameters of a layer, mutably.
pub fn layer_params_mut(layer: &mut Layer) -> Option<&mut ParamSet> {
    match layer {
        Layer::Monomial(m) => Some(&mut m.params),
        Layer::Perm(m) => Some(&mut m.params),
        Layer::Pool(p) => Some(&mut p.params),
        Layer::Dense(d) => Some(&mut d.params),
        Layer::EditRender(e) => Some(&mut e.params),
        _ => None,
    }
}

/// Equivariant layers `make(c_in, c_out)` chained through `widths`; returns them and the last
/// width.
fn stack(
    in_channels: usize,
    widths: &[usize],
    mut make: impl FnMut(usize, usize) -> Result<Layer>,
) -> Result<(Vec<Layer>, usize)> {
    let mut c = in_channels;
    let mut body = Vec::with_capacity(widths.len());
    for &w in widths {
        body.push(make(c, w)?);
        c = w;
    }
    Ok((body, c))
}

impl Output {
    /// Outputs of consecutive parts of a batch, stacked into the output of the whole batch.
    pub fn concat(parts: Vec<Output>) -> Result<Output> {
        match parts.first() {
            Some(Output::Features(_)) => Ok(Output::Features(Tensor::concat_rows(
                &parts
                    .into_iter()
                    .map(Output::features)
                    .collect::<Result<Vec<_>>>()?,
            )?)),
            Some(Output::Space(_)) => Ok(Output::Space(WeightSpace::concat(
                &parts
                    .into_iter()
                    .map(Output::space)
                    .collect::<Result<Vec<_>>>()?,
            )?)),
            None => Err(Error::Input("no outputs to concatenate".into())),
        }
    }

    /// The invariant output, or an error for an equivariant one.
    pub fn features(self) -> Result<Tensor> {
        match self {
            Output::Features(t) => Ok(t),
            Output::Space(_) => Err(Error::Spec(
                "model output is a weight space, not features".into(),
            )),
        }
    }

    /// The equivariant output, or an error for an invariant one.
    pub fn space(self) -> Result<WeightSpace> {
        match self {
            Output::Space(s) => Ok(s),
            Output::Features(_) => Err(Error::Spec(
                "model output is a feature matrix, not a weight space".into(),
            )),
        }
    }
}
