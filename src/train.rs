//! Training (SPEC §6.1, §8): one-submission steps (batch upload, forward, loss, backward, Adam)
//! whose parameters and moments stay in the backend, mini-batches from an in-memory
//! weight-space dataset, a validation metric with best-epoch selection, seeded shuffling, a
//! progress bar and the learning curve as CSV.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::metrics::Metric;
use crate::nn::dropout::MaskInput;
use crate::nn::model::{Layer, LossBackward, Model};
use crate::plan::{AdamOp, BufId, BufKind, LossKind, Op, Plan, PlanBuilder, SumSquaresOp};
use crate::space::WeightSpace;
use crate::tensor::Tensor;

/// Adam / AdamW settings (defaults: the paper's Adam, lr 1e-3, no decay, warm-up or clipping).
#[derive(Clone, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Weight decay (L2 for Adam, decoupled for AdamW).
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay.
    pub decoupled: bool,
    /// Linear warm-up of the learning rate over this many steps.
    pub warmup_steps: u64,
    /// Clip the global gradient norm to this value.
    pub clip_norm: Option<f64>,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            warmup_steps: 0,
            clip_norm: None,
        }
    }
}

/// A stateful training-step plan (see [`train_plan`]).
#[derive(Debug)]
pub struct TrainPlan {
    /// The plan.
    pub plan: Plan,
    /// One-element buffer accumulating the loss of every step.
    pub loss_sum: BufId,
    /// Parameter buffers the optimizer updates.
    pub params: Vec<BufId>,
    /// Whether the plan takes a target input.
    pub has_target: bool,
    /// Dropout masks, inputs after the weight space and before the target, drawn per step.
    pub masks: Vec<MaskInput>,
}

/// A training-step plan: [`Model::loss_backward`], the optional squared gradient norm and
/// `optimizer` on every reached parameter, all in one stateful plan. Inputs: the weight space
/// (as [`Model::forward`]), dropout masks, the target, then `hyper` = [lr, 1−β₁ᵗ, 1−β₂ᵗ].
/// Nothing is output per run: the loss accumulates in [`TrainPlan::loss_sum`] and parameters
/// stay in the plan's buffers.
pub fn train_plan(
    model: &Model,
    batch: usize,
    kind: LossKind,
    optimizer: &AdamConfig,
) -> Result<TrainPlan> {
    let LossBackward {
        builder: mut pb,
        loss_sum,
        backward,
        has_target,
        masks,
    } = model.loss_backward(batch, kind)?;
    let hyper = pb.input(3);
    append_optimizer(&mut pb, &backward.params, hyper, optimizer);
    Ok(TrainPlan {
        plan: pb.finish_stateful(Vec::new()),
        loss_sum,
        params: backward.params.iter().map(|&(p, _)| p).collect(),
        has_target,
        masks,
    })
}

/// Appends the optimizer to a plan: the optional squared gradient norm, then an Adam op per
/// (parameter, gradient) pair, reading `hyper` = [lr, 1−β₁ᵗ, 1−β₂ᵗ].
fn append_optimizer(
    pb: &mut PlanBuilder,
    pairs: &[(BufId, BufId)],
    hyper: BufId,
    optimizer: &AdamConfig,
) {
    let norm_sq = optimizer.clip_norm.map(|_| pb.scratch(1));
    if let Some(n) = norm_sq {
        for (i, &(_, g)) in pairs.iter().enumerate() {
            let len = pb.len_of(g);
            pb.push(Op::SumSquares(SumSquaresOp {
                x: g,
                out: n,
                len,
                accumulate: i > 0,
            }));
        }
    }
    for &(param, grad) in pairs {
        let len = pb.len_of(param);
        let (m, v) = (pb.scratch(len), pb.scratch(len));
        pb.push(Op::Adam(AdamOp {
            param,
            grad,
            m,
            v,
            hyper,
            norm_sq,
            max_norm: optimizer.clip_norm.unwrap_or(0.0),
            len,
            beta1: optimizer.beta1,
            beta2: optimizer.beta2,
            eps: optimizer.eps,
            weight_decay: optimizer.weight_decay,
            decoupled: optimizer.decoupled,
        }));
    }
}

