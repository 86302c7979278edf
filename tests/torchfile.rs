//! PyTorch state dicts (issue 14): the `.pth` fixtures written once by `torch.save`
//! (tests/fixtures/pth/make_fixtures.py) load bit for bit, safetensors state dicts load the same,
//! chains of dense/conv layers are inferred from names and shapes, and hostile or broken pickles
//! are typed errors.

#![cfg(feature = "cli")]

#[path = "support/formats.rs"]
mod formats;

use std::path::{Path, PathBuf};

use formats::{f32_bytes, pth, pth_archive, pth_with, tensor_pickle};
use monomial_nfn::checkpoint::{self, Checkpoint, Task};
use monomial_nfn::io::TensorFile;
use monomial_nfn::predict::{predict_networks, Networks};
use monomial_nfn::torchfile::{infer_chain, read_networks, Dtype, StateDict};
use monomial_nfn::zoo::NetworkFile;
use monomial_nfn::{Cpu, DatasetProblem, Error, NetActivation, NetworkSpec, Result, TorchProblem};

/// Every fixture `.pth` file (relative to tests/fixtures/pth).
const FIXTURES: [&str; 6] = [
    "tensors.pth",
    "siren/randinit_smaller_3s/net7.pth",
    "siren/randinit_smaller_5s/net12.pth",
    "mlp_named.pth",
    "cnn_sequential.pth",
    "batchnorm.pth",
];

fn expected() -> TensorFile {
    TensorFile::read(&pth("expected.safetensors")).unwrap()
}

fn problem<T: std::fmt::Debug>(r: Result<T>) -> TorchProblem {
    match r {
        Err(Error::Torch { problem, .. }) => problem,
        other => panic!("expected a Torch error, got {other:?}"),
    }
}

/// A file in a fresh temporary directory.
fn temp_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn every_fixture_tensor_loads_bit_identical_to_torch() {
    let want = expected();
    let mut checked = 0;
    for file in FIXTURES {
        let sd = StateDict::read(&pth(file)).unwrap();
        assert!(!sd.entries.is_empty(), "{file}");
        for e in &sd.entries {
            let w = want
                .get(Path::new(file), &format!("{file}:{}", e.name))
                .unwrap();
            assert_eq!(e.tensor.shape, w.shape, "{file}:{}", e.name);
            for (i, (a, b)) in e.tensor.data.iter().zip(&w.data).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{file}:{} element {i}", e.name);
            }
            checked += 1;
        }
    }
    let stored = want.tensors.len();
    assert_eq!(checked, stored, "every expected tensor is in a fixture");
}

#[test]
fn dtypes_views_and_order_of_the_tensor_fixture() {
    let sd = StateDict::read(&pth("tensors.pth")).unwrap();
    assert_eq!(
        sd.names(),
        [
            "f32",
            "f64",
            "f16",
            "bf16",
            "transposed",
            "sliced",
            "scalar"
        ]
    );
    let dtype = |n: &str| sd.get(n).unwrap().dtype;
    assert_eq!(
        [dtype("f32"), dtype("f64"), dtype("f16"), dtype("bf16")],
        [Dtype::F32, Dtype::F64, Dtype::F16, Dtype::BF16]
    );
    // The transposed view (stride (1, 5)) of a 3×5 tensor, materialised row-major.
    assert_eq!(sd.get("transposed").unwrap().tensor.shape, [5, 3]);
    // torch.randn(10)[2:9:3]: storage offset 2, stride 3.
    assert_eq!(sd.get("sliced").unwrap().tensor.shape, [3]);
    let scalar = &sd.get("scalar").unwrap().tensor;
    assert!(scalar.shape.is_empty());
    assert_eq!(scalar.data, [2.5]);
}

#[test]
fn a_safetensors_state_dict_loads_like_the_pth() {
    let st = StateDict::read(&pth("tensors.safetensors")).unwrap();
    let pt = StateDict::read(&pth("tensors.pth")).unwrap();
    assert_eq!(st.entries.len(), pt.entries.len());
    for e in &pt.entries {
        assert_eq!(st.get(&e.name), Some(e), "{}", e.name);
    }
}

