//! The Small CNN Zoo format: round trips, the TensorFlow → engine layout conversion, filters,
//! splits, and typed errors (never panics) on bad files.

use std::path::Path;

use monomial_nfn::zoo::dataset::{METRICS, WEIGHTS};
use monomial_nfn::zoo::npy::{self, NpyFile};
use monomial_nfn::zoo::{Layout, LayoutEntry, Splits, StepFilter, Table, Zoo, ZooFilter};
use monomial_nfn::{DatasetProblem, Error, LayerShape, NetActivation, NetworkSpec};
use npyz::WriterBuilder;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

fn cnn() -> NetworkSpec {
    NetworkSpec::cnn_zoo(NetActivation::Relu)
}

/// Metrics for `n` networks: alternating relu/tanh, steps cycling 0, 5, 10 (final = 10).
fn metrics(n: usize) -> Table {
    let header = [
        "step",
        "test_accuracy",
        "config.activation",
        "config.num_steps",
    ]
    .map(String::from)
    .to_vec();
    let rows = (0..n)
        .map(|i| {
            vec![
                ((i % 3) * 5).to_string(),
                format!("{}", i as f64 / n as f64),
                if i % 2 == 0 { "relu" } else { "tanh" }.into(),
                "10".into(),
            ]
        })
        .collect();
    Table::new(header, rows)
}

fn random_rows(n: usize, p: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n * p).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn write_zoo(dir: &Path, n: usize) -> (Layout, Vec<f32>) {
    let layout = Layout::for_spec(&cnn());
    let rows = random_rows(n, layout.row_len(), 1);
    Zoo::write(dir, &layout, &rows, &metrics(n)).unwrap();
    (layout, rows)
}

fn all() -> ZooFilter {
    ZooFilter {
        activation: Some(NetActivation::Relu),
        step: StepFilter::All,
    }
}

#[test]
fn cnn_zoo_layout_has_4970_parameters_in_the_original_order() {
    let layout = Layout::for_spec(&cnn());
    assert_eq!(layout.row_len(), 4970);
    let names: Vec<&str> = layout
        .entries()
        .iter()
        .map(|e| e.varname.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "sequential/conv2d/bias:0",
            "sequential/conv2d/kernel:0",
            "sequential/conv2d_1/bias:0",
            "sequential/conv2d_1/kernel:0",
            "sequential/conv2d_2/bias:0",
            "sequential/conv2d_2/kernel:0",
            "sequential/dense/bias:0",
            "sequential/dense/kernel:0",
        ]
    );
    assert_eq!(layout.entries()[1].shape, [3, 3, 1, 16]);
    assert_eq!(layout.entries()[7].shape, [16, 10]);
    assert_eq!(layout.spec(), &cnn());
}