/// A training step over a batch whose one-pass plan is over the backend's buffer limits, run
/// in `parts` equal parts: each part's gradients are read back and combined on the host with
/// the weights that make them the whole batch's (1/parts for the mean losses, 1 for the half
/// sum of squares), then one optimizer plan applies them. A step so equals one pass up to
/// rounding (dropout masks are drawn per part).
struct Split {
    parts: usize,
    /// Weight of each part's loss and gradients.
    weight: f64,
    /// Forward, loss and backward of one part; outputs the gradients of `part_params`, whose
    /// values are written from the optimizer plan before every step.
    part: Plan,
    part_params: Vec<BufId>,
    loss_sum: BufId,
    has_target: bool,
    masks: Vec<MaskInput>,
    /// Parameters and moments; inputs: one gradient per parameter, then `hyper`.
    optimizer: Plan,
    params: Vec<BufId>,
}

impl Split {
    /// The fewest equal parts of `batch` whose plans fit `backend`.
    fn new(
        model: &Model,
        backend: &dyn Backend,
        batch: usize,
        loss: LossKind,
        config: &AdamConfig,
    ) -> Result<Self> {
        for parts in (2..=batch).filter(|k| batch % k == 0) {
            let lb = model.loss_backward(batch / parts, loss)?;
            let grads = lb.backward.params.iter().map(|&(_, g)| g).collect();
            let part_params: Vec<BufId> = lb.backward.params.iter().map(|&(p, _)| p).collect();
            let part = lb.builder.finish_stateful(grads);
            if !backend.fits(&part) {
                continue;
            }
            let mut ob = PlanBuilder::new();
            let mut pairs = Vec::with_capacity(part_params.len());
            for &p in &part_params {
                let desc = &part.bufs[p];
                let BufKind::Param(values) = &desc.kind else {
                    return Err(Error::Spec(format!("buffer {p} is not a parameter")));
                };
                let id = ob.param(values.clone());
                ob.bufs[id].source = desc.source.clone();
                pairs.push((id, ob.input(desc.len)));
            }
            let hyper = ob.input(3);
            append_optimizer(&mut ob, &pairs, hyper, config);
            let optimizer = ob.finish_stateful(Vec::new());
            if !backend.fits(&optimizer) {
                break;
            }
            return Ok(Split {
                parts,
                weight: if loss == LossKind::HalfSumSquares {
                    1.0
                } else {
                    1.0 / parts as f64
                },
                part,
                part_params,
                loss_sum: lb.loss_sum,
                has_target: lb.has_target,
                masks: lb.masks,
                optimizer,
                params: pairs.iter().map(|&(p, _)| p).collect(),
            });
        }
        Err(Error::Device(format!(
            "a training step of {batch} networks is over the device's buffer limits in every \
             split of the batch (the parameters alone may not fit): use the CPU or a smaller model"
        )))
    }
}

/// Networks (as one weight-space batch) and their targets (N, outputs).
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The N input networks.
    pub inputs: WeightSpace,
    /// Targets, one row per network.
    pub targets: Tensor,
}

impl Dataset {
    /// Checks that targets have one row per network.
    pub fn new(inputs: WeightSpace, targets: Tensor) -> Result<Self> {
        let n = inputs.batch();
        if targets.shape.first() != Some(&n) || n == 0 {
            return Err(Error::shape("targets (N, outputs)", &[n], &targets.shape));
        }
        Ok(Dataset { inputs, targets })
    }

    /// Number of networks.
    pub fn len(&self) -> usize {
        self.inputs.batch()
    }

    /// Whether the dataset is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Target columns.
    pub fn outputs(&self) -> usize {
        self.targets.len() / self.len().max(1)
    }

    /// The rows `idx`, as a batch.
    pub fn select(&self, idx: &[usize]) -> Result<Dataset> {
        Ok(Dataset {
            inputs: self.inputs.select(idx)?,
            targets: self.targets.select_rows(idx)?,
        })
    }
}

/// How a step runs: one plan, or a batch split into parts that fit the backend.
enum Mode {
    Whole(Arc<TrainPlan>),
    Split(Box<Split>),
}

/// One compiled training step on a backend; dropping it frees the backend's state. A batch
/// whose step is over the backend's buffer limits ([`Backend::fits`]) runs in equal parts with
/// gradients accumulated before the optimizer step (the same step up to rounding).
pub struct Trainer<'a> {
    backend: &'a dyn Backend,
    mode: Mode,
    model: Model,
    batch: usize,
    config: AdamConfig,
    step: u64,
    dropout_rng: rand_chacha::ChaCha8Rng,
}

