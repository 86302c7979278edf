//! Every shared golden file passes check-golden (outputs, witnesses, loss and gradients) on CPU
//! f64, CPU f32 and the GPU.

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
        // Every stored tensor is compared, gradients included, except parameters the
        // rebuilt module does not use (whose gradients the file stores as zeros).
        let unused: Vec<_> = report
            .not_compared
            .iter()
            .filter(|(n, _)| !(n.starts_with("param.") || n.starts_with("grad.param.")))
            .collect();
        assert!(unused.is_empty(), "{stem}: not compared {unused:?}");
        assert!(
            report
                .rows
                .iter()
                .any(|r| r.tensor.starts_with("grad.input.")),
            "{stem}: no input gradient compared"
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
