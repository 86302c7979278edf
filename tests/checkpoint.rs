//! Train once, predict later: checkpoints carry their architecture, so `Checkpoint::load` and
//! `mnfn predict` need no flags; predictions reproduce the training run's exactly on the same
//! backend and within float32 noise on the other; broken or foreign files are typed errors.

mod common;

use std::path::Path;
use std::process::Command;

use monomial_nfn::checkpoint::{self, Checkpoint, Task};
use monomial_nfn::experiment::{predict_gen, ModelKind, PredictGenConfig, ZooSource};
use monomial_nfn::io::{save_checkpoint, TensorFile};
use monomial_nfn::nn::edit::InrEditorConfig;
use monomial_nfn::nn::inr::{InrClassifierConfig, InrDataset};
use monomial_nfn::predict::{predict_networks, Networks};
use monomial_nfn::{Backend, Cpu, Error, Model, NetActivation, WeightSpace};
use rand::SeedableRng;

fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(seed)
}

fn small_run(dir: &Path, model: ModelKind) -> PredictGenConfig {
    PredictGenConfig {
        zoo: ZooSource::Generate { n: 40, seed: 5 },
        models: vec![model],
        epochs: 1,
        batch: 4,
        cache_dir: dir.join("cache"),
        out_dir: dir.join("out"),
        save: Some(dir.join("model.safetensors")),
        ..PredictGenConfig::default()
    }
}

/// A run with `--save`, then the checkpoint scoring the whole zoo: the test networks' predictions
/// are bitwise those of the run (NP also checks the stored standardisation).
#[test]
fn a_saved_predict_gen_model_reproduces_the_runs_test_predictions_exactly() {
    for kind in [ModelKind::Monomial, ModelKind::Np] {
        for backend in [
            &Cpu::<f64>::new() as &dyn Backend,
            &Cpu::<f32>::new() as &dyn Backend,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let cfg = small_run(dir.path(), kind);
            let report = predict_gen(&cfg, backend).unwrap();
            let ckpt = Checkpoint::load(cfg.save.as_ref().unwrap()).unwrap();
            assert_eq!(ckpt.label, kind.name());
            assert_eq!(ckpt.task, Some(Task::PredictGen));
            assert_eq!(ckpt.standardize.is_some(), kind == ModelKind::Np);
            assert_eq!(ckpt.model.num_params(), report.models[0].params);
            let p = predict_networks(
                &ckpt,
                &Networks::Zoo(report.zoo_dir.clone()),
                backend,
                7,
                false,
            )
            .unwrap();
            assert_eq!(p.len(), 40);
            let ours: Vec<f64> = report.test_index.iter().map(|&i| p.outputs[i]).collect();
            assert_eq!(
                ours,
                report.models[0].test_predictions,
                "{} on {}",
                kind.name(),
                backend.describe()
            );
        }
    }
}

/// The CLI pair of the issue: `predict-gen --save` then `predict --model --zoo`; the rows of the
/// test networks in predictions.csv equal the run's own CSV, character for character.
#[test]
fn mnfn_predict_reproduces_predict_gen_save_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mnfn = env!("CARGO_BIN_EXE_mnfn");
    let run = |args: &[&str]| {
        let out = Command::new(mnfn).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "mnfn {args:?}: {text}");
        assert!(!text.contains("panicked"), "{text}");
        text
    };
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (cache, out, model) = (d.join("cache"), d.join("out"), d.join("m.safetensors"));
    run(&[
        "predict-gen",
        "--generate",
        "40",
        "--models",
        "monomial",
        "--epochs",
        "1",
        "--batch",
        "4",
        "--backend",
        "cpu",
        "--cache",
        &s(&cache),
        "--out",
        &s(&out),
        "--save",
        &s(&model),
    ]);
    let zoo = cache.join("cnn-zoo-relu-n40-seed0");
    let csv = d.join("predictions.csv");
    let text = run(&[
        "predict",
        "--model",
        &s(&model),
        "--zoo",
        &s(&zoo),
        "--backend",
        "cpu",
        "--out",
        &s(&csv),
    ]);
    assert!(text.contains("Kendall tau"), "{text}");
    let all = std::fs::read_to_string(&csv).unwrap();
    let run_csv = std::fs::read_to_string(out.join("predictions-Monomial-NFN.csv")).unwrap();
    let mut lines = run_csv.lines();
    assert_eq!(lines.next(), Some("index,prediction,test_accuracy"));
    assert_eq!(all.lines().next(), Some("index,prediction,test_accuracy"));
    let test_rows: Vec<&str> = lines.collect();
    assert_eq!(test_rows.len(), 20);
    for row in test_rows {
        assert!(all.lines().any(|l| l == row), "{row} not in {all}");
    }
    // Wrong inputs are clear errors with a non-zero exit.
    for args in [
        vec!["predict", "--model", &s(&csv), "--zoo", &s(&zoo)],
        vec![
            "predict",
            "--model",
            &s(&model),
            "--zoo",
            &s(&d.join("nothing")),
        ],
        vec!["predict", "--model", &s(&model)],
    ] {
        let out = Command::new(mnfn).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            !err.contains("panicked") && !err.is_empty(),
            "{args:?}: {err}"
        );
    }
}

