//! The batched SIREN op, its backward and the dropout mask: the CPU f64 reference against a
//! direct evaluation and finite differences, f32 and the GPU against it, and batched fits
//! equal to one-at-a-time fits.

mod common;

use monomial_nfn::autodiff::append_backward;
use monomial_nfn::plan::{LossKind, LossOp, Op, Plan, PlanBuilder, SirenOp};
use monomial_nfn::siren::{self, FitSettings, OMEGA};
use monomial_nfn::{Backend, Cpu, NetActivation, NetworkSpec, Scalar, WeightSpace};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Parameter rows drawn like a SIREN's initialisation, twice as wide (first layer U(±2/n_in),
/// later U(±2√(6/n_in)/ω)), so that ω·z has the magnitudes of real SIRENs.
fn random_rows(widths: &[usize], n: usize, r: &mut ChaCha8Rng) -> Vec<f64> {
    let mut rows = Vec::new();
    for _ in 0..n {
        for (i, w) in widths.windows(2).enumerate() {
            let n_in = w[0] as f64;
            let s = if i == 0 {
                2.0 / n_in
            } else {
                2.0 * (6.0 / n_in).sqrt() / OMEGA
            };
            rows.extend((0..w[0] * w[1] + w[1]).map(|_| r.random_range(-s..s)));
        }
    }
    rows
}

/// The SIREN of `row` at `x`, written out directly.
fn direct(widths: &[usize], row: &[f64], x: &[f64]) -> Vec<f64> {
    let mut a = x.to_vec();
    let mut at = 0;
    for (i, w) in widths.windows(2).enumerate() {
        let (n_in, n_out) = (w[0], w[1]);
        let z: Vec<f64> = (0..n_out)
            .map(|j| {
                row[at + n_out * n_in + j]
                    + (0..n_in)
                        .map(|k| row[at + j * n_in + k] * a[k])
                        .sum::<f64>()
            })
            .collect();
        at += n_out * (n_in + 1);
        a = if i + 2 < widths.len() {
            z.iter().map(|v| (OMEGA * v).sin()).collect()
        } else {
            z
        };
    }
    a
}

/// Forward + ½Σout² + backward to the parameters; outputs (out, ∂params).
fn grad_plan(widths: &[usize], n: usize, rows: Vec<f64>, coords: Vec<f64>) -> Plan {
    let mut pb = PlanBuilder::new();
    let params = pb.trainable(rows, "siren");
    let pts = pb.param(coords);
    let out = pb.siren(params, pts, n, widths, OMEGA).unwrap();
    let forward = pb.num_ops();
    let out_len = pb.len_of(out);
    let (loss, dpred) = (pb.scratch(1), pb.scratch(out_len));
    pb.push(Op::Loss(LossOp {
        pred: out,
        target: None,
        loss,
        dpred,
        kind: LossKind::HalfSumSquares,
        len: out_len,
    }));
    let back = append_backward(&mut pb, forward, &[(out, dpred)], false).unwrap();
    assert_eq!(back.params.len(), 1);
    let g = back.params[0].1;
    pb.finish(vec![out, g, loss])
}

const SHAPES: [&[usize]; 4] = [&[2, 32, 32, 1], &[2, 5, 3], &[1, 4, 6, 7, 2], &[3, 64, 3]];

#[test]
fn siren_op_matches_a_direct_evaluation() {
    let cpu = Cpu::<f64>::new();
    let mut r = rng(1);
    for widths in SHAPES {
        let n = 3;
        let rows = random_rows(widths, n, &mut r);
        let coords: Vec<f64> = (0..7 * widths[0])
            .map(|_| r.random_range(-1.0..1.0))
            .collect();
        let plan = grad_plan(widths, n, rows.clone(), coords.clone());
        let out = &cpu.run(&plan, &[]).unwrap()[0];
        let d = SirenOp::params_per_sample(widths);
        let nl = widths[widths.len() - 1];
        for b in 0..n {
            for (p, x) in coords.chunks(widths[0]).enumerate() {
                let want = direct(widths, &rows[b * d..(b + 1) * d], x);
                let got = &out[(b * 7 + p) * nl..(b * 7 + p + 1) * nl];
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-12, "{widths:?}: {g} vs {w}");
                }
            }
        }
    }
}