impl<'a> Trainer<'a> {
    /// Compiles the step of `model` for mini-batches of `batch` under `loss`.
    pub fn new(
        model: &Model,
        backend: &'a dyn Backend,
        batch: usize,
        loss: LossKind,
        config: AdamConfig,
    ) -> Result<Self> {
        if batch == 0 {
            return Err(Error::Input("batch size must be positive".into()));
        }
        let train = train_plan(model, batch, loss, &config)?;
        let mode = if backend.fits(&train.plan) {
            Mode::Whole(Arc::new(train))
        } else {
            Mode::Split(Box::new(Split::new(model, backend, batch, loss, &config)?))
        };
        Ok(Trainer {
            backend,
            mode,
            model: model.clone(),
            batch,
            config,
            step: 0,
            dropout_rng: rand_chacha::ChaCha8Rng::seed_from_u64(0xd0),
        })
    }

    /// Floating-point operations of one step (for GFLOP/s reports).
    pub fn flops(&self) -> f64 {
        match &self.mode {
            Mode::Whole(t) => t.plan.flops(),
            Mode::Split(s) => s.parts as f64 * s.part.flops() + s.optimizer.flops(),
        }
    }

    /// Parts each step's batch is split into (1 when it runs in one pass).
    pub fn parts(&self) -> usize {
        match &self.mode {
            Mode::Whole(_) => 1,
            Mode::Split(s) => s.parts,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The compiled plan [`Trainer::step`] runs: the whole step, or one part's forward and
    /// backward pass when the batch is split.
    pub fn plan(&self) -> &Plan {
        match &self.mode {
            Mode::Whole(t) => &t.plan,
            Mode::Split(s) => &s.part,
        }
    }

    /// One optimizer step on a batch of exactly `batch` networks: a single submission, nothing
    /// read back (in parts, each part's gradients read back, when the batch is split).
    pub fn step(&mut self, data: &Dataset) -> Result<()> {
        let hyper = self.hyper(data)?;
        let rng = &mut self.dropout_rng;
        match &self.mode {
            Mode::Whole(train) => {
                let mut inputs =
                    part_inputs(&self.model, data, &train.masks, train.has_target, rng);
                inputs.push(hyper);
                self.backend.run(&train.plan, &inputs)?;
            }
            Mode::Split(s) => {
                let params = self.backend.read(&s.optimizer, &s.params)?;
                for (&id, v) in s.part_params.iter().zip(&params) {
                    self.backend.write(&s.part, id, v)?;
                }
                let b = self.batch / s.parts;
                let mut grads: Vec<Vec<f64>> = params.iter().map(|p| vec![0.0; p.len()]).collect();
                for k in 0..s.parts {
                    let part = data.select(&(k * b..(k + 1) * b).collect::<Vec<_>>())?;
                    let inputs = part_inputs(&self.model, &part, &s.masks, s.has_target, rng);
                    let g = self.backend.run(&s.part, &inputs)?;
                    for (sum, g) in grads.iter_mut().zip(g) {
                        sum.iter_mut().zip(g).for_each(|(a, v)| *a += s.weight * v);
                    }
                }
                grads.push(hyper);
                self.backend.run(&s.optimizer, &grads)?;
            }
        }
        self.step += 1;
        Ok(())
    }

    /// The inputs of [`Trainer::plan`] for the next step on `data` (weight space, fresh dropout
    /// masks, targets, then the step's hyperparameters; for a split step, its first part's),
    /// checked; for profiling the step's plan on its own.
    pub fn step_inputs(&mut self, data: &Dataset) -> Result<Vec<Vec<f64>>> {
        let hyper = self.hyper(data)?;
        let rng = &mut self.dropout_rng;
        Ok(match &self.mode {
            Mode::Whole(t) => {
                let mut inputs = part_inputs(&self.model, data, &t.masks, t.has_target, rng);
                inputs.push(hyper);
                inputs
            }
            Mode::Split(s) => {
                let part = data.select(&(0..self.batch / s.parts).collect::<Vec<_>>())?;
                part_inputs(&self.model, &part, &s.masks, s.has_target, rng)
            }
        })
    }

    /// Checks a step's batch and returns the step's hyperparameters [lr, 1−β₁ᵗ, 1−β₂ᵗ].
    fn hyper(&self, data: &Dataset) -> Result<Vec<f64>> {
        if data.len() != self.batch {
            return Err(Error::shape("training batch", &[self.batch], &[data.len()]));
        }
        data.inputs
            .validate(self.model.spec(), Some(self.model.in_channels()))?;
        if let Some(pos) = data.targets.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::Input(format!(
                "target holds a non-finite value at {pos}"
            )));
        }
        let t = (self.step + 1) as f64;
        let c = &self.config;
        let warm = if c.warmup_steps > 0 {
            (t / c.warmup_steps as f64).min(1.0)
        } else {
            1.0
        };
        Ok(vec![
            c.lr * warm,
            1.0 - c.beta1.powf(t),
            1.0 - c.beta2.powf(t),
        ])
    }

