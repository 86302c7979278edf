//! Conformance against the reference implementation's golden files (`tests/goldens/README.md`):
//! rebuild the module a file describes, load its parameters, run forward, compare.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use serde_json::Value;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::group::GroupElement;
use crate::io::{load_reference_params, reference_param_names, TensorFile};
use crate::nn::baseline::{PermKind, PermLinear};
use crate::nn::model::{Layer, Model, Output};
use crate::nn::monomial::{MonomialLinear, Variant};
use crate::nn::params::{with_param_budget, Init};
use crate::nn::pool::{InvariantPool, PoolAxes, PoolMode};
use crate::plan::{Activation, LossKind};
use crate::space::WeightSpace;
use crate::spec::{LayerShape, NetActivation, NetworkSpec};
use crate::tensor::Tensor;

/// One compared tensor.
#[derive(Clone, Debug)]
pub struct Row {
    /// Backend description (or "host" for checks that run no model).
    pub backend: String,
    /// Tensor name (as in the file, or a witness relation).
    pub tensor: String,
    /// max |ours − golden|.
    pub max_abs: f64,
    /// max over elements of |ours − golden| / tolerance; ≤ 1 passes.
    pub ratio: f64,
}

impl Row {
    /// Whether the tensor is within tolerance.
    pub fn pass(&self) -> bool {
        self.ratio <= 1.0
    }
}

/// Everything check-golden found for one file.
#[derive(Clone, Debug)]
pub struct Report {
    /// The file.
    pub path: PathBuf,
    /// The reference class it describes.
    pub module_class: String,
    /// Compared tensors.
    pub rows: Vec<Row>,
    /// Tensors not compared, with the reason.
    pub not_compared: Vec<(String, String)>,
    /// Set when the module class is not supported: nothing was compared.
    pub unsupported: Option<String>,
}

impl Report {
    /// True when the class is supported and every compared tensor is within tolerance.
    pub fn passed(&self) -> bool {
        self.unsupported.is_none() && !self.rows.is_empty() && self.rows.iter().all(Row::pass)
    }
}

/// The forward acceptance rule: |a − g| ≤ 1e-5·max|g| + 1e-4·|g| elementwise.
pub fn forward_row(backend: &str, tensor: &str, ours: &[f64], golden: &[f64]) -> Row {
    let m = golden.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let (mut max_abs, mut ratio) = (0.0f64, 0.0f64);
    for (a, g) in ours.iter().zip(golden) {
        let d = (a - g).abs();
        let tol = 1e-5 * m + 1e-4 * g.abs();
        max_abs = max_abs.max(d);
        let r = if d == 0.0 {
            0.0
        } else if tol == 0.0 {
            f64::INFINITY
        } else {
            d / tol
        };
        ratio = ratio.max(if d.is_nan() { f64::INFINITY } else { r });
    }
    if ours.len() != golden.len() {
        ratio = f64::INFINITY;
    }
    Row {
        backend: backend.into(),
        tensor: tensor.into(),
        max_abs,
        ratio,
    }
}

struct Case {
    spec: NetworkSpec,
    model: Model,
    used: BTreeSet<String>,
}

fn json(path: &Path, file: &TensorFile, key: &str) -> Result<Value> {
    let s = file
        .metadata
        .get(key)
        .ok_or_else(|| Error::format(path, format!("metadata lacks {key}")))?;
    serde_json::from_str(s).map_err(|e| Error::format(path, format!("metadata {key}: {e}")))
}

/// The unsigned integers of a JSON array (empty for anything else).
fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_u64)
                .map(|x| x as usize)
                .collect()
        })
        .unwrap_or_default()
}

fn usize_of(path: &Path, v: &Value, key: &str) -> Result<usize> {
    v.get(key)
        .and_then(Value::as_u64)
        .map(|x| x as usize)
        .ok_or_else(|| Error::format(path, format!("constructor_args lacks integer {key}")))
}

/// The spec a golden file describes (`network_spec.weight_shapes`).
pub fn golden_spec(
    path: &Path,
    file: &TensorFile,
    activation: NetActivation,
) -> Result<NetworkSpec> {
    let ns = json(path, file, "network_spec")?;
    let shapes = ns
        .get("weight_shapes")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::format(path, "network_spec lacks weight_shapes"))?;
    let mut layers = Vec::new();
    for s in shapes {
        let d = usizes(s);
        layers.push(match d.as_slice() {
            [o, i] => LayerShape::dense(*o, *i),
            [o, i, kh, kw] => LayerShape::conv(*o, *i, *kh, *kw),
            _ => {
                return Err(Error::format(
                    path,
                    format!("weight shape {s} is neither dense nor conv"),
                ))
            }
        });
    }
    NetworkSpec::new(layers, activation)
}

