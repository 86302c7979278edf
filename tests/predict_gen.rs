//! The predict-generalisation experiment (SPEC §6.1) end to end on a small generated zoo: every
//! number comes from the run, the Monomial-NFN is exactly as good on rescaled test networks as on
//! plain ones (in f64), the baselines are not invariant, curves are written, zoos are cached.

use monomial_nfn::experiment::{predict_gen, ModelKind, PredictGenConfig, ZooSource};
use monomial_nfn::Cpu;

fn config(dir: &std::path::Path, models: Vec<ModelKind>) -> PredictGenConfig {
    PredictGenConfig {
        zoo: ZooSource::Generate { n: 48, seed: 3 },
        models,
        epochs: 2,
        batch: 4,
        cache_dir: dir.join("cache"),
        out_dir: dir.join("out"),
        ..PredictGenConfig::default()
    }
}

#[test]
fn monomial_nfn_ranks_rescaled_networks_exactly_as_plain_ones_and_baselines_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        vec![
            ModelKind::Monomial,
            ModelKind::Hnp,
            ModelKind::Np,
            ModelKind::Stat,
        ],
    );
    let report = predict_gen(&cfg, &Cpu::<f64>::new()).unwrap();
    assert_eq!(report.sizes, (19, 5, 24));
    assert!(report.generate_seconds > 0.0);
    let params: Vec<usize> = report.models.iter().map(|m| m.params).collect();
    assert_eq!(params, vec![254_619, 2_811_743, 2_031_390, 1_059_001]);
    let paper: Vec<usize> = report.paper_params.iter().map(|(_, n)| *n).collect();
    assert_eq!(paper, params);
    let mono = &report.models[0];
    assert!(mono.tau.is_finite() && mono.tau.abs() <= 1.0);
    assert!(
        (mono.tau - mono.tau_transformed).abs() < 1e-12,
        "Monomial-NFN: {} vs {}",
        mono.tau,
        mono.tau_transformed
    );
    for base in &report.models[1..] {
        assert!(
            (base.tau - base.tau_transformed).abs() > 1e-6,
            "{} looks scale-invariant: {} vs {}",
            base.model,
            base.tau,
            base.tau_transformed
        );
    }
    for m in &report.models {
        assert_eq!(m.curve.len(), 2);
        assert!((1..=2).contains(&m.best_epoch));
        assert!(m.train_seconds > 0.0 && m.inference_per_second > 0.0);
        let csv = cfg.out_dir.join(format!("curve-{}.csv", m.model));
        assert_eq!(std::fs::read_to_string(csv).unwrap().lines().count(), 3);
    }
    assert!(report.table().contains("Monomial-NFN"));
    let png = std::fs::read(&report.plot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    // The generated zoo is cached and reused.
    let again = predict_gen(
        &config(dir.path(), vec![ModelKind::Monomial]),
        &Cpu::<f64>::new(),
    )
    .unwrap();
    assert_eq!(again.generate_seconds, 0.0);
    assert_eq!(again.models[0].tau, mono.tau);
}

#[test]
fn a_missing_zoo_directory_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![ModelKind::Monomial]);
    cfg.zoo = ZooSource::Dir(dir.path().join("no-such-zoo"));
    let err = predict_gen(&cfg, &Cpu::<f32>::new()).unwrap_err();
    assert!(err.to_string().contains("no-such-zoo"), "{err}");
}
