//! Every shared golden file passes check-golden (forward) on the CPU backends.

use std::path::PathBuf;

use monomial_nfn::golden::check_golden;
use monomial_nfn::{Backend, Cpu};

fn golden_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/goldens");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/goldens exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    v.sort();
    assert_eq!(v.len(), 24, "the shared golden set has 24 files");
    v
}

#[test]
fn supported_goldens_pass_on_cpu_f64_and_f32() {
    let (f64b, f32b) = (Cpu::<f64>::new(), Cpu::<f32>::new());
    let backends: [&dyn Backend; 2] = [&f64b, &f32b];
    for path in golden_files() {
        let report = check_golden(&path, &backends).expect("golden file loads");
        if let Some(why) = &report.unsupported {
            eprintln!("UNSUPPORTED {}: {why}", path.display());
            continue;
        }
        for row in &report.rows {
            eprintln!(
                "{:>40} {:>10} {:40} err {:.2e} ratio {:.3}",
                path.file_name().unwrap().to_string_lossy(),
                row.backend,
                row.tensor,
                row.max_abs,
                row.ratio
            );
        }
        assert!(report.passed(), "{} failed", path.display());
    }
}