#[test]
fn siren_parameter_gradients_match_finite_differences() {
    let cpu = Cpu::<f64>::new();
    let mut r = rng(2);
    for widths in SHAPES {
        let n = 2;
        let rows = random_rows(widths, n, &mut r);
        let coords: Vec<f64> = (0..5 * widths[0])
            .map(|_| r.random_range(-1.0..1.0))
            .collect();
        let outs = cpu
            .run(&grad_plan(widths, n, rows.clone(), coords.clone()), &[])
            .unwrap();
        let grad = &outs[1];
        let loss = |rows: Vec<f64>| {
            let plan = grad_plan(widths, n, rows, coords.clone());
            cpu.run(&plan, &[]).unwrap()[2][0]
        };
        let scale = grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        for _ in 0..12 {
            let i = r.random_range(0..rows.len());
            let h = 1e-6;
            let (mut up, mut down) = (rows.clone(), rows.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (loss(up) - loss(down)) / (2.0 * h);
            assert!(
                (fd - grad[i]).abs() <= 1e-6 * scale.max(1.0),
                "{widths:?} parameter {i}: analytic {} vs finite difference {fd}",
                grad[i]
            );
        }
    }
}

#[test]
fn f32_sin_cos_is_accurate_over_the_siren_range() {
    let mut worst = 0.0f64;
    for i in 0..200_001 {
        let x = -3000.0 + 0.03 * i as f64;
        let (s, c) = (x as f32).sin_cos();
        let xr = (x as f32) as f64;
        worst = worst
            .max((s as f64 - xr.sin()).abs())
            .max((c as f64 - xr.cos()).abs());
    }
    assert!(worst < 5e-7, "worst error {worst}");
    assert_eq!(Scalar::sin_cos(0.0f32), (0.0, 1.0));
}

/// Max |a − b| relative to max |b| over paired buffers.
fn rel_err(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let m = y.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
            x.iter()
                .zip(y)
                .fold(0.0f64, |e, (p, q)| e.max((p - q).abs()))
                / m
        })
        .fold(0.0, f64::max)
}

#[test]
fn f32_cpu_and_gpu_match_the_f64_reference() {
    let cpu = Cpu::<f64>::new();
    let gpu = common::gpu_or_skip();
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(Cpu::<f32>::new())];
    if let Some(g) = gpu {
        backends.push(Box::new(g));
    }
    let mut r = rng(3);
    for widths in SHAPES {
        let n = 4;
        let rows = random_rows(widths, n, &mut r);
        let coords: Vec<f64> = (0..9 * widths[0])
            .map(|_| r.random_range(-1.0..1.0))
            .collect();
        let plan = grad_plan(widths, n, rows, coords);
        let want = cpu.run(&plan, &[]).unwrap();
        for be in &backends {
            let got = be.run(&plan, &[]).unwrap();
            let e = rel_err(&got[..2], &want[..2]);
            assert!(e < 1e-4, "{} {widths:?}: relative error {e}", be.describe());
        }
    }
}

#[test]
fn render_packs_and_unpacks_weight_spaces() {
    let spec = NetworkSpec::mlp(&[2, 6, 5, 1], NetActivation::Sin).unwrap();
    let ws = WeightSpace::random(&spec, 3, 1, &mut rng(4));
    let rows = siren::pack(&spec, &ws).unwrap();
    assert_eq!(siren::unpack(&spec, &rows).unwrap(), ws);
    let coords = siren::grid_coords(3, 4);
    assert_eq!(&coords[..3], &[-1.0, -1.0, -1.0], "'ij' order");
    assert!((coords[3] + 1.0 / 3.0).abs() < 1e-15);
    let img = siren::render(&Cpu::<f64>::new(), &spec, &ws, &coords).unwrap();
    assert_eq!(img.shape, vec![3, 12, 1]);
    let d = SirenOp::params_per_sample(&[2, 6, 5, 1]);
    let want = direct(&[2, 6, 5, 1], &rows[d..2 * d], &coords[2 * 5..2 * 5 + 2]);
    assert!((img.data[12 + 5] - want[0]).abs() < 1e-12);
}

