//! INR classification (SPEC §6.2), the paper's second experiment: train NFNs to name the class of
//! the image a SIREN was fitted to from the SIREN's weights alone, and report test accuracy on
//! held-out SIRENs, plain and transformed by random hidden-neuron permutations and sign flips
//! (which leave every SIREN's function unchanged).

use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::experiment::default_cache_dir;
use crate::metrics::Metric;
use crate::nn::baseline::PermKind;
use crate::nn::inr::{mlp_classifier, InrClassifierConfig, InrDataset};
use crate::nn::model::Model;
use crate::nn::params::Init;
use crate::plan::LossKind;
use crate::spec::NetworkSpec;
use crate::tensor::Tensor;
use crate::train::{fit, predict, Dataset, Epoch, StepSchedule};
use crate::zoo::inr::{generate, InrConfig};
use crate::zoo::{Augment, NetworkFile};

/// The models of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum InrModelKind {
    /// The hybrid Monomial-NFN: sign-equivariant front end, Fourier features, HNP layers.
    Monomial,
    /// Fourier features and HNP layers, no front end.
    Hnp,
    /// Fourier features and NP layers, no front end.
    Np,
    /// An MLP on the flattened weights.
    Mlp,
}

impl InrModelKind {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            InrModelKind::Monomial => "Monomial-NFN",
            InrModelKind::Hnp => "HNP",
            InrModelKind::Np => "NP",
            InrModelKind::Mlp => "MLP",
        }
    }
}

/// Where the INR set comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum InrSource {
    /// A network file with labels (`mnfn inr generate`'s format).
    File(PathBuf),
    /// Generate `n` glyph SIRENs with `seed` (cached under the cache directory).
    Generate {
        /// SIRENs.
        n: usize,
        /// Seed.
        seed: u64,
    },
}

impl InrSource {
    /// Checks the size of a set to generate.
    pub fn validate(&self) -> Result<()> {
        match self {
            InrSource::Generate { n, .. } if *n < 10 => {
                Err(Error::setting("generate", n, "at least 10 INRs"))
            }
            _ => Ok(()),
        }
    }
}

/// Settings of a classify-inr run. Defaults are sized to finish within 10 minutes on a 2-core
/// CPU (narrower layers than the paper's, no dropout: on 1,600 training SIRENs dropout only
/// slowed fitting, BENCHMARKS.md); [`ClassifyConfig::paper`] gives the paper's MNIST
/// configuration.
#[derive(Clone, Debug)]
pub struct ClassifyConfig {
    /// The INR set.
    pub inrs: InrSource,
    /// Models to train and compare.
    pub models: Vec<InrModelKind>,
    /// Monomial-NFN/NP/HNP architecture (the front end is dropped for NP and HNP).
    pub nfn: InrClassifierConfig,
    /// MLP baseline hidden widths.
    pub mlp: Vec<usize>,
    /// Steps, validation interval, batch, learning rate, warm-up; its seed also seeds the
    /// models, the dropout and the group elements.
    pub schedule: StepSchedule,
    /// Where generated INR sets are cached.
    pub cache_dir: PathBuf,
    /// Where learning curves are written.
    pub out_dir: PathBuf,
    /// Show progress bars.
    pub progress: bool,
    /// Save the first of `models`, trained, as a checkpoint here (`mnfn predict` reads it).
    pub save: Option<PathBuf>,
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        ClassifyConfig {
            inrs: InrSource::Generate { n: 2000, seed: 0 },
            models: vec![
                InrModelKind::Monomial,
                InrModelKind::Hnp,
                InrModelKind::Np,
                InrModelKind::Mlp,
            ],
            nfn: InrClassifierConfig {
                front: Some(16),
                front_init: Init::XavierNormal,
                fourier: (32, 3.0),
                pos_encoding: None,
                base: PermKind::Hnp,
                widths: vec![32; 3],
                feature_dropout: 0.0,
                head: vec![128; 2],
                head_dropout: 0.0,
                classes: 10,
            },
            mlp: vec![256, 256],
            schedule: StepSchedule::default(),
            cache_dir: default_cache_dir(),
            out_dir: PathBuf::from("classify-inr-out"),
            progress: false,
            save: None,
        }
    }
}

impl ClassifyConfig {
    /// The paper's MNIST configuration (SPEC §6.2: 22,146,603 parameters, lr 1e-4, batch 32,
    /// 200,000 steps with 10,000 warm-up, validation every 3,000), on this run's INR set.
    pub fn paper(mut self) -> Self {
        self.nfn = InrClassifierConfig::paper(InrDataset::Mnist);
        self.mlp = vec![1000, 1000];
        self.schedule = StepSchedule {
            steps: 200_000,
            eval_every: 3_000,
            batch: 32,
            lr: 1e-4,
            warmup: 10_000,
            ..self.schedule
        };
        self
    }

