//! Data sets of state-dict files (issue 14 item 3): `file,label` / `file,accuracy` lists, the
//! one-file cache (reused while the files are unchanged, stale when one changes, is added or
//! removed, rewritten with a warning when damaged), predict-gen on a folder of state dicts, and
//! edited SIRENs written back as state dicts with their original names.

#![cfg(feature = "cli")]

mod common;
#[path = "support/formats.rs"]
mod formats;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use formats::pth;
use monomial_nfn::classify::InrSource;
use monomial_nfn::editing::{edit_inr, EditConfig};
use monomial_nfn::experiment::{predict_gen, ModelKind, PredictGenConfig, ZooSource};
use monomial_nfn::nn::edit::InrEditorConfig;
use monomial_nfn::torchfile::{
    infer_chain, read_set, Chain, Dtype, ReadOptions, StateDict, StateDictSet,
};
use monomial_nfn::train::StepSchedule;
use monomial_nfn::zoo::{NetworkFile, StepFilter, Zoo, ZooFilter};
use monomial_nfn::{Cpu, DatasetProblem, Error, NetActivation};

/// The two SIREN fixtures' bytes (net7 and net12).
fn sirens() -> [Vec<u8>; 2] {
    [
        std::fs::read(pth("siren/randinit_smaller_3s/net7.pth")).unwrap(),
        std::fs::read(pth("siren/randinit_smaller_5s/net12.pth")).unwrap(),
    ]
}

/// `n` SIRENs in the published layout under `dir`: `net{i}.pth` holds fixture i % 2 and sits in
/// `randinit_smaller_{i % 10}s`.
fn siren_folder(dir: &Path, n: usize) {
    let nets = sirens();
    for i in 0..n {
        let d = dir.join(format!("randinit_smaller_{}s", i % 10));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("net{i}.pth")), &nets[i % 2]).unwrap();
    }
}

fn sin_chain(path: &Path) -> Chain {
    infer_chain(
        &StateDict::read(path).unwrap(),
        None,
        NetActivation::Sin,
        path,
    )
    .unwrap()
}

fn cached(dir: &Path) -> ReadOptions {
    ReadOptions {
        cache_dir: Some(dir.to_path_buf()),
        ..ReadOptions::default()
    }
}

