//! Limits of the GPU (issue 13): a batch over the device's buffer limits runs in parts that fit
//! with the result of one pass, for inference and training; a missing adapter under
//! `--backend auto` falls back to the CPU with a warning, and stays an error under `gpu`.

mod common;
#[path = "support/formats.rs"]
mod formats;

use std::path::Path;

use monomial_nfn::backend::gpu::{AdapterChoice, Gpu, MAX_BINDING_ENV, NO_GPU_ENV};
use monomial_nfn::plan::{LossKind, Plan};
use monomial_nfn::train::{train_plan, AdamConfig, Dataset, Trainer};
use monomial_nfn::{Backend, Model, Tensor, WeightSpace};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A ReLU Monomial-NFN on 3 -> 16 -> 16 -> 2 MLPs, whose activations (not its parameters) are
/// its largest buffers, so they grow with the batch.
fn model(r: &mut ChaCha8Rng) -> Model {
    common::monomial_on(&[3, 16, 16, 2], &[8], r)
}

/// Bytes of the largest buffer of `plan` (f32 on the GPU).
fn largest(plan: &Plan) -> u64 {
    plan.bufs.iter().map(|b| (b.len * 4) as u64).max().unwrap()
}

fn limited_gpu(bytes: u64) -> Gpu {
    Gpu::new(&AdapterChoice::default())
        .unwrap()
        .with_max_binding(bytes)
}

#[test]
fn inference_over_the_binding_limit_runs_in_parts_equal_to_one_pass() {
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let mut r = ChaCha8Rng::seed_from_u64(1);
    let m = model(&mut r);
    let x = WeightSpace::random(m.spec(), 13, 1, &mut r);
    let whole = m.forward(&gpu, &x).unwrap().features().unwrap();
    // Parts of at most 4 networks fit; 13 networks do not.
    let small = limited_gpu(largest(&m.plan(4).unwrap()));
    assert!(!small.fits(&m.plan(13).unwrap()));
    assert!(small.fits(&m.plan(4).unwrap()));
    let parts = m.forward(&small, &x).unwrap().features().unwrap();
    assert_eq!(parts.shape, whole.shape);
    assert_eq!(
        parts.data, whole.data,
        "split inference differs from one pass"
    );
}

/// Three optimizer steps with the batch split into parts give the parameters and losses of
/// one-pass steps, up to f32 rounding (gradient clipping on, so the global norm is of the
/// accumulated gradients).
#[test]
fn training_over_the_binding_limit_accumulates_parts_to_the_one_pass_step() {
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let mut r = ChaCha8Rng::seed_from_u64(2);
    let m = model(&mut r);
    let batch = 16;
    let x = WeightSpace::random(m.spec(), batch, 1, &mut r);
    let y: Vec<f64> = (0..batch).map(|_| r.random_range(0.0..1.0)).collect();
    let data = Dataset::new(x, Tensor::new(vec![batch, 1], y).unwrap()).unwrap();
    // Adam's ε at 1e-3: with the default 1e-8, components whose gradient is rounding noise
    // (about 1e-9 of the largest) sit where Adam's step is most sensitive (lr/4ε per unit of
    // gradient), and two correct summation orders moved such parameters 8e-5 apart on an NVIDIA
    // H200 (3e-5 of the largest). A part lost or counted twice still moves every parameter
    // with a real gradient by O(lr).
    let config = AdamConfig {
        lr: 1e-2,
        eps: 1e-3,
        clip_norm: Some(0.5),
        ..AdamConfig::default()
    };
    let plan_of = |b| train_plan(&m, b, LossKind::Mse, &config).unwrap().plan;
    let limit = largest(&plan_of(4));
    assert!(
        largest(&plan_of(batch)) > limit,
        "activations must dominate"
    );
    let small = limited_gpu(limit);
    let mut one = Trainer::new(&m, &gpu, batch, LossKind::Mse, config.clone()).unwrap();
    let mut split = Trainer::new(&m, &small, batch, LossKind::Mse, config).unwrap();
    assert_eq!(one.parts(), 1);
    assert!(split.parts() >= 4, "{} parts", split.parts());
    for _ in 0..3 {
        one.step(&data).unwrap();
        split.step(&data).unwrap();
    }
    let (l1, l2) = (one.take_loss_sum().unwrap(), split.take_loss_sum().unwrap());
    assert!(
        (l1 - l2).abs() <= 1e-5 * l1.abs().max(1e-3),
        "loss {l1} vs {l2}"
    );
    let (a, b) = (one.model().unwrap(), split.model().unwrap());
    let (pa, pb) = (common::flat_params(&a), common::flat_params(&b));
    let (worst, scale) = common::worst_and_scale(&pa, &pb);
    assert!(
        worst <= 1e-5 * scale,
        "parameters differ by {worst} (scale {scale})"
    );
    // The same parameters moved: training did something.
    let start = common::flat_params(&m);
    assert!(start.iter().zip(&pb).any(|(u, v)| u != v));
}