#[test]
fn zoo_round_trips_through_files_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, rows) = write_zoo(dir.path(), 12);
    let zoo = Zoo::open(dir.path(), &all()).unwrap();
    assert_eq!(zoo.len(), 6, "the relu half");
    assert_eq!(zoo.rows, [0, 2, 4, 6, 8, 10]);
    for (k, &r) in zoo.rows.iter().enumerate() {
        let want = &rows[r * 4970..(r + 1) * 4970];
        assert!(zoo
            .row(k)
            .iter()
            .zip(want)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    assert_eq!(zoo.layout.entries(), layout.entries());
    let acc = zoo.metric("test_accuracy").unwrap();
    assert_eq!(
        acc,
        [0.0, 2.0 / 12.0, 4.0 / 12.0, 0.5, 8.0 / 12.0, 10.0 / 12.0]
    );
    // Rows -> engine layout -> rows is the identity.
    let ws = zoo.weight_space(&[0, 3]).unwrap();
    assert_eq!(ws.batch(), 2);
    assert_eq!(ws.weights[1].shape, [2, 1, 16, 16, 3, 3]);
    let back = zoo.layout.to_rows::<f32>(&ws).unwrap();
    assert_eq!(&back[..4970], zoo.row(0));
    assert_eq!(&back[4970..], zoo.row(3));
}

#[test]
fn tensorflow_kernels_transpose_to_out_in_kh_kw() {
    // conv 3 -> 2 with a 1x2 kernel, then dense 2 -> 1; row value = its index.
    let spec = NetworkSpec::new(
        vec![LayerShape::conv(2, 3, 1, 2), LayerShape::dense(1, 2)],
        NetActivation::Tanh,
    )
    .unwrap();
    let layout = Layout::for_spec(&spec);
    assert_eq!(layout.row_len(), 2 + 12 + 1 + 2);
    let row: Vec<f32> = (0..17).map(|i| i as f32).collect();
    let ws = layout.to_weight_space(&row).unwrap();
    let w0 = &ws.weights[0].data; // (1, 1, out 2, in 3, kh 1, kw 2)
    let at = |o: usize, c: usize, x: usize| w0[(o * 3 + c) * 2 + x];
    // TF (kh, kw, in, out) index of (y, x, c, o) is ((y*2 + x)*3 + c)*2 + o, after 2 bias values.
    assert_eq!(at(0, 0, 0), 2.0);
    assert_eq!(at(1, 0, 0), 3.0);
    assert_eq!(at(0, 1, 0), 4.0);
    assert_eq!(at(0, 0, 1), 8.0);
    assert_eq!(at(1, 2, 1), 13.0);
    assert_eq!(ws.biases[0].data, [0.0, 1.0]);
    assert_eq!(ws.biases[1].data, [14.0]);
    assert_eq!(ws.weights[1].data, [15.0, 16.0]); // dense (in 2, out 1) -> (out 1, in 2)
    assert_eq!(layout.to_rows::<f32>(&ws).unwrap(), row);
}

/// A header for a C-order array of dtype `descr` (e.g. "<f4"), written by npyz.
fn header_bytes(descr: &str, shape: &[u64]) -> Vec<u8> {
    npyz::WriteOptions::new_header_only()
        .dtype(npyz::DType::new_scalar(descr.parse().unwrap()))
        .shape(shape)
        .writer(Vec::new())
        .write_header_only()
        .unwrap()
}

/// A version-1.0 header for the dict `dict`, padded to 128 bytes as numpy pads a small shape's.
fn numpy_header(dict: &str) -> Vec<u8> {
    let mut h = b"\x93NUMPY\x01\x00v\x00".to_vec();
    h.extend(dict.as_bytes());
    h.resize(127, b' ');
    h.push(b'\n');
    h
}

/// The header text of a version-1.0 npy file, checking the preamble and numpy's 64-byte alignment.
fn v1_header_text(bytes: &[u8]) -> &str {
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + len) % 64, 0);
    let text = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(text.ends_with('\n'), "{text:?}");
    text
}

#[test]
fn written_npy_files_have_numpy_headers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.npy");
    npy::write_f32_matrix(&path, 200, 4970, &vec![0.5; 200 * 4970]).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let text = v1_header_text(&bytes);
    assert!(
        text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (200, 4970"),
        "{text}"
    );
    assert_eq!(bytes.len(), 10 + text.len() + 200 * 4970 * 4);
    npy::write_indices(&path, &[3; 7]).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let text = v1_header_text(&bytes);
    assert!(
        text.starts_with("{'descr': '<i8', 'fortran_order': False, 'shape': (7,"),
        "{text}"
    );
    assert_eq!(bytes.len(), 10 + text.len() + 7 * 8);
}

#[test]
fn npy_written_by_numpy_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.npy");
    let mut bytes = numpy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }");
    bytes.extend((0..15).flat_map(|i| (i as f32).to_le_bytes()));
    std::fs::write(&path, &bytes).unwrap();
    let mut f = NpyFile::open(&path).unwrap();
    assert_eq!(f.f32_matrix_dims().unwrap(), (3, 5));
    let want: Vec<f32> = (10..15).map(|i| i as f32).collect();
    assert_eq!(f.read_f32_rows(&[2]).unwrap(), want);
}

