//! # monomial-nfn
//!
//! A GPU (wgpu/WGSL) and CPU engine for Monomial-NFNs: neural functional networks that read the
//! weights of other networks and are equivariant to hidden-neuron permutations, positive scalings
//! and sign flips (Tran et al., NeurIPS 2024). The math follows `SPEC.md`; every layer lowers to a
//! [`plan::Plan`] of GEMM, activation and pool ops that the CPU backend (f32/f64) and the GPU
//! backend (wgpu, f32) execute alike.
//!
//! ```
//! use monomial_nfn::{Cpu, GroupElement, Model, NetActivation, ScaleRange, Symmetry, WeightSpace};
//! use rand::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let model = Model::monomial_cnn_zoo(NetActivation::Relu, &mut rng).unwrap();
//! assert_eq!(model.num_params(), 254_619);
//! let spec = model.spec().clone();
//! let zoo = WeightSpace::random(&spec, 2, 1, &mut rng);
//! let cpu = Cpu::<f64>::new();
//! let y = model.forward(&cpu, &zoo).unwrap().features().unwrap();
//! // Rescaling and permuting hidden neurons does not change the prediction.
//! let g = GroupElement::sample(&spec, Symmetry::PositiveScale, ScaleRange::default(), &mut rng);
//! let yg = model.forward(&cpu, &g.act(&spec, &zoo).unwrap()).unwrap().features().unwrap();
//! assert!((y.data[0] - yg.data[0]).abs() < 1e-9);
//! ```

pub mod autodiff;
pub mod backend;
pub mod checkpoint;
pub mod classify;
pub mod editing;
pub mod error;
pub mod experiment;
pub mod golden;
pub mod group;
pub mod io;
pub mod manifest;
pub mod metrics;
pub mod nn;
pub mod picture;
pub mod plan;
pub mod plot;
pub mod predict;
pub mod profiling;
pub mod progress;
pub mod scalar;
pub mod siren;
pub mod space;
pub mod spec;
pub mod standardize;
pub mod tensor;
pub mod torchfile;
pub mod train;
pub mod zoo;

pub use backend::cpu::Cpu;
pub use backend::Backend;
pub use error::{DatasetProblem, Error, Result, TorchProblem};
pub use group::{GroupElement, ScaleRange, Symmetry};
pub use nn::baseline::{PermKind, PermLinear};
pub use nn::model::{Gradients, Layer, Model, Output};
pub use nn::monomial::{MonomialLinear, Variant};
pub use nn::params::Init;
pub use nn::pool::{InvariantPool, PoolAxes, PoolMode};
pub use plan::Activation;
pub use scalar::Scalar;
pub use space::WeightSpace;
pub use spec::{LayerShape, NetActivation, NetworkSpec};
pub use tensor::Tensor;
pub use torchfile::{infer_chain, StateDict};