    /// The summed loss of the steps since the last call (one read-back).
    pub fn take_loss_sum(&mut self) -> Result<f64> {
        let (plan, id, weight) = match &self.mode {
            Mode::Whole(t) => (&t.plan, t.loss_sum, 1.0),
            Mode::Split(s) => (&s.part, s.loss_sum, s.weight),
        };
        let v = self.backend.read(plan, &[id])?;
        self.backend.write(plan, id, &[0.0])?;
        Ok(weight * v[0][0])
    }

    /// The model with the trained parameters read back from the backend.
    pub fn model(&self) -> Result<Model> {
        let (plan, params) = match &self.mode {
            Mode::Whole(t) => (&t.plan, &t.params),
            Mode::Split(s) => (&s.optimizer, &s.params),
        };
        let values = self.backend.read(plan, params)?;
        let mut m = self.model.clone();
        let pairs: Vec<(usize, Vec<f64>)> = params.iter().copied().zip(values).collect();
        m.set_packed_params(plan, &pairs)?;
        Ok(m)
    }
}

/// The inputs of a forward-and-backward plan on `data`: the packed weight space, a fresh draw
/// of each dropout mask, then the targets where the plan takes them.
fn part_inputs(
    model: &Model,
    data: &Dataset,
    masks: &[MaskInput],
    has_target: bool,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Vec<Vec<f64>> {
    let mut inputs = model.pack_input(&data.inputs, data.len());
    for m in masks {
        inputs.push(m.sample(rng));
    }
    if has_target {
        inputs.push(data.targets.data.clone());
    }
    inputs
}

impl Drop for Trainer<'_> {
    fn drop(&mut self) {
        match &self.mode {
            Mode::Whole(t) => self.backend.release(&t.plan),
            Mode::Split(s) => {
                self.backend.release(&s.part);
                self.backend.release(&s.optimizer);
            }
        }
    }
}

/// Settings of [`fit`].
#[derive(Clone, Debug)]
pub struct FitConfig {
    /// Evaluation rounds: epochs, or rounds of `eval_every` steps.
    pub epochs: usize,
    /// Validate every this many steps instead of once per epoch (batches then come from a
    /// stream that reshuffles the training set whenever it runs out).
    pub eval_every: Option<usize>,
    /// Mini-batch size (the last incomplete batch of each shuffled epoch is dropped).
    pub batch: usize,
    /// Loss.
    pub loss: LossKind,
    /// Validation metric.
    pub metric: Metric,
    /// Optimizer.
    pub optimizer: AdamConfig,
    /// Shuffling seed.
    pub seed: u64,
    /// Learning-curve CSV (epoch, step, train_loss, val_metric).
    pub csv: Option<PathBuf>,
    /// Show a progress bar.
    pub progress: bool,
    /// The model's name in errors (e.g. "Monomial-NFN").
    pub label: String,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            epochs: 50,
            eval_every: None,
            batch: 8,
            loss: LossKind::Bce,
            metric: Metric::KendallTau,
            optimizer: AdamConfig::default(),
            seed: 0,
            csv: None,
            progress: false,
            label: "model".into(),
        }
    }
}

/// A step-based run (the INR experiments): `steps` Adam steps with `warmup` steps of linear
/// warm-up, validation every `eval_every` steps, mini-batches of `batch`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepSchedule {
    /// Optimizer steps.
    pub steps: usize,
    /// Validate every this many steps.
    pub eval_every: usize,
    /// Mini-batch size.
    pub batch: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Linear warm-up steps.
    pub warmup: u64,
    /// Shuffling seed.
    pub seed: u64,
}

