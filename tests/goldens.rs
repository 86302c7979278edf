//! Every shared golden file passes check-golden (forward) on CPU f64, CPU f32 and the GPU.

mod common;

use monomial_nfn::golden::{check_golden, Report};
use monomial_nfn::{Backend, Cpu};

fn check_all(backends: &[&dyn Backend]) {
    for path in common::golden_files() {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let report: Report = check_golden(&path, backends).expect("golden file loads");
        for row in report.rows.iter().filter(|r| !r.pass()) {
            eprintln!(
                "{stem}: {} {} err {:.3e} ratio {:.3}",
                row.backend, row.tensor, row.max_abs, row.ratio
            );
        }
        assert!(report.passed(), "{stem} failed");
        assert!(
            report
                .not_compared
                .iter()
                .all(|(n, _)| n.starts_with("grad.")),
            "{stem}: {:?}",
            report.not_compared
        );
    }
}

#[test]
fn every_golden_passes_on_cpu_f64_and_f32() {
    check_all(&[&Cpu::<f64>::new(), &Cpu::<f32>::new()]);
}

#[test]
fn every_golden_passes_on_gpu() {
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    check_all(&[&gpu]);
}
