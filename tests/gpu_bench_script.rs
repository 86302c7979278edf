//! `scripts/gpu-bench.sh`: it parses, and with a stand-in `mnfn` (`MNFN_BIN`) it runs every step
//! with the settings it documents and writes a report that records each step's output and
//! pass/fail, exiting 1 when a step fails. (A real run: see BENCHMARKS.md.)

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gpu-bench.sh")
}

#[test]
fn the_script_parses() {
    let out = Command::new("bash")
        .arg("-n")
        .arg(script())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The stand-in prints its arguments, names an adapter in `info` and fails `predict-gen`.
#[test]
fn the_report_records_every_step_and_the_failing_one() {
    let dir = tempfile::tempdir().unwrap();
    let stub = dir.path().join("mnfn");
    std::fs::write(
        &stub,
        "#!/bin/sh\necho \"args: $*\"\ncase $1 in\n  info) echo 'chosen: Stand-in GPU (Vulkan, DiscreteGpu)' ;;\n  predict-gen) echo 'no zoo' >&2; exit 3 ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let report = dir.path().join("report.md");
    let out = Command::new("bash")
        .arg(script())
        .arg(&report)
        .env("MNFN_BIN", &stub)
        .env("MNFN_GPU_BENCH_QUICK", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let text = std::fs::read_to_string(&report).unwrap();
    for line in [
        "- adapter: Stand-in GPU (Vulkan, DiscreteGpu)",
        "- settings: quick (MNFN_GPU_BENCH_QUICK=1)",
        "| build | pass |",
        "| mnfn info | pass |",
        "| mnfn bench | pass |",
        "| mnfn check-golden | pass |",
        "| mnfn predict-gen | FAIL (exit 3) |",
        "## mnfn predict-gen",
        "no zoo",
        "args: bench --backend both --profile --batches 2 --seconds 0.2",
        "args: predict-gen --backend gpu --generate 20 --epochs 1 --models monomial",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert!(text.contains("- date: ") && text.contains("- CPU: ") && text.contains("- ISA: "));
    // check-golden gets every golden file.
    let golden = text
        .lines()
        .find(|l| l.starts_with("args: check-golden --backend gpu"))
        .unwrap();
    assert_eq!(golden.matches(".safetensors").count(), 24, "{golden}");
}
