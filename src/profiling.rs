//! `mnfn bench`'s measurements beyond plain timings: the in-run GEMM figure every pass is
//! compared with (a [`GemmYardstick`] of the model's [`hot_gemm`], timed in rounds that alternate
//! with the passes, summarised by [`Spread`]), and `--profile`: a model's
//! forward pass and training step, each profiled per kernel family on the GPU ([`Gpu::profile`]).

use std::time::{Duration, Instant};

use crate::backend::gpu::{Gpu, Profile};
use crate::backend::Backend;
use crate::error::Result;
use crate::nn::model::Model;
use crate::plan::{GemmOp, LossKind, Op, Plan, PlanBuilder, ReduceOp};
use crate::space::WeightSpace;
use crate::tensor::Tensor;
use crate::train::{AdamConfig, Dataset, Trainer};

/// The profiles of `model`'s forward pass and of one training step (BCE towards 0.5, default
/// Adam, as `mnfn bench` trains; the model has one output feature) on the batch `input`, `reps` repetitions each after a warm-up,
/// labelled "forward" and "train".
pub fn profile_passes(
    gpu: &Gpu,
    model: &Model,
    input: &WeightSpace,
    reps: usize,
) -> Result<Vec<(&'static str, Profile)>> {
    let batch = input.batch();
    input.validate(model.spec(), Some(model.in_channels()))?;
    let forward = gpu.profile(&*model.plan(batch)?, &model.pack_input(input, batch), reps)?;
    let targets = Tensor::new(vec![batch, 1], vec![0.5; batch])?;
    let data = Dataset::new(input.clone(), targets)?;
    let mut trainer = Trainer::new(model, gpu, batch, LossKind::Bce, AdamConfig::default())?;
    let inputs = trainer.step_inputs(&data)?;
    let train = gpu.profile(trainer.plan(), &inputs, reps)?;
    Ok(vec![("forward", forward), ("train", train)])
}

/// The shape `(m, k, n)` of the GEMM with the most FLOPs in `plan`: for the CNN-Zoo models the
/// middle layers' channel mix, (B·entries) × 144 × 144 (DESIGN §4b).
pub fn hot_gemm(plan: &Plan) -> Option<(usize, usize, usize)> {
    plan.ops
        .iter()
        .filter_map(|op| match op {
            Op::Gemm(g) => Some((g.m, g.k, g.n)),
            _ => None,
        })
        .max_by_key(|&(m, k, n)| m * k * n)
}

/// Products per run of a [`GemmYardstick`]: enough that the run's one small read-back is noise.
const GEMM_REPS: usize = 16;

/// A plain f32 GEMM C = A·B of shape m×k×n built once on a backend: the machine-independent
/// yardstick of `mnfn bench`. Its plan holds 16 products of two parameter matrices (so nothing
/// is uploaded per run), then C's column sums as the only output (read back once per run, not
/// counted). The plan is released when the yardstick is dropped.
pub struct GemmYardstick<'a> {
    backend: &'a dyn Backend,
    plan: Plan,
    flops_per_run: f64,
}

impl<'a> GemmYardstick<'a> {
    /// Builds the plan for `(m, k, n)` on `backend` and runs it once (the warm-up).
    pub fn new(backend: &'a dyn Backend, (m, k, n): (usize, usize, usize)) -> Result<Self> {
        let mut pb = PlanBuilder::new();
        let value = |i: usize| ((i * 7919) % 1009) as f64 / 1009.0 - 0.5;
        let a = pb.param((0..m * k).map(value).collect());
        let b = pb.param((0..k * n).map(value).collect());
        let c = pb.scratch(m * n);
        let sums = pb.scratch(n);
        for _ in 0..GEMM_REPS {
            pb.push(Op::Gemm(GemmOp {
                a,
                b,
                bias: None,
                c,
                m,
                k,
                n,
                accumulate: false,
                trans_a: false,
                trans_b: false,
            }));
        }
        pb.reduce(ReduceOp::sum_rows(c, sums, m, n, false));
        let yardstick = GemmYardstick {
            backend,
            plan: pb.finish(vec![sums]),
            flops_per_run: GEMM_REPS as f64 * 2.0 * (m * k * n) as f64,
        };
        backend.run(&yardstick.plan, &[])?;
        Ok(yardstick)
    }

    /// GFLOP/s over runs lasting at least `seconds` in all (two runs at least).
    pub fn gflops(&self, seconds: f64) -> Result<f64> {
        let start = Instant::now();
        let mut runs = 0u32;
        while start.elapsed() < Duration::from_secs_f64(seconds) || runs < 2 {
            self.backend.run(&self.plan, &[])?;
            runs += 1;
        }
        let per_run = start.elapsed().as_secs_f64() / f64::from(runs);
        Ok(self.flops_per_run / per_run / 1e9)
    }
}

impl Drop for GemmYardstick<'_> {
    fn drop(&mut self) {
        self.backend.release(&self.plan);
    }
}

/// Median, smallest and largest of a set of measurements, such as the per-round fractions of
/// the GEMM figure that `mnfn bench` takes in alternating rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median (the mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; None when there are none or one is NaN.
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[v.len() - 1],
        })
    }
}
