//! Trained models on disk: a safetensors file holding every parameter (`layers.{i}.{name}`,
//! float64) and, in its metadata, the architecture as JSON, so that loading needs no flags.
//! Also the task the model was trained for and the input preprocessing it expects.

use std::path::Path;

use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::io::TensorFile;
use crate::nn::baseline::PermLinear;
use crate::nn::dropout::Dropout;
use crate::nn::edit::EditRender;
use crate::nn::head::Dense;
use crate::nn::model::{layer_params, layer_params_mut, Layer, Model};
use crate::nn::monomial::MonomialLinear;
use crate::nn::params::with_param_budget;
use crate::nn::pool::InvariantPool;
use crate::nn::stat::StatFeatures;
use crate::space::WeightSpace;
use crate::spec::NetworkSpec;
use crate::standardize::Standardize;
use crate::tensor::Tensor;
use crate::zoo::dataset::activation_name;

/// The `format` metadata value of a checkpoint.
pub const FORMAT: &str = "monomial-nfn-checkpoint";
/// The checkpoint version this build writes and reads (version 1 files hold parameters only).
pub const VERSION: &str = "2";

/// What a model's output means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// `predict-gen`: one column, the predicted test accuracy of a CNN (SPEC §6.1).
    PredictGen,
    /// `classify-inr`: logits over `classes` image classes (SPEC §6.2).
    ClassifyInr {
        /// Number of classes.
        classes: usize,
    },
    /// `edit-inr`: the render of each edited SIREN (SPEC §6.3).
    EditInr,
}

/// A model with what is needed to use it later.
#[derive(Debug)]
pub struct Checkpoint {
    /// The model, parameters loaded.
    pub model: Model,
    /// The model's name in the run that trained it ("Monomial-NFN", "HNP", ...).
    pub label: String,
    /// What its output means, when it was trained by one of the experiments.
    pub task: Option<Task>,
    /// Input standardisation applied before the model (the NP baseline's).
    pub standardize: Option<Standardize>,
}

#[derive(Serialize)]
struct ArchitectureRef<'a> {
    spec: &'a NetworkSpec,
    in_channels: usize,
    layers: &'a [Layer],
}

#[derive(Deserialize)]
struct Architecture {
    spec: NetworkSpec,
    in_channels: usize,
    layers: Vec<Layer>,
}

/// Writes `model`'s parameters and architecture (through a temporary file and a rename).
pub fn save(
    path: &Path,
    model: &Model,
    label: &str,
    task: Option<Task>,
    standardize: Option<&Standardize>,
) -> Result<()> {
    let mut file = TensorFile::default();
    let arch = ArchitectureRef {
        spec: model.spec(),
        in_channels: model.in_channels(),
        layers: model.layers(),
    };
    let meta = &mut file.metadata;
    meta.insert("format".into(), FORMAT.into());
    meta.insert("version".into(), VERSION.into());
    meta.insert("architecture".into(), json(&arch)?);
    meta.insert("label".into(), label.into());
    meta.insert("num_params".into(), model.num_params().to_string());
    if let Some(task) = task {
        meta.insert("task".into(), json(&task)?);
    }
    for (i, layer) in model.layers().iter().enumerate() {
        if let Some(params) = layer_params(layer) {
            for (n, t) in params.iter() {
                file.tensors.insert(format!("layers.{i}.{n}"), t.clone());
            }
        }
    }
    if let Some(s) = standardize {
        meta.insert("standardized_tensors".into(), s.mean.len().to_string());
        file.tensors.extend(s.to_tensors("standardize."));
    }
    file.write(path)
}

fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Input(format!("JSON: {e}")))
}

