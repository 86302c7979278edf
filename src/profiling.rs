//! `mnfn bench --profile`: a model's forward pass and training step, each profiled per kernel
//! family on the GPU ([`Gpu::profile`]).

use crate::backend::gpu::{Gpu, Profile};
use crate::error::Result;
use crate::nn::model::Model;
use crate::plan::LossKind;
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
