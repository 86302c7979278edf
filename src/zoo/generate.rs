//! The offline zoo generator: trains many small networks on the procedural glyph task, each with
//! hyperparameters sampled as in the Small CNN Zoo, and returns them in the zoo format.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

use super::dataset::activation_name;
use super::layout::Layout;
use super::metrics::Table;
use super::net::{softmax_xent, Net};
use super::task::{ImageSet, CLASSES, SIDE};
use crate::error::{Error, Result};
use crate::spec::{NetActivation, NetworkSpec};

/// The architecture of the generated networks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arch {
    /// The Small CNN Zoo CNN: three 3×3 stride-2 convs of 16 channels, pool, dense 16 -> 10.
    CnnZoo,
    /// An MLP on the flattened 16×16 image with these hidden widths, then 10 outputs.
    Mlp(Vec<usize>),
}

impl Arch {
    /// Parses `cnn-zoo` or `mlp:W1,W2,...` (hidden widths), in any case.
    pub fn parse(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        if lower == "cnn-zoo" {
            return Ok(Arch::CnnZoo);
        }
        let widths = lower.strip_prefix("mlp:").ok_or_else(|| {
            Error::Spec(format!(
                "unknown architecture '{s}': use cnn-zoo or mlp: and hidden widths, e.g. mlp:32,16"
            ))
        })?;
        let hidden = widths
            .split(',')
            .map(|w| w.trim().parse::<usize>().ok().filter(|&w| w > 0))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Error::Spec(format!(
                    "'{s}': the hidden widths after mlp: must be positive integers separated by commas, e.g. mlp:32,16"
                ))
            })?;
        Ok(Arch::Mlp(hidden))
    }

    /// The architecture's spec for `activation`.
    pub fn spec(&self, activation: NetActivation) -> Result<NetworkSpec> {
        match self {
            Arch::CnnZoo => Ok(NetworkSpec::cnn_zoo(activation)),
            Arch::Mlp(hidden) => {
                let mut widths = vec![SIDE * SIDE];
                widths.extend(hidden);
                widths.push(CLASSES);
                NetworkSpec::mlp(&widths, activation)
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Arch::CnnZoo => "cnn",
            Arch::Mlp(_) => "mlp",
        }
    }
}

/// The optimizer a network was trained with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Optimizer {
    /// SGD with momentum 0.9.
    Sgd,
    /// Adam (β = 0.9/0.999, ε = 1e-7).
    Adam,
    /// RMSProp (ρ = 0.9, ε = 1e-7).
    RmsProp,
}

impl Optimizer {
    /// The name in `config.optimizer`.
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Sgd => "sgd",
            Optimizer::Adam => "adam",
            Optimizer::RmsProp => "rmsprop",
        }
    }
}

/// How initial weights are drawn (biases start at zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightInit {
    /// N(0, std²).
    Normal,
    /// N(0, std²) redrawn beyond two standard deviations.
    TruncatedNormal,
    /// Uniform with the given standard deviation.
    Uniform,
}

impl WeightInit {
    /// The name in `config.w_init`.
    pub fn name(self) -> &'static str {
        match self {
            WeightInit::Normal => "normal",
            WeightInit::TruncatedNormal => "truncated_normal",
            WeightInit::Uniform => "uniform",
        }
    }
}

/// One network's sampled hyperparameters (the Small CNN Zoo's `config.*` columns).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyper {
    /// Optimizer.
    pub optimizer: Optimizer,
    /// Learning rate, log-uniform in [5e-4, 5e-2].
    pub learning_rate: f32,
    /// Initial weight standard deviation, log-uniform in [1e-3, 0.5].
    pub init_std: f32,
    /// Initial weight distribution.
    pub w_init: WeightInit,
    /// L2 penalty on every parameter, log-uniform in [1e-8, 1e-2].
    pub l2reg: f32,
    /// Dropout rate on hidden units, uniform in [0, 0.5].
    pub dropout: f32,
    /// Fraction of the training images used, uniform in [0.1, 1].
    pub train_fraction: f32,
    /// Mini-batch steps, uniform in the generator's step range.
    pub num_steps: usize,
}

fn log_uniform(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    (lo.ln() + (hi.ln() - lo.ln()) * rng.random::<f32>()).exp()
}

impl Hyper {
    /// Draws a configuration; `steps` bounds the number of mini-batch steps.
    pub fn sample(rng: &mut impl Rng, steps: (usize, usize)) -> Self {
        Hyper {
            optimizer: [Optimizer::Sgd, Optimizer::Adam, Optimizer::RmsProp]
                [rng.random_range(0..3)],
            learning_rate: log_uniform(rng, 5e-4, 5e-2),
            init_std: log_uniform(rng, 1e-3, 0.5),
            w_init: [
                WeightInit::Normal,
                WeightInit::TruncatedNormal,
                WeightInit::Uniform,
            ][rng.random_range(0..3)],
            l2reg: log_uniform(rng, 1e-8, 1e-2),
            dropout: rng.random_range(0.0..0.5),
            train_fraction: rng.random_range(0.1..1.0),
            num_steps: rng.random_range(steps.0..=steps.1),
        }
    }
}

