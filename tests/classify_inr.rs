//! `classify_inr` end to end on a small generated INR set: every model trains (with dropout
//! masks drawn per step), the table reports them, the Monomial-NFN's accuracy is identical on
//! permuted and sign-flipped test SIRENs, and bad settings are refused before any work.

use monomial_nfn::checkpoint::{Checkpoint, Task};
use monomial_nfn::classify::{classify_inr, ClassifyConfig, InrModelKind, InrSource};
use monomial_nfn::predict::{predict_networks, Networks};
use monomial_nfn::train::StepSchedule;
use monomial_nfn::Cpu;

fn small(dir: &std::path::Path) -> ClassifyConfig {
    let mut c = ClassifyConfig {
        inrs: InrSource::Generate { n: 60, seed: 1 },
        schedule: StepSchedule {
            steps: 12,
            eval_every: 4,
            batch: 8,
            warmup: 3,
            ..ClassifyConfig::default().schedule
        },
        cache_dir: dir.join("cache"),
        out_dir: dir.join("out"),
        mlp: vec![16],
        ..ClassifyConfig::default()
    };
    c.nfn.front = Some(3);
    c.nfn.fourier = (4, 3.0);
    c.nfn.widths = vec![5, 5];
    c.nfn.head = vec![8];
    c.nfn.feature_dropout = 0.1;
    c.nfn.head_dropout = 0.1;
    c
}

#[test]
fn classify_inr_trains_every_model_and_reports_invariance() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small(dir.path());
    config.save = Some(dir.path().join("classifier.safetensors"));
    let report = classify_inr(&config, &Cpu::<f32>::new()).unwrap();
    assert_eq!(report.sizes, (48, 6, 6));
    assert!(report.generate_seconds > 0.0);
    assert_eq!(report.models.len(), 4);
    for m in &report.models {
        assert!(m.params > 0 && (0.0..=1.0).contains(&m.accuracy), "{m:?}");
        assert_eq!(m.curve.len(), 3);
        assert_eq!(m.curve[2].step, 12);
        assert!(m.curve.iter().all(|e| e.train_loss.is_finite()));
        assert!(dir
            .path()
            .join(format!("out/curve-{}.csv", m.model))
            .exists());
    }
    let mono = &report.models[0];
    assert_eq!(mono.model, "Monomial-NFN");
    // The saved Monomial-NFN, reloaded, classifies the test SIRENs as the run did.
    let ckpt = Checkpoint::load(config.save.as_ref().unwrap()).unwrap();
    assert_eq!(ckpt.task, Some(Task::ClassifyInr { classes: 10 }));
    let p = predict_networks(
        &ckpt,
        &Networks::File(report.inr_file.clone()),
        &Cpu::<f32>::new(),
        16,
        false,
    )
    .unwrap();
    let mut test = p.clone();
    test.outputs = p.outputs[54 * 10..].to_vec();
    test.targets = p.targets.as_ref().map(|t| t[54..].to_vec());
    assert_eq!(test.score(), Some(("accuracy", mono.accuracy)));
    assert_eq!(mono.accuracy, mono.accuracy_transformed);
    assert!(mono.logit_change < 1e-4, "{}", mono.logit_change);
    // NP/HNP see the sign flips through their Fourier features; the MLP sees everything.
    for m in &report.models[1..] {
        assert!(m.logit_change > 1e-3, "{}: {}", m.model, m.logit_change);
    }
    assert!(report.plot.exists());
    assert!(report.table().contains("Monomial-NFN"));
    // The cached set is reused.
    let again = classify_inr(
        &ClassifyConfig {
            models: vec![InrModelKind::Mlp],
            ..config
        },
        &Cpu::<f32>::new(),
    )
    .unwrap();
    assert_eq!(again.generate_seconds, 0.0);
}

#[test]
fn bad_settings_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let base = small(dir.path());
    let cases = [
        ClassifyConfig {
            schedule: StepSchedule {
                lr: f64::NAN,
                ..base.schedule
            },
            ..base.clone()
        },
        ClassifyConfig {
            schedule: StepSchedule {
                lr: -1.0,
                ..base.schedule
            },
            ..base.clone()
        },
        ClassifyConfig {
            schedule: StepSchedule {
                steps: 0,
                ..base.schedule
            },
            ..base.clone()
        },
        ClassifyConfig {
            schedule: StepSchedule {
                eval_every: 0,
                ..base.schedule
            },
            ..base.clone()
        },
        ClassifyConfig {
            schedule: StepSchedule {
                batch: 0,
                ..base.schedule
            },
            ..base.clone()
        },
        ClassifyConfig {
            models: vec![],
            ..base.clone()
        },
        ClassifyConfig {
            inrs: InrSource::Generate { n: 3, seed: 0 },
            ..base.clone()
        },
    ];
    for c in cases {
        let e = classify_inr(&c, &Cpu::<f32>::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of range"), "{e}");
    }
    assert!(!dir.path().join("cache").exists(), "nothing was generated");
}

#[test]
fn the_paper_configuration_is_one_call_away() {
    let c = ClassifyConfig::default().paper();
    let spec = monomial_nfn::zoo::inr::siren_spec();
    let m = monomial_nfn::classify::build(InrModelKind::Monomial, &c, &spec).unwrap();
    assert_eq!(m.num_params(), 22_146_603);
    assert_eq!(
        (c.schedule.steps, c.schedule.lr, c.schedule.warmup),
        (200_000, 1e-4, 10_000)
    );
}