    /// Checks every setting before any work starts.
    pub fn validate(&self) -> Result<()> {
        self.schedule.validate()?;
        self.inrs.validate()?;
        crate::io::check_output_file("checkpoint path (--save)", self.save.as_deref())?;
        let bad = |what: &str, v: String, range: &str| Err(Error::setting(what, v, range));
        if self.models.is_empty() {
            return bad(
                "models",
                "none".into(),
                "at least one of monomial, hnp, np, mlp",
            );
        }
        for (what, p) in [
            ("feature dropout", self.nfn.feature_dropout),
            ("head dropout", self.nfn.head_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(what, p.to_string(), "[0, 1)");
            }
        }
        Ok(())
    }
}

/// One model's results.
#[derive(Clone, Debug)]
pub struct InrModelReport {
    /// Model name.
    pub model: String,
    /// Trainable parameters.
    pub params: usize,
    /// Test accuracy.
    pub accuracy: f64,
    /// Test accuracy on the test SIRENs transformed by random permutations and sign flips.
    pub accuracy_transformed: f64,
    /// Largest |logit change| under those transformations, relative to the largest logit.
    pub logit_change: f64,
    /// Validation accuracy of the selected round.
    pub val_accuracy: f64,
    /// Steps of the selected weights.
    pub best_step: usize,
    /// Training time (steps and validation), seconds.
    pub train_seconds: f64,
    /// Inference throughput on the test set, INRs per second.
    pub inference_per_second: f64,
    /// Backend description.
    pub backend: String,
    /// The learning curve.
    pub curve: Vec<Epoch>,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct ClassifyReport {
    /// The INR set file used.
    pub inr_file: PathBuf,
    /// Seconds spent generating it (0 when loaded or cached).
    pub generate_seconds: f64,
    /// Mean PSNR of the fits, when the file records it.
    pub mean_psnr: Option<f64>,
    /// SIRENs in the train, validation and test splits.
    pub sizes: (usize, usize, usize),
    /// Per model.
    pub models: Vec<InrModelReport>,
    /// The learning-curve plot (PNG).
    pub plot: PathBuf,
}

/// The INR set of `source`, generating and caching it under `cache_dir` when asked. The cached
/// set is written through a temporary name, then its manifest (`NAME.manifest.json`); it is
/// reused only when it passes the manifest check, and otherwise regenerated with a warning.
pub fn inr_file(
    source: &InrSource,
    cache_dir: &std::path::Path,
    progress: bool,
    backend: &dyn Backend,
) -> Result<(PathBuf, f64)> {
    match source {
        InrSource::File(p) => Ok((p.clone(), 0.0)),
        InrSource::Generate { n, seed } => {
            let name = format!("inr-glyphs16-clean-n{n}-seed{seed}");
            let path = cache_dir.join(format!("{name}.safetensors"));
            let manifest = cache_dir.join(format!("{name}.manifest.json"));
            if crate::manifest::reusable(&path, |_| crate::manifest::verify(&manifest))? {
                return Ok((path, 0.0));
            }
            std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
            let bar = crate::experiment::bar(progress, *n as u64, "fitting SIRENs")?;
            let t0 = Instant::now();
            let (file, _) = generate(&InrConfig::new(*n, *seed), backend, &|k| bar.inc(k as u64))?;
            bar.finish_and_clear();
            crate::io::remove_if_present(&manifest)?;
            file.write(&path)?;
            crate::manifest::write(&manifest, &[&format!("{name}.safetensors")])?;
            Ok((path, t0.elapsed().as_secs_f64()))
        }
    }
}

/// Builds one model of the comparison for SIRENs of `spec`.
pub fn build(kind: InrModelKind, config: &ClassifyConfig, spec: &NetworkSpec) -> Result<Model> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.schedule.seed);
    let nfn = |front: Option<usize>, base: PermKind| InrClassifierConfig {
        front,
        base,
        ..config.nfn.clone()
    };
    match kind {
        InrModelKind::Monomial => {
            nfn(config.nfn.front.or(Some(16)), config.nfn.base).build(spec, &mut rng)
        }
        InrModelKind::Hnp => nfn(None, PermKind::Hnp).build(spec, &mut rng),
        InrModelKind::Np => nfn(None, PermKind::Np { io_embed: false }).build(spec, &mut rng),
        InrModelKind::Mlp => mlp_classifier(
            spec,
            &config.mlp,
            config.nfn.head_dropout,
            config.nfn.classes,
            &mut rng,
        ),
    }
}