/// What `mnfn zoo generate` does.
#[derive(Clone, Debug)]
pub struct GenerateConfig {
    /// Architecture.
    pub arch: Arch,
    /// Hidden activation (relu or tanh).
    pub activation: NetActivation,
    /// Number of networks.
    pub n: usize,
    /// Seed of the task images and of every network.
    pub seed: u64,
    /// Training images (each network uses a sampled fraction).
    pub train_images: usize,
    /// Test images.
    pub test_images: usize,
    /// Mini-batch size.
    pub batch: usize,
    /// Range of mini-batch steps.
    pub steps: (usize, usize),
}

impl GenerateConfig {
    /// The defaults the CLI uses: 4,000 training and 1,000 test images, batch 32, 150–450 steps.
    pub fn new(arch: Arch, activation: NetActivation, n: usize, seed: u64) -> Self {
        GenerateConfig {
            arch,
            activation,
            n,
            seed,
            train_images: 4000,
            test_images: 1000,
            batch: 32,
            steps: (150, 450),
        }
    }
}

/// One trained network: its row and its metrics.
#[derive(Clone, Debug)]
pub struct Trained {
    /// Flat parameters in the layout's order.
    pub row: Vec<f32>,
    /// Its hyperparameters.
    pub hyper: Hyper,
    /// (accuracy, mean loss) on its training images.
    pub train: (f32, f32),
    /// (accuracy, mean loss) on the test images.
    pub test: (f32, f32),
}

/// A generated zoo: layout, rows (n × P) and metrics.
#[derive(Clone, Debug)]
pub struct GeneratedZoo {
    /// Layout of every row.
    pub layout: Layout,
    /// Rows, n × P.
    pub weights: Vec<f32>,
    /// One metrics row per network.
    pub metrics: Table,
}

/// Trains `cfg.n` networks in parallel (rayon); `on_done` is called after each.
pub fn generate(cfg: &GenerateConfig, on_done: &(dyn Fn() + Sync)) -> Result<GeneratedZoo> {
    if !matches!(cfg.activation, NetActivation::Relu | NetActivation::Tanh) {
        return Err(Error::Spec(format!(
            "zoo networks use relu or tanh, not {}",
            activation_name(cfg.activation)
        )));
    }
    if cfg.n == 0 {
        return Err(Error::setting("networks to generate (n)", 0, "at least 1"));
    }
    if cfg.batch == 0 {
        return Err(Error::setting("batch", 0, "at least 1"));
    }
    if cfg.train_images < cfg.batch {
        return Err(Error::setting(
            "train_images",
            cfg.train_images,
            &format!("at least the batch size, {}", cfg.batch),
        ));
    }
    if cfg.steps.0 > cfg.steps.1 {
        return Err(Error::setting(
            "steps",
            format!("{} to {}", cfg.steps.0, cfg.steps.1),
            "a range whose first step count is at most its last",
        ));
    }
    let layout = Layout::for_spec(&cfg.arch.spec(cfg.activation)?);
    let net = Net::new(&layout, SIDE, SIDE)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let train = ImageSet::generate(cfg.train_images, &mut rng);
    let test = ImageSet::generate(cfg.test_images, &mut rng);
    let trained: Vec<Trained> = (0..cfg.n)
        .into_par_iter()
        .map(|i| {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            rng.set_stream(i as u64 + 1);
            let hyper = Hyper::sample(&mut rng, cfg.steps);
            let t = train_one(&net, &train, &test, &hyper, cfg.batch, &mut rng);
            on_done();
            t
        })
        .collect();
    let header: Vec<String> = [
        "step",
        "test_accuracy",
        "test_loss",
        "train_accuracy",
        "train_loss",
        "config.activation",
        "config.b_init",
        "config.batch_size",
        "config.dataset",
        "config.dnn_architecture",
        "config.dropout",
        "config.init_std",
        "config.l2reg",
        "config.learning_rate",
        "config.num_steps",
        "config.optimizer",
        "config.random_seed",
        "config.train_fraction",
        "config.w_init",
    ]
    .map(String::from)
    .to_vec();
    let rows = trained
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let h = &t.hyper;
            vec![
                h.num_steps.to_string(),
                t.test.0.to_string(),
                t.test.1.to_string(),
                t.train.0.to_string(),
                t.train.1.to_string(),
                activation_name(cfg.activation).into(),
                "zeros".into(),
                cfg.batch.to_string(),
                "glyphs16".into(),
                cfg.arch.name().into(),
                h.dropout.to_string(),
                h.init_std.to_string(),
                h.l2reg.to_string(),
                h.learning_rate.to_string(),
                h.num_steps.to_string(),
                h.optimizer.name().into(),
                format!("{}:{i}", cfg.seed),
                h.train_fraction.to_string(),
                h.w_init.name().into(),
            ]
        })
        .collect();
    Ok(GeneratedZoo {
        weights: trained.iter().flat_map(|t| t.row.iter().copied()).collect(),
        layout,
        metrics: Table::new(header, rows),
    })
}