impl Checkpoint {
    /// Reads a checkpoint written by [`save`]: rebuilds every layer from its description and
    /// loads its parameters, checking names and shapes. A file that is not a checkpoint, or
    /// whose tensors do not fit its architecture, gives a format error naming the file.
    pub fn load(path: &Path) -> Result<Self> {
        let file = TensorFile::read(path)?;
        let meta = |k: &str| file.metadata.get(k).map(String::as_str);
        let bad = |msg: String| Error::format(path, msg);
        match (meta("format"), meta("version")) {
            (Some(FORMAT), Some(VERSION)) => {}
            (Some("monomial-nfn-checkpoint-v1"), _) => {
                return Err(bad(
                    "a version 1 checkpoint holds parameters only, not the \
                     architecture: load it into a model built in code with io::load_checkpoint"
                        .into(),
                ))
            }
            (Some(FORMAT), v) => {
                return Err(bad(format!(
                    "checkpoint version {} is not supported (this build reads version {VERSION})",
                    v.unwrap_or("missing")
                )))
            }
            _ => {
                return Err(bad(format!(
                    "not a monomial-nfn checkpoint (its metadata has no format \"{FORMAT}\")"
                )))
            }
        }
        let arch: Architecture = parse(path, meta("architecture"), "architecture")?;
        let task: Option<Task> = match meta("task") {
            Some(_) => Some(parse(path, meta("task"), "task")?),
            None => None,
        };
        let spec = valid_spec(&arch.spec).map_err(|e| bad(format!("architecture: {e}")))?;
        if !(1..=1 << 16).contains(&arch.in_channels) {
            return Err(bad(format!(
                "architecture: in_channels {} is not in 1..=65536",
                arch.in_channels
            )));
        }
        // The rebuilt layers may not allocate far more parameters than the file holds (with
        // slack, so that a missing tensor is reported by name below).
        let stored: usize = file.tensors.values().map(Tensor::len).sum();
        let budget = stored.saturating_mul(2).saturating_add(1 << 20);
        let layers = with_param_budget(budget, || {
            arch.layers
                .into_iter()
                .map(rebuilt)
                .collect::<Result<Vec<_>>>()
        })
        .map_err(|e| bad(format!("architecture: {e}")))?;
        let mut model = Model::new(spec, arch.in_channels, layers);
        let used = load_params(&mut model, &file, path)?;
        let standardize = match meta("standardized_tensors") {
            Some(n) => {
                let n: usize = n
                    .parse()
                    .map_err(|_| bad(format!("standardized_tensors {n:?} is not a count")))?;
                let s = Standardize::from_tensors("standardize.", n, |k| file.get(path, k))
                    .map_err(|e| bad(e.to_string()))?;
                Some(s)
            }
            None => None,
        };
        let extra = file.tensors.len() - used;
        let expected_extra = standardize.as_ref().map_or(0, |s| 2 * s.mean.len());
        if extra != expected_extra {
            return Err(bad(format!(
                "{extra} tensors belong to no parameter of the described architecture"
            )));
        }
        model
            .plan(1)
            .map_err(|e| bad(format!("the described model cannot be built: {e}")))?;
        Ok(Checkpoint {
            model,
            label: meta("label").unwrap_or("model").to_string(),
            task,
            standardize,
        })
    }

    /// The model's outputs (rows of the output width) for `inputs`, in batches of `batch`,
    /// after the stored standardisation; `on_batch` is called with each batch's size when done.
    pub fn predict(
        &self,
        backend: &dyn Backend,
        inputs: &WeightSpace,
        batch: usize,
        on_batch: &dyn Fn(usize),
    ) -> Result<Vec<f64>> {
        let spec = self.model.spec();
        inputs
            .validate(spec, Some(self.model.in_channels()))
            .map_err(|e| {
                Error::Input(format!(
                    "the networks do not fit the model, which reads {} networks ({}): {e}",
                    activation_name(spec.activation),
                    shapes(spec)
                ))
            })?;
        let n = inputs.batch();
        let mut out = Vec::new();
        let idx: Vec<usize> = (0..n).collect();
        for chunk in idx.chunks(batch.max(1)) {
            let part = inputs.select(chunk)?;
            let part = match &self.standardize {
                Some(s) => s.apply(&part)?,
                None => part,
            };
            out.extend(self.model.forward(backend, &part)?.features()?.data);
            on_batch(chunk.len());
        }
        Ok(out)
    }
}