#[test]
fn safetensors_names_come_in_natural_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = TensorFile::default();
    for name in [
        "layers.10.weight",
        "layers.2.weight",
        "layers.2.bias",
        "layers.1.weight",
    ] {
        f.tensors
            .insert(name.into(), monomial_nfn::Tensor::zeros(vec![1]));
    }
    let p = dir.path().join("order.safetensors");
    f.write(&p).unwrap();
    let sd = StateDict::read(&p).unwrap();
    assert_eq!(
        sd.names(),
        [
            "layers.1.weight",
            "layers.2.bias",
            "layers.2.weight",
            "layers.10.weight"
        ]
    );
}

#[test]
fn sirens_in_the_published_folder_layout_are_2_32_32_1_chains() {
    for file in FIXTURES.iter().filter(|f| f.starts_with("siren/")) {
        let p = pth(file);
        let sd = StateDict::read(&p).unwrap();
        let chain = infer_chain(&sd, None, NetActivation::Sin, &p).unwrap();
        assert_eq!(chain.modules, ["net.0.linear", "net.1.linear", "net.2"]);
        assert_eq!(
            chain.spec.layers_in_words(),
            "dense 2 -> 32; dense 32 -> 32; dense 32 -> 1"
        );
        assert_eq!(chain.network.batch(), 1);
        let w = &sd.get("net.1.linear.weight").unwrap().tensor;
        assert_eq!(chain.network.weights[1].data, w.data);
    }
}

#[test]
fn named_modules_with_a_bias_free_layer() {
    let p = pth("mlp_named.pth");
    let sd = StateDict::read(&p).unwrap();
    let chain = infer_chain(&sd, None, NetActivation::Relu, &p).unwrap();
    assert_eq!(chain.modules, ["fc1", "fc2", "fc3"]);
    assert_eq!(chain.has_bias, [true, false, true]);
    assert_eq!(
        chain.spec.layers_in_words(),
        "dense 4 -> 8; dense 8 -> 8; dense 8 -> 2"
    );
    assert!(chain.network.biases[1].data.iter().all(|&b| b == 0.0));
    assert_eq!(
        chain.network.biases[2].data,
        sd.get("fc3.bias").unwrap().tensor.data
    );
}

#[test]
fn an_explicit_layer_order_is_followed_and_checked() {
    let p = pth("mlp_named.pth");
    let sd = StateDict::read(&p).unwrap();
    let chain = infer_chain(&sd, Some(&["fc1", "fc2", "fc3"]), NetActivation::Relu, &p).unwrap();
    assert_eq!(chain.modules, ["fc1", "fc2", "fc3"]);
    // fc2 (8 -> 8) cannot follow fc3 (8 -> 2).
    let wrong = infer_chain(&sd, Some(&["fc1", "fc3", "fc2"]), NetActivation::Relu, &p);
    let TorchProblem::NotAChain(msg) = problem(wrong) else {
        panic!("a broken order is not a chain")
    };
    assert!(
        msg.contains("fc2") && msg.contains("fc1.weight [8, 4]"),
        "{msg}"
    );
    let missing = infer_chain(&sd, Some(&["fc1", "fc2"]), NetActivation::Relu, &p);
    assert!(matches!(problem(missing), TorchProblem::NotAChain(m) if m.contains("fc3")));
    let unknown = infer_chain(&sd, Some(&["fc1", "fc9"]), NetActivation::Relu, &p);
    assert!(matches!(problem(unknown), TorchProblem::NotAChain(m) if m.contains("fc9")));
}