/// Initial parameters: kernels from `hyper.w_init` with `hyper.init_std`, biases zero.
fn init_row(net: &Net, hyper: &Hyper, rng: &mut impl Rng) -> Vec<f32> {
    let layout = net.layout();
    let mut row = vec![0f32; layout.row_len()];
    let std = hyper.init_std;
    let normal = Normal::new(0.0f32, std).expect("init_std is positive");
    for i in 0..layout.spec().num_layers() {
        let (kernel, _) = layout.kernel_bias_mut(&mut row, i);
        for v in kernel {
            *v = match hyper.w_init {
                WeightInit::Normal => normal.sample(rng),
                WeightInit::TruncatedNormal => loop {
                    let x = normal.sample(rng);
                    if x.abs() <= 2.0 * std {
                        break x;
                    }
                },
                WeightInit::Uniform => rng.random_range(-1.0f32..1.0) * std * 3f32.sqrt(),
            };
        }
    }
    row
}

/// Trains one network with mini-batch steps; an update that would make a parameter
/// non-finite is skipped, so every row stays finite.
pub fn train_one(
    net: &Net,
    train: &ImageSet,
    test: &ImageSet,
    hyper: &Hyper,
    batch: usize,
    rng: &mut ChaCha8Rng,
) -> Trained {
    let mut row = init_row(net, hyper, rng);
    let used = ((train.len() as f32 * hyper.train_fraction) as usize).clamp(batch, train.len());
    let p = row.len();
    let (mut m1, mut m2) = (vec![0f32; p], vec![0f32; p]);
    let mut grad = vec![0f32; p];
    let mut next = vec![0f32; p];
    let px = net.input_len();
    let mut x = vec![0f32; batch * px];
    let mut y = vec![0u8; batch];
    let lr = hyper.learning_rate;
    for step in 1..=hyper.num_steps {
        for (b, label) in y.iter_mut().enumerate() {
            let i = rng.random_range(0..used);
            x[b * px..(b + 1) * px].copy_from_slice(train.image(i));
            *label = train.labels[i];
        }
        let dropout =
            (hyper.dropout > 0.0).then_some((hyper.dropout, rng as &mut dyn rand::RngCore));
        let trace = net.forward(&row, &x, batch, dropout, true);
        let (_, dlogits, _) = softmax_xent(&trace.logits, &y, CLASSES);
        grad.iter_mut()
            .zip(&row)
            .for_each(|(g, w)| *g = hyper.l2reg * w);
        net.backward(&row, &trace, batch, dlogits, &mut grad);
        let t = step as i32;
        for j in 0..p {
            let g = grad[j];
            next[j] = match hyper.optimizer {
                Optimizer::Sgd => {
                    m1[j] = 0.9 * m1[j] + g;
                    row[j] - lr * m1[j]
                }
                Optimizer::Adam => {
                    m1[j] = 0.9 * m1[j] + 0.1 * g;
                    m2[j] = 0.999 * m2[j] + 0.001 * g * g;
                    let mh = m1[j] / (1.0 - 0.9f32.powi(t));
                    let vh = m2[j] / (1.0 - 0.999f32.powi(t));
                    row[j] - lr * mh / (vh.sqrt() + 1e-7)
                }
                Optimizer::RmsProp => {
                    m2[j] = 0.9 * m2[j] + 0.1 * g * g;
                    row[j] - lr * g / (m2[j].sqrt() + 1e-7)
                }
            };
        }
        if next.iter().all(|v| v.is_finite()) {
            std::mem::swap(&mut row, &mut next);
        }
    }
    let train_eval = evaluate(net, &row, train, 0..used.min(1000));
    let test_eval = evaluate(net, &row, test, 0..test.len());
    Trained {
        row,
        hyper: *hyper,
        train: train_eval,
        test: test_eval,
    }
}

/// (accuracy, mean loss) of `row` on images `range` of `set`.
fn evaluate(net: &Net, row: &[f32], set: &ImageSet, range: std::ops::Range<usize>) -> (f32, f32) {
    let px = net.input_len();
    let (mut correct, mut loss) = (0usize, 0f64);
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(250) {
        let x: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| set.image(i).iter().copied())
            .collect();
        let y: Vec<u8> = chunk.iter().map(|&i| set.labels[i]).collect();
        debug_assert_eq!(x.len(), chunk.len() * px);
        let trace = net.forward(row, &x, chunk.len(), None, false);
        let (l, _, c) = softmax_xent(&trace.logits, &y, CLASSES);
        correct += c;
        loss += l as f64 * chunk.len() as f64;
    }
    let n = ids.len().max(1) as f64;
    ((correct as f64 / n) as f32, (loss / n) as f32)
}
