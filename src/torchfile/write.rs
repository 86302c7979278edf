//! Writing networks back as safetensors state dicts with their original module names, so that
//! PyTorch code loads them with `safetensors.torch.load_file` and `model.load_state_dict`: one
//! network ([`Chain::write_state_dict`]) or a set's networks named after their source files
//! ([`StateDictSet::write_state_dicts`]).

use std::path::{Component, Path, PathBuf};

use safetensors::tensor::TensorView;

use super::chain::Chain;
use super::dtype::Dtype;
use super::folder::StateDictSet;
use crate::error::{Error, Result};
use crate::space::WeightSpace;

impl Chain {
    /// Writes network `index` of `networks` (same spec as this chain, one channel; e.g. an
    /// edited copy of [`Chain::network`]) as a state dict: `{module}.weight` and, where the
    /// original module had one, `{module}.bias`, in `dtype` (float32 is torch's default). A
    /// nonzero bias on a module that had none is refused, since the file could not hold it.
    ///
    /// ```
    /// use monomial_nfn::torchfile::{infer_chain, Dtype, StateDict};
    /// use monomial_nfn::NetActivation;
    /// let path = std::path::Path::new("tests/fixtures/pth/mlp_named.pth");
    /// let sd = StateDict::read(path).unwrap();
    /// let chain = infer_chain(&sd, None, NetActivation::Relu, path).unwrap();
    /// let out = std::env::temp_dir().join("mnfn-doc-mlp.safetensors");
    /// chain.write_state_dict(&out, &chain.network, 0, Dtype::F32).unwrap();
    /// let back = StateDict::read(&out).unwrap();
    /// assert_eq!(back.names(), ["fc1.bias", "fc1.weight", "fc2.weight", "fc3.bias", "fc3.weight"]);
    /// assert_eq!(back.get("fc1.weight"), sd.get("fc1.weight"));
    /// ```
    pub fn write_state_dict(
        &self,
        path: &Path,
        networks: &WeightSpace,
        index: usize,
        dtype: Dtype,
    ) -> Result<()> {
        networks.validate(&self.spec, Some(1))?;
        if index >= networks.batch() {
            return Err(Error::Input(format!(
                "network {index} out of range for {} networks",
                networks.batch()
            )));
        }
        let one = crate::zoo::batch_item(networks, index);
        let encode = |data: &[f64]| -> Vec<u8> {
            data.iter()
                .flat_map(|&v| match dtype {
                    Dtype::F32 => (v as f32).to_le_bytes().to_vec(),
                    Dtype::F16 => half::f16::from_f64(v).to_le_bytes().to_vec(),
                    Dtype::BF16 => half::bf16::from_f64(v).to_le_bytes().to_vec(),
                    _ => v.to_le_bytes().to_vec(),
                })
                .collect()
        };
        let st_dtype = match dtype {
            Dtype::F32 => safetensors::Dtype::F32,
            Dtype::F16 => safetensors::Dtype::F16,
            Dtype::BF16 => safetensors::Dtype::BF16,
            Dtype::F64 => safetensors::Dtype::F64,
            other => {
                return Err(Error::setting(
                    "state-dict dtype",
                    other.name(),
                    "float32, float64, float16 or bfloat16",
                ))
            }
        };
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (i, module) in self.modules.iter().enumerate() {
            let prefix = if module.is_empty() {
                String::new()
            } else {
                format!("{module}.")
            };
            let (w, b) = (&one.weights[i], &one.biases[i]);
            tensors.push((
                format!("{prefix}weight"),
                self.spec.layers[i].weight_dims(),
                encode(&w.data),
            ));
            if self.has_bias[i] {
                tensors.push((format!("{prefix}bias"), vec![b.len()], encode(&b.data)));
            } else if b.data.iter().any(|&v| v != 0.0) {
                return Err(Error::Input(format!(
                    "module {module:?} had no bias, but network {index} has a nonzero one there"
                )));
            }
        }
        let mut views = Vec::new();
        for (name, shape, bytes) in &tensors {
            let v = TensorView::new(st_dtype, shape.clone(), bytes)
                .map_err(|e| Error::format(path, e.to_string()))?;
            views.push((name.clone(), v));
        }
        let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
        let out = safetensors::serialize(views, Some(meta))
            .map_err(|e| Error::format(path, e.to_string()))?;
        crate::io::write_atomic(path, |tmp| {
            std::fs::write(tmp, &out).map_err(|e| Error::io(tmp, e))
        })
    }
}

impl StateDictSet {
    /// Writes network k of `networks` (same spec as the set, one channel) as the state dict of
    /// the set's file `indices[k]`: float32, the original module names, under `dir` at that
    /// file's path relative to the set's root with the extension `.safetensors` (so the
    /// published layout's folders are kept). Returns the paths written.
    ///
    /// ```
    /// use monomial_nfn::torchfile::{read_set, ReadOptions, StateDict};
    /// use monomial_nfn::NetActivation;
    /// let set = read_set(
    ///     std::path::Path::new("tests/fixtures/pth/siren"),
    ///     NetActivation::Sin,
    ///     &ReadOptions::default(),
    /// )
    /// .unwrap();
    /// let out = std::env::temp_dir().join("mnfn-doc-write-back");
    /// let written = set.write_state_dicts(&out, &set.file.networks, &[0, 1]).unwrap();
    /// assert_eq!(written[1], out.join("randinit_smaller_5s/net12.safetensors"));
    /// let back = StateDict::read(&written[1]).unwrap();
    /// assert_eq!(back.names(), ["net.0.linear.bias", "net.0.linear.weight", "net.1.linear.bias",
    ///                           "net.1.linear.weight", "net.2.bias", "net.2.weight"]);
    /// ```
    pub fn write_state_dicts(
        &self,
        dir: &Path,
        networks: &WeightSpace,
        indices: &[usize],
    ) -> Result<Vec<PathBuf>> {
        if networks.batch() != indices.len() {
            return Err(Error::Input(format!(
                "{} networks for {} file indices",
                networks.batch(),
                indices.len()
            )));
        }
        let mut written: Vec<PathBuf> = Vec::with_capacity(indices.len());
        for (k, &i) in indices.iter().enumerate() {
            let source = self.files.get(i).ok_or_else(|| {
                Error::Input(format!(
                    "file {i} out of range for a set of {}",
                    self.files.len()
                ))
            })?;
            // Only the plain names of the path: an absolute or `..` path stays under `dir`.
            let relative: PathBuf = source
                .components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .collect();
            let path = dir.join(relative).with_extension("safetensors");
            if written.contains(&path) {
                return Err(Error::Input(format!(
                    "two networks would be written to {}",
                    path.display()
                )));
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            self.template
                .write_state_dict(&path, networks, k, Dtype::F32)?;
            written.push(path);
        }
        Ok(written)
    }
}
