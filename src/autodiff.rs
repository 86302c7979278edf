//! Reverse-mode differentiation of plans (SPEC §8). Every forward op family has a backward made
//! of ops the backends already run: GEMMs with transposed operands (§8.1), activation and pool
//! gradients (§8.2, §8.3), and strided sums, whose transpose is another strided sum (means
//! broadcast back, broadcasts sum back). Parameter gradients are GEMM or strided-sum reductions
//! over batch and positions, computed in a fixed order: no atomics, deterministic.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::plan::{
    Activation, ActivationGradOp, BufId, BufKind, GemmOp, MaskOp, Op, PlanBuilder, PoolGradOp,
    ReduceOp, SirenGradOp, SirenOp,
};

/// Where the gradients appended by [`append_backward`] live.
#[derive(Debug, Clone, Default)]
pub struct Backward {
    /// (parameter buffer, its gradient buffer) for every parameter reached by the seeds.
    pub params: Vec<(BufId, BufId)>,
    /// The gradient buffer of each plan input (in input order), when requested and reached.
    pub inputs: Vec<Option<BufId>>,
}

/// Gradient buffers, created on first use; the first op to write one overwrites it (buffers
/// persist between runs), later ones accumulate.
struct Grads {
    of: HashMap<BufId, BufId>,
    written: HashSet<BufId>,
}

impl Grads {
    fn get(&mut self, pb: &mut PlanBuilder, value: BufId) -> BufId {
        if let Some(&g) = self.of.get(&value) {
            return g;
        }
        let g = pb.scratch(pb.len_of(value));
        self.of.insert(value, g);
        g
    }

    /// Whether the next write into `g` must accumulate; marks `g` written.
    fn accumulate(&mut self, g: BufId) -> bool {
        !self.written.insert(g)
    }

    fn live(&self, value: BufId) -> Option<BufId> {
        self.of
            .get(&value)
            .copied()
            .filter(|g| self.written.contains(g))
    }
}

/// Appends the backward of the first `forward_ops` ops of `pb`, seeded with gradient buffers
/// `seeds` = (value, ∂loss/∂value) that the caller has already filled by earlier ops.
/// Gradients flow to every parameter with a source and, if `input_grads`, to the plan inputs.
pub fn append_backward(
    pb: &mut PlanBuilder,
    forward_ops: usize,
    seeds: &[(BufId, BufId)],
    input_grads: bool,
) -> Result<Backward> {
    let nb = pb.bufs.len();
    let mut needs = vec![false; nb];
    for (id, d) in pb.bufs.iter().enumerate() {
        needs[id] = match d.kind {
            BufKind::Param(_) => d.source.is_some(),
            BufKind::Input => input_grads,
            BufKind::Scratch => false,
        };
    }
    for op in &pb.ops[..forward_ops] {
        if op.reads().iter().any(|&r| needs[r]) {
            for w in op.writes_all() {
                needs[w] = true;
            }
        }
    }
    check_single_assignment(&pb.ops[..forward_ops], nb)?;
    let mut grads = Grads {
        of: HashMap::new(),
        written: HashSet::new(),
    };
    for &(value, g) in seeds {
        grads.of.insert(value, g);
        grads.written.insert(g);
    }
    for i in (0..forward_ops).rev() {
        let op = pb.ops[i].clone();
        let Some(dy) = grads.live(op.writes()) else {
            continue;
        };
        match &op {
            Op::Gemm(g) => gemm_backward(pb, &mut grads, &needs, g, dy)?,
            Op::Activation(a) if needs[a.x] => {
                let dx = grads.get(pb, a.x);
                let accumulate = grads.accumulate(dx);
                // ReLU′ reads the output (1[x > 0] = 1[y > 0]), which the next layer's weight
                // gradient keeps anyway, so the pre-activation need not be stored.
                let x = if a.act == Activation::Relu { a.y } else { a.x };
                pb.push(Op::ActivationGrad(ActivationGradOp {
                    x,
                    dy,
                    dx,
                    act: a.act,
                    len: a.len,
                    accumulate,
                }));
            }
            Op::Pool(p) => {
                let affine = p.gamma.zip(p.beta).filter(|&(g, b)| needs[g] || needs[b]);
                if !needs[p.x] && affine.is_none() {
                    continue;
                }
                let dx = grads.get(pb, p.x);
                let accumulate = grads.accumulate(dx);
                let e = p.channels * p.f;
                let rows = p.batch * p.s;
                let affine_rows = affine.map(|_| (pb.scratch(rows * e), pb.scratch(rows * e)));
                pb.push(Op::PoolGrad(PoolGradOp {
                    fwd: p.clone(),
                    dout: dy,
                    dx,
                    accumulate,
                    affine_rows,
                }));
                if let (Some((gamma, beta)), Some((gr, br))) = (affine, affine_rows) {
                    for (param, rows_buf) in [(gamma, gr), (beta, br)] {
                        let dp = grads.get(pb, param);
                        let accumulate = grads.accumulate(dp);
                        pb.reduce(ReduceOp::sum_rows(rows_buf, dp, rows, e, accumulate));
                    }
                }
            }
            Op::Reduce(r) if needs[r.x] => {
                let dx = grads.get(pb, r.x);
                let accumulate = grads.accumulate(dx);
                pb.reduce(transpose(r, dy, dx, accumulate)?);
            }
            Op::Stat(_) => {
                return Err(Error::Spec(
                    "STATNN statistics are not differentiable with respect to the input".into(),
                ))
            }
            Op::Siren(sr) if needs[sr.params] => {
                if needs[sr.coords] {
                    return Err(Error::Spec(
                        "SIREN outputs are differentiable with respect to the parameters only, not the points".into(),
                    ));
                }
                let dparams = grads.get(pb, sr.params);
                let accumulate = grads.accumulate(dparams);
                let dz = pb.scratch(sr.batch * sr.points * SirenOp::dz_per_point(&sr.widths));
                pb.push(Op::SirenGrad(SirenGradOp {
                    fwd: sr.clone(),
                    dout: dy,
                    dz,
                    dparams,
                    accumulate,
                }));
            }
            // The mask is a sampled constant: it takes no gradient.
            Op::Mask(m) if needs[m.x] => {
                let dx = grads.get(pb, m.x);
                let accumulate = grads.accumulate(dx);
                pb.push(Op::Mask(MaskOp {
                    x: dy,
                    y: dx,
                    accumulate,
                    ..m.clone()
                }));
            }
            Op::Activation(_) | Op::Reduce(_) | Op::Siren(_) | Op::Mask(_) => {}
            Op::ActivationGrad(_)
            | Op::SirenGrad(_)
            | Op::PoolGrad(_)
            | Op::Loss(_)
            | Op::Adam(_)
            | Op::SumSquares(_) => {
                return Err(Error::Spec(
                    "cannot differentiate a plan that already holds backward ops".into(),
                ))
            }
        }
    }
    let params = pb
        .bufs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.source.is_some())
        .filter_map(|(id, _)| grads.live(id).map(|g| (id, g)))
        .collect();
    let inputs = if input_grads {
        pb.inputs.iter().map(|&id| grads.live(id)).collect()
    } else {
        vec![None; pb.inputs.len()]
    };
    Ok(Backward { params, inputs })
}

