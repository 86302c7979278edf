//! Small valid files of every format the engine reads, for the malformed-input table
//! (tests/malformed.rs) and the mutation fuzzer (tests/fuzz.rs) to break.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use monomial_nfn::checkpoint::{self, Task};
use monomial_nfn::zoo::{generate, npy, Arch, GenerateConfig, NetworkFile, Zoo};
use monomial_nfn::{
    Activation, Init, Model, NetActivation, NetworkSpec, PoolMode, Tensor, Variant, WeightSpace,
};
use rand::SeedableRng;

/// Networks in the generated zoo.
pub const ZOO_N: usize = 4;

fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(seed)
}

/// A zoo directory (weights.npy, layout.csv, metrics.csv.gz) of `ZOO_N` tiny-trained Small-CNN-Zoo
/// ReLU CNNs, written as `mnfn zoo generate` writes it (a few steps each: seconds, not minutes).
pub fn write_zoo(dir: &Path) {
    let cfg = GenerateConfig {
        train_images: 64,
        test_images: 32,
        batch: 8,
        steps: (2, 3),
        ..GenerateConfig::new(Arch::CnnZoo, NetActivation::Relu, ZOO_N, 7)
    };
    let zoo = generate(&cfg, &|| {}).expect("tiny zoo generates");
    Zoo::write(dir, &zoo.layout, &zoo.weights, &zoo.metrics).expect("zoo writes");
}

/// A split file (1-D int64 `.npy`) ordering the zoo's networks.
pub fn write_split(path: &Path) {
    npy::write_indices(path, &[3, 1, 0, 2]).expect("split writes");
}

/// A network file of three ReLU MLPs 2 -> 3 -> 1 (`mnfn zoo export` style).
pub fn write_mlp_networks(path: &Path) {
    let spec = NetworkSpec::mlp(&[2, 3, 1], NetActivation::Relu).expect("valid widths");
    let networks = WeightSpace::random(&spec, 3, 1, &mut rng(1));
    NetworkFile {
        spec,
        networks,
        labels: None,
        images: None,
        metadata: Default::default(),
    }
    .write(path)
    .expect("network file writes");
}

/// An INR set file: two SIRENs 2 -> 4 -> 4 -> 1 (sin) with labels and 4×4 images.
pub fn write_inrs(path: &Path) {
    let spec = NetworkSpec::mlp(&[2, 4, 4, 1], NetActivation::Sin).expect("valid widths");
    let networks = WeightSpace::random(&spec, 2, 1, &mut rng(2));
    let images = Tensor::new(vec![2, 4, 4], (0..32).map(|i| i as f64 / 32.0).collect())
        .expect("image tensor");
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("mean_mse".to_string(), "0.01".to_string());
    NetworkFile {
        spec,
        networks,
        labels: Some(vec![3, 7]),
        images: Some(images),
        metadata,
    }
    .write(path)
    .expect("INR file writes");
}

/// A small invariant Monomial-NFN over `spec` (widths 4, 3; head 8).
pub fn small_model(spec: &NetworkSpec) -> Model {
    Model::monomial_invariant(
        spec,
        1,
        &[4, 3],
        Activation::Relu,
        Activation::Relu,
        Variant::Scale,
        Init::XavierNormal,
        PoolMode::ParamMulL2,
        &[8],
        &mut rng(3),
    )
    .expect("valid model")
}

/// A predict-gen checkpoint of a small model over Small-CNN-Zoo CNNs (fits [`write_zoo`]).
pub fn write_cnn_checkpoint(path: &Path) {
    let model = small_model(&NetworkSpec::cnn_zoo(NetActivation::Relu));
    checkpoint::save(path, &model, "Monomial-NFN", Some(Task::PredictGen), None)
        .expect("checkpoint writes");
}

/// A checkpoint of a small model over the MLPs of [`write_mlp_networks`] (a small file).
pub fn write_mlp_checkpoint(path: &Path) {
    let spec = NetworkSpec::mlp(&[2, 3, 1], NetActivation::Relu).expect("valid widths");
    checkpoint::save(
        path,
        &small_model(&spec),
        "Monomial-NFN",
        Some(Task::PredictGen),
        None,
    )
    .expect("checkpoint writes");
}

/// A shipped golden file by name (tests/goldens).
pub fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/goldens")
        .join(name)
}
