//! Weight-space editing of SIRENs (SPEC §6.3), the paper's third experiment: an equivariant NFN
//! reads a SIREN and writes a change to its weights so that the edited SIREN renders the edited
//! image (here: the 3×3 dilation of the SIREN's own render). Nothing is supervised in weight
//! space: the loss is the pixel MSE of the rendered edit, back-propagated through the render.

use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;

use crate::backend::Backend;
use crate::classify::{inr_file, InrSource};
use crate::error::{Error, Result};
use crate::experiment::default_cache_dir;
use crate::metrics::Metric;
use crate::nn::baseline::PermKind;
use crate::nn::edit::{edited_networks, InrEditorConfig};
use crate::nn::model::Model;
use crate::picture::{save_grid, Picture};
use crate::plan::LossKind;
use crate::tensor::Tensor;
use crate::train::{fit, predict, Dataset, Epoch, StepSchedule};
use crate::zoo::{Augment, NetworkFile};

/// The editors of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum EditModelKind {
    /// HNPS_SirenLinear front end, Fourier features, position encoding, NP layers.
    Monomial,
    /// The same without the front end (`equiv_io`).
    Np,
    /// HNP layers on Fourier features, no position encoding (`equiv`).
    Hnp,
}

impl EditModelKind {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            EditModelKind::Monomial => "Monomial-NFN",
            EditModelKind::Np => "NP",
            EditModelKind::Hnp => "HNP",
        }
    }

    /// This kind's editor, sized like `template` (the Monomial-NFN's configuration).
    pub fn config(self, template: &InrEditorConfig) -> InrEditorConfig {
        match self {
            EditModelKind::Monomial => template.clone(),
            EditModelKind::Np => InrEditorConfig {
                front: None,
                ..template.clone()
            },
            EditModelKind::Hnp => InrEditorConfig {
                front: None,
                pos_encoding: None,
                base: PermKind::Hnp,
                ..template.clone()
            },
        }
    }
}

/// The edit applied to every image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Edit {
    /// Grey dilation with a 3×3 all-ones kernel, one iteration (a 3×3 maximum filter).
    Dilate,
}

/// Settings of an edit-inr run; defaults finish within 10 minutes on a 2-core CPU,
/// [`EditConfig::paper`] is the paper's MNIST configuration.
#[derive(Clone, Debug)]
pub struct EditConfig {
    /// The INR set.
    pub inrs: InrSource,
    /// Editors to train and compare.
    pub models: Vec<EditModelKind>,
    /// The Monomial-NFN editor (the others drop its front end, or use HNP layers).
    pub editor: InrEditorConfig,
    /// The edit.
    pub edit: Edit,
    /// Steps, validation interval, batch, learning rate, warm-up; its seed also seeds the
    /// models and the group elements.
    pub schedule: StepSchedule,
    /// Test SIRENs shown in the PNG grid.
    pub examples: usize,
    /// Write the first model's edited test SIRENs here.
    pub save_edited: Option<PathBuf>,
    /// Write the first model's edited test SIRENs under this folder as safetensors state dicts
    /// with the original module names, one per source file (state-dict sets only; see
    /// [`crate::torchfile::StateDictSet::write_state_dicts`]).
    pub save_edited_state_dicts: Option<PathBuf>,
    /// Where generated INR sets and one-file copies of state-dict sets are cached.
    pub cache_dir: PathBuf,
    /// Where curves and the PNG grid are written.
    pub out_dir: PathBuf,
    /// Show progress bars.
    pub progress: bool,
    /// Save the first of `models`, trained, as a checkpoint here (`mnfn predict` reads it).
    pub save: Option<PathBuf>,
}