/// Builds the module a file describes, or says why it is unsupported.
fn build_case(path: &Path, file: &TensorFile) -> Result<std::result::Result<Case, String>> {
    let class = file
        .metadata
        .get("module_class")
        .cloned()
        .unwrap_or_default();
    let args = json(path, file, "constructor_args")?;
    let in_channels: usize = file
        .metadata
        .get("in_channels")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::format(path, "metadata lacks in_channels"))?;
    let short = class.rsplit('.').next().unwrap_or("");
    let activation = match short {
        "HNPS_SirenLinear" => NetActivation::Sin,
        "InvariantNFN_HNPS" => NetActivation::Tanh,
        _ => NetActivation::Relu,
    };
    let spec = golden_spec(path, file, activation)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let single = |layer: Layer| Model::new(spec.clone(), in_channels, vec![layer]);
    let model = match short {
        "HNPSLinear" | "HNPS_SirenLinear" => {
            let variant = if short == "HNPSLinear" {
                Variant::Scale
            } else {
                Variant::Sign
            };
            let (c, o) = (
                usize_of(path, &args, "in_channels")?,
                usize_of(path, &args, "out_channels")?,
            );
            single(Layer::Monomial(MonomialLinear::zeros(
                &spec, c, o, variant,
            )?))
        }
        "NPLinear" | "HNPLinear" => {
            let kind = if short == "HNPLinear" {
                PermKind::Hnp
            } else {
                let io_embed = args
                    .get("io_embed")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                PermKind::Np { io_embed }
            };
            let (c, o) = (
                usize_of(path, &args, "in_channels")?,
                usize_of(path, &args, "out_channels")?,
            );
            single(Layer::Perm(PermLinear::zeros(&spec, c, o, kind)?))
        }
        "HNPSPool" | "HNPPool" | "NPPool" => {
            let (mode, axes) = match short {
                "HNPSPool" => {
                    let m = args
                        .get("mode_pooling")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let mode = PoolMode::parse(m)
                        .ok_or_else(|| Error::format(path, format!("unknown mode_pooling {m}")))?;
                    (mode, PoolAxes::Hidden)
                }
                "HNPPool" => (PoolMode::Mean, PoolAxes::Hidden),
                _ => (PoolMode::Mean, PoolAxes::All),
            };
            let mut pool = InvariantPool::new(&spec, in_channels, mode, axes)?;
            pool.reference_l1 = true;
            single(Layer::Pool(pool))
        }
        "InvariantNFN" | "InvariantNFN_HNPS" => {
            let mode = args.get("mode").and_then(Value::as_str).unwrap_or("");
            let head = args.get("head_cls").cloned().unwrap_or(Value::Null);
            let pool_mode = head.get("pool_mode").and_then(Value::as_str).unwrap_or("");
            let h = usize_of(path, &head, "h_size")?;
            let hchannels = args.get("hchannels").map(usizes).unwrap_or_default();
            match (short, mode) {
                ("InvariantNFN", "HNP" | "NP") => {
                    if pool_mode != "HNP" {
                        return Ok(Err(format!("{class} mode {mode} with head pool_mode {pool_mode}: the baselines support the HNP pool only")));
                    }
                    let kind = if mode == "HNP" {
                        PermKind::Hnp
                    } else {
                        PermKind::Np { io_embed: true }
                    };
                    Model::perm_invariant(&spec, in_channels, &hchannels, kind, &[h, h], &mut rng)?
                }
                (_, "HNPS") => {
                    let (widths, act, last) = if short == "InvariantNFN" {
                        (hchannels, Activation::Relu, Activation::Relu)
                    } else if args.get("model_type").and_then(Value::as_str)
                        == Some("S_tanh_abs_gen")
                    {
                        (vec![16, 16, 5], Activation::Tanh, Activation::Abs)
                    } else {
                        return Ok(Err(format!(
                            "{class}: only model_type S_tanh_abs_gen is supported"
                        )));
                    };
                    let pmode = pool_mode
                        .strip_prefix("HNPS_")
                        .and_then(PoolMode::parse)
                        .ok_or_else(|| {
                            Error::format(path, format!("unsupported head pool_mode {pool_mode}"))
                        })?;
                    let mut m = Model::monomial_invariant(
                        &spec,
                        in_channels,
                        &widths,
                        act,
                        last,
                        Variant::Scale,
                        Init::PytorchDefault,
                        pmode,
                        &[h, h],
                        &mut rng,
                    )?;
                    for layer in m.layers_mut() {
                        if let Layer::Pool(p) = layer {
                            p.reference_l1 = true;
                        }
                    }
                    m
                }
                _ => {
                    return Ok(Err(format!(
                        "{class} with mode {mode} is not supported (supported: HNPS, HNP, NP)"
                    )))
                }
            }
        }
        _ => return Ok(Err(format!("module class {class} is not supported"))),
    };
    let mut model = model;
    let used = load_reference_params(&mut model, file, path, "param.")?;
    Ok(Ok(Case {
        spec,
        model,
        used: used.into_iter().collect(),
    }))
}

