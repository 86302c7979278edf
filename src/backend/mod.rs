//! The backend boundary (DESIGN §3): a backend executes a [`Plan`]; model code never sees devices.

pub mod cpu;
pub mod gpu;

use crate::error::{Error, Result};
use crate::plan::{BufId, Plan};

/// Something that can execute plans.
pub trait Backend {
    /// A one-line description (backend, precision, adapter).
    fn describe(&self) -> String;
    /// Runs `plan` with `inputs` (internal layout, f64 values, one per `plan.inputs`) and returns
    /// the values of `plan.outputs`.
    fn run(&self, plan: &Plan, inputs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>>;
    /// The current values of buffers of a plan (after its runs; parameters of a stateful plan
    /// reflect every update so far).
    fn read(&self, plan: &Plan, ids: &[BufId]) -> Result<Vec<Vec<f64>>>;
    /// Overwrites one buffer of a plan (e.g. resets an accumulator of a stateful plan).
    fn write(&self, plan: &Plan, id: BufId, data: &[f64]) -> Result<()>;
    /// Drops everything the backend keeps for `plan` (required to free a stateful plan).
    fn release(&self, plan: &Plan);
    /// Whether `plan` runs in one pass: every buffer within the device's limits. Callers split
    /// a batch whose plan does not fit into parts that do ([`crate::Model::forward`],
    /// [`crate::train::Trainer`]). The CPU has no such limit.
    fn fits(&self, _plan: &Plan) -> bool {
        true
    }
}

/// Runs `job` on `backend`; when `fallback` is set (the user asked for `--backend auto`) and the
/// job fails with a device error (a lost GPU, a buffer past its limits), logs a warning and runs
/// it again on the CPU in f32. Other errors, and every error without `fallback`, are returned.
pub fn with_cpu_fallback<T>(
    fallback: bool,
    backend: &dyn Backend,
    job: impl Fn(&dyn Backend) -> Result<T>,
) -> Result<T> {
    match job(backend) {
        Err(Error::Device(e)) if fallback => {
            log::warn!("the GPU failed mid-run ({e}); running again on the CPU");
            job(&cpu::Cpu::<f32>::new())
        }
        r => r,
    }
}

/// The error for a buffer id outside a plan.
fn no_buffer(plan: &Plan, id: BufId) -> Error {
    Error::Spec(format!("plan {} has no buffer {id}", plan.id))
}

/// Checks that `inputs` holds one vector per input of `plan`, each of its buffer's length.
fn check_inputs(plan: &Plan, inputs: &[Vec<f64>]) -> Result<()> {
    if inputs.len() != plan.inputs.len() {
        return Err(Error::shape(
            "plan inputs",
            &[plan.inputs.len()],
            &[inputs.len()],
        ));
    }
    for (&id, data) in plan.inputs.iter().zip(inputs) {
        if data.len() != plan.bufs[id].len {
            return Err(Error::shape(
                format!("plan input buffer {id}"),
                &[plan.bufs[id].len],
                &[data.len()],
            ));
        }
    }
    Ok(())
}

/// Checks that `data` can overwrite buffer `id` of `plan`.
fn check_write(plan: &Plan, id: BufId, data: &[f64]) -> Result<()> {
    let desc = plan.bufs.get(id).ok_or_else(|| no_buffer(plan, id))?;
    if data.len() != desc.len {
        return Err(Error::shape(
            format!("buffer {id}"),
            &[desc.len],
            &[data.len()],
        ));
    }
    Ok(())
}