/// The cache files under `cache` (the set file and its manifest).
fn cache_files(cache: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(cache.join("state-dicts"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn same_set(a: &StateDictSet, b: &StateDictSet) {
    assert_eq!(a.file.networks, b.file.networks);
    assert_eq!(a.file.spec, b.file.spec);
    assert_eq!(a.file.labels, b.file.labels);
    assert_eq!(a.file.metadata, b.file.metadata);
    assert_eq!(a.accuracies, b.accuracies);
    assert_eq!(a.files, b.files);
    assert_eq!(a.root, b.root);
    assert_eq!(a.template, b.template);
}

#[test]
fn a_label_list_orders_and_labels_any_layout() {
    let dir = tempfile::tempdir().unwrap();
    let [a, b] = sirens();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("first.pth"), &a).unwrap();
    std::fs::write(dir.path().join("sub/second.pth"), &b).unwrap();
    // A file no row names is not read.
    std::fs::write(dir.path().join("unlisted.pth"), b"not read").unwrap();
    let csv = dir.path().join("labels.csv");
    std::fs::write(&csv, "file,label\nsub/second.pth,4\nfirst.pth,1\n").unwrap();
    let opts = ReadOptions {
        classes: Some(10),
        ..ReadOptions::default()
    };
    let set = read_set(dir.path(), NetActivation::Sin, &opts).unwrap();
    assert_eq!(set.file.labels, Some(vec![4, 1]));
    assert_eq!(set.accuracies, None);
    assert_eq!(
        set.files,
        [PathBuf::from("sub/second.pth"), PathBuf::from("first.pth")]
    );
    let want = sin_chain(&dir.path().join("sub/second.pth"));
    assert_eq!(set.file.network(0).unwrap(), want.network);
    assert_eq!(
        set.file.network(1).unwrap(),
        sin_chain(&dir.path().join("first.pth")).network
    );
    // The list itself is the same source.
    let direct = read_set(&csv, NetActivation::Sin, &opts).unwrap();
    same_set(&direct, &set);
    // An accuracy list gives accuracies and no labels.
    std::fs::write(&csv, "file,accuracy\nfirst.pth,0.25\nsub/second.pth,0.75\n").unwrap();
    let acc = read_set(&csv, NetActivation::Sin, &opts).unwrap();
    assert_eq!(acc.accuracies, Some(vec![0.25, 0.75]));
    assert_eq!(acc.file.labels, None);
    // Two CSVs in a folder: the user must say which.
    std::fs::write(dir.path().join("other.csv"), "file,label\n").unwrap();
    let r = read_set(dir.path(), NetActivation::Sin, &opts);
    assert!(
        matches!(&r, Err(Error::Dataset { problem: DatasetProblem::Malformed(m), .. }) if m.contains("several CSV")),
        "{r:?}"
    );
}

/// Sets a file's modification time `secs` seconds after the epoch's 2026 (so a rewrite within
/// one clock tick still counts as a change).
fn touch(path: &Path, secs: u64) {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + secs);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn the_cache_is_reused_while_files_are_unchanged_and_stale_when_they_change() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    siren_folder(data.path(), 12);
    let before: Vec<_> = walk(data.path());
    let opts = cached(cache.path());
    let fresh = read_set(data.path(), NetActivation::Sin, &opts).unwrap();
    assert_eq!(fresh.file.networks.batch(), 12);
    let files = cache_files(cache.path());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[1].to_string_lossy().ends_with(".safetensors"));
    // Nothing is written into the data folder (read-only data works).
    assert_eq!(walk(data.path()), before);
    let again = read_set(data.path(), NetActivation::Sin, &opts).unwrap();
    same_set(&again, &fresh);
    let uncached = read_set(data.path(), NetActivation::Sin, &ReadOptions::default()).unwrap();
    same_set(&again, &uncached);

    // Proof that the second read came from the cache: a file rewritten with other values but
    // the same size and modification time is not noticed...
    let (a7, a12) = (
        sin_chain(&pth("siren/randinit_smaller_3s/net7.pth")),
        sin_chain(&pth("siren/randinit_smaller_5s/net12.pth")),
    );
    std::fs::remove_file(data.path().join("randinit_smaller_0s/net0.pth")).unwrap();
    let net0 = data.path().join("randinit_smaller_0s/net0.safetensors");
    a7.write_state_dict(&net0, &a7.network, 0, Dtype::F32)
        .unwrap();
    touch(&net0, 0);
    let stamped = read_set(data.path(), NetActivation::Sin, &opts).unwrap();
    assert_eq!(stamped.file.network(0).unwrap(), a7.network);
    let size = std::fs::metadata(&net0).unwrap().len();
    a7.write_state_dict(&net0, &a12.network, 0, Dtype::F32)
        .unwrap();
    assert_eq!(std::fs::metadata(&net0).unwrap().len(), size);
    touch(&net0, 0);
    let stale = read_set(data.path(), NetActivation::Sin, &opts).unwrap();
    same_set(&stale, &stamped);
    // ...and a new modification time makes the cache stale: the new values are read.
    touch(&net0, 1);
    let changed = read_set(data.path(), NetActivation::Sin, &opts).unwrap();
    assert_eq!(changed.file.network(0).unwrap(), a12.network);
    let [a, _] = sirens();
    // An added file.
    std::fs::write(data.path().join("randinit_smaller_2s/net12.pth"), &a).unwrap();
    let added = read_set(data.path(), NetActivation::Sin, &opts).unwrap();
    assert_eq!(added.file.networks.batch(), 13);
    assert_eq!(added.file.labels.as_ref().unwrap()[12], 2);
    // A removed file.
    std::fs::remove_file(data.path().join("randinit_smaller_3s/net3.pth")).unwrap();
    let removed = read_set(data.path(), NetActivation::Sin, &opts).unwrap();
    assert_eq!(removed.file.networks.batch(), 12);
    assert!(!removed
        .files
        .contains(&PathBuf::from("randinit_smaller_3s/net3.pth")));
    same_set(
        &removed,
        &read_set(data.path(), NetActivation::Sin, &ReadOptions::default()).unwrap(),
    );
    // Still one cache for the folder.
    assert_eq!(cache_files(cache.path()).len(), 2);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn a_changed_label_list_makes_the_cache_stale() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let [a, b] = sirens();
    std::fs::write(data.path().join("a.pth"), &a).unwrap();
    std::fs::write(data.path().join("b.pth"), &b).unwrap();
    let csv = data.path().join("labels.csv");
    std::fs::write(&csv, "file,label\na.pth,1\nb.pth,2\n").unwrap();
    touch(&csv, 0);
    let opts = cached(cache.path());
    let first = read_set(data.path(), NetActivation::Sin, &opts).unwrap();
    assert_eq!(first.file.labels, Some(vec![1, 2]));
    std::fs::write(&csv, "file,label\na.pth,7\nb.pth,2\n").unwrap();
    touch(&csv, 1);
    let second = read_set(data.path(), NetActivation::Sin, &opts).unwrap();
    assert_eq!(second.file.labels, Some(vec![7, 2]));
}

