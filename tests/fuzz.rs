//! Mutation fuzzer over valid files of every format the engine reads (issue 13 item 4): bit
//! flips, truncations, inserted, deleted and overwritten bytes, header-length fields set to huge
//! or negative values, numbers and strings of the headers (npy shape dict, safetensors JSON,
//! layout and metrics CSV) edited with the lengths fixed up. Every mutated file goes through its
//! reader, which must return data or a typed error: no panic (caught per case), no hang (each
//! case runs on its own thread under a time limit), no huge allocation (this binary's allocator
//! refuses any single request over 256 MiB, which aborts the run, and the peak resident set is
//! checked at the end).
//!
//! A bounded number of iterations runs with `cargo test`; `MNFN_FUZZ_ITERS=N` sets the number,
//! `MNFN_FUZZ_SECONDS=S` runs until S seconds have passed instead (the on-demand long run),
//! `MNFN_FUZZ_SEED` changes the seed. Iteration i always mutates the same way for a given seed,
//! so a failure names its iteration and the kept input file to replay it.

#![cfg(feature = "zoo-csv")]

#[path = "support/formats.rs"]
mod formats;

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use monomial_nfn::checkpoint::Checkpoint;
use monomial_nfn::golden::check_golden;
use monomial_nfn::torchfile::{read_set, ReadOptions};
use monomial_nfn::zoo::dataset::{LAYOUT, MANIFEST, METRICS, WEIGHTS};
use monomial_nfn::zoo::inr::{render_pictures, stored_picture};
use monomial_nfn::zoo::{Layout, NetworkFile, Splits, StepFilter, Table, Zoo, ZooFilter};
use monomial_nfn::{infer_chain, Cpu, NetActivation, Result, StateDict};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The largest single allocation any reader may make on these small files.
const ALLOC_LIMIT: usize = 256 << 20;
/// The largest peak resident set the whole run may reach.
const RSS_LIMIT_KIB: u64 = 3 << 20;
/// Per-case time limit.
const CASE_LIMIT: Duration = Duration::from_secs(10);
/// Iterations per format in a default `cargo test` run.
const DEFAULT_ITERS_PER_FORMAT: u64 = 400;

/// The system allocator, refusing (so aborting the run with "memory allocation of N bytes
/// failed") any single request over [`ALLOC_LIMIT`]: a header's claimed size must be checked
/// against the file before it is allocated.
struct Guard;

