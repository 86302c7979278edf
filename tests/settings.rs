//! Bad settings are refused before any work with an error naming the option, the value and the
//! range (issue 13's table for predict-gen), and divergence stops training instead of being
//! reported as a result.

use monomial_nfn::experiment::{predict_gen, PredictGenConfig, ZooSource};
use monomial_nfn::plan::LossKind;
use monomial_nfn::train::{fit, Dataset, FitConfig};
use monomial_nfn::{Cpu, Error, Tensor, WeightSpace};
use rand::SeedableRng;

mod common;

#[test]
fn predict_gen_refuses_bad_settings_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let base = PredictGenConfig {
        zoo: ZooSource::Generate { n: 10, seed: 0 },
        cache_dir: dir.path().join("cache"),
        out_dir: dir.path().join("out"),
        ..PredictGenConfig::default()
    };
    let cases: [(&str, PredictGenConfig); 6] = [
        (
            "--lr",
            PredictGenConfig {
                lr: f64::NAN,
                ..base.clone()
            },
        ),
        (
            "--augment-train",
            PredictGenConfig {
                augment_train: Some(40),
                ..base.clone()
            },
        ),
        (
            "--augment-scale",
            PredictGenConfig {
                test_scale: 0.0,
                ..base.clone()
            },
        ),
        (
            "--epochs",
            PredictGenConfig {
                epochs: 0,
                ..base.clone()
            },
        ),
        (
            "--batch",
            PredictGenConfig {
                batch: 0,
                ..base.clone()
            },
        ),
        (
            "--models",
            PredictGenConfig {
                models: vec![],
                ..base.clone()
            },
        ),
    ];
    for (option, config) in cases {
        let e = predict_gen(&config, &Cpu::<f32>::new()).unwrap_err();
        assert!(matches!(e, Error::Setting { .. }), "{option}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(option) && msg.contains("expected"), "{msg}");
    }
    assert!(!dir.path().join("cache").exists(), "nothing was generated");
}

#[test]
fn scales_that_leave_float32_are_refused_on_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let config = PredictGenConfig {
        zoo: ZooSource::Generate { n: 12, seed: 0 },
        test_scale: 1e300,
        epochs: 1,
        cache_dir: dir.path().join("cache"),
        out_dir: dir.path().join("out"),
        ..PredictGenConfig::default()
    };
    let e = predict_gen(&config, &Cpu::<f32>::new())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("float32") && e.contains("--augment-scale"),
        "{e}"
    );
}

#[test]
fn divergence_stops_training_with_the_model_round_and_steps() {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut model = common::small_monomial(&mut r);
    let spec = model.spec().clone();
    let nets = WeightSpace::random(&spec, 16, 1, &mut r);
    let data = Dataset::new(nets, Tensor::new(vec![16, 1], vec![1e30; 16]).unwrap()).unwrap();
    let config = FitConfig {
        epochs: 3,
        batch: 8,
        loss: LossKind::Mse,
        label: "Monomial-NFN".into(),
        optimizer: monomial_nfn::train::AdamConfig {
            lr: 1e30,
            ..Default::default()
        },
        ..FitConfig::default()
    };
    let e = fit(&mut model, &Cpu::<f32>::new(), &data, None, &config).unwrap_err();
    assert!(matches!(e, Error::Diverged(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("Monomial-NFN") && msg.contains("round 1"),
        "{msg}"
    );
}