/// Every kind of layer survives the round trip: the rebuilt model equals the saved one and
/// computes the same outputs.
#[test]
fn every_layer_kind_round_trips_through_a_checkpoint() {
    let mut r = rng(3);
    let spec = InrClassifierConfig::paper_spec(InrDataset::Mnist);
    let mut cifar = InrClassifierConfig::paper(InrDataset::Cifar);
    cifar.widths = vec![8; 2];
    cifar.head = vec![16; 2];
    cifar.fourier.0 = 4;
    let mut editor = InrEditorConfig::paper_monomial((4, 4));
    editor.widths = vec![4];
    editor.fourier.0 = 3;
    let models = [
        Model::stat_cnn_zoo(&mut r).unwrap(),
        Model::np_cnn_zoo(&mut r).unwrap(),
        ModelKind::Monomial.build(NetActivation::Tanh, 1).unwrap(),
        cifar.build(&spec, &mut r).unwrap(),
        editor.build(&spec, &mut r).unwrap(),
    ];
    let cpu = Cpu::<f64>::new();
    for (k, model) in models.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        checkpoint::save(&path, model, "m", None, None).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back.model.layers(), model.layers(), "model {k}");
        assert_eq!(back.model.spec(), model.spec());
        let x = WeightSpace::random(model.spec(), 2, model.in_channels(), &mut r);
        let (a, b) = (
            model.forward(&cpu, &x).unwrap(),
            back.model.forward(&cpu, &x).unwrap(),
        );
        assert_eq!(a, b, "model {k}");
    }
}

/// Saved on the CPU, scored on the GPU: the same predictions within float32 noise.
#[test]
fn a_checkpoint_predicts_alike_on_cpu_and_gpu() {
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_run(dir.path(), ModelKind::Monomial);
    let report = predict_gen(&cfg, &Cpu::<f32>::new()).unwrap();
    let ckpt = Checkpoint::load(cfg.save.as_ref().unwrap()).unwrap();
    let zoo = Networks::Zoo(report.zoo_dir.clone());
    let cpu = predict_networks(&ckpt, &zoo, &Cpu::<f64>::new(), 16, false).unwrap();
    let on_gpu = predict_networks(&ckpt, &zoo, &gpu, 16, false).unwrap();
    let rel = common::max_rel(&on_gpu.outputs, &cpu.outputs);
    assert!(rel < 1e-4, "GPU vs CPU {rel:e}");
}

fn expect_format_error(path: &Path, what: &str, needle: &str) {
    match Checkpoint::load(path) {
        Err(Error::Format { msg, .. }) => assert!(msg.contains(needle), "{what}: {msg}"),
        other => panic!("{what}: expected a format error, got {other:?}"),
    }
}