static LARGEST_REFUSED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Guard {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        if layout.size() > ALLOC_LIMIT {
            LARGEST_REFUSED.fetch_max(layout.size(), Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: AllocLayout) -> *mut u8 {
        if layout.size() > ALLOC_LIMIT {
            LARGEST_REFUSED.fetch_max(layout.size(), Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
        if new_size > ALLOC_LIMIT {
            LARGEST_REFUSED.fetch_max(new_size, Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Guard = Guard;

/// How a format's header is laid out, for the header-aware mutations.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// 8-byte little-endian JSON length, then the JSON.
    Safetensors,
    /// Magic, version, 2- or 4-byte header length, then the dict text.
    Npy,
    /// Plain text (CSV).
    Text,
    /// gzip of CSV text: mutated as compressed bytes, or decompressed, mutated as text and
    /// recompressed.
    Gzip,
    /// Bytes without a length-prefixed header (zip archives, pickles): the header-aware
    /// mutations edit numbers anywhere.
    Binary,
}

type Reader = Arc<dyn Fn(&Path) -> Result<String> + Send + Sync>;

/// One fuzzed format: the valid file (inside `dir`, beside the files it needs), its kind and the
/// reader to run on the mutated copy.
struct Target {
    name: &'static str,
    file: &'static str,
    kind: Kind,
    /// Valid companion files (name, bytes) written beside the mutated one.
    companions: Vec<(String, Vec<u8>)>,
    valid: Vec<u8>,
    read: Reader,
}

fn all_rows() -> ZooFilter {
    ZooFilter {
        activation: None,
        step: StepFilter::All,
    }
}

fn open_zoo(dir: &Path) -> Result<String> {
    let zoo = Zoo::open(dir, &all_rows())?;
    let ws = zoo.weight_space(&(0..zoo.len()).collect::<Vec<_>>())?;
    let acc = zoo.metric("test_accuracy")?;
    Ok(format!(
        "{} networks, batch {}, {} accuracies",
        zoo.len(),
        ws.batch(),
        acc.len()
    ))
}

fn targets(work: &Path) -> Vec<Target> {
    let zoo = work.join("zoo");
    formats::write_zoo(&zoo);
    let zoo_files: Vec<(String, Vec<u8>)> = [WEIGHTS, LAYOUT, METRICS]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(zoo.join(f)).unwrap()))
        .collect();
    let zoo_target = |name, file: &'static str, kind, read: Reader| Target {
        name,
        file,
        kind,
        companions: zoo_files
            .iter()
            .filter(|(n, _)| n != file)
            .cloned()
            .collect(),
        valid: zoo_files.iter().find(|(n, _)| n == file).unwrap().1.clone(),
        read,
    };
    let single = |name, file: &'static str, kind, write: &dyn Fn(&Path), read: Reader| {
        let p = work.join(file);
        write(&p);
        Target {
            name,
            file,
            kind,
            companions: Vec::new(),
            valid: std::fs::read(&p).unwrap(),
            read,
        }
    };
    let golden = |name, file: &'static str| {
        let read: Reader = Arc::new(|p: &Path| {
            let r = check_golden(p, &[&Cpu::<f64>::new()])?;
            Ok(format!("{} rows, passed {}", r.rows.len(), r.passed()))
        });
        Target {
            name,
            file,
            kind: Kind::Safetensors,
            companions: Vec::new(),
            valid: std::fs::read(formats::golden(file)).unwrap(),
            read,
        }
    };
    vec![
        zoo_target(
            "weights.npy",
            WEIGHTS,
            Kind::Npy,
            Arc::new(|p: &Path| open_zoo(p.parent().unwrap())),
        ),
        zoo_target(
            "layout.csv",
            LAYOUT,
            Kind::Text,
            Arc::new(|p: &Path| {
                let l = Layout::read(p, NetActivation::Relu)?;
                open_zoo(p.parent().unwrap()).map(|z| format!("{} values; {z}", l.row_len()))
            }),
        ),
        zoo_target(
            "metrics.csv.gz",
            METRICS,
            Kind::Gzip,
            Arc::new(|p: &Path| {
                let t = Table::read_csv(p)?;
                open_zoo(p.parent().unwrap()).map(|z| format!("{} rows; {z}", t.len()))
            }),
        ),
        Target {
            name: "zoo manifest.json",
            file: MANIFEST,
            kind: Kind::Text,
            companions: zoo_files.clone(),
            valid: std::fs::read(zoo.join(MANIFEST)).unwrap(),
            read: Arc::new(|p: &Path| {
                Zoo::verify(p.parent().unwrap())?;
                Ok("verified".into())
            }),
        },
        single(
            "split .npy",
            "split.npy",
            Kind::Npy,
            &formats::write_split,
            Arc::new(|p: &Path| {
                let s = Splits::from_index_file(p, formats::ZOO_N, 0)?;
                Ok(format!("{} test", s.test.len()))
            }),
        ),
        single(
            "network safetensors",
            "nets.safetensors",
            Kind::Safetensors,
            &formats::write_mlp_networks,
            Arc::new(|p: &Path| {
                let f = NetworkFile::read(p, None)?;
                let n = f.network(0)?;
                Ok(format!("{} networks, {}", f.networks.batch(), n.batch()))
            }),
        ),
        single(
            "INR safetensors",
            "inrs.safetensors",
            Kind::Safetensors,
            &formats::write_inrs,
            Arc::new(|p: &Path| {
                let f = NetworkFile::read(p, None)?;
                let stored = stored_picture(&f, 0).map(|pic| pic.h);
                let r = render_pictures(&Cpu::<f32>::new(), &f, &[0], 4, 4)?;
                Ok(format!(
                    "{} INRs, stored {stored:?}, {} renders",
                    f.networks.batch(),
                    r.len()
                ))
            }),
        ),
        single(
            "checkpoint",
            "model.safetensors",
            Kind::Safetensors,
            &formats::write_mlp_checkpoint,
            Arc::new(|p: &Path| {
                let c = Checkpoint::load(p)?;
                Ok(format!("{} parameters", c.model.num_params()))
            }),
        ),
        pth_target("pth archive", "model.pth", None),
        list_target(),
        pth_target("pth data.pkl", "data.pkl", Some("data.pkl")),
        golden("golden (NP pool)", "A_mlp_nppool_c3.safetensors"),
        golden("golden (HNPS linear)", "A_mlp_hnpslinear_c1to3.safetensors"),
    ]
}

/// A `file,label` list of the two SIREN fixtures, read as a state-dict set (10 classes).
fn list_target() -> Target {
    let siren = |f: &str| std::fs::read(formats::pth(&format!("siren/{f}"))).unwrap();
    Target {
        name: "target list CSV",
        file: "labels.csv",
        kind: Kind::Text,
        companions: vec![
            ("a.pth".into(), siren("randinit_smaller_3s/net7.pth")),
            ("b.pth".into(), siren("randinit_smaller_5s/net12.pth")),
        ],
        valid: b"file,label\na.pth,1\nb.pth,2\n".to_vec(),
        read: Arc::new(|p: &Path| {
            let options = ReadOptions {
                classes: Some(10),
                ..ReadOptions::default()
            };
            let set = read_set(p, NetActivation::Sin, &options)?;
            Ok(format!(
                "{} networks, labels {:?}",
                set.file.networks.batch(),
                set.file.labels
            ))
        }),
    }
}

/// The named-module MLP fixture (tests/fixtures/pth), read as a state dict and a chain. With
/// `entry`, only that entry of the archive is mutated (so the mutations reach the pickle rather
/// than the zip's checksums) and the reader zips it back with the others.
fn pth_target(name: &'static str, file: &'static str, entry: Option<&'static str>) -> Target {
    let archive = std::fs::read(formats::pth("mlp_named.pth")).unwrap();
    let valid = match entry {
        Some(e) => {
            formats::unzip(&archive)
                .into_iter()
                .find(|(n, _)| n.ends_with(e))
                .unwrap()
                .1
        }
        None => archive.clone(),
    };
    let read: Reader = Arc::new(move |p: &Path| {
        let bytes = std::fs::read(p).map_err(|e| monomial_nfn::Error::io(p, e))?;
        let bytes = match entry {
            Some(e) => formats::pth_with(&archive, e, Some(&bytes)),
            None => bytes,
        };
        let sd = StateDict::from_bytes(p, bytes)?;
        let chain = infer_chain(&sd, None, NetActivation::Relu, p)?;
        Ok(format!(
            "{} tensors, {}",
            sd.entries.len(),
            chain.spec.layers_in_words()
        ))
    });
    Target {
        name,
        file,
        kind: Kind::Binary,
        companions: Vec::new(),
        valid,
        read,
    }
}

// --- Mutations -------------------------------------------------------------------------------

/// Values a size or count field is set to.
const HUGE_U64: [u64; 10] = [
    0,
    1,
    255,
    65_535,
    u32::MAX as u64,
    1 << 32,
    1 << 40,
    i64::MAX as u64,
    u64::MAX,
    (-8i64) as u64,
];

/// Tokens a number of a header is replaced by.
const NUMBERS: [&str; 14] = [
    "0",
    "1",
    "-1",
    "-9223372036854775808",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
    "99999999999999999999999999999",
    "1e400",
    "NaN",
    "2.5",
    "",
    "65536",
];

/// Strings a quoted string of a header is replaced by.
const STRINGS: [&str; 16] = [
    "",
    "F32",
    "I64",
    "U8",
    "F16",
    "BOOL",
    "relu",
    "sin",
    "tanh",
    "weights.0",
    "biases.9",
    "labels",
    "images",
    "<f8",
    "|u1",
    "\u{fffd}",
];

/// Where the header text of `bytes` lies (start, end), for the header-aware mutations.
fn header_span(kind: Kind, bytes: &[u8]) -> Option<(usize, usize)> {
    match kind {
        Kind::Safetensors => {
            let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
            (8usize.checked_add(n)? <= bytes.len()).then_some((8, 8 + n))
        }
        Kind::Npy => {
            let major = *bytes.get(6)?;
            let (start, n) = if major == 1 {
                (
                    10,
                    u16::from_le_bytes(bytes.get(8..10)?.try_into().ok()?) as usize,
                )
            } else {
                (
                    12,
                    u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?) as usize,
                )
            };
            (start + n <= bytes.len()).then_some((start, start + n))
        }
        Kind::Text | Kind::Gzip | Kind::Binary => Some((0, bytes.len())),
    }
}

