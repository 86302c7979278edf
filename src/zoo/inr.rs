//! SIREN INR sets (SPEC §1.4, §6.2): SIRENs 2 -> 32 -> 32 -> 1 with hidden sin(30·z), each fitted
//! to one procedural 16×16 glyph image (10 classes, pixel grid in 'ij' order) and stored with its
//! label and image as a network file. All fits of a chunk run as one batched plan
//! (`siren::fit`) on any backend.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::netfile::NetworkFile;
use super::task::{ImageSet, SIDE};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::siren::{self, FitSettings};
use crate::spec::{NetActivation, NetworkSpec};
use crate::tensor::Tensor;

/// What `mnfn inr generate` does.
#[derive(Clone, Copy, Debug)]
pub struct InrConfig {
    /// Number of INRs (one image each).
    pub n: usize,
    /// Seed of the images and of every fit.
    pub seed: u64,
    /// Full-batch Adam steps per fit.
    pub steps: usize,
    /// Adam learning rate.
    pub learning_rate: f32,
    /// SIRENs fitted together in one plan.
    pub chunk: usize,
}

impl InrConfig {
    /// 500 Adam steps at learning rate 1e-3, 250 SIRENs per plan.
    pub fn new(n: usize, seed: u64) -> Self {
        InrConfig {
            n,
            seed,
            steps: 500,
            learning_rate: 1e-3,
            chunk: 250,
        }
    }
}

/// The SIREN architecture of the set.
pub fn siren_spec() -> NetworkSpec {
    NetworkSpec::mlp(&[2, 32, 32, 1], NetActivation::Sin).expect("fixed widths are valid")
}

/// SIREN initialisation (Sitzmann et al. 2020) of one parameter row (per layer W then b):
/// first layer U(±1/n_in), later layers U(±√(6/n_in)/30), biases U(±1/√n_in).
fn init_row(widths: &[usize], rng: &mut impl Rng) -> Vec<f64> {
    let mut row = Vec::new();
    for (i, w) in widths.windows(2).enumerate() {
        let n = w[0] as f64;
        let bound = if i == 0 {
            1.0 / n
        } else {
            (6.0 / n).sqrt() / 30.0
        };
        row.extend((0..w[0] * w[1]).map(|_| rng.random_range(-bound..bound)));
        let b = 1.0 / n.sqrt();
        row.extend((0..w[1]).map(|_| rng.random_range(-b..b)));
    }
    row
}

/// Peak signal-to-noise ratio in dB of a fit with mean squared error `mse`, for the glyphs'
/// nominal intensity range [0, 1].
pub fn psnr(mse: f64) -> f64 {
    -10.0 * mse.max(1e-30).log10()
}

/// Fits `cfg.n` SIRENs on `backend`, `cfg.chunk` at a time as one batched plan; `on_done(k)`
/// reports k more finished fits. Returns the set (labels and images included, PSNR in the
/// metadata) and each fit's final mean squared error.
pub fn generate(
    cfg: &InrConfig,
    backend: &dyn Backend,
    on_done: &dyn Fn(usize),
) -> Result<(NetworkFile, Vec<f64>)> {
    if cfg.n == 0 || cfg.steps == 0 || cfg.chunk == 0 {
        return Err(Error::Input(format!(
            "an INR set needs n ≥ 1, steps ≥ 1 and chunk ≥ 1 (got n {}, steps {}, chunk {})",
            cfg.n, cfg.steps, cfg.chunk
        )));
    }
    let spec = siren_spec();
    let widths = siren::widths(&spec)?;
    let images =
        ImageSet::generate_with_noise(cfg.n, false, &mut ChaCha8Rng::seed_from_u64(cfg.seed));
    let coords = siren::grid_coords(SIDE, SIDE);
    let settings = FitSettings {
        steps: cfg.steps,
        learning_rate: cfg.learning_rate as f64,
    };
    let (mut rows, mut mse) = (Vec::new(), Vec::new());
    let all: Vec<usize> = (0..cfg.n).collect();
    for chunk in all.chunks(cfg.chunk) {
        let mut init = Vec::new();
        let mut targets = Vec::new();
        for &i in chunk {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            rng.set_stream(i as u64 + 1);
            init.extend(init_row(&widths, &mut rng));
            targets.extend(images.image(i).iter().map(|&v| v as f64));
        }
        let (r, e) = siren::fit(backend, &spec, init, &targets, &coords, settings)?;
        rows.extend(r);
        mse.extend(e);
        on_done(chunk.len());
    }
    let db: Vec<f64> = mse.iter().map(|&e| psnr(e)).collect();
    let mut metadata = HashMap::new();
    metadata.insert(
        "task".into(),
        "glyphs16: SIREN fits of noise-free 16x16 glyph images, 'ij' pixel grid linspace(-1, 1)"
            .into(),
    );
    metadata.insert("seed".into(), cfg.seed.to_string());
    metadata.insert(
        "mean_mse".into(),
        (mse.iter().sum::<f64>() / mse.len() as f64).to_string(),
    );
    metadata.insert(
        "mean_psnr_db".into(),
        (db.iter().sum::<f64>() / db.len() as f64).to_string(),
    );
    metadata.insert(
        "min_psnr_db".into(),
        db.iter().fold(f64::INFINITY, |a, &b| a.min(b)).to_string(),
    );
    let pixels = images.pixels.iter().map(|&v| v as f64).collect();
    let file = NetworkFile {
        networks: siren::unpack(&spec, &rows)?,
        spec,
        labels: Some(images.labels.iter().map(|&l| l as usize).collect()),
        images: Some(Tensor::new(vec![cfg.n, SIDE, SIDE], pixels)?),
        metadata,
    };
    Ok((file, mse))
}

/// Renders networks `indices` of a SIREN file on an h×w grid ('ij', linspace(−1, 1)) as
/// pictures (channels = the SIRENs' outputs).
pub fn render_pictures(
    backend: &dyn Backend,
    file: &NetworkFile,
    indices: &[usize],
    h: usize,
    w: usize,
) -> Result<Vec<crate::picture::Picture>> {
    let n = file.networks.batch();
    if let Some(&i) = indices.iter().find(|&&i| i >= n) {
        return Err(Error::Input(format!(
            "network {i} out of range for a file of {n}"
        )));
    }
    let picked = crate::train::Dataset::new(
        file.networks.clone(),
        Tensor::new(vec![n, 1], vec![0.0; n])?,
    )?
    .select(indices)?
    .inputs;
    let out = siren::render(backend, &file.spec, &picked, &siren::grid_coords(h, w))?;
    let c = file.spec.n_out();
    out.data
        .chunks(h * w * c)
        .map(|d| crate::picture::Picture::new(h, w, c, d.to_vec()))
        .collect()
}

/// The stored image of network `index` as a picture, when the file has images.
pub fn stored_picture(file: &NetworkFile, index: usize) -> Option<crate::picture::Picture> {
    let t = file.images.as_ref()?;
    let (h, w) = (t.shape[1], t.shape[2]);
    let data = t.data.get(index * h * w..(index + 1) * h * w)?.to_vec();
    crate::picture::Picture::new(h, w, 1, data).ok()
}
