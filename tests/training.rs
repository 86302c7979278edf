//! Training (issue 3): the Adam kernel matches PyTorch's update on CPU and GPU, steps are
//! deterministic, a model fits 16 samples on both backends, `fit` selects the best epoch and
//! writes its learning curve, and the metrics are right on hand-computed cases.

mod common;

use monomial_nfn::metrics::{kendall_tau, Metric};
use monomial_nfn::plan::{AdamOp, LossKind, PlanBuilder};
use monomial_nfn::train::{fit, AdamConfig, Dataset, FitConfig, Trainer};
use monomial_nfn::{Backend, Cpu, Model, Tensor, WeightSpace};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// PyTorch's Adam/AdamW step for one coordinate (the reference the kernels must match).
#[allow(clippy::too_many_arguments)]
fn torch_adam(p: f64, g: f64, m: f64, v: f64, t: f64, c: &AdamConfig, clip: f64) -> [f64; 3] {
    let mut g = g * clip;
    let mut p = p;
    if c.decoupled {
        p *= 1.0 - c.lr * c.weight_decay;
    } else {
        g += c.weight_decay * p;
    }
    let m = c.beta1 * m + (1.0 - c.beta1) * g;
    let v = c.beta2 * v + (1.0 - c.beta2) * g * g;
    let denom = (v.sqrt() / (1.0 - c.beta2.powf(t)).sqrt()) + c.eps;
    p -= c.lr / (1.0 - c.beta1.powf(t)) * m / denom;
    [p, m, v]
}

/// Runs one Adam op on random buffers; returns (p, m, v) and the inputs.
fn adam_plan(
    backend: &dyn Backend,
    c: &AdamConfig,
    clip: Option<f64>,
    seed: u64,
) -> (Vec<[f64; 3]>, Vec<[f64; 4]>, f64) {
    let n = 300;
    let mut r = rng(seed);
    let init: Vec<[f64; 4]> = (0..n)
        .map(|_| {
            [
                r.random_range(-1.0..1.0),
                r.random_range(-1.0..1.0),
                r.random_range(-0.1..0.1),
                r.random_range(0.0..0.1),
            ]
        })
        .collect();
    let t = 3.0;
    let mut pb = PlanBuilder::new();
    let [p, g, m, v] = [0, 1, 2, 3].map(|_| pb.input(n));
    let hyper = pb.input(3);
    let norm = clip.map(|_| pb.input(1));
    pb.push(monomial_nfn::plan::Op::Adam(AdamOp {
        param: p,
        grad: g,
        m,
        v,
        hyper,
        norm_sq: norm,
        max_norm: clip.unwrap_or(0.0),
        len: n,
        beta1: c.beta1,
        beta2: c.beta2,
        eps: c.eps,
        weight_decay: c.weight_decay,
        decoupled: c.decoupled,
    }));
    let plan = pb.finish(vec![p, m, v]);
    let col = |k: usize| init.iter().map(|x| x[k]).collect::<Vec<_>>();
    let norm_sq: f64 = col(1).iter().map(|x| x * x).sum();
    let mut inputs = vec![
        col(0),
        col(1),
        col(2),
        col(3),
        vec![c.lr, 1.0 - c.beta1.powf(t), 1.0 - c.beta2.powf(t)],
    ];
    if clip.is_some() {
        inputs.push(vec![norm_sq]);
    }
    let out = backend.run(&plan, &inputs).unwrap();
    let clip_factor = clip.map_or(1.0, |mx| (mx / (norm_sq.sqrt() + 1e-6)).min(1.0));
    let got = (0..n).map(|i| [out[0][i], out[1][i], out[2][i]]).collect();
    (got, init, clip_factor)
}

fn adam_configs() -> Vec<(AdamConfig, Option<f64>)> {
    let adam = AdamConfig::default();
    let l2 = AdamConfig {
        weight_decay: 0.1,
        ..AdamConfig::default()
    };
    let adamw = AdamConfig {
        weight_decay: 0.1,
        decoupled: true,
        lr: 3e-3,
        ..AdamConfig::default()
    };
    vec![
        (adam.clone(), None),
        (l2, None),
        (adamw, Some(0.5)),
        (adam, Some(100.0)),
    ]
}

#[test]
fn adam_matches_pytorch_on_cpu_and_gpu() {
    let gpu = common::gpu_or_skip();
    let cpu = Cpu::<f64>::new();
    let mut backends: Vec<(&dyn Backend, f64)> = vec![(&cpu, 1e-12)];
    if let Some(g) = &gpu {
        backends.push((g, 1e-5));
    }
    for (backend, tol) in backends {
        for (k, (c, clip)) in adam_configs().into_iter().enumerate() {
            let (got, init, factor) = adam_plan(backend, &c, clip, k as u64);
            for (i, (o, x)) in got.iter().zip(&init).enumerate() {
                let want = torch_adam(x[0], x[1], x[2], x[3], 3.0, &c, factor);
                for j in 0..3 {
                    assert!(
                        (o[j] - want[j]).abs() <= tol * want[j].abs().max(1.0),
                        "{} config {k} element {i} slot {j}: {} vs {}",
                        backend.describe(),
                        o[j],
                        want[j]
                    );
                }
            }
        }
    }
}

