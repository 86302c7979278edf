//! A Small CNN Zoo directory (`weights.npy`, `layout.csv`, `metrics.csv.gz`): loading with the
//! original protocol's filters (activation, final step) and train/val/test splits (SPEC §6.1).

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::layout::Layout;
use super::metrics::Table;
use super::npy::{self, NpyFile};
use crate::error::{DatasetProblem, Error, Result};
use crate::space::WeightSpace;
use crate::spec::{NetActivation, NetworkSpec};

/// File names inside a zoo directory.
pub const WEIGHTS: &str = "weights.npy";
/// See [`WEIGHTS`].
pub const LAYOUT: &str = "layout.csv";
/// See [`WEIGHTS`].
pub const METRICS: &str = "metrics.csv.gz";
/// The completeness manifest [`Zoo::write`] adds last (see [`crate::manifest`]).
pub const MANIFEST: &str = "manifest.json";

/// Which checkpoints to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepFilter {
    /// Every row.
    All,
    /// Rows whose `step` equals this value (the original protocol keeps `step == 86`).
    Exact(u64),
    /// Each network's last checkpoint: `step` equals `config.epochs` (the original) or
    /// `config.num_steps` (generated zoos), or the largest step when neither column exists.
    Final,
}

/// Which networks of a zoo to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZooFilter {
    /// Keep networks of this activation (`config.activation`); None keeps all, which requires
    /// them to share one activation.
    pub activation: Option<NetActivation>,
    /// Which checkpoints to keep.
    pub step: StepFilter,
}

impl Default for ZooFilter {
    /// All activations (must agree), final checkpoints.
    fn default() -> Self {
        ZooFilter {
            activation: None,
            step: StepFilter::Final,
        }
    }
}

/// The name a metrics file gives an activation.
pub fn activation_name(a: NetActivation) -> &'static str {
    match a {
        NetActivation::Relu => "relu",
        NetActivation::Tanh => "tanh",
        NetActivation::Sin => "sin",
    }
}

/// Parses `relu`, `tanh` or `sin` (case-insensitive).
pub fn parse_activation(s: &str) -> Option<NetActivation> {
    match s.trim().to_ascii_lowercase().as_str() {
        "relu" => Some(NetActivation::Relu),
        "tanh" => Some(NetActivation::Tanh),
        "sin" => Some(NetActivation::Sin),
        _ => None,
    }
}

/// A loaded zoo: the kept networks' flat rows, their metrics rows, and the layout.
#[derive(Clone, Debug)]
pub struct Zoo {
    /// Layout (and architecture, with the zoo's activation) of every row.
    pub layout: Layout,
    /// Kept rows, row-major (len × P), float32 as stored.
    pub weights: Vec<f32>,
    /// The kept rows' metrics, in the same order.
    pub metrics: Table,
    /// Index of each kept row in the files.
    pub rows: Vec<usize>,
    metrics_path: PathBuf,
}

impl Zoo {
    /// Loads the networks of `dir` that pass `filter`, reading only their rows of `weights.npy`.
    pub fn open(dir: &Path, filter: &ZooFilter) -> Result<Self> {
        let (wpath, lpath, mpath) = (dir.join(WEIGHTS), dir.join(LAYOUT), dir.join(METRICS));
        let mut npy = NpyFile::open(&wpath)?;
        let (n, p) = npy.f32_matrix_dims()?;
        let metrics = Table::read_csv(&mpath)?;
        if metrics.len() != n {
            return Err(Error::dataset(
                &mpath,
                DatasetProblem::Mismatch(format!(
                    "{} metrics rows for {n} weight rows in {}",
                    metrics.len(),
                    wpath.display()
                )),
            ));
        }
        let acts = metrics.column(&mpath, "config.activation")?;
        let mut keep: Vec<bool> = match filter.activation {
            Some(a) => acts
                .iter()
                .map(|s| parse_activation(s) == Some(a))
                .collect(),
            None => vec![true; n],
        };
        let step_keep = step_mask(&metrics, &mpath, filter.step)?;
        keep.iter_mut().zip(&step_keep).for_each(|(k, s)| *k &= s);
        let rows: Vec<usize> = (0..n).filter(|&i| keep[i]).collect();
        if rows.is_empty() {
            return Err(Error::dataset(
                &mpath,
                DatasetProblem::Empty(nothing_passes(filter, &acts, &step_keep)),
            ));
        }
        let activation = match filter.activation {
            Some(a) => a,
            None => {
                let first = acts[rows[0]];
                if let Some(&other) = rows.iter().map(|&r| &acts[r]).find(|&&a| a != first) {
                    return Err(Error::dataset(
                        &mpath,
                        DatasetProblem::Mismatch(format!(
                            "networks of activations {first} and {other}: pick one (--activation)"
                        )),
                    ));
                }
                parse_activation(first).ok_or_else(|| {
                    Error::dataset(
                        &mpath,
                        DatasetProblem::Malformed(format!("unknown activation {first:?}")),
                    )
                })?
            }
        };
        let layout = Layout::read(&lpath, activation)?;
        if layout.row_len() != p {
            return Err(Error::dataset(
                &lpath,
                DatasetProblem::Mismatch(format!(
                    "layout covers {} values per row, {} has {p} columns",
                    layout.row_len(),
                    wpath.display()
                )),
            ));
        }
        let weights = npy.read_f32_rows(&rows)?;
        let metrics = metrics.select(&rows);
        Ok(Zoo {
            layout,
            weights,
            metrics,
            rows,
            metrics_path: mpath,
        })
    }

