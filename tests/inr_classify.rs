//! INR-classification models (SPEC §6.2): the paper's parameter counts from models built in
//! code; the Monomial-NFN's logits invariant to hidden permutations and sign flips (scales far
//! from 1 included in the front end's equivariance); NP/HNP only permutation-invariant; the new
//! layers (Fourier features, position encoding, dropout, flattened dense) on every backend and
//! against finite differences.

mod common;

use monomial_nfn::nn::inr::{mlp_classifier, InrClassifierConfig, InrDataset};
use monomial_nfn::plan::LossKind;
use monomial_nfn::{
    Backend, Cpu, GroupElement, Init, Layer, Model, MonomialLinear, NetActivation, NetworkSpec,
    Output, PermKind, ScaleRange, Symmetry, Tensor, Variant, WeightSpace,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// SIREN-sized weights (first layer ~1, later ~1/√n) so that features stay moderate.
fn sirens(spec: &NetworkSpec, n: usize, seed: u64) -> WeightSpace {
    common::sirens(spec, n, seed, (1.0, 0.2))
}

#[test]
fn paper_configurations_have_the_reference_parameter_counts() {
    for (dataset, want) in [
        (InrDataset::Mnist, 22_146_603),
        (InrDataset::Fashion, 20_494_603),
        (InrDataset::Cifar, 16_248_045),
    ] {
        let spec = InrClassifierConfig::paper_spec(dataset);
        let model = InrClassifierConfig::paper(dataset)
            .build(&spec, &mut rng(0))
            .unwrap();
        assert_eq!(model.num_params(), want, "{dataset:?}");
    }
}

/// A small Monomial-NFN / HNP / NP classifier for the glyph SIRENs' shape.
fn small(front: Option<usize>, base: PermKind, pos: bool) -> InrClassifierConfig {
    InrClassifierConfig {
        front,
        front_init: Init::XavierNormal,
        fourier: (8, 3.0),
        pos_encoding: pos.then_some((3.0, 3)),
        base,
        widths: vec![6, 6],
        feature_dropout: 0.1,
        head: vec![12],
        head_dropout: 0.1,
        classes: 10,
    }
}

fn logits(model: &Model, be: &dyn Backend, ws: &WeightSpace) -> Vec<f64> {
    model.forward(be, ws).unwrap().features().unwrap().data
}

use common::max_rel;

#[test]
fn monomial_nfn_is_invariant_to_permutations_and_sign_flips() {
    let spec = NetworkSpec::mlp(&[2, 7, 5, 1], NetActivation::Sin).unwrap();
    let u = sirens(&spec, 4, 1);
    let cpu = Cpu::<f64>::new();
    let mut r = rng(2);
    let mono = small(Some(4), PermKind::Hnp, false)
        .build(&spec, &mut r)
        .unwrap();
    let hnp = small(None, PermKind::Hnp, false)
        .build(&spec, &mut r)
        .unwrap();
    let np = small(None, PermKind::Np { io_embed: false }, true)
        .build(&spec, &mut r)
        .unwrap();
    let mut sign_gap = [0.0f64; 2];
    for trial in 0..4 {
        let g = GroupElement::sample(
            &spec,
            Symmetry::Sign,
            ScaleRange::Uniform { lo: 1.0, hi: 1.0 },
            &mut r,
        );
        let gu = g.act(&spec, &u).unwrap();
        let p = GroupElement::sample(
            &spec,
            Symmetry::Permutation,
            ScaleRange::Uniform { lo: 1.0, hi: 1.0 },
            &mut r,
        );
        let pu = p.act(&spec, &u).unwrap();
        let base = logits(&mono, &cpu, &u);
        assert!(
            max_rel(&logits(&mono, &cpu, &gu), &base) < 1e-12,
            "trial {trial}: sign flips"
        );
        for m in [&mono, &hnp, &np] {
            let l = logits(m, &cpu, &u);
            assert!(
                max_rel(&logits(m, &cpu, &pu), &l) < 1e-12,
                "trial {trial}: permutations"
            );
        }
        for (gap, m) in sign_gap.iter_mut().zip([&hnp, &np]) {
            *gap = gap.max(max_rel(&logits(m, &cpu, &gu), &logits(m, &cpu, &u)));
        }
    }
    // Sign flips move NP's and HNP's logits: their Fourier features see the signs.
    assert!(sign_gap.iter().all(|&g| g > 1e-3), "{sign_gap:?}");
    // Every backend gives the same invariant logits within float32 noise.
    if let Some(gpu) = common::gpu_or_skip() {
        let g = GroupElement::sample(
            &spec,
            Symmetry::Sign,
            ScaleRange::Uniform { lo: 1.0, hi: 1.0 },
            &mut r,
        );
        let gu = g.act(&spec, &u).unwrap();
        let want = logits(&mono, &cpu, &u);
        for be in [&gpu as &dyn Backend, &Cpu::<f32>::new()] {
            assert!(
                max_rel(&logits(&mono, be, &u), &want) < 1e-4,
                "{}",
                be.describe()
            );
            assert!(
                max_rel(&logits(&mono, be, &gu), &want) < 1e-4,
                "{}",
                be.describe()
            );
        }
    }
}

#[test]
fn the_front_end_is_sign_equivariant_for_inputs_far_from_unit_scale() {
    // HNPS_SirenLinear commutes with sign flips and permutations (SPEC §3.3), whatever the
    // magnitude of the weights it reads: inputs scaled by 1e-4 and 1e4 included.
    let spec = NetworkSpec::mlp(&[2, 6, 5, 1], NetActivation::Sin).unwrap();
    let mut r = rng(3);
    let cpu = Cpu::<f64>::new();
    for (c_in, c_out) in [(1, 3), (3, 3), (3, 1)] {
        let layer = MonomialLinear::new(
            &spec,
            c_in,
            c_out,
            Variant::Sign,
            Init::XavierNormal,
            &mut r,
        )
        .unwrap();
        let model = Model::new(spec.clone(), c_in, vec![Layer::Monomial(layer)]);
        for scale in [1e-4, 1.0, 1e4] {
            let mut u = WeightSpace::random(&spec, 3, c_in, &mut r);
            for t in u.weights.iter_mut().chain(u.biases.iter_mut()) {
                t.data.iter_mut().for_each(|v| *v *= scale);
            }
            let g = GroupElement::sample(&spec, Symmetry::Sign, ScaleRange::default(), &mut r);
            let y = model.forward(&cpu, &u).unwrap().space().unwrap();
            let gy = model
                .forward(&cpu, &g.act(&spec, &u).unwrap())
                .unwrap()
                .space()
                .unwrap();
            let want = g.act(&spec, &y).unwrap();
            for (a, b) in gy
                .weights
                .iter()
                .chain(&gy.biases)
                .zip(want.weights.iter().chain(&want.biases))
            {
                assert_eq!(
                    a.data, b.data,
                    "{c_in}->{c_out} at scale {scale}: bitwise equivariant"
                );
            }
        }
    }
}

#[test]
fn inr_models_match_across_backends_and_finite_differences() {
    let spec = NetworkSpec::mlp(&[2, 5, 4, 1], NetActivation::Sin).unwrap();
    let u = sirens(&spec, 3, 5);
    let cpu = Cpu::<f64>::new();
    let mut r = rng(6);
    let models = [
        small(Some(3), PermKind::Hnp, false)
            .build(&spec, &mut r)
            .unwrap(),
        small(None, PermKind::Np { io_embed: false }, true)
            .build(&spec, &mut r)
            .unwrap(),
        mlp_classifier(&spec, &[9], 0.1, 10, &mut r).unwrap(),
    ];
    let target = Tensor::new(
        vec![3, 10],
        (0..30)
            .map(|i| if i % 10 == (i / 10) * 3 { 1.0 } else { 0.0 })
            .collect(),
    )
    .unwrap();
    let kind = LossKind::SoftmaxCe { classes: 10 };
    let gpu = common::gpu_or_skip();
    for model in &models {
        let g = model.gradients(&cpu, &u, Some(&target), kind).unwrap();
        // Finite differences on a few input coordinates.
        for (t, idx) in [(0usize, 3usize), (1, 7), (2, 2)] {
            let h = 1e-6;
            let mut up = u.clone();
            up.weights[t].data[idx] += h;
            let mut down = u.clone();
            down.weights[t].data[idx] -= h;
            let l = |x: &WeightSpace| model.gradients(&cpu, x, Some(&target), kind).unwrap().loss;
            let fd = (l(&up) - l(&down)) / (2.0 * h);
            let an = g.input.weights[t].data[idx];
            assert!(
                (fd - an).abs() < 1e-5 * (1.0 + an.abs()),
                "input grad {t}/{idx}: {an} vs {fd}"
            );
        }
        if let Some(gpu) = &gpu {
            let want = logits(model, &cpu, &u);
            assert!(max_rel(&logits(model, gpu, &u), &want) < 1e-4);
            let gg = model.gradients(gpu, &u, Some(&target), kind).unwrap();
            for (a, b) in gg.params.iter().flatten().zip(g.params.iter().flatten()) {
                assert!(max_rel(&a.1.data, &b.1.data) < 1e-3, "{}", a.0);
            }
        }
        match model.forward(&cpu, &u).unwrap() {
            Output::Features(t) => assert_eq!(t.shape, vec![3, 10]),
            Output::Space(_) => panic!("classifiers output logits"),
        }
    }
}

/// Parameters after `steps` training steps of a small classifier with dropout everywhere.
fn train_with_dropout(be: &dyn Backend, steps: usize) -> (Vec<f64>, Vec<f64>) {
    use monomial_nfn::train::{AdamConfig, Dataset, Trainer};
    let spec = NetworkSpec::mlp(&[2, 5, 4, 1], NetActivation::Sin).unwrap();
    let mut config = small(Some(3), PermKind::Hnp, false);
    config.feature_dropout = 0.3;
    config.head_dropout = 0.3;
    let model = config.build(&spec, &mut rng(7)).unwrap();
    let u = sirens(&spec, 8, 8);
    let target = Tensor::new(
        vec![8, 10],
        (0..80)
            .map(|i| f64::from(u8::from(i % 10 == (i / 10) % 10)))
            .collect(),
    )
    .unwrap();
    let data = Dataset::new(u, target).unwrap();
    let adam = AdamConfig {
        warmup_steps: 2,
        ..AdamConfig::default()
    };
    let mut t = Trainer::new(&model, be, 8, LossKind::SoftmaxCe { classes: 10 }, adam).unwrap();
    let mut losses = Vec::new();
    for _ in 0..steps {
        t.step(&data).unwrap();
        losses.push(t.take_loss_sum().unwrap());
    }
    (common::flat_params(&t.model().unwrap()), losses)
}

#[test]
fn dropout_training_steps_agree_between_backends_and_differ_from_eval() {
    // The trainer draws the same masks on every backend (seeded), so steps agree.
    let (want, losses) = train_with_dropout(&Cpu::<f64>::new(), 4);
    assert!(losses.iter().all(|l| l.is_finite()));
    let (f32_params, _) = train_with_dropout(&Cpu::<f32>::new(), 4);
    assert!(max_rel(&f32_params, &want) < 1e-4);
    if let Some(gpu) = common::gpu_or_skip() {
        let (got, _) = train_with_dropout(&gpu, 4);
        assert!(max_rel(&got, &want) < 1e-4);
    }
    // Training losses use dropped-out features: with rate 0.3 they differ from the
    // evaluation-mode loss of the same (initial) model.
    let spec = NetworkSpec::mlp(&[2, 5, 4, 1], NetActivation::Sin).unwrap();
    let mut config = small(Some(3), PermKind::Hnp, false);
    config.feature_dropout = 0.3;
    config.head_dropout = 0.3;
    let model = config.build(&spec, &mut rng(7)).unwrap();
    let target = Tensor::new(
        vec![8, 10],
        (0..80)
            .map(|i| f64::from(u8::from(i % 10 == (i / 10) % 10)))
            .collect(),
    )
    .unwrap();
    let eval = model
        .gradients(
            &Cpu::<f64>::new(),
            &sirens(&spec, 8, 8),
            Some(&target),
            LossKind::SoftmaxCe { classes: 10 },
        )
        .unwrap()
        .loss;
    assert!(
        (eval - losses[0]).abs() > 1e-6,
        "eval {eval} vs first training step {}",
        losses[0]
    );
}
