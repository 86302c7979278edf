//! Group actions on zoo networks: transformed copies compute the same function, augmentation is
//! seeded and function-preserving, and the symmetry diagnosis tells ReLU from tanh networks.

use monomial_nfn::zoo::net::Net;
use monomial_nfn::zoo::symmetry::diagnose;
use monomial_nfn::zoo::{Augment, Layout, NetworkFile};
use monomial_nfn::{GroupElement, NetActivation, NetworkSpec, ScaleRange, Symmetry, WeightSpace};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A network with N(0, 0.3²) weights (N(0, 1) saturates tanh and hides nothing, but is noisier).
fn network(spec: &NetworkSpec, seed: u64) -> WeightSpace {
    let mut ws = WeightSpace::random(spec, 1, 1, &mut rng(seed));
    for t in ws.weights.iter_mut().chain(ws.biases.iter_mut()) {
        t.data.iter_mut().for_each(|v| *v *= 0.3);
    }
    ws
}

/// f32 outputs of batch item 0 on `inputs` random inputs (16×16 images for conv nets).
fn outputs(spec: &NetworkSpec, ws: &WeightSpace, x: &[f32], inputs: usize) -> Vec<f32> {
    let layout = Layout::for_spec(spec);
    let net = Net::new(&layout, 16, 16).unwrap();
    let row = layout.to_rows::<f32>(ws).unwrap();
    net.forward(&row, x, inputs, None, false).logits
}

