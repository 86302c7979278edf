//! The malformed-input table (issue 13 item 3): bad files of every format the engine reads and bad
//! values of every command's options. Library cases assert the typed [`Error`] variant; command
//! cases run the real `mnfn` binary and assert a non-zero exit, a message naming the problem and
//! no panic. The test renders the table into README.md (between the `malformed-table` markers)
//! and fails when the README differs; `MNFN_BLESS=1` rewrites that section instead. Every case's
//! output is collected in `$CARGO_TARGET_TMPDIR/malformed-outputs.txt`.

#![cfg(feature = "cli")]

#[path = "support/formats.rs"]
mod formats;

use std::path::{Path, PathBuf};
use std::process::Command;

use monomial_nfn::checkpoint::Checkpoint;
use monomial_nfn::golden::check_golden;
use monomial_nfn::io::TensorFile;
use monomial_nfn::torchfile::TargetList;
use monomial_nfn::zoo::dataset::{LAYOUT, MANIFEST, METRICS, WEIGHTS};
use monomial_nfn::zoo::{Layout, NetworkFile, Splits, StepFilter, Table, Zoo, ZooFilter};
use monomial_nfn::{Cpu, DatasetProblem, Error, NetActivation, StateDict, Tensor, TorchProblem};

/// The fixture: a directory of valid files (see [`Fx::new`]) that cases copy and break.
struct Fx {
    dir: PathBuf,
}

impl Fx {
    /// Writes zoo/, split.npy, nets.safetensors (ReLU MLPs), inrs.safetensors (SIRENs),
    /// cnn.ckpt.safetensors (fits zoo/) and mlp.ckpt.safetensors (fits nets.safetensors).
    fn new(dir: &Path) -> Self {
        formats::write_zoo(&dir.join("zoo"));
        formats::write_split(&dir.join("split.npy"));
        formats::write_mlp_networks(&dir.join("nets.safetensors"));
        formats::write_inrs(&dir.join("inrs.safetensors"));
        formats::write_cnn_checkpoint(&dir.join("cnn.ckpt.safetensors"));
        formats::write_mlp_checkpoint(&dir.join("mlp.ckpt.safetensors"));
        std::fs::write(dir.join("garbage.bin"), b"this is not a safetensors file\n").unwrap();
        Fx { dir: dir.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// A copy of zoo/ called `name` whose `file` holds `bytes` (None: the file is removed).
    fn zoo_with(&self, name: &str, file: &str, bytes: Option<Vec<u8>>) -> PathBuf {
        let d = self.path(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in [WEIGHTS, LAYOUT, METRICS] {
            std::fs::copy(self.path("zoo").join(f), d.join(f)).unwrap();
        }
        match bytes {
            Some(b) => std::fs::write(d.join(file), b).unwrap(),
            None => std::fs::remove_file(d.join(file)).unwrap(),
        }
        d
    }

    /// [`Fx::zoo_with`], keeping the zoo's manifest.
    fn manifested_zoo_with(&self, name: &str, file: &str, bytes: Option<Vec<u8>>) -> PathBuf {
        let d = self.zoo_with(name, file, bytes);
        std::fs::copy(self.path("zoo").join(MANIFEST), d.join(MANIFEST)).unwrap();
        d
    }

    /// A copy of the safetensors file `from`, edited, called `name`.
    fn edited(&self, from: &str, name: &str, edit: impl Fn(&mut TensorFile)) -> PathBuf {
        let mut f = TensorFile::read(&self.path(from)).unwrap();
        edit(&mut f);
        let p = self.path(name);
        f.write(&p).unwrap();
        p
    }

    /// The zoo's metrics.csv, decompressed.
    fn metrics_text(&self) -> String {
        let t = Table::read_csv(&self.path("zoo").join(METRICS)).unwrap();
        let mut s = t.header().join(",");
        s.push('\n');
        let cols: Vec<Vec<&str>> = t
            .header()
            .iter()
            .map(|h| t.column(Path::new(METRICS), h).unwrap())
            .collect();
        for r in 0..t.len() {
            let row: Vec<&str> = cols.iter().map(|c| c[r]).collect();
            s.push_str(&row.join(","));
            s.push('\n');
        }
        s
    }
}

fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

/// A version-1.0 `.npy` with header dict `dict` and `data`.
fn npy(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut h = b"\x93NUMPY\x01\x00\x00\x00".to_vec();
    h.extend(dict.as_bytes());
    while (h.len() + 1) % 64 != 0 {
        h.push(b' ');
    }
    h.push(b'\n');
    let n = (h.len() - 10) as u16;
    h[8..10].copy_from_slice(&n.to_le_bytes());
    h.extend(data);
    h
}

/// A safetensors file of one U8 tensor `name` plus `activation` metadata.
fn u8_tensor_file(name: &str) -> Vec<u8> {
    let data = [1u8, 2, 3, 4];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::U8, vec![4], &data).unwrap();
    let meta = std::collections::HashMap::from([("activation".to_string(), "relu".to_string())]);
    safetensors::serialize(vec![(name.to_string(), view)], Some(meta)).unwrap()
}

/// The variant of a typed error, as the table shows it.
fn variant(e: &Error) -> String {
    match e {
        Error::Shape { .. } => "Shape".into(),
        Error::Spec(_) => "Spec".into(),
        Error::Input(_) => "Input".into(),
        Error::Format { .. } => "Format".into(),
        Error::Io { .. } => "Io".into(),
        Error::Device(_) => "Device".into(),
        Error::Diverged(_) => "Diverged".into(),
        Error::Setting { .. } => "Setting".into(),
        Error::Dataset { problem, .. } => format!(
            "Dataset({})",
            match problem {
                DatasetProblem::Truncated(_) => "Truncated",
                DatasetProblem::Malformed(_) => "Malformed",
                DatasetProblem::Dtype { .. } => "Dtype",
                DatasetProblem::Mismatch(_) => "Mismatch",
                DatasetProblem::MissingColumn(_) => "MissingColumn",
                DatasetProblem::Gzip(_) => "Gzip",
                DatasetProblem::Empty(_) => "Empty",
                DatasetProblem::MissingFile(_) => "MissingFile",
                DatasetProblem::DuplicateRow(_) => "DuplicateRow",
                DatasetProblem::BadValue(_) => "BadValue",
                DatasetProblem::OutOfRange(_) => "OutOfRange",
                DatasetProblem::Header(_) => "Header",
            }
        ),
        Error::Torch { problem, .. } => format!(
            "Torch({})",
            match problem {
                TorchProblem::UnsafeGlobal(_) => "UnsafeGlobal",
                TorchProblem::Opcode { .. } => "Opcode",
                TorchProblem::Truncated(_) => "Truncated",
                TorchProblem::Malformed(_) => "Malformed",
                TorchProblem::Storage(_) => "Storage",
                TorchProblem::Dtype(_) => "Dtype",
                TorchProblem::NotAChain(_) => "NotAChain",
            }
        ),
    }
}

type Setup = Box<dyn Fn(&Fx) -> PathBuf>;
type Call = fn(&Path) -> monomial_nfn::Result<()>;

enum Run {
    /// A reader on the file or directory the setup returns, and the expected variant.
    Lib {
        reader: &'static str,
        call: Call,
        variant: &'static str,
    },
    /// `mnfn` with these arguments; `{d}/` stands for the fixture directory.
    Cli(&'static [&'static str]),
}

struct Case {
    name: &'static str,
    setup: Setup,
    run: Run,
    /// Substrings (case-insensitive) the message must contain.
    needles: &'static [&'static str],
}

