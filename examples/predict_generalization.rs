//! Predict CNN generalisation through the library API (the README's main job): generate (or
//! reuse) a zoo of ~1,000 ReLU CNNs, train Monomial-NFN and HNP to predict each CNN's test
//! accuracy from its weights, and compare Kendall's tau on held-out networks, plain and with
//! hidden neurons rescaled by factors up to 1e4.
//!
//! Run with `cargo run --release --example predict_generalization [networks] [epochs]`.

use monomial_nfn::backend::gpu::{AdapterChoice, Gpu};
use monomial_nfn::experiment::{predict_gen, ModelKind, PredictGenConfig, ZooSource};
use monomial_nfn::{Backend, Cpu};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let networks = args.next().transpose()?.unwrap_or(1000);
    let epochs = args.next().transpose()?.unwrap_or(50);

    // A hardware GPU when there is one, else the CPU (f32).
    let backend: Box<dyn Backend> = match Gpu::new(&AdapterChoice::default()) {
        Ok(gpu) if gpu.context().info.device_type != wgpu::DeviceType::Cpu => Box::new(gpu),
        _ => Box::new(Cpu::<f32>::new()),
    };

    let config = PredictGenConfig {
        zoo: ZooSource::Generate {
            n: networks,
            seed: 0,
        },
        models: vec![ModelKind::Monomial, ModelKind::Hnp],
        epochs,
        progress: true,
        ..PredictGenConfig::default() // BCE, Adam 1e-3, batch 8, test rescaled by U[1, 1e4]
    };
    let report = predict_gen(&config, backend.as_ref())?;

    let (train, val, test) = report.sizes;
    println!("{train} train, {val} validation, {test} test networks");
    print!("{}", report.table());
    for m in &report.models {
        println!(
            "{}: tau {:.4} plain, {:.4} rescaled (change {:+.4})",
            m.model,
            m.tau,
            m.tau_transformed,
            m.tau_transformed - m.tau
        );
    }
    Ok(())
}
