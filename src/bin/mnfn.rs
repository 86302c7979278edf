//! `mnfn`: command-line front end of the monomial-nfn engine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand, ValueEnum};
use rand::SeedableRng;

use monomial_nfn::backend::gpu::{list_adapters, AdapterChoice, Gpu};
use monomial_nfn::classify::InrModelKind;
use monomial_nfn::editing::{Edit, EditModelKind};
use monomial_nfn::experiment::ModelKind;
use monomial_nfn::golden::check_golden;
use monomial_nfn::plan::LossKind;
use monomial_nfn::profiling::{hot_gemm, profile_passes, GemmYardstick, Spread};
use monomial_nfn::train::{AdamConfig, Dataset, Trainer};
use monomial_nfn::zoo::dataset::{activation_name, parse_activation};
use monomial_nfn::zoo::Arch;
use monomial_nfn::{
    Backend, Cpu, GroupElement, Model, NetActivation, ScaleRange, Symmetry, WeightSpace,
};

#[derive(Parser)]
#[command(
    name = "mnfn",
    version,
    about = "Monomial-NFN engine: equivariant networks over network weights, on GPU (wgpu) and CPU"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    /// CPU, f64 (the reference) for check-golden, f32 for bench.
    Cpu,
    /// GPU (wgpu, f32).
    Gpu,
    /// Both.
    Both,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BenchWhat {
    /// Forward passes.
    Forward,
    /// Training steps (forward, BCE, backward, Adam in one submission).
    Train,
    /// Both.
    Both,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Device {
    /// A hardware GPU when one exists (software rasterisers such as lavapipe do not count), else
    /// the CPU.
    Auto,
    /// CPU, f32.
    Cpu,
    /// The GPU (any adapter, software ones included).
    Gpu,
}

#[derive(clap::Args, Clone)]
struct PredictGenArgs {
    /// A zoo directory in the Small CNN Zoo format, or PyTorch state dicts with a
    /// `file,accuracy` CSV (a folder holding one `*.csv`, or the CSV); without it a zoo is
    /// generated and cached.
    #[arg(long)]
    zoo: Option<PathBuf>,
    /// Networks of the generated zoo (when no --zoo is given).
    #[arg(long, default_value_t = 1000)]
    generate: usize,
    /// Activation subset of the zoo; picks the Monomial-NFN variant.
    #[arg(long, value_parser = zoo_activation(), default_value = "relu", ignore_case = true)]
    activation: NetActivation,
    /// Models to compare, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', ignore_case = true,
          default_values_t = [ModelKind::Monomial, ModelKind::Hnp])]
    models: Vec<ModelKind>,
    /// Training epochs.
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed of the models, the split and the group elements.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = Device::Auto, ignore_case = true)]
    backend: Device,
    /// Add a copy of each training network transformed by a group element with scales from
    /// U[1, 10^K] (signs for tanh zoos).
    #[arg(long, value_name = "K")]
    augment_train: Option<u32>,
    /// Largest factor of the rescaled test set (tanh zoos get sign flips instead).
    #[arg(long, default_value_t = 1e4)]
    augment_scale: f64,
    /// Cache directory for generated zoos and one-file copies of state-dict zoos.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Output directory for learning curves and test predictions.
    #[arg(long, default_value = "predict-gen-out")]
    out: PathBuf,
    /// Save the first of --models, trained, as a checkpoint (`mnfn predict --model FILE`).
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
}

/// `mnfn predict`: a saved model applied to new networks.
#[derive(clap::Args, Clone)]
struct PredictArgs {
    /// A checkpoint written by `--save` (predict-gen, classify-inr, edit-inr).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// A zoo directory in the Small CNN Zoo format (its final-step networks).
    #[arg(
        long,
        conflicts_with = "networks",
        required_unless_present = "networks"
    )]
    zoo: Option<PathBuf>,
    /// A network file (`mnfn zoo export`, `mnfn inr generate`), or PyTorch state dicts: a
    /// `.pth`/`.pt` file, a folder of them, or a `file,label` / `file,accuracy` CSV listing them
    /// (a folder's one `*.csv` is used as its list).
    #[arg(long, value_name = "FILE")]
    networks: Option<PathBuf>,
    /// Module names of the state dicts in forward order (`fc1,fc2,out`), when their names
    /// and file order do not say it.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "NAMES",
        requires = "networks"
    )]
    layers: Option<Vec<String>>,
    /// Cache directory for the one-file copy of a state-dict folder or list (default
    /// ~/.cache/monomial-nfn).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Where to write one CSV row per network.
    #[arg(long, default_value = "predictions.csv")]
    out: PathBuf,
    /// Networks per batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = Device::Auto, ignore_case = true)]
    backend: Device,
}

/// Options shared by the INR experiments: the set, the step schedule, the backend.
#[derive(clap::Args, Clone)]
struct InrRunArgs {
    /// An INR set file (`mnfn inr generate`), or SIRENs saved by PyTorch: a `.pth` file, a
    /// folder of them (`{prefix}_{label}s/net{idx}.pth`, or any layout with one `file,label`
    /// CSV in the folder), or such a CSV itself; without it a set is generated and cached.
    #[arg(long)]
    inrs: Option<PathBuf>,
    /// SIRENs of the generated set (when no --inrs is given).
    #[arg(long, default_value_t = 2000)]
    generate: usize,
    /// Optimizer steps.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Validate every this many steps.
    #[arg(long, default_value_t = 200)]
    eval_every: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = 100)]
    warmup: u64,
    /// Seed of the set, the models, dropout and group elements.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = Device::Auto, ignore_case = true)]
    backend: Device,
    /// Cache directory for generated INR sets and one-file copies of state-dict folders.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Save the first of --models, trained, as a checkpoint (`mnfn predict --model FILE`).
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
}