fn lib(
    name: &'static str,
    reader: &'static str,
    call: Call,
    variant: &'static str,
    needles: &'static [&'static str],
    setup: impl Fn(&Fx) -> PathBuf + 'static,
) -> Case {
    Case {
        name,
        setup: Box::new(setup),
        run: Run::Lib {
            reader,
            call,
            variant,
        },
        needles,
    }
}

fn cli(
    name: &'static str,
    args: &'static [&'static str],
    needles: &'static [&'static str],
    setup: impl Fn(&Fx) -> PathBuf + 'static,
) -> Case {
    Case {
        name,
        setup: Box::new(setup),
        run: Run::Cli(args),
        needles,
    }
}

/// Nothing to prepare beyond the fixture.
fn none(fx: &Fx) -> PathBuf {
    fx.dir.clone()
}

fn relu_zoo() -> ZooFilter {
    ZooFilter {
        activation: Some(NetActivation::Relu),
        step: StepFilter::All,
    }
}

fn open_zoo(p: &Path) -> monomial_nfn::Result<()> {
    Zoo::open(p, &relu_zoo()).map(|_| ())
}

fn verify_zoo(p: &Path) -> monomial_nfn::Result<()> {
    Zoo::verify(p)
}

fn read_net(p: &Path) -> monomial_nfn::Result<()> {
    NetworkFile::read(p, None).map(|_| ())
}

fn load_ckpt(p: &Path) -> monomial_nfn::Result<()> {
    Checkpoint::load(p).map(|_| ())
}

fn read_pth(p: &Path) -> monomial_nfn::Result<()> {
    StateDict::read(p).map(|_| ())
}

fn pth_chain(p: &Path) -> monomial_nfn::Result<()> {
    let sd = StateDict::read(p)?;
    monomial_nfn::infer_chain(&sd, None, NetActivation::Relu, p).map(|_| ())
}

/// A `.pth` case: the file `name` holds `bytes(valid tensors.pth)`.
fn pth_case(
    name: &'static str,
    reader: &'static str,
    call: Call,
    variant: &'static str,
    needles: &'static [&'static str],
    bytes: fn(&[u8]) -> Vec<u8>,
) -> Case {
    lib(name, reader, call, variant, needles, move |fx| {
        let valid = std::fs::read(formats::pth("tensors.pth")).unwrap();
        fx.write("case.pth", &bytes(&valid))
    })
}

/// A one-tensor `.pth` of six stored floats whose view is (offset, size, stride, numel).
fn pth_view(offset: i64, size: &[i64], stride: &[i64], numel: i64) -> Vec<u8> {
    let pickle = formats::tensor_pickle(numel, offset, size, stride);
    formats::pth_archive(&pickle, Some(&formats::f32_bytes(6)))
}

fn read_list(p: &Path) -> monomial_nfn::Result<()> {
    TargetList::read(p, Some(10)).map(|_| ())
}

/// `lists/{name}`: a folder holding two SIREN state dicts (`a.pth`, `b.pth`) and `csv` as
/// `{file}`; returns the CSV's path.
fn list_in(fx: &Fx, name: &str, file: &str, csv: &str) -> PathBuf {
    let d = fx.path("lists").join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(
        formats::pth("siren/randinit_smaller_3s/net7.pth"),
        d.join("a.pth"),
    )
    .unwrap();
    std::fs::copy(
        formats::pth("siren/randinit_smaller_5s/net12.pth"),
        d.join("b.pth"),
    )
    .unwrap();
    let p = d.join(file);
    std::fs::write(&p, csv).unwrap();
    p
}

/// A target-list case: `lists/case/case.csv` holds `csv`.
fn list_case(
    name: &'static str,
    variant: &'static str,
    needles: &'static [&'static str],
    csv: &'static str,
) -> Case {
    lib(
        name,
        "TargetList::read",
        read_list,
        variant,
        needles,
        move |fx| list_in(fx, "case", "case.csv", csv),
    )
}

fn golden(p: &Path) -> monomial_nfn::Result<()> {
    check_golden(p, &[&Cpu::<f64>::new()]).map(|_| ())
}

fn split(p: &Path) -> monomial_nfn::Result<()> {
    Splits::from_index_file(p, formats::ZOO_N, 0).map(|_| ())
}

/// The zoo's weights.npy with the header dict edited by `edit` (the length field fixed up).
fn weights_with_dict(fx: &Fx, edit: impl Fn(&str) -> String) -> Vec<u8> {
    let b = fx.read("zoo/weights.npy");
    let n = u16::from_le_bytes([b[8], b[9]]) as usize;
    let dict = String::from_utf8(b[10..10 + n].to_vec()).unwrap();
    npy(edit(dict.trim_end()).as_str(), &b[10 + n..])
}

/// The zoo's weights.npy with the header's shape replaced by `shape`.
fn weights_with_shape(fx: &Fx, shape: &str) -> Vec<u8> {
    weights_with_dict(fx, |dict| {
        let start = dict.find("'shape': (").unwrap() + "'shape': (".len();
        let end = start + dict[start..].find(')').unwrap();
        format!("{}{shape}{}", &dict[..start], &dict[end..])
    })
}