/// Rewrites the header-length field after the header text changed length by `delta`.
fn fix_header_len(kind: Kind, bytes: &mut [u8], delta: isize) {
    match kind {
        Kind::Safetensors => {
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as isize + delta;
            bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
        }
        Kind::Npy if bytes[6] == 1 => {
            let n = u16::from_le_bytes(bytes[8..10].try_into().unwrap()) as isize + delta;
            bytes[8..10].copy_from_slice(&(n as u16).to_le_bytes());
        }
        Kind::Npy => {
            let n = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as isize + delta;
            bytes[8..12].copy_from_slice(&(n as u32).to_le_bytes());
        }
        Kind::Text | Kind::Gzip | Kind::Binary => {}
    }
}

/// Spans (start, end) of the runs of bytes in `text[lo..hi]` that `is_token` accepts.
fn token_spans(bytes: &[u8], (lo, hi): (usize, usize), number: bool) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = lo;
    while i < hi {
        if number && (bytes[i].is_ascii_digit() || bytes[i] == b'-') {
            let s = i;
            while i < hi && (bytes[i].is_ascii_digit() || b"-.e".contains(&bytes[i])) {
                i += 1;
            }
            spans.push((s, i));
        } else if !number && bytes[i] == b'"' {
            let s = i + 1;
            i += 1;
            while i < hi && bytes[i] != b'"' {
                i += 1;
            }
            spans.push((s, i));
            i += 1;
        } else {
            i += 1;
        }
    }
    spans
}

