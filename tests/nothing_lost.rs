//! Nothing lost (issue 13): files are written under a temporary name and renamed, a cached zoo or
//! INR set is verified against its manifest before reuse, and killing `mnfn zoo generate` or
//! `mnfn predict-gen --save` midway leaves nothing that a rerun would read as complete.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use monomial_nfn::checkpoint::Checkpoint;
use monomial_nfn::classify::{inr_file, InrSource};
use monomial_nfn::experiment::{zoo_dir, PredictGenConfig, ZooSource};
use monomial_nfn::io::TensorFile;
use monomial_nfn::zoo::{generate, Arch, GenerateConfig, Zoo, ZooFilter};
use monomial_nfn::{Cpu, Error, NetActivation};

/// Every file of `dir` (names sorted) with its bytes.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

fn mnfn(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mnfn"));
    c.args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

fn run_to_end(args: &[&str]) {
    let status = mnfn(args).status().unwrap();
    assert!(status.success(), "mnfn {args:?}: {status}");
}

/// Kills `child` once `ready` holds (or after `timeout`); true when it was still running.
fn kill_when(mut child: Child, ready: impl Fn() -> bool, timeout: Duration) -> bool {
    let t0 = Instant::now();
    while !ready() && t0.elapsed() < timeout {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    running
}

/// A cached zoo whose files were cut short, changed, or never completed (no manifest) fails
/// verification and is generated again, identical to an uninterrupted run; an intact one is
/// reused as it is.
#[test]
fn a_damaged_or_incomplete_cached_zoo_is_regenerated_identically() {
    let cache = tempfile::tempdir().unwrap();
    let config = PredictGenConfig {
        zoo: ZooSource::Generate { n: 3, seed: 5 },
        cache_dir: cache.path().into(),
        ..PredictGenConfig::default()
    };
    let (dir, seconds) = zoo_dir(&config).unwrap();
    assert!(seconds > 0.0, "the first call generates");
    Zoo::verify(&dir).unwrap();
    let fresh = contents(&dir);
    let (again, seconds) = zoo_dir(&config).unwrap();
    assert_eq!(
        (again.as_path(), seconds),
        (dir.as_path(), 0.0),
        "intact: reused"
    );

    type Damage = fn(&Path);
    let damages: [(&str, Damage); 4] = [
        ("no manifest (interrupted before it was written)", |d| {
            std::fs::remove_file(d.join("manifest.json")).unwrap()
        }),
        ("truncated weights", |d| {
            let w = d.join("weights.npy");
            let bytes = std::fs::read(&w).unwrap();
            std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
        }),
        ("a flipped byte in the metrics", |d| {
            let m = d.join("metrics.csv.gz");
            let mut bytes = std::fs::read(&m).unwrap();
            let at = bytes.len() / 2;
            bytes[at] ^= 0x10;
            std::fs::write(&m, bytes).unwrap();
        }),
        ("a missing layout and a leftover temporary file", |d| {
            std::fs::rename(d.join("layout.csv"), d.join(".partial.layout.csv")).unwrap()
        }),
    ];
    for (what, damage) in damages {
        damage(&dir);
        assert!(
            matches!(
                Zoo::verify(&dir),
                Err(Error::Dataset { .. } | Error::Io { .. })
            ),
            "{what}: verification passes"
        );
        let (again, seconds) = zoo_dir(&config).unwrap();
        assert_eq!(again, dir);
        assert!(seconds > 0.0, "{what}: reused instead of regenerated");
        assert_eq!(contents(&dir), fresh, "{what}: the regenerated zoo differs");
    }
}

/// A cached INR set without a valid manifest is fitted again, identical to the first fit.
#[test]
fn a_damaged_cached_inr_set_is_regenerated_identically() {
    let cache = tempfile::tempdir().unwrap();
    let cpu = Cpu::<f32>::new();
    let source = InrSource::Generate { n: 2, seed: 3 };
    let (path, seconds) = inr_file(&source, cache.path(), false, &cpu).unwrap();
    assert!(seconds > 0.0);
    let fresh = std::fs::read(&path).unwrap();
    // Metadata order in the header may differ between writes: compare what the files hold.
    let first = TensorFile::read(&path).unwrap();
    let same = |p: &Path| {
        let again = TensorFile::read(p).unwrap();
        first.metadata == again.metadata
            && first.tensors.keys().eq(again.tensors.keys())
            && (first.tensors.values())
                .zip(again.tensors.values())
                .all(|(x, y)| x.data == y.data)
    };
    assert_eq!(inr_file(&source, cache.path(), false, &cpu).unwrap().1, 0.0);
    let manifest = cache
        .path()
        .join("inr-glyphs16-clean-n2-seed3.manifest.json");
    for damage in [0, 1] {
        if damage == 0 {
            std::fs::write(&path, &fresh[..fresh.len() - 7]).unwrap();
        } else {
            std::fs::remove_file(&manifest).unwrap();
        }
        let (again, seconds) = inr_file(&source, cache.path(), false, &cpu).unwrap();
        assert!(seconds > 0.0, "damage {damage}: reused");
        assert!(same(&again), "damage {damage}: the regenerated set differs");
    }
}

/// `mnfn zoo generate` killed at several points leaves no directory that verifies as complete
/// (unless it had finished); the rerun writes the same zoo as an uninterrupted run.
#[test]
fn killed_zoo_generate_reruns_to_the_same_zoo() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let args = |out: &Path| -> Vec<String> {
        [
            "zoo", "generate", "--arch", "mlp:8", "--n", "120", "--seed", "2", "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([out.display().to_string()])
        .collect()
    };
    let strs = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
    let to_end = |out: &Path| {
        let a = args(out);
        run_to_end(&a.iter().map(String::as_str).collect::<Vec<_>>());
    };
    to_end(&whole);
    Zoo::verify(&whole).unwrap();
    let expected = contents(&whole);
    for (k, delay) in [20u64, 150, 600].into_iter().enumerate() {
        let out = tmp.path().join(format!("killed{k}"));
        let a = args(&out);
        let child = mnfn(&a.iter().map(String::as_str).collect::<Vec<_>>())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        let killed = kill_when(
            child,
            || t0.elapsed() > Duration::from_millis(delay),
            Duration::from_secs(60),
        );
        if killed && out.exists() {
            assert!(
                Zoo::verify(&out).is_err(),
                "{}: killed, yet verifies",
                strs(&a)
            );
        }
        to_end(&out);
        Zoo::verify(&out).unwrap();
        Zoo::open(&out, &ZooFilter::default()).unwrap();
        assert_eq!(contents(&out), expected, "{}: differs", strs(&a));
    }
}

const CURVE: &str = "epoch,step,train_loss,val_metric";
const PREDICTIONS: &str = "index,prediction,test_accuracy";

/// A small cnn-zoo zoo for predict-gen, trained briefly.
fn small_cnn_zoo(dir: &Path) {
    let cfg = GenerateConfig {
        train_images: 200,
        test_images: 100,
        steps: (5, 30),
        ..GenerateConfig::new(Arch::CnnZoo, NetActivation::Relu, 60, 1)
    };
    let z = generate(&cfg, &|| {}).unwrap();
    Zoo::write(dir, &z.layout, &z.weights, &z.metrics).unwrap();
}

/// Whether a CSV file is whole: it ends in a newline, starts with `header`, and every row after
/// the header has as many fields as the header, all numbers.
fn complete_csv(path: &Path, header: &str) -> bool {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let fields = header.split(',').count();
    lines.next() == Some(header)
        && text.ends_with('\n')
        && lines.all(|l| {
            let f: Vec<&str> = l.split(',').collect();
            f.len() == fields && f.iter().all(|v| v.parse::<f64>().is_ok())
        })
}

/// `mnfn predict-gen --save` killed while it trains leaves a curve of complete rows and no
/// checkpoint or prediction file that reads as valid without being one; the rerun completes and
/// its checkpoint loads.
#[test]
fn killed_predict_gen_save_leaves_nothing_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let zoo = tmp.path().join("zoo");
    small_cnn_zoo(&zoo);
    let out = tmp.path().join("out");
    let ckpt = tmp.path().join("hnp.safetensors");
    let a: Vec<String> = [
        "predict-gen",
        "--zoo",
        &zoo.display().to_string(),
        "--models",
        "hnp",
        "--epochs",
        "40",
        "--backend",
        "cpu",
        "--out",
        &out.display().to_string(),
        "--save",
        &ckpt.display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    let args: Vec<&str> = a.iter().map(String::as_str).collect();
    let curve = out.join("curve-HNP.csv");
    let rows = |p: &PathBuf| std::fs::read_to_string(p).map_or(0, |t| t.lines().count());
    let child = mnfn(&args).spawn().unwrap();
    let killed = kill_when(child, || rows(&curve) >= 3, Duration::from_secs(120));
    assert!(killed, "predict-gen finished before it could be killed");
    assert!(complete_csv(&curve, CURVE), "a curve row was cut");
    // The checkpoint is written after training: a killed run leaves none, or a complete one.
    if ckpt.exists() {
        Checkpoint::load(&ckpt).unwrap();
    }
    let predictions = out.join("predictions-HNP.csv");
    assert!(!predictions.exists() || complete_csv(&predictions, PREDICTIONS));
    run_to_end(&args);
    assert!(complete_csv(&curve, CURVE));
    assert_eq!(rows(&curve), 1 + 40);
    let loaded = Checkpoint::load(&ckpt).unwrap();
    assert!(loaded.model.num_params() > 0);
    assert!(complete_csv(&predictions, PREDICTIONS));
    assert!(rows(&predictions) > 1);
    let leftovers: Vec<_> = contents(&out)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with(".partial."))
        .collect();
    // A temporary file the kill left behind may remain, but never under a name a run reads.
    assert!(leftovers.len() <= 1, "{leftovers:?}");
}