    /// A zoo of networks read some other way (a folder of PyTorch state dicts with a
    /// `file,accuracy` list), held as the Small CNN Zoo's rows (float32; the state dicts'
    /// usual precision) with one metrics column, `test_accuracy`, so that everything that
    /// trains on a zoo takes it unchanged. `source` names it in errors.
    pub fn from_networks(
        spec: &NetworkSpec,
        networks: &WeightSpace,
        accuracies: &[f64],
        source: &Path,
    ) -> Result<Self> {
        let n = networks.batch();
        if accuracies.len() != n {
            return Err(Error::dataset(
                source,
                DatasetProblem::Mismatch(format!(
                    "{} accuracies for {n} networks",
                    accuracies.len()
                )),
            ));
        }
        let layout = Layout::for_spec(spec);
        let weights = layout.to_rows::<f32>(networks)?;
        let metrics = Table::new(
            vec!["test_accuracy".into()],
            accuracies.iter().map(|a| vec![a.to_string()]).collect(),
        );
        Ok(Zoo {
            layout,
            weights,
            metrics,
            rows: (0..n).collect(),
            metrics_path: source.to_path_buf(),
        })
    }

    /// Writes a zoo directory (created if missing): rows (len × P), layout and metrics, each
    /// through a temporary name, then the manifest of all three ([`Zoo::verify`]). An older
    /// zoo's metrics and manifest are removed first, so an interrupted write never leaves a
    /// directory that reads as a complete zoo.
    pub fn write(dir: &Path, layout: &Layout, weights: &[f32], metrics: &Table) -> Result<()> {
        let p = layout.row_len();
        if p == 0 || weights.len() % p != 0 || weights.len() / p != metrics.len() {
            return Err(Error::shape(
                "zoo rows × P vs metrics rows",
                &[metrics.len() * p],
                &[weights.len()],
            ));
        }
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.into(),
            source,
        })?;
        for stale in [MANIFEST, METRICS] {
            crate::io::remove_if_present(&dir.join(stale))?;
        }
        npy::write_f32_matrix(&dir.join(WEIGHTS), metrics.len(), p, weights)?;
        layout.write(&dir.join(LAYOUT))?;
        metrics.write_csv(&dir.join(METRICS))?;
        crate::manifest::write(&dir.join(MANIFEST), &[WEIGHTS, LAYOUT, METRICS])
    }

    /// Checks a directory [`Zoo::write`] wrote against its manifest (every file present, of
    /// its recorded size and hash): what a cached zoo must pass before it is reused.
    pub fn verify(dir: &Path) -> Result<()> {
        crate::manifest::verify(&dir.join(MANIFEST))
    }

    /// Number of networks.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no network was kept (never, for a zoo from [`Zoo::open`]).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// One network's flat row.
    pub fn row(&self, i: usize) -> &[f32] {
        let p = self.layout.row_len();
        &self.weights[i * p..(i + 1) * p]
    }

    /// The networks at `indices` as a weight space (batch = indices.len(), one channel).
    pub fn weight_space(&self, indices: &[usize]) -> Result<WeightSpace> {
        if let Some(&i) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::Input(format!(
                "network {i} out of range for a zoo of {}",
                self.len()
            )));
        }
        let rows: Vec<f32> = indices.iter().flat_map(|&i| self.row(i)).copied().collect();
        self.layout.to_weight_space(&rows)
    }

    /// Column `name` of the metrics as numbers (e.g. `test_accuracy`, the usual target).
    pub fn metric(&self, name: &str) -> Result<Vec<f64>> {
        self.metrics.f64_column(&self.metrics_path, name)
    }
}