#[test]
fn foreign_tampered_and_oversized_checkpoints_are_format_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let model = ModelKind::Monomial.build(NetActivation::Relu, 0).unwrap();
    checkpoint::save(&path, &model, "m", Some(Task::PredictGen), None).unwrap();
    let good = TensorFile::read(&path).unwrap();
    let edited = |f: &dyn Fn(&mut TensorFile)| {
        let mut file = good.clone();
        f(&mut file);
        let p = dir.path().join("edited.safetensors");
        file.write(&p).unwrap();
        p
    };
    // A golden file is a safetensors file but not a checkpoint.
    let golden = &common::golden_files()[0];
    expect_format_error(golden, "golden", "not a monomial-nfn checkpoint");
    let p = edited(&|f| {
        f.metadata
            .insert("format".into(), "monomial-nfn-checkpoint-v1".into());
    });
    expect_format_error(&p, "version 1", "version 1");
    let p = edited(&|f| {
        f.metadata.insert("version".into(), "9".into());
    });
    expect_format_error(&p, "version 9", "version 9");
    let p = edited(&|f| {
        f.metadata
            .insert("architecture".into(), "{\"spec\": 3".into());
    });
    expect_format_error(&p, "broken JSON", "architecture");
    // A tensor of another shape, a missing tensor, an extra tensor.
    let p = edited(&|f| {
        let t = f.tensors.get_mut("layers.0.first.lambda").unwrap();
        t.shape = vec![t.len()];
    });
    expect_format_error(&p, "reshaped", "layer 0");
    let p = edited(&|f| {
        f.tensors.remove("layers.0.first.lambda");
    });
    expect_format_error(&p, "missing", "layers.0.first.lambda");
    let p = edited(&|f| {
        let t = f.tensors["layers.0.first.lambda"].clone();
        f.tensors.insert("layers.99.x".into(), t);
    });
    expect_format_error(&p, "extra", "belong to no parameter");
    // Huge claimed channel counts: refused before any allocation of that size.
    let p = edited(&|f| {
        let a = f.metadata["architecture"].replacen("\"c_out\":16", "\"c_out\":4000000000", 1);
        f.metadata.insert("architecture".into(), a);
    });
    expect_format_error(&p, "huge", "parameters");
    // A checkpoint scoring networks of another architecture.
    let ckpt = Checkpoint::load(&path).unwrap();
    let zoo_dir = dir.path().join("mlp.safetensors");
    let mlp = monomial_nfn::NetworkSpec::mlp(&[2, 3, 1], NetActivation::Relu).unwrap();
    let nets = WeightSpace::random(&mlp, 3, 1, &mut rng(1));
    monomial_nfn::zoo::NetworkFile {
        spec: mlp,
        networks: nets,
        labels: None,
        images: None,
        metadata: Default::default(),
    }
    .write(&zoo_dir)
    .unwrap();
    let err = predict_networks(
        &ckpt,
        &Networks::File(zoo_dir),
        &Cpu::<f32>::new(),
        8,
        false,
    )
    .unwrap_err();
    assert!(err.to_string().contains("do not fit the model"), "{err}");
    // The older API: parameters into a model built in code.
    let mut m = ModelKind::Monomial.build(NetActivation::Relu, 9).unwrap();
    monomial_nfn::io::load_checkpoint(&mut m, &path).unwrap();
    assert_eq!(m.layers(), model.layers());
    save_checkpoint(&m, &path).unwrap();
    assert_eq!(Checkpoint::load(&path).unwrap().task, None);
}

/// The same content written twice gives the same bytes: safetensors writes `__metadata__` in a
/// HashMap's order, which differs between maps holding the same entries.
#[test]
fn the_same_tensor_file_is_written_byte_for_byte_alike() {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<(String, String)> = (0..24)
        .map(|i| (format!("key{i}"), format!("value \"{i}\"")))
        .collect();
    let file = |order: &mut dyn Iterator<Item = &(String, String)>| {
        let t =
            monomial_nfn::Tensor::new(vec![2, 3], vec![0.5, -1.0, 2.0, 3.5, 0.0, 1e-3]).unwrap();
        TensorFile {
            metadata: order.cloned().collect(),
            tensors: [("w".to_string(), t)].into(),
        }
    };
    let (a, b) = (
        dir.path().join("a.safetensors"),
        dir.path().join("b.safetensors"),
    );
    file(&mut entries.iter()).write(&a).unwrap();
    file(&mut entries.iter().rev()).write(&b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let back = TensorFile::read(&a).unwrap();
    assert_eq!(back.metadata.len(), entries.len());
    assert!(entries.iter().all(|(k, v)| back.metadata.get(k) == Some(v)));
}