fn inputs(spec: &NetworkSpec, n: usize) -> Vec<f32> {
    let len = Net::new(&Layout::for_spec(spec), 16, 16)
        .unwrap()
        .input_len();
    let mut r = rng(99);
    (0..n * len).map(|_| r.random_range(-1.0f32..1.0)).collect()
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn specs(act: NetActivation) -> [NetworkSpec; 2] {
    [
        NetworkSpec::cnn_zoo(act),
        NetworkSpec::mlp(&[5, 12, 9, 3], act).unwrap(),
    ]
}

#[test]
fn rescaled_relu_networks_compute_the_same_function() {
    for spec in specs(NetActivation::Relu) {
        let ws = network(&spec, 1);
        let x = inputs(&spec, 32);
        let y = outputs(&spec, &ws, &x, 32);
        for seed in 0..4 {
            let g = GroupElement::sample(
                &spec,
                Symmetry::PositiveScale,
                ScaleRange::Uniform { lo: 1.0, hi: 1e4 },
                &mut rng(seed),
            );
            let yg = outputs(&spec, &g.act(&spec, &ws).unwrap(), &x, 32);
            let d = max_rel(&y, &yg);
            assert!(d <= 1e-5, "{:?}: relative change {d}", spec.layers[0]);
        }
    }
}

#[test]
fn sign_flipped_tanh_networks_give_identical_outputs() {
    for spec in specs(NetActivation::Tanh) {
        let ws = network(&spec, 2);
        let x = inputs(&spec, 32);
        let y = outputs(&spec, &ws, &x, 32);
        // Signs alone: every product and sum is the same up to sign, so bit for bit equal.
        let mut g = GroupElement::identity(&spec);
        let mut r = rng(5);
        for f in g.factors.iter_mut().flatten() {
            *f = if r.random::<bool>() { 1.0 } else { -1.0 };
        }
        assert!(g.factors.iter().flatten().any(|&f| f < 0.0));
        assert_eq!(y, outputs(&spec, &g.act(&spec, &ws).unwrap(), &x, 32));
        // With permutations the next layer sums in another order: equal to rounding.
        let g = GroupElement::sample(&spec, Symmetry::Sign, ScaleRange::default(), &mut r);
        let d = max_rel(&y, &outputs(&spec, &g.act(&spec, &ws).unwrap(), &x, 32));
        assert!(d <= 1e-6, "relative change {d}");
    }
}

/// Diagnoses random networks of `act` and checks which kinds come out exact, in the order
/// permutation, positive scale, sign, monomial.
fn assert_exact_kinds(act: NetActivation, seed: u64, expected: [bool; 4]) {
    for spec in specs(act) {
        let r = diagnose(&spec, &network(&spec, seed), 16, 4, 32, 0).unwrap();
        let kinds: Vec<Symmetry> = r.iter().map(|k| k.symmetry).collect();
        assert_eq!(
            kinds,
            [
                Symmetry::Permutation,
                Symmetry::PositiveScale,
                Symmetry::Sign,
                Symmetry::Monomial
            ]
        );
        let exact: Vec<bool> = r.iter().map(|k| k.exact()).collect();
        assert_eq!(exact, expected, "{act:?}: {r:?}");
    }
}

#[test]
fn diagnosis_finds_scaling_for_relu_and_signs_for_tanh() {
    assert_exact_kinds(NetActivation::Relu, 3, [true, true, false, false]);
    assert_exact_kinds(NetActivation::Tanh, 4, [true, false, true, false]);
}

#[test]
fn augmentation_is_seeded_per_epoch_and_network() {
    let spec = NetworkSpec::cnn_zoo(NetActivation::Relu);
    let aug = Augment::for_activation(NetActivation::Relu, 2, 7);
    assert_eq!(aug.symmetry, Symmetry::PositiveScale);
    let g = aug.element(&spec, 0, 5);
    assert!(g
        .factors
        .iter()
        .flatten()
        .all(|&f| (1.0..=100.0).contains(&f)));
    assert_eq!(g, aug.element(&spec, 0, 5));
    assert_ne!(g, aug.element(&spec, 1, 5));
    assert_ne!(g, aug.element(&spec, 0, 6));
    let tanh = Augment::for_activation(NetActivation::Tanh, 2, 7);
    let g = tanh.element(&NetworkSpec::cnn_zoo(NetActivation::Tanh), 0, 5);
    assert!(g.factors.iter().flatten().all(|&f| f == 1.0 || f == -1.0));
}

#[test]
fn augmented_batches_keep_every_networks_function() {
    for act in [NetActivation::Relu, NetActivation::Tanh] {
        let spec = NetworkSpec::cnn_zoo(act);
        let batch = WeightSpace::random(&spec, 3, 1, &mut rng(8));
        let aug = Augment::for_activation(act, 3, 1);
        let out = aug.apply(&spec, &batch, 4, &[10, 11, 12]).unwrap();
        assert_ne!(out, batch);
        assert_eq!(out, aug.apply(&spec, &batch, 4, &[10, 11, 12]).unwrap());
        let x = inputs(&spec, 8);
        for b in 0..3 {
            let (orig, moved) = (
                monomial_nfn::zoo::batch_item(&batch, b),
                monomial_nfn::zoo::batch_item(&out, b),
            );
            assert_ne!(orig, moved);
            let d = max_rel(
                &outputs(&spec, &orig, &x, 8),
                &outputs(&spec, &moved, &x, 8),
            );
            assert!(d <= 1e-5, "{act:?} item {b}: {d}");
            // Item b got exactly network (10 + b)'s element.
            let g = aug.element(&spec, 4, 10 + b);
            assert_eq!(g.act(&spec, &orig).unwrap(), moved);
        }
        assert!(aug.apply(&spec, &batch, 4, &[1]).is_err());
    }
}

#[test]
fn network_files_round_trip_and_diagnose() {
    let spec = NetworkSpec::mlp(&[2, 8, 8, 1], NetActivation::Sin).unwrap();
    let file = NetworkFile {
        images: None,
        spec: spec.clone(),
        networks: WeightSpace::random(&spec, 3, 1, &mut rng(2)),
        labels: Some(vec![4, 0, 9]),
        metadata: Default::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nets.safetensors");
    file.write(&path).unwrap();
    let back = NetworkFile::read(&path, None).unwrap();
    assert_eq!(back.spec, spec);
    assert_eq!(back.networks, file.networks);
    assert_eq!(back.labels, file.labels);
    let r = diagnose(&spec, &back.network(2).unwrap(), 16, 3, 16, 0).unwrap();
    let exact: Vec<bool> = r.iter().map(|k| k.exact()).collect();
    assert_eq!(exact, [true, false, true, false], "{r:?}");
    assert!(back.network(3).is_err());
    assert!(NetworkFile::read(&dir.path().join("missing.safetensors"), None).is_err());
}