#[test]
fn a_damaged_cache_is_rewritten_with_a_warning() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    siren_folder(data.path(), 4);
    let opts = cached(cache.path());
    let fresh = read_set(data.path(), NetActivation::Sin, &opts).unwrap();
    let [manifest, file] = <[PathBuf; 2]>::try_from(cache_files(cache.path())).unwrap();
    let good = std::fs::read(&file).unwrap();
    // Library: a flipped byte is caught by the manifest, the set is read from its files and
    // the cache written again.
    let mut bad = good.clone();
    let at = bad.len() - 3;
    bad[at] ^= 0x40;
    std::fs::write(&file, &bad).unwrap();
    let read = read_set(data.path(), NetActivation::Sin, &opts).unwrap();
    same_set(&read, &fresh);
    let rewritten = || {
        monomial_nfn::manifest::verify(&manifest).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().len(), good.len() as u64);
    };
    rewritten();
    // The command line says so: a truncated cache, then a missing manifest.
    let dir = data.path().to_str().unwrap();
    let c = cache.path().to_str().unwrap();
    let png = cache.path().join("one.png");
    let render = || {
        common::mnfn(
            &[
                "inr",
                "render",
                dir,
                "--index",
                "1",
                "--backend",
                "cpu",
                "--cache",
                c,
                "--out",
                png.to_str().unwrap(),
            ],
            &[],
        )
    };
    std::fs::write(&file, &good[..good.len() / 2]).unwrap();
    let (code, text) = render();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("WARN") && text.contains("damaged"), "{text}");
    rewritten();
    std::fs::remove_file(&manifest).unwrap();
    let (code, text) = render();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("no manifest"), "{text}");
    rewritten();
    let (code, text) = render();
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("WARN"), "{text}");
}

#[test]
fn an_unwritable_cache_is_a_warning_not_an_error() {
    let data = tempfile::tempdir().unwrap();
    siren_folder(data.path(), 3);
    // A cache folder below a plain file can never be created.
    let blocker = data.path().join("blocker.txt");
    std::fs::write(&blocker, b"a file").unwrap();
    let set = read_set(data.path(), NetActivation::Sin, &cached(&blocker)).unwrap();
    assert_eq!(set.file.networks.batch(), 3);
}

#[test]
fn a_folder_of_1000_sirens_reads_from_its_cache_within_5_seconds() {
    // The target: 1,000 files of 2 -> 32 -> 32 -> 1 SIRENs, after the first read.
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    siren_folder(data.path(), 1000);
    let opts = cached(cache.path());
    let t0 = std::time::Instant::now();
    let first = read_set(data.path(), NetActivation::Sin, &opts).unwrap();
    let first_s = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    let again = read_set(data.path(), NetActivation::Sin, &opts).unwrap();
    let cached_s = t1.elapsed().as_secs_f64();
    eprintln!("1000 SIREN .pth files: first read {first_s:.3} s, cached read {cached_s:.3} s");
    same_set(&again, &first);
    assert_eq!(again.file.networks.batch(), 1000);
    assert!(cached_s < 5.0, "{cached_s} s");
}

