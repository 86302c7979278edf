//! INR editing models (SPEC §6.3): the paper's parameter counts, permutation equivariance of Δ
//! and invariance of the rendered edits, the sign behaviour of each part, and the render path
//! (LearnedScale, U + s·Δ, SIREN op) on every backend and against finite differences.

mod common;

use monomial_nfn::nn::edit::InrEditorConfig;
use monomial_nfn::plan::LossKind;
use monomial_nfn::{
    Backend, Cpu, GroupElement, Model, NetActivation, NetworkSpec, PermKind, ScaleRange, Symmetry,
    Tensor, WeightSpace,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn sirens(spec: &NetworkSpec, n: usize, seed: u64) -> WeightSpace {
    common::sirens(spec, n, seed, (0.5, 0.05))
}

use common::max_rel;

fn flat(ws: &WeightSpace) -> Vec<f64> {
    ws.weights
        .iter()
        .chain(&ws.biases)
        .flat_map(|t| t.data.clone())
        .collect()
}

#[test]
fn paper_editors_have_the_reference_parameter_counts() {
    let spec = NetworkSpec::mlp(&[2, 32, 32, 1], NetActivation::Sin).unwrap();
    let mono = InrEditorConfig::paper_monomial((28, 28))
        .build(&spec, &mut rng(0))
        .unwrap();
    assert_eq!(mono.num_params(), 4_134_153);
    let np = InrEditorConfig::paper_np((28, 28))
        .build(&spec, &mut rng(0))
        .unwrap();
    assert_eq!(np.num_params(), 4_133_656);
}

fn small(front: bool, base: PermKind, pos: bool) -> InrEditorConfig {
    InrEditorConfig {
        front: front.then_some(3),
        fourier: (4, 3.0),
        pos_encoding: pos.then_some((3.0, 3)),
        base,
        widths: vec![5, 5],
        scale_init: 0.5,
        grid: (4, 5),
    }
}

#[test]
fn edits_are_permutation_equivariant_and_renders_invariant() {
    let spec = NetworkSpec::mlp(&[2, 6, 5, 1], NetActivation::Sin).unwrap();
    let cpu = Cpu::<f64>::new();
    let u = sirens(&spec, 3, 1);
    let mut r = rng(2);
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(Cpu::<f32>::new())];
    if let Some(gpu) = common::gpu_or_skip() {
        backends.push(Box::new(gpu));
    }
    for config in [
        small(true, PermKind::Np { io_embed: false }, true),
        small(false, PermKind::Np { io_embed: false }, true),
        small(false, PermKind::Hnp, false),
    ] {
        let body = Model::new(spec.clone(), 1, config.body(&spec, &mut rng(3)).unwrap());
        let editor = config.build(&spec, &mut rng(3)).unwrap();
        let g = GroupElement::sample(&spec, Symmetry::Permutation, ScaleRange::default(), &mut r);
        let gu = g.act(&spec, &u).unwrap();
        let delta = body.forward(&cpu, &u).unwrap().space().unwrap();
        let delta_g = body.forward(&cpu, &gu).unwrap().space().unwrap();
        let want = g.act(&spec, &delta).unwrap();
        assert!(
            max_rel(&flat(&delta_g), &flat(&want)) < 1e-10,
            "{config:?}: Δ(gU) = gΔ(U)"
        );
        let img = editor.forward(&cpu, &u).unwrap().features().unwrap();
        let img_g = editor.forward(&cpu, &gu).unwrap().features().unwrap();
        assert_eq!(img.shape, vec![3, 20]);
        assert!(
            max_rel(&img_g.data, &img.data) < 1e-10,
            "{config:?}: renders agree"
        );
        // The same within float32 noise on the f32 CPU path and the GPU.
        for be in &backends {
            let d = body.forward(be.as_ref(), &u).unwrap().space().unwrap();
            let dg = body.forward(be.as_ref(), &gu).unwrap().space().unwrap();
            let want = g.act(&spec, &d).unwrap();
            assert!(
                max_rel(&flat(&dg), &flat(&want)) < 1e-5,
                "{}",
                be.describe()
            );
            let i = editor.forward(be.as_ref(), &u).unwrap().features().unwrap();
            let ig = editor
                .forward(be.as_ref(), &gu)
                .unwrap()
                .features()
                .unwrap();
            // Renders pass float32 rounding of Δ through sin(30·z): 30x amplification.
            let e = max_rel(&ig.data, &i.data);
            assert!(e < 1e-4, "{}: {e:e}", be.describe());
        }
    }
}