#[test]
fn filters_select_activation_and_final_step() {
    let dir = tempfile::tempdir().unwrap();
    write_zoo(dir.path(), 12);
    let tanh_final = ZooFilter {
        activation: Some(NetActivation::Tanh),
        step: StepFilter::Final,
    };
    let zoo = Zoo::open(dir.path(), &tanh_final).unwrap();
    // tanh rows are odd; step 10 is i % 3 == 2.
    assert_eq!(zoo.rows, [5, 11]);
    assert_eq!(zoo.layout.spec().activation, NetActivation::Tanh);
    let exact = ZooFilter {
        activation: Some(NetActivation::Relu),
        step: StepFilter::Exact(5),
    };
    assert_eq!(Zoo::open(dir.path(), &exact).unwrap().rows, [4, 10]);
    // Without an activation filter the mixed zoo is refused.
    let err = Zoo::open(dir.path(), &ZooFilter::default()).unwrap_err();
    assert!(matches!(
        err,
        Error::Dataset {
            problem: DatasetProblem::Mismatch(_),
            ..
        }
    ));
}

#[test]
fn seeded_splits_partition_the_zoo_80_10_10() {
    let s = Splits::seeded(100, 3);
    assert_eq!((s.train.len(), s.val.len(), s.test.len()), (80, 10, 10));
    let mut all: Vec<usize> = [s.train, s.val, s.test].concat();
    all.sort();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert_eq!(Splits::seeded(100, 3), Splits::seeded(100, 3));
    assert_ne!(Splits::seeded(100, 3), Splits::seeded(100, 4));
}

#[test]
fn split_file_orders_networks_as_the_original_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("split.npy");
    let order: Vec<usize> = (0..20).rev().collect();
    npy::write_indices(&path, &order).unwrap();
    let s = Splits::from_index_file(&path, 20, 0).unwrap();
    assert_eq!(s.test, (0..10).rev().collect::<Vec<_>>());
    assert_eq!((s.train.len(), s.val.len()), (8, 2));
    let mut tv: Vec<usize> = [s.train, s.val].concat();
    tv.sort();
    assert_eq!(tv, (10..20).collect::<Vec<_>>());
    npy::write_indices(&path, &[1, 1]).unwrap();
    assert!(matches!(
        Splits::from_index_file(&path, 20, 0),
        Err(Error::Dataset {
            problem: DatasetProblem::Mismatch(_),
            ..
        })
    ));
}

/// Opens the zoo and returns the dataset error's file name and problem.
fn open_err(dir: &Path) -> (String, DatasetProblem) {
    match Zoo::open(dir, &all()) {
        Err(Error::Dataset { path, problem }) => (
            path.file_name().unwrap().to_string_lossy().into_owned(),
            problem,
        ),
        other => panic!("expected a dataset error, got {other:?}"),
    }
}

#[test]
fn truncated_npy_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    write_zoo(dir.path(), 4);
    let w = dir.path().join(WEIGHTS);
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() - 3]).unwrap();
    let (file, p) = open_err(dir.path());
    assert_eq!(file, WEIGHTS);
    assert!(matches!(p, DatasetProblem::Truncated(_)), "{p:?}");
    std::fs::write(&w, &bytes[..50]).unwrap();
    assert!(matches!(
        open_err(dir.path()).1,
        DatasetProblem::Truncated(_)
    ));
    std::fs::write(&w, &bytes[..5]).unwrap();
    assert!(matches!(
        open_err(dir.path()).1,
        DatasetProblem::Truncated(_)
    ));
}

#[test]
fn corrupt_npy_magic_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    write_zoo(dir.path(), 4);
    let w = dir.path().join(WEIGHTS);
    let mut bytes = std::fs::read(&w).unwrap();
    bytes[1] = b'X';
    std::fs::write(&w, &bytes).unwrap();
    let (file, p) = open_err(dir.path());
    assert_eq!(file, WEIGHTS);
    assert!(
        matches!(p, DatasetProblem::Malformed(ref m) if m.contains("magic")),
        "{p:?}"
    );
}