fn small_model(r: &mut ChaCha8Rng) -> Model {
    common::small_monomial(r)
}

fn dataset(model: &Model, n: usize, r: &mut ChaCha8Rng) -> Dataset {
    let inputs = WeightSpace::random(model.spec(), n, 1, r);
    let targets = Tensor::new(
        vec![n, 1],
        (0..n).map(|_| r.random_range(0.2..0.8)).collect(),
    )
    .unwrap();
    Dataset::new(inputs, targets).unwrap()
}

fn run_steps(backend: &dyn Backend, steps: usize) -> Vec<f64> {
    let mut r = rng(5);
    let model = small_model(&mut r);
    let data = dataset(&model, 32, &mut r);
    let config = AdamConfig {
        warmup_steps: 10,
        clip_norm: Some(1.0),
        ..AdamConfig::default()
    };
    let mut t = Trainer::new(&model, backend, 8, LossKind::Bce, config).unwrap();
    for s in 0..steps {
        let idx: Vec<usize> = (0..8).map(|i| (s * 8 + i) % 32).collect();
        t.step(&data.select(&idx).unwrap()).unwrap();
    }
    common::flat_params(&t.model().unwrap())
}

#[test]
fn training_is_bitwise_deterministic_on_cpu_and_gpu() {
    let a = run_steps(&Cpu::<f32>::new(), 50);
    let b = run_steps(&Cpu::<f32>::new(), 50);
    assert_eq!(a, b, "two CPU f32 runs differ");
    let a64 = run_steps(&Cpu::<f64>::new(), 50);
    assert_eq!(
        a64,
        run_steps(&Cpu::<f64>::new(), 50),
        "two CPU f64 runs differ"
    );
    let start = common::flat_params(&small_model(&mut rng(5)));
    assert_ne!(a64, start, "50 steps left the parameters unchanged");
    if let Some(gpu) = common::gpu_or_skip() {
        assert_eq!(
            run_steps(&gpu, 20),
            run_steps(&gpu, 20),
            "two GPU runs differ"
        );
    }
}

/// Parameters after `steps` clipped-Adam steps (ε 1e-3, see
/// `training_over_the_binding_limit_accumulates_parts_to_the_one_pass_step`) on `backend`.
fn clipped_steps(backend: &dyn Backend, steps: usize) -> Vec<f64> {
    let mut r = rng(9);
    let model = small_model(&mut r);
    let data = dataset(&model, 8, &mut r);
    let config = AdamConfig {
        lr: 1e-2,
        eps: 1e-3,
        clip_norm: Some(0.5),
        weight_decay: 1e-2,
        ..AdamConfig::default()
    };
    let mut t = Trainer::new(&model, backend, 8, LossKind::Bce, config).unwrap();
    for _ in 0..steps {
        t.step(&data).unwrap();
    }
    common::flat_params(&t.model().unwrap())
}

/// The GPU runs every parameter tensor's Adam update as one dispatch over shared buffers
/// (`src/backend/gpu/arena.rs`); its steps give the CPU f64 reference's parameters, each
/// tensor's at its own place.
#[test]
fn gpu_training_steps_match_cpu_f64() {
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let want = clipped_steps(&Cpu::<f64>::new(), 3);
    let got = clipped_steps(&gpu, 3);
    let start = common::flat_params(&small_model(&mut rng(9)));
    let (worst, scale) = common::worst_and_scale(&want, &got);
    assert!(
        worst <= 1e-5 * scale,
        "GPU parameters differ from CPU f64 by {worst} (scale {scale})"
    );
    let moved = want.iter().zip(&start).filter(|(u, v)| u != v).count();
    assert!(
        moved * 10 > 9 * want.len(),
        "only {moved} of {} moved",
        want.len()
    );
}

/// The best loss of 400 Adam steps on 16 samples, and the worst of the last 100.
fn overfit(backend: &dyn Backend) -> (f64, f64) {
    let mut r = rng(6);
    let model = small_model(&mut r);
    let data = dataset(&model, 16, &mut r);
    let config = AdamConfig {
        lr: 1e-2,
        ..AdamConfig::default()
    };
    let mut t = Trainer::new(&model, backend, 16, LossKind::Mse, config).unwrap();
    let (mut best, mut late_worst) = (f64::INFINITY, 0.0f64);
    for step in 0..400 {
        t.step(&data).unwrap();
        let loss = t.take_loss_sum().unwrap();
        best = best.min(loss);
        if step >= 300 {
            late_worst = late_worst.max(loss);
        }
    }
    (best, late_worst)
}