impl InrRunArgs {
    /// The INR set these options name.
    fn source(&self) -> monomial_nfn::classify::InrSource {
        use monomial_nfn::classify::InrSource;
        match &self.inrs {
            Some(p) => InrSource::File(p.clone()),
            None => InrSource::Generate {
                n: self.generate,
                seed: self.seed,
            },
        }
    }

    /// The training schedule these options name.
    fn schedule(&self) -> monomial_nfn::train::StepSchedule {
        monomial_nfn::train::StepSchedule {
            steps: self.steps,
            eval_every: self.eval_every,
            batch: self.batch,
            lr: self.lr,
            warmup: self.warmup,
            seed: self.seed,
        }
    }
}

#[derive(clap::Args, Clone)]
struct ClassifyArgs {
    #[command(flatten)]
    run: InrRunArgs,
    /// Models to compare, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', ignore_case = true,
          default_values_t = [InrModelKind::Monomial, InrModelKind::Hnp, InrModelKind::Np, InrModelKind::Mlp])]
    models: Vec<InrModelKind>,
    /// Width of the three NP/HNP layers.
    #[arg(long, default_value_t = 32)]
    width: usize,
    /// Width h of the Monomial-NFN's sign-equivariant front end.
    #[arg(long, default_value_t = 16)]
    front_width: usize,
    /// Fourier frequencies (twice as many channels).
    #[arg(long, default_value_t = 32)]
    fourier: usize,
    /// σ of the Fourier projection.
    #[arg(long, default_value_t = 3.0)]
    sigma: f64,
    /// Head hidden width.
    #[arg(long, default_value_t = 128)]
    head_width: usize,
    /// Channel dropout after each NP/HNP layer (the paper's MNIST setting: 0.1).
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    /// Dropout after each head layer (the paper's MNIST setting: 0.1).
    #[arg(long, default_value_t = 0.0)]
    head_dropout: f64,
    /// The paper's MNIST configuration (22,146,603 parameters, 200,000 steps); other size
    /// options are ignored.
    #[arg(long)]
    paper: bool,
    /// Output directory for learning curves.
    #[arg(long, default_value = "classify-inr-out")]
    out: PathBuf,
}