/// A small generated CNN-Zoo zoo written both as a Small CNN Zoo directory and as a folder of
/// safetensors state dicts with a `file,accuracy` list (same networks, same order).
fn zoo_both_ways(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let zoo_dir = dir.join("zoo");
    formats::write_zoo_of(&zoo_dir, n, 5);
    let filter = ZooFilter {
        activation: Some(NetActivation::Relu),
        step: StepFilter::Final,
    };
    let zoo = Zoo::open(&zoo_dir, &filter).unwrap();
    let all: Vec<usize> = (0..zoo.len()).collect();
    let ws = zoo.weight_space(&all).unwrap();
    let spec = zoo.layout.spec().clone();
    let chain = Chain {
        modules: (0..spec.num_layers())
            .map(|i| format!("layers.{i}"))
            .collect(),
        has_bias: vec![true; spec.num_layers()],
        network: zoo.weight_space(&[0]).unwrap(),
        spec,
    };
    let sd_dir = dir.join("state-dicts");
    std::fs::create_dir_all(&sd_dir).unwrap();
    let mut csv = String::from("file,accuracy\n");
    for (i, acc) in zoo.metric("test_accuracy").unwrap().iter().enumerate() {
        let name = format!("model_{i}.safetensors");
        chain
            .write_state_dict(&sd_dir.join(&name), &ws, i, Dtype::F32)
            .unwrap();
        csv += &format!("{name},{acc}\n");
    }
    std::fs::write(sd_dir.join("accuracies.csv"), csv).unwrap();
    (zoo_dir, sd_dir)
}

#[test]
fn predict_gen_on_a_folder_of_state_dicts_equals_the_same_zoo_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (zoo_dir, sd_dir) = zoo_both_ways(dir.path(), 12);
    let run = |source: &Path, out: &str| {
        let cfg = PredictGenConfig {
            zoo: ZooSource::Dir(source.to_path_buf()),
            models: vec![ModelKind::Stat],
            epochs: 2,
            batch: 4,
            cache_dir: dir.path().join("cache"),
            out_dir: dir.path().join(out),
            ..PredictGenConfig::default()
        };
        predict_gen(&cfg, &Cpu::<f64>::new()).unwrap()
    };
    let want = run(&zoo_dir, "out-zoo");
    let got = run(&sd_dir, "out-sd");
    assert_eq!(got.sizes, want.sizes);
    assert_eq!(got.test_index, want.test_index);
    let (g, w) = (&got.models[0], &want.models[0]);
    assert_eq!(g.test_predictions, w.test_predictions);
    assert_eq!(g.tau.to_bits(), w.tau.to_bits());
    // A state dict of another weight space is refused, naming the file.
    let odd = sd_dir.join("model_3.safetensors");
    std::fs::copy(pth("mlp_named.pth"), &odd).unwrap();
    let cfg = PredictGenConfig {
        zoo: ZooSource::Dir(sd_dir.clone()),
        models: vec![ModelKind::Stat],
        cache_dir: dir.path().join("cache"),
        out_dir: dir.path().join("out-odd"),
        ..PredictGenConfig::default()
    };
    let r = predict_gen(&cfg, &Cpu::<f64>::new());
    assert!(
        matches!(&r, Err(Error::Dataset { path, problem: DatasetProblem::Mismatch(_) }) if path == &odd),
        "{:?}",
        r.err()
    );
    // Without accuracies there is nothing to predict.
    std::fs::write(
        sd_dir.join("accuracies.csv"),
        "file,label\nmodel_0.safetensors,1\n",
    )
    .unwrap();
    let r = predict_gen(&cfg, &Cpu::<f64>::new());
    assert!(
        matches!(&r, Err(Error::Dataset { problem: DatasetProblem::MissingColumn(m), .. }) if m.contains("accuracy")),
        "{:?}",
        r.err()
    );
}

