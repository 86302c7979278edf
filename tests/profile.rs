//! `Gpu::profile` (`mnfn bench --profile`): every dispatch of a plan is timed and attributed to
//! its kernel family, GEMMs with their FLOPs, the rest with the bytes they bind.

mod common;

use monomial_nfn::{Backend, NetActivation};
use rand::{Rng, SeedableRng};

#[test]
fn profile_times_every_kernel_family_of_a_forward_plan() {
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let model = monomial_nfn::Model::monomial_cnn_zoo(NetActivation::Relu, &mut rng).unwrap();
    let plan = model.plan(4).unwrap();
    let inputs: Vec<Vec<f64>> = plan
        .inputs
        .iter()
        .map(|&id| {
            (0..plan.bufs[id].len)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect()
        })
        .collect();
    let profile = gpu.profile(&plan, &inputs, 2).unwrap();
    let families: Vec<&str> = profile.ops.iter().map(|o| o.family).collect();
    // The activations run in their GEMMs' epilogues (src/backend/gpu/epilogue.rs).
    for f in ["gemm", "pool"] {
        assert!(families.contains(&f), "{f} missing from {families:?}");
    }
    for o in &profile.ops {
        assert!(o.seconds.is_finite() && o.seconds > 0.0, "{o:?}");
        assert!(o.dispatches > 0 && o.bytes > 0.0, "{o:?}");
        assert_eq!(o.flops > 0.0, o.family.starts_with("gemm"), "{o:?}");
    }
    assert!(profile.ops.windows(2).all(|w| w[0].seconds >= w[1].seconds));
    // The slowest dispatches: as many as kept, slowest first, none faster than any left out
    // (their family's total covers them), GEMMs with their shapes.
    let slowest = &profile.slowest;
    let dispatches: usize = profile.ops.iter().map(|o| o.dispatches).sum();
    assert_eq!(
        slowest.len(),
        dispatches.min(monomial_nfn::backend::gpu::SLOWEST)
    );
    assert!(slowest.windows(2).all(|w| w[0].seconds >= w[1].seconds));
    for d in slowest {
        let family = profile.ops.iter().find(|o| o.family == d.family).unwrap();
        assert!(d.seconds > 0.0 && d.seconds <= family.seconds, "{d:?}");
        assert_eq!(d.shape.is_some(), d.family.starts_with("gemm"), "{d:?}");
    }
    let table = profile.table();
    eprintln!("{table}");
    assert!(
        table.contains("GFLOP/s") && table.contains("GB/s"),
        "{table}"
    );
    let listed = table.split("slowest dispatches:\n").nth(1).unwrap_or("");
    assert_eq!(listed.lines().count(), slowest.len(), "{table}");
    // Profiling leaves the plan usable: a normal run still gives finite outputs.
    let out = gpu.run(&plan, &inputs).unwrap();
    assert!(out[0].iter().all(|v| v.is_finite()));
}

/// The training step's profile names its GEMMs by which operand is stored transposed (the
/// backward's dA = dC·Bᵀ and dB = Aᵀ·dC), and each family's FLOPs are the plan's for that kind;
/// the optimizer updates every parameter tensor in one dispatch.
#[test]
fn training_profile_splits_gemms_by_transposed_operand() {
    use monomial_nfn::plan::Op;
    use monomial_nfn::profiling::profile_passes;
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let model = monomial_nfn::Model::monomial_cnn_zoo(NetActivation::Relu, &mut rng).unwrap();
    let input = monomial_nfn::WeightSpace::random(model.spec(), 2, 1, &mut rng);
    let passes = profile_passes(&gpu, &model, &input, 1).unwrap();
    let (_, train) = passes.iter().find(|(name, _)| *name == "train").unwrap();
    let trainer = monomial_nfn::train::Trainer::new(
        &model,
        &gpu,
        2,
        monomial_nfn::plan::LossKind::Bce,
        monomial_nfn::train::AdamConfig::default(),
    )
    .unwrap();
    let plan = trainer.plan();
    for (family, transposed) in [
        ("gemm", (false, false)),
        ("gemm_at", (true, false)),
        ("gemm_bt", (false, true)),
    ] {
        let expected: f64 = plan
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Gemm(g) if (g.trans_a, g.trans_b) == transposed => {
                    Some(2.0 * (g.m * g.k * g.n) as f64)
                }
                _ => None,
            })
            .sum();
        let got = train.ops.iter().find(|o| o.family == family);
        let got = got.unwrap_or_else(|| panic!("{family} missing: {:?}", train.ops));
        assert!(expected > 0.0 && got.dispatches > 0, "{got:?}");
        assert_eq!(got.flops, expected, "{family}");
    }
    let tensors = plan
        .ops
        .iter()
        .filter(|op| matches!(op, Op::Adam(_)))
        .count();
    let adam = train.ops.iter().find(|o| o.family == "adam").unwrap();
    assert!(
        tensors > 10 && adam.dispatches == 1,
        "{tensors} tensors: {adam:?}"
    );
}

/// `mnfn bench`'s yardstick: the hot GEMM of the CNN-Zoo Monomial-NFN is its middle layers'
/// channel mix, (B·entries) × 144 × 144, and a plain GEMM of a shape runs at a finite, positive
/// rate on every backend.
#[test]
fn the_hot_gemm_is_the_channel_mix_and_times_on_every_backend() {
    use monomial_nfn::profiling::{hot_gemm, GemmYardstick};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let model = monomial_nfn::Model::monomial_cnn_zoo(NetActivation::Relu, &mut rng).unwrap();
    let (m1, k, n) = hot_gemm(&model.plan(1).unwrap()).unwrap();
    assert_eq!((k, n), (144, 144));
    let (m3, _, _) = hot_gemm(&model.plan(3).unwrap()).unwrap();
    assert_eq!(m3, 3 * m1, "rows grow with the batch");
    let mut backends: Vec<Box<dyn Backend>> = vec![
        Box::new(monomial_nfn::Cpu::<f32>::new()),
        Box::new(monomial_nfn::Cpu::<f64>::new()),
    ];
    if let Some(gpu) = common::gpu_or_skip() {
        backends.push(Box::new(gpu));
    }
    for b in &backends {
        let g = GemmYardstick::new(b.as_ref(), (67, 33, 20))
            .and_then(|y| y.gflops(0.01))
            .unwrap();
        assert!(g.is_finite() && g > 0.0, "{}: {g}", b.describe());
    }
}

/// `mnfn bench`'s summary of its rounds: the median (the middle pair's mean for an even count),
/// the extremes, and no summary for no values or a NaN.
#[test]
fn a_spread_is_the_median_and_the_extremes() {
    use monomial_nfn::profiling::Spread;
    let s = Spread::of(&[0.9, 0.5, 0.7]).unwrap();
    assert_eq!((s.median, s.min, s.max), (0.7, 0.5, 0.9));
    let s = Spread::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
    assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
    assert_eq!(Spread::of(&[]), None);
    assert_eq!(Spread::of(&[1.0, f64::NAN]), None);
}