/// Replaces a random number or string of the header with another token, fixing the length field.
fn edit_token(kind: Kind, bytes: &mut Vec<u8>, r: &mut ChaCha8Rng, number: bool) -> String {
    let Some(span) = header_span(kind, bytes) else {
        return "no header to edit".into();
    };
    let spans = token_spans(bytes, span, number);
    if spans.is_empty() {
        return "no token to edit".into();
    }
    let (s, e) = spans[r.random_range(0..spans.len())];
    let new = if number {
        NUMBERS[r.random_range(0..NUMBERS.len())]
    } else {
        STRINGS[r.random_range(0..STRINGS.len())]
    };
    let old = String::from_utf8_lossy(&bytes[s..e]).into_owned();
    bytes.splice(s..e, new.bytes());
    fix_header_len(kind, bytes, new.len() as isize - (e - s) as isize);
    format!("header token {old:?} -> {new:?} at {s}")
}

/// One random mutation of `bytes`; returns its description.
fn mutate_once(kind: Kind, bytes: &mut Vec<u8>, r: &mut ChaCha8Rng) -> String {
    let len = bytes.len();
    match r.random_range(0..9) {
        0 if len > 0 => {
            let k = r.random_range(1..=8);
            for _ in 0..k {
                let i = r.random_range(0..len);
                bytes[i] ^= 1 << r.random_range(0..8);
            }
            format!("{k} bit flips")
        }
        1 => {
            let at = r.random_range(0..=len);
            bytes.truncate(at);
            format!("truncate to {at}")
        }
        2 => {
            let at = r.random_range(0..=len);
            let n = r.random_range(1..=64);
            let fill: Vec<u8> = if r.random_bool(0.5) {
                (0..n).map(|_| r.random()).collect()
            } else {
                vec![*[0u8, 0xff, b'9', b','].get(r.random_range(0..4)).unwrap(); n]
            };
            bytes.splice(at..at, fill);
            format!("insert {n} bytes at {at}")
        }
        3 if len > 0 => {
            let at = r.random_range(0..len);
            let n = r.random_range(1..=64).min(len - at);
            bytes.drain(at..at + n);
            format!("delete {n} bytes at {at}")
        }
        4 if len > 0 => {
            let k = r.random_range(1..=8);
            for _ in 0..k {
                let i = r.random_range(0..len);
                bytes[i] = [0, 0xff, 0x7f, 0x80, r.random()][r.random_range(0..5)];
            }
            format!("overwrite {k} bytes")
        }
        5 => match kind {
            Kind::Safetensors if len >= 8 => {
                let v = HUGE_U64[r.random_range(0..HUGE_U64.len())];
                bytes[..8].copy_from_slice(&v.to_le_bytes());
                format!("header length = {v}")
            }
            Kind::Npy if len >= 12 => {
                let v = HUGE_U64[r.random_range(0..HUGE_U64.len())];
                if bytes[6] == 1 {
                    bytes[8..10].copy_from_slice(&(v as u16).to_le_bytes());
                } else {
                    bytes[8..12].copy_from_slice(&(v as u32).to_le_bytes());
                }
                format!("header length = {v} (truncated to the field)")
            }
            _ => edit_token(kind, bytes, r, true),
        },
        6 | 7 => edit_token(kind, bytes, r, true),
        8 => edit_token(kind, bytes, r, false),
        _ => "no-op".into(),
    }
}