/// C = A·B + bias: dA = dC·Bᵀ, dB = Aᵀ·dC, dbias = Σ_rows dC (SPEC §8.1).
fn gemm_backward(
    pb: &mut PlanBuilder,
    grads: &mut Grads,
    needs: &[bool],
    g: &GemmOp,
    dc: BufId,
) -> Result<()> {
    if g.trans_a || g.trans_b {
        return Err(Error::Spec(
            "forward GEMMs with transposed operands are not differentiable".into(),
        ));
    }
    let base = GemmOp {
        bias: None,
        trans_a: false,
        trans_b: false,
        ..g.clone()
    };
    if needs[g.a] {
        let da = grads.get(pb, g.a);
        let accumulate = grads.accumulate(da);
        pb.push(Op::Gemm(GemmOp {
            a: dc,
            b: g.b,
            c: da,
            k: g.n,
            n: g.k,
            accumulate,
            trans_b: true,
            ..base.clone()
        }));
    }
    if needs[g.b] {
        let db = grads.get(pb, g.b);
        let accumulate = grads.accumulate(db);
        pb.push(Op::Gemm(GemmOp {
            a: g.a,
            b: dc,
            c: db,
            m: g.k,
            k: g.m,
            accumulate,
            trans_a: true,
            ..base
        }));
    }
    if let Some(bias) = g.bias.filter(|&b| needs[b]) {
        let db = grads.get(pb, bias);
        let accumulate = grads.accumulate(db);
        pb.reduce(ReduceOp::sum_rows(dc, db, g.m, g.n, accumulate));
    }
    Ok(())
}

/// The transpose of a strided sum: dx[a·xa + s·xs + r·xr + k] += alpha·dy[a·ya + s·ys + k].
/// A mean (R > 1) broadcasts back; a broadcast (a zero input stride) sums back.
fn transpose(r: &ReduceOp, dy: BufId, dx: BufId, accumulate: bool) -> Result<ReduceOp> {
    let [xa, xs, xr] = r.x_strides;
    let [ya, ys] = r.y_strides;
    let base = ReduceOp {
        x: dy,
        y: dx,
        alpha: r.alpha,
        accumulate,
        ..r.clone()
    };
    let summed_a = xa == 0 && r.outer > 1;
    let summed_s = xs == 0 && r.mid > 1;
    Ok(match (r.r > 1, summed_a, summed_s) {
        (true, false, false) if r.mid == 1 => ReduceOp {
            mid: r.r,
            r: 1,
            x_strides: [ya, 0, 0],
            y_strides: [xa, xr],
            ..base
        },
        (false, false, false) => ReduceOp {
            x_strides: [ya, ys, 0],
            y_strides: [xa, xs],
            ..base
        },
        (false, false, true) => ReduceOp {
            mid: 1,
            r: r.mid,
            x_strides: [ya, 0, ys],
            y_strides: [xa, 0],
            ..base
        },
        (false, true, false) => ReduceOp {
            outer: r.mid,
            mid: 1,
            r: r.outer,
            x_strides: [ys, 0, ya],
            y_strides: [xs, 0],
            ..base
        },
        _ => {
            return Err(Error::Spec(format!(
                "no transpose for the strided sum of extents (outer {}, mid {}, inner {}, summed {}) with input strides {:?} and output strides {:?}",
                r.outer, r.mid, r.inner, r.r, r.x_strides, r.y_strides
            )))
        }
    })
}

/// Backward needs each buffer's final value: every write must precede every read by another op.
fn check_single_assignment(ops: &[Op], nb: usize) -> Result<()> {
    let mut first_read = vec![usize::MAX; nb];
    for (i, op) in ops.iter().enumerate() {
        let writes = op.writes_all();
        for r in op.reads() {
            if !writes.contains(&r) {
                first_read[r] = first_read[r].min(i);
            }
        }
    }
    for (i, op) in ops.iter().enumerate() {
        for w in op.writes_all() {
            if first_read[w] < i {
                return Err(Error::Spec(format!(
                    "buffer {w} is written by op {i} after op {} read it: not differentiable",
                    first_read[w]
                )));
            }
        }
    }
    Ok(())
}
