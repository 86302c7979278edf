//! Waves: runs of consecutive units (an op, a row-blocked chain, a group of Adam updates) that
//! write nothing another unit of the run reads or writes, run side by side on the thread pool
//! (DESIGN §4b). At batch 8 most ops are too small to split across two threads, so one thread
//! used to wait while the other ran them. Each unit's arithmetic is unchanged, so the bits are
//! those of the op-by-op order.

use std::collections::HashMap;
use std::ops::{Index, IndexMut};

use crate::plan::BufId;

/// The plan's buffers as ops read them: the whole list, or one unit's [`View`] in a wave.
pub trait Bufs<T>: Index<BufId, Output = Vec<T>> + Sync {}
impl<T, B: Index<BufId, Output = Vec<T>> + Sync + ?Sized> Bufs<T> for B {}

/// What the executor runs as one piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// One op on its own (its index).
    Op(usize),
    /// A row-blocked chain (its index in the plan's chains).
    Chain(usize),
    /// Adam ops run as one parallel loop (their indices).
    Adam(Vec<usize>),
    /// A pool gradient (first index) applying an activation gradient as it writes
    /// (`fuse::Role::PoolGradAct`).
    PoolGradAct(usize, usize),
}

/// A unit with the buffers it reads and writes.
#[derive(Debug, Clone)]
pub struct Unit {
    /// What runs.
    pub kind: Kind,
    /// Buffers it reads (sorted, no repeats).
    pub reads: Vec<BufId>,
    /// Buffers it writes (sorted, no repeats).
    pub writes: Vec<BufId>,
}

impl Unit {
    /// A unit reading and writing the given buffers.
    pub fn new(kind: Kind, mut reads: Vec<BufId>, mut writes: Vec<BufId>) -> Self {
        for v in [&mut reads, &mut writes] {
            v.sort_unstable();
            v.dedup();
        }
        Unit {
            kind,
            reads,
            writes,
        }
    }
}

/// Splits units (in execution order) into waves, each unit in the earliest wave after every
/// earlier unit it conflicts with: after the last writer of each buffer it reads or writes, and
/// after the last reader of each buffer it writes. Conflicting units keep their order, so each
/// reads what the op-by-op order would give it; independent ones (the parameter gradients of
/// different layers, the pool gradients of different weight tensors) share a wave.
pub fn waves(units: Vec<Unit>) -> Vec<Vec<Unit>> {
    let mut out: Vec<Vec<Unit>> = Vec::new();
    // Per buffer, the last wave that writes it and the last wave that reads it.
    let mut written: HashMap<BufId, usize> = HashMap::new();
    let mut read: HashMap<BufId, usize> = HashMap::new();
    for unit in units {
        let after = |map: &HashMap<BufId, usize>, ids: &[BufId]| {
            ids.iter()
                .filter_map(|id| map.get(id).map(|&w| w + 1))
                .max()
        };
        let wave = [
            after(&written, &unit.reads),
            after(&written, &unit.writes),
            after(&read, &unit.writes),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
        for &id in &unit.writes {
            written.insert(id, wave);
        }
        for &id in &unit.reads {
            let last = read.entry(id).or_insert(wave);
            *last = (*last).max(wave);
        }
        if wave == out.len() {
            out.push(Vec::new());
        }
        out[wave].push(unit);
    }
    out
}

/// One unit's access to the plan's buffers during a wave: the buffers it writes are its own
/// (moved out of the shared list for the wave), the others are read from the shared list.
/// Touching a buffer the unit did not declare panics: that would be a bug in an op's
/// `reads`/`writes_all`, which the schedule trusts.
pub struct View<'a, T> {
    shared: &'a [Vec<T>],
    reads: &'a [BufId],
    own: &'a mut [(BufId, Vec<T>)],
}

impl<'a, T> View<'a, T> {
    /// A view over `shared` in which `own` (the unit's written buffers) replace their entries.
    pub fn new(shared: &'a [Vec<T>], unit: &'a Unit, own: &'a mut [(BufId, Vec<T>)]) -> Self {
        View {
            shared,
            reads: &unit.reads,
            own,
        }
    }
}

impl<T> Index<BufId> for View<'_, T> {
    type Output = Vec<T>;

    fn index(&self, id: BufId) -> &Vec<T> {
        if let Some((_, v)) = self.own.iter().find(|(i, _)| *i == id) {
            return v;
        }
        assert!(
            self.reads.binary_search(&id).is_ok(),
            "buffer {id} is read by an op that does not declare it"
        );
        &self.shared[id]
    }
}

impl<T> IndexMut<BufId> for View<'_, T> {
    fn index_mut(&mut self, id: BufId) -> &mut Vec<T> {
        match self.own.iter_mut().find(|(i, _)| *i == id) {
            Some((_, v)) => v,
            None => panic!("buffer {id} is written by an op that does not declare it"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(i: usize, reads: &[BufId], writes: &[BufId]) -> Unit {
        Unit::new(Kind::Op(i), reads.to_vec(), writes.to_vec())
    }

    /// Each unit joins the earliest wave after the units whose output it reads, whose input it
    /// overwrites, or whose output it overwrites or accumulates into.
    #[test]
    fn units_join_the_earliest_wave_after_their_conflicts() {
        let units = vec![
            unit(0, &[0, 1], &[2]),
            unit(1, &[0, 3], &[4]),    // independent of 0: wave 0
            unit(2, &[2], &[5]),       // reads 0's output: wave 1
            unit(3, &[6], &[7]),       // independent of all before: wave 0
            unit(4, &[8], &[6]),       // overwrites what 3 reads: wave 1
            unit(5, &[9, 10], &[10]),  // accumulates: wave 0
            unit(6, &[11, 10], &[10]), // accumulates into the same buffer: wave 1
            unit(7, &[5], &[12]),      // reads 2's output: wave 2
            unit(8, &[12], &[0]),      // reads 7's output, overwrites what 0 and 1 read: wave 3
        ];
        let kinds: Vec<Vec<Kind>> = waves(units)
            .into_iter()
            .map(|w| w.into_iter().map(|u| u.kind).collect())
            .collect();
        let ops = |ids: &[usize]| ids.iter().map(|&i| Kind::Op(i)).collect::<Vec<_>>();
        assert_eq!(
            kinds,
            vec![ops(&[0, 1, 3, 5]), ops(&[2, 4, 6]), ops(&[7]), ops(&[8])]
        );
    }

    /// A view reads its own buffers first, shared ones it declared, and refuses the rest.
    #[test]
    fn a_view_serves_only_declared_buffers() {
        let shared = vec![vec![1.0], vec![2.0], Vec::new()];
        let u = unit(0, &[0], &[2]);
        let mut own = vec![(2, vec![3.0])];
        let mut view = View::new(&shared, &u, &mut own);
        assert_eq!(view[0], vec![1.0]);
        view[2].push(4.0);
        assert_eq!(view[2], vec![3.0, 4.0]);
        let undeclared = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| view[1][0]));
        assert!(undeclared.is_err());
    }
}
