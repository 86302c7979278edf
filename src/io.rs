//! Parameter files: safetensors read/write, the reference implementation's state-dict names
//! (used only here, at the import boundary), and our own checkpoints.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::nn::model::{layer_params_mut, Layer, Model};
use crate::nn::monomial::Variant;
use crate::tensor::Tensor;

/// Every tensor of a safetensors file (F64, F32 and I64 read as f64) and its metadata.
#[derive(Clone, Debug, Default)]
pub struct TensorFile {
    /// The `__metadata__` map.
    pub metadata: HashMap<String, String>,
    /// Tensors by name.
    pub tensors: BTreeMap<String, Tensor>,
}

impl TensorFile {
    /// Reads and decodes a whole file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        let (_, meta) =
            SafeTensors::read_metadata(&bytes).map_err(|e| Error::format(path, e.to_string()))?;
        let st =
            SafeTensors::deserialize(&bytes).map_err(|e| Error::format(path, e.to_string()))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.iter() {
            let raw = view.data();
            let data: Vec<f64> = match view.dtype() {
                Dtype::F64 => raw
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
                Dtype::F32 => raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as f64)
                    .collect(),
                Dtype::I64 => raw
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f64)
                    .collect(),
                other => {
                    return Err(Error::format(
                        path,
                        format!("tensor {name}: unsupported dtype {other}"),
                    ))
                }
            };
            let t = Tensor::new(view.shape().to_vec(), data)
                .map_err(|e| Error::format(path, format!("tensor {name}: {e}")))?;
            tensors.insert(name.to_string(), t);
        }
        Ok(TensorFile {
            metadata: meta.metadata().clone().unwrap_or_default(),
            tensors,
        })
    }

    /// Writes every tensor as F64 with the metadata.
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .tensors
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    t.shape.clone(),
                )
            })
            .collect();
        let mut views = Vec::new();
        for (n, b, s) in &bytes {
            let v = safetensors::tensor::TensorView::new(Dtype::F64, s.clone(), b)
                .map_err(|e| Error::format(path, e.to_string()))?;
            views.push((n.clone(), v));
        }
        let meta = if self.metadata.is_empty() {
            None
        } else {
            Some(self.metadata.clone())
        };
        let mut out =
            safetensors::serialize(views, meta).map_err(|e| Error::format(path, e.to_string()))?;
        sort_metadata(&mut out, &self.metadata);
        write_file(path, &out)
    }

    /// The tensor `name`, or a format error naming the file.
    pub fn get(&self, path: &Path, name: &str) -> Result<&Tensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| Error::format(path, format!("missing tensor {name}")))
    }
}

/// Rewrites the `__metadata__` object of a serialized safetensors file with its keys sorted.
/// safetensors writes it in the HashMap's iteration order, which changes from map to map, so
/// the same content would give different bytes; sorted, it gives the same file every time.
/// The sorted object has the same length, so the header and every offset stay as they are.
fn sort_metadata(file: &mut [u8], metadata: &HashMap<String, String>) {
    const PREFIX: &[u8] = br#"{"__metadata__":"#;
    let Ok(sorted) = serde_json::to_string(&metadata.iter().collect::<BTreeMap<_, _>>()) else {
        return;
    };
    let (start, end) = (8 + PREFIX.len(), 8 + PREFIX.len() + sorted.len());
    // Only where the header holds exactly this map's object in that place.
    let written = file
        .get(8..8 + PREFIX.len())
        .filter(|p| *p == PREFIX)
        .and_then(|_| file.get(start..end))
        .and_then(|obj| serde_json::from_slice::<HashMap<String, String>>(obj).ok());
    if written.as_ref() == Some(metadata) {
        file[start..end].copy_from_slice(sorted.as_bytes());
    }
}

/// (reference state-dict name, our parameter name) of one layer. `prefix` is prepended to the
/// reference names. Mapping per SPEC A.2 T1 (HNPS layers) and A.1.4 (pool γ/β).
fn reference_names(layer: &Layer, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |r: String, o: String| out.push((format!("{prefix}{r}"), o));
    match layer {
        Layer::Monomial(m) => {
            let l = m.spec.num_layers();
            push("layer_0_Y_W.weight".into(), "first.phi".into());
            push("layer_0_Y_b.weight".into(), "first.psi".into());
            push("layer_0_z_W.weight".into(), "first.gamma".into());
            push("layer_0_z_b.weight".into(), "first.lambda".into());
            for i in 1..l - 1 {
                push(format!("layer_{i}_Y_W.weight"), format!("mid{i}.phi"));
                push(format!("layer_{i}_z_b.weight"), format!("mid{i}.lambda"));
            }
            push(format!("layer_{}_Y_W.weight", l - 1), "last.phi".into());
            push(format!("layer_{}_z_b.weight", l - 1), "last.lambda".into());
            push(format!("layer_{}_z_tau.weight", l - 1), "last.tau".into());
            if m.variant == Variant::Sign {
                push(format!("layer_{}_Y_b.weight", l - 1), "sign.omega".into());
                // For L = 2 the reference's Ξ branch is shadowed by the first layer (SPEC §3.4).
                if l >= 3 {
                    push(format!("layer_{}_z_W.weight", l - 2), "sign.xi".into());
                }
            }
        }
        Layer::Pool(p) => {
            if p.mode == crate::nn::pool::PoolMode::ParamMulL2 {
                for i in 0..p.spec.num_layers() {
                    push(format!("regularize_W_{i}.weight"), format!("gamma_w{i}"));
                    push(format!("regularize_W_{i}.bias"), format!("beta_w{i}"));
                    push(format!("regularize_b_{i}.weight"), format!("gamma_b{i}"));
                    push(format!("regularize_b_{i}.bias"), format!("beta_b{i}"));
                }
            }
        }
        Layer::Perm(m) => {
            for (name, _) in m.params.iter() {
                push(name.to_string(), name.to_string());
            }
        }
        Layer::Dense(_) => {
            push("weight".into(), "weight".into());
            push("bias".into(), "bias".into());
        }
        Layer::Activation(_)
        | Layer::Stat(_)
        | Layer::Fourier(_)
        | Layer::PosEncoding(_)
        | Layer::Dropout(_) => {}
        Layer::EditRender(e) => {
            for (name, _) in e.params.iter() {
                push(name.to_string(), name.to_string());
            }
        }
    }
    out
}