impl Default for EditConfig {
    fn default() -> Self {
        EditConfig {
            inrs: InrSource::Generate { n: 2000, seed: 0 },
            models: vec![
                EditModelKind::Monomial,
                EditModelKind::Np,
                EditModelKind::Hnp,
            ],
            editor: InrEditorConfig {
                fourier: (32, 3.0),
                widths: vec![32; 3],
                ..InrEditorConfig::paper_monomial((16, 16))
            },
            edit: Edit::Dilate,
            schedule: StepSchedule::default(),
            examples: 6,
            save_edited: None,
            save_edited_state_dicts: None,
            cache_dir: default_cache_dir(),
            out_dir: PathBuf::from("edit-inr-out"),
            progress: false,
            save: None,
        }
    }
}

impl EditConfig {
    /// The paper's MNIST editor (4,134,153 parameters on 28×28; here on this set's grid),
    /// Adam 1e-3, batch 32, 50,000 steps with 1,000 warm-up, validation every 1,000.
    pub fn paper(mut self) -> Self {
        self.editor = InrEditorConfig::paper_monomial(self.editor.grid);
        self.schedule = StepSchedule {
            steps: 50_000,
            eval_every: 1_000,
            batch: 32,
            lr: 1e-3,
            warmup: 1_000,
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
            return bad("models", "none".into(), "at least one of monomial, np, hnp");
        }
        let (h, w) = self.editor.grid;
        if h * w == 0 || h > 256 || w > 256 {
            return bad("grid", format!("{h}x{w}"), "1 ..= 256 per side");
        }
        if let Some(dir) = &self.save_edited_state_dicts {
            if !self.reads_state_dicts() {
                return bad(
                    "--save-edited-state-dicts",
                    dir.display().to_string(),
                    "only with PyTorch state dicts as --inrs (a .pth file, a folder or a CSV list)",
                );
            }
        }
        Ok(())
    }

    /// True when the INR set is PyTorch state dicts.
    fn reads_state_dicts(&self) -> bool {
        matches!(&self.inrs, InrSource::File(p) if crate::torchfile::is_state_dict_source(p))
    }
}

/// Grey dilation of every channel of an h×w image (channels last) with a 3×3 all-ones kernel:
/// each pixel becomes the maximum of its in-image 3×3 neighbourhood.
pub fn dilate(img: &[f64], h: usize, w: usize, channels: usize) -> Vec<f64> {
    let mut out = vec![0.0; img.len()];
    for y in 0..h {
        for x in 0..w {
            for c in 0..channels {
                let mut m = f64::NEG_INFINITY;
                for yy in y.saturating_sub(1)..(y + 2).min(h) {
                    for xx in x.saturating_sub(1)..(x + 2).min(w) {
                        m = m.max(img[(yy * w + xx) * channels + c]);
                    }
                }
                out[(y * w + x) * channels + c] = m;
            }
        }
    }
    out
}

