//! Predicting CNN generalisation (SPEC §6.1), the paper's headline experiment: train NFNs to
//! predict a CNN's test accuracy from its weights, and report Kendall's τ on held-out networks,
//! plain and transformed by random group elements (hidden neurons rescaled by U[1, 1e4] for ReLU
//! zoos, sign-flipped for tanh zoos).

use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;

use crate::backend::Backend;
use crate::checkpoint::{self, Task};
use crate::error::{Error, Result};
use crate::metrics::Metric;
use crate::nn::model::Model;
use crate::plan::LossKind;
use crate::predict::Predictions;
use crate::space::WeightSpace;
use crate::spec::NetActivation;
use crate::standardize::Standardize;
use crate::tensor::Tensor;
use crate::train::{fit, predict, AdamConfig, Dataset, Epoch, FitConfig};
use crate::zoo::dataset::activation_name;
use crate::zoo::{generate, Arch, Augment, GenerateConfig, Splits, StepFilter, Zoo, ZooFilter};

/// The models of the paper's comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ModelKind {
    /// Monomial-NFN (ReLU or Tanh per the zoo's activation), 254,619 parameters.
    Monomial,
    /// HNP baseline, 2,811,743 parameters.
    Hnp,
    /// NP baseline with io embedding and input standardisation, 2,031,390 parameters.
    Np,
    /// STATNN: weight statistics and an MLP (SPEC §5.4), 1,059,001 parameters.
    Stat,
}

impl ModelKind {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Monomial => "Monomial-NFN",
            ModelKind::Hnp => "HNP",
            ModelKind::Np => "NP",
            ModelKind::Stat => "STATNN",
        }
    }

    /// The paper's configuration of this model for a zoo of `activation`. The Monomial-NFN's
    /// pool normalises exactly (ε = 0, not the reference's 1e-12 clamp), so that networks whose
    /// dead units decayed to ~1e-20 are ranked the same however their neurons are rescaled.
    pub fn build(self, activation: NetActivation, seed: u64) -> Result<Model> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        match self {
            ModelKind::Monomial => {
                let mut m = Model::monomial_cnn_zoo(activation, &mut rng)?;
                m.set_norm_eps(0.0)?;
                Ok(m)
            }
            ModelKind::Hnp => Model::hnp_cnn_zoo(&mut rng),
            ModelKind::Np => Model::np_cnn_zoo(&mut rng),
            ModelKind::Stat => Model::stat_cnn_zoo(&mut rng),
        }
    }
}

/// Where the zoo comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ZooSource {
    /// A directory in the Small CNN Zoo format (one holding `weights.npy`), or PyTorch state
    /// dicts with a `file,accuracy` list: a folder holding one `*.csv`, or the list itself
    /// (read with the configured activation; see [`crate::torchfile::read_set`]).
    Dir(PathBuf),
    /// Generate `n` cnn-zoo networks with `seed` (cached under the cache directory).
    Generate {
        /// Networks.
        n: usize,
        /// Seed.
        seed: u64,
    },
}

/// Settings of a predict-gen run (defaults: SPEC §6.1).
#[derive(Clone, Debug)]
pub struct PredictGenConfig {
    /// The zoo.
    pub zoo: ZooSource,
    /// Which networks of the zoo (and so which Monomial-NFN variant).
    pub activation: NetActivation,
    /// Models to train and compare.
    pub models: Vec<ModelKind>,
    /// Training epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Seed of the models, the split shuffle and the group elements.
    pub seed: u64,
    /// Add one copy of every training network transformed by a random group element with
    /// scales from U[1, 10^k] (ReLU) or signs (tanh), as the paper's augmentation does.
    pub augment_train: Option<u32>,
    /// Largest factor of the rescaled test set (ReLU zoos; tanh zoos get sign flips).
    pub test_scale: f64,
    /// Where generated zoos and one-file copies of state-dict zoos are cached.
    pub cache_dir: PathBuf,
    /// Where learning curves are written.
    pub out_dir: PathBuf,
    /// Show progress bars.
    pub progress: bool,
    /// Save the first of `models`, trained, as a checkpoint here (`mnfn predict` reads it).
    pub save: Option<PathBuf>,
}

