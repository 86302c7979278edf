//! The backend boundary (DESIGN §3): a backend executes a [`Plan`]; model code never sees devices.

pub mod cpu;
pub mod gpu;

use crate::error::Result;
use crate::plan::Plan;

/// Something that can execute plans.
pub trait Backend {
    /// A one-line description (backend, precision, adapter).
    fn describe(&self) -> String;
    /// Runs `plan` with `inputs` (internal layout, f64 values, one per `plan.inputs`) and returns
    /// the values of `plan.outputs`.
    fn run(&self, plan: &Plan, inputs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>>;
}
