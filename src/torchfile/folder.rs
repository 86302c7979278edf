//! Data sets of state-dict files: one `.pth`/`.pt` file, a `file,label` / `file,accuracy` list
//! (`targets`), or a folder: with one `*.csv` in it, that list; otherwise searched recursively for
//! `.pth`/`.pt`/`.safetensors` files. Read in parallel into one [`NetworkFile`] of batch N. In
//! the published SIREN data sets' layout, `{prefix}_{label}s/net{idx}.pth` (SPEC §6.2),
//! networks are ordered by `idx` (the splits are by index) and labelled from the folder names;
//! a list keeps its row order; otherwise files are in the natural order of their paths.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::cache::Cache;
use super::chain::{infer_chain, Chain};
use super::state_dict::{natural_cmp, StateDict};
use super::targets::{is_csv, TargetList, Targets};
use crate::error::{DatasetProblem, Error, Result};
use crate::space::WeightSpace;
use crate::spec::NetActivation;
use crate::tensor::Tensor;
use crate::zoo::NetworkFile;

/// True for what [`read_set`] reads: a folder, a target list `*.csv`, or a state-dict file
/// named `*.pth` / `*.pt`.
pub fn is_state_dict_source(path: &Path) -> bool {
    path.is_dir() || has_torch_extension(path) || is_csv(path)
}

fn has_torch_extension(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("pth" | "pt")
    )
}

/// State-dict files a folder scan picks up: `*.pth`, `*.pt` and `*.safetensors`.
fn is_state_dict_file(path: &Path) -> bool {
    has_torch_extension(path) || path.extension().is_some_and(|e| e == "safetensors")
}

/// The state-dict files under `dir`, recursively (symbolic links to folders are not followed).
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
            } else if kind.is_file() && is_state_dict_file(&p) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// The target list of a folder: its one `*.csv` file (not searched recursively), if any.