#[test]
fn the_front_end_is_sign_equivariant_but_the_editor_is_not() {
    let spec = NetworkSpec::mlp(&[2, 6, 5, 1], NetActivation::Sin).unwrap();
    let cpu = Cpu::<f64>::new();
    let u = sirens(&spec, 3, 4);
    let config = small(true, PermKind::Np { io_embed: false }, true);
    let layers = config.body(&spec, &mut rng(5)).unwrap();
    // The two HNPS_SirenLinear layers (SPEC §6.3: no nonlinearity between them).
    let front = Model::new(spec.clone(), 1, layers[..2].to_vec());
    let g = GroupElement::sample(&spec, Symmetry::Sign, ScaleRange::default(), &mut rng(6));
    let gu = g.act(&spec, &u).unwrap();
    let y = front.forward(&cpu, &u).unwrap().space().unwrap();
    let gy = front.forward(&cpu, &gu).unwrap().space().unwrap();
    assert_eq!(
        flat(&gy),
        flat(&g.act(&spec, &y).unwrap()),
        "bitwise sign-equivariant"
    );
    // The Fourier features' cosine is even, so the whole editor's Δ is not sign-equivariant.
    let body = Model::new(spec.clone(), 1, layers);
    let d = body.forward(&cpu, &u).unwrap().space().unwrap();
    let dg = body.forward(&cpu, &gu).unwrap().space().unwrap();
    assert!(max_rel(&flat(&dg), &flat(&g.act(&spec, &d).unwrap())) > 1e-3);
}

#[test]
fn the_render_path_matches_across_backends_and_finite_differences() {
    let spec = NetworkSpec::mlp(&[2, 5, 4, 1], NetActivation::Sin).unwrap();
    let cpu = Cpu::<f64>::new();
    let u = sirens(&spec, 2, 7);
    let editor: Model = small(true, PermKind::Np { io_embed: false }, true)
        .build(&spec, &mut rng(8))
        .unwrap();
    let target = Tensor::new(vec![2, 20], (0..40).map(|i| (i % 5) as f64 / 5.0).collect()).unwrap();
    let g = editor
        .gradients(&cpu, &u, Some(&target), LossKind::Mse)
        .unwrap();
    let loss = |x: &WeightSpace| {
        editor
            .gradients(&cpu, x, Some(&target), LossKind::Mse)
            .unwrap()
            .loss
    };
    for (t, idx) in [(0usize, 3usize), (1, 11), (2, 4)] {
        let h = 1e-6;
        let (mut up, mut down) = (u.clone(), u.clone());
        up.weights[t].data[idx] += h;
        down.weights[t].data[idx] -= h;
        let fd = (loss(&up) - loss(&down)) / (2.0 * h);
        let an = g.input.weights[t].data[idx];
        assert!(
            (fd - an).abs() < 1e-6 * (1.0 + an.abs()),
            "weight {t}/{idx}: {an} vs {fd}"
        );
    }
    // LearnedScale receives a gradient.
    let scale = g.params.last().unwrap();
    assert!(scale.iter().any(|(_, t)| t.data[0] != 0.0));
    if let Some(gpu) = common::gpu_or_skip() {
        for be in [&gpu as &dyn Backend, &Cpu::<f32>::new()] {
            let want = editor.forward(&cpu, &u).unwrap().features().unwrap();
            let got = editor.forward(be, &u).unwrap().features().unwrap();
            assert!(max_rel(&got.data, &want.data) < 1e-4, "{}", be.describe());
            let gg = editor
                .gradients(be, &u, Some(&target), LossKind::Mse)
                .unwrap();
            for (a, b) in gg.params.iter().flatten().zip(g.params.iter().flatten()) {
                assert!(
                    max_rel(&a.1.data, &b.1.data) < 1e-3,
                    "{}: {}",
                    be.describe(),
                    a.0
                );
            }
        }
    }
}