#[test]
fn wrong_dtype_and_shape_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_zoo(dir.path(), 4);
    let w = dir.path().join(WEIGHTS);
    let mut f64_file = header_bytes("<f8", &[4, 4970]);
    f64_file.extend(vec![0u8; 4 * 4970 * 8]);
    std::fs::write(&w, f64_file).unwrap();
    let (file, p) = open_err(dir.path());
    assert_eq!(file, WEIGHTS);
    assert!(
        matches!(p, DatasetProblem::Dtype { ref got, .. } if got == "<f8"),
        "{p:?}"
    );
    let mut big_endian = header_bytes(">f4", &[4, 4970]);
    big_endian.extend(vec![0u8; 4 * 4970 * 4]);
    std::fs::write(&w, big_endian).unwrap();
    let p = open_err(dir.path()).1;
    assert!(
        matches!(p, DatasetProblem::Dtype { ref got, .. } if got == ">f4"),
        "{p:?}"
    );
    let mut flat = header_bytes("<f4", &[4 * 4970]);
    flat.extend(vec![0u8; 4 * 4970 * 4]);
    std::fs::write(&w, flat).unwrap();
    assert!(matches!(
        open_err(dir.path()).1,
        DatasetProblem::Mismatch(_)
    ));
}

#[test]
fn fortran_order_and_overflowing_shapes_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_zoo(dir.path(), 4);
    let w = dir.path().join(WEIGHTS);
    let mut fortran = npyz::WriteOptions::new_header_only()
        .dtype(npyz::DType::new_scalar("<f4".parse().unwrap()))
        .shape(&[4, 4970])
        .order(npyz::Order::Fortran)
        .writer(Vec::new())
        .write_header_only()
        .unwrap();
    fortran.extend(vec![0u8; 4 * 4970 * 4]);
    std::fs::write(&w, fortran).unwrap();
    let (file, p) = open_err(dir.path());
    assert_eq!(file, WEIGHTS);
    assert!(
        matches!(p, DatasetProblem::Malformed(ref m) if m.contains("Fortran")),
        "{p:?}"
    );
    let huge = 1u64 << 40;
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({huge}, {huge}), }}");
    std::fs::write(&w, numpy_header(&dict)).unwrap();
    let p = open_err(dir.path()).1;
    assert!(
        matches!(p, DatasetProblem::Malformed(ref m) if m.contains("overflows")),
        "{p:?}"
    );
}

#[test]
fn index_files_of_any_integer_dtype_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("split.npy");
    let read = |descr: &str, data: Vec<u8>| {
        let mut bytes = header_bytes(descr, &[3]);
        bytes.extend(data);
        std::fs::write(&path, bytes).unwrap();
        NpyFile::open(&path).and_then(NpyFile::read_indices)
    };
    let be: Vec<u8> = [2i32, 0, 1].iter().flat_map(|v| v.to_be_bytes()).collect();
    assert_eq!(read(">i4", be).unwrap(), [2, 0, 1]);
    assert_eq!(read("|u1", vec![7, 8, 9]).unwrap(), [7, 8, 9]);
    let le: Vec<u8> = [5i16, 0, 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(read("<i2", le).unwrap(), [5, 0, 4]);
    let negative: Vec<u8> = [1i64, -1, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert!(matches!(
        read("<i8", negative),
        Err(Error::Dataset {
            problem: DatasetProblem::Mismatch(_),
            ..
        })
    ));
    let float: Vec<u8> = [0.0f32, 1.0, 2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert!(matches!(
        read("<f4", float),
        Err(Error::Dataset {
            problem: DatasetProblem::Dtype { ref got, .. },
            ..
        }) if got == "<f4"
    ));
}

#[test]
fn layout_that_does_not_match_the_weights_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    write_zoo(dir.path(), 4);
    // A valid layout for another architecture: P differs from the weights' columns.
    let mlp = NetworkSpec::mlp(&[2, 3, 1], NetActivation::Relu).unwrap();
    Layout::for_spec(&mlp)
        .write(&dir.path().join("layout.csv"))
        .unwrap();
    let (file, p) = open_err(dir.path());
    assert_eq!(file, "layout.csv");
    assert!(
        matches!(p, DatasetProblem::Mismatch(ref m) if m.contains("4970")),
        "{p:?}"
    );
    // A layout whose variables overlap.
    let e = |name: &str, start, end, shape: Vec<usize>| LayoutEntry {
        varname: name.into(),
        start,
        end,
        shape,
    };
    let bad = vec![
        e("a/bias:0", 0, 2, vec![2]),
        e("a/kernel:0", 1, 5, vec![2, 2]),
    ];
    assert!(matches!(
        Layout::from_entries(bad, NetActivation::Relu, Path::new("layout.csv")),
        Err(Error::Dataset {
            problem: DatasetProblem::Mismatch(_),
            ..
        })
    ));
}

#[test]
fn missing_metrics_column_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    write_zoo(dir.path(), 4);
    let t = Table::new(
        vec!["step".into()],
        (0..4).map(|_| vec!["10".into()]).collect(),
    );
    t.write_csv(&dir.path().join(METRICS)).unwrap();
    assert_eq!(
        open_err(dir.path()),
        (
            METRICS.into(),
            DatasetProblem::MissingColumn("config.activation".into())
        )
    );
}

