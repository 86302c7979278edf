//! The INR-classification models of SPEC §6.2: the paper's hybrid Monomial-NFN (a sign-equivariant
//! HNPS_SirenLinear front end made invariant by abs, Gaussian Fourier features, optional IO
//! position encoding, permutation-equivariant NP/HNP layers with channel dropout, HNPPool and an
//! MLP head with dropout), the same without the front end (the NP and HNP baselines), and an MLP
//! on the flattened weights.

use rand::Rng;

use crate::error::{Error, Result};
use crate::nn::baseline::{PermKind, PermLinear};
use crate::nn::dropout::Dropout;
use crate::nn::fourier::FourierFeatures;
use crate::nn::head::Dense;
use crate::nn::model::{Layer, Model};
use crate::nn::monomial::{MonomialLinear, Variant};
use crate::nn::params::Init;
use crate::nn::pool::{InvariantPool, PoolAxes, PoolMode};
use crate::nn::posenc::PositionEncoding;
use crate::plan::Activation;
use crate::spec::NetworkSpec;

/// The data sets of the paper's INR experiments, for their configurations (SPEC §6.2 table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InrDataset {
    /// MNIST SIRENs (grey, n_L = 1).
    Mnist,
    /// FashionMNIST SIRENs (grey).
    Fashion,
    /// CIFAR-10 SIRENs (RGB, n_L = 3).
    Cifar,
}

/// One INR classifier: every part of SPEC §6.2 that a configuration sets.
#[derive(Clone, Debug, PartialEq)]
pub struct InrClassifierConfig {
    /// Width h of the HNPS_SirenLinear front end 1 → h → h → 1 (None: no front end, the NP/HNP
    /// baselines).
    pub front: Option<usize>,
    /// Initialisation of the front end.
    pub front_init: Init,
    /// Fourier frequencies m (2m channels) and their σ.
    pub fourier: (usize, f64),
    /// IO position encoding (max_freq, bands), if any.
    pub pos_encoding: Option<(f64, usize)>,
    /// The permutation-equivariant layers.
    pub base: PermKind,
    /// Their widths.
    pub widths: Vec<usize>,
    /// Channel dropout after each of them.
    pub feature_dropout: f64,
    /// Head hidden widths.
    pub head: Vec<usize>,
    /// Dropout after each head layer.
    pub head_dropout: f64,
    /// Classes (logits).
    pub classes: usize,
}

impl InrClassifierConfig {
    /// The paper's configuration for `dataset` (SPEC §6.2 table).
    pub fn paper(dataset: InrDataset) -> Self {
        let (front, init, sigma, base, pos, drop, head, head_drop) = match dataset {
            InrDataset::Mnist => (
                64,
                Init::XavierNormal,
                3.0,
                PermKind::Hnp,
                None,
                0.1,
                1000,
                0.1,
            ),
            InrDataset::Fashion => (
                64,
                Init::XavierNormal,
                10.0,
                PermKind::Hnp,
                None,
                0.0,
                500,
                0.5,
            ),
            InrDataset::Cifar => (
                16,
                Init::PytorchDefault,
                10.0,
                PermKind::Np { io_embed: false },
                Some((10.0, 6)),
                0.0,
                1000,
                0.5,
            ),
        };
        InrClassifierConfig {
            front: Some(front),
            front_init: init,
            fourier: (128, sigma),
            pos_encoding: pos,
            base,
            widths: vec![256; 3],
            feature_dropout: drop,
            head: vec![head; 2],
            head_dropout: head_drop,
            classes: 10,
        }
    }

    /// The SIREN spec of `dataset`: 2 → 32 → 32 → 1 (grey) or 3 (RGB), hidden sin.
    pub fn paper_spec(dataset: InrDataset) -> NetworkSpec {
        let out = if dataset == InrDataset::Cifar { 3 } else { 1 };
        NetworkSpec::mlp(&[2, 32, 32, out], crate::spec::NetActivation::Sin)
            .expect("fixed widths are valid")
    }

