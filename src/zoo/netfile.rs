//! Network files: N networks of one architecture as safetensors, in the engine's layout:
//! `weights.{i}` (N, n_out, n_in[, kh, kw]), `biases.{i}` (N, n_out), optional `labels` (N),
//! optional `images` (N, H, W) that INRs were fitted to, and the hidden activation in the
//! metadata (`activation` = relu, tanh or sin).

use std::collections::HashMap;
use std::path::Path;

use super::dataset::{activation_name, parse_activation};
use crate::error::{DatasetProblem, Error, Result};
use crate::io::TensorFile;
use crate::space::WeightSpace;
use crate::spec::{LayerShape, NetActivation, NetworkSpec};
use crate::tensor::Tensor;

/// The networks of a file, as one weight space of batch N and one channel.
#[derive(Clone, Debug)]
pub struct NetworkFile {
    /// Architecture and activation.
    pub spec: NetworkSpec,
    /// The networks.
    pub networks: WeightSpace,
    /// One class label per network, when the file has them (INR sets).
    pub labels: Option<Vec<usize>>,
    /// The images (N, H, W) the networks were fitted to, when the file has them (INR sets).
    pub images: Option<Tensor>,
    /// The remaining metadata.
    pub metadata: HashMap<String, String>,
}

impl NetworkFile {
    /// Reads a file; `activation` overrides the file's `activation` metadata.
    pub fn read(path: &Path, activation: Option<NetActivation>) -> Result<Self> {
        Self::from_tensor_file(path, TensorFile::read(path)?, activation)
    }

    /// The networks of a decoded file (`path` names it in errors); tensors other than the
    /// format's are ignored.
    pub fn from_tensor_file(
        path: &Path,
        file: TensorFile,
        activation: Option<NetActivation>,
    ) -> Result<Self> {
        let bad = |msg: String| Error::dataset(path, DatasetProblem::Mismatch(msg));
        let activation = match activation {
            Some(a) => a,
            None => {
                let name = file.metadata.get("activation").ok_or_else(|| {
                    Error::dataset(
                        path,
                        DatasetProblem::MissingColumn(
                            "activation (metadata; or pass --activation)".into(),
                        ),
                    )
                })?;
                parse_activation(name).ok_or_else(|| bad(format!("unknown activation {name:?}")))?
            }
        };
        let mut layers = Vec::new();
        let (mut weights, mut biases) = (Vec::new(), Vec::new());
        while let Some(w) = file.tensors.get(&format!("weights.{}", layers.len())) {
            let i = layers.len();
            let b = file.get(path, &format!("biases.{i}"))?;
            let layer = match w.shape[..] {
                [_, n_out, n_in] => LayerShape::dense(n_out, n_in),
                [_, n_out, n_in, kh, kw] => LayerShape::conv(n_out, n_in, kh, kw),
                ref s => {
                    return Err(bad(format!(
                        "weights.{i} has shape {s:?}; expected (N, out, in[, kh, kw])"
                    )))
                }
            };
            let n = w.shape[0];
            if b.shape != [n, layer.n_out] {
                return Err(bad(format!(
                    "biases.{i} has shape {:?}, expected {:?}",
                    b.shape,
                    [n, layer.n_out]
                )));
            }
            let mut ws = vec![n, 1];
            ws.extend(layer.weight_dims());
            weights.push(Tensor::new(ws, w.data.clone())?);
            biases.push(Tensor::new(vec![n, 1, layer.n_out], b.data.clone())?);
            layers.push(layer);
        }
        if layers.is_empty() {
            return Err(Error::dataset(
                path,
                DatasetProblem::Empty("no weights.0 tensor".into()),
            ));
        }
        let spec = NetworkSpec::new(layers, activation).map_err(|e| bad(e.to_string()))?;
        let networks = WeightSpace::new(&spec, weights, biases).map_err(|e| bad(e.to_string()))?;
        let labels = match file.tensors.get("labels") {
            Some(t) if t.shape == [networks.batch()] => {
                Some(t.data.iter().map(|&v| v as usize).collect())
            }
            Some(t) => return Err(bad(format!("labels has shape {:?}", t.shape))),
            None => None,
        };
        let images = match file.tensors.get("images") {
            Some(t) if t.shape.len() == 3 && t.shape[0] == networks.batch() => Some(t.clone()),
            Some(t) => {
                return Err(bad(format!(
                    "images has shape {:?}, expected ({}, H, W)",
                    t.shape,
                    networks.batch()
                )))
            }
            None => None,
        };
        let mut metadata = file.metadata;
        metadata.remove("activation");
        Ok(NetworkFile {
            spec,
            networks,
            labels,
            images,
            metadata,
        })
    }

    /// Reads an INR set: a network file, or SIREN state dicts saved by PyTorch (a `.pth`/`.pt`
    /// file, a `file,label` list, or a folder of them in the published layout, SPEC §6.2; see
    /// [`crate::torchfile::read_set`], read with `options`), whose hidden activation is sin.
    pub fn read_inrs(path: &Path, options: &crate::torchfile::ReadOptions) -> Result<Self> {
        if crate::torchfile::is_state_dict_source(path) {
            crate::torchfile::read_set(path, NetActivation::Sin, options).map(|s| s.file)
        } else {
            Self::read(path, None)
        }
    }

    /// Writes the networks (F64), labels and metadata.
    pub fn write(&self, path: &Path) -> Result<()> {
        self.to_tensor_file()?.write(path)
    }

    /// The tensors and metadata [`NetworkFile::write`] writes.
    pub fn to_tensor_file(&self) -> Result<TensorFile> {
        self.networks.validate(&self.spec, Some(1))?;
        let n = self.networks.batch();
        let mut file = TensorFile {
            metadata: self.metadata.clone(),
            ..TensorFile::default()
        };
        file.metadata.insert(
            "activation".into(),
            activation_name(self.spec.activation).into(),
        );
        for (i, (w, b)) in self
            .networks
            .weights
            .iter()
            .zip(&self.networks.biases)
            .enumerate()
        {
            let mut shape = vec![n];
            shape.extend(&w.shape[2..]);
            file.tensors
                .insert(format!("weights.{i}"), Tensor::new(shape, w.data.clone())?);
            file.tensors.insert(
                format!("biases.{i}"),
                Tensor::new(vec![n, b.shape[2]], b.data.clone())?,
            );
        }
        if let Some(labels) = &self.labels {
            file.tensors.insert(
                "labels".into(),
                Tensor::new(
                    vec![labels.len()],
                    labels.iter().map(|&l| l as f64).collect(),
                )?,
            );
        }
        if let Some(images) = &self.images {
            if images.shape.len() != 3 || images.shape[0] != n {
                return Err(Error::shape("images (N, H, W)", &[n], &images.shape));
            }
            file.tensors.insert("images".into(), images.clone());
        }
        Ok(file)
    }

    /// Network `index` as a weight space of batch 1.
    pub fn network(&self, index: usize) -> Result<WeightSpace> {
        let n = self.networks.batch();
        if index >= n {
            return Err(Error::Input(format!(
                "network {index} out of range for a file of {n}"
            )));
        }
        Ok(super::batch_item(&self.networks, index))
    }
}
