//! Every `SPEC §…` and `DESIGN §…` citation in the repository resolves to a section of
//! docs/SPEC.md or docs/DESIGN.md, so a clone of the repository alone can follow them.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p
            .extension()
            .is_some_and(|e| e == "rs" || e == "wgsl" || e == "md")
        {
            out.push(p);
        }
    }
}

/// (document, section) for every citation like `SPEC §6.2`, `SPEC.md §9.7` or `DESIGN §4b`.
fn citations(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for doc in ["SPEC", "DESIGN"] {
        let mut rest = text;
        while let Some(i) = rest.find(doc) {
            rest = &rest[i + doc.len()..];
            let after = rest.strip_prefix(".md").unwrap_or(rest);
            let Some(after) = after.strip_prefix(" §").or_else(|| after.strip_prefix('§')) else {
                continue;
            };
            let sec: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect();
            let sec = sec.trim_end_matches('.').to_string();
            if !sec.is_empty() {
                out.push((doc.to_string(), sec));
            }
        }
    }
    out
}

/// Whether `doc` has section `sec`: a heading "N." / "N.M" / "4b.", or item M of section N.
fn resolves(doc: &str, sec: &str) -> bool {
    let headings: Vec<&str> = doc.lines().filter(|l| l.starts_with('#')).collect();
    let heading = |s: &str| {
        headings.iter().any(|h| {
            let t = h.trim_start_matches('#').trim_start();
            t.starts_with(&format!("{s}. ")) || t.starts_with(&format!("{s} "))
        })
    };
    if heading(sec) {
        return true;
    }
    // Item M of section N: a numbered list line "M. " inside section N.
    let Some((n, m)) = sec.split_once('.') else {
        return false;
    };
    let start = doc.find(&format!("\n## {n}. "));
    start.is_some_and(|s| {
        let body = &doc[s + 1..];
        let end = body[1..].find("\n## ").map_or(body.len(), |e| e + 1);
        body[..end]
            .lines()
            .any(|l| l.starts_with(&format!("{m}. ")))
    })
}

#[test]
fn every_spec_and_design_citation_resolves_inside_the_repository() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let spec = std::fs::read_to_string(root.join("docs/SPEC.md")).unwrap();
    let design = std::fs::read_to_string(root.join("docs/DESIGN.md")).unwrap();
    let mut paths = vec![root.join("README.md"), root.join("BENCHMARKS.md")];
    for dir in ["src", "shaders", "tests", "examples", "benches", "docs"] {
        files(&root.join(dir), &mut paths);
    }
    let mut checked = 0;
    let mut missing = Vec::new();
    for p in &paths {
        let text = std::fs::read_to_string(p).unwrap();
        for (doc, sec) in citations(&text) {
            let target = if doc == "SPEC" { &spec } else { &design };
            checked += 1;
            if !resolves(target, &sec) {
                missing.push(format!("{}: {doc} §{sec}", p.display()));
            }
        }
    }
    assert!(checked > 100, "only {checked} citations found");
    assert!(
        missing.is_empty(),
        "unresolved citations:\n{}",
        missing.join("\n")
    );
}