/// Reference names of every parameter of `model`, as (reference name, layer index, our name).
/// A model with a single layer uses the bare module names; larger models use the reference's
/// `InvariantNFN` layout (`nfnet_features.{2k}.`, `head.head.0.`, `head.head.{2j+2}.`, SPEC A.1.5).
pub fn reference_param_names(model: &Model) -> Vec<(String, usize, String)> {
    let single = model.layers().len() == 1;
    let (mut eq, mut dense) = (0, 0);
    let mut out = Vec::new();
    for (i, layer) in model.layers().iter().enumerate() {
        let prefix = match layer {
            _ if single => String::new(),
            Layer::Monomial(_) | Layer::Perm(_) => {
                eq += 1;
                format!("nfnet_features.{}.", 2 * (eq - 1))
            }
            Layer::Pool(_) => "head.head.0.".into(),
            Layer::Dense(_) => {
                dense += 1;
                format!("head.head.{}.", 2 * dense)
            }
            Layer::Activation(_)
            | Layer::Stat(_)
            | Layer::Fourier(_)
            | Layer::PosEncoding(_)
            | Layer::Dropout(_) => continue,
            Layer::EditRender(_) => "edit.".into(),
        };
        for (r, o) in reference_names(layer, &prefix) {
            out.push((r, i, o));
        }
    }
    out
}

/// Loads reference-named parameters (`param.`-prefixed when `prefix` says so). Parameters the
/// reference lacks (the sign variant's extra terms) are set to zero, so outputs match it.
/// Returns the reference names that were used.
pub fn load_reference_params(
    model: &mut Model,
    file: &TensorFile,
    path: &Path,
    prefix: &str,
) -> Result<Vec<String>> {
    let names = reference_param_names(model);
    let layers = model.layers_mut();
    for layer in layers.iter_mut() {
        if let Some(p) = layer_params_mut(layer) {
            let zeroed: Vec<(String, Vec<usize>)> = p
                .iter()
                .map(|(n, t)| (n.to_string(), t.shape.clone()))
                .collect();
            for (n, s) in zeroed {
                p.set(&n, Tensor::zeros(s))?;
            }
        }
    }
    let mut used = Vec::new();
    for (rname, li, ours) in names {
        let full = format!("{prefix}{rname}");
        let t = file.get(path, &full)?;
        let p = layer_params_mut(&mut layers[li])
            .ok_or_else(|| Error::format(path, "parameter on a parameterless layer"))?;
        let want = p.expect(&ours)?.shape.clone();
        if t.len() != want.iter().product::<usize>() {
            return Err(Error::format(
                path,
                format!("{full}: shape {:?} does not fit {ours} {want:?} (the reference's shape is defective for conv last layers, SPEC §3.4)", t.shape),
            ));
        }
        p.set(&ours, Tensor::new(want, t.data.clone())?)?;
        used.push(full);
    }
    Ok(used)
}

/// Saves a model's parameters and architecture (see [`crate::checkpoint`]).
pub fn save_checkpoint(model: &Model, path: &Path) -> Result<()> {
    crate::checkpoint::save(path, model, "model", None, None)
}

/// Loads the parameters of a checkpoint into a model of the same architecture built in code
/// ([`crate::checkpoint::Checkpoint::load`] rebuilds the model from the file instead).
pub fn load_checkpoint(model: &mut Model, path: &Path) -> Result<()> {
    let file = TensorFile::read(path)?;
    let expected = crate::checkpoint::load_params(model, &file, path)?;
    let stored = file
        .tensors
        .keys()
        .filter(|k| k.starts_with("layers."))
        .count();
    if expected != stored {
        return Err(Error::format(
            path,
            format!(
                "checkpoint has {stored} parameter tensors, the model {expected}: different architecture"
            ),
        ));
    }
    Ok(())
}

/// Refuses an output file whose directory does not exist, before any work starts: `option`
/// names the setting in the error.
pub fn check_output_file(option: &str, path: Option<&Path>) -> Result<()> {
    let Some(dir) = path.and_then(Path::parent) else {
        return Ok(());
    };
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    Err(Error::setting(
        option,
        dir.display(),
        "a file in an existing directory",
    ))
}

/// Writes `path` through `write` under a temporary name beside it (`.partial.NAME`, keeping the
/// extension that writers read, such as `.gz`), then renames
/// it into place: an interrupted run never leaves a truncated file that a later run would read as
/// valid (a rename within a directory is atomic). On failure the temporary file is removed.
pub fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Input(format!("{} names no file", path.display())))?;
    let tmp = path.with_file_name(format!(".partial.{}", name.to_string_lossy()));
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })
}

/// Writes `bytes` to `path` through [`write_atomic`].
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |tmp| {
        std::fs::write(tmp, bytes).map_err(|source| Error::Io {
            path: tmp.into(),
            source,
        })
    })
}

/// Removes `path` if it exists (a stale output that must not outlive a new write).
pub fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}
