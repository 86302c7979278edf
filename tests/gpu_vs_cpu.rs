//! The GPU backend agrees with the CPU f64 reference on random specs, shapes and values.

mod common;

use monomial_nfn::nn::head::Dense;
use monomial_nfn::{
    Activation, Cpu, Init, InvariantPool, Layer, LayerShape, Model, MonomialLinear, NetActivation,
    NetworkSpec, Output, PoolAxes, PoolMode, Variant, WeightSpace,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_mlp(rng: &mut ChaCha8Rng) -> NetworkSpec {
    let l = rng.random_range(2..=5);
    let widths: Vec<usize> = (0..=l).map(|_| rng.random_range(1..=9) | 1).collect();
    NetworkSpec::mlp(&widths, NetActivation::Relu).unwrap()
}

fn random_cnn(rng: &mut ChaCha8Rng) -> NetworkSpec {
    let k = if rng.random::<bool>() { 3 } else { 5 };
    let (a, b, c) = (
        rng.random_range(1..=3),
        rng.random_range(2..=7),
        rng.random_range(2..=6),
    );
    let layers = vec![
        LayerShape::conv(b, a, k, k),
        LayerShape::conv(c, b, 3, 3),
        LayerShape::dense(rng.random_range(1..=4), c),
    ];
    NetworkSpec::new(layers, NetActivation::Relu).unwrap()
}

/// Largest |gpu - cpu| relative to max|cpu|, over every output tensor.
fn rel_err(a: &Output, b: &Output) -> f64 {
    let flat = |o: &Output| -> Vec<Vec<f64>> {
        match o {
            Output::Features(t) => vec![t.data.clone()],
            Output::Space(s) => s
                .weights
                .iter()
                .chain(&s.biases)
                .map(|t| t.data.clone())
                .collect(),
        }
    };
    flat(a)
        .iter()
        .zip(flat(b))
        .map(|(x, y)| {
            let m = y.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
            x.iter()
                .zip(&y)
                .fold(0.0f64, |e, (p, q)| e.max((p - q).abs()))
                / m
        })
        .fold(0.0, f64::max)
}

fn equivariant_model(
    spec: &NetworkSpec,
    c_in: usize,
    c_out: usize,
    variant: Variant,
    rng: &mut ChaCha8Rng,
) -> Model {
    let layer = MonomialLinear::new(spec, c_in, c_out, variant, Init::PytorchDefault, rng).unwrap();
    Model::new(
        spec.clone(),
        c_in,
        vec![Layer::Monomial(layer), Layer::Activation(Activation::Tanh)],
    )
}

#[test]
fn gpu_matches_cpu_f64_on_random_equivariant_layers() {
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let cpu = Cpu::<f64>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for case in 0..12 {
        let spec = if case % 2 == 0 {
            random_mlp(&mut rng)
        } else {
            random_cnn(&mut rng)
        };
        let (c_in, c_out) = (rng.random_range(1..=17), rng.random_range(1..=17));
        let batch = [1, 33][case % 2];
        let variant = if case % 3 == 0 {
            Variant::Sign
        } else {
            Variant::Scale
        };
        let model = equivariant_model(&spec, c_in, c_out, variant, &mut rng);
        let x = WeightSpace::random(&spec, batch, c_in, &mut rng);
        let err = rel_err(
            &model.forward(&gpu, &x).unwrap(),
            &model.forward(&cpu, &x).unwrap(),
        );
        assert!(
            err <= 1e-5,
            "case {case} {spec:?} c {c_in}->{c_out} batch {batch}: rel err {err:.3e}"
        );
    }
}

#[test]
fn gpu_matches_cpu_f64_on_invariant_models_and_every_pool_mode() {
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let cpu = Cpu::<f64>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let modes = [
        PoolMode::L1,
        PoolMode::L2,
        PoolMode::L2Square,
        PoolMode::ParamMulL2,
        PoolMode::Mean,
    ];
    for (case, mode) in modes.into_iter().enumerate() {
        let spec = if case % 2 == 0 {
            random_cnn(&mut rng)
        } else {
            random_mlp(&mut rng)
        };
        let c = rng.random_range(1..=5);
        let mut pool = InvariantPool::new(&spec, c, mode, PoolAxes::Hidden).unwrap();
        pool.randomize(&mut rng);
        let width = pool.out_features();
        let layers = vec![
            Layer::Monomial(
                MonomialLinear::new(&spec, 1, c, Variant::Scale, Init::XavierNormal, &mut rng)
                    .unwrap(),
            ),
            Layer::Activation(Activation::Relu),
            Layer::Pool(pool),
            Layer::Dense(Dense::new(width, 7, &mut rng).unwrap()),
            Layer::Activation(Activation::Sin),
            Layer::Dense(Dense::new(7, 1, &mut rng).unwrap()),
            Layer::Activation(Activation::Sigmoid),
        ];
        let model = Model::new(spec.clone(), 1, layers);
        for batch in [1, 33] {
            let x = WeightSpace::random(&spec, batch, 1, &mut rng);
            let err = rel_err(
                &model.forward(&gpu, &x).unwrap(),
                &model.forward(&cpu, &x).unwrap(),
            );
            assert!(
                err <= 1e-4,
                "{mode:?} {spec:?} batch {batch}: rel err {err:.3e}"
            );
        }
    }
}

/// The pool kernel gives each output column one workgroup of 256 threads, which takes rows in
/// chunks of 256 and entry elements in strides of 256: entries of 32 channels × 3×3 kernels
/// (E = 288) take two strides, 20×20 hidden weights (R = 400) two chunks, one-value bias entries
/// leave most threads idle; every mode must match the CPU.
#[test]
fn gpu_pools_match_cpu_f64_past_a_workgroup_of_rows_and_entries() {
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let cpu = Cpu::<f64>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let cnn = NetworkSpec::new(
        vec![
            LayerShape::conv(4, 1, 3, 3),
            LayerShape::conv(5, 4, 3, 3),
            LayerShape::dense(2, 5),
        ],
        NetActivation::Relu,
    )
    .unwrap();
    let mlp = NetworkSpec::mlp(&[2, 20, 20, 2], NetActivation::Relu).unwrap();
    for (spec, c) in [(cnn, 32), (mlp, 3)] {
        for mode in [
            PoolMode::L1,
            PoolMode::L2,
            PoolMode::L2Square,
            PoolMode::ParamMulL2,
            PoolMode::Mean,
        ] {
            let mut pool = InvariantPool::new(&spec, c, mode, PoolAxes::Hidden).unwrap();
            pool.randomize(&mut rng);
            let model = Model::new(spec.clone(), c, vec![Layer::Pool(pool)]);
            let x = WeightSpace::random(&spec, 3, c, &mut rng);
            let err = rel_err(
                &model.forward(&gpu, &x).unwrap(),
                &model.forward(&cpu, &x).unwrap(),
            );
            assert!(err <= 1e-5, "{mode:?} C={c}: rel err {err:.3e}");
        }
    }
}

#[test]
fn gpu_matches_cpu_f64_on_the_paper_models() {
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let cpu = Cpu::<f64>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for act in [NetActivation::Relu, NetActivation::Tanh] {
        for eps in [1e-12, 0.0] {
            let mut model = Model::monomial_cnn_zoo(act, &mut rng).unwrap();
            model.set_norm_eps(eps).unwrap();
            let mut x = WeightSpace::random(model.spec(), 9, 1, &mut rng);
            // Dead units: zero and near-zero entries, which the clamp and ε = 0 treat apart.
            x.weights[1].data[..300].iter_mut().for_each(|v| *v = 0.0);
            x.weights[2].data[..300]
                .iter_mut()
                .for_each(|v| *v *= 1e-20);
            let err = rel_err(
                &model.forward(&gpu, &x).unwrap(),
                &model.forward(&cpu, &x).unwrap(),
            );
            assert!(err <= 1e-4, "{act:?} eps {eps}: rel err {err:.3e}");
        }
    }
}

#[test]
fn gpu_sin_is_accurate_far_outside_minus_pi_pi() {
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let spec = NetworkSpec::mlp(&[1, 64, 1], NetActivation::Sin).unwrap();
    let mut x = WeightSpace::zeros(&spec, 1, 1);
    for (i, v) in x.weights[0].data.iter_mut().enumerate() {
        *v = (i as f64 - 32.0) * 97.3; // up to ±3,100 rad
    }
    let model = Model::new(spec.clone(), 1, vec![Layer::Activation(Activation::Sin)]);
    let y = model.forward(&gpu, &x).unwrap().space().unwrap();
    for (a, v) in y.weights[0].data.iter().zip(&x.weights[0].data) {
        let v32 = *v as f32 as f64;
        assert!(
            (a - v32.sin()).abs() < 2e-4,
            "sin({v}) = {a} on the GPU, want {}",
            v32.sin()
        );
    }
}

#[test]
fn gpu_reduce_matches_cpu_on_random_strided_sums_and_broadcasts() {
    use monomial_nfn::plan::{PlanBuilder, ReduceOp};
    use monomial_nfn::Backend;
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let cpu = Cpu::<f64>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    for case in 0..36 {
        // Every third case sums long enough for the tiled pipeline (reduce::k_tile), split into
        // chunks past a few thousand terms, with K both under and over one tile of 32.
        let long = case % 3 == 2;
        let (outer, mid, inner) = (
            rng.random_range(1..=5),
            rng.random_range(1..=4),
            rng.random_range(1..=if long { 40 } else { 7 }),
        );
        let r = match case % 3 {
            0 => 1,
            1 => rng.random_range(1..=6),
            _ => rng.random_range(64..=6000),
        };
        // Input strides: contiguous over (a, s, r) or with a broadcast (zero) stride.
        let (mut xr, mut xs, mut xa) = (inner, r * inner, mid * r * inner);
        match case % 4 {
            1 => xs = 0,
            2 => xa = 0,
            3 => (xr, xs, xa) = (mid * inner, inner, mid * r * inner),
            _ => {}
        }
        let x_len = (outer - 1) * xa + (mid - 1) * xs + (r - 1) * xr + inner;
        let y_len = outer * mid * inner;
        let mut pb = PlanBuilder::new();
        let x = pb.input(x_len);
        let y = pb.input(y_len);
        pb.reduce(ReduceOp {
            x,
            y,
            outer,
            mid,
            inner,
            r,
            x_strides: [xa, xs, xr],
            y_strides: [mid * inner, inner],
            alpha: rng.random_range(-2.0..2.0),
            accumulate: case % 2 == 1,
        });
        let plan = pb.finish(vec![y]);
        let inputs: Vec<Vec<f64>> = [x_len, y_len]
            .iter()
            .map(|&n| (0..n).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        let a = gpu.run(&plan, &inputs).unwrap();
        let b = cpu.run(&plan, &inputs).unwrap();
        // f32 sums of r terms in [-1, 1], in different orders: errors grow about as √r.
        let tol = 1e-5 * (r as f64).sqrt();
        for (p, q) in a[0].iter().zip(&b[0]) {
            assert!((p - q).abs() <= tol, "case {case} (r = {r}): {p} vs {q}");
        }
    }
}

/// op(A)·op(B) (+ bias) (+ C) for an m×k×n GEMM on random values, by the GPU and by the CPU
/// f64 reference.
#[allow(clippy::too_many_arguments)]
fn gemm_on_both(
    gpu: &monomial_nfn::backend::gpu::Gpu,
    rng: &mut ChaCha8Rng,
    (m, k, n): (usize, usize, usize),
    trans_a: bool,
    trans_b: bool,
    accumulate: bool,
    bias: bool,
) -> (Vec<f64>, Vec<f64>) {
    use monomial_nfn::plan::{GemmOp, Op, PlanBuilder};
    use monomial_nfn::Backend;
    let mut pb = PlanBuilder::new();
    let a = pb.input(m * k);
    let b = pb.input(k * n);
    let bi = pb.input(n);
    let c = pb.input(m * n);
    pb.push(Op::Gemm(GemmOp {
        a,
        b,
        bias: bias.then_some(bi),
        c,
        m,
        k,
        n,
        accumulate,
        trans_a,
        trans_b,
    }));
    let plan = pb.finish(vec![c]);
    let inputs: Vec<Vec<f64>> = [m * k, k * n, n, m * n]
        .iter()
        .map(|&len| (0..len).map(|_| rng.random_range(-1.0..1.0)).collect())
        .collect();
    let g = gpu.run(&plan, &inputs).unwrap();
    let h = Cpu::<f64>::new().run(&plan, &inputs).unwrap();
    (g[0].clone(), h[0].clone())
}

#[test]
fn gpu_gemm_matches_cpu_on_every_tile_shape_and_transpose() {
    use monomial_nfn::backend::gpu::gemm_block;
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    // Shapes ragged against every tile, covering each tile shape the backend picks, with odd
    // dimensions (scalar loads) and multiples of 4 (vec4 loads of every operand layout).
    let shapes = [
        (5, 37, 5),
        (70, 21, 20),
        (33, 40, 144),
        (4100, 19, 7),
        (4097, 33, 30),
        (4099, 18, 70),
        (8, 36, 4),
        (68, 20, 28),
        (36, 44, 144),
        (4100, 12, 8),
        (4096, 36, 32),
        (4104, 20, 68),
        (11_000, 9, 129),
        (11_264, 12, 132),
        (160, 21, 160),
        (33_000, 9, 256),
        (144, 65_536, 144),
        (9, 65_536, 144),
        (144, 65_536, 5),
    ];
    let blocks: std::collections::BTreeSet<_> = shapes
        .iter()
        .map(|&(m, k, n)| gemm_block(m, k, n))
        .collect();
    assert_eq!(blocks.len(), 7, "every tile shape is exercised: {blocks:?}");
    for (case, &shape) in shapes.iter().enumerate() {
        for flags in 0..4 {
            let (trans_a, trans_b) = (flags & 1 == 1, flags & 2 == 2);
            let (accumulate, bias) = (case % 2 == 0, case % 3 == 0);
            let (g, h) = gemm_on_both(&gpu, &mut rng, shape, trans_a, trans_b, accumulate, bias);
            let tol = 4e-5 * (shape.1 as f64).sqrt();
            for (i, (p, q)) in g.iter().zip(&h).enumerate() {
                assert!(
                    (p - q).abs() <= tol,
                    "{shape:?} transposes ({trans_a}, {trans_b}) entry {i}: {p} vs {q}"
                );
            }
        }
    }
}

#[test]
fn gpu_long_gemms_and_sums_match_cpu() {
    // Inner dimensions far past one invocation's loop budget (the backend chunks them).
    use monomial_nfn::plan::{PlanBuilder, ReduceOp};
    use monomial_nfn::Backend;
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let cpu = Cpu::<f64>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    for (trans_a, accumulate, bias) in [(false, false, true), (true, true, false)] {
        let (g, h) = gemm_on_both(
            &gpu,
            &mut rng,
            (5, 70_001, 3),
            trans_a,
            false,
            accumulate,
            bias,
        );
        for (p, q) in g.iter().zip(&h) {
            assert!((p - q).abs() <= 0.05, "trans_a {trans_a}: {p} vs {q}");
        }
        let r = 9_000;
        let mut pb = PlanBuilder::new();
        let x = pb.input(r * 2 * 3);
        let y = pb.input(2 * 3);
        pb.reduce(ReduceOp {
            x,
            y,
            outer: 2,
            mid: 1,
            inner: 3,
            r,
            x_strides: [3, 0, 6],
            y_strides: [3, 0],
            alpha: 0.5,
            accumulate,
        });
        let plan = pb.finish(vec![y]);
        let inputs: Vec<Vec<f64>> = [r * 6, 6]
            .iter()
            .map(|&len| (0..len).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        let g = gpu.run(&plan, &inputs).unwrap();
        let h = cpu.run(&plan, &inputs).unwrap();
        for (p, q) in g[0].iter().zip(&h[0]) {
            assert!(
                (p - q).abs() <= 5e-3,
                "sum accumulate {accumulate}: {p} vs {q}"
            );
        }
    }
}

/// Losses and sums of squares spread over many workgroups and combine their partial sums in a
/// second pass, giving the same bits on every run: 600 items take 3 workgroups, 262,144 = 256·1,024 all 1,024 of one item per
/// thread, 300,001 take 586 of two items per thread, softmax rows (3 and 10 classes) likewise;
/// sums of squares both overwrite and accumulate.
#[test]
fn gpu_losses_and_squared_norms_match_cpu() {
    use monomial_nfn::plan::{LossKind, LossOp, Op, PlanBuilder, SumSquaresOp};
    use monomial_nfn::Backend;
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let cpu = Cpu::<f64>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    let kinds = [
        LossKind::HalfSumSquares,
        LossKind::Mse,
        LossKind::Bce,
        LossKind::SoftmaxCe { classes: 3 },
        LossKind::SoftmaxCe { classes: 10 },
    ];
    for len in [600, 262_144, 300_001] {
        for kind in kinds {
            let len = match kind {
                LossKind::SoftmaxCe { classes } => len - len % classes,
                _ => len,
            };
            let mut pb = PlanBuilder::new();
            let pred = pb.input(len);
            let target = pb.input(len);
            let (loss, dpred, norm) = (pb.scratch(1), pb.scratch(len), pb.scratch(1));
            pb.push(Op::Loss(LossOp {
                pred,
                target: Some(target),
                loss,
                dpred,
                kind,
                len,
            }));
            for (x, accumulate) in [(dpred, false), (pred, true)] {
                pb.push(Op::SumSquares(SumSquaresOp {
                    x,
                    out: norm,
                    len,
                    accumulate,
                }));
            }
            let plan = pb.finish(vec![loss, dpred, norm]);
            // Probabilities for BCE; one-hot rows for softmax CE.
            let p: Vec<f64> = (0..len).map(|_| rng.random_range(0.05..0.95)).collect();
            let t: Vec<f64> = match kind {
                LossKind::SoftmaxCe { classes } => (0..len)
                    .map(|i| f64::from(u8::from(i % classes == (i / classes) % classes)))
                    .collect(),
                _ => (0..len).map(|_| rng.random_range(0.0..1.0)).collect(),
            };
            let a = gpu.run(&plan, &[p.clone(), t.clone()]).unwrap();
            // The partial sums combine in a fixed order: the same bits on every run.
            assert_eq!(a, gpu.run(&plan, &[p.clone(), t.clone()]).unwrap());
            let b = cpu.run(&plan, &[p, t]).unwrap();
            for (out, (x, y)) in a.iter().zip(&b).enumerate() {
                let err = common::max_rel(x, y);
                assert!(
                    err <= 1e-5,
                    "{kind:?} len {len} output {out}: rel err {err:.3e}"
                );
            }
        }
    }
}

/// The pool gradient gives each entry vector a segment of threads (E rounded up to a power of
/// two, at most 256) and reduces its norms and uᵀh cooperatively: entries of 5 (8 lanes, 32 per
/// workgroup), 288 and 640 elements (256 lanes, two and three elements per lane), over a
/// thousand entries, every norm and head, exact (ε = 0) and clamped norms, zero entries and
/// entries of size 1e-30, overwriting and accumulating dx; each entry's gradient (and each row
/// of an affine piece's γ and β gradients, summed over up to 70 entries) must match the CPU's
/// to 1e-5 of its largest element, with the same bits on every run.
#[test]
fn gpu_pool_gradients_match_cpu_on_long_tiny_and_zero_entries() {
    use monomial_nfn::plan::{Norm, Op, PlanBuilder, PoolGradOp, PoolOp};
    use monomial_nfn::Backend;
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let cpu = Cpu::<f64>::new();
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    // (batch, r, s, channels, f)
    let shapes = [(3, 70, 4, 5, 1), (2, 3, 5, 32, 9), (4, 40, 9, 16, 40)];
    // (norm, square, affine, eps)
    let modes = [
        (Norm::L1, false, false, 1e-12),
        (Norm::L2, false, false, 1e-12),
        (Norm::L2, false, false, 0.0),
        (Norm::L2, true, false, 1e-12),
        (Norm::L2, false, true, 1e-12),
        (Norm::None, false, false, 0.0),
    ];
    for (case, (batch, r, s, channels, f)) in shapes.into_iter().enumerate() {
        for (mode, &(norm, square, affine, eps)) in modes.iter().enumerate() {
            let accumulate = (case + mode) % 2 == 1;
            let e = channels * f;
            let (offset, width) = (2, 2 + s * f + 1);
            let len = batch * r * s * e;
            let mut pb = PlanBuilder::new();
            let x = pb.input(len);
            let dout = pb.input(batch * channels * width);
            let dx = pb.input(len);
            let (gamma, beta) = (pb.input(e), pb.input(e));
            // The affine rows: Σ_r ĝ ⊙ u and Σ_r ĝ per batch item and position s.
            let rows = (pb.scratch(batch * s * e), pb.scratch(batch * s * e));
            let fwd = PoolOp {
                x,
                out: dout,
                gamma: affine.then_some(gamma),
                beta: affine.then_some(beta),
                batch,
                r,
                s,
                channels,
                f,
                norm,
                eps,
                square,
                width,
                offset,
            };
            pb.push(Op::PoolGrad(PoolGradOp {
                fwd,
                dout,
                dx,
                accumulate,
                affine_rows: affine.then_some(rows),
            }));
            let outputs = if affine {
                vec![dx, rows.0, rows.1]
            } else {
                vec![dx]
            };
            let plan = pb.finish(outputs);
            let mut random =
                |n: usize| -> Vec<f64> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
            // Every seventh entry vector zero, every seventh from the fourth on 1e-30 in size.
            let mut xs = random(len);
            for (k, v) in xs.chunks_mut(e).enumerate() {
                let scale = [0.0, 1.0, 1.0, 1e-30, 1.0, 1.0, 1.0][k % 7];
                v.iter_mut().for_each(|a| *a *= scale);
            }
            let inputs = vec![
                xs,
                random(batch * channels * width),
                random(len),
                random(e),
                random(e),
            ];
            let a = gpu.run(&plan, &inputs).unwrap();
            assert_eq!(
                a,
                gpu.run(&plan, &inputs).unwrap(),
                "the same bits on every run"
            );
            let b = cpu.run(&plan, &inputs).unwrap();
            for (out, (g, c)) in a.iter().zip(&b).enumerate() {
                for (k, (gv, cv)) in g.chunks(e).zip(c.chunks(e)).enumerate() {
                    let err = common::max_rel(gv, cv);
                    assert!(
                        err <= 1e-5,
                        "shape {case} {norm:?} square {square} affine {affine} eps {eps} \
                         accumulate {accumulate}: output {out} entry {k}: rel err {err:.3e}"
                    );
                }
            }
        }
    }
}
