//! Edit SIRENs in weight space through the library API (SPEC §6.3): generate (or reuse) a set of
//! SIRENs fitted to glyph images, train the Monomial-NFN editor to write a weight change whose
//! render is the 3×3 dilation of each SIREN's image, and compare its test error with the
//! unedited SIRENs'. The PNG grid shows render, target and edit side by side.
//!
//! Run with `cargo run --release --example edit_inr [inrs] [steps]`.

use monomial_nfn::classify::InrSource;
use monomial_nfn::editing::{edit_inr, EditConfig, EditModelKind};
use monomial_nfn::train::StepSchedule;
use monomial_nfn::Cpu;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let inrs = args.next().transpose()?.unwrap_or(2000);
    let steps = args.next().transpose()?.unwrap_or(2000);

    let config = EditConfig {
        inrs: InrSource::Generate { n: inrs, seed: 0 },
        models: vec![EditModelKind::Monomial],
        schedule: StepSchedule {
            steps,
            eval_every: (steps / 10).max(1),
            ..EditConfig::default().schedule // Adam 1e-3 with warm-up, batch 32
        },
        progress: true,
        ..EditConfig::default() // dilate, 16×16 grid
    };
    let report = edit_inr(&config, &Cpu::<f32>::new())?;

    print!("{}", report.table());
    let m = &report.models[0];
    println!(
        "{}: test MSE {:.4}, {:.2}x the unedited SIRENs' {:.4}; edits in {}",
        m.model,
        m.mse,
        m.mse / report.unedited_mse,
        report.unedited_mse,
        report.grid.display()
    );
    Ok(())
}