fn folder_csv(dir: &Path) -> Result<Option<PathBuf>> {
    let mut csvs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        if p.is_file() && is_csv(&p) {
            csvs.push(p);
        }
    }
    csvs.sort();
    match csvs.len() {
        0 | 1 => Ok(csvs.pop()),
        _ => Err(Error::dataset(
            dir,
            DatasetProblem::Malformed(format!(
                "several CSV files ({}): pass the target list to use as the path",
                csvs.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        )),
    }
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

/// How [`read_set`] reads a source.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Module names in forward order, when the state dicts' names do not say it.
    pub layers: Option<Vec<String>>,
    /// Number of classes: a target list's label must be below it.
    pub classes: Option<usize>,
    /// Where the one-file cache of a folder or list lives (`state-dicts/` below it); None
    /// reads the files every time. A single state-dict file is never cached.
    pub cache_dir: Option<PathBuf>,
    /// Show a progress bar while the files are read.
    pub progress: bool,
}

/// A data set of state-dict files: the networks (with labels from a `file,label` list or the
/// published layout's folder names), accuracies from a `file,accuracy` list, each network's
/// file, and the first file's chain (module names and biases, for writing networks back).
#[derive(Clone, Debug)]
pub struct StateDictSet {
    /// The networks, stacked in the set's order, and their labels.
    pub file: NetworkFile,
    /// One accuracy per network, from a `file,accuracy` list.
    pub accuracies: Option<Vec<f64>>,
    /// The folder the files' names are relative to (the source folder, or the list's folder).
    pub root: PathBuf,
    /// Each network's file, relative to `root`.
    pub files: Vec<PathBuf>,
    /// The first file read as a chain; every file has its modules and shapes.
    pub template: Chain,
}

/// The files of a source in the set's order, with the targets that come with them.
pub(crate) struct Listing {
    pub root: PathBuf,
    pub files: Vec<PathBuf>,
    /// The target list the files come from.
    pub csv: Option<PathBuf>,
    pub labels: Option<Vec<usize>>,
    pub accuracies: Option<Vec<f64>>,
}

/// Lists `path`: a target list (the CSV itself, or a folder's one CSV), a folder searched
/// recursively (ordered and labelled by the published layout when every file follows it,
/// otherwise in natural path order), or one file.
fn listing(path: &Path, classes: Option<usize>) -> Result<Listing> {
    if path.join(crate::zoo::dataset::WEIGHTS).is_file() {
        return Err(Error::dataset(
            path,
            DatasetProblem::Malformed(
                "a Small CNN Zoo directory (weights.npy), not state dicts: pass it as --zoo".into(),
            ),
        ));
    }
    let csv = if path.is_dir() {
        folder_csv(path)?
    } else {
        is_csv(path).then(|| path.to_path_buf())
    };
    if let Some(csv) = csv {
        let list = TargetList::read(&csv, classes)?;
        let (labels, accuracies) = match list.targets {
            Targets::Labels(l) => (Some(l), None),
            Targets::Accuracies(a) => (None, Some(a)),
        };
        return Ok(Listing {
            root: csv.parent().unwrap_or(Path::new("")).to_path_buf(),
            files: list.files,
            csv: Some(csv),
            labels,
            accuracies,
        });
    }
    let (root, mut files) = if path.is_dir() {
        (path.to_path_buf(), find_files(path)?)
    } else {
        let root = path.parent().unwrap_or(Path::new("")).to_path_buf();
        (root, vec![path.to_path_buf()])
    };
    if files.is_empty() {
        return Err(Error::dataset(
            path,
            DatasetProblem::Empty("no .pth, .pt or .safetensors file in the folder".into()),
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
    Ok(Listing {
        root,
        files,
        csv: None,
        labels,
        accuracies: None,
    })
}

/// Reads the networks of `path` (a state-dict file, a folder of them, or a `file,label` /
/// `file,accuracy` list) as chains of dense/conv layers with hidden activation `activation`
/// (see [`infer_chain`]), the files in parallel. Every file must have the same architecture;
/// the error names the first that differs. With a cache folder, a set read once is kept there
/// as one file and read from it while its files are unchanged.
///
/// ```
/// use monomial_nfn::torchfile::{read_set, ReadOptions};
/// use monomial_nfn::NetActivation;
/// let dir = std::path::Path::new("tests/fixtures/pth/siren");
/// let set = read_set(dir, NetActivation::Sin, &ReadOptions::default()).unwrap();
/// assert_eq!(set.file.networks.batch(), 2);
/// assert_eq!(set.file.labels, Some(vec![3, 5])); // randinit_smaller_3s/net7.pth, ..._5s/net12.pth
/// assert_eq!(set.template.modules, ["net.0.linear", "net.1.linear", "net.2"]);
/// ```
pub fn read_set(
    path: &Path,
    activation: NetActivation,
    options: &ReadOptions,
) -> Result<StateDictSet> {
    let list = listing(path, options.classes)?;
    let layers: Option<Vec<&str>> = options
        .layers
        .as_ref()
        .map(|l| l.iter().map(String::as_str).collect());
    // One file is its own contiguous copy: only folders and lists are cached.
    let cache = options
        .cache_dir
        .as_deref()
        .filter(|_| path.is_dir() || is_csv(path))
        .map(|dir| Cache::new(dir, path, &list, activation, layers.as_deref()));
    if let Some(set) = cache.as_ref().and_then(Cache::load) {
        return Ok(set);
    }
    let set = read_files(list, activation, layers.as_deref(), options.progress)?;
    if let Some(c) = &cache {
        c.store(&set);
    }
    Ok(set)
}

/// [`read_set`] without a target list's classes, a cache or a progress bar: the networks alone.
///
/// ```
/// use monomial_nfn::torchfile::read_networks;
/// use monomial_nfn::NetActivation;
/// let dir = std::path::Path::new("tests/fixtures/pth/siren");
/// let set = read_networks(dir, None, NetActivation::Sin).unwrap();
/// assert_eq!(set.labels, Some(vec![3, 5]));
/// ```
pub fn read_networks(
    path: &Path,
    layers: Option<&[&str]>,
    activation: NetActivation,
) -> Result<NetworkFile> {
    let options = ReadOptions {
        layers: layers.map(|l| l.iter().map(|s| s.to_string()).collect()),
        ..ReadOptions::default()
    };
    read_set(path, activation, &options).map(|s| s.file)
}

/// Reads and stacks the files of `list`, in parallel.
fn read_files(
    list: Listing,
    activation: NetActivation,
    layers: Option<&[&str]>,
    progress: bool,
) -> Result<StateDictSet> {
    let files = &list.files;
    let bar = crate::progress::Bar::new(
        progress && files.len() > 1,
        files.len() as u64,
        "reading state dicts: [{bar:30}] {pos}/{len} files ({elapsed}, eta {eta})",
    )?;
    let chains: Vec<Chain> = files
        .par_iter()
        .map(|f| {
            let c = infer_chain(&StateDict::read(f)?, layers, activation, f);
            bar.inc(1);
            c
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let first = &chains[0];
    for (c, f) in chains.iter().zip(files) {
        if c.spec != first.spec || c.modules != first.modules || c.has_bias != first.has_bias {
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
    let relative = files
        .iter()
        .map(|f| f.strip_prefix(&list.root).unwrap_or(f).to_path_buf())
        .collect();
    Ok(StateDictSet {
        file: NetworkFile {
            spec: first.spec.clone(),
            networks,
            labels: list.labels,
            images: None,
            metadata,
        },
        accuracies: list.accuracies,
        root: list.root,
        files: relative,
        template: chains.into_iter().next().expect("a listing has files"),
    })
}