    /// Builds the model for SIRENs of `spec` (one input channel).
    pub fn build(&self, spec: &NetworkSpec, rng: &mut impl Rng) -> Result<Model> {
        if self.widths.is_empty() || self.classes < 2 {
            return Err(Error::Spec(format!(
                "an INR classifier needs at least one equivariant layer and two classes (widths {:?}, {} classes)",
                self.widths, self.classes
            )));
        }
        let mut layers = Vec::new();
        let mut c = 1;
        if let Some(h) = self.front {
            // SPEC §6.2 item 1: HNPS_SirenLinear 1 → h, sin, h → h, sin, h → 1, abs.
            for (c_out, act) in [
                (h, Activation::Sin),
                (h, Activation::Sin),
                (1, Activation::Abs),
            ] {
                let layer =
                    MonomialLinear::new(spec, c, c_out, Variant::Sign, self.front_init, rng)?;
                layers.push(Layer::Monomial(layer));
                layers.push(Layer::Activation(act));
                c = c_out;
            }
        }
        c = push_encodings(&mut layers, c, self.fourier, self.pos_encoding, rng)?;
        let feature_dropout = Dropout::new(self.feature_dropout)?;
        for &w in &self.widths {
            layers.push(Layer::Perm(PermLinear::new(spec, c, w, self.base, rng)?));
            layers.push(Layer::Activation(Activation::Relu));
            if feature_dropout.p > 0.0 {
                layers.push(Layer::Dropout(feature_dropout));
            }
            c = w;
        }
        let pool = InvariantPool::new(spec, c, PoolMode::Mean, PoolAxes::Hidden)?;
        let n = pool.out_features();
        layers.push(Layer::Pool(pool));
        push_head(
            &mut layers,
            n,
            &self.head,
            self.head_dropout,
            self.classes,
            rng,
        )?;
        Ok(Model::new(spec.clone(), 1, layers))
    }
}

/// Appends Gaussian Fourier features (m frequencies at σ) to `c` channels and, if asked, the IO
/// position encoding (max_freq, bands); returns the channels after them.
pub(crate) fn push_encodings(
    layers: &mut Vec<Layer>,
    c: usize,
    (m, sigma): (usize, f64),
    pos_encoding: Option<(f64, usize)>,
    rng: &mut impl Rng,
) -> Result<usize> {
    let ff = FourierFeatures::new(c, m, sigma, rng)?;
    let mut c = ff.c_out();
    layers.push(Layer::Fourier(ff));
    if let Some((max_freq, bands)) = pos_encoding {
        let pe = PositionEncoding {
            c_in: c,
            max_freq,
            bands,
        };
        c = pe.c_out();
        layers.push(Layer::PosEncoding(pe));
    }
    Ok(c)
}

/// The MLP baseline on flattened weights: hidden ReLU layers with dropout, then logits.
pub fn mlp_classifier(
    spec: &NetworkSpec,
    hidden: &[usize],
    dropout: f64,
    classes: usize,
    rng: &mut impl Rng,
) -> Result<Model> {
    let n: usize = spec
        .layers
        .iter()
        .map(|l| l.n_out * l.n_in * l.f() + l.n_out)
        .sum();
    let mut layers = Vec::new();
    push_head(&mut layers, n, hidden, dropout, classes, rng)?;
    Ok(Model::new(spec.clone(), 1, layers))
}

/// Dense(→h), ReLU, Dropout for each hidden width, then Dense(→classes).
fn push_head(
    layers: &mut Vec<Layer>,
    mut n: usize,
    hidden: &[usize],
    dropout: f64,
    classes: usize,
    rng: &mut impl Rng,
) -> Result<()> {
    let dropout = Dropout::new(dropout)?;
    for &h in hidden {
        layers.push(Layer::Dense(Dense::new(n, h, rng)?));
        layers.push(Layer::Activation(Activation::Relu));
        if dropout.p > 0.0 {
            layers.push(Layer::Dropout(dropout));
        }
        n = h;
    }
    layers.push(Layer::Dense(Dense::new(n, classes, rng)?));
    Ok(())
}
