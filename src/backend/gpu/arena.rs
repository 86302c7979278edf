//! One optimizer dispatch for every parameter of a training plan, the GPU twin of
//! `cpu::adam::adam_group`: the parameters, gradients and moments of the plan's Adam ops live at
//! equal offsets in four shared buffers (arenas), which the other ops bind at each member's
//! offset, so one dispatch over the arenas replaces one dispatch per parameter tensor (53 for
//! the CNN-Zoo Monomial-NFN; DESIGN §4).

use std::ops::Range;

use super::steps::Step;
use crate::plan::{AdamOp, BufId, Op, Plan};

/// The arenas, in the order their members' roles are numbered: parameters, gradients, first
/// and second moments.
pub const ROLES: usize = 4;

/// Where a plan's Adam ops put their buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct Arena {
    /// The run of Adam ops the one dispatch replaces.
    pub ops: Range<usize>,
    /// Each member buffer: (plan buffer, role, offset in elements).
    pub members: Vec<(BufId, usize, usize)>,
    /// Elements of each arena.
    pub len: usize,
}

impl Arena {
    /// The layout of `plan`'s Adam ops in arenas, members `align` elements apart at least, or
    /// None where they cannot share a dispatch. They can when there are two or more, in one
    /// run of consecutive ops, with the same step constants (hyper-parameter buffer, clipping,
    /// β, ε, decay) and distinct buffers of their `len` each; no other op reads a member of an
    /// arena while writing another member of it (wgpu refuses a buffer bound read-only and
    /// read-write in one dispatch); and an arena's bytes stay within `max_bytes`.
    pub fn layout(plan: &Plan, align: usize, max_bytes: u64) -> Option<Arena> {
        let adams: Vec<(usize, &AdamOp)> = plan
            .ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                Op::Adam(a) => Some((i, a)),
                _ => None,
            })
            .collect();
        let (&(first, a0), &(last, _)) = (adams.first()?, adams.last()?);
        let ops = first..last + 1;
        if adams.len() < 2 || ops.len() != adams.len() {
            return None;
        }
        let constants = |a: &AdamOp| AdamOp {
            param: 0,
            grad: 0,
            m: 0,
            v: 0,
            len: 0,
            ..a.clone()
        };
        let mut role = vec![None; plan.bufs.len()];
        let mut members = Vec::with_capacity(ROLES * adams.len());
        let mut len = 0;
        for &(_, a) in &adams {
            if constants(a) != constants(a0) {
                return None;
            }
            for (r, id) in [a.param, a.grad, a.m, a.v].into_iter().enumerate() {
                if plan.bufs[id].len != a.len || role[id].is_some() {
                    return None;
                }
                role[id] = Some(r);
                members.push((id, r, len));
            }
            len += a.len.max(4).next_multiple_of(align);
        }
        if [Some(a0.hyper), a0.norm_sq]
            .into_iter()
            .flatten()
            .any(|id| role[id].is_some())
            || len as u64 * 4 > max_bytes
        {
            return None;
        }
        let mixed = plan.ops.iter().any(|op| {
            let writes = op.writes_all();
            let written: Vec<usize> = writes.iter().filter_map(|&id| role[id]).collect();
            op.reads()
                .iter()
                .filter(|id| !writes.contains(id))
                .filter_map(|&id| role[id])
                .any(|r| written.contains(&r))
        });
        (!mixed).then_some(Arena { ops, members, len })
    }

    /// `steps` with the run's Adam steps replaced by one [`Step::AdamGroup`] over the arenas,
    /// numbered from `first` in role order.
    pub fn fuse(&self, steps: Vec<Step>, first: BufId) -> Vec<Step> {
        let mut out = Vec::with_capacity(steps.len() + 1 - self.ops.len());
        for step in steps {
            match step {
                Step::Op(i) if i == self.ops.start => out.push(Step::AdamGroup {
                    op: i,
                    len: self.len,
                    arenas: [first, first + 1, first + 2, first + 3],
                }),
                Step::Op(i) if self.ops.contains(&i) => {}
                step => out.push(step),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Activation, PlanBuilder};

    /// A plan y = relu(x)·Wₜ… with `n` trainable tensors of sizes 3, 70, 5, …, their
    /// gradients as inputs, and one Adam op per tensor.
    fn plan(n: usize, mutate: impl Fn(usize, &mut AdamOp)) -> Plan {
        let mut pb = PlanBuilder::new();
        let x = pb.input(6);
        let y = pb.activation(x, Activation::Relu);
        let hyper = pb.input(3);
        for t in 0..n {
            let len = [3, 70, 5][t % 3];
            let param = pb.trainable(vec![0.5; len], "w");
            let grad = pb.input(len);
            let (m, v) = (pb.scratch(len), pb.scratch(len));
            let mut a = AdamOp {
                param,
                grad,
                m,
                v,
                hyper,
                norm_sq: None,
                max_norm: 0.0,
                len,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
                decoupled: false,
            };
            mutate(t, &mut a);
            pb.push(Op::Adam(a));
        }
        pb.finish_stateful(vec![y])
    }

    #[test]
    fn members_sit_at_equal_aligned_offsets_without_overlap() {
        let p = plan(4, |_, _| {});
        let a = Arena::layout(&p, 64, u64::MAX).unwrap();
        assert_eq!(a.ops, 1..5);
        assert_eq!(a.len, 64 + 128 + 64 + 64);
        assert_eq!(a.members.len(), 16);
        for (k, op) in p.ops[1..].iter().enumerate() {
            let Op::Adam(op) = op else { panic!() };
            let at = [0, 64, 192, 256][k];
            let want = vec![Some(at); ROLES];
            let got: Vec<_> = [op.param, op.grad, op.m, op.v]
                .iter()
                .map(|id| a.members.iter().find(|m| m.0 == *id).map(|m| m.2))
                .collect();
            assert_eq!(got, want, "op {k}");
            assert!(at + op.len <= a.len);
        }
    }

    #[test]
    fn ops_that_cannot_share_a_dispatch_keep_their_own() {
        assert!(Arena::layout(&plan(1, |_, _| {}), 4, u64::MAX).is_none());
        assert!(Arena::layout(&plan(3, |_, _| {}), 4, 4 * 80).is_none());
        let decay = plan(3, |t, a| a.weight_decay = t as f64 * 0.1);
        assert!(Arena::layout(&decay, 4, u64::MAX).is_none());
        // The fourth op's first moment is the first op's (same length).
        let shared = plan(4, |t, a| {
            if t == 3 {
                a.m -= 12;
            }
        });
        assert!(Arena::layout(&shared, 4, u64::MAX).is_none());
        // An op between two Adam ops breaks the run.
        let mut split = plan(3, |_, _| {});
        let relu = split.ops[0].clone();
        split.ops.insert(2, relu);
        assert!(Arena::layout(&split, 4, u64::MAX).is_none());
    }

    #[test]
    fn an_op_reading_one_member_and_writing_another_of_an_arena_prevents_it() {
        let mut p = plan(2, |_, _| {});
        let [g0, g1] = [1, 2].map(|k| match &p.ops[k] {
            Op::Adam(a) => a.grad,
            _ => unreachable!(),
        });
        assert!(Arena::layout(&p, 4, u64::MAX).is_some());
        p.ops.insert(
            0,
            Op::Reduce(crate::plan::ReduceOp::sum_rows(g0, g1, 1, 3, false)),
        );
        assert!(Arena::layout(&p, 4, u64::MAX).is_none());
    }

    #[test]
    fn the_run_becomes_one_step_where_it_began() {
        let p = plan(3, |_, _| {});
        let a = Arena::layout(&p, 4, u64::MAX).unwrap();
        let steps = (0..p.ops.len()).map(Step::Op).collect();
        let fused = a.fuse(steps, 40);
        assert_eq!(fused.len(), 2);
        assert!(matches!(fused[0], Step::Op(0)));
        assert!(matches!(
            fused[1],
            Step::AdamGroup {
                op: 1,
                len,
                arenas: [40, 41, 42, 43]
            } if len == a.len
        ));
    }
}
