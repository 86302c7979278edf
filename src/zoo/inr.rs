//! SIREN INR sets (SPEC §1.4, §6.2): SIRENs 2 -> 32 -> 32 -> 1 with hidden sin(30·z), each fitted
//! to one procedural glyph image (10 classes) and stored with its label as a network file.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::layout::Layout;
use super::net::Net;
use super::netfile::NetworkFile;
use super::task::{ImageSet, SIDE};
use crate::error::{Error, Result};
use crate::spec::{NetActivation, NetworkSpec};

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
}

impl InrConfig {
    /// 500 Adam steps at learning rate 1e-3.
    pub fn new(n: usize, seed: u64) -> Self {
        InrConfig {
            n,
            seed,
            steps: 500,
            learning_rate: 1e-3,
        }
    }
}

/// The SIREN architecture of the set.
pub fn siren_spec() -> NetworkSpec {
    NetworkSpec::mlp(&[2, 32, 32, 1], NetActivation::Sin).expect("fixed widths are valid")
}

/// The pixel-centre coordinates in [−1, 1]², row-major (x fastest), as (x, y) pairs.
fn coordinates() -> Vec<f32> {
    let t = |i: usize| -1.0 + 2.0 * i as f32 / (SIDE - 1) as f32;
    (0..SIDE * SIDE)
        .flat_map(|p| [t(p % SIDE), t(p / SIDE)])
        .collect()
}

/// SIREN initialisation (Sitzmann et al. 2020): first layer U(±1/n_in), later layers
/// U(±√(6/n_in)/30), biases U(±1/√n_in).
fn init_row(layout: &Layout, rng: &mut impl Rng) -> Vec<f32> {
    let mut row = vec![0f32; layout.row_len()];
    for (i, l) in layout.spec().layers.iter().enumerate() {
        let n = l.n_in as f32;
        let w = if i == 0 {
            1.0 / n
        } else {
            (6.0 / n).sqrt() / 30.0
        };
        let (kernel, bias) = layout.kernel_bias_mut(&mut row, i);
        kernel.iter_mut().for_each(|v| *v = rng.random_range(-w..w));
        let b = 1.0 / n.sqrt();
        bias.iter_mut().for_each(|v| *v = rng.random_range(-b..b));
    }
    row
}

/// Fits one SIREN to `image` (256 pixels) by full-batch Adam on the mean squared error;
/// returns the row and the final error.
pub fn fit(
    net: &Net,
    coords: &[f32],
    image: &[f32],
    cfg: &InrConfig,
    rng: &mut impl Rng,
) -> (Vec<f32>, f32) {
    let mut row = init_row(net.layout(), rng);
    let n = image.len();
    let p = row.len();
    let (mut m1, mut m2) = (vec![0f32; p], vec![0f32; p]);
    let mut grad = vec![0f32; p];
    let mut mse = f32::INFINITY;
    for step in 1..=cfg.steps {
        let trace = net.forward(&row, coords, n, None, true);
        let d: Vec<f32> = trace.logits.iter().zip(image).map(|(y, t)| y - t).collect();
        mse = d.iter().map(|v| v * v).sum::<f32>() / n as f32;
        let dy = d.iter().map(|v| 2.0 * v / n as f32).collect();
        grad.iter_mut().for_each(|g| *g = 0.0);
        net.backward(&row, &trace, n, dy, &mut grad);
        let t = step as i32;
        for j in 0..p {
            m1[j] = 0.9 * m1[j] + 0.1 * grad[j];
            m2[j] = 0.999 * m2[j] + 0.001 * grad[j] * grad[j];
            let mh = m1[j] / (1.0 - 0.9f32.powi(t));
            let vh = m2[j] / (1.0 - 0.999f32.powi(t));
            row[j] -= cfg.learning_rate * mh / (vh.sqrt() + 1e-8);
        }
    }
    (row, mse)
}

/// Fits `cfg.n` SIRENs in parallel; `on_done` is called after each. Returns the set (labels
/// included, mean error in the metadata) and each fit's final mean squared error.
pub fn generate(cfg: &InrConfig, on_done: &(dyn Fn() + Sync)) -> Result<(NetworkFile, Vec<f32>)> {
    if cfg.n == 0 || cfg.steps == 0 {
        return Err(Error::Input(format!("unusable INR settings: {cfg:?}")));
    }
    let spec = siren_spec();
    let layout = Layout::for_spec(&spec);
    let net = Net::new(&layout, 1, 1)?;
    let images = ImageSet::generate(cfg.n, &mut ChaCha8Rng::seed_from_u64(cfg.seed));
    let coords = coordinates();
    let fits: Vec<(Vec<f32>, f32)> = (0..cfg.n)
        .into_par_iter()
        .map(|i| {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            rng.set_stream(i as u64 + 1);
            let f = fit(&net, &coords, images.image(i), cfg, &mut rng);
            on_done();
            f
        })
        .collect();
    let rows: Vec<f32> = fits.iter().flat_map(|(r, _)| r.iter().copied()).collect();
    let mse: Vec<f32> = fits.iter().map(|f| f.1).collect();
    let mut metadata = HashMap::new();
    metadata.insert(
        "task".into(),
        "glyphs16: SIREN fits of 16x16 glyph images, pixel centres in [-1, 1]^2".into(),
    );
    metadata.insert(
        "mean_mse".into(),
        (mse.iter().sum::<f32>() / mse.len() as f32).to_string(),
    );
    let file = NetworkFile {
        networks: layout.to_weight_space(&rows)?,
        spec,
        labels: Some(images.labels.iter().map(|&l| l as usize).collect()),
        metadata,
    };
    Ok((file, mse))
}