fn read_space(
    path: &Path,
    file: &TensorFile,
    spec: &NetworkSpec,
    prefix: &str,
) -> Result<WeightSpace> {
    let l = spec.num_layers();
    let w = (0..l)
        .map(|i| file.get(path, &format!("{prefix}.w.{i}")).cloned())
        .collect::<Result<Vec<_>>>()?;
    let b = (0..l)
        .map(|i| file.get(path, &format!("{prefix}.b.{i}")).cloned())
        .collect::<Result<Vec<_>>>()?;
    WeightSpace::new(spec, w, b)
}

fn read_group(path: &Path, file: &TensorFile, spec: &NetworkSpec) -> Result<Option<GroupElement>> {
    if !file.tensors.contains_key("group.perm.0") {
        return Ok(None);
    }
    let mut g = GroupElement::identity(spec);
    for i in 0..spec.num_layers() - 1 {
        let p = file.get(path, &format!("group.perm.{i}"))?;
        g.perms[i] = p.data.iter().map(|&v| v as usize).collect();
        for kind in ["scale", "sign"] {
            if let Some(t) = file.tensors.get(&format!("group.{kind}.{i}")) {
                g.factors[i] = t.data.clone();
            }
        }
    }
    Ok(Some(g))
}

/// (name, values) of every output tensor of a model output, named as in the golden files.
fn named_outputs(out: &Output, prefix: &str) -> Vec<(String, Vec<f64>)> {
    match out {
        Output::Features(t) => vec![(prefix.to_string(), t.data.clone())],
        Output::Space(s) => {
            let mut v: Vec<_> = s
                .weights
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("{prefix}.w.{i}"), t.data.clone()))
                .collect();
            v.extend(
                s.biases
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (format!("{prefix}.b.{i}"), t.data.clone())),
            );
            v
        }
    }
}

/// The scalar loss the file's gradients are defined with (goldens README, "Losses").
fn loss(out: &Output, target: Option<&Tensor>) -> f64 {
    match (out, target) {
        (Output::Features(p), Some(t)) => {
            let n = t.len() as f64;
            p.data
                .iter()
                .zip(&t.data)
                .map(|(&p, &y)| -(y * p.ln().max(-100.0) + (1.0 - y) * (1.0 - p).ln().max(-100.0)))
                .sum::<f64>()
                / n
        }
        _ => {
            0.5 * named_outputs(out, "o")
                .iter()
                .flat_map(|(_, v)| v.iter())
                .map(|x| x * x)
                .sum::<f64>()
        }
    }
}

/// The gradient acceptance rule: max|a − g| ≤ 1e-4·M, with M the largest |value| over the
/// file's whole group (every `grad.param.*`, or every `grad.input.*`).
pub fn gradient_row(backend: &str, tensor: &str, ours: &[f64], golden: &[f64], m: f64) -> Row {
    let max_abs = ours
        .iter()
        .zip(golden)
        .fold(0.0f64, |x, (a, g)| x.max((a - g).abs()));
    let ratio = if ours.len() != golden.len() || max_abs.is_nan() {
        f64::INFINITY
    } else if max_abs == 0.0 {
        0.0
    } else {
        max_abs / (1e-4 * m)
    };
    Row {
        backend: backend.into(),
        tensor: tensor.into(),
        max_abs,
        ratio,
    }
}

/// Compares every `grad.param.*` and `grad.input.*` the file holds with ours, computed with
/// the loss the goldens README defines (BCE with a target, else ½Σ output²).
fn gradient_rows(
    model: &Model,
    backend: &dyn Backend,
    file: &TensorFile,
    input: &WeightSpace,
    target: Option<&Tensor>,
) -> Result<Vec<Row>> {
    let kind = if target.is_some() {
        LossKind::Bce
    } else {
        LossKind::HalfSumSquares
    };
    let grads = model.gradients(backend, input, target, kind)?;
    let mut ours: Vec<(String, Vec<f64>)> = Vec::new();
    for (rname, layer, name) in reference_param_names(model) {
        if let Some((_, t)) = grads.params[layer].iter().find(|(n, _)| *n == name) {
            ours.push((format!("grad.param.{rname}"), t.data.clone()));
        }
    }
    for (kind, ts) in [("w", &grads.input.weights), ("b", &grads.input.biases)] {
        for (i, t) in ts.iter().enumerate() {
            ours.push((format!("grad.input.{kind}.{i}"), t.data.clone()));
        }
    }
    let group_max = |prefix: &str| {
        file.tensors
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .flat_map(|(_, t)| t.data.iter())
            .fold(0.0f64, |m, v| m.max(v.abs()))
    };
    let (mp, mi) = (group_max("grad.param."), group_max("grad.input."));
    let desc = backend.describe();
    Ok(ours
        .into_iter()
        .filter_map(|(name, a)| {
            let g = file.tensors.get(&name)?;
            let m = if name.starts_with("grad.param.") {
                mp
            } else {
                mi
            };
            Some(gradient_row(&desc, &name, &a, &g.data, m))
        })
        .collect())
}

