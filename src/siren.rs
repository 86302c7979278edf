//! Batched SIRENs on any backend (SPEC §1.4, §6.3): per-sample parameter rows, the 'ij'
//! coordinate grid, rendering, and fitting many SIRENs at once as one plan (the SIREN op, MSE,
//! its backward and Adam per parameter), which is how INR sets are made.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::plan::{AdamOp, LossKind, LossOp, Op, PlanBuilder, SirenOp};
use crate::space::WeightSpace;
use crate::spec::NetworkSpec;
use crate::tensor::Tensor;

/// The frequency of a SIREN's hidden sin(ω·z).
pub const OMEGA: f64 = 30.0;

/// Widths n₀, …, n_L of a dense SIREN spec, or an error for conv layers or a broken chain.
pub fn widths(spec: &NetworkSpec) -> Result<Vec<usize>> {
    let mut w = vec![spec.n_in()];
    for l in &spec.layers {
        if l.f() != 1 || l.n_in != w[w.len() - 1] {
            return Err(Error::Spec(
                "a SIREN is a chain of dense layers (no conv kernels)".into(),
            ));
        }
        w.push(l.n_out);
    }
    Ok(w)
}

/// The coordinates of an h×w pixel grid in 'ij' order (SPEC §6.3): point p = row·w + col at
/// (t_h(row), t_w(col)) with t_n = linspace(−1, 1, n); rows of 2 values.
pub fn grid_coords(h: usize, w: usize) -> Vec<f64> {
    let t = |i: usize, n: usize| {
        if n > 1 {
            -1.0 + 2.0 * i as f64 / (n - 1) as f64
        } else {
            0.0
        }
    };
    (0..h * w)
        .flat_map(|p| [t(p / w, h), t(p % w, w)])
        .collect()
}

/// One row per network of a one-channel weight space: per layer W (n_out × n_in) then b.
pub fn pack(spec: &NetworkSpec, ws: &WeightSpace) -> Result<Vec<f64>> {
    ws.validate_shapes(spec)?;
    if ws.channels() != 1 {
        return Err(Error::shape(
            "SIREN weights' channels",
            &[1],
            &[ws.channels()],
        ));
    }
    let n = ws.batch();
    let mut rows = Vec::with_capacity(n * SirenOp::params_per_sample(&widths(spec)?));
    for b in 0..n {
        for (w, bias) in ws.weights.iter().zip(&ws.biases) {
            let (wl, bl) = (w.len() / n, bias.len() / n);
            rows.extend_from_slice(&w.data[b * wl..(b + 1) * wl]);
            rows.extend_from_slice(&bias.data[b * bl..(b + 1) * bl]);
        }
    }
    Ok(rows)
}

/// The inverse of [`pack`].
pub fn unpack(spec: &NetworkSpec, rows: &[f64]) -> Result<WeightSpace> {
    let d = SirenOp::params_per_sample(&widths(spec)?);
    if d == 0 || rows.len() % d != 0 {
        return Err(Error::shape(
            "SIREN parameter rows (N, D)",
            &[d],
            &[rows.len()],
        ));
    }
    let n = rows.len() / d;
    let mut ws = WeightSpace::zeros(spec, n, 1);
    for (b, row) in rows.chunks(d).enumerate() {
        let mut at = 0;
        for (w, bias) in ws.weights.iter_mut().zip(ws.biases.iter_mut()) {
            let (wl, bl) = (w.len() / n, bias.len() / n);
            w.data[b * wl..(b + 1) * wl].copy_from_slice(&row[at..at + wl]);
            bias.data[b * bl..(b + 1) * bl].copy_from_slice(&row[at + wl..at + wl + bl]);
            at += wl + bl;
        }
    }
    Ok(ws)
}

