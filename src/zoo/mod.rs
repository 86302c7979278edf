//! Weight-space datasets: the Small CNN Zoo format (read and write), an offline zoo generator,
//! group augmentation, symmetry diagnosis and SIREN INR sets.

pub mod augment;
pub mod dataset;
pub mod generate;
pub mod inr;
pub mod layout;
pub mod metrics;
pub mod net;
pub mod netfile;
pub mod npy;
pub mod symmetry;
pub mod task;

pub use augment::Augment;
pub use dataset::{Splits, StepFilter, Zoo, ZooFilter};
pub use generate::{generate, Arch, GenerateConfig};
pub use layout::{Layout, LayoutEntry};
pub use metrics::Table;
pub use netfile::NetworkFile;

use crate::space::WeightSpace;
use crate::tensor::Tensor;

/// Batch item `b` (< batch) of `ws` as a weight space of batch 1.
pub fn batch_item(ws: &WeightSpace, b: usize) -> WeightSpace {
    let one = |t: &Tensor| {
        let n = t.len() / t.shape[0].max(1);
        let mut shape = t.shape.clone();
        shape[0] = 1;
        Tensor {
            shape,
            data: t.data[b * n..(b + 1) * n].to_vec(),
        }
    };
    WeightSpace {
        weights: ws.weights.iter().map(one).collect(),
        biases: ws.biases.iter().map(one).collect(),
    }
}