#[test]
fn corrupt_gzip_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    write_zoo(dir.path(), 4);
    let m = dir.path().join(METRICS);
    let mut bytes = std::fs::read(&m).unwrap();
    let n = bytes.len();
    bytes[n / 2..].iter_mut().for_each(|b| *b ^= 0x5a);
    std::fs::write(&m, &bytes).unwrap();
    let (file, p) = open_err(dir.path());
    assert_eq!(file, METRICS);
    assert!(matches!(p, DatasetProblem::Gzip(_)), "{p:?}");
}

#[test]
fn empty_zoo_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::for_spec(&cnn());
    Zoo::write(dir.path(), &layout, &[], &metrics(0)).unwrap();
    let (file, p) = open_err(dir.path());
    assert_eq!(file, METRICS);
    assert!(matches!(p, DatasetProblem::Empty(_)), "{p:?}");
}

#[test]
fn metrics_rows_must_match_weight_rows() {
    let dir = tempfile::tempdir().unwrap();
    write_zoo(dir.path(), 4);
    metrics(5).write_csv(&dir.path().join(METRICS)).unwrap();
    let (file, p) = open_err(dir.path());
    assert_eq!(file, METRICS);
    assert!(matches!(p, DatasetProblem::Mismatch(_)), "{p:?}");
}

fn valid_npy() -> Vec<u8> {
    let mut v = header_bytes("<f4", &[3, 5]);
    v.extend((0..15).flat_map(|i| (i as f32).to_le_bytes()));
    v
}