/// 1 to 3 mutations; a gzip file is mutated either as bytes or as its decompressed text.
fn mutate(kind: Kind, valid: &[u8], r: &mut ChaCha8Rng) -> (Vec<u8>, String) {
    let k = r.random_range(1..=3);
    if matches!(kind, Kind::Gzip) && r.random_bool(0.5) {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(valid)
            .read_to_end(&mut text)
            .unwrap();
        let what: Vec<String> = (0..k)
            .map(|_| mutate_once(Kind::Text, &mut text, r))
            .collect();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&text).unwrap();
        return (enc.finish().unwrap(), format!("text: {}", what.join("; ")));
    }
    let mut bytes = valid.to_vec();
    let what: Vec<String> = (0..k).map(|_| mutate_once(kind, &mut bytes, r)).collect();
    (bytes, what.join("; "))
}

// --- The run ---------------------------------------------------------------------------------

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
    })
}

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `read` on `path` on its own thread; Err with the reason on a panic or a hang.
fn run_case(read: &Reader, path: PathBuf) -> std::result::Result<Result<String>, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let read = read.clone();
    std::thread::Builder::new()
        .name("fuzz-case".into())
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&path)));
            let _ = tx.send(r.map_err(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            }));
        })
        .expect("case thread starts");
    match rx.recv_timeout(CASE_LIMIT) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(msg)) => Err(format!("panicked: {msg}")),
        Err(_) => Err(format!("no answer within {CASE_LIMIT:?} (hang)")),
    }
}

#[derive(Default, Clone, Copy)]
struct Counts {
    ok: u64,
    err: u64,
}