/// The INR experiments' default: 2,000 steps of Adam 1e-3 (100 warm-up), batch 32, validation
/// every 200 steps; it finishes within 10 minutes on a 2-core CPU.
impl Default for StepSchedule {
    fn default() -> Self {
        StepSchedule {
            steps: 2000,
            eval_every: 200,
            batch: 32,
            lr: 1e-3,
            warmup: 100,
            seed: 0,
        }
    }
}

impl StepSchedule {
    /// Checks the settings (an [`Error::Setting`] naming the first bad one).
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::setting(
                "learning rate",
                self.lr,
                "a finite value > 0",
            ));
        }
        if self.steps == 0 {
            return Err(Error::setting("steps", 0, "at least 1"));
        }
        if self.eval_every == 0 || self.eval_every > self.steps {
            return Err(Error::setting("eval-every", self.eval_every, "1 ..= steps"));
        }
        if self.batch == 0 {
            return Err(Error::setting("batch", 0, "at least 1"));
        }
        Ok(())
    }

    /// The [`fit`] settings of this schedule for the model `label`, its curve written to `csv`.
    pub fn fit_config(
        &self,
        label: &str,
        loss: LossKind,
        metric: Metric,
        csv: PathBuf,
        progress: bool,
    ) -> FitConfig {
        FitConfig {
            epochs: self.steps / self.eval_every.max(1),
            eval_every: Some(self.eval_every),
            batch: self.batch,
            loss,
            metric,
            optimizer: AdamConfig {
                lr: self.lr,
                warmup_steps: self.warmup,
                ..AdamConfig::default()
            },
            seed: self.seed,
            csv: Some(csv),
            progress,
            label: label.into(),
        }
    }
}

/// One evaluation round (an epoch, or `eval_every` steps) of the learning curve.
#[derive(Clone, Debug, PartialEq)]
pub struct Epoch {
    /// 1-based round.
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub step: usize,
    /// Mean training loss over the epoch's steps.
    pub train_loss: f64,
    /// Validation metric after the epoch (NaN without a validation set).
    pub val_metric: f64,
}

/// What [`fit`] did.
#[derive(Clone, Debug)]
pub struct FitReport {
    /// The learning curve.
    pub curve: Vec<Epoch>,
    /// The selected epoch (best validation metric; the last without validation).
    pub best_epoch: usize,
    /// Training wall time in seconds (steps only).
    pub train_seconds: f64,
    /// Training throughput.
    pub samples_per_second: f64,
}

/// Predictions of `model` for every network of `data`, in chunks of `batch`.
pub fn predict(
    model: &Model,
    backend: &dyn Backend,
    data: &Dataset,
    batch: usize,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(data.targets.len());
    let idx: Vec<usize> = (0..data.len()).collect();
    for chunk in idx.chunks(batch.max(1)) {
        let part = data.select(chunk)?;
        out.extend(model.forward(backend, &part.inputs)?.features()?.data);
    }
    Ok(out)
}

