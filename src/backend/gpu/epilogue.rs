//! Elementwise ops folded into the op that writes their input: an activation y = act(C) into
//! the GEMM writing C, an activation gradient dx (+)= D ⊙ act'(x) into the GEMM or pool
//! gradient writing D, computed by that op's threads as they store each value (the epilogues
//! of `gemm.wgsl` and `pool_grad.wgsl`): one dispatch and one pass over the buffer fewer each
//! (all 27 activations and 27 activation gradients of a CNN-Zoo Monomial-NFN training step
//! but the one after the loss; DESIGN §4), with the separate kernels' expressions applied to
//! the value stored.

use super::steps::Step;
use crate::plan::{BufId, Op, Plan};

/// What a dispatch of op `op` binds read-only and read-write, and the buffer and length it
/// writes whole, for ops that take an epilogue: GEMMs and pool gradients.
fn host(op: &Op) -> Option<(Vec<BufId>, Vec<BufId>, BufId, usize)> {
    match op {
        Op::Gemm(g) => Some((
            [Some(g.a), Some(g.b), g.bias]
                .into_iter()
                .flatten()
                .collect(),
            vec![g.c],
            g.c,
            g.m * g.n,
        )),
        Op::PoolGrad(g) => {
            let q = &g.fwd;
            let mut rw = vec![g.dx];
            rw.extend(g.affine_rows.iter().flat_map(|&(a, b)| [a, b]));
            Some((
                [Some(q.x), q.gamma, Some(g.dout)]
                    .into_iter()
                    .flatten()
                    .collect(),
                rw,
                g.dx,
                q.batch * q.r * q.s * q.channels * q.f,
            ))
        }
        _ => None,
    }
}

