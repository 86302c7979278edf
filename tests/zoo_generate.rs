//! The zoo generator: its network's gradients, determinism, the accuracy spread it promises,
//! and that what it writes loads as a Small CNN Zoo.

use monomial_nfn::zoo::net::Net;
use monomial_nfn::zoo::task::{ImageSet, CLASSES, SIDE};
use monomial_nfn::zoo::{generate, Arch, GenerateConfig, Layout, StepFilter, Zoo, ZooFilter};
use monomial_nfn::NetActivation;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Mean softmax cross-entropy in f64.
fn loss_f64(net: &Net, row: &[f64], x: &[f64], y: &[u8]) -> f64 {
    let logits = net.forward(row, x, y.len(), None, false).logits;
    logits
        .chunks_exact(CLASSES)
        .zip(y)
        .map(|(z, &c)| {
            let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
            s.ln() + m - z[c as usize]
        })
        .sum::<f64>()
        / y.len() as f64
}

fn gradient_matches_finite_differences(arch: Arch, act: NetActivation) {
    let layout = Layout::for_spec(&arch.spec(act).unwrap());
    let net = Net::new(&layout, SIDE, SIDE).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let row: Vec<f32> = (0..layout.row_len())
        .map(|_| rng.random_range(-0.4f32..0.4))
        .collect();
    let data = ImageSet::generate(6, &mut rng);
    let trace = net.forward(&row, &data.pixels, 6, None, true);
    let (_, dlogits, _) =
        monomial_nfn::zoo::net::softmax_xent(&trace.logits, &data.labels, CLASSES);
    let mut grad = vec![0f32; row.len()];
    net.backward(&row, &trace, 6, dlogits, &mut grad);
    let x64: Vec<f64> = data.pixels.iter().map(|&v| v as f64).collect();
    for _ in 0..3 {
        let dir: Vec<f64> = (0..row.len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let eps = 1e-5;
        let at = |s: f64| -> Vec<f64> {
            row.iter()
                .zip(&dir)
                .map(|(&w, d)| w as f64 + s * d)
                .collect()
        };
        let fd = (loss_f64(&net, &at(eps), &x64, &data.labels)
            - loss_f64(&net, &at(-eps), &x64, &data.labels))
            / (2.0 * eps);
        let analytic: f64 = grad.iter().zip(&dir).map(|(&g, d)| g as f64 * d).sum();
        assert!(
            (fd - analytic).abs() <= 1e-3 * fd.abs().max(1e-2),
            "{arch:?} {act:?}: finite difference {fd}, backward {analytic}"
        );
    }
}

#[test]
fn cnn_backward_matches_finite_differences() {
    gradient_matches_finite_differences(Arch::CnnZoo, NetActivation::Relu);
    gradient_matches_finite_differences(Arch::CnnZoo, NetActivation::Tanh);
}

#[test]
fn mlp_backward_matches_finite_differences() {
    gradient_matches_finite_differences(Arch::Mlp(vec![12, 7]), NetActivation::Tanh);
    gradient_matches_finite_differences(Arch::Mlp(vec![12]), NetActivation::Relu);
    gradient_matches_finite_differences(Arch::Mlp(vec![6, 5]), NetActivation::Sin);
}

fn small(arch: Arch, act: NetActivation, n: usize, seed: u64) -> GenerateConfig {
    GenerateConfig {
        train_images: 300,
        test_images: 100,
        steps: (5, 20),
        ..GenerateConfig::new(arch, act, n, seed)
    }
}

#[test]
fn generation_is_deterministic_per_seed() {
    let a = generate(&small(Arch::CnnZoo, NetActivation::Tanh, 5, 3), &|| {}).unwrap();
    let b = generate(&small(Arch::CnnZoo, NetActivation::Tanh, 5, 3), &|| {}).unwrap();
    let c = generate(&small(Arch::CnnZoo, NetActivation::Tanh, 5, 4), &|| {}).unwrap();
    assert_eq!(a.weights, b.weights);
    assert_eq!(a.metrics, b.metrics);
    assert_ne!(a.weights, c.weights);
}

#[test]
fn generated_zoo_loads_as_a_small_cnn_zoo() {
    let zoo = generate(&small(Arch::CnnZoo, NetActivation::Relu, 6, 0), &|| {}).unwrap();
    assert_eq!(zoo.weights.len(), 6 * 4970);
    assert!(zoo.weights.iter().all(|v| v.is_finite()));
    let dir = tempfile::tempdir().unwrap();
    Zoo::write(dir.path(), &zoo.layout, &zoo.weights, &zoo.metrics).unwrap();
    let loaded = Zoo::open(
        dir.path(),
        &ZooFilter {
            activation: Some(NetActivation::Relu),
            step: StepFilter::Final,
        },
    )
    .unwrap();
    assert_eq!(loaded.len(), 6);
    assert_eq!(loaded.weights, zoo.weights);
    assert_eq!(
        loaded.layout.spec(),
        &monomial_nfn::NetworkSpec::cnn_zoo(NetActivation::Relu)
    );
    for column in [
        "test_accuracy",
        "train_accuracy",
        "config.learning_rate",
        "config.init_std",
    ] {
        let v = loaded.metric(column).unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{column}: {v:?}");
    }
    let ws = loaded.weight_space(&[0, 5]).unwrap();
    assert_eq!(ws.weights[0].shape, [2, 1, 16, 1, 3, 3]);
}

#[test]
fn mlp_zoo_has_the_requested_widths() {
    let zoo = generate(
        &small(Arch::parse("mlp:20,8").unwrap(), NetActivation::Tanh, 2, 0),
        &|| {},
    )
    .unwrap();
    let widths: Vec<(usize, usize)> = zoo
        .layout
        .spec()
        .layers
        .iter()
        .map(|l| (l.n_in, l.n_out))
        .collect();
    assert_eq!(widths, [(256, 20), (20, 8), (8, 10)]);
    assert!(Arch::parse("mlp:3,x").is_err());
    assert!(Arch::parse("resnet").is_err());
}

#[test]
fn test_accuracies_spread_widely() {
    let zoo = generate(
        &GenerateConfig::new(Arch::CnnZoo, NetActivation::Relu, 24, 0),
        &|| {},
    )
    .unwrap();
    let acc = zoo
        .metrics
        .f64_column(std::path::Path::new("metrics"), "test_accuracy")
        .unwrap();
    let mean = acc.iter().sum::<f64>() / acc.len() as f64;
    let std = (acc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / acc.len() as f64).sqrt();
    assert!(std >= 0.1, "std of test accuracy {std}");
    assert!(
        acc.iter().any(|&a| a > 0.5),
        "some network learns the task: {acc:?}"
    );
}