impl Default for PredictGenConfig {
    fn default() -> Self {
        PredictGenConfig {
            zoo: ZooSource::Generate { n: 1000, seed: 0 },
            activation: NetActivation::Relu,
            models: vec![ModelKind::Monomial, ModelKind::Hnp],
            epochs: 50,
            batch: 8,
            lr: 1e-3,
            seed: 0,
            augment_train: None,
            test_scale: 1e4,
            cache_dir: default_cache_dir(),
            out_dir: PathBuf::from("predict-gen-out"),
            progress: false,
            save: None,
        }
    }
}

impl PredictGenConfig {
    /// Checks every setting before any work starts (each error names the option, the value and
    /// the accepted range).
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::setting(
                "learning rate (--lr)",
                self.lr,
                "a finite value > 0",
            ));
        }
        if self.epochs == 0 {
            return Err(Error::setting("epochs (--epochs)", 0, "at least 1"));
        }
        if self.batch == 0 {
            return Err(Error::setting("batch (--batch)", 0, "at least 1"));
        }
        if !(self.test_scale.is_finite() && self.test_scale >= 1.0) {
            return Err(Error::setting(
                "test scale (--augment-scale)",
                self.test_scale,
                "a finite factor ≥ 1 (scales are drawn from U[1, factor])",
            ));
        }
        if let Some(k) = self.augment_train {
            if k > 30 {
                return Err(Error::setting(
                    "augmentation exponent (--augment-train)",
                    k,
                    "0 ..= 30 (scales up to 10^k; float32 ends near 3.4e38)",
                ));
            }
        }
        if self.models.is_empty() {
            return Err(Error::setting(
                "models (--models)",
                "none",
                "at least one of monomial, hnp, np, stat",
            ));
        }
        crate::io::check_output_file("checkpoint path (--save)", self.save.as_deref())?;
        if let ZooSource::Generate { n, .. } = self.zoo {
            if n < 10 {
                return Err(Error::setting("networks (--generate)", n, "at least 10"));
            }
        }
        Ok(())
    }
}

/// Refuses transformed networks that left float32's range: a value above its largest finite
/// number, or a tensor of one network whose every nonzero value fell below its smallest normal
/// number (the tensor would be computed as zeros or subnormals) where it was normal before.
/// Single tiny values beside normal ones (weights of dead units) lose nothing that matters and
/// pass, and so do tensors that were already subnormal before (collapsed networks of a zoo:
/// the transformation loses nothing there).
fn check_f32_range(before: &WeightSpace, after: &WeightSpace, what: &str) -> Result<()> {
    let max = f32::MAX as f64;
    let min = f32::MIN_POSITIVE as f64;
    let top = |net: &[f64]| net.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let (b, a) = (before.weights.iter(), after.weights.iter());
    for (t0, t1) in b.chain(&before.biases).zip(a.chain(&after.biases)) {
        let per_net = t1.len() / after.batch().max(1);
        for (n0, n1) in t0.data.chunks(per_net).zip(t1.data.chunks(per_net)) {
            let (was, is) = (top(n0), top(n1));
            if is > max || (is != 0.0 && is < min && was >= min) {
                return Err(Error::Input(format!(
                    "{what}: a group element's scales take a network's weights to magnitude \
                     {is:e}, outside float32's range [{min:e}, {max:e}]; use smaller scales"
                )));
            }
        }
    }
    Ok(())
}

/// `$XDG_CACHE_HOME/monomial-nfn`, `~/.cache/monomial-nfn`, or `.mnfn-cache`.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("monomial-nfn"))
        .unwrap_or_else(|| PathBuf::from(".mnfn-cache"))
}