/// One editor's results.
#[derive(Clone, Debug)]
pub struct EditModelReport {
    /// Model name.
    pub model: String,
    /// Trainable parameters.
    pub params: usize,
    /// Test MSE of the rendered edits against the edited images.
    pub mse: f64,
    /// The same for test SIRENs with hidden neurons permuted.
    pub mse_permuted: f64,
    /// The same for test SIRENs with hidden neurons permuted and sign-flipped.
    pub mse_sign_flipped: f64,
    /// Validation MSE of the selected weights.
    pub val_mse: f64,
    /// Steps of the selected weights.
    pub best_step: usize,
    /// Training time (steps and validation), seconds.
    pub train_seconds: f64,
    /// Backend description.
    pub backend: String,
    /// The learning curve.
    pub curve: Vec<Epoch>,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct EditReport {
    /// The INR set file used.
    pub inr_file: PathBuf,
    /// Seconds spent generating it (0 when reused).
    pub generate_seconds: f64,
    /// SIRENs in the train, validation and test splits.
    pub sizes: (usize, usize, usize),
    /// Test MSE of the unedited SIRENs (Δ = 0) against the edited images.
    pub unedited_mse: f64,
    /// Per model.
    pub models: Vec<EditModelReport>,
    /// Learning curves (PNG).
    pub plot: PathBuf,
    /// Original render, target and each model's edit for a few test SIRENs (PNG).
    pub grid: PathBuf,
    /// Where the edited test SIRENs were written, if asked.
    pub edited: Option<PathBuf>,
    /// The state dicts of the edited test SIRENs, if asked.
    pub edited_state_dicts: Vec<PathBuf>,
}

/// Runs the comparison: 80/10/10 split by index, the target of each SIREN the dilation of its
/// own render on the grid, Adam with warm-up on the pixel MSE, the best validation MSE kept;
/// test MSE plain, with permuted and with permuted + sign-flipped SIRENs.
pub fn edit_inr(config: &EditConfig, backend: &dyn Backend) -> Result<EditReport> {
    config.validate()?;
    let (path, generate_seconds) =
        inr_file(&config.inrs, &config.cache_dir, config.progress, backend)?;
    let set = if config.reads_state_dicts() {
        let options = crate::torchfile::ReadOptions {
            cache_dir: Some(config.cache_dir.clone()),
            progress: config.progress,
            ..Default::default()
        };
        Some(crate::torchfile::read_set(
            &path,
            crate::spec::NetActivation::Sin,
            &options,
        )?)
    } else {
        None
    };
    let file = match &set {
        Some(s) => s.file.clone(),
        None => NetworkFile::read(&path, None)?,
    };
    let spec = file.spec.clone();
    let n = file.networks.batch();
    if n < 10 {
        return Err(Error::Input(format!(
            "{} holds {n} SIRENs; at least 10 are needed",
            path.display()
        )));
    }
    let (h, w) = config.editor.grid;
    let c = spec.n_out();
    let per = h * w * c;
    let coords = crate::siren::grid_coords(h, w);
    let renders = crate::siren::render(backend, &spec, &file.networks, &coords)?;
    let targets: Vec<f64> = renders
        .data
        .chunks(per)
        .flat_map(|img| match config.edit {
            Edit::Dilate => dilate(img, h, w, c),
        })
        .collect();
    let all = Dataset::new(file.networks.clone(), Tensor::new(vec![n, per], targets)?)?;
    let (n_train, n_val) = (n * 8 / 10, n / 10);
    let idx = |r: std::ops::Range<usize>| r.collect::<Vec<_>>();
    let (train, val) = (
        all.select(&idx(0..n_train))?,
        all.select(&idx(n_train..n_train + n_val))?,
    );
    let test_idx = idx(n_train + n_val..n);
    let test = all.select(&test_idx)?;
    let moved = |symmetry, salt| -> Result<Dataset> {
        let mut a = Augment::for_activation(spec.activation, 0, config.schedule.seed ^ salt);
        a.symmetry = symmetry;
        Dataset::new(
            a.apply(&spec, &test.inputs, 1, &test_idx)?,
            test.targets.clone(),
        )
    };
    let test_p = moved(crate::group::Symmetry::Permutation, 0xc0)?;
    let test_s = moved(crate::group::Symmetry::Sign, 0xd0)?;
    let test_renders: Vec<f64> = test_idx
        .iter()
        .flat_map(|&i| renders.data[i * per..(i + 1) * per].to_vec())
        .collect();
    let unedited_mse = Metric::Mse.eval(&test_renders, &test.targets.data, per)?;
    std::fs::create_dir_all(&config.out_dir).map_err(|e| Error::io(&config.out_dir, e))?;
    let mut models = Vec::new();
    let mut shown: Vec<Vec<f64>> = Vec::new();
    let mut edited = None;
    let mut edited_state_dicts = Vec::new();
    for (k, &kind) in config.models.iter().enumerate() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.schedule.seed);
        let mut model: Model = kind.config(&config.editor).build(&spec, &mut rng)?;
        let fit_config = config.schedule.fit_config(
            kind.name(),
            LossKind::Mse,
            Metric::Mse,
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
                Some(crate::checkpoint::Task::EditInr),
                None,
            )?;
        }
        let train_seconds = t0.elapsed().as_secs_f64();
        let mse_of = |d: &Dataset| -> Result<(f64, Vec<f64>)> {
            let p = predict(&model, backend, d, 64)?;
            Ok((Metric::Mse.eval(&p, &d.targets.data, per)?, p))
        };
        let (mse, p) = mse_of(&test)?;
        shown.push(p[..config.examples.min(test.len()) * per].to_vec());
        let best = report.curve.get(report.best_epoch.saturating_sub(1));
        models.push(EditModelReport {
            model: kind.name().into(),
            params: model.num_params(),
            mse,
            mse_permuted: mse_of(&test_p)?.0,
            mse_sign_flipped: mse_of(&test_s)?.0,
            val_mse: best.map_or(f64::NAN, |e| e.val_metric),
            best_step: best.map_or(0, |e| e.step),
            train_seconds,
            backend: backend.describe(),
            curve: report.curve,
        });
        let wanted = config.save_edited.is_some() || config.save_edited_state_dicts.is_some();
        let nets = if k == 0 && wanted {
            Some(edited_networks(&model, backend, &test.inputs)?)
        } else {
            None
        };
        if let (Some(nets), Some(dir), Some(set)) = (&nets, &config.save_edited_state_dicts, &set) {
            edited_state_dicts = set.write_state_dicts(dir, nets, &test_idx)?;
        }
        if let (Some(nets), Some(out)) = (nets, &config.save_edited) {
            let saved = NetworkFile {
                spec: spec.clone(),
                networks: nets,
                labels: file
                    .labels
                    .as_ref()
                    .map(|l| test_idx.iter().map(|&i| l[i]).collect()),
                images: (c == 1)
                    .then(|| Tensor::new(vec![test.len(), h, w], test.targets.data.clone()))
                    .transpose()?,
                metadata: [(
                    "edit".to_string(),
                    format!("{} dilation of {} test SIRENs", kind.name(), path.display()),
                )]
                .into_iter()
                .collect(),
            };
            saved.write(out)?;
            edited = Some(out.clone());
        }
        model.release(backend);
    }
    // The grid: per shown test SIREN, its render, the target, then each editor's render.
    let mut rows = Vec::new();
    for e in 0..config.examples.min(test.len()) {
        let i = test_idx[e];
        let mut row = vec![
            Picture::new(h, w, c, renders.data[i * per..(i + 1) * per].to_vec())?,
            Picture::new(h, w, c, test.targets.data[e * per..(e + 1) * per].to_vec())?,
        ];
        for s in &shown {
            row.push(Picture::new(h, w, c, s[e * per..(e + 1) * per].to_vec())?);
        }
        rows.push(row);
    }
    let grid = config.out_dir.join("edits.png");
    save_grid(&grid, &rows, 8)?;
    let curves: Vec<(&str, &[Epoch])> = models
        .iter()
        .map(|m| (m.model.as_str(), m.curve.as_slice()))
        .collect();
    let plot = config.out_dir.join("curves.png");
    crate::plot::learning_curves(&plot, "validation MSE", &curves)?;
    Ok(EditReport {
        inr_file: path,
        generate_seconds,
        sizes: (train.len(), val.len(), test.len()),
        unedited_mse,
        models,
        plot,
        grid,
        edited,
        edited_state_dicts,
    })
}

impl EditReport {
    /// The report as a text table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<14} {:>9} {:>10} {:>9} {:>10} {:>13} {:>10} {:>6} {:>9}  {}\n",
            "model",
            "params",
            "test MSE",
            "unedited",
            "permuted",
            "perm+sign",
            "val MSE",
            "step",
            "train s",
            "backend"
        );
        for m in &self.models {
            s += &format!(
                "{:<14} {:>9} {:>10.5} {:>9.5} {:>10.5} {:>13.5} {:>10.5} {:>6} {:>9.1}  {}\n",
                m.model,
                m.params,
                m.mse,
                self.unedited_mse,
                m.mse_permuted,
                m.mse_sign_flipped,
                m.val_mse,
                m.best_step,
                m.train_seconds,
                m.backend
            );
        }
        s
    }
}