#[test]
fn a_sequential_cnn_is_conv_conv_dense() {
    let p = pth("cnn_sequential.pth");
    let sd = StateDict::read(&p).unwrap();
    let chain = infer_chain(&sd, None, NetActivation::Relu, &p).unwrap();
    assert_eq!(chain.modules, ["0", "2", "6"]);
    assert_eq!(chain.spec.layers[0].weight_dims(), [4, 1, 3, 3]);
    assert_eq!(chain.network.weights[0].shape, [1, 1, 4, 1, 3, 3]);
}

#[test]
fn a_batchnorm_model_is_refused_with_the_names_found() {
    let p = pth("batchnorm.pth");
    let sd = StateDict::read(&p).unwrap();
    assert_eq!(sd.get("1.num_batches_tracked").unwrap().dtype, Dtype::I64);
    let r = infer_chain(&sd, None, NetActivation::Relu, &p);
    let TorchProblem::NotAChain(msg) = problem(r) else {
        panic!("a batch norm is not a chain")
    };
    assert!(
        msg.contains("normalisation") && msg.contains("1.running_mean [4]"),
        "{msg}"
    );
}

#[test]
fn a_handmade_view_with_offset_and_strides_materialises_row_major() {
    let dir = tempfile::tempdir().unwrap();
    // Storage 0..12; view offset 1, size (2, 3), stride (1, 4): [[1, 5, 9], [2, 6, 10]].
    let p = temp_file(
        &dir,
        "view.pth",
        &pth_archive(
            &tensor_pickle(12, 1, &[2, 3], &[1, 4]),
            Some(&f32_bytes(12)),
        ),
    );
    let sd = StateDict::read(&p).unwrap();
    let t = &sd.get("w").unwrap().tensor;
    assert_eq!(t.shape, [2, 3]);
    assert_eq!(t.data, [1.0, 5.0, 9.0, 2.0, 6.0, 10.0]);
    // A tensor named several times (tied weights) is read under every name.
    let p = temp_file(&dir, "tied.pth", &repeated_tensor(6, 3));
    let sd = StateDict::read(&p).unwrap();
    assert_eq!(sd.names(), ["w", "w0", "w1", "w2"]);
    assert!(sd
        .entries
        .iter()
        .all(|e| e.tensor.data == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
}

/// An archive whose pickle names one tensor of `numel` floats under `keys` names (memo look-ups).
fn repeated_tensor(numel: usize, keys: usize) -> Vec<u8> {
    let mut p = tensor_pickle(numel as i64, 0, &[numel as i64], &[1]);
    assert!(p.ends_with(b"Ru."));
    p.truncate(p.len() - 2);
    p.extend(b"q\x09");
    for k in 0..keys {
        let key = format!("w{k}");
        p.push(0x8c);
        p.push(key.len() as u8);
        p.extend(key.as_bytes());
        p.extend(b"h\x09");
    }
    p.extend(b"u.");
    pth_archive(&p, Some(&f32_bytes(numel)))
}

/// (name, archive bytes, expected problem kind, substring of the message).
fn hostile_cases() -> Vec<(&'static str, Vec<u8>, &'static str, &'static str)> {
    let valid = std::fs::read(pth("tensors.pth")).unwrap();
    let storage = f32_bytes(6);
    let one = |offset, size: &[i64], stride: &[i64], numel| {
        pth_archive(&tensor_pickle(numel, offset, size, stride), Some(&storage))
    };
    vec![
        (
            "os.system",
            pth_with(
                &valid,
                "data.pkl",
                Some(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R."),
            ),
            "UnsafeGlobal",
            "os.system",
        ),
        (
            "builtins.eval by STACK_GLOBAL",
            pth_with(
                &valid,
                "data.pkl",
                Some(b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93."),
            ),
            "UnsafeGlobal",
            "builtins.eval",
        ),
        (
            "text INT opcode",
            pth_with(&valid, "data.pkl", Some(b"\x80\x02}I1\n.")),
            "Opcode",
            "0x49",
        ),
        (
            "offset past the end",
            one(5, &[2], &[1], 6),
            "Storage",
            "reaches element 6",
        ),
        (
            "negative stride",
            one(5, &[2], &[-1], 6),
            "Storage",
            "negative stride",
        ),
        (
            "huge numel",
            one(0, &[2], &[1], 1 << 60),
            "Storage",
            "claimed",
        ),
        (
            "huge size",
            one(0, &[1 << 40, 1 << 40], &[1, 1], 6),
            "Storage",
            "overflows",
        ),
        (
            "missing storage",
            pth_archive(&tensor_pickle(6, 0, &[6], &[1]), None),
            "Storage",
            "data/0",
        ),
        (
            "truncated archive",
            valid[..valid.len() / 2].to_vec(),
            "Truncated",
            "cut short",
        ),
        (
            "one tensor under many names",
            repeated_tensor(100_000, 30),
            "Storage",
            "repeating",
        ),
        (
            "pickle cut short",
            pth_with(
                &valid,
                "data.pkl",
                Some(&tensor_pickle(6, 0, &[6], &[1])[..40]),
            ),
            "Truncated",
            "data.pkl",
        ),
    ]
}

#[test]
fn hostile_and_broken_pickles_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, kind, needle) in hostile_cases() {
        let p = temp_file(&dir, "case.pth", &bytes);
        let got = problem(StateDict::read(&p));
        let got_kind = format!("{got:?}");
        assert!(got_kind.starts_with(kind), "{name}: {got_kind}");
        assert!(got.to_string().contains(needle), "{name}: {got}");
    }
}

#[test]
fn a_siren_folder_is_a_labelled_set_ordered_by_index() {
    let dir = pth("siren");
    let set = read_networks(&dir, None, NetActivation::Sin).unwrap();
    assert_eq!(set.labels, Some(vec![3, 5]));
    assert_eq!(
        set.spec.layers_in_words(),
        "dense 2 -> 32; dense 32 -> 32; dense 32 -> 1"
    );
    for (b, file) in [
        "randinit_smaller_3s/net7.pth",
        "randinit_smaller_5s/net12.pth",
    ]
    .iter()
    .enumerate()
    {
        let p = dir.join(file);
        let one = infer_chain(&StateDict::read(&p).unwrap(), None, NetActivation::Sin, &p).unwrap();
        assert_eq!(set.network(b).unwrap(), one.network, "{file}");
    }
    // classify-inr and edit-inr read the same folder as an INR set.
    let inrs = NetworkFile::read_inrs(&dir, &Default::default()).unwrap();
    assert_eq!(inrs.networks, set.networks);
}

#[test]
fn a_folder_of_different_architectures_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["mlp_named.pth", "cnn_sequential.pth"] {
        std::fs::copy(pth(f), dir.path().join(f)).unwrap();
    }
    let r = read_networks(dir.path(), None, NetActivation::Relu);
    assert!(
        matches!(&r, Err(Error::Dataset { problem: DatasetProblem::Mismatch(m), .. }) if m.contains("fc1")),
        "{r:?}"
    );
}

/// A checkpoint of a small model over the named-module MLP fixture (4 -> 8 -> 8 -> 2, ReLU).
fn mlp_checkpoint(dir: &tempfile::TempDir) -> PathBuf {
    let spec = NetworkSpec::mlp(&[4, 8, 8, 2], NetActivation::Relu).unwrap();
    let p = dir.path().join("mlp.ckpt.safetensors");
    checkpoint::save(
        &p,
        &formats::small_model(&spec),
        "m",
        Some(Task::PredictGen),
        None,
    )
    .unwrap();
    p
}

#[test]
fn predict_scores_a_state_dict_like_the_same_network_file() {
    let dir = tempfile::tempdir().unwrap();
    let ck = Checkpoint::load(&mlp_checkpoint(&dir)).unwrap();
    let p = pth("mlp_named.pth");
    let cpu = Cpu::<f64>::new();
    let torch = Networks::StateDicts {
        path: p.clone(),
        layers: Some(vec!["fc1".into(), "fc2".into(), "fc3".into()]),
        cache_dir: None,
    };
    let got = predict_networks(&ck, &torch, &cpu, 4, false).unwrap();
    let file = read_networks(&p, None, NetActivation::Relu).unwrap();
    let nf = dir.path().join("mlp.safetensors");
    file.write(&nf).unwrap();
    let want = predict_networks(&ck, &Networks::File(nf), &cpu, 4, false).unwrap();
    assert_eq!(got.outputs, want.outputs);
}

#[test]
fn mnfn_predict_reads_a_pth_and_refuses_a_batchnorm_one() {
    let dir = tempfile::tempdir().unwrap();
    let ck = mlp_checkpoint(&dir);
    let run = |networks: &Path, extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mnfn"))
            .args(["predict", "--backend", "cpu", "--model"])
            .arg(&ck)
            .arg("--networks")
            .arg(networks)
            .arg("--out")
            .arg(dir.path().join("p.csv"))
            .args(extra)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("panicked"), "{text}");
        (out.status.success(), text)
    };
    let (ok, text) = run(&pth("mlp_named.pth"), &["--layers", "fc1,fc2,fc3"]);
    assert!(ok, "{text}");
    assert!(text.contains("1 networks"), "{text}");
    let (ok, text) = run(&pth("batchnorm.pth"), &[]);
    assert!(!ok && text.contains("running_mean"), "{text}");
    let (ok, text) = run(&pth("mlp_named.pth"), &["--layers", "fc1,fc3,fc2"]);
    assert!(!ok && text.contains("not a chain"), "{text}");
}