/// Once fitted, Adam at lr 1e-2 keeps bouncing: the loss falls from 5e-2 to under 1e-4 by
/// step 140, then wanders up to 1.0e-3–1.7e-3 (CPU f32 and f64, lavapipe), and where step 400
/// lands in that range changes with the last bit of any op. So the test asserts the fit (best
/// loss under 1e-4; 6e-6 to 3e-5 measured) and that it holds (no loss of the last 100 steps
/// over 5e-3), not the loss of one step.
#[test]
fn a_model_fits_16_samples_on_cpu_and_gpu() {
    let check = |name: &str, (best, late): (f64, f64)| {
        assert!(best < 1e-4, "{name}: best loss {best:.3e} in 400 steps");
        assert!(late < 5e-3, "{name}: loss {late:.3e} in the last 100 steps");
    };
    check("CPU f32", overfit(&Cpu::<f32>::new()));
    if let Some(gpu) = common::gpu_or_skip() {
        check("GPU", overfit(&gpu));
    }
}

#[test]
fn fit_selects_the_best_epoch_and_writes_the_curve() {
    let mut r = rng(7);
    let mut model = small_model(&mut r);
    let train = dataset(&model, 40, &mut r);
    let val = dataset(&model, 20, &mut r);
    let dir = std::env::temp_dir().join(format!("mnfn-fit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("curve.csv");
    let config = FitConfig {
        epochs: 6,
        batch: 8,
        csv: Some(csv.clone()),
        ..FitConfig::default()
    };
    let cpu = Cpu::<f32>::new();
    let report = fit(&mut model, &cpu, &train, Some(&val), &config).unwrap();
    assert_eq!(report.curve.len(), 6);
    let best = &report.curve[report.best_epoch - 1];
    assert!(report.curve.iter().all(|e| e.val_metric <= best.val_metric));
    // The model holds the best epoch's parameters.
    let p = monomial_nfn::train::predict(&model, &cpu, &val, 7).unwrap();
    let tau = Metric::KendallTau.eval(&p, &val.targets.data, 1).unwrap();
    assert!(
        (tau - best.val_metric).abs() < 1e-9,
        "{tau} vs {}",
        best.val_metric
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 7, "{text}");
    assert!(text.starts_with("epoch,step,train_loss,val_metric"));
    assert!(report
        .curve
        .iter()
        .all(|e| e.train_loss.is_finite() && e.train_loss > 0.0));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn metrics_match_hand_computed_values() {
    assert!((kendall_tau(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]) - 4.0 / 6.0).abs() < 1e-15);
    // Ties on both sides: τ-b = 4 / sqrt(5·5) (scipy.stats.kendalltau gives 0.8).
    assert!((kendall_tau(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 3.0]) - 0.8).abs() < 1e-15);
    // Constant or non-finite predictions: τ is undefined, never 0.
    assert!(kendall_tau(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    assert!(kendall_tau(&[1.0, f64::NAN, 2.0], &[1.0, 2.0, 3.0]).is_nan());
    let acc = Metric::Accuracy
        .eval(&[0.1, 0.9, 0.8, 0.2], &[0.0, 1.0, 0.0, 1.0], 2)
        .unwrap();
    assert_eq!(acc, 0.5);
    assert_eq!(Metric::Mse.eval(&[1.0, 3.0], &[0.0, 1.0], 1).unwrap(), 2.5);
    assert!(Metric::Mse.eval(&[1.0], &[0.0, 1.0], 1).is_err());
}

#[test]
fn bad_training_input_gives_typed_errors() {
    let mut r = rng(8);
    let model = small_model(&mut r);
    let cpu = Cpu::<f64>::new();
    assert!(Trainer::new(&model, &cpu, 0, LossKind::Bce, AdamConfig::default()).is_err());
    let mut t = Trainer::new(&model, &cpu, 4, LossKind::Bce, AdamConfig::default()).unwrap();
    let data = dataset(&model, 5, &mut r);
    assert!(t.step(&data).is_err(), "wrong batch size accepted");
    let mut bad = data.select(&[0, 1, 2, 3]).unwrap();
    bad.targets.data[2] = f64::NAN;
    assert!(t.step(&bad).is_err(), "NaN target accepted");
    let wrong = Tensor::new(vec![3, 1], vec![0.5; 3]).unwrap();
    assert!(Dataset::new(data.inputs.clone(), wrong).is_err());
    let spec = model.spec().clone();
    let equivariant = Model::new(spec.clone(), 1, vec![model.layers()[0].clone()]);
    assert!(Trainer::new(&equivariant, &cpu, 4, LossKind::Mse, AdamConfig::default()).is_err());
    // A zero batch or a class count that does not divide the outputs.
    let mut m = model.clone();
    let zero = FitConfig {
        batch: 0,
        epochs: 1,
        ..FitConfig::default()
    };
    assert!(fit(&mut m, &cpu, &data, None, &zero).is_err());
    let ce = LossKind::SoftmaxCe { classes: 2 };
    assert!(Trainer::new(&model, &cpu, 4, ce, AdamConfig::default()).is_err());
    assert!(m.set_norm_eps(-1.0).is_err() && m.set_norm_eps(f64::NAN).is_err());
}
