//! Small valid files of every format the engine reads, for the malformed-input table
//! (tests/malformed.rs) and the mutation fuzzer (tests/fuzz.rs) to break.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use monomial_nfn::checkpoint::{self, Task};
use monomial_nfn::zoo::{generate, npy, Arch, GenerateConfig, NetworkFile, Zoo};
use monomial_nfn::{
    Activation, Init, Model, NetActivation, NetworkSpec, PoolMode, Tensor, Variant, WeightSpace,
};
use rand::SeedableRng;

/// Networks in the generated zoo.
pub const ZOO_N: usize = 4;

fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(seed)
}

/// A zoo directory (weights.npy, layout.csv, metrics.csv.gz) of `ZOO_N` tiny-trained Small-CNN-Zoo
/// ReLU CNNs, written as `mnfn zoo generate` writes it (a few steps each: seconds, not minutes).
pub fn write_zoo(dir: &Path) {
    write_zoo_of(dir, ZOO_N, 7);
}

/// [`write_zoo`] with `n` networks and seed `seed`.
pub fn write_zoo_of(dir: &Path, n: usize, seed: u64) {
    let cfg = GenerateConfig {
        train_images: 64,
        test_images: 32,
        batch: 8,
        steps: (2, 3),
        ..GenerateConfig::new(Arch::CnnZoo, NetActivation::Relu, n, seed)
    };
    let zoo = generate(&cfg, &|| {}).expect("tiny zoo generates");
    Zoo::write(dir, &zoo.layout, &zoo.weights, &zoo.metrics).expect("zoo writes");
}

/// A split file (1-D int64 `.npy`) ordering the zoo's networks.
pub fn write_split(path: &Path) {
    npy::write_indices(path, &[3, 1, 0, 2]).expect("split writes");
}

/// A network file of three ReLU MLPs 2 -> 3 -> 1 (`mnfn zoo export` style).
pub fn write_mlp_networks(path: &Path) {
    let spec = NetworkSpec::mlp(&[2, 3, 1], NetActivation::Relu).expect("valid widths");
    let networks = WeightSpace::random(&spec, 3, 1, &mut rng(1));
    NetworkFile {
        spec,
        networks,
        labels: None,
        images: None,
        metadata: Default::default(),
    }
    .write(path)
    .expect("network file writes");
}

/// An INR set file: two SIRENs 2 -> 4 -> 4 -> 1 (sin) with labels and 4×4 images.
pub fn write_inrs(path: &Path) {
    let spec = NetworkSpec::mlp(&[2, 4, 4, 1], NetActivation::Sin).expect("valid widths");
    let networks = WeightSpace::random(&spec, 2, 1, &mut rng(2));
    let images = Tensor::new(vec![2, 4, 4], (0..32).map(|i| i as f64 / 32.0).collect())
        .expect("image tensor");
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("mean_mse".to_string(), "0.01".to_string());
    NetworkFile {
        spec,
        networks,
        labels: Some(vec![3, 7]),
        images: Some(images),
        metadata,
    }
    .write(path)
    .expect("INR file writes");
}

/// A small invariant Monomial-NFN over `spec` (widths 4, 3; head 8).
pub fn small_model(spec: &NetworkSpec) -> Model {
    Model::monomial_invariant(
        spec,
        1,
        &[4, 3],
        Activation::Relu,
        Activation::Relu,
        Variant::Scale,
        Init::XavierNormal,
        PoolMode::ParamMulL2,
        &[8],
        &mut rng(3),
    )
    .expect("valid model")
}

/// A predict-gen checkpoint of a small model over Small-CNN-Zoo CNNs (fits [`write_zoo`]).
pub fn write_cnn_checkpoint(path: &Path) {
    let model = small_model(&NetworkSpec::cnn_zoo(NetActivation::Relu));
    checkpoint::save(path, &model, "Monomial-NFN", Some(Task::PredictGen), None)
        .expect("checkpoint writes");
}

/// A checkpoint of a small model over the MLPs of [`write_mlp_networks`] (a small file).
pub fn write_mlp_checkpoint(path: &Path) {
    let spec = NetworkSpec::mlp(&[2, 3, 1], NetActivation::Relu).expect("valid widths");
    checkpoint::save(
        path,
        &small_model(&spec),
        "Monomial-NFN",
        Some(Task::PredictGen),
        None,
    )
    .expect("checkpoint writes");
}

/// A shipped golden file by name (tests/goldens).
pub fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/goldens")
        .join(name)
}

/// A shipped `.pth` fixture by name (tests/fixtures/pth, written by its make_fixtures.py).
pub fn pth(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pth")
        .join(name)
}

/// The entries (name, bytes) of a zip archive, in order.
pub fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip archive");
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            (f.name().to_string(), b)
        })
        .collect()
}

/// A zip archive of `entries`, stored uncompressed as `torch.save` writes them.
pub fn zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        w.start_file(name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The `.pth` archive `valid` with its entry ending in `suffix` replaced by `bytes` (removed for
/// None).
pub fn pth_with(valid: &[u8], suffix: &str, bytes: Option<&[u8]>) -> Vec<u8> {
    let entries: Vec<(String, Vec<u8>)> = unzip(valid)
        .into_iter()
        .filter_map(|(n, b)| match (n.ends_with(suffix), bytes) {
            (false, _) => Some((n, b)),
            (true, Some(new)) => Some((n, new.to_vec())),
            (true, None) => None,
        })
        .collect();
    zip(&entries)
}

/// A `data.pkl` as `torch.save` writes it for one float32 tensor `w` viewing storage `0`:
/// `OrderedDict(w=_rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', numel), offset,
/// size, stride, False, None))`.
pub fn tensor_pickle(numel: i64, offset: i64, size: &[i64], stride: &[i64]) -> Vec<u8> {
    let text = |p: &mut Vec<u8>, t: &str| {
        p.push(b'X');
        p.extend((t.len() as u32).to_le_bytes());
        p.extend(t.as_bytes());
    };
    let int = |p: &mut Vec<u8>, v: i64| {
        p.extend([0x8a, 8]);
        p.extend(v.to_le_bytes());
    };
    let mut p = vec![0x80, 2];
    p.extend(b"ccollections\nOrderedDict\n)R(");
    text(&mut p, "w");
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
    text(&mut p, "storage");
    p.extend(b"ctorch\nFloatStorage\n");
    text(&mut p, "0");
    text(&mut p, "cpu");
    int(&mut p, numel);
    p.extend(b"tQ");
    int(&mut p, offset);
    for axes in [size, stride] {
        p.push(b'(');
        for &v in axes {
            int(&mut p, v);
        }
        p.push(b't');
    }
    p.extend(b"\x89NtRu.");
    p
}

/// A `.pth` archive (prefix `archive/`) of `pickle` as data.pkl and, when given, `storage` as
/// data/0.
pub fn pth_archive(pickle: &[u8], storage: Option<&[u8]>) -> Vec<u8> {
    let mut entries = vec![
        ("archive/data.pkl".to_string(), pickle.to_vec()),
        ("archive/byteorder".to_string(), b"little".to_vec()),
    ];
    if let Some(s) = storage {
        entries.push(("archive/data/0".to_string(), s.to_vec()));
    }
    entries.push(("archive/version".to_string(), b"3\n".to_vec()));
    zip(&entries)
}

/// `n` float32 values 0, 1, 2, ... as little-endian bytes.
pub fn f32_bytes(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect()
}