/// `steps` with each foldable activation (gradient) removed and folded into the step of the
/// op before it ([`Step::Then`], or [`Step::PoolGrad`]'s `then`). An op is folded into the
/// plan's last op before it that writes its input when that op is a GEMM run whole (not split
/// along k; activation gradients also a pool gradient) writing exactly that input, with
/// nothing folded into it yet; when no op between the two reads or writes the op's output or
/// writes its other input (so moving the op back changes nothing another op sees); and when
/// the joint dispatch binds no device buffer both read-only and read-write (wgpu refuses
/// that), `home` giving each buffer's device buffer.
pub fn fold(steps: Vec<Step>, plan: &Plan, home: impl Fn(BufId) -> usize) -> Vec<Step> {
    let mut whole = vec![false; plan.ops.len()];
    for s in &steps {
        if let Step::Op(i) | Step::PoolGrad { op: i, .. } = s {
            whole[*i] = true;
        }
    }
    let mut then = vec![None; plan.ops.len()];
    let mut folded = vec![false; plan.ops.len()];
    for (k, op) in plan.ops.iter().enumerate() {
        let (input, len, out, other) = match op {
            Op::Activation(a) => (a.x, a.len, a.y, None),
            Op::ActivationGrad(a) => (a.dy, a.len, a.dx, Some(a.x)),
            _ => continue,
        };
        let Some(j) = (0..k)
            .rev()
            .find(|&j| plan.ops[j].writes_all().contains(&input))
        else {
            continue;
        };
        let Some((read_only, mut read_write, written, n)) = host(&plan.ops[j]) else {
            continue;
        };
        let pool = matches!(plan.ops[j], Op::PoolGrad(_));
        if !whole[j] || then[j].is_some() || written != input || n != len || pool && other.is_none()
        {
            continue;
        }
        read_write.push(out);
        let conflict = read_only
            .iter()
            .chain(&other)
            .any(|&r| read_write.iter().any(|&w| home(r) == home(w)));
        let untouched = plan.ops[j + 1..k].iter().all(|o| {
            let writes = o.writes_all();
            !writes.contains(&out)
                && !o.reads().contains(&out)
                && other.is_none_or(|x| !writes.contains(&x))
        });
        if !conflict && untouched {
            then[j] = Some(k);
            folded[k] = true;
        }
    }
    steps
        .into_iter()
        .filter_map(|s| match s {
            Step::Op(i) if folded[i] => None,
            Step::Op(i) => Some(match then[i] {
                Some(t) => Step::Then { op: i, then: t },
                None => Step::Op(i),
            }),
            Step::PoolGrad { op, rows, .. } => Some(Step::PoolGrad {
                op,
                rows,
                then: then[op],
            }),
            s => Some(s),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Activation, ActivationGradOp, ActivationOp, GemmOp, PlanBuilder, ReduceOp};

    /// A 4×3·3×5 GEMM into a new buffer, or accumulated into `accumulate`.
    fn gemm(pb: &mut PlanBuilder, a: BufId, b: BufId, accumulate: Option<BufId>) -> BufId {
        let c = accumulate.unwrap_or_else(|| pb.scratch(20));
        pb.push(Op::Gemm(GemmOp {
            a,
            b,
            c,
            bias: None,
            m: 4,
            k: 3,
            n: 5,
            trans_a: false,
            trans_b: false,
            accumulate: accumulate.is_some(),
        }));
        c
    }

    fn steps(plan: &Plan) -> Vec<Step> {
        (0..plan.ops.len()).map(Step::Op).collect()
    }

    fn shape(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Op(i) => format!("{i}"),
                Step::Then { op, then } => format!("{op}+{then}"),
                _ => "other".into(),
            })
            .collect()
    }

    #[test]
    fn an_activation_joins_the_last_gemm_that_wrote_its_input() {
        let mut pb = PlanBuilder::new();
        let (x, w) = (pb.input(12), pb.input(15));
        let c = gemm(&mut pb, x, w, None);
        gemm(&mut pb, x, w, Some(c));
        let other = gemm(&mut pb, x, w, None);
        let y = pb.activation(c, Activation::Relu);
        pb.activation(other, Activation::Tanh);
        let dx = pb.scratch(20);
        pb.push(Op::ActivationGrad(ActivationGradOp {
            x: y,
            dy: other,
            dx,
            act: Activation::Relu,
            len: 20,
            accumulate: false,
        }));
        // An op between the GEMM and the activation reads the activation's output buffer.
        let z = gemm(&mut pb, x, w, None);
        let (out, sum) = (pb.scratch(20), pb.scratch(5));
        pb.push(Op::Reduce(ReduceOp::sum_rows(out, sum, 4, 5, false)));
        pb.push(Op::Activation(ActivationOp {
            x: z,
            y: out,
            act: Activation::Relu,
            len: 20,
        }));
        let plan = pb.finish(vec![y, dx, out]);
        let fused = fold(steps(&plan), &plan, |id| id);
        // GEMM 2 already carries activation 4, so the gradient reading its output stays apart.
        assert_eq!(shape(&fused), ["0", "1+3", "2+4", "5", "6", "7", "8"]);
    }

    /// Two pool pieces accumulate into one input gradient: the activation gradient after them
    /// joins the second (affine, so its step is `Step::PoolGrad`); an activation cannot.
    #[test]
    fn an_activation_gradient_joins_the_last_pool_gradient_piece() {
        let mut pb = PlanBuilder::new();
        let (x, dout, xa) = (pb.input(2 * 3 * 4), pb.input(2 * 4 * 2), pb.input(24));
        let (dx, out, gamma, beta) = (pb.scratch(24), pb.scratch(16), pb.input(4), pb.input(4));
        let (grows, brows) = (pb.scratch(8), pb.scratch(8));
        let piece = |offset, gamma, beta| crate::plan::PoolOp {
            x,
            out,
            gamma,
            beta,
            batch: 2,
            r: 3,
            s: 1,
            channels: 4,
            f: 1,
            norm: crate::plan::Norm::L2,
            eps: 1e-12,
            square: false,
            width: 2,
            offset,
        };
        for (k, affine) in [false, true].into_iter().enumerate() {
            pb.push(Op::PoolGrad(crate::plan::PoolGradOp {
                fwd: piece(k, affine.then_some(gamma), affine.then_some(beta)),
                dout,
                dx,
                accumulate: k > 0,
                affine_rows: affine.then_some((grows, brows)),
            }));
        }
        let dxa = pb.scratch(24);
        pb.push(Op::ActivationGrad(ActivationGradOp {
            x: xa,
            dy: dx,
            dx: dxa,
            act: Activation::Relu,
            len: 24,
            accumulate: false,
        }));
        let y = pb.activation(dx, Activation::Relu);
        let plan = pb.finish(vec![dxa, y]);
        let steps = vec![
            Step::Op(0),
            Step::PoolGrad {
                op: 1,
                rows: 99,
                then: None,
            },
            Step::Op(2),
            Step::Op(3),
        ];
        let fused = fold(steps, &plan, |id| id);
        assert_eq!(fused.len(), 3, "{}", fused.len());
        assert!(matches!(fused[0], Step::Op(0)));
        assert!(matches!(
            fused[1],
            Step::PoolGrad {
                op: 1,
                rows: 99,
                then: Some(2)
            }
        ));
        assert!(matches!(fused[2], Step::Op(3)));
    }

    #[test]
    fn ops_between_that_see_the_moved_buffers_keep_the_gradient_apart() {
        let mut pb = PlanBuilder::new();
        let (x, w, xa) = (pb.input(12), pb.input(15), pb.input(20));
        let dx = pb.scratch(20);
        let grad = |pb: &mut PlanBuilder, dy, accumulate| {
            pb.push(Op::ActivationGrad(ActivationGradOp {
                x: xa,
                dy,
                dx,
                act: Activation::Tanh,
                len: 20,
                accumulate,
            }))
        };
        let c = gemm(&mut pb, x, w, None);
        grad(&mut pb, c, false);
        let d2 = gemm(&mut pb, x, w, None);
        let d3 = gemm(&mut pb, x, w, None);
        grad(&mut pb, d3, true);
        // dx is written between d2's GEMM and its gradient: the sum's order must stay.
        grad(&mut pb, d2, true);
        let plan = pb.finish(vec![dx]);
        let fused = fold(steps(&plan), &plan, |id| id);
        assert_eq!(shape(&fused), ["0+1", "2", "3+4", "5"]);
        // A GEMM split along k, and a joint dispatch binding one device buffer read-only and
        // read-write, stay apart.
        let split: Vec<Step> = steps(&plan)
            .into_iter()
            .filter(|s| !matches!(s, Step::Op(3)))
            .collect();
        assert_eq!(shape(&fold(split, &plan, |id| id)), ["0+1", "2", "4", "5"]);
        let shared = fold(steps(&plan), &plan, |id| usize::from(id == x || id == dx));
        assert_eq!(shape(&shared), ["0", "1", "2", "3", "4", "5"]);
    }
}