/// Trains `model` in place on `train`, selecting the epoch with the best metric on `val`.
///
/// ```
/// use monomial_nfn::train::{fit, Dataset, FitConfig};
/// use monomial_nfn::{Activation, Cpu, Init, Model, NetActivation, NetworkSpec, PoolMode, Tensor, Variant, WeightSpace};
/// use rand::SeedableRng;
///
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let spec = NetworkSpec::mlp(&[2, 4, 1], NetActivation::Relu)?;
/// let mut model = Model::monomial_invariant(&spec, 1, &[3], Activation::Relu, Activation::Relu,
///     Variant::Scale, Init::XavierNormal, PoolMode::ParamMulL2, &[8], &mut rng)?;
/// let nets = WeightSpace::random(&spec, 24, 1, &mut rng);
/// let acc = Tensor::new(vec![24, 1], (0..24).map(|i| 0.1 + 0.03 * i as f64).collect())?;
/// let data = Dataset::new(nets, acc)?;
/// let config = FitConfig { epochs: 3, batch: 8, ..FitConfig::default() };
/// let report = fit(&mut model, &Cpu::<f32>::new(), &data, Some(&data), &config)?;
/// assert_eq!(report.curve.len(), 3);
/// # Ok::<(), monomial_nfn::Error>(())
/// ```
pub fn fit(
    model: &mut Model,
    backend: &dyn Backend,
    train: &Dataset,
    val: Option<&Dataset>,
    config: &FitConfig,
) -> Result<FitReport> {
    if config.batch == 0 || train.is_empty() {
        return Err(Error::Input(format!(
            "training needs a positive batch size and networks (batch {}, {} networks)",
            config.batch,
            train.len()
        )));
    }
    let batch = config.batch.min(train.len());
    let steps_per_epoch = match config.eval_every {
        Some(0) => {
            return Err(Error::Input(
                "validation interval (eval_every) must be at least 1 step".into(),
            ))
        }
        Some(k) => k,
        None => train.len() / batch,
    };
    let mut trainer = Trainer::new(model, backend, batch, config.loss, config.optimizer.clone())?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let bar = crate::progress::Bar::new(
        config.progress,
        (config.epochs * steps_per_epoch) as u64,
        "{bar:30} {pos}/{len} steps, {elapsed} elapsed, eta {eta} {msg}",
    )?;
    // The curve so far, rewritten whole through a temporary name every round: the file on
    // disk always holds complete rows, whenever the run stops.
    let mut csv_text = String::from("epoch,step,train_loss,val_metric\n");
    if let Some(p) = &config.csv {
        crate::io::write_file(p, csv_text.as_bytes())?;
    }
    let mut curve = Vec::with_capacity(config.epochs);
    let mut best: Option<(f64, usize, Vec<Layer>)> = None;
    let mut train_seconds = 0.0;
    // Position in the shuffled order; past its end the order is reshuffled.
    let mut cursor = usize::MAX;
    for epoch in 1..=config.epochs {
        let t0 = Instant::now();
        for _ in 0..steps_per_epoch {
            if cursor == usize::MAX || cursor + batch > order.len() {
                order.shuffle(&mut rng);
                cursor = 0;
            }
            trainer.step(&train.select(&order[cursor..cursor + batch])?)?;
            cursor += batch;
            bar.inc(1);
        }
        if config.eval_every.is_none() {
            // Epochs start afresh: the incomplete last batch is dropped.
            cursor = usize::MAX;
        }
        let train_loss = trainer.take_loss_sum()? / steps_per_epoch as f64;
        if !train_loss.is_finite() {
            bar.finish_and_clear();
            return Err(Error::Diverged(format!(
                "{}: the training loss became {train_loss} in round {epoch} (steps {}..={}); \
                 lower the learning rate or check the inputs",
                config.label,
                (epoch - 1) * steps_per_epoch + 1,
                epoch * steps_per_epoch
            )));
        }
        train_seconds += t0.elapsed().as_secs_f64();
        let current = trainer.model()?;
        if let Some(bad) = current
            .layers()
            .iter()
            .filter_map(crate::nn::model::layer_params)
            .flat_map(|p| p.iter())
            .find(|(_, t)| t.data.iter().any(|v| !v.is_finite()))
        {
            bar.finish_and_clear();
            return Err(Error::Diverged(format!(
                "{}: parameter {} became non-finite in round {epoch}",
                config.label, bad.0
            )));
        }
        let val_metric = match val {
            Some(v) => {
                let p = predict(&current, backend, v, 256)?;
                current.release(backend);
                config.metric.eval(&p, &v.targets.data, v.outputs())?
            }
            None => f64::NAN,
        };
        bar.set_message(format!("loss {train_loss:.4}, val {val_metric:.4}"));
        if let Some(p) = &config.csv {
            csv_text += &format!(
                "{epoch},{},{train_loss},{val_metric}\n",
                epoch * steps_per_epoch
            );
            crate::io::write_file(p, csv_text.as_bytes())?;
        }
        // Without validation the last epoch wins; a NaN metric never beats a number.
        let better = match &best {
            None => true,
            Some(_) if val.is_none() => true,
            Some(_) if val_metric.is_nan() => false,
            Some((b, _, _)) if b.is_nan() => true,
            Some((b, _, _)) if config.metric.higher_is_better() => val_metric > *b,
            Some((b, _, _)) => val_metric < *b,
        };
        if better {
            best = Some((val_metric, epoch, current.layers().to_vec()));
        }
        curve.push(Epoch {
            epoch,
            step: epoch * steps_per_epoch,
            train_loss,
            val_metric,
        });
    }
    bar.finish_and_clear();
    let best_epoch = match best {
        Some((_, e, layers)) => {
            *model.layers_mut() = layers;
            e
        }
        None => 0,
    };
    let samples = (config.epochs * steps_per_epoch * batch) as f64;
    Ok(FitReport {
        curve,
        best_epoch,
        train_seconds,
        samples_per_second: samples / train_seconds.max(1e-9),
    })
}
