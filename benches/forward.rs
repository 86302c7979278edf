//! Criterion bench of the forward pass and the training step (forward, BCE, backward, Adam in one
//! submission) of the paper's CNN-Zoo Monomial-NFN (254,619 parameters) at batch 8, 64 and 256
//! on CPU f32 and, when a hardware adapter exists, the GPU. Throughput is reported in samples
//! (networks) per second. Software adapters (lavapipe) are skipped unless `MNFN_BENCH_GPU=1`,
//! since they take minutes per sample. `mnfn bench` prints GFLOP/s too.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use monomial_nfn::backend::gpu::{AdapterChoice, Gpu};
use monomial_nfn::plan::LossKind;
use monomial_nfn::train::{AdamConfig, Dataset, Trainer};
use monomial_nfn::{Backend, Cpu, Model, NetActivation, Tensor, WeightSpace};
use rand::SeedableRng;

fn backends() -> Vec<Box<dyn Backend>> {
    let mut out: Vec<Box<dyn Backend>> = vec![Box::new(Cpu::<f32>::new())];
    match Gpu::new(&AdapterChoice::default()) {
        Ok(gpu) => {
            let software = gpu.context().info.device_type == wgpu::DeviceType::Cpu;
            if !software || std::env::var("MNFN_BENCH_GPU").is_ok_and(|v| v == "1") {
                out.push(Box::new(gpu));
            } else {
                eprintln!(
                    "skipping software adapter {} (set MNFN_BENCH_GPU=1)",
                    gpu.describe()
                );
            }
        }
        Err(e) => eprintln!("GPU backend unavailable, CPU only: {e}"),
    }
    out
}

fn forward(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let model = Model::monomial_cnn_zoo(NetActivation::Relu, &mut rng).expect("paper model");
    let mut group = c.benchmark_group("forward_monomial_cnn_zoo");
    group.sample_size(20);
    for backend in backends() {
        for batch in [8, 64, 256] {
            let input = WeightSpace::random(model.spec(), batch, 1, &mut rng);
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(
                BenchmarkId::new(backend.describe(), batch),
                &input,
                |b, input| b.iter(|| model.forward(backend.as_ref(), input).expect("forward")),
            );
        }
    }
    group.finish();
}

fn train_step(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let model = Model::monomial_cnn_zoo(NetActivation::Relu, &mut rng).expect("paper model");
    let mut group = c.benchmark_group("train_step_monomial_cnn_zoo");
    group.sample_size(10);
    for backend in backends() {
        for batch in [8, 64, 256] {
            let inputs = WeightSpace::random(model.spec(), batch, 1, &mut rng);
            let targets = Tensor::new(vec![batch, 1], vec![0.5; batch]).expect("targets");
            let data = Dataset::new(inputs, targets).expect("dataset");
            let mut t = Trainer::new(
                &model,
                backend.as_ref(),
                batch,
                LossKind::Bce,
                AdamConfig::default(),
            )
            .expect("trainer");
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(BenchmarkId::new(backend.describe(), batch), |b| {
                // Reading the loss back waits for queued GPU work.
                b.iter(|| {
                    t.step(&data).expect("step");
                    t.take_loss_sum().expect("loss")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, forward, train_step);
criterion_main!(benches);