/// Checks one golden file on each backend.
pub fn check_golden(path: &Path, backends: &[&dyn Backend]) -> Result<Report> {
    let file = TensorFile::read(path)?;
    let module_class = file
        .metadata
        .get("module_class")
        .cloned()
        .unwrap_or_default();
    let mut report = Report {
        path: path.into(),
        module_class,
        rows: Vec::new(),
        not_compared: Vec::new(),
        unsupported: None,
    };
    // The described module may not allocate far more parameters than the file holds: a header
    // claiming 2^64 channels is an error, not an allocation.
    let stored: usize = file.tensors.values().map(Tensor::len).sum();
    let budget = stored.saturating_mul(2).saturating_add(1 << 20);
    let case = match with_param_budget(budget, || build_case(path, &file))? {
        Ok(c) => c,
        Err(why) => {
            report.unsupported = Some(why.clone());
            report.not_compared = file
                .tensors
                .keys()
                .map(|k| (k.clone(), why.clone()))
                .collect();
            return Ok(report);
        }
    };
    let spec = &case.spec;
    let input = read_space(path, &file, spec, "input")?;
    let group = read_group(path, &file, spec)?;
    let input_g = if group.is_some() {
        Some(read_space(path, &file, spec, "input_g")?)
    } else {
        None
    };
    let target = file.tensors.get("target");
    let mut compared: BTreeSet<String> = case.used.clone();
    compared.extend(
        file.tensors
            .keys()
            .filter(|k| k.starts_with("input.") || k.starts_with("group."))
            .cloned(),
    );
    if target.is_some() {
        compared.insert("target".into());
    }
    if let (Some(g), Some(ig)) = (&group, &input_g) {
        let ours = g.act(spec, &input)?;
        for (name, a) in named_outputs(&Output::Space(ours), "input_g") {
            let gold = file.get(path, &name)?;
            let m = gold.max_abs();
            let max_abs = a
                .iter()
                .zip(&gold.data)
                .fold(0.0f64, |x, (p, q)| x.max((p - q).abs()));
            report.rows.push(Row {
                backend: "host".into(),
                ratio: max_abs / (1e-6 * m),
                tensor: name.clone(),
                max_abs,
            });
            compared.insert(name);
        }
        let _ = ig;
    }
    for backend in backends {
        let desc = backend.describe();
        let out = case.model.forward(*backend, &input)?;
        for (name, a) in named_outputs(&out, "output") {
            report
                .rows
                .push(forward_row(&desc, &name, &a, &file.get(path, &name)?.data));
            compared.insert(name);
        }
        let l = loss(&out, target);
        report.rows.push(forward_row(
            &desc,
            "loss",
            &[l],
            &file.get(path, "loss")?.data,
        ));
        compared.insert("loss".into());
        for row in gradient_rows(&case.model, *backend, &file, &input, target)? {
            compared.insert(row.tensor.clone());
            report.rows.push(row);
        }
        if let (Some(g), Some(ig)) = (&group, &input_g) {
            let out_g = case.model.forward(*backend, ig)?;
            let expected = match &out {
                Output::Space(s) => Output::Space(g.act(spec, s)?),
                Output::Features(t) => Output::Features(t.clone()),
            };
            let relation = if matches!(out, Output::Space(_)) {
                "g·output"
            } else {
                "output"
            };
            for ((name, a), (_, e)) in named_outputs(&out_g, "output_g")
                .into_iter()
                .zip(named_outputs(&expected, "x"))
            {
                report
                    .rows
                    .push(forward_row(&desc, &name, &a, &file.get(path, &name)?.data));
                report.rows.push(forward_row(
                    &desc,
                    &format!("{name} vs our {relation}"),
                    &a,
                    &e,
                ));
                compared.insert(name);
            }
        }
    }
    for name in file.tensors.keys() {
        if compared.contains(name) {
            continue;
        }
        let why = if name.starts_with("grad.param.") || name.starts_with("param.") {
            "parameter not used by the rebuilt module"
        } else {
            "not a tensor check-golden knows how to compare"
        };
        report.not_compared.push((name.clone(), why.into()));
    }
    if report.rows.iter().any(|r| r.ratio.is_nan()) {
        return Err(Error::Input(format!(
            "{}: NaN in a comparison",
            path.display()
        )));
    }
    Ok(report)
}
