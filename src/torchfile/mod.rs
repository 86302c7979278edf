//! PyTorch state dicts read in Rust, without Python (issue 14): `.pth`/`.pt` files written by
//! `torch.save` (its zip format: a pickled index and raw little-endian storages) and
//! safetensors state dicts, as named tensors ([`StateDict`]), and the chain of dense/conv
//! layers they describe ([`infer_chain`]); a file or a folder of them (the published SIREN data
//! sets' layout) becomes a [`crate::zoo::NetworkFile`] ([`read_networks`]); a network is written
//! back as a safetensors state dict with its original names ([`Chain::write_state_dict`]).
//!
//! The pickle is run by a small whitelisting virtual machine (`unpickle`): plain values and
//! containers, storages as persistent ids, and only the globals that rebuild tensors
//! (`torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`, the `torch.*Storage` types) and
//! `collections.OrderedDict`. Any other global (`os.system`, `builtins.eval`, a model class) or
//! opcode is an [`crate::Error::Torch`] naming it; nothing a pickle asks for is executed. Sizes,
//! offsets and strides are checked against the bytes actually present before anything is
//! allocated. Float32, float64, float16 and bfloat16 storages convert to f64 exactly (integer
//! and bool buffers are read too; [`infer_chain`] refuses them); views with any non-negative
//! strides and storage offsets are materialised row-major. The pickle's root must be a dict of
//! tensors, or a training checkpoint holding one under `state_dict` or `model_state_dict`.
//! Not read: the pre-1.6 (non-zip) format, big-endian archives, compressed entries, whole
//! pickled modules (`torch.save(model)`: their class is not an allowed global) and TorchScript.

mod archive;
mod cache;
mod chain;
mod dtype;
mod folder;
mod state_dict;
mod targets;
mod unpickle;
mod write;

pub use chain::{infer_chain, Chain};
pub use dtype::Dtype;
pub use folder::{is_state_dict_source, read_networks, read_set, ReadOptions, StateDictSet};
pub use state_dict::{Entry, StateDict};
pub use targets::{TargetList, Targets};