/// Why no network passes `filter`, in words, naming the activations the zoo holds at the
/// filtered steps (`at_step`) so the user can pick one.
fn nothing_passes(filter: &ZooFilter, acts: &[&str], at_step: &[bool]) -> String {
    let step = match filter.step {
        StepFilter::All => String::new(),
        StepFilter::Exact(s) => format!(" at step {s}"),
        StepFilter::Final => " at the final step".to_string(),
    };
    let n = acts.len();
    let Some(want) = filter.activation else {
        return format!("no networks{step} among its {n}");
    };
    let mut held: Vec<&str> = acts
        .iter()
        .zip(at_step)
        .filter(|(_, &k)| k)
        .filter_map(|(a, _)| parse_activation(a).map(activation_name))
        .collect();
    held.sort_unstable();
    held.dedup();
    let want = activation_name(want);
    match held.first() {
        None => format!("no networks{step} among its {n}"),
        Some(other) => format!(
            "no {want} networks{step} among its {n}; it holds {} networks{step}: pass --activation {other}",
            held.join(" and ")
        ),
    }
}

fn step_mask(metrics: &Table, path: &Path, filter: StepFilter) -> Result<Vec<bool>> {
    let steps = || metrics.f64_column(path, "step");
    Ok(match filter {
        StepFilter::All => vec![true; metrics.len()],
        StepFilter::Exact(s) => steps()?.iter().map(|&v| v == s as f64).collect(),
        StepFilter::Final => {
            let steps = steps()?;
            let last = ["config.epochs", "config.num_steps"]
                .into_iter()
                .find(|c| metrics.has_column(c));
            match last {
                Some(c) => {
                    let ends = metrics.f64_column(path, c)?;
                    steps.iter().zip(ends).map(|(&s, e)| s == e).collect()
                }
                None => {
                    let max = steps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    steps.iter().map(|&s| s == max).collect()
                }
            }
        }
    })
}

/// Indices of the train, validation and test networks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splits {
    /// Training networks.
    pub train: Vec<usize>,
    /// Validation networks.
    pub val: Vec<usize>,
    /// Test networks.
    pub test: Vec<usize>,
}

impl Splits {
    /// A seeded shuffle of 0..n cut 80/10/10.
    pub fn seeded(n: usize, seed: u64) -> Self {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let (a, b) = (n * 8 / 10, n * 9 / 10);
        Splits {
            train: idx[..a].to_vec(),
            val: idx[a..b].to_vec(),
            test: idx[b..].to_vec(),
        }
    }

    /// The original protocol (SPEC §6.1): networks in the split file's order; the first half is
    /// train+val, shuffled with `seed` and cut 80/20; the second half is test. `path` is a 1-D
    /// integer `.npy` of indices into the (filtered) zoo of `n` networks.
    pub fn from_index_file(path: &Path, n: usize, seed: u64) -> Result<Self> {
        let order = NpyFile::open(path)?.read_indices()?;
        let mut seen = vec![false; n];
        for &i in &order {
            if i >= n || std::mem::replace(&mut seen[i], true) {
                return Err(Error::dataset(
                    path,
                    DatasetProblem::Mismatch(format!(
                        "index {i} is repeated or out of range for {n} networks"
                    )),
                ));
            }
        }
        if order.is_empty() {
            return Err(Error::dataset(
                path,
                DatasetProblem::Empty("the split file lists no network".into()),
            ));
        }
        Ok(Self::paper(&order, seed))
    }

    /// The original protocol on networks listed in `order`: the first half, shuffled with
    /// `seed`, is cut 80/20 into train and validation; the second half is test (SPEC §6.1).
    pub fn paper(order: &[usize], seed: u64) -> Self {
        let half = order.len() / 2;
        let mut trainval = order[..half].to_vec();
        trainval.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let cut = trainval.len() * 8 / 10;
        Splits {
            val: trainval.split_off(cut),
            train: trainval,
            test: order[half..].to_vec(),
        }
    }
}