/// Writes `bytes` as an npy file and loads it: a float32 matrix gives all its rows, an integer
/// vector its indices; anything else must be a typed dataset error.
fn load_or_typed_error(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.npy");
    std::fs::write(&path, bytes).unwrap();
    let typed = |e: Error| {
        prop_assert!(matches!(e, Error::Dataset { .. }), "{e:?}");
        Ok(())
    };
    match NpyFile::open(&path) {
        Ok(mut f) => match f.f32_matrix_dims() {
            Ok((r, c)) => {
                let rows: Vec<usize> = (0..r).collect();
                prop_assert_eq!(f.read_f32_rows(&rows).unwrap().len(), r * c);
            }
            Err(e) => {
                typed(e)?;
                if let Err(e) = f.read_indices() {
                    typed(e)?;
                }
            }
        },
        Err(e) => typed(e)?,
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn npy_reader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        load_or_typed_error(&bytes)?;
        let mut prefixed = b"\x93NUMPY\x01\x00".to_vec();
        prefixed.extend(&bytes);
        load_or_typed_error(&prefixed)?;
    }

    #[test]
    fn npy_header_round_trips_any_shape(shape in proptest::collection::vec(0u64..10_000, 0..4)) {
        // Header only: an empty array opens with its shape, any other is truncated at its shape.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.npy");
        std::fs::write(&path, header_bytes("<f4", &shape)).unwrap();
        let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        match NpyFile::open(&path) {
            Ok(f) => {
                prop_assert!(dims.contains(&0));
                match dims[..] {
                    [r, c] => prop_assert_eq!(f.f32_matrix_dims().unwrap(), (r, c)),
                    _ => prop_assert!(f.f32_matrix_dims().is_err()),
                }
            }
            Err(Error::Dataset { problem: DatasetProblem::Truncated(m), .. }) => {
                prop_assert!(!dims.contains(&0));
                prop_assert!(m.contains(&format!("shape {dims:?}")), "{}", m);
            }
            Err(e) => prop_assert!(false, "{e:?}"),
        }
    }

    #[test]
    fn npy_matrices_round_trip_and_read_any_rows(
        rows in 0usize..12,
        cols in 0usize..40,
        keep in proptest::collection::vec(any::<bool>(), 12),
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.npy");
        let data = random_rows(rows, cols, seed);
        npy::write_f32_matrix(&path, rows, cols, &data).unwrap();
        let mut f = NpyFile::open(&path).unwrap();
        prop_assert_eq!(f.f32_matrix_dims().unwrap(), (rows, cols));
        let pick: Vec<usize> = (0..rows).filter(|&r| keep[r]).collect();
        let want: Vec<u32> = pick
            .iter()
            .flat_map(|&r| &data[r * cols..(r + 1) * cols])
            .map(|v| v.to_bits())
            .collect();
        let got: Vec<u32> = f.read_f32_rows(&pick).unwrap().iter().map(|v| v.to_bits()).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn mutated_npy_files_give_data_or_a_typed_error(cut in 0usize..200, flips in proptest::collection::vec((0usize..200, any::<u8>()), 0..4)) {
        let mut bytes = valid_npy();
        for (at, v) in flips {
            let n = bytes.len();
            bytes[at % n] = v;
        }
        bytes.truncate(cut.min(bytes.len()));
        load_or_typed_error(&bytes)?;
    }

    #[test]
    fn layout_parser_never_panics(text in "[a-z/:_0-9,() \\[\\]\n\"]{0,200}") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layout.csv");
        std::fs::write(&path, format!("varname,start_idx,end_idx,shape\n{text}")).unwrap();
        if let Err(e) = Layout::read(&path, NetActivation::Relu) {
            prop_assert!(matches!(e, Error::Dataset { .. }), "{e:?}");
        }
    }

    #[test]
    fn layout_entries_validate_without_panicking(
        entries in proptest::collection::vec(
            (0usize..4, 0usize..2, 0usize..40, 0usize..40, proptest::collection::vec(0usize..5, 0..5)),
            0..6,
        )
    ) {
        let entries: Vec<LayoutEntry> = entries
            .into_iter()
            .map(|(scope, kind, start, end, shape)| LayoutEntry {
                varname: format!("s{scope}/{}:0", ["kernel", "bias"][kind]),
                start,
                end,
                shape,
            })
            .collect();
        if let Ok(l) = Layout::from_entries(entries, NetActivation::Tanh, Path::new("l.csv")) {
            let rows = vec![0.5f32; l.row_len()];
            let ws = l.to_weight_space(&rows).unwrap();
            prop_assert_eq!(l.to_rows::<f32>(&ws).unwrap(), rows);
        }
    }
}

#[test]
fn writes_go_through_a_temporary_name_and_leave_nothing_on_failure() {
    use monomial_nfn::io::write_atomic;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.csv.gz");
    // A failing writer leaves neither the file nor its temporary.
    let e = write_atomic(&path, |tmp| {
        std::fs::write(tmp, b"half").unwrap();
        Err(monomial_nfn::Error::Input("interrupted".into()))
    });
    assert!(e.is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // A successful one sees a temporary with the same extension, then the file appears whole.
    write_atomic(&path, |tmp| {
        assert!(tmp.to_string_lossy().ends_with(".csv.gz"));
        assert!(
            !path.exists(),
            "the final name appears only after the rename"
        );
        std::fs::write(tmp, b"whole").map_err(|e| monomial_nfn::Error::io(tmp, e))
    })
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"whole");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