#[derive(clap::Args, Clone)]
struct EditArgs {
    #[command(flatten)]
    run: InrRunArgs,
    /// Editors to compare, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', ignore_case = true,
          default_values_t = [EditModelKind::Monomial, EditModelKind::Np, EditModelKind::Hnp])]
    models: Vec<EditModelKind>,
    /// The edit (the paper's MNIST edit is the dilation).
    #[arg(long, value_enum, default_value_t = Edit::Dilate, ignore_case = true)]
    edit: Edit,
    /// Width of the NP/HNP layers.
    #[arg(long, default_value_t = 32)]
    width: usize,
    /// Fourier frequencies (twice as many channels).
    #[arg(long, default_value_t = 32)]
    fourier: usize,
    /// Render grid side.
    #[arg(long, default_value_t = 16)]
    grid: usize,
    /// The paper's MNIST editor (width 128, 128 frequencies, 50,000 steps).
    #[arg(long)]
    paper: bool,
    /// Test SIRENs shown in edits.png.
    #[arg(long, default_value_t = 6)]
    examples: usize,
    /// Write the first model's edited test SIRENs to this network file.
    #[arg(long)]
    save_edited: Option<PathBuf>,
    /// Write the first model's edited test SIRENs under this folder as PyTorch-loadable
    /// safetensors state dicts with the original tensor names, one per source file at its
    /// relative path (`--inrs` must be PyTorch state dicts).
    #[arg(long, value_name = "DIR")]
    save_edited_state_dicts: Option<PathBuf>,
    /// Output directory for curves and edits.png.
    #[arg(long, default_value = "edit-inr-out")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Default job: predict CNN generalisation (SPEC §6.1). Generates (or reuses) a zoo of
    /// trained CNNs, trains NFNs to predict each CNN's test accuracy from its weights, and
    /// reports Kendall's tau on held-out networks, plain and with hidden neurons rescaled.
    PredictGen(PredictGenArgs),
    /// Classify SIRENs from their weights (SPEC §6.2): generates (or reuses) an INR set of
    /// glyph images, trains Monomial-NFN, HNP, NP and an MLP, and reports test accuracy, plain
    /// and with hidden neurons permuted and sign-flipped.
    ClassifyInr(ClassifyArgs),
    /// Score new networks with a model saved by `--save`: predicted accuracies (predict-gen) or
    /// classes (classify-inr), one CSV row per network, and the score where targets are known.
    Predict(PredictArgs),
    /// Edit SIRENs in weight space (SPEC §6.3): trains Monomial-NFN, NP and HNP editors whose
    /// edited SIRENs render the dilated image, and reports the test MSE against the unedited
    /// SIRENs', plain and with hidden neurons permuted and sign-flipped; writes a PNG grid.
    EditInr(EditArgs),
    /// Build the paper's CNN-Zoo Monomial-NFN, run it on random networks and on copies rescaled
    /// by up to 1e4 on every available backend, and report invariance and speed.
    Demo {
        /// Networks in the batch.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Seed for the model and the networks.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// The CPU (model, SIMD extensions, L2 per core, threads), then the GPU adapters, the chosen
    /// one, its key limits and features.
    Info,
    /// Rebuild the module each golden file describes, run it, and compare with the reference.
    CheckGolden {
        /// Golden safetensors files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Backends to check.
        #[arg(long, value_enum, default_value_t = BackendArg::Both, ignore_case = true)]
        backend: BackendArg,
        /// Print every compared tensor, not only failures and a summary.
        #[arg(long)]
        verbose: bool,
    },
    /// Forward and training-step throughput of a paper CNN-Zoo model (samples/s, GFLOP/s).
    Bench {
        /// What to measure.
        #[arg(long, value_enum, default_value_t = BenchWhat::Both, ignore_case = true)]
        what: BenchWhat,
        /// Model to measure.
        #[arg(long, value_enum, default_value_t = ModelKind::Monomial, ignore_case = true)]
        model: ModelKind,
        /// Batch sizes.
        #[arg(long, value_delimiter = ',', default_values_t = [8usize, 64, 256])]
        batches: Vec<usize>,
        /// Backends to measure.
        #[arg(long, value_enum, default_value_t = BackendArg::Both, ignore_case = true)]
        backend: BackendArg,
        /// Measuring time per pass and configuration, in seconds, split over the rounds.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Rounds: each times every pass and the GEMM yardstick in turn, so that a burst of load
        /// from elsewhere falls on all of them; medians are printed, and the fraction's range.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        rounds: u32,
        /// Input networks' activation (picks the Monomial-NFN variant; the others ignore it).
        #[arg(long, value_parser = zoo_activation(), default_value = "relu", ignore_case = true)]
        activation: NetActivation,
        /// Also time every GPU kernel of the forward and training-step plans (timestamp queries
        /// where the adapter has them) and print time and GFLOP/s or GB/s per kernel family.
        #[arg(long)]
        profile: bool,
    },
    /// Which symmetries (permutation, positive scale, sign, general monomial) leave a network's
    /// function unchanged: random group elements of each kind, outputs compared on random inputs.
    Symmetry {
        /// A zoo directory (weights.npy, layout.csv, metrics.csv.gz) or a safetensors network file
        /// (`weights.{i}` (N, out, in[, kh, kw]), `biases.{i}` (N, out), metadata `activation`).
        path: PathBuf,
        /// Which network of the zoo or file.
        #[arg(long, default_value_t = 0)]
        index: usize,
        /// The network's activation, overriding the file's; for a zoo it also filters the
        /// networks `--index` counts.
        #[arg(long, value_parser = activation_parser(&["relu", "tanh", "sin"]), ignore_case = true)]
        activation: Option<NetActivation>,
        /// Group elements per kind.
        #[arg(long, default_value_t = 8)]
        elements: usize,
        /// Seed of the inputs and group elements.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// SIREN INR sets.
    Inr {
        #[command(subcommand)]
        command: InrCommand,
    },
    /// Weight-space datasets in the Small CNN Zoo format.
    Zoo {
        #[command(subcommand)]
        command: ZooCommand,
    },
}

#[derive(Subcommand)]
enum InrCommand {
    /// Fit N SIRENs (2 -> 32 -> 32 -> 1, hidden sin(30 z)) to procedural 16×16 glyph images of
    /// 10 classes, many at once as one batched computation, and store weights, labels and
    /// images as one safetensors file.
    Generate {
        /// Number of INRs.
        #[arg(long, default_value_t = 100)]
        n: usize,
        /// Seed of the images and of every fit.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Adam steps per fit.
        #[arg(long, default_value_t = 500)]
        steps: usize,
        /// Where to run.
        #[arg(long, value_enum, default_value_t = Device::Auto, ignore_case = true)]
        backend: Device,
        /// Output safetensors file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Render SIREN I of a network file to a PNG, beside the image it was fitted to when the
    /// file stores images.
    Render {
        /// Network file (e.g. from `mnfn inr generate`), or SIRENs saved by PyTorch: a `.pth`
        /// file or a folder of them (`{prefix}_{label}s/net{idx}.pth`, indexed in idx order).
        file: PathBuf,
        /// Which SIREN.
        #[arg(long, default_value_t = 0)]
        index: usize,
        /// Grid side (default: the stored images' side, else 16).
        #[arg(long)]
        size: Option<usize>,
        /// Enlargement of each pixel.
        #[arg(long, default_value_t = 8)]
        scale: usize,
        /// Where to run.
        #[arg(long, value_enum, default_value_t = Device::Auto, ignore_case = true)]
        backend: Device,
        /// Cache directory for the one-file copy of a state-dict folder (default
        /// ~/.cache/monomial-nfn).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum ZooCommand {
    /// Train N networks on a procedural 16×16 glyph task (CPU, all cores) and write a zoo
    /// (weights.npy, layout.csv, metrics.csv.gz).
    Generate {
        /// `cnn-zoo` (the Small CNN Zoo CNN, 4,970 parameters) or `mlp:W1,W2,...` (hidden widths).
        #[arg(long, value_parser = Arch::parse, default_value = "cnn-zoo")]
        arch: Arch,
        /// Hidden activation.
        #[arg(long, value_parser = zoo_activation(), default_value = "relu", ignore_case = true)]
        activation: NetActivation,
        /// Number of networks.
        #[arg(long, default_value_t = 200)]
        n: usize,
        /// Seed of the task and of every network.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or_else(|| {
        // No subcommand: the default job with its default settings.
        match Cli::parse_from(["mnfn", "predict-gen"]).command {
            Some(c) => c,
            None => unreachable!("predict-gen parses"),
        }
    });
    let result = match command {
        Command::PredictGen(args) => predict_gen(&args),
        Command::ClassifyInr(args) => classify_inr(&args),
        Command::Predict(args) => predict(&args),
        Command::EditInr(args) => edit_inr(&args),
        Command::Demo { batch, seed } => demo(batch, seed),
        Command::Info => info(),
        Command::CheckGolden {
            files,
            backend,
            verbose,
        } => golden(&files, backend, verbose),
        Command::Bench {
            what,
            model,
            batches,
            backend,
            seconds,
            rounds,
            activation,
            profile,
        } => bench(
            what,
            model,
            &batches,
            backend,
            (seconds, rounds),
            activation,
            profile,
        ),
        Command::Zoo {
            command:
                ZooCommand::Generate {
                    arch,
                    activation,
                    n,
                    seed,
                    out,
                },
        } => zoo_generate(arch, activation, n, seed, &out),
        Command::Inr {
            command:
                InrCommand::Generate {
                    n,
                    seed,
                    steps,
                    backend,
                    out,
                },
        } => inr_generate(n, seed, steps, backend, &out),
        Command::Inr {
            command:
                InrCommand::Render {
                    file,
                    index,
                    size,
                    scale,
                    backend,
                    cache,
                    out,
                },
        } => inr_render(&file, index, size, scale, backend, cache, &out),
        Command::Symmetry {
            path,
            index,
            activation,
            elements,
            seed,
        } => symmetry(&path, index, activation, elements, seed),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The requested backends; a missing GPU is an error only when the GPU alone was asked for.
fn backends(which: BackendArg, cpu_f64: bool) -> Res<Vec<Box<dyn Backend>>> {
    let mut out: Vec<Box<dyn Backend>> = Vec::new();
    if which != BackendArg::Gpu {
        if cpu_f64 {
            out.push(Box::new(Cpu::<f64>::new()));
        } else {
            out.push(Box::new(Cpu::<f32>::new()));
        }
    }
    if let Some(g) = gpu_backend(which)? {
        out.push(Box::new(g));
    }
    Ok(out)
}

/// The GPU when `which` names it; with `both`, a missing GPU is a note, not an error.
fn gpu_backend(which: BackendArg) -> Res<Option<Gpu>> {
    if which == BackendArg::Cpu {
        return Ok(None);
    }
    match Gpu::new(&AdapterChoice::default()) {
        Ok(g) => Ok(Some(g)),
        Err(e) if which == BackendArg::Both => {
            eprintln!("note: GPU backend unavailable, CPU only: {e}");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn demo(batch: usize, seed: u64) -> Res<ExitCode> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let model = Model::monomial_cnn_zoo(NetActivation::Relu, &mut rng)?;
    let spec = model.spec().clone();
    println!(
        "Monomial-NFN (CNN Zoo, ReLU): {} parameters",
        model.num_params()
    );
    let zoo = WeightSpace::random(&spec, batch, 1, &mut rng);
    let g = GroupElement::sample(
        &spec,
        Symmetry::PositiveScale,
        ScaleRange::Uniform { lo: 1.0, hi: 1e4 },
        &mut rng,
    );
    let rescaled = g.act(&spec, &zoo)?;
    let mut all = backends(BackendArg::Both, false)?;
    all.insert(0, Box::new(Cpu::<f64>::new()));
    println!(
        "{:<52} {:>10} {:>14} {:>12}",
        "backend", "pred[0]", "max|Δ| (g·x)", "samples/s"
    );
    for b in &all {
        // The first call builds and caches the plan; the second is timed.
        let yg = model.forward(b.as_ref(), &rescaled)?.features()?;
        let t0 = Instant::now();
        let y = model.forward(b.as_ref(), &zoo)?.features()?;
        let rate = batch as f64 / t0.elapsed().as_secs_f64();
        let diff = y
            .data
            .iter()
            .zip(&yg.data)
            .fold(0.0f64, |m, (a, c)| m.max((a - c).abs()));
        println!(
            "{:<52} {:>10.6} {:>14.2e} {:>12.0}",
            b.describe(),
            y.data[0],
            diff,
            rate
        );
    }
    println!("(hidden neurons permuted and rescaled by factors from U[1, 1e4]; the prediction is invariant)");
    Ok(ExitCode::SUCCESS)
}

fn info() -> Res<ExitCode> {
    println!(
        "CPU: {}; {} rayon threads (the L2 sizes the fused chains' blocks; {} overrides it)",
        monomial_nfn::backend::cpu::describe_machine(),
        rayon::current_num_threads(),
        monomial_nfn::backend::cpu::L2_ENV
    );
    let adapters = list_adapters();
    if adapters.is_empty() {
        println!("GPU adapters: none found");
    }
    for a in &adapters {
        println!(
            "adapter: {} ({:?}, {:?}, driver {} {})",
            a.name, a.backend, a.device_type, a.driver, a.driver_info
        );
    }
    match Gpu::new(&AdapterChoice::default()) {
        Ok(g) => {
            let ctx = g.context();
            let l = ctx.device.limits();
            println!("chosen: {}", ctx.describe());
            println!(
                "  max_storage_buffer_binding_size  {}",
                l.max_storage_buffer_binding_size
            );
            println!("  max_buffer_size                  {}", l.max_buffer_size);
            println!(
                "  max_compute_workgroup_storage    {}",
                l.max_compute_workgroup_storage_size
            );
            println!(
                "  max_compute_invocations_per_wg   {}",
                l.max_compute_invocations_per_workgroup
            );
            println!(
                "  max_compute_workgroups_per_dim   {}",
                l.max_compute_workgroups_per_dimension
            );
            println!(
                "  adapter features                 {:?}",
                ctx.adapter.features()
            );
            match g.compile_all() {
                Ok(n) => println!("  pipelines                        {n} compiled"),
                Err(e) => println!("  pipelines                        {e}"),
            }
        }
        Err(e) => println!("chosen: none ({e})"),
    }
    Ok(ExitCode::SUCCESS)
}

fn golden(files: &[PathBuf], which: BackendArg, verbose: bool) -> Res<ExitCode> {
    let owned = backends(which, true)?;
    let refs: Vec<&dyn Backend> = owned.iter().map(|b| b.as_ref()).collect();
    let mut failed = 0;
    for path in files {
        let report = match check_golden(path, &refs) {
            Ok(r) => r,
            Err(e) => {
                println!("FAIL {}: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        let status = if report.passed() { "PASS" } else { "FAIL" };
        println!("{status} {} ({})", path.display(), report.module_class);
        if let Some(why) = &report.unsupported {
            println!(
                "  unsupported: {why}; none of its {} tensors was compared",
                report.not_compared.len()
            );
        }
        for r in &report.rows {
            if verbose || !r.pass() {
                println!(
                    "  {:<4} {:<40} {:<52} max|err| {:.3e}  err/tol {:.3}",
                    if r.pass() { "ok" } else { "FAIL" },
                    r.backend,
                    r.tensor,
                    r.max_abs,
                    r.ratio
                );
            }
        }
        if !verbose && report.unsupported.is_none() {
            let worst = report.rows.iter().fold(0.0f64, |m, r| m.max(r.ratio));
            println!(
                "  {} tensors compared, worst err/tol {:.3}",
                report.rows.len(),
                worst
            );
        }
        let mut reasons: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (n, why) in report
            .not_compared
            .iter()
            .filter(|_| report.unsupported.is_none())
        {
            reasons.entry(why).or_default().push(n);
        }
        for (why, names) in reasons {
            println!("  not compared ({why}): {}", names.join(", "));
        }
        if !report.passed() {
            failed += 1;
        }
    }
    println!("{} of {} files passed", files.len() - failed, files.len());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs forward repeatedly for at least `seconds` (after a warm-up run of the caller's);
/// returns (samples/s, GFLOP/s).
fn throughput(
    model: &Model,
    backend: &dyn Backend,
    input: &WeightSpace,
    seconds: f64,
) -> Res<(f64, f64)> {
    let batch = input.batch();
    let flops = model.plan(batch)?.flops();
    let start = Instant::now();
    let mut iters = 0u32;
    while start.elapsed() < Duration::from_secs_f64(seconds) || iters < 3 {
        model.forward(backend, input)?;
        iters += 1;
    }
    let t = start.elapsed().as_secs_f64() / iters as f64;
    Ok((batch as f64 / t, flops / t / 1e9))
}

/// The backend a `--backend` choice names: `auto` takes a hardware GPU and otherwise the CPU.
fn make_backend(device: Device) -> Res<Box<dyn Backend>> {
    Ok(match device {
        Device::Cpu => Box::new(Cpu::<f32>::new()),
        Device::Gpu => Box::new(Gpu::new(&AdapterChoice::default())?),
        Device::Auto => match Gpu::new(&AdapterChoice::default()) {
            Ok(g) if g.context().info.device_type != wgpu::DeviceType::Cpu => Box::new(g),
            Ok(g) => {
                eprintln!(
                    "note: only a software adapter ({}); using the CPU",
                    g.describe()
                );
                Box::new(Cpu::<f32>::new())
            }
            Err(e) => {
                eprintln!("warning: no GPU ({e}); using the CPU");
                Box::new(Cpu::<f32>::new())
            }
        },
    })
}

/// Runs `job` on `backend`. Under `--backend auto` a GPU error mid-run (a lost device) is a
/// warning and the job runs again on the CPU; with `--backend gpu` the error stands.
fn with_fallback<T>(
    device: Device,
    backend: &dyn Backend,
    job: impl Fn(&dyn Backend) -> monomial_nfn::Result<T>,
) -> Res<T> {
    Ok(monomial_nfn::backend::with_cpu_fallback(
        device == Device::Auto,
        backend,
        job,
    )?)
}

fn edit_inr(a: &EditArgs) -> Res<ExitCode> {
    use monomial_nfn::editing::{edit_inr, EditConfig};
    let defaults = EditConfig::default();
    let mut editor = defaults.editor.clone();
    editor.widths = vec![a.width; 3];
    editor.fourier.0 = a.fourier;
    editor.grid = (a.grid, a.grid);
    let mut config = EditConfig {
        inrs: a.run.source(),
        models: a.models.clone(),
        editor,
        edit: a.edit,
        schedule: a.run.schedule(),
        examples: a.examples,
        save_edited: a.save_edited.clone(),
        save_edited_state_dicts: a.save_edited_state_dicts.clone(),
        cache_dir: a.run.cache.clone().unwrap_or(defaults.cache_dir),
        out_dir: a.out.clone(),
        progress: true,
        save: a.run.save.clone(),
    };
    if a.paper {
        config = config.paper();
    }
    config.validate()?;
    let backend = make_backend(a.run.backend)?;
    println!(
        "edit-inr: {}, models {}, {} steps, batch {}, lr {}, warm-up {}, {}x{} grid, on {}",
        spellings(&[a.edit]),
        spellings(&a.models),
        config.schedule.steps,
        config.schedule.batch,
        config.schedule.lr,
        config.schedule.warmup,
        config.editor.grid.0,
        config.editor.grid.1,
        backend.describe()
    );
    let report = with_fallback(a.run.backend, backend.as_ref(), |b| edit_inr(&config, b))?;
    let (tr, va, te) = report.sizes;
    println!(
        "INR set {} ({}); {tr} train, {va} validation, {te} test SIRENs",
        report.inr_file.display(),
        if report.generate_seconds > 0.0 {
            format!("generated in {:.1} s", report.generate_seconds)
        } else {
            "reused".into()
        }
    );
    print!("{}", report.table());
    println!(
        "edits: {} (render, target, then each editor); curves: {}",
        report.grid.display(),
        report.plot.display()
    );
    if let Some(p) = &report.edited {
        println!("edited test SIRENs: {}", p.display());
    }
    if let Some(dir) = &a.save_edited_state_dicts {
        println!(
            "edited test SIRENs as {} state dicts under {}",
            report.edited_state_dicts.len(),
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn classify_inr(a: &ClassifyArgs) -> Res<ExitCode> {
    use monomial_nfn::classify::{classify_inr, ClassifyConfig};
    let defaults = ClassifyConfig::default();
    let mut nfn = defaults.nfn.clone();
    nfn.front = Some(a.front_width);
    nfn.widths = vec![a.width; 3];
    nfn.fourier = (a.fourier, a.sigma);
    nfn.head = vec![a.head_width; 2];
    nfn.feature_dropout = a.dropout;
    nfn.head_dropout = a.head_dropout;
    let mut config = ClassifyConfig {
        inrs: a.run.source(),
        models: a.models.clone(),
        nfn,
        mlp: vec![a.head_width * 2; 2],
        schedule: a.run.schedule(),
        cache_dir: a.run.cache.clone().unwrap_or(defaults.cache_dir),
        out_dir: a.out.clone(),
        progress: true,
        save: a.run.save.clone(),
    };
    if a.paper {
        config = config.paper();
    }
    config.validate()?;
    let backend = make_backend(a.run.backend)?;
    println!(
        "classify-inr: models {}, {} steps, batch {}, lr {}, warm-up {}, on {}",
        spellings(&a.models),
        config.schedule.steps,
        config.schedule.batch,
        config.schedule.lr,
        config.schedule.warmup,
        backend.describe()
    );
    let report = with_fallback(a.run.backend, backend.as_ref(), |b| {
        classify_inr(&config, b)
    })?;
    let (tr, va, te) = report.sizes;
    println!(
        "INR set {} ({}; mean PSNR {}); {tr} train, {va} validation, {te} test SIRENs",
        report.inr_file.display(),
        if report.generate_seconds > 0.0 {
            format!("generated in {:.1} s", report.generate_seconds)
        } else {
            "reused".into()
        },
        report
            .mean_psnr
            .map_or("unknown".into(), |p| format!("{p:.1} dB"))
    );
    print!("{}", report.table());
    println!(
        "learning curves: {} (CSV per model beside it)",
        report.plot.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn predict(a: &PredictArgs) -> Res<ExitCode> {
    use monomial_nfn::checkpoint::Checkpoint;
    use monomial_nfn::predict::{predict_networks, Networks};
    let checkpoint = Checkpoint::load(&a.model)?;
    let networks = match (&a.zoo, &a.networks) {
        (Some(d), _) => Networks::Zoo(d.clone()),
        (None, Some(f)) if monomial_nfn::torchfile::is_state_dict_source(f) => {
            Networks::StateDicts {
                path: f.clone(),
                layers: a.layers.clone(),
                cache_dir: Some(
                    a.cache
                        .clone()
                        .unwrap_or_else(monomial_nfn::experiment::default_cache_dir),
                ),
            }
        }
        (None, Some(_)) if a.layers.is_some() => {
            return Err(monomial_nfn::Error::setting(
                "--layers",
                a.layers.as_deref().unwrap_or_default().join(","),
                "only with PyTorch state dicts (--networks FILE.pth or a folder)",
            )
            .into())
        }
        (None, Some(f)) => Networks::File(f.clone()),
        (None, None) => unreachable!("clap requires --zoo or --networks"),
    };
    let backend = make_backend(a.backend)?;
    println!(
        "predict: {} ({} parameters) on {}",
        checkpoint.label,
        checkpoint.model.num_params(),
        backend.describe()
    );
    let t0 = std::time::Instant::now();
    let p = with_fallback(a.backend, backend.as_ref(), |b| {
        predict_networks(&checkpoint, &networks, b, a.batch, true)
    })?;
    p.write_csv(&a.out)?;
    println!(
        "{} networks in {:.1} s; predictions: {}",
        p.len(),
        t0.elapsed().as_secs_f64(),
        a.out.display()
    );
    if let Some((name, v)) = p.score() {
        println!("{name} against the stored targets: {v:.4}");
    }
    Ok(ExitCode::SUCCESS)
}

fn predict_gen(a: &PredictGenArgs) -> Res<ExitCode> {
    use monomial_nfn::experiment::{predict_gen, PredictGenConfig, ZooSource};
    let defaults = PredictGenConfig::default();
    let config = PredictGenConfig {
        zoo: match &a.zoo {
            Some(d) => ZooSource::Dir(d.clone()),
            None => ZooSource::Generate {
                n: a.generate,
                seed: a.seed,
            },
        },
        activation: a.activation,
        models: a.models.clone(),
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        augment_train: a.augment_train,
        test_scale: a.augment_scale,
        cache_dir: a.cache.clone().unwrap_or(defaults.cache_dir),
        out_dir: a.out.clone(),
        progress: true,
        save: a.save.clone(),
    };
    config.validate()?;
    let backend = make_backend(a.backend)?;
    println!(
        "predict-gen: {} zoo, models {}, {} epochs, batch {}, lr {}, on {}",
        activation_name(a.activation),
        spellings(&a.models),
        a.epochs,
        a.batch,
        a.lr,
        backend.describe()
    );
    let report = with_fallback(a.backend, backend.as_ref(), |b| predict_gen(&config, b))?;
    let (tr, va, te) = report.sizes;
    println!(
        "zoo {} ({}); {tr} train, {va} validation, {te} test networks",
        report.zoo_dir.display(),
        if report.generate_seconds > 0.0 {
            format!("generated in {:.1} s", report.generate_seconds)
        } else {
            "loaded".to_string()
        }
    );
    let scale = if a.activation == NetActivation::Tanh {
        "sign-flipped".to_string()
    } else {
        format!("rescaled by U[1, {:e}]", a.augment_scale)
    };
    println!("rescaled tau: test networks with hidden neurons permuted and {scale}");
    print!("{}", report.table());
    let counts: Vec<String> = report
        .paper_params
        .iter()
        .map(|(m, n)| format!("{m} {n}"))
        .collect();
    println!(
        "parameters of the paper configurations: {}",
        counts.join(", ")
    );
    println!(
        "learning curves: {}/curve-<model>.csv, plotted in {}",
        a.out.display(),
        report.plot.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs training steps of `t` on `data` for at least `seconds` (reading the loss back at the
/// end, so queued GPU work counts); returns (samples/s, GFLOP/s).
fn train_throughput(t: &mut Trainer, data: &Dataset, seconds: f64) -> Res<(f64, f64)> {
    let start = Instant::now();
    let mut iters = 0u32;
    while start.elapsed() < Duration::from_secs_f64(seconds) || iters < 3 {
        t.step(data)?;
        iters += 1;
        if iters % 16 == 0 {
            t.take_loss_sum()?;
        }
    }
    t.take_loss_sum()?;
    let per = start.elapsed().as_secs_f64() / iters as f64;
    Ok((data.len() as f64 / per, t.flops() / per / 1e9))
}

/// Repetitions per dispatch of `mnfn bench --profile` (the fastest counts).
const PROFILE_REPS: usize = 5;

fn bench(
    what: BenchWhat,
    which_model: ModelKind,
    batches: &[usize],
    which: BackendArg,
    (seconds, rounds): (f64, u32),
    activation: NetActivation,
    profile: bool,
) -> Res<ExitCode> {
    let model = which_model.build(activation, 0)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    println!(
        "model: {} CNN-Zoo (input networks {}), {} parameters; {rounds} rounds of {:.2} s per pass",
        which_model.name(),
        activation_name(model.spec().activation),
        model.num_params(),
        seconds / f64::from(rounds)
    );
    if which != BackendArg::Gpu {
        println!("CPU: {}", monomial_nfn::backend::cpu::describe_machine());
    }
    println!(
        "{:<48} {:<8} {:>6} {:>12} {:>10} {:>10} {:>11} {:>8}",
        "backend", "pass", "batch", "samples/s", "ms/batch", "GFLOP/s", "range", "of GEMM"
    );
    let slice = seconds / f64::from(rounds);
    let cpu = (which != BackendArg::Gpu).then(Cpu::<f32>::new);
    let gpu = gpu_backend(which)?;
    let all = cpu.iter().map(|c| c as &dyn Backend);
    for b in all.chain(gpu.iter().map(|g| g as &dyn Backend)) {
        for &batch in batches {
            let input = WeightSpace::random(model.spec(), batch, 1, &mut rng);
            let forward = what != BenchWhat::Train;
            if forward {
                model.forward(b, &input)?;
            }
            let mut trainer = None;
            if what != BenchWhat::Forward {
                let targets = monomial_nfn::Tensor::new(vec![batch, 1], vec![0.5; batch])?;
                let data = Dataset::new(input.clone(), targets)?;
                let mut t = Trainer::new(&model, b, batch, LossKind::Bce, AdamConfig::default())?;
                t.step(&data)?;
                t.take_loss_sum()?;
                trainer = Some((t, data));
            }
            // The machine-independent figure: each pass against a plain GEMM of the model's
            // hottest shape on this backend, timed in the same rounds, so that load from
            // elsewhere falls on both sides of each round's fraction.
            let shape = hot_gemm(&*model.plan(batch)?).ok_or("the model has no GEMM")?;
            let yardstick = GemmYardstick::new(b, shape)?;
            let (mut passes, mut peaks) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                let mut round = Vec::new();
                if forward {
                    round.push(("forward", throughput(&model, b, &input, slice)?));
                }
                if let Some((t, data)) = trainer.as_mut() {
                    round.push(("train", train_throughput(t, data, slice)?));
                }
                peaks.push(yardstick.gflops(slice)?);
                passes.push(round);
            }
            let peak = Spread::of(&peaks).ok_or("the GEMM yardstick gave no rate")?;
            for (i, (pass, _)) in passes[0].iter().enumerate() {
                let column = |f: fn((f64, f64), f64) -> f64| {
                    let v: Vec<f64> = passes
                        .iter()
                        .zip(&peaks)
                        .map(|(r, &p)| f(r[i].1, p))
                        .collect();
                    Spread::of(&v).ok_or("a pass gave no rate")
                };
                let rate = column(|(rate, _), _| rate)?;
                let gflops = column(|(_, g), _| g)?;
                let fraction = column(|(_, g), p| g / p)?;
                println!(
                    "{:<48} {:<8} {:>6} {:>12.0} {:>10.3} {:>10.1} {:>11} {:>8.2}",
                    b.describe(),
                    pass,
                    batch,
                    rate.median,
                    1e3 * batch as f64 / rate.median,
                    gflops.median,
                    format!("{:.2}-{:.2}", fraction.min, fraction.max),
                    fraction.median
                );
            }
            let (m, k, n) = shape;
            println!(
                "{:<48} {:<8} {:>6} {:>12} {:>10} {:>10.1} {:>11} {:>8.2}",
                b.describe(),
                "gemm",
                batch,
                format!("{m}x{k}x{n}"),
                "",
                peak.median,
                format!("{:.0}-{:.0}", peak.min, peak.max),
                1.0
            );
        }
    }
    match (profile, &gpu) {
        (true, Some(gpu)) => {
            for &batch in batches {
                let input = WeightSpace::random(model.spec(), batch, 1, &mut rng);
                for (pass, p) in profile_passes(gpu, &model, &input, PROFILE_REPS)? {
                    println!("\nprofile: {pass}, batch {batch}, {}", gpu.describe());
                    print!("{}", p.table());
                }
            }
        }
        (true, None) => eprintln!("note: --profile times GPU kernels; no GPU backend here"),
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// A `--activation` parser accepting `names` in any case (the library's spellings); clap lists
/// them in --help and in errors.
fn activation_parser(
    names: &'static [&'static str],
) -> impl TypedValueParser<Value = NetActivation> {
    PossibleValuesParser::new(names.iter().copied())
        .map(|s| parse_activation(&s).expect("every listed name is an activation"))
}

/// `--activation` of CNN zoos and their models: relu or tanh.
fn zoo_activation() -> impl TypedValueParser<Value = NetActivation> {
    activation_parser(&["relu", "tanh"])
}

/// The command-line spellings of `values`, comma-separated (for run headers).
fn spellings<T: ValueEnum>(values: &[T]) -> String {
    let names: Vec<String> = values
        .iter()
        .filter_map(|v| v.to_possible_value())
        .map(|p| p.get_name().to_string())
        .collect();
    names.join(",")
}

fn zoo_generate(
    arch: Arch,
    activation: NetActivation,
    n: usize,
    seed: u64,
    out: &Path,
) -> Res<ExitCode> {
    use monomial_nfn::zoo::{generate, GenerateConfig, Zoo};
    let cfg = GenerateConfig::new(arch, activation, n, seed);
    let bar = progress_bar(n)?;
    let t0 = Instant::now();
    let zoo = generate(&cfg, &|| bar.inc(1))?;
    bar.finish();
    Zoo::write(out, &zoo.layout, &zoo.weights, &zoo.metrics)?;
    let acc = zoo.metrics.f64_column(out, "test_accuracy")?;
    let mean = acc.iter().sum::<f64>() / acc.len() as f64;
    let std = (acc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / acc.len() as f64).sqrt();
    let (lo, hi) = acc
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &a| {
            (l.min(a), h.max(a))
        });
    println!(
        "{n} networks of {} parameters in {:.1} s on {} threads; test accuracy mean {mean:.3}, std {std:.3}, range [{lo:.3}, {hi:.3}]",
        zoo.layout.row_len(),
        t0.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    println!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn symmetry(
    path: &Path,
    index: usize,
    activation: Option<NetActivation>,
    elements: usize,
    seed: u64,
) -> Res<ExitCode> {
    use monomial_nfn::zoo::symmetry::{diagnose, EXACT_TOLERANCE};
    use monomial_nfn::zoo::{NetworkFile, StepFilter, Zoo, ZooFilter};
    let (spec, ws) = if path.is_dir() {
        let filter = ZooFilter {
            activation,
            step: StepFilter::All,
        };
        let zoo = Zoo::open(path, &filter)?;
        let ws = zoo.weight_space(&[index])?;
        println!("network: row {} of zoo {}", zoo.rows[index], path.display());
        (zoo.layout.spec().clone(), ws)
    } else {
        let file = NetworkFile::read(path, activation)?;
        println!("network: {index} of {}", path.display());
        (file.spec.clone(), file.network(index)?)
    };
    println!(
        "architecture: {} layers ({}), activation {}",
        spec.num_layers(),
        spec.layers_in_words(),
        activation_name(spec.activation)
    );
    let reports = diagnose(&spec, &ws, 16, elements, 64, seed)?;
    println!(
        "{:<16} {:>22}  exact (<= {EXACT_TOLERANCE:e})",
        "group element", "max relative change"
    );
    for r in reports {
        println!(
            "{:<16} {:>22.3e}  {}",
            format!("{:?}", r.symmetry),
            r.max_relative_change,
            if r.exact() { "yes" } else { "no" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(n: usize) -> Res<indicatif::ProgressBar> {
    Ok(indicatif::ProgressBar::new(n as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} networks ({per_sec}, eta {eta})",
        )?
        .progress_chars("=> "),
    ))
}

fn inr_render(
    path: &Path,
    index: usize,
    size: Option<usize>,
    scale: usize,
    backend: Device,
    cache: Option<PathBuf>,
    out: &Path,
) -> Res<ExitCode> {
    use monomial_nfn::zoo::inr::{render_pictures, stored_picture};
    let options = monomial_nfn::torchfile::ReadOptions {
        cache_dir: Some(cache.unwrap_or_else(monomial_nfn::experiment::default_cache_dir)),
        progress: true,
        ..Default::default()
    };
    let file = monomial_nfn::zoo::NetworkFile::read_inrs(path, &options)?;
    let stored = stored_picture(&file, index);
    let side = size.or(stored.as_ref().map(|p| p.h)).unwrap_or(16);
    let device = backend;
    let backend = make_backend(device)?;
    let render = with_fallback(device, backend.as_ref(), |b| {
        render_pictures(b, &file, &[index], side, side)
    })?;
    let mut row = render;
    if let Some(img) = stored.filter(|p| p.h == side && p.w == side) {
        row.push(img);
    }
    let what = if row.len() == 2 {
        "render and stored image"
    } else {
        "render"
    };
    monomial_nfn::picture::save_grid(out, &[row], scale)?;
    println!(
        "SIREN {index} of {} ({what}, {side}x{side}) -> {}",
        path.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn inr_generate(n: usize, seed: u64, steps: usize, backend: Device, out: &Path) -> Res<ExitCode> {
    use monomial_nfn::zoo::inr::{generate, InrConfig};
    let cfg = InrConfig {
        steps,
        ..InrConfig::new(n, seed)
    };
    let device = backend;
    let backend = make_backend(device)?;
    let bar = progress_bar(n)?;
    let t0 = Instant::now();
    let (file, mse) = with_fallback(device, backend.as_ref(), |b| {
        bar.reset();
        generate(&cfg, b, &|k| bar.inc(k as u64))
    })?;
    bar.finish();
    file.write(out)?;
    let worst = mse.iter().fold(0f64, |m, &v| m.max(v));
    println!(
        "{n} SIRENs in {:.1} s on {}; mean squared error mean {:.2e}, worst {worst:.2e}; PSNR mean {:.1} dB, min {:.1} dB",
        t0.elapsed().as_secs_f64(),
        backend.describe(),
        file.metadata["mean_mse"].parse::<f64>().unwrap_or(f64::NAN),
        file.metadata["mean_psnr_db"].parse::<f64>().unwrap_or(f64::NAN),
        file.metadata["min_psnr_db"].parse::<f64>().unwrap_or(f64::NAN),
    );
    println!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}