#[test]
fn a_folder_of_1000_sirens_loads_within_5_seconds() {
    // The target: 1,000 files of 2 -> 32 -> 32 -> 1 SIRENs in the published layout.
    let dir = tempfile::tempdir().unwrap();
    let net = std::fs::read(pth("siren/randinit_smaller_3s/net7.pth")).unwrap();
    for idx in 0..1000 {
        let d = dir.path().join(format!("randinit_smaller_{}s", idx % 10));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("net{idx}.pth")), &net).unwrap();
    }
    let t0 = std::time::Instant::now();
    let set = read_networks(dir.path(), None, NetActivation::Sin).unwrap();
    let seconds = t0.elapsed().as_secs_f64();
    eprintln!("1000 SIREN .pth files in {seconds:.3} s");
    assert_eq!(set.networks.batch(), 1000);
    let labels = set.labels.unwrap();
    assert!(labels.iter().enumerate().all(|(i, &l)| l == i % 10));
    assert!(seconds < 5.0, "{seconds} s");
}

#[test]
fn a_network_is_written_back_with_its_original_names_and_values() {
    let dir = tempfile::tempdir().unwrap();
    for (file, act) in [
        ("mlp_named.pth", NetActivation::Relu),
        ("cnn_sequential.pth", NetActivation::Relu),
        ("siren/randinit_smaller_3s/net7.pth", NetActivation::Sin),
    ] {
        let p = pth(file);
        let sd = StateDict::read(&p).unwrap();
        let chain = infer_chain(&sd, None, act, &p).unwrap();
        let out = dir.path().join("back.safetensors");
        chain
            .write_state_dict(&out, &chain.network, 0, Dtype::F32)
            .unwrap();
        let back = StateDict::read(&out).unwrap();
        assert_eq!(back.entries.len(), sd.entries.len(), "{file}");
        for e in &sd.entries {
            // float32 -> f64 -> float32 is exact: the same bits come back.
            assert_eq!(back.get(&e.name), Some(e), "{file}: {}", e.name);
        }
        // An edited network with a bias where the original had none cannot be written.
        let mut edited = chain.network.clone();
        let free = chain.has_bias.iter().position(|&b| !b);
        if let Some(i) = free {
            edited.biases[i].data[0] = 1.0;
            let r = chain.write_state_dict(&out, &edited, 0, Dtype::F32);
            assert!(
                matches!(r, Err(Error::Input(m)) if m.contains("fc2")),
                "{file}"
            );
        }
    }
}