/// Runs the comparison: the first 80% of the set trains, the next 10% validates (every
/// `eval_every` steps; the best validation accuracy selects the weights), the last 10% tests,
/// plain and with every SIREN transformed by a random hidden permutation and sign flip.
/// Curves go to `out_dir/curve-<model>.csv` and `out_dir/curves.png`.
pub fn classify_inr(config: &ClassifyConfig, backend: &dyn Backend) -> Result<ClassifyReport> {
    config.validate()?;
    let (path, generate_seconds) =
        inr_file(&config.inrs, &config.cache_dir, config.progress, backend)?;
    let options = crate::torchfile::ReadOptions {
        classes: Some(config.nfn.classes),
        cache_dir: Some(config.cache_dir.clone()),
        progress: config.progress,
        ..Default::default()
    };
    let file = NetworkFile::read_inrs(&path, &options)?;
    let labels = file.labels.clone().ok_or_else(|| {
        Error::Input(format!(
            "{} has no labels: it is not an INR classification set",
            path.display()
        ))
    })?;
    let classes = config.nfn.classes;
    if let Some(&l) = labels.iter().find(|&&l| l >= classes) {
        return Err(Error::Input(format!(
            "{} holds label {l}, but the models have {classes} classes",
            path.display()
        )));
    }
    let n = labels.len();
    if n < 10 {
        return Err(Error::Input(format!(
            "{} holds {n} INRs; at least 10 are needed",
            path.display()
        )));
    }
    let spec = file.spec.clone();
    let (n_train, n_val) = (n * 8 / 10, n / 10);
    let split = [0..n_train, n_train..n_train + n_val, n_train + n_val..n];
    let one_hot: Vec<f64> = labels
        .iter()
        .flat_map(|&l| (0..classes).map(move |c| f64::from(u8::from(c == l))))
        .collect();
    let all = Dataset::new(
        file.networks.clone(),
        Tensor::new(vec![n, classes], one_hot)?,
    )?;
    let part = |r: &std::ops::Range<usize>| all.select(&r.clone().collect::<Vec<_>>());
    let (train, val, test) = (part(&split[0])?, part(&split[1])?, part(&split[2])?);
    let test_idx: Vec<usize> = split[2].clone().collect();
    let moved = Augment::for_activation(
        crate::spec::NetActivation::Sin,
        0,
        config.schedule.seed ^ 0xb0,
    )
    .apply(&spec, &test.inputs, 1, &test_idx)?;
    let test_g = Dataset::new(moved, test.targets.clone())?;
    std::fs::create_dir_all(&config.out_dir).map_err(|e| Error::io(&config.out_dir, e))?;
    let mut models = Vec::new();
    for &kind in &config.models {
        let mut model = build(kind, config, &spec)?;
        let fit_config = config.schedule.fit_config(
            kind.name(),
            LossKind::SoftmaxCe { classes },
            Metric::Accuracy,
            config.out_dir.join(format!("curve-{}.csv", kind.name())),
            config.progress,
        );
        let t0 = Instant::now();
        let report = fit(&mut model, backend, &train, Some(&val), &fit_config)?;
        if let (Some(path), true) = (&config.save, models.is_empty()) {
            crate::checkpoint::save(
                path,
                &model,
                kind.name(),
                Some(crate::checkpoint::Task::ClassifyInr { classes }),
                None,
            )?;
        }
        let train_seconds = t0.elapsed().as_secs_f64();
        predict(&model, backend, &test, 256)?;
        let t1 = Instant::now();
        let p = predict(&model, backend, &test, 256)?;
        let inference_per_second = test.len() as f64 / t1.elapsed().as_secs_f64().max(1e-9);
        let p_g = predict(&model, backend, &test_g, 256)?;
        let scale = p.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
        let logit_change = p
            .iter()
            .zip(&p_g)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
            / scale;
        let best = report.curve.get(report.best_epoch.saturating_sub(1));
        models.push(InrModelReport {
            model: kind.name().into(),
            params: model.num_params(),
            accuracy: Metric::Accuracy.eval(&p, &test.targets.data, classes)?,
            accuracy_transformed: Metric::Accuracy.eval(&p_g, &test.targets.data, classes)?,
            logit_change,
            val_accuracy: best.map_or(f64::NAN, |e| e.val_metric),
            best_step: best.map_or(0, |e| e.step),
            train_seconds,
            inference_per_second,
            backend: backend.describe(),
            curve: report.curve,
        });
        model.release(backend);
    }
    let curves: Vec<(&str, &[Epoch])> = models
        .iter()
        .map(|m| (m.model.as_str(), m.curve.as_slice()))
        .collect();
    let plot = config.out_dir.join("curves.png");
    crate::plot::learning_curves(&plot, "validation accuracy", &curves)?;
    Ok(ClassifyReport {
        inr_file: path,
        generate_seconds,
        mean_psnr: file
            .metadata
            .get("mean_psnr_db")
            .and_then(|v| v.parse().ok()),
        sizes: (train.len(), val.len(), test.len()),
        models,
        plot,
    })
}

impl ClassifyReport {
    /// The report as a text table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<14} {:>10} {:>9} {:>13} {:>12} {:>8} {:>7} {:>9} {:>10}  {}\n",
            "model",
            "params",
            "test acc",
            "perm+sign acc",
            "logit change",
            "val acc",
            "step",
            "train s",
            "infer/s",
            "backend"
        );
        for m in &self.models {
            s += &format!(
                "{:<14} {:>10} {:>9.4} {:>13.4} {:>12.1e} {:>8.4} {:>7} {:>9.1} {:>10.0}  {}\n",
                m.model,
                m.params,
                m.accuracy,
                m.accuracy_transformed,
                m.logit_change,
                m.val_accuracy,
                m.best_step,
                m.train_seconds,
                m.inference_per_second,
                m.backend
            );
        }
        s
    }
}