#[test]
fn a_batched_fit_equals_fitting_each_siren_alone() {
    let spec = NetworkSpec::mlp(&[2, 8, 8, 1], NetActivation::Sin).unwrap();
    let widths = siren::widths(&spec).unwrap();
    let coords = siren::grid_coords(5, 5);
    let mut r = rng(5);
    let n = 3;
    let init = random_rows(&widths, n, &mut r);
    let targets: Vec<f64> = (0..n * 25).map(|i| ((i % 7) as f64 / 7.0).sqrt()).collect();
    let settings = FitSettings {
        steps: 60,
        learning_rate: 1e-3,
    };
    let cpu = Cpu::<f64>::new();
    let (rows, mse) = siren::fit(&cpu, &spec, init.clone(), &targets, &coords, settings).unwrap();
    let d = init.len() / n;
    for b in 0..n {
        let (alone, e) = siren::fit(
            &cpu,
            &spec,
            init[b * d..(b + 1) * d].to_vec(),
            &targets[b * 25..(b + 1) * 25],
            &coords,
            settings,
        )
        .unwrap();
        let diff = alone
            .iter()
            .zip(&rows[b * d..(b + 1) * d])
            .fold(0.0f64, |m, (a, c)| m.max((a - c).abs()));
        assert!(diff < 1e-9, "SIREN {b}: batched and alone differ by {diff}");
        assert!((e[0] - mse[b]).abs() < 1e-12);
        // Fitting helped: the error fell below the initial one.
        let start = siren::render(
            &cpu,
            &spec,
            &siren::unpack(&spec, &init[b * d..(b + 1) * d]).unwrap(),
            &coords,
        )
        .unwrap();
        let e0 = start
            .data
            .iter()
            .zip(&targets[b * 25..])
            .map(|(y, t)| (y - t).powi(2))
            .sum::<f64>()
            / 25.0;
        assert!(mse[b] < 0.5 * e0, "SIREN {b}: {} vs initial {e0}", mse[b]);
    }
}

#[test]
fn mask_op_and_its_backward_agree_on_every_backend() {
    let cpu = Cpu::<f64>::new();
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(Cpu::<f32>::new())];
    if let Some(g) = common::gpu_or_skip() {
        backends.push(Box::new(g));
    }
    let mut r = rng(6);
    let (a, s, k) = (3, 5, 4);
    let mut pb = PlanBuilder::new();
    let x: Vec<f64> = (0..a * s * k).map(|_| r.random_range(-1.0..1.0)).collect();
    let xp = pb.trainable(x.clone(), "x");
    let (y, mask) = pb.mask(xp, a, s, k);
    let forward = pb.num_ops();
    let (loss, dpred) = (pb.scratch(1), pb.scratch(a * s * k));
    pb.push(Op::Loss(LossOp {
        pred: y,
        target: None,
        loss,
        dpred,
        kind: LossKind::HalfSumSquares,
        len: a * s * k,
    }));
    let back = append_backward(&mut pb, forward, &[(y, dpred)], false).unwrap();
    let plan = pb.finish(vec![y, back.params[0].1]);
    assert_eq!(plan.inputs, vec![mask]);
    let m: Vec<f64> = (0..a * k)
        .map(|i| if i % 3 == 0 { 0.0 } else { 1.25 })
        .collect();
    let want = cpu.run(&plan, std::slice::from_ref(&m)).unwrap();
    for i in 0..a * s * k {
        let mv = m[(i / (s * k)) * k + i % k];
        assert_eq!(want[0][i], x[i] * mv);
        // ½Σ(x·m)² has gradient x·m².
        assert!((want[1][i] - x[i] * mv * mv).abs() < 1e-15);
    }
    for be in &backends {
        let got = be.run(&plan, std::slice::from_ref(&m)).unwrap();
        assert!(rel_err(&got, &want) < 1e-6, "{}", be.describe());
    }
}

#[test]
fn batched_fits_agree_between_the_gpu_and_the_cpu() {
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let spec = NetworkSpec::mlp(&[2, 8, 8, 1], NetActivation::Sin).unwrap();
    let widths = siren::widths(&spec).unwrap();
    let coords = siren::grid_coords(4, 4);
    let init = random_rows(&widths, 3, &mut rng(9));
    let targets: Vec<f64> = (0..48).map(|i| ((i % 5) as f64 / 5.0).sqrt()).collect();
    let settings = FitSettings {
        steps: 20,
        learning_rate: 1e-3,
    };
    let (want, e_cpu) = siren::fit(
        &Cpu::<f64>::new(),
        &spec,
        init.clone(),
        &targets,
        &coords,
        settings,
    )
    .unwrap();
    let (got, e_gpu) = siren::fit(&gpu, &spec, init, &targets, &coords, settings).unwrap();
    assert!(rel_err(&[got], &[want]) < 1e-4);
    assert!(rel_err(&[e_gpu], &[e_cpu]) < 1e-3);
}