/// Layer shapes in words, e.g. "conv 3→16 3×3, dense 16→10".
fn shapes(spec: &NetworkSpec) -> String {
    spec.layers
        .iter()
        .map(|l| {
            if l.conv {
                format!("conv {}→{} {}×{}", l.n_in, l.n_out, l.kh, l.kw)
            } else {
                format!("dense {}→{}", l.n_in, l.n_out)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, v: Option<&str>, key: &str) -> Result<T> {
    let v = v.ok_or_else(|| Error::format(path, format!("metadata lacks {key}")))?;
    serde_json::from_str(v).map_err(|e| Error::format(path, format!("metadata {key}: {e}")))
}

fn valid_spec(spec: &NetworkSpec) -> Result<NetworkSpec> {
    // Sizes derived from a claimed layer (weights × channels × batch) must not overflow later.
    for l in &spec.layers {
        let n = [l.n_out, l.n_in, l.kh, l.kw]
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d));
        if n.is_none_or(|n| n > 1 << 32) {
            return Err(Error::Spec(format!(
                "layer ({}, {}, {}, {}) has more than 2^32 weights",
                l.n_out, l.n_in, l.kh, l.kw
            )));
        }
    }
    NetworkSpec::new(spec.layers.clone(), spec.activation)
}

/// The layer a description names, built by its constructor (so every invariant the constructor
/// checks holds) with placeholder parameter values.
fn rebuilt(layer: Layer) -> Result<Layer> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    Ok(match layer {
        Layer::Monomial(l) => Layer::Monomial(MonomialLinear::zeros(
            &valid_spec(&l.spec)?,
            l.c_in,
            l.c_out,
            l.variant,
        )?),
        Layer::Perm(l) => Layer::Perm(PermLinear::zeros(
            &valid_spec(&l.spec)?,
            l.c_in,
            l.c_out,
            l.kind,
        )?),
        Layer::Pool(p) => {
            let spec = valid_spec(&p.spec)?;
            // γ/β hold channels × features values per layer: a claimed count may not overflow.
            if spec.layers.iter().any(|l| {
                l.kh.checked_mul(l.kw)
                    .and_then(|f| f.checked_mul(p.channels))
                    .is_none()
            }) {
                return Err(Error::Spec(format!(
                    "pool of {} channels: parameter count overflows",
                    p.channels
                )));
            }
            let mut q = InvariantPool::new(&spec, p.channels, p.mode, p.axes)?;
            if !(p.eps.is_finite() && p.eps >= 0.0) {
                return Err(Error::Spec(format!("pool ε {} is not ≥ 0", p.eps)));
            }
            q.reference_l1 = p.reference_l1;
            q.eps = p.eps;
            Layer::Pool(q)
        }
        Layer::Dense(d) => Layer::Dense(Dense::new(d.n_in, d.n_out, &mut rng)?),
        Layer::Stat(s) => Layer::Stat(StatFeatures::new(&valid_spec(&s.spec)?, s.channels)?),
        Layer::Fourier(f) => {
            if f.c_in == 0
                || f.m == 0
                || Some(f.b.len()) != f.c_in.checked_mul(f.m)
                || !f.b.iter().all(|v| v.is_finite())
            {
                return Err(Error::Spec(format!(
                    "Fourier features {}×{} need that many finite projection values, got {}",
                    f.c_in,
                    f.m,
                    f.b.len()
                )));
            }
            Layer::Fourier(f)
        }
        Layer::PosEncoding(p) => {
            if p.c_in == 0 || p.bands > 4096 || !p.max_freq.is_finite() {
                return Err(Error::Spec(format!(
                    "position encoding needs channels ≥ 1, at most 4096 bands and a finite \
                     frequency (got {}, {}, {})",
                    p.c_in, p.bands, p.max_freq
                )));
            }
            Layer::PosEncoding(p)
        }
        Layer::Dropout(d) => Layer::Dropout(Dropout::new(d.p)?),
        Layer::EditRender(e) => {
            Layer::EditRender(EditRender::new(&valid_spec(&e.spec)?, e.h, e.w, 0.0)?)
        }
        Layer::Activation(a) => Layer::Activation(a),
    })
}

/// Loads `layers.{i}.{name}` into every parameter of `model`, checking shapes. Returns how many
/// tensors were used.
pub(crate) fn load_params(model: &mut Model, file: &TensorFile, path: &Path) -> Result<usize> {
    let mut used = 0;
    for (i, layer) in model.layers_mut().iter_mut().enumerate() {
        let Some(p) = layer_params_mut(layer) else {
            continue;
        };
        let names: Vec<String> = p.iter().map(|(n, _)| n.to_string()).collect();
        for n in names {
            let t = file.get(path, &format!("layers.{i}.{n}"))?;
            p.set(&n, t.clone())
                .map_err(|e| Error::format(path, format!("layer {i}: {e}")))?;
            used += 1;
        }
    }
    Ok(used)
}
