//! Data sets of state-dict files: one `.pth`/`.pt` file, or a folder searched recursively for
//! them, read in parallel into one [`NetworkFile`] of batch N. In the published SIREN data
//! sets' layout, `{prefix}_{label}s/net{idx}.pth` (SPEC §6.2), networks are ordered by `idx`
//! (the splits are by index) and labelled from the folder names; otherwise they are in the
//! natural order of their paths, without labels.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::chain::{infer_chain, Chain};
use super::state_dict::{natural_cmp, StateDict};
use crate::error::{DatasetProblem, Error, Result};
use crate::space::WeightSpace;
use crate::spec::NetActivation;
use crate::tensor::Tensor;
use crate::zoo::NetworkFile;

/// True for what [`read_networks`] reads: a folder, or a file named `*.pth` / `*.pt`.
pub fn is_state_dict_source(path: &Path) -> bool {
    path.is_dir() || has_torch_extension(path)
}

fn has_torch_extension(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("pth" | "pt")
    )
}

/// The `.pth`/`.pt` files under `dir`, recursively (symbolic links to folders are not followed).
fn find_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let entry = entry.map_err(|e| Error::io(&d, e))?;
            let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
            let p = entry.path();
            if kind.is_dir() {
                todo.push(p);
            } else if kind.is_file() && has_torch_extension(&p) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// `idx` of a file named `net{idx}.pth`.
fn net_index(p: &Path) -> Option<usize> {
    p.file_stem()?.to_str()?.strip_prefix("net")?.parse().ok()
}

/// `label` of a folder named `{prefix}_{label}s`.
fn folder_label(p: &Path) -> Option<usize> {
    let name = p.parent()?.file_name()?.to_str()?;
    name.strip_suffix('s')?.rsplit_once('_')?.1.parse().ok()
}

/// Reads the networks of `path` (a state-dict file or a folder of them) as chains of dense/conv
/// layers with hidden activation `activation` (see [`infer_chain`]; `layers` orders the modules
/// when their names do not). Every file must have the same architecture.
///
/// ```
/// use monomial_nfn::torchfile::read_networks;
/// use monomial_nfn::NetActivation;
/// let dir = std::path::Path::new("tests/fixtures/pth/siren");
/// let set = read_networks(dir, None, NetActivation::Sin).unwrap();
/// assert_eq!(set.networks.batch(), 2);
/// assert_eq!(set.labels, Some(vec![3, 5])); // randinit_smaller_3s/net7.pth, ..._5s/net12.pth
/// ```
pub fn read_networks(
    path: &Path,
    layers: Option<&[&str]>,
    activation: NetActivation,
) -> Result<NetworkFile> {
    let mut files = if path.is_dir() {
        find_files(path)?
    } else {
        vec![path.to_path_buf()]
    };
    if files.is_empty() {
        return Err(Error::dataset(
            path,
            DatasetProblem::Empty("no .pth or .pt file in the folder".into()),
        ));
    }
    let layout: Option<Vec<(usize, usize)>> = files
        .iter()
        .map(|f| Some((net_index(f)?, folder_label(f)?)))
        .collect();
    let labels = match layout {
        Some(mut keyed) => {
            let mut order: Vec<usize> = (0..files.len()).collect();
            order.sort_by_key(|&i| keyed[i].0);
            files = order.iter().map(|&i| files[i].clone()).collect();
            keyed = order.iter().map(|&i| keyed[i]).collect();
            if let Some(w) = keyed.windows(2).position(|w| w[0].0 == w[1].0) {
                return Err(Error::dataset(
                    &files[w + 1],
                    DatasetProblem::Mismatch(format!(
                        "network index {} appears twice (also {})",
                        keyed[w].0,
                        files[w].display()
                    )),
                ));
            }
            Some(keyed.iter().map(|k| k.1).collect())
        }
        None => {
            files.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
            None
        }
    };
    let chains: Vec<Chain> = files
        .par_iter()
        .map(|f| infer_chain(&StateDict::read(f)?, layers, activation, f))
        .collect::<Result<_>>()?;
    let first = &chains[0];
    for (c, f) in chains.iter().zip(&files) {
        if c.spec != first.spec || c.modules != first.modules {
            return Err(Error::dataset(
                f,
                DatasetProblem::Mismatch(format!(
                    "modules {:?} ({}) differ from {}'s {:?} ({})",
                    c.modules,
                    c.spec.layers_in_words(),
                    files[0].display(),
                    first.modules,
                    first.spec.layers_in_words()
                )),
            ));
        }
    }
    let n = chains.len();
    let stack = |pick: &dyn Fn(&WeightSpace) -> &Tensor| -> Result<Tensor> {
        let mut shape = pick(&first.network).shape.clone();
        shape[0] = n;
        let data = chains
            .iter()
            .flat_map(|c| pick(&c.network).data.iter().copied())
            .collect();
        Tensor::new(shape, data)
    };
    let mut weights = Vec::new();
    let mut biases = Vec::new();
    for i in 0..first.spec.num_layers() {
        weights.push(stack(&|w| &w.weights[i])?);
        biases.push(stack(&|w| &w.biases[i])?);
    }
    let networks = WeightSpace::new(&first.spec, weights, biases)?;
    let metadata = HashMap::from([
        ("source".to_string(), "pytorch state dicts".to_string()),
        ("modules".to_string(), first.modules.join(",")),
    ]);
    Ok(NetworkFile {
        spec: first.spec.clone(),
        networks,
        labels,
        images: None,
        metadata,
    })
}