fn cases() -> Vec<Case> {
    vec![
        // --- zoo directories and weights.npy ---
        lib(
            "zoo directory missing",
            "Zoo::open",
            open_zoo,
            "Io",
            &["nowhere", "weights.npy"],
            |fx| fx.path("nowhere"),
        ),
        lib(
            "cached zoo without its manifest",
            "Zoo::verify",
            verify_zoo,
            "Dataset(Truncated)",
            &["manifest.json", "no manifest"],
            |fx| fx.zoo_with("z-no-manifest", WEIGHTS, Some(fx.read("zoo/weights.npy"))),
        ),
        lib(
            "cached zoo: weights shorter than its manifest records",
            "Zoo::verify",
            verify_zoo,
            "Dataset(Truncated)",
            &["weights.npy", "the manifest records"],
            |fx| {
                let b = fx.read("zoo/weights.npy");
                fx.manifested_zoo_with("z-m-cut", WEIGHTS, Some(b[..b.len() - 4].to_vec()))
            },
        ),
        lib(
            "cached zoo: layout changed since its manifest",
            "Zoo::verify",
            verify_zoo,
            "Dataset(Mismatch)",
            &["layout.csv", "content hash"],
            |fx| {
                let mut b = fx.read("zoo/layout.csv");
                let last = b.len() - 2;
                b[last] ^= 1;
                fx.manifested_zoo_with("z-m-edit", LAYOUT, Some(b))
            },
        ),
        lib(
            "cached zoo: manifest not JSON",
            "Zoo::verify",
            verify_zoo,
            "Dataset(Malformed)",
            &["manifest.json", "malformed"],
            |fx| {
                let d = fx.zoo_with("z-m-bad", WEIGHTS, Some(fx.read("zoo/weights.npy")));
                std::fs::write(d.join(MANIFEST), b"{\"format\": ").unwrap();
                d
            },
        ),
        lib(
            "weights.npy missing",
            "Zoo::open",
            open_zoo,
            "Io",
            &["weights.npy"],
            |fx| fx.zoo_with("z-no-w", WEIGHTS, None),
        ),
        lib(
            "weights.npy cut inside the data",
            "Zoo::open",
            open_zoo,
            "Dataset(Truncated)",
            &["weights.npy", "truncated"],
            |fx| {
                let b = fx.read("zoo/weights.npy");
                fx.zoo_with("z-cut", WEIGHTS, Some(b[..b.len() - 100].to_vec()))
            },
        ),
        lib(
            "weights.npy cut inside the header",
            "Zoo::open",
            open_zoo,
            "Dataset(Truncated)",
            &["weights.npy", "header"],
            |fx| {
                fx.zoo_with(
                    "z-cut-h",
                    WEIGHTS,
                    Some(fx.read("zoo/weights.npy")[..40].to_vec()),
                )
            },
        ),
        lib(
            "weights.npy bad magic",
            "Zoo::open",
            open_zoo,
            "Dataset(Malformed)",
            &["weights.npy"],
            |fx| {
                let mut b = fx.read("zoo/weights.npy");
                b[..6].copy_from_slice(b"NOTNPY");
                fx.zoo_with("z-magic", WEIGHTS, Some(b))
            },
        ),
        lib(
            "weights.npy float64",
            "Zoo::open",
            open_zoo,
            "Dataset(Dtype)",
            &["weights.npy", "<f8"],
            |fx| {
                fx.zoo_with(
                    "z-f8",
                    WEIGHTS,
                    Some(npy(
                        "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 4970), }",
                        &vec![0u8; 4 * 4970 * 8],
                    )),
                )
            },
        ),
        lib(
            "weights.npy Fortran order",
            "Zoo::open",
            open_zoo,
            "Dataset(Malformed)",
            &["weights.npy", "fortran"],
            |fx| {
                let b = weights_with_dict(fx, |d| {
                    d.replacen("'fortran_order': False", "'fortran_order': True", 1)
                });
                fx.zoo_with("z-fortran", WEIGHTS, Some(b))
            },
        ),
        lib(
            "weights.npy 1-D",
            "Zoo::open",
            open_zoo,
            "Dataset(Mismatch)",
            &["weights.npy", "shape"],
            |fx| fx.zoo_with("z-1d", WEIGHTS, Some(weights_with_shape(fx, "19880,"))),
        ),
        lib(
            "weights.npy shape claims 2^62 rows",
            "Zoo::open",
            open_zoo,
            "Dataset(Malformed)",
            &["weights.npy", "overflows"],
            |fx| {
                fx.zoo_with(
                    "z-huge",
                    WEIGHTS,
                    Some(weights_with_shape(fx, "4611686018427387904, 4970")),
                )
            },
        ),
        lib(
            "weights.npy negative shape",
            "Zoo::open",
            open_zoo,
            "Dataset(Malformed)",
            &["weights.npy", "negative"],
            |fx| fx.zoo_with("z-neg", WEIGHTS, Some(weights_with_shape(fx, "-4, 4970"))),
        ),
        lib(
            "weights.npy trailing bytes",
            "Zoo::open",
            open_zoo,
            "Dataset(Malformed)",
            &["weights.npy", "bytes after"],
            |fx| {
                let mut b = fx.read("zoo/weights.npy");
                b.extend([0u8; 12]);
                fx.zoo_with("z-trail", WEIGHTS, Some(b))
            },
        ),
        lib(
            "weights.npy columns differ from layout.csv",
            "Zoo::open",
            open_zoo,
            "Dataset(Mismatch)",
            &["layout.csv", "4970"],
            |fx| {
                fx.zoo_with(
                    "z-cols",
                    WEIGHTS,
                    Some(npy(
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 10), }",
                        &[0u8; 160],
                    )),
                )
            },
        ),
        // --- layout.csv ---
        lib(
            "layout.csv missing",
            "Zoo::open",
            open_zoo,
            "Io",
            &["layout.csv"],
            |fx| fx.zoo_with("z-no-l", LAYOUT, None),
        ),
        lib(
            "layout.csv unparsable shape",
            "Layout::read",
            |p| Layout::read(p, NetActivation::Relu).map(|_| ()),
            "Dataset(Malformed)",
            &["layout.csv", "(3, x, 1, 16)"],
            |fx| {
                let t = String::from_utf8(fx.read("zoo/layout.csv"))
                    .unwrap()
                    .replacen("(3, 3, 1, 16)", "(3, x, 1, 16)", 1);
                fx.zoo_with("z-l-shape", LAYOUT, Some(t.into_bytes()))
                    .join(LAYOUT)
            },
        ),
        lib(
            "layout.csv shape overflowing usize (fuzzer find)",
            "Layout::read",
            |p| Layout::read(p, NetActivation::Relu).map(|_| ()),
            "Dataset(Mismatch)",
            &["layout.csv", "overflows"],
            |fx| {
                let t = String::from_utf8(fx.read("zoo/layout.csv"))
                    .unwrap()
                    .replacen("(3, 3, 1, 16)", "(18446744073709551615, 3, 16, 16)", 1);
                fx.zoo_with("z-l-overflow", LAYOUT, Some(t.into_bytes()))
                    .join(LAYOUT)
            },
        ),
        lib(
            "layout.csv empty",
            "Layout::read",
            |p| Layout::read(p, NetActivation::Relu).map(|_| ()),
            "Dataset(Empty)",
            &["layout.csv"],
            |fx| {
                fx.zoo_with("z-l-empty", LAYOUT, Some(Vec::new()))
                    .join(LAYOUT)
            },
        ),
        lib(
            "layout.csv a layer missing",
            "Zoo::open",
            open_zoo,
            "Dataset(Mismatch)",
            &["layout.csv"],
            |fx| {
                let t = String::from_utf8(fx.read("zoo/layout.csv")).unwrap();
                let mut keep: Vec<&str> = t.lines().collect();
                keep.pop();
                fx.zoo_with("z-l-miss", LAYOUT, Some(keep.join("\n").into_bytes()))
            },
        ),
        // --- metrics.csv.gz ---
        lib(
            "metrics.csv.gz not gzip",
            "Table::read_csv",
            |p| Table::read_csv(p).map(|_| ()),
            "Dataset(Gzip)",
            &["metrics.csv.gz"],
            |fx| {
                fx.zoo_with("z-m-plain", METRICS, Some(fx.metrics_text().into_bytes()))
                    .join(METRICS)
            },
        ),
        lib(
            "metrics.csv.gz cut short",
            "Zoo::open",
            open_zoo,
            "Dataset(Gzip)",
            &["metrics.csv.gz"],
            |fx| {
                let b = fx.read("zoo/metrics.csv.gz");
                fx.zoo_with("z-m-cut", METRICS, Some(b[..b.len() / 2].to_vec()))
            },
        ),
        lib(
            "metrics.csv.gz without config.activation",
            "Zoo::open",
            open_zoo,
            "Dataset(MissingColumn)",
            &["metrics.csv.gz", "config.activation"],
            |fx| {
                let t = fx
                    .metrics_text()
                    .replacen("config.activation", "config.act", 1);
                fx.zoo_with("z-m-col", METRICS, Some(gzip(&t)))
            },
        ),
        lib(
            "metrics.csv.gz fewer rows than weights",
            "Zoo::open",
            open_zoo,
            "Dataset(Mismatch)",
            &["metrics.csv.gz", "rows"],
            |fx| {
                let t = fx.metrics_text();
                let keep: Vec<&str> = t.lines().take(3).collect();
                fx.zoo_with("z-m-rows", METRICS, Some(gzip(&(keep.join("\n") + "\n"))))
            },
        ),
        lib(
            "metrics.csv.gz ragged row",
            "Zoo::open",
            open_zoo,
            "Dataset(Malformed)",
            &["metrics.csv.gz"],
            |fx| {
                let t = fx.metrics_text() + "1,2\n";
                fx.zoo_with("z-m-ragged", METRICS, Some(gzip(&t)))
            },
        ),
        lib(
            "zoo with no network of the activation",
            "Zoo::open (tanh filter)",
            |p| {
                Zoo::open(
                    p,
                    &ZooFilter {
                        activation: Some(NetActivation::Tanh),
                        step: StepFilter::All,
                    },
                )
                .map(|_| ())
            },
            "Dataset(Empty)",
            &["metrics.csv.gz", "no tanh networks among its 4"],
            |fx| fx.path("zoo"),
        ),
        // --- split .npy ---
        lib(
            "split .npy of floats",
            "Splits::from_index_file",
            split,
            "Dataset(Dtype)",
            &["split-f.npy", "<f4"],
            |fx| {
                fx.write(
                    "split-f.npy",
                    &npy(
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                        &[0u8; 8],
                    ),
                )
            },
        ),
        lib(
            "split .npy index repeated",
            "Splits::from_index_file",
            split,
            "Dataset(Mismatch)",
            &["split-rep.npy", "repeated"],
            |fx| {
                monomial_nfn::zoo::npy::write_indices(&fx.path("split-rep.npy"), &[1, 1]).unwrap();
                fx.path("split-rep.npy")
            },
        ),
        lib(
            "split .npy index out of range",
            "Splits::from_index_file",
            split,
            "Dataset(Mismatch)",
            &["split-oor.npy", "out of range"],
            |fx| {
                monomial_nfn::zoo::npy::write_indices(&fx.path("split-oor.npy"), &[0, 99]).unwrap();
                fx.path("split-oor.npy")
            },
        ),
        lib(
            "split .npy header length 2^32-1 (fuzzer find)",
            "Splits::from_index_file",
            split,
            "Dataset(Truncated)",
            &["split-hdr.npy", "header"],
            |fx| {
                let mut b = fx.read("split.npy");
                b[6] = 2;
                b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
                fx.write("split-hdr.npy", &b)
            },
        ),
        lib(
            "split .npy empty",
            "Splits::from_index_file",
            split,
            "Dataset(Empty)",
            &["split-empty.npy"],
            |fx| {
                monomial_nfn::zoo::npy::write_indices(&fx.path("split-empty.npy"), &[]).unwrap();
                fx.path("split-empty.npy")
            },
        ),
        // --- network and INR safetensors files ---
        lib(
            "network file not safetensors",
            "NetworkFile::read",
            read_net,
            "Format",
            &["garbage.bin"],
            |fx| fx.path("garbage.bin"),
        ),
        lib(
            "network file header length 2^64-1",
            "NetworkFile::read",
            read_net,
            "Format",
            &["huge-header.safetensors"],
            |fx| {
                let mut b = fx.read("nets.safetensors");
                b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
                fx.write("huge-header.safetensors", &b)
            },
        ),
        lib(
            "network file cut short",
            "NetworkFile::read",
            read_net,
            "Format",
            &["nets-cut.safetensors"],
            |fx| {
                let b = fx.read("nets.safetensors");
                fx.write("nets-cut.safetensors", &b[..b.len() - 9])
            },
        ),
        lib(
            "network file without activation",
            "NetworkFile::read",
            read_net,
            "Dataset(MissingColumn)",
            &["activation"],
            |fx| {
                fx.edited("nets.safetensors", "nets-noact.safetensors", |f| {
                    f.metadata.remove("activation");
                })
            },
        ),
        lib(
            "network file unknown activation",
            "NetworkFile::read",
            read_net,
            "Dataset(Mismatch)",
            &["gelu"],
            |fx| {
                fx.edited("nets.safetensors", "nets-gelu.safetensors", |f| {
                    f.metadata.insert("activation".into(), "gelu".into());
                })
            },
        ),
        lib(
            "network file biases of the wrong shape",
            "NetworkFile::read",
            read_net,
            "Dataset(Mismatch)",
            &["biases.0"],
            |fx| {
                fx.edited("nets.safetensors", "nets-bias.safetensors", |f| {
                    f.tensors
                        .insert("biases.0".into(), Tensor::zeros(vec![3, 4]));
                })
            },
        ),
        lib(
            "network file without weights.0",
            "NetworkFile::read",
            read_net,
            "Dataset(Empty)",
            &["weights.0"],
            |fx| {
                fx.edited("nets.safetensors", "nets-empty.safetensors", |f| {
                    f.tensors.retain(|k, _| !k.starts_with("weights"));
                })
            },
        ),
        lib(
            "network file of U8 tensors",
            "NetworkFile::read",
            read_net,
            "Format",
            &["dtype"],
            |fx| fx.write("u8.safetensors", &u8_tensor_file("weights.0")),
        ),
        lib(
            "INR file labels of the wrong shape",
            "NetworkFile::read",
            read_net,
            "Dataset(Mismatch)",
            &["labels"],
            |fx| {
                fx.edited("inrs.safetensors", "inrs-labels.safetensors", |f| {
                    f.tensors.insert("labels".into(), Tensor::zeros(vec![5]));
                })
            },
        ),
        lib(
            "INR file images not (N, H, W)",
            "NetworkFile::read",
            read_net,
            "Dataset(Mismatch)",
            &["images"],
            |fx| {
                fx.edited("inrs.safetensors", "inrs-images.safetensors", |f| {
                    f.tensors
                        .insert("images".into(), Tensor::zeros(vec![2, 16]));
                })
            },
        ),
        // --- golden files ---
        lib(
            "golden file not safetensors",
            "check_golden",
            golden,
            "Format",
            &["garbage.bin"],
            |fx| fx.path("garbage.bin"),
        ),
        lib(
            "golden file without constructor_args",
            "check_golden",
            golden,
            "Format",
            &["constructor_args"],
            |fx| {
                std::fs::copy(
                    formats::golden("A_mlp_nppool_c3.safetensors"),
                    fx.path("g.safetensors"),
                )
                .unwrap();
                fx.edited("g.safetensors", "g-noargs.safetensors", |f| {
                    f.metadata.remove("constructor_args");
                })
            },
        ),
        lib(
            "golden file claiming 2^64-1 channels (fuzzer find)",
            "check_golden",
            golden,
            "Spec",
            &["parameters"],
            |fx| {
                std::fs::copy(
                    formats::golden("A_mlp_hnpslinear_c1to3.safetensors"),
                    fx.path("g2.safetensors"),
                )
                .unwrap();
                fx.edited("g2.safetensors", "g-huge.safetensors", |f| {
                    let a = f.metadata["constructor_args"].replacen(
                        "\"out_channels\": 3",
                        "\"out_channels\": 18446744073709551615",
                        1,
                    );
                    f.metadata.insert("constructor_args".into(), a);
                })
            },
        ),
        // --- checkpoints ---
        lib(
            "checkpoint missing",
            "Checkpoint::load",
            load_ckpt,
            "Io",
            &["missing.safetensors"],
            |fx| fx.path("missing.safetensors"),
        ),
        lib(
            "checkpoint is a golden file",
            "Checkpoint::load",
            load_ckpt,
            "Format",
            &["not a monomial-nfn checkpoint"],
            |_| formats::golden("A_mlp_nppool_c3.safetensors"),
        ),
        lib(
            "checkpoint of version 9",
            "Checkpoint::load",
            load_ckpt,
            "Format",
            &["version 9"],
            |fx| {
                fx.edited("mlp.ckpt.safetensors", "ck-v9.safetensors", |f| {
                    f.metadata.insert("version".into(), "9".into());
                })
            },
        ),
        lib(
            "checkpoint architecture not JSON",
            "Checkpoint::load",
            load_ckpt,
            "Format",
            &["architecture"],
            |fx| {
                fx.edited("mlp.ckpt.safetensors", "ck-json.safetensors", |f| {
                    f.metadata
                        .insert("architecture".into(), "{\"spec\": 3".into());
                })
            },
        ),
        lib(
            "checkpoint claiming 4e9 channels",
            "Checkpoint::load",
            load_ckpt,
            "Format",
            &["parameters"],
            |fx| {
                fx.edited("mlp.ckpt.safetensors", "ck-huge.safetensors", |f| {
                    let a = f.metadata["architecture"].replacen(
                        "\"c_out\":4",
                        "\"c_out\":4000000000",
                        1,
                    );
                    f.metadata.insert("architecture".into(), a);
                })
            },
        ),
        lib(
            "checkpoint layer with 2^63 kernel rows (fuzzer find)",
            "Checkpoint::load",
            load_ckpt,
            "Format",
            &["2^32 weights"],
            |fx| {
                fx.edited("mlp.ckpt.safetensors", "ck-kh.safetensors", |f| {
                    let a = f.metadata["architecture"].replacen(
                        "\"kh\":1",
                        "\"kh\":9223372036854775807",
                        1,
                    );
                    f.metadata.insert("architecture".into(), a);
                })
            },
        ),
        lib(
            "checkpoint in_channels 2^64-1 (fuzzer find)",
            "Checkpoint::load",
            load_ckpt,
            "Format",
            &["in_channels"],
            |fx| {
                fx.edited("mlp.ckpt.safetensors", "ck-inch.safetensors", |f| {
                    let a = f.metadata["architecture"].replacen(
                        "\"in_channels\":1",
                        "\"in_channels\":18446744073709551615",
                        1,
                    );
                    f.metadata.insert("architecture".into(), a);
                })
            },
        ),
        lib(
            "checkpoint tensor missing",
            "Checkpoint::load",
            load_ckpt,
            "Format",
            &["layers.0.first.lambda"],
            |fx| {
                fx.edited("mlp.ckpt.safetensors", "ck-miss.safetensors", |f| {
                    f.tensors.remove("layers.0.first.lambda");
                })
            },
        ),
        lib(
            "checkpoint cut short",
            "Checkpoint::load",
            load_ckpt,
            "Format",
            &["ck-cut.safetensors"],
            |fx| {
                let b = fx.read("mlp.ckpt.safetensors");
                fx.write("ck-cut.safetensors", &b[..b.len() / 2])
            },
        ),
        // --- PyTorch state dicts (.pth) ---
        pth_case(
            "pth: pickle asks for os.system",
            "StateDict::read",
            read_pth,
            "Torch(UnsafeGlobal)",
            &["os.system", "not allowed"],
            |v| {
                formats::pth_with(
                    v,
                    "data.pkl",
                    Some(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R."),
                )
            },
        ),
        pth_case(
            "pth: pickle asks for builtins.eval",
            "StateDict::read",
            read_pth,
            "Torch(UnsafeGlobal)",
            &["builtins.eval"],
            |v| {
                formats::pth_with(
                    v,
                    "data.pkl",
                    Some(b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93."),
                )
            },
        ),
        pth_case(
            "pth: unknown pickle opcode",
            "StateDict::read",
            read_pth,
            "Torch(Opcode)",
            &["opcode 0x49"],
            |v| formats::pth_with(v, "data.pkl", Some(b"\x80\x02}I1\n.")),
        ),
        pth_case(
            "pth: truncated archive",
            "StateDict::read",
            read_pth,
            "Torch(Truncated)",
            &["cut short"],
            |v| v[..v.len() / 2].to_vec(),
        ),
        pth_case(
            "pth: pickle cut short",
            "StateDict::read",
            read_pth,
            "Torch(Truncated)",
            &["data.pkl"],
            |v| {
                formats::pth_with(
                    v,
                    "data.pkl",
                    Some(&formats::tensor_pickle(6, 0, &[6], &[1])[..40]),
                )
            },
        ),
        pth_case(
            "pth: storage offset past the end",
            "StateDict::read",
            read_pth,
            "Torch(Storage)",
            &["offset 5", "reaches element 6"],
            |_| pth_view(5, &[2], &[1], 6),
        ),
        pth_case(
            "pth: negative stride",
            "StateDict::read",
            read_pth,
            "Torch(Storage)",
            &["negative stride"],
            |_| pth_view(5, &[2], &[-1], 6),
        ),
        pth_case(
            "pth: storage claims 2^60 elements",
            "StateDict::read",
            read_pth,
            "Torch(Storage)",
            &["holds 24 bytes"],
            |_| pth_view(0, &[2], &[1], 1 << 60),
        ),
        pth_case(
            "pth: size overflows",
            "StateDict::read",
            read_pth,
            "Torch(Storage)",
            &["overflows"],
            |_| pth_view(0, &[1 << 40, 1 << 40], &[1, 1], 6),
        ),
        pth_case(
            "pth: storage entry missing",
            "StateDict::read",
            read_pth,
            "Torch(Storage)",
            &["data/0"],
            |_| formats::pth_archive(&formats::tensor_pickle(6, 0, &[6], &[1]), None),
        ),
        pth_case(
            "pth: big-endian archive",
            "StateDict::read",
            read_pth,
            "Torch(Malformed)",
            &["byte order", "big"],
            |v| formats::pth_with(v, "byteorder", Some(b"big")),
        ),
        pth_case(
            "pth: legacy (pre-1.6) torch.save file",
            "StateDict::read",
            read_pth,
            "Torch(Malformed)",
            &["legacy"],
            |_| b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.".to_vec(),
        ),
        pth_case(
            "pth: neither zip nor safetensors",
            "StateDict::read",
            read_pth,
            "Torch(Malformed)",
            &["neither"],
            |_| b"this is not a state dict".to_vec(),
        ),
        pth_case(
            "pth: batch norm model as a network",
            "infer_chain",
            pth_chain,
            "Torch(NotAChain)",
            &["normalisation", "1.running_mean"],
            |_| std::fs::read(formats::pth("batchnorm.pth")).unwrap(),
        ),
        // --- target lists (file,label / file,accuracy CSVs of state dicts) ---
        list_case(
            "list: a row names a missing file",
            "Dataset(MissingFile)",
            &["row 3", "nowhere.pth"],
            "file,label\na.pth,1\nnowhere.pth,2\n",
        ),
        list_case(
            "list: a file named twice",
            "Dataset(DuplicateRow)",
            &["row 4", "row 2", "a.pth"],
            "file,label\na.pth,1\nb.pth,2\na.pth,3\n",
        ),
        list_case(
            "list: label not an integer",
            "Dataset(BadValue)",
            &["row 2", "cat"],
            "file,label\na.pth,cat\n",
        ),
        list_case(
            "list: negative label",
            "Dataset(BadValue)",
            &["row 3", "-1"],
            "file,label\na.pth,0\nb.pth,-1\n",
        ),
        list_case(
            "list: label out of range",
            "Dataset(OutOfRange)",
            &["label 10", "10 classes"],
            "file,label\na.pth,10\n",
        ),
        list_case(
            "list: accuracy not a number",
            "Dataset(BadValue)",
            &["row 2", "high"],
            "file,accuracy\na.pth,high\n",
        ),
        list_case(
            "list: accuracy in percent",
            "Dataset(OutOfRange)",
            &["87.5", "[0, 1]"],
            "file,accuracy\na.pth,87.5\n",
        ),
        list_case(
            "list: accuracy NaN",
            "Dataset(OutOfRange)",
            &["NaN"],
            "file,accuracy\na.pth,NaN\n",
        ),
        list_case(
            "list: both label and accuracy",
            "Dataset(Header)",
            &["both"],
            "file,label,accuracy\na.pth,1,0.5\n",
        ),
        list_case(
            "list: no label or accuracy column",
            "Dataset(MissingColumn)",
            &["label or accuracy"],
            "file,score\na.pth,1\n",
        ),
        list_case(
            "list: no file column",
            "Dataset(MissingColumn)",
            &["file"],
            "name,label\na.pth,1\n",
        ),
        list_case(
            "list: header only",
            "Dataset(Empty)",
            &["no rows"],
            "file,label\n",
        ),
        // --- mnfn predict-gen ---
        cli(
            "predict-gen: --zoo state dicts with a label list",
            &[
                "predict-gen",
                "--zoo",
                "{d}/lists/labelled",
                "--backend",
                "cpu",
                "--cache",
                "{d}/cache",
                "--out",
                "{d}/out",
            ],
            &["accuracy", "labelled"],
            |fx| {
                list_in(
                    fx,
                    "labelled",
                    "labels.csv",
                    "file,label\na.pth,1\nb.pth,2\n",
                )
            },
        ),
        cli(
            "predict-gen: --zoo state dicts of two weight spaces",
            &[
                "predict-gen",
                "--zoo",
                "{d}/lists/mixed/accuracies.csv",
                "--backend",
                "cpu",
                "--cache",
                "{d}/cache",
                "--out",
                "{d}/out",
            ],
            &["m.pth", "differ"],
            |fx| {
                let csv = list_in(
                    fx,
                    "mixed",
                    "accuracies.csv",
                    "file,accuracy\na.pth,0.5\nm.pth,0.25\n",
                );
                std::fs::copy(formats::pth("mlp_named.pth"), fx.path("lists/mixed/m.pth")).unwrap();
                csv
            },
        ),
        cli(
            "predict-gen: zoo directory missing",
            &[
                "predict-gen",
                "--zoo",
                "{d}/nowhere",
                "--backend",
                "cpu",
                "--out",
                "{d}/out",
            ],
            &["nowhere"],
            none,
        ),
        cli(
            "predict-gen: truncated weights.npy",
            &[
                "predict-gen",
                "--zoo",
                "{d}/z-cut",
                "--backend",
                "cpu",
                "--out",
                "{d}/out",
            ],
            &["weights.npy", "truncated"],
            none,
        ),
        cli(
            "predict-gen: --epochs 0",
            &["predict-gen", "--epochs", "0"],
            &["--epochs", "0"],
            none,
        ),
        cli(
            "predict-gen: --batch 0",
            &["predict-gen", "--batch", "0"],
            &["--batch", "0"],
            none,
        ),
        cli(
            "predict-gen: --lr NaN",
            &["predict-gen", "--lr", "NaN"],
            &["--lr", "NaN"],
            none,
        ),
        cli(
            "predict-gen: --augment-scale 0",
            &["predict-gen", "--augment-scale", "0"],
            &["--augment-scale", "0"],
            none,
        ),
        cli(
            "predict-gen: --models unknown",
            &["predict-gen", "--models", "monomial,resnet"],
            &["resnet"],
            none,
        ),
        cli(
            "predict-gen: --activation unknown",
            &["predict-gen", "--activation", "sigmoid"],
            &["--activation", "sigmoid"],
            none,
        ),
        cli(
            "predict-gen: --backend unknown",
            &["predict-gen", "--backend", "tpu"],
            &["--backend", "tpu"],
            none,
        ),
        cli(
            "predict-gen: --batch negative",
            &["predict-gen", "--batch", "-1"],
            &["-1"],
            none,
        ),
        // --- mnfn predict ---
        cli(
            "predict: checkpoint missing",
            &[
                "predict",
                "--model",
                "{d}/missing.safetensors",
                "--zoo",
                "{d}/zoo",
                "--backend",
                "cpu",
            ],
            &["missing.safetensors"],
            none,
        ),
        cli(
            "predict: golden file as --model",
            &[
                "predict",
                "--model",
                "{d}/g.safetensors",
                "--zoo",
                "{d}/zoo",
                "--backend",
                "cpu",
            ],
            &["not a monomial-nfn checkpoint"],
            none,
        ),
        cli(
            "predict: truncated checkpoint",
            &[
                "predict",
                "--model",
                "{d}/ck-cut.safetensors",
                "--zoo",
                "{d}/zoo",
                "--backend",
                "cpu",
            ],
            &["ck-cut.safetensors"],
            none,
        ),
        cli(
            "predict: checkpoint in_channels 2^64-1",
            &[
                "predict",
                "--model",
                "{d}/ck-inch.safetensors",
                "--networks",
                "{d}/nets.safetensors",
                "--backend",
                "cpu",
            ],
            &["in_channels"],
            none,
        ),
        cli(
            "predict: --zoo with bad magic",
            &[
                "predict",
                "--model",
                "{d}/cnn.ckpt.safetensors",
                "--zoo",
                "{d}/z-magic",
                "--backend",
                "cpu",
                "--out",
                "{d}/p.csv",
            ],
            &["weights.npy"],
            none,
        ),
        cli(
            "predict: --networks of another architecture",
            &[
                "predict",
                "--model",
                "{d}/cnn.ckpt.safetensors",
                "--networks",
                "{d}/nets.safetensors",
                "--backend",
                "cpu",
                "--out",
                "{d}/p.csv",
            ],
            &["do not fit the model"],
            none,
        ),
        cli(
            "predict: --networks not safetensors",
            &[
                "predict",
                "--model",
                "{d}/mlp.ckpt.safetensors",
                "--networks",
                "{d}/garbage.bin",
                "--backend",
                "cpu",
                "--out",
                "{d}/p.csv",
            ],
            &["garbage.bin"],
            none,
        ),
        cli(
            "predict: --networks a Small CNN Zoo directory",
            &[
                "predict",
                "--model",
                "{d}/cnn.ckpt.safetensors",
                "--networks",
                "{d}/zoo",
                "--backend",
                "cpu",
                "--out",
                "{d}/p.csv",
            ],
            &["Small CNN Zoo directory", "--zoo"],
            none,
        ),
        cli(
            "predict: --batch 0",
            &[
                "predict",
                "--model",
                "{d}/mlp.ckpt.safetensors",
                "--networks",
                "{d}/nets.safetensors",
                "--batch",
                "0",
                "--backend",
                "cpu",
                "--out",
                "{d}/p.csv",
            ],
            &["--batch", "0"],
            none,
        ),
        cli(
            "predict: neither --zoo nor --networks",
            &["predict", "--model", "{d}/mlp.ckpt.safetensors"],
            &["--zoo"],
            none,
        ),
        cli(
            "predict: both --zoo and --networks",
            &[
                "predict",
                "--model",
                "{d}/mlp.ckpt.safetensors",
                "--zoo",
                "{d}/zoo",
                "--networks",
                "{d}/nets.safetensors",
            ],
            &["--networks"],
            none,
        ),
        // --- mnfn classify-inr / edit-inr ---
        cli(
            "classify-inr: --inrs not safetensors",
            &[
                "classify-inr",
                "--inrs",
                "{d}/garbage.bin",
                "--backend",
                "cpu",
                "--out",
                "{d}/out",
            ],
            &["garbage.bin"],
            none,
        ),
        cli(
            "classify-inr: --inrs missing",
            &[
                "classify-inr",
                "--inrs",
                "{d}/missing.safetensors",
                "--backend",
                "cpu",
                "--out",
                "{d}/out",
            ],
            &["missing.safetensors"],
            none,
        ),
        cli(
            "classify-inr: --inrs list naming a missing file",
            &[
                "classify-inr",
                "--inrs",
                "{d}/lists/gone/labels.csv",
                "--backend",
                "cpu",
                "--cache",
                "{d}/cache",
                "--out",
                "{d}/out",
            ],
            &["row 2", "gone.pth"],
            |fx| list_in(fx, "gone", "labels.csv", "file,label\ngone.pth,1\n"),
        ),
        cli(
            "classify-inr: --inrs folder with two lists",
            &[
                "classify-inr",
                "--inrs",
                "{d}/lists/two",
                "--backend",
                "cpu",
                "--cache",
                "{d}/cache",
                "--out",
                "{d}/out",
            ],
            &["several CSV"],
            |fx| {
                list_in(fx, "two", "x.csv", "file,label\na.pth,1\n");
                list_in(fx, "two", "y.csv", "file,label\nb.pth,1\n")
            },
        ),
        cli(
            "edit-inr: --save-edited-state-dicts without state dicts",
            &[
                "edit-inr",
                "--inrs",
                "{d}/inrs.safetensors",
                "--backend",
                "cpu",
                "--save-edited-state-dicts",
                "{d}/edited",
                "--out",
                "{d}/out",
            ],
            &["--save-edited-state-dicts", "only with PyTorch state dicts"],
            none,
        ),
        cli(
            "classify-inr: --steps 0",
            &["classify-inr", "--steps", "0"],
            &["steps", "0"],
            none,
        ),
        cli(
            "classify-inr: --dropout 1.5",
            &["classify-inr", "--dropout", "1.5"],
            &["dropout", "1.5"],
            none,
        ),
        cli(
            "classify-inr: --models unknown",
            &["classify-inr", "--models", "resnet"],
            &["resnet"],
            none,
        ),
        cli(
            "edit-inr: --inrs with bad labels",
            &[
                "edit-inr",
                "--inrs",
                "{d}/inrs-labels.safetensors",
                "--backend",
                "cpu",
                "--out",
                "{d}/out",
            ],
            &["labels"],
            none,
        ),
        cli(
            "edit-inr: --grid 0",
            &["edit-inr", "--grid", "0"],
            &["grid", "0"],
            none,
        ),
        cli(
            "edit-inr: --edit unknown",
            &["edit-inr", "--edit", "blur"],
            &["--edit", "blur"],
            none,
        ),
        cli(
            "edit-inr: --models unknown",
            &["edit-inr", "--models", "resnet"],
            &["resnet"],
            none,
        ),
        // --- mnfn zoo / inr / symmetry ---
        cli(
            "zoo generate: --arch unknown",
            &["zoo", "generate", "--arch", "resnet", "--out", "{d}/gen"],
            &["--arch", "resnet"],
            none,
        ),
        cli(
            "zoo generate: --arch mlp:0",
            &["zoo", "generate", "--arch", "mlp:0", "--out", "{d}/gen"],
            &["mlp", "0"],
            none,
        ),
        cli(
            "zoo generate: --activation unknown",
            &[
                "zoo",
                "generate",
                "--activation",
                "gelu",
                "--out",
                "{d}/gen",
            ],
            &["--activation", "gelu"],
            none,
        ),
        cli(
            "zoo generate: --out missing",
            &["zoo", "generate"],
            &["--out"],
            none,
        ),
        cli(
            "inr render: file not safetensors",
            &[
                "inr",
                "render",
                "{d}/garbage.bin",
                "--backend",
                "cpu",
                "--out",
                "{d}/r.png",
            ],
            &["garbage.bin"],
            none,
        ),
        cli(
            "inr render: file without images or activation",
            &[
                "inr",
                "render",
                "{d}/nets-noact.safetensors",
                "--backend",
                "cpu",
                "--out",
                "{d}/r.png",
            ],
            &["activation"],
            none,
        ),
        cli(
            "inr generate: --backend unknown",
            &[
                "inr",
                "generate",
                "--backend",
                "tpu",
                "--out",
                "{d}/i.safetensors",
            ],
            &["--backend", "tpu"],
            none,
        ),
        cli(
            "symmetry: path missing",
            &["symmetry", "{d}/nowhere"],
            &["nowhere"],
            none,
        ),
        cli(
            "symmetry: zoo with truncated weights.npy",
            &["symmetry", "{d}/z-cut"],
            &["weights.npy", "truncated"],
            none,
        ),
        cli(
            "symmetry: --activation unknown",
            &["symmetry", "{d}/nets.safetensors", "--activation", "gelu"],
            &["--activation", "gelu"],
            none,
        ),
        cli(
            "symmetry: network file with bad biases",
            &["symmetry", "{d}/nets-bias.safetensors"],
            &["biases.0"],
            none,
        ),
        // --- mnfn check-golden / bench ---
        cli(
            "check-golden: file not safetensors",
            &["check-golden", "{d}/garbage.bin", "--backend", "cpu"],
            &["FAIL", "garbage.bin"],
            none,
        ),
        cli(
            "check-golden: 2^64-1 channels",
            &["check-golden", "{d}/g-huge.safetensors", "--backend", "cpu"],
            &["FAIL", "parameters"],
            none,
        ),
        cli(
            "check-golden: --backend unknown",
            &["check-golden", "{d}/g.safetensors", "--backend", "tpu"],
            &["--backend", "tpu"],
            none,
        ),
        cli(
            "bench: --model unknown",
            &["bench", "--model", "resnet", "--backend", "cpu"],
            &["--model", "resnet"],
            none,
        ),
        cli(
            "bench: --activation unknown",
            &["bench", "--activation", "sin", "--backend", "cpu"],
            &["--activation", "sin"],
            none,
        ),
        cli(
            "bench: --batches not a number",
            &["bench", "--batches", "8,x", "--backend", "cpu"],
            &["--batches", "x"],
            none,
        ),
        cli(
            "mnfn: unknown command",
            &["train-everything"],
            &["train-everything"],
            none,
        ),
    ]
}