#[test]
fn edited_sirens_are_written_back_as_state_dicts_with_their_original_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sirens");
    siren_folder(&data, 20);
    let saved = dir.path().join("edited.safetensors");
    let out = dir.path().join("edited-state-dicts");
    let config = EditConfig {
        inrs: InrSource::File(data.clone()),
        editor: InrEditorConfig {
            front: Some(3),
            fourier: (4, 3.0),
            widths: vec![6, 6],
            ..InrEditorConfig::paper_monomial((8, 8))
        },
        schedule: StepSchedule {
            steps: 10,
            eval_every: 5,
            batch: 4,
            warmup: 2,
            ..EditConfig::default().schedule
        },
        models: vec![monomial_nfn::editing::EditModelKind::Monomial],
        examples: 1,
        save_edited: Some(saved.clone()),
        save_edited_state_dicts: Some(out.clone()),
        cache_dir: dir.path().join("cache"),
        out_dir: dir.path().join("out"),
        ..EditConfig::default()
    };
    let report = edit_inr(&config, &Cpu::<f32>::new()).unwrap();
    // 20 SIRENs: 16 train, 2 validation, the last 2 (net18, net19) test.
    let want: Vec<PathBuf> = ["randinit_smaller_8s/net18", "randinit_smaller_9s/net19"]
        .iter()
        .map(|f| out.join(format!("{f}.safetensors")))
        .collect();
    assert_eq!(report.edited_state_dicts, want);
    let edited = NetworkFile::read(&saved, None).unwrap();
    let source = StateDict::read(&data.join("randinit_smaller_8s/net18.pth")).unwrap();
    for (k, p) in want.iter().enumerate() {
        let back = StateDict::read(p).unwrap();
        let mut names = back.names();
        let mut original = source.names();
        names.sort();
        original.sort();
        assert_eq!(names, original);
        for e in &source.entries {
            assert_eq!(back.get(&e.name).unwrap().tensor.shape, e.tensor.shape);
        }
        // The values are the edited networks', in float32.
        let chain = sin_chain(p);
        let net = edited.network(k).unwrap();
        for (got, w) in chain
            .network
            .weights
            .iter()
            .chain(&chain.network.biases)
            .zip(net.weights.iter().chain(&net.biases))
        {
            let w32: Vec<f64> = w.data.iter().map(|&v| v as f32 as f64).collect();
            assert_eq!(got.data, w32);
        }
    }
    // The written folder is itself a set in the published layout.
    let back = read_set(&out, NetActivation::Sin, &ReadOptions::default()).unwrap();
    assert_eq!(back.file.labels, Some(vec![8, 9]));
    // Only a state-dict set can be written back as state dicts.
    let wrong = EditConfig {
        inrs: InrSource::Generate { n: 20, seed: 0 },
        ..config
    };
    assert!(matches!(wrong.validate(), Err(Error::Setting { .. })));
}

#[test]
fn classify_inr_takes_a_folder_with_a_label_list() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sirens");
    siren_folder(&data, 20);
    let mut csv = String::from("file,label\n");
    for f in walk(&data) {
        let rel = f.strip_prefix(&data).unwrap().display().to_string();
        csv += &format!("{rel},{}\n", csv.lines().count() % 7);
    }
    std::fs::write(data.join("labels.csv"), csv).unwrap();
    let (d, c, o) = (
        data.to_str().unwrap(),
        dir.path().join("cache"),
        dir.path().join("out"),
    );
    let (code, text) = common::mnfn(
        &[
            "classify-inr",
            "--inrs",
            d,
            "--backend",
            "cpu",
            "--steps",
            "2",
            "--eval-every",
            "1",
            "--batch",
            "4",
            "--models",
            "mlp",
            "--head-width",
            "4",
            "--cache",
            c.to_str().unwrap(),
            "--out",
            o.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("16 train, 2 validation, 2 test SIRENs"),
        "{text}"
    );
    // A label the models cannot hold names the row.
    std::fs::write(
        data.join("labels.csv"),
        "file,label\nrandinit_smaller_0s/net0.pth,12\n",
    )
    .unwrap();
    let (code, text) = common::mnfn(
        &[
            "classify-inr",
            "--inrs",
            d,
            "--backend",
            "cpu",
            "--cache",
            c.to_str().unwrap(),
            "--out",
            o.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("row 2: label 12"), "{text}");
}

#[test]
fn a_single_state_dict_file_is_not_cached() {
    let cache = tempfile::tempdir().unwrap();
    let p = pth("siren/randinit_smaller_3s/net7.pth");
    let set = read_set(&p, NetActivation::Sin, &cached(cache.path())).unwrap();
    assert_eq!(set.file.networks.batch(), 1);
    assert!(cache_files(cache.path()).is_empty());
}