/// A path as a command-line argument.
fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `mnfn predict` with no adapter: `auto` warns and runs on the CPU, `gpu` is an error that
/// says why, neither panics.
#[test]
fn without_an_adapter_auto_falls_back_to_the_cpu_and_gpu_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, nets) = (
        dir.path().join("m.safetensors"),
        dir.path().join("n.safetensors"),
    );
    formats::write_mlp_checkpoint(&ckpt);
    formats::write_mlp_networks(&nets);
    let run = |backend: &str| {
        let out = dir.path().join(format!("{backend}.csv"));
        let args = ["predict", "--model", p(&ckpt), "--networks", p(&nets)];
        let args = [&args[..], &["--backend", backend, "--out", p(&out)]].concat();
        common::mnfn(&args, &[(NO_GPU_ENV, "1")])
    };
    let (code, text) = run("auto");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("warning: no GPU"), "{text}");
    assert!(text.contains(NO_GPU_ENV), "{text}");
    assert!(dir.path().join("auto.csv").exists());
    let (code, text) = run("gpu");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("gpu: no GPU adapter"), "{text}");
}

/// `mnfn bench` on a GPU whose binding limit is below the batch's buffers runs (split) forward
/// passes and training steps; a malformed limit is a setting error.
#[test]
fn bench_runs_batches_over_the_binding_limit() {
    if common::gpu_or_skip().is_none() {
        return;
    }
    let bench = |limit: &str| {
        let args = [
            "bench",
            "--model",
            "monomial",
            "--batches",
            "4",
            "--backend",
            "gpu",
        ];
        common::mnfn(
            &[&args[..], &["--seconds", "0.05"]].concat(),
            &[(MAX_BINDING_ENV, limit)],
        )
    };
    // A middle layer's features take 2,304 entries × 144 channels × 4 bytes = 1.3 MB per
    // network: 4 networks do not fit in 2 MB, one does (the largest parameter is 83 kB).
    let (code, text) = bench("2000000");
    assert_eq!(code, Some(0), "{text}");
    for pass in ["forward", "train"] {
        assert!(
            text.lines().any(|l| l.contains(pass) && l.contains(" 4 ")),
            "{text}"
        );
    }
    let (code, text) = bench("lots");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(MAX_BINDING_ENV) && text.contains("lots"),
        "{text}"
    );
}

/// A device that is lost after its first run: every later run, read and write fails with a
/// device error, as wgpu reports a lost GPU.
struct LostAfterOneRun<'a> {
    gpu: &'a Gpu,
    runs: std::cell::Cell<usize>,
}

impl Backend for LostAfterOneRun<'_> {
    fn describe(&self) -> String {
        "a GPU lost after one run".into()
    }
    fn run(&self, plan: &Plan, inputs: &[Vec<f64>]) -> monomial_nfn::Result<Vec<Vec<f64>>> {
        self.runs.set(self.runs.get() + 1);
        if self.runs.get() > 1 {
            return Err(monomial_nfn::Error::Device("device lost".into()));
        }
        self.gpu.run(plan, inputs)
    }
    fn read(&self, _: &Plan, _: &[usize]) -> monomial_nfn::Result<Vec<Vec<f64>>> {
        Err(monomial_nfn::Error::Device("device lost".into()))
    }
    fn write(&self, _: &Plan, _: usize, _: &[f64]) -> monomial_nfn::Result<()> {
        Err(monomial_nfn::Error::Device("device lost".into()))
    }
    fn release(&self, plan: &Plan) {
        self.gpu.release(plan)
    }
}

/// Under `auto`, a GPU lost in the middle of a job reruns the whole job on the CPU, with the
/// CPU's result; without `auto` the device error stands; other errors are never retried.
#[test]
fn a_gpu_lost_mid_run_reruns_the_job_on_the_cpu_only_under_auto() {
    use monomial_nfn::backend::with_cpu_fallback;
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let mut r = ChaCha8Rng::seed_from_u64(9);
    let m = model(&mut r);
    let spec = m.spec().clone();
    let input = WeightSpace::random(&spec, 3, 1, &mut r);
    // Two forward passes: the first runs on the device, the second finds it lost.
    let job = |b: &dyn Backend| -> monomial_nfn::Result<Vec<f64>> {
        m.forward(b, &input)?;
        Ok(m.forward(b, &input)?.features()?.data)
    };
    let lost = || LostAfterOneRun {
        gpu: &gpu,
        runs: std::cell::Cell::new(0),
    };
    let on_cpu = job(&monomial_nfn::Cpu::<f32>::new()).unwrap();
    assert_eq!(with_cpu_fallback(true, &lost(), job).unwrap(), on_cpu);
    let e = with_cpu_fallback(false, &lost(), job).unwrap_err();
    assert!(matches!(e, monomial_nfn::Error::Device(_)), "{e}");
    let bad = |_: &dyn Backend| -> monomial_nfn::Result<()> {
        Err(monomial_nfn::Error::Input("bad input".into()))
    };
    let e = with_cpu_fallback(true, &lost(), bad).unwrap_err();
    assert!(matches!(e, monomial_nfn::Error::Input(_)), "{e}");
}
