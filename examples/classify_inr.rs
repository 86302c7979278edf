//! Classify SIRENs from their weights through the library API (SPEC §6.2): generate (or reuse)
//! a set of SIRENs fitted to 10-class glyph images, train the hybrid Monomial-NFN and an MLP on
//! the flattened weights, and compare test accuracy, plain and with every test SIREN's hidden
//! neurons permuted and sign-flipped (which leaves its function unchanged).
//!
//! Run with `cargo run --release --example classify_inr [inrs] [steps]`.

use monomial_nfn::classify::{classify_inr, ClassifyConfig, InrModelKind, InrSource};
use monomial_nfn::train::StepSchedule;
use monomial_nfn::Cpu;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let inrs = args.next().transpose()?.unwrap_or(2000);
    let steps = args.next().transpose()?.unwrap_or(2000);

    let config = ClassifyConfig {
        inrs: InrSource::Generate { n: inrs, seed: 0 },
        models: vec![InrModelKind::Monomial, InrModelKind::Mlp],
        schedule: StepSchedule {
            steps,
            eval_every: (steps / 10).max(1),
            ..ClassifyConfig::default().schedule // Adam 1e-3 with warm-up, batch 32
        },
        progress: true,
        ..ClassifyConfig::default() // softmax CE
    };
    let report = classify_inr(&config, &Cpu::<f32>::new())?;

    let (train, val, test) = report.sizes;
    println!("{train} train, {val} validation, {test} test SIRENs");
    print!("{}", report.table());
    for m in &report.models {
        println!(
            "{}: accuracy {:.3} plain, {:.3} permuted and sign-flipped (logits moved {:.1e})",
            m.model, m.accuracy, m.accuracy_transformed, m.logit_change
        );
    }
    Ok(())
}
