//! The CPU backend, generic over f32 (fast path) and f64 (the reference every GPU output is
//! checked against). One file per op family, mirroring `shaders/`.

mod activation;
mod gemm;
mod pool;

use std::marker::PhantomData;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::plan::{BufKind, Op, Plan};
use crate::scalar::Scalar;

pub use activation::activation;
pub use gemm::gemm;
pub use pool::pool;

/// Executes plans on the host in precision `T`, with rayon over rows/batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu<T: Scalar> {
    _t: PhantomData<T>,
}

impl<T: Scalar> Cpu<T> {
    /// A CPU backend in precision `T`.
    pub fn new() -> Self {
        Cpu { _t: PhantomData }
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
        let mut bufs: Vec<Vec<T>> = plan
            .bufs
            .iter()
            .map(|d| match &d.kind {
                BufKind::Param(v) => v.iter().map(|&x| T::from_f64(x)).collect(),
                _ => Vec::new(),
            })
            .collect();
        for (&id, data) in plan.inputs.iter().zip(inputs) {
            if data.len() != plan.bufs[id].len {
                return Err(Error::shape(
                    format!("plan input buffer {id}"),
                    &[plan.bufs[id].len],
                    &[data.len()],
                ));
            }
            bufs[id] = data.iter().map(|&x| T::from_f64(x)).collect();
        }
        for (id, d) in plan.bufs.iter().enumerate() {
            if matches!(d.kind, BufKind::Scratch) {
                bufs[id] = vec![T::default(); d.len];
            }
        }
        for op in &plan.ops {
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
        }
        Ok(plan
            .outputs
            .iter()
            .map(|&id| bufs[id].iter().map(|x| x.to_f64()).collect())
            .collect())
    }
}