/// Renders every network of `ws` at the `coords` points (rows of n₀ values): (N, P, n_L).
pub fn render(
    backend: &dyn Backend,
    spec: &NetworkSpec,
    ws: &WeightSpace,
    coords: &[f64],
) -> Result<Tensor> {
    let w = widths(spec)?;
    ws.validate(spec, Some(1))?;
    let n = ws.batch();
    let mut pb = PlanBuilder::new();
    let params = pb.input(n * SirenOp::params_per_sample(&w));
    let pts = pb.param(coords.to_vec());
    let out = pb.siren(params, pts, n, &w, OMEGA)?;
    let plan = pb.finish(vec![out]);
    let mut outs = backend.run(&plan, &[pack(spec, ws)?])?;
    backend.release(&plan);
    let points = coords.len() / w[0];
    Tensor::new(vec![n, points, w[w.len() - 1]], outs.remove(0))
}

/// Settings of [`fit`]: full-batch Adam on each SIREN's own mean squared error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitSettings {
    /// Adam steps.
    pub steps: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
}

/// Fits N SIRENs at once from the initial rows `init` (N, D) to `targets` (N, P·n_L) at
/// `coords`, each by full-batch Adam on its own mean squared error; returns the fitted rows and
/// each fit's final error. One plan per call: the SIREN op, the loss, its backward, Adam.
pub fn fit(
    backend: &dyn Backend,
    spec: &NetworkSpec,
    init: Vec<f64>,
    targets: &[f64],
    coords: &[f64],
    settings: FitSettings,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let w = widths(spec)?;
    let d = SirenOp::params_per_sample(&w);
    let n = init.len() / d.max(1);
    let per = targets.len() / n.max(1);
    if n == 0
        || init.len() != n * d
        || targets.len() != n * per
        || coords.len() * w[w.len() - 1] != per * w[0]
    {
        return Err(Error::Input(format!(
            "SIREN fit: {} parameters, {} targets and {} coordinates do not describe N SIRENs of {w:?}",
            init.len(),
            targets.len(),
            coords.len()
        )));
    }
    if settings.steps == 0 || !(settings.learning_rate > 0.0 && settings.learning_rate.is_finite())
    {
        return Err(Error::Input(format!(
            "SIREN fit needs steps ≥ 1 and a positive finite learning rate, got {} and {}",
            settings.steps, settings.learning_rate
        )));
    }
    let mut pb = PlanBuilder::new();
    let params = pb.trainable(init, "siren");
    let pts = pb.param(coords.to_vec());
    let out = pb.siren(params, pts, n, &w, OMEGA)?;
    let forward_ops = pb.num_ops();
    let target = pb.input(n * per);
    let (loss, dpred) = (pb.scratch(1), pb.scratch(n * per));
    pb.push(Op::Loss(LossOp {
        pred: out,
        target: Some(target),
        loss,
        dpred,
        kind: LossKind::Mse,
        len: n * per,
    }));
    let backward = crate::autodiff::append_backward(&mut pb, forward_ops, &[(out, dpred)], false)?;
    let hyper = pb.input(3);
    // The loss averages over all N fits, which scales each fit's gradient by 1/N; Adam is
    // invariant to that scale but for ε, so ε/N gives every SIREN exactly its own fit.
    let eps = 1e-8 / n as f64;
    for &(param, grad) in &backward.params {
        let (m, v) = (pb.scratch(n * d), pb.scratch(n * d));
        pb.push(Op::Adam(AdamOp {
            param,
            grad,
            m,
            v,
            hyper,
            norm_sq: None,
            max_norm: 0.0,
            len: n * d,
            beta1: 0.9,
            beta2: 0.999,
            eps,
            weight_decay: 0.0,
            decoupled: false,
        }));
    }
    let plan = pb.finish_stateful(Vec::new());
    let result = (|| {
        let mut inputs = vec![targets.to_vec(), Vec::new()];
        for step in 1..=settings.steps {
            let t = step as f64;
            inputs[1] = vec![
                settings.learning_rate,
                1.0 - 0.9f64.powf(t),
                1.0 - 0.999f64.powf(t),
            ];
            backend.run(&plan, &inputs)?;
        }
        backend.read(&plan, &[params])
    })();
    backend.release(&plan);
    let rows = result?.remove(0);
    let fitted = unpack(spec, &rows)?;
    let rendered = render(backend, spec, &fitted, coords)?;
    let mse = rendered
        .data
        .chunks(per)
        .zip(targets.chunks(per))
        .map(|(y, t)| y.iter().zip(t).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / per as f64)
        .collect();
    Ok((rows, mse))
}
