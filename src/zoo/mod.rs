//! Weight-space datasets: the Small CNN Zoo format (read and write), an offline zoo generator,
//! group augmentation, symmetry diagnosis and SIREN INR sets.

pub mod dataset;
pub mod generate;
pub mod layout;
pub mod metrics;
pub mod net;
pub mod npy;
pub mod task;

pub use dataset::{Splits, StepFilter, Zoo, ZooFilter};
pub use generate::{generate, Arch, GenerateConfig};
pub use layout::{Layout, LayoutEntry};
pub use metrics::Table;
