//! The CPU backend, generic over f32 (fast path) and f64 (the reference every GPU output is
//! checked against). One file per op family, mirroring `shaders/`.

mod activation;
mod gemm;
mod pool;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::plan::{BufKind, Op, Plan};
use crate::scalar::Scalar;

pub use activation::activation;
pub use gemm::gemm;
pub use pool::pool;

/// Buffer sets kept per plan; older ones are dropped past this many.
const PLAN_CACHE: usize = 16;

/// Executes plans on the host in precision `T`, with rayon over rows/batch. Each plan's buffers
/// (parameters converted to `T`, scratch space) are allocated once and reused across runs.
#[derive(Debug, Default)]
pub struct Cpu<T: Scalar> {
    cache: Mutex<HashMap<u64, Vec<Vec<T>>>>,
}

impl<T: Scalar> Cpu<T> {
    /// A CPU backend in precision `T`.
    pub fn new() -> Self {
        Cpu {
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The buffers of `plan`: cached ones (taken out while running) or freshly built.
    fn take_buffers(&self, plan: &Plan) -> Vec<Vec<T>> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&plan.id);
        cached.unwrap_or_else(|| {
            plan.bufs
                .iter()
                .map(|d| match &d.kind {
                    BufKind::Param(v) => v.iter().map(|&x| T::from_f64(x)).collect(),
                    BufKind::Input => Vec::new(),
                    BufKind::Scratch => vec![T::default(); d.len],
                })
                .collect()
        })
    }

    fn return_buffers(&self, plan: &Plan, bufs: Vec<Vec<T>>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= PLAN_CACHE {
            cache.clear();
        }
        cache.insert(plan.id, bufs);
    }
}

impl<T: Scalar> Backend for Cpu<T> {
    fn describe(&self) -> String {
        format!("cpu-{} ({} threads)", T::NAME, rayon::current_num_threads())
    }

    fn run(&self, plan: &Plan, inputs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
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
        let mut bufs = self.take_buffers(plan);
        for (&id, data) in plan.inputs.iter().zip(inputs) {
            bufs[id].clear();
            bufs[id].extend(data.iter().map(|&x| T::from_f64(x)));
        }
        let profile = log::log_enabled!(log::Level::Debug);
        let mut spent = [0f64; 3];
        for op in &plan.ops {
            let t0 = profile.then(std::time::Instant::now);
            match op {
                Op::Gemm(g) => {
                    let mut c = std::mem::take(&mut bufs[g.c]);
                    let bias = g.bias.map(|id| bufs[id].as_slice());
                    gemm(g, &bufs[g.a], &bufs[g.b], bias, &mut c);
                    bufs[g.c] = c;
                }
                Op::Activation(a) => {
                    let mut y = std::mem::take(&mut bufs[a.y]);
                    activation(a.act, &bufs[a.x], &mut y);
                    bufs[a.y] = y;
                }
                Op::Pool(p) => {
                    let mut out = std::mem::take(&mut bufs[p.out]);
                    let gamma = p.gamma.map(|id| bufs[id].as_slice());
                    let beta = p.beta.map(|id| bufs[id].as_slice());
                    pool(p, &bufs[p.x], gamma, beta, &mut out);
                    bufs[p.out] = out;
                }
            }
            if let Some(t0) = t0 {
                let k = match op {
                    Op::Gemm(_) => 0,
                    Op::Activation(_) => 1,
                    Op::Pool(_) => 2,
                };
                spent[k] += t0.elapsed().as_secs_f64();
            }
        }
        if profile {
            log::debug!(
                "cpu-{} ms: gemm {:.2}, activation {:.2}, pool {:.2}",
                T::NAME,
                1e3 * spent[0],
                1e3 * spent[1],
                1e3 * spent[2]
            );
        }
        let outs = plan
            .outputs
            .iter()
            .map(|&id| bufs[id].iter().map(|x| x.to_f64()).collect())
            .collect();
        self.return_buffers(plan, bufs);
        Ok(outs)
    }
}
