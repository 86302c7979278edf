//! Shared test helpers.

use std::path::PathBuf;

use monomial_nfn::backend::gpu::{AdapterChoice, Gpu};

/// The GPU backend, or None (with the reason printed) when no adapter exists.
/// With `MNFN_REQUIRE_GPU=1` a missing adapter fails the test instead.
#[allow(dead_code)]
pub fn gpu_or_skip() -> Option<Gpu> {
    match Gpu::new(&AdapterChoice::default()) {
        Ok(g) => Some(g),
        Err(e) => {
            if std::env::var("MNFN_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("MNFN_REQUIRE_GPU=1 but no GPU backend: {e}");
            }
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

/// Every golden file shipped in tests/goldens.
#[allow(dead_code)]
pub fn golden_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/goldens");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/goldens exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    v.sort();
    assert_eq!(v.len(), 24, "the shared golden set has 24 files");
    v
}

/// A small invariant ReLU Monomial-NFN on 3 -> 5 -> 4 -> 2 MLPs (training tests).
#[allow(dead_code)]
pub fn small_monomial(r: &mut rand_chacha::ChaCha8Rng) -> monomial_nfn::Model {
    use monomial_nfn::{Activation, Init, Model, NetActivation, NetworkSpec, PoolMode, Variant};
    let spec = NetworkSpec::mlp(&[3, 5, 4, 2], NetActivation::Relu).expect("valid widths");
    Model::monomial_invariant(
        &spec,
        1,
        &[4, 3],
        Activation::Relu,
        Activation::Relu,
        Variant::Scale,
        Init::XavierNormal,
        PoolMode::ParamMulL2,
        &[16],
        r,
    )
    .expect("valid model")
}
