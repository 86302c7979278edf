//! The command line: every command takes the same spellings of activations, models and
//! architectures in any case, clap names the accepted values when one is wrong, and errors
//! about zoos say in words what is wrong and how to fix it.

mod common;

/// Runs `mnfn args`; returns (exit code, stderr and stdout).
fn mnfn(args: &[&str]) -> (i32, String) {
    let (code, text) = common::mnfn(args, &[]);
    (code.unwrap_or(-1), text)
}

/// Clap rejects a value with exit code 2 and the list of accepted ones.
fn rejected(args: &[&str], possible: &str) {
    let (code, text) = mnfn(args);
    assert_eq!(code, 2, "mnfn {args:?}: {text}");
    assert!(text.contains("invalid value"), "mnfn {args:?}: {text}");
    assert!(
        text.contains(&format!("[possible values: {possible}]")),
        "mnfn {args:?}: {text}"
    );
}

#[test]
fn wrong_values_are_refused_with_the_accepted_ones() {
    rejected(
        &["predict-gen", "--models", "mlp"],
        "monomial, hnp, np, stat",
    );
    rejected(
        &["classify-inr", "--models", "stat"],
        "monomial, hnp, np, mlp",
    );
    rejected(&["edit-inr", "--models", "mlp"], "monomial, np, hnp");
    rejected(&["bench", "--model", "mlp"], "monomial, hnp, np, stat");
    for cmd in [
        &["predict-gen"][..],
        &["bench"],
        &["zoo", "generate", "--out", "unused"],
    ] {
        rejected(&[cmd, &["--activation", "sin"]].concat(), "relu, tanh");
    }
    rejected(
        &["symmetry", "unused", "--activation", "gelu"],
        "relu, tanh, sin",
    );
    let (code, text) = mnfn(&["zoo", "generate", "--arch", "resnet", "--out", "unused"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("unknown architecture 'resnet': use cnn-zoo or mlp:"),
        "{text}"
    );
}

#[test]
fn help_lists_the_accepted_values() {
    let (code, text) = mnfn(&["predict-gen", "--help"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("[possible values: relu, tanh]"), "{text}");
    for model in ["monomial", "hnp", "np", "stat"] {
        assert!(text.contains(&format!("- {model}:")), "{text}");
    }
}

/// Values in any case get past parsing: the run then fails on its settings (exit code 1), not
/// in clap (exit code 2).
#[test]
fn spellings_are_case_insensitive_in_every_command() {
    let (code, text) = mnfn(&[
        "zoo",
        "generate",
        "--arch",
        "MLP:4",
        "--activation",
        "TANH",
        "--n",
        "0",
        "--out",
        "unused",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("networks to generate (n) = 0 is out of range: expected at least 1"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-zoo");
    let missing = missing.to_str().unwrap();
    for args in [
        &["predict-gen", "--zoo", missing, "--activation", "Tanh"][..],
        &["predict-gen", "--zoo", missing, "--models", "HNP,Stat"],
        &["symmetry", missing, "--activation", "SIN"],
    ] {
        let (code, text) = mnfn(args);
        assert_eq!(code, 1, "mnfn {args:?}: {text}");
        assert!(text.contains("no-such-zoo"), "mnfn {args:?}: {text}");
    }
}

/// A zoo of two relu networks: asking for tanh names the activation it holds; asking for relu
/// says how many networks are needed.
#[test]
fn zoo_errors_say_what_is_wrong_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let zoo = dir.path().join("zoo");
    let zoo = zoo.to_str().unwrap();
    let (code, text) = mnfn(&[
        "zoo", "generate", "--arch", "mlp:4", "--n", "2", "--out", zoo,
    ]);
    assert_eq!(code, 0, "{text}");
    let out = dir.path().join("out");
    let run = |activation: &str| {
        let (code, text) = mnfn(&[
            "predict-gen",
            "--zoo",
            zoo,
            "--activation",
            activation,
            "--backend",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "{text}");
        assert!(!text.contains("Some(") && !text.contains(" { "), "{text}");
        text
    };
    let text = run("tanh");
    assert!(
        text.contains(
            "no tanh networks at the final step among its 2; it holds relu networks at the final \
             step: pass --activation relu"
        ),
        "{text}"
    );
    let text = run("relu");
    assert!(
        text.contains("holds 2 relu networks at the final step; at least 10 are needed"),
        "{text}"
    );
}

/// `mnfn bench --profile` on the GPU: after the timings, one table per pass (forward, training
/// step) with one row per kernel family the pass runs, each with its dispatches, a positive time,
/// its share and a rate (GFLOP/s for GEMMs, GB/s for the rest); the shares add up to 100%.
#[test]
fn bench_profile_prints_a_table_per_pass_and_kernel_family() {
    if common::gpu_or_skip().is_none() {
        return;
    }
    let (code, text) = mnfn(&[
        "bench",
        "--backend",
        "gpu",
        "--profile",
        "--batches",
        "1",
        "--seconds",
        "0.01",
    ]);
    assert_eq!(code, 0, "{text}");
    // The timings table compares each pass with a plain GEMM of the model's hot shape.
    let gemm = text
        .lines()
        .find(|l| l.contains(" gemm ") && l.contains("x144x144"))
        .unwrap_or_else(|| panic!("no GEMM yardstick row: {text}"));
    assert!(gemm.trim_end().ends_with("1.00"), "{gemm}");
    for pass in ["forward", "train"] {
        let row = text
            .lines()
            .find(|l| l.contains(&format!(" {pass} ")) && !l.starts_with("profile"))
            .unwrap_or_else(|| panic!("no {pass} row: {text}"));
        let fraction: f64 = row.split_whitespace().last().unwrap().parse().unwrap();
        assert!(fraction.is_finite() && fraction > 0.0, "{row}");
    }
    // This model's activations all run in their GEMM's epilogue (src/backend/gpu/epilogue.rs),
    // and its activation gradients in their GEMM's or pool gradient's, but the loss's.
    let expected: [(&str, &[&str]); 2] = [
        ("forward", &["gemm", "pool"]),
        (
            "train",
            &[
                "gemm",
                "gemm_at",
                "gemm_bt",
                "pool",
                "loss",
                "activation_grad",
                "pool_grad",
                "reduce",
                "adam",
            ],
        ),
    ];
    for (pass, families) in expected {
        let head = format!("profile: {pass}, batch 1, gpu-f32");
        let at = text.find(&head).unwrap_or_else(|| panic!("{head}: {text}"));
        let lines: Vec<&str> = text[at..].lines().skip(1).collect();
        assert!(
            lines[0].starts_with("kernel") && lines[0].ends_with("rate"),
            "{text}"
        );
        let end = lines.iter().position(|l| l.starts_with("total ")).unwrap();
        let mut shares = 0.0;
        let mut seen = Vec::new();
        for row in &lines[1..end] {
            let cells: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(cells.len(), 6, "{row}");
            let dispatches: usize = cells[1].parse().unwrap();
            let ms: f64 = cells[2].parse().unwrap();
            let rate: f64 = cells[4].parse().unwrap();
            assert!(dispatches > 0 && ms > 0.0 && rate.is_finite(), "{row}");
            shares += cells[3].trim_end_matches('%').parse::<f64>().unwrap();
            let unit = if cells[0].starts_with("gemm") {
                "GFLOP/s"
            } else {
                "GB/s"
            };
            assert_eq!(cells[5], unit, "{row}");
            seen.push(cells[0]);
        }
        assert!(
            (shares - 100.0).abs() < 0.5,
            "{pass}: shares {shares}: {text}"
        );
        for f in families {
            assert!(seen.contains(f), "{pass}: {f} missing from {seen:?}");
        }
        assert!(lines[end].contains(" ms ("), "{}", lines[end]);
    }
}

/// `mnfn info` names the L2 size the CPU blocks are sized from; `MNFN_L2_BYTES` overrides it,
/// and a value that is not a size is ignored with a warning.
#[test]
fn info_reports_the_l2_size_and_its_override() {
    let info =
        |value: &str| common::mnfn(&["info"], &[("MNFN_L2_BYTES", value), ("MNFN_NO_GPU", "1")]);
    let (code, text) = info("512K");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("L2 512 KiB per core"), "{text}");
    let (code, text) = info("lots");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("MNFN_L2_BYTES=\"lots\" is not a size"),
        "{text}"
    );
    assert!(!text.contains("L2 0 KiB"), "{text}");
}
