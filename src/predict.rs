//! Scoring networks with a saved model (`mnfn predict`): a checkpoint ([`crate::checkpoint`])
//! applied to a zoo directory or a network file, in batches, written as CSV.

use std::path::{Path, PathBuf};

use crate::backend::Backend;
use crate::checkpoint::{Checkpoint, Task};
use crate::error::{Error, Result};
use crate::metrics::{argmax, Metric};
use crate::space::WeightSpace;
use crate::zoo::dataset::activation_name;
use crate::zoo::{NetworkFile, StepFilter, Zoo, ZooFilter};

/// Where the networks to score are.
#[derive(Clone, Debug, PartialEq)]
pub enum Networks {
    /// A zoo directory (Small CNN Zoo format): its final-step networks of the model's activation,
    /// indexed as `predict-gen` indexes them.
    Zoo(PathBuf),
    /// A network file (`mnfn zoo export`, INR sets of `mnfn inr generate`).
    File(PathBuf),
    /// PyTorch state dicts: a `.pth`/`.pt` file, a folder of them or a `file,label` /
    /// `file,accuracy` list ([`crate::torchfile::read_set`]), read with the model's activation;
    /// the list's labels or accuracies are the targets.
    StateDicts {
        /// The file, folder or list.
        path: PathBuf,
        /// Module names in forward order, when their names do not say it.
        layers: Option<Vec<String>>,
        /// Where a folder's one-file cache lives (None: no cache).
        cache_dir: Option<PathBuf>,
    },
}

/// A model's outputs on a set of networks.
#[derive(Clone, Debug)]
pub struct Predictions {
    /// The model's name.
    pub label: String,
    /// What the outputs mean.
    pub task: Option<Task>,
    /// Output width per network.
    pub width: usize,
    /// Each scored network's index in its zoo or file.
    pub indices: Vec<usize>,
    /// Outputs, `width` per network, in network order.
    pub outputs: Vec<f64>,
    /// Known targets, one per network: test accuracies (predict-gen) or labels (classify-inr).
    pub targets: Option<Vec<f64>>,
}

/// A file's networks and its labels as targets.
fn with_targets(file: NetworkFile) -> (WeightSpace, Option<Vec<f64>>) {
    let labels = file
        .labels
        .map(|l| l.into_iter().map(|v| v as f64).collect());
    (file.networks, labels)
}

/// Loads `networks` for `checkpoint`'s model and scores them in batches of `batch`, with a
/// progress bar when `progress` is set and there is more than one batch.
pub fn predict_networks(
    checkpoint: &Checkpoint,
    networks: &Networks,
    backend: &dyn Backend,
    batch: usize,
    progress: bool,
) -> Result<Predictions> {
    if batch == 0 {
        return Err(Error::setting("batch (--batch)", 0, "at least 1"));
    }
    let activation = checkpoint.model.spec().activation;
    let (inputs, targets): (WeightSpace, Option<Vec<f64>>) = match networks {
        Networks::Zoo(dir) => {
            let filter = ZooFilter {
                activation: Some(activation),
                step: StepFilter::Final,
            };
            let zoo = Zoo::open(dir, &filter)?;
            if zoo.is_empty() {
                return Err(Error::Input(format!(
                    "{} holds no final-step {} networks, the kind the model reads",
                    dir.display(),
                    activation_name(activation)
                )));
            }
            let idx: Vec<usize> = (0..zoo.len()).collect();
            (zoo.weight_space(&idx)?, zoo.metric("test_accuracy").ok())
        }
        Networks::File(path) => {
            let file = NetworkFile::read(path, None)?;
            if file.spec.activation != activation {
                return Err(Error::Input(format!(
                    "{} holds {} networks; the model was trained on {} networks",
                    path.display(),
                    activation_name(file.spec.activation),
                    activation_name(activation)
                )));
            }
            with_targets(file)
        }
        Networks::StateDicts {
            path,
            layers,
            cache_dir,
        } => {
            let options = crate::torchfile::ReadOptions {
                layers: layers.clone(),
                cache_dir: cache_dir.clone(),
                progress,
                ..Default::default()
            };
            let set = crate::torchfile::read_set(path, activation, &options)?;
            match set.accuracies {
                Some(a) => (set.file.networks, Some(a)),
                None => with_targets(set.file),
            }
        }
    };
    let n = inputs.batch();
    let bar = crate::progress::Bar::new(
        progress && n > batch,
        n as u64,
        "scoring: [{bar:30}] {pos}/{len} networks ({elapsed}, eta {eta})",
    )?;
    let outputs = checkpoint.predict(backend, &inputs, batch, &|k| bar.inc(k as u64))?;
    bar.finish_and_clear();
    Ok(Predictions {
        label: checkpoint.label.clone(),
        task: checkpoint.task,
        width: outputs.len() / n.max(1),
        indices: (0..n).collect(),
        outputs,
        targets,
    })
}

impl Predictions {
    /// Networks scored.
    pub fn len(&self) -> usize {
        self.outputs.len() / self.width.max(1)
    }

    /// Whether no network was scored.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// Kendall's τ (predict-gen) or accuracy (classify-inr) against the known targets.
    pub fn score(&self) -> Option<(&'static str, f64)> {
        let targets = self.targets.as_ref()?;
        match self.task? {
            Task::PredictGen => Metric::KendallTau
                .eval(&self.outputs, targets, 1)
                .ok()
                .map(|t| ("Kendall tau", t)),
            Task::ClassifyInr { classes } => {
                let one_hot: Vec<f64> = targets
                    .iter()
                    .flat_map(|&l| (0..classes).map(move |c| f64::from(u8::from(c as f64 == l))))
                    .collect();
                Metric::Accuracy
                    .eval(&self.outputs, &one_hot, classes)
                    .ok()
                    .map(|a| ("accuracy", a))
            }
            Task::EditInr => None,
        }
    }

    /// The CSV rows: `index,prediction[,test_accuracy]` for predict-gen,
    /// `index,class,logit_0,…[,label]` for classify-inr, `index,output_0,…` otherwise; written
    /// through a temporary file and a rename.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let w = self.width.max(1);
        let mut header = vec!["index".to_string()];
        let target = match self.task {
            Some(Task::PredictGen) => {
                header.push("prediction".into());
                Some("test_accuracy")
            }
            Some(Task::ClassifyInr { .. }) => {
                header.push("class".into());
                header.extend((0..w).map(|k| format!("logit_{k}")));
                Some("label")
            }
            _ => {
                header.extend((0..w).map(|k| format!("output_{k}")));
                None
            }
        };
        let targets = self.targets.as_ref().zip(target);
        if let Some((_, name)) = targets {
            header.push(name.into());
        }
        let mut text = header.join(",") + "\n";
        for (i, (out, index)) in self.outputs.chunks(w).zip(&self.indices).enumerate() {
            let mut line = vec![index.to_string()];
            if let Some(Task::ClassifyInr { .. }) = self.task {
                line.push(argmax(out).to_string());
            }
            line.extend(out.iter().map(|v| v.to_string()));
            if let Some((t, _)) = targets {
                line.push(t[i].to_string());
            }
            text += &(line.join(",") + "\n");
        }
        crate::io::write_file(path, text.as_bytes())
    }
}
