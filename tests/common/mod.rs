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

/// Precision of a backend under test: what its tolerances are scaled to.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    F64,
    F32,
}

/// One backend of a suite that runs on every backend ([`on_every_backend!`]).
#[allow(dead_code)]
pub struct TestBackend {
    pub backend: Box<dyn monomial_nfn::Backend>,
    pub precision: Precision,
}

#[allow(dead_code)]
impl TestBackend {
    pub fn cpu_f64() -> Self {
        TestBackend {
            backend: Box::new(monomial_nfn::Cpu::<f64>::new()),
            precision: Precision::F64,
        }
    }

    pub fn cpu_f32() -> Self {
        TestBackend {
            backend: Box::new(monomial_nfn::Cpu::<f32>::new()),
            precision: Precision::F32,
        }
    }

    /// The GPU (f32), or None as [`gpu_or_skip`] decides (`MNFN_REQUIRE_GPU=1` fails instead).
    pub fn gpu() -> Option<Self> {
        gpu_or_skip().map(|g| TestBackend {
            backend: Box::new(g),
            precision: Precision::F32,
        })
    }

    /// The backend itself.
    pub fn get(&self) -> &dyn monomial_nfn::Backend {
        self.backend.as_ref()
    }

    /// `f64` on an f64 backend, `f32` on the f32 ones (CPU f32 and the GPU).
    pub fn tol(&self, f64: f64, f32: f64) -> f64 {
        match self.precision {
            Precision::F64 => f64,
            Precision::F32 => f32,
        }
    }
}

/// Expands `fn name(b) { body }` into a module `name` of three tests, `cpu_f64`, `cpu_f32` and
/// `gpu`, each running `body` with `b: &TestBackend` (the GPU one skips, or fails under
/// `MNFN_REQUIRE_GPU=1`, without an adapter). Tolerances come from `b.tol(f64, f32)`.
#[macro_export]
macro_rules! on_every_backend {
    ($(#[doc = $doc:expr])* fn $name:ident($b:ident) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($b: &$crate::common::TestBackend) $body

            #[test]
            fn cpu_f64() {
                body(&$crate::common::TestBackend::cpu_f64());
            }

            #[test]
            fn cpu_f32() {
                body(&$crate::common::TestBackend::cpu_f32());
            }

            #[test]
            fn gpu() {
                if let Some(b) = $crate::common::TestBackend::gpu() {
                    body(&b);
                }
            }
        }
    };
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
    monomial_on(&[3, 5, 4, 2], &[16], r)
}

/// An invariant ReLU Monomial-NFN (channels 4, 3; ParamMulL2 pool; a ReLU head of widths
/// `head`) on ReLU MLPs of `widths`.
#[allow(dead_code)]
pub fn monomial_on(
    widths: &[usize],
    head: &[usize],
    r: &mut rand_chacha::ChaCha8Rng,
) -> monomial_nfn::Model {
    use monomial_nfn::{Activation, Init, Model, NetActivation, NetworkSpec, PoolMode, Variant};
    let spec = NetworkSpec::mlp(widths, NetActivation::Relu).expect("valid widths");
    Model::monomial_invariant(
        &spec,
        1,
        &[4, 3],
        Activation::Relu,
        Activation::Relu,
        Variant::Scale,
        Init::XavierNormal,
        PoolMode::ParamMulL2,
        head,
        r,
    )
    .expect("valid model")
}

/// The largest |a − b| over two parameter lists and the largest |a|: their difference and the
/// scale it is judged against.
#[allow(dead_code)]
pub fn worst_and_scale(a: &[f64], b: &[f64]) -> (f64, f64) {
    assert_eq!(a.len(), b.len(), "parameter counts differ");
    let scale = a.iter().fold(0f64, |m, v| m.max(v.abs()));
    let worst = a.iter().zip(b).fold(0f64, |m, (u, v)| m.max((u - v).abs()));
    (worst, scale)
}

/// Every parameter value of a model, in order.
#[allow(dead_code)]
pub fn flat_params(m: &monomial_nfn::Model) -> Vec<f64> {
    m.layers()
        .iter()
        .filter_map(monomial_nfn::nn::model::layer_params)
        .flat_map(|p| {
            p.iter()
                .flat_map(|(_, t)| t.data.clone())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// SIREN-sized random weights: the first layer scaled by `first`, later layers by `rest`, so
/// that sin(30·z) features stay moderate.
#[allow(dead_code)]
pub fn sirens(
    spec: &monomial_nfn::NetworkSpec,
    n: usize,
    seed: u64,
    (first, rest): (f64, f64),
) -> monomial_nfn::WeightSpace {
    use rand::SeedableRng;
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut ws = monomial_nfn::WeightSpace::random(spec, n, 1, &mut r);
    for (i, (w, b)) in ws.weights.iter_mut().zip(ws.biases.iter_mut()).enumerate() {
        let s = if i == 0 { first } else { rest };
        w.data.iter_mut().for_each(|v| *v *= s);
        b.data.iter_mut().for_each(|v| *v *= s);
    }
    ws
}

/// Largest |a − b| relative to max |b|.
#[allow(dead_code)]
pub fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let m = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    a.iter()
        .zip(b)
        .fold(0.0f64, |e, (x, y)| e.max((x - y).abs()))
        / m
}

/// Runs the `mnfn` binary with `args` and the extra environment `env`: its exit code and its
/// stderr followed by its stdout. A panic fails the test.
#[allow(dead_code)]
pub fn mnfn(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mnfn"))
        .args(args)
        .envs(env.iter().copied())
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("panicked"), "mnfn {args:?}: {text}");
    (out.status.code(), text)
}