fn fill(arg: &str, dir: &Path) -> String {
    arg.replace("{d}", &dir.display().to_string())
}

/// The README section the cases render to.
fn table(cases: &[Case]) -> String {
    let mut s =
        String::from("| # | Case | Command or reader | Expected error |\n|---|---|---|---|\n");
    for (i, c) in cases.iter().enumerate() {
        let needles = c
            .needles
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let (via, expected) = match &c.run {
            Run::Lib {
                reader, variant, ..
            } => (
                format!("`{reader}`"),
                format!("`Error::{variant}` naming {needles}"),
            ),
            Run::Cli(args) => {
                let shown: Vec<String> = args.iter().map(|a| a.replace("{d}/", "")).collect();
                (
                    format!("`mnfn {}`", shown.join(" ")),
                    format!("exit ≠ 0, message naming {needles}"),
                )
            }
        };
        s.push_str(&format!(
            "| {} | {} | {via} | {expected} |\n",
            i + 1,
            c.name
        ));
    }
    s
}

const START: &str = "<!-- malformed-table:start -->";
const END: &str = "<!-- malformed-table:end -->";

#[test]
fn every_malformed_input_is_a_typed_error_or_a_failing_exit_without_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = Fx::new(tmp.path());
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    // Lib cases first: their files are reused by the command cases.
    let mut order: Vec<usize> = (0..cases.len()).collect();
    order.sort_by_key(|&i| matches!(cases[i].run, Run::Cli(_)));
    let mut outputs = String::new();
    let mut failures = Vec::new();
    for i in order {
        let c = &cases[i];
        let target = (c.setup)(&fx);
        let (text, problem) = match &c.run {
            Run::Lib { call, variant, .. } => match std::panic::catch_unwind(|| call(&target)) {
                Err(_) => ("panicked".to_string(), Some("panicked".to_string())),
                Ok(Ok(())) => (String::new(), Some("read without error".into())),
                Ok(Err(e)) => {
                    let got = self::variant(&e);
                    let text = format!("{got}: {e}");
                    let p = (got != *variant).then(|| format!("expected Error::{variant}"));
                    (text, p)
                }
            },
            Run::Cli(args) => {
                let out = Command::new(env!("CARGO_BIN_EXE_mnfn"))
                    .args(args.iter().map(|a| fill(a, &fx.dir)))
                    .current_dir(&fx.dir)
                    .env("RUST_BACKTRACE", "0")
                    .output()
                    .unwrap();
                let text = format!(
                    "exit {:?}\n{}{}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                let p = if out.status.success() {
                    Some("exited 0".to_string())
                } else if out.status.code() == Some(101) || out.status.code().is_none() {
                    Some("panic exit or signal".to_string())
                } else if out.stderr.is_empty() && out.stdout.is_empty() {
                    Some("no message".to_string())
                } else {
                    None
                };
                (text, p)
            }
        };
        let lower = text.to_lowercase();
        let problem = problem
            .or_else(|| lower.contains("panicked").then(|| "panicked".to_string()))
            .or_else(|| {
                c.needles
                    .iter()
                    .find(|n| !lower.contains(&n.to_lowercase()))
                    .map(|n| format!("message lacks {n:?}"))
            });
        outputs.push_str(&format!("=== {} ===\n{text}\n", c.name));
        if let Some(p) = problem {
            failures.push(format!("{}: {p}\n{text}", c.name));
        }
    }
    let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("malformed-outputs.txt");
    std::fs::write(&log, &outputs).unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // The README's table is this one.
    let readme_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let rendered = table(&cases);
    let (a, b) = (readme.find(START), readme.find(END));
    let current = match (a, b) {
        (Some(a), Some(b)) if a < b => readme[a + START.len()..b].trim().to_string(),
        _ => panic!("README.md lacks the {START} … {END} section"),
    };
    if std::env::var("MNFN_BLESS").is_ok_and(|v| v == "1") {
        let (a, b) = (a.unwrap(), b.unwrap());
        let new = format!("{}{START}\n{rendered}{}", &readme[..a], &readme[b..]);
        std::fs::write(&readme_path, new).unwrap();
    } else {
        assert_eq!(
            current,
            rendered.trim(),
            "README.md's malformed-input table differs from the test's cases: rerun with MNFN_BLESS=1"
        );
    }
}