#[test]
fn mutated_files_of_every_format_give_data_or_a_typed_error() {
    let work = tempfile::tempdir().unwrap();
    let targets = targets(work.path());
    let seconds = env_u64("MNFN_FUZZ_SECONDS");
    let iters = env_u64("MNFN_FUZZ_ITERS").unwrap_or(match seconds {
        Some(_) => u64::MAX,
        None => DEFAULT_ITERS_PER_FORMAT * targets.len() as u64,
    });
    let seed = env_u64("MNFN_FUZZ_SEED").unwrap_or(13);
    // MNFN_FUZZ_VERBOSE=1 prints every mutation and the error it gave.
    let verbose = std::env::var("MNFN_FUZZ_VERBOSE").is_ok_and(|v| v == "1");
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Failed inputs are kept here (and the case files of a run that aborts stay behind).
    let keep = std::env::temp_dir().join(format!("mnfn-fuzz-{}", std::process::id()));
    eprintln!(
        "fuzz: {} formats, seed {seed}, {workers} workers, cases under {}",
        targets.len(),
        keep.display()
    );
    // Every valid file reads, so the typed errors below come from the mutations.
    for (t, target) in targets.iter().enumerate() {
        let d = keep.join(format!("valid-t{t}"));
        std::fs::create_dir_all(&d).unwrap();
        for (name, bytes) in &target.companions {
            std::fs::write(d.join(name), bytes).unwrap();
        }
        std::fs::write(d.join(target.file), &target.valid).unwrap();
        match run_case(&target.read, d.join(target.file)) {
            Ok(Ok(_)) => {}
            other => panic!("the valid {} does not read: {other:?}", target.name),
        }
    }
    let next = AtomicU64::new(0);
    let counts = Mutex::new(vec![Counts::default(); targets.len()]);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for w in 0..workers {
            let (targets, next, counts, failures, keep) =
                (&targets, &next, &counts, &failures, &keep);
            s.spawn(move || {
                // Each worker has its own copy of every target's directory.
                let dirs: Vec<PathBuf> = targets
                    .iter()
                    .enumerate()
                    .map(|(t, target)| {
                        let d = keep.join(format!("w{w}-t{t}"));
                        std::fs::create_dir_all(&d).unwrap();
                        for (name, bytes) in &target.companions {
                            std::fs::write(d.join(name), bytes).unwrap();
                        }
                        d
                    })
                    .collect();
                loop {
                    if !failures.lock().unwrap().is_empty()
                        || seconds.is_some_and(|s| t0.elapsed().as_secs() >= s)
                    {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= iters {
                        break;
                    }
                    let t = (i % targets.len() as u64) as usize;
                    let target = &targets[t];
                    let mut r =
                        ChaCha8Rng::seed_from_u64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let (bytes, what) = mutate(target.kind, &target.valid, &mut r);
                    let path = dirs[t].join(target.file);
                    std::fs::write(&path, &bytes).unwrap();
                    match run_case(&target.read, path.clone()) {
                        Ok(Ok(_)) => counts.lock().unwrap()[t].ok += 1,
                        Ok(Err(e)) => {
                            assert!(!e.to_string().is_empty());
                            if verbose {
                                eprintln!("{i} {}: {what}: {e}", target.name);
                            }
                            counts.lock().unwrap()[t].err += 1;
                        }
                        Err(why) => {
                            let kept = keep.join(format!("failed-{i}-{}", target.file));
                            std::fs::write(&kept, &bytes).unwrap();
                            failures.lock().unwrap().push(format!(
                                "iteration {i} ({}; {what}): {why}; input kept at {}",
                                target.name,
                                kept.display()
                            ));
                        }
                    }
                }
            });
        }
    });
    let elapsed = t0.elapsed().as_secs_f64();
    let counts = counts.into_inner().unwrap();
    let total: u64 = counts.iter().map(|c| c.ok + c.err).sum();
    for (t, c) in targets.iter().zip(&counts) {
        eprintln!(
            "  {:<22} {:>8} cases: {:>7} read, {:>8} typed errors",
            t.name,
            c.ok + c.err,
            c.ok,
            c.err
        );
    }
    let rss = peak_rss_kib();
    eprintln!(
        "fuzz: {total} cases in {elapsed:.1} s ({:.0}/s), peak RSS {} MiB",
        total as f64 / elapsed,
        rss.map_or("?".into(), |k| (k / 1024).to_string())
    );
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(LARGEST_REFUSED.load(Ordering::Relaxed), 0);
    if let Some(k) = rss {
        assert!(k < RSS_LIMIT_KIB, "peak RSS {k} KiB");
    }
    let _ = std::fs::remove_dir_all(&keep);
}