/// One model's results.
#[derive(Clone, Debug)]
pub struct ModelReport {
    /// Model name.
    pub model: String,
    /// Trainable parameters.
    pub params: usize,
    /// Kendall's τ on the test set.
    pub tau: f64,
    /// Kendall's τ on the group-transformed test set.
    pub tau_transformed: f64,
    /// Validation τ of the selected epoch.
    pub val_tau: f64,
    /// The selected epoch.
    pub best_epoch: usize,
    /// Training time (steps and validation), seconds.
    pub train_seconds: f64,
    /// Inference throughput on the test set.
    pub inference_per_second: f64,
    /// Backend description.
    pub backend: String,
    /// The learning curve.
    pub curve: Vec<Epoch>,
    /// Predictions on the test networks, in the order of [`PredictGenReport::test_index`]
    /// (also written to `out_dir/predictions-<model>.csv`).
    pub test_predictions: Vec<f64>,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct PredictGenReport {
    /// The learning-curve plot (PNG) comparing the models.
    pub plot: PathBuf,
    /// Networks in the train, validation and test splits.
    pub sizes: (usize, usize, usize),
    /// The zoo index of each test network.
    pub test_index: Vec<usize>,
    /// The zoo directory used.
    pub zoo_dir: PathBuf,
    /// Seconds spent generating the zoo (0 when loaded or cached).
    pub generate_seconds: f64,
    /// Per model.
    pub models: Vec<ModelReport>,
    /// Parameter counts of every paper configuration (built, then counted).
    pub paper_params: Vec<(String, usize)>,
}

/// The zoo directory for `source`, generating (and caching) it when asked. A cached zoo is
/// reused only when it passes [`Zoo::verify`]; one that fails (an interrupted or damaged write)
/// is regenerated, with a warning.
pub fn zoo_dir(config: &PredictGenConfig) -> Result<(PathBuf, f64)> {
    match &config.zoo {
        ZooSource::Dir(d) => Ok((d.clone(), 0.0)),
        ZooSource::Generate { n, seed } => {
            let act = crate::zoo::dataset::activation_name(config.activation);
            let dir = config
                .cache_dir
                .join(format!("cnn-zoo-{act}-n{n}-seed{seed}"));
            if !crate::manifest::reusable(&dir, Zoo::verify)? {
                let cfg = GenerateConfig::new(Arch::CnnZoo, config.activation, *n, *seed);
                let bar = bar(config.progress, *n as u64, "generating the zoo")?;
                let t0 = Instant::now();
                let zoo = generate(&cfg, &|| bar.inc(1))?;
                bar.finish_and_clear();
                Zoo::write(&dir, &zoo.layout, &zoo.weights, &zoo.metrics)?;
                return Ok((dir, t0.elapsed().as_secs_f64()));
            }
            Ok((dir, 0.0))
        }
    }
}

pub(crate) fn bar(show: bool, len: u64, what: &str) -> Result<crate::progress::Bar> {
    crate::progress::Bar::new(
        show,
        len,
        &format!("{what}: [{{bar:30}}] {{pos}}/{{len}} ({{elapsed}}, eta {{eta}})"),
    )
}

/// The zoo at `dir`: a Small CNN Zoo directory's final-step networks of the configured
/// activation, or state dicts with a `file,accuracy` list (a folder without `weights.npy`, or
/// the list), every file of one weight space.
fn open_zoo(dir: &std::path::Path, config: &PredictGenConfig) -> Result<Zoo> {
    let small_cnn_zoo = dir.join(crate::zoo::dataset::WEIGHTS).exists();
    if small_cnn_zoo || !crate::torchfile::is_state_dict_source(dir) {
        let filter = ZooFilter {
            activation: Some(config.activation),
            step: StepFilter::Final,
        };
        return Zoo::open(dir, &filter);
    }
    let options = crate::torchfile::ReadOptions {
        cache_dir: Some(config.cache_dir.clone()),
        progress: config.progress,
        ..Default::default()
    };
    let set = crate::torchfile::read_set(dir, config.activation, &options)?;
    let accuracies = set.accuracies.ok_or_else(|| {
        Error::dataset(
            dir,
            crate::error::DatasetProblem::MissingColumn(
                "accuracy: predict-gen needs a file,accuracy CSV listing the state dicts".into(),
            ),
        )
    })?;
    Zoo::from_networks(&set.file.spec, &set.file.networks, &accuracies, dir)
}

/// Concatenates two datasets of the same spec.
fn concat(a: &Dataset, b: &Dataset) -> Result<Dataset> {
    Dataset::new(
        WeightSpace::concat(&[a.inputs.clone(), b.inputs.clone()])?,
        Tensor::concat_rows(&[a.targets.clone(), b.targets.clone()])?,
    )
}

/// Runs the comparison: loads (or generates) the zoo, splits it as the paper does (the first
/// half, shuffled 80/20, is train/validation; the second half is test), trains each model with
/// BCE and Adam selecting the epoch with the best validation τ, and evaluates on the test set
/// plain and transformed. Learning curves go to `out_dir/curve-<model>.csv` and are plotted in
/// `out_dir/curves.png`.
pub fn predict_gen(config: &PredictGenConfig, backend: &dyn Backend) -> Result<PredictGenReport> {
    config.validate()?;
    let (dir, generate_seconds) = zoo_dir(config)?;
    let zoo = open_zoo(&dir, config)?;
    if zoo.len() < 10 {
        return Err(Error::Input(format!(
            "{} holds {} {} networks at the final step; at least 10 are needed to split them into training, validation and test networks: generate a larger zoo",
            dir.display(),
            zoo.len(),
            activation_name(config.activation)
        )));
    }
    let spec = zoo.layout.spec().clone();
    let acc = zoo.metric("test_accuracy")?;
    let order: Vec<usize> = (0..zoo.len()).collect();
    let splits = Splits::paper(&order, config.seed);
    let load = |idx: &[usize]| -> Result<Dataset> {
        let targets = Tensor::new(vec![idx.len(), 1], idx.iter().map(|&i| acc[i]).collect())?;
        Dataset::new(zoo.weight_space(idx)?, targets)
    };
    let mut train = load(&splits.train)?;
    let val = load(&splits.val)?;
    let test = load(&splits.test)?;
    let policy = |k: f64, seed: u64| {
        let mut a = Augment::for_activation(config.activation, 0, seed);
        a.range = crate::group::ScaleRange::Uniform { lo: 1.0, hi: k };
        a
    };
    if let Some(k) = config.augment_train {
        let aug = policy(10f64.powi(k as i32), config.seed ^ 0xa0);
        let moved = aug.apply(&spec, &train.inputs, 0, &splits.train)?;
        check_f32_range(&train.inputs, &moved, "--augment-train")?;
        train = concat(&train, &Dataset::new(moved, train.targets.clone())?)?;
    }
    let test_g = Dataset::new(
        policy(config.test_scale, config.seed ^ 0xb0).apply(
            &spec,
            &test.inputs,
            1,
            &splits.test,
        )?,
        test.targets.clone(),
    )?;
    check_f32_range(&test.inputs, &test_g.inputs, "--augment-scale")?;
    std::fs::create_dir_all(&config.out_dir).map_err(|e| Error::io(&config.out_dir, e))?;
    let mut models = Vec::new();
    for &kind in &config.models {
        let mut model = kind.build(config.activation, config.seed)?;
        if model.spec().layers != spec.layers {
            return Err(Error::Spec(format!(
                "{} is built for the CNN-Zoo architecture; the zoo in {} has another",
                kind.name(),
                dir.display()
            )));
        }
        // NP standardises every input coordinate with train statistics (SPEC §5.4).
        let prep = |d: &Dataset, s: &Option<Standardize>| -> Result<Dataset> {
            match s {
                Some(s) => Dataset::new(s.apply(&d.inputs)?, d.targets.clone()),
                None => Ok(d.clone()),
            }
        };
        let stats = (kind == ModelKind::Np).then(|| Standardize::fit(&train.inputs));
        let (tr, va, te, te_g) = (
            prep(&train, &stats)?,
            prep(&val, &stats)?,
            prep(&test, &stats)?,
            prep(&test_g, &stats)?,
        );
        let fit_config = FitConfig {
            epochs: config.epochs,
            eval_every: None,
            batch: config.batch,
            loss: LossKind::Bce,
            metric: Metric::KendallTau,
            optimizer: AdamConfig {
                lr: config.lr,
                ..AdamConfig::default()
            },
            seed: config.seed,
            csv: Some(config.out_dir.join(format!("curve-{}.csv", kind.name()))),
            progress: config.progress,
            label: kind.name().into(),
        };
        let t0 = Instant::now();
        let report = fit(&mut model, backend, &tr, Some(&va), &fit_config)?;
        let train_seconds = t0.elapsed().as_secs_f64();
        // The first call builds and compiles the plans: time a second one.
        predict(&model, backend, &te, 256)?;
        let t1 = Instant::now();
        let p = predict(&model, backend, &te, 256)?;
        let inference_per_second = te.len() as f64 / t1.elapsed().as_secs_f64().max(1e-9);
        let p_g = predict(&model, backend, &te_g, 256)?;
        let predictions = Predictions {
            label: kind.name().into(),
            task: Some(Task::PredictGen),
            width: 1,
            indices: splits.test.clone(),
            outputs: p.clone(),
            targets: Some(te.targets.data.clone()),
        };
        predictions.write_csv(
            &config
                .out_dir
                .join(format!("predictions-{}.csv", kind.name())),
        )?;
        if let (Some(path), true) = (&config.save, models.is_empty()) {
            checkpoint::save(
                path,
                &model,
                kind.name(),
                Some(Task::PredictGen),
                stats.as_ref(),
            )?;
        }
        let tau = Metric::KendallTau.eval(&p, &te.targets.data, 1)?;
        let tau_transformed = Metric::KendallTau.eval(&p_g, &te_g.targets.data, 1)?;
        let val_tau = report
            .curve
            .get(report.best_epoch.saturating_sub(1))
            .map_or(f64::NAN, |e| e.val_metric);
        models.push(ModelReport {
            model: kind.name().into(),
            params: model.num_params(),
            tau,
            tau_transformed,
            val_tau,
            best_epoch: report.best_epoch,
            train_seconds,
            inference_per_second,
            backend: backend.describe(),
            curve: report.curve,
            test_predictions: p,
        });
    }
    let curves: Vec<(&str, &[Epoch])> = models
        .iter()
        .map(|m| (m.model.as_str(), m.curve.as_slice()))
        .collect();
    let plot = config.out_dir.join("curves.png");
    crate::plot::learning_curves(&plot, "validation Kendall tau", &curves)?;
    let kinds = [
        ModelKind::Monomial,
        ModelKind::Hnp,
        ModelKind::Np,
        ModelKind::Stat,
    ];
    let paper_params = kinds
        .iter()
        .map(|k| {
            Ok((
                k.name().to_string(),
                k.build(config.activation, 0)?.num_params(),
            ))
        })
        .collect::<Result<_>>()?;
    Ok(PredictGenReport {
        paper_params,
        plot,
        sizes: (train.len(), val.len(), test.len()),
        test_index: splits.test.clone(),
        zoo_dir: dir,
        generate_seconds,
        models,
    })
}

impl PredictGenReport {
    /// The report as a text table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<14} {:>10} {:>10} {:>14} {:>9} {:>6} {:>10} {:>12}  {}\n",
            "model",
            "params",
            "test tau",
            "rescaled tau",
            "val tau",
            "epoch",
            "train s",
            "infer/s",
            "backend"
        );
        // Kendall's τ of constant predictions is undefined: say so, never print a number.
        let tau = |t: f64| {
            if t.is_finite() {
                format!("{t:.4}")
            } else {
                "undefined".into()
            }
        };
        for m in &self.models {
            s += &format!(
                "{:<14} {:>10} {:>10} {:>14} {:>9} {:>6} {:>10.1} {:>12.0}  {}\n",
                m.model,
                m.params,
                tau(m.tau),
                tau(m.tau_transformed),
                tau(m.val_tau),
                m.best_epoch,
                m.train_seconds,
                m.inference_per_second,
                m.backend
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{NetActivation, NetworkSpec};

    /// A network whose tensor is scaled below float32's normal range is refused; a collapsed
    /// network whose tensor was subnormal before the transformation passes (generated zoos hold
    /// such networks), and so does any network when nothing left the range.
    #[test]
    fn only_tensors_the_transformation_moved_out_of_range_are_refused() {
        let spec = NetworkSpec::mlp(&[2, 3, 1], NetActivation::Relu).unwrap();
        let mut r = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
        let before = WeightSpace::random(&spec, 2, 1, &mut r);
        let scaled = |ws: &WeightSpace, f: f64| {
            let mut out = ws.clone();
            let per_net = out.weights[0].len() / 2;
            out.weights[0].data[per_net..]
                .iter_mut()
                .for_each(|v| *v *= f);
            out
        };
        check_f32_range(&before, &scaled(&before, 1e4), "test").unwrap();
        let e = check_f32_range(&before, &scaled(&before, 1e-40), "test").unwrap_err();
        assert!(e.to_string().contains("float32"), "{e}");
        let e = check_f32_range(&before, &scaled(&before, 1e300), "test").unwrap_err();
        assert!(e.to_string().contains("float32"), "{e}");
        let collapsed = scaled(&before, 1e-39);
        check_f32_range(&collapsed, &scaled(&collapsed, 0.5), "test").unwrap();
    }
}
