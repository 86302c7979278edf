//! Symmetry diagnosis: which group actions leave a given network's function unchanged (SPEC §2.3).
//! The network runs in f64 on random inputs before and after random group elements of each kind;
//! the largest relative output change per kind tells which symmetries are exact.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::layout::Layout;
use super::net::Net;
use crate::error::Result;
use crate::group::{GroupElement, ScaleRange, Symmetry};
use crate::space::WeightSpace;
use crate::spec::NetworkSpec;

/// Relative output change at or below which a symmetry counts as exact (f64 rounding is ~1e-15;
/// a broken symmetry changes outputs by order one).
pub const EXACT_TOLERANCE: f64 = 1e-9;

/// The outcome for one kind of group element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KindReport {
    /// The kind sampled.
    pub symmetry: Symmetry,
    /// max over elements of max |f_g(x) − f(x)| / max |f(x)|.
    pub max_relative_change: f64,
}

impl KindReport {
    /// True when the network's function is unchanged by this kind (up to rounding).
    pub fn exact(&self) -> bool {
        self.max_relative_change <= EXACT_TOLERANCE
    }
}

/// Diagnoses one network (batch item 0 of `ws`): `elements` random elements of each kind
/// (positive factors log-uniform in [1e-4, 1e4]), each compared on `inputs` random N(0, 1)
/// inputs of `side`×`side` pixels (conv nets) or n_0 values (MLPs).
pub fn diagnose(
    spec: &NetworkSpec,
    ws: &WeightSpace,
    side: usize,
    elements: usize,
    inputs: usize,
    seed: u64,
) -> Result<Vec<KindReport>> {
    ws.validate(spec, Some(1))?;
    let layout = Layout::for_spec(spec);
    let net = Net::new(&layout, side, side)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x: Vec<f64> = (0..inputs * net.input_len())
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let run = |ws: &WeightSpace| -> Result<Vec<f64>> {
        let rows = layout.to_rows::<f64>(ws)?;
        Ok(net
            .forward(&rows[..layout.row_len()], &x, inputs, None, false)
            .logits)
    };
    let y = run(ws)?;
    let scale = y
        .iter()
        .fold(0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    let kinds = [
        Symmetry::Permutation,
        Symmetry::PositiveScale,
        Symmetry::Sign,
        Symmetry::Monomial,
    ];
    kinds
        .into_iter()
        .map(|symmetry| {
            let mut worst = 0f64;
            for _ in 0..elements {
                let g = GroupElement::sample(spec, symmetry, ScaleRange::default(), &mut rng);
                let yg = run(&g.act(spec, ws)?)?;
                let d = y
                    .iter()
                    .zip(&yg)
                    .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
                worst = worst.max(d / scale);
            }
            Ok(KindReport {
                symmetry,
                max_relative_change: worst,
            })
        })
        .collect()
}
