//! The command line: every command takes the same spellings of activations, models and
//! architectures in any case, clap names the accepted values when one is wrong, and errors
//! about zoos say in words what is wrong and how to fix it.

use std::process::Command;

/// Runs `mnfn args`; returns (exit code, stderr and stdout).
fn mnfn(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mnfn"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("panicked"), "mnfn {args:?}: {text}");
    (out.status.code().unwrap_or(-1), text)
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
