//! The network a state dict describes: its tensors grouped by module (`fc1.weight` and
//! `fc1.bias` are module `fc1`), ordered as the file (or an explicit list) says, and checked to
//! form a chain of dense layers (weights (out, in)) and conv layers (weights (out, in, kh, kw))
//! whose widths connect. Anything else (a normalisation layer, a branch) is refused with the
//! names found.

use std::collections::HashMap;
use std::path::Path;

use super::state_dict::StateDict;
use crate::error::{Error, Result, TorchProblem};
use crate::space::WeightSpace;
use crate::spec::{LayerShape, NetActivation, NetworkSpec};
use crate::tensor::Tensor;

/// A state dict read as a network: its spec, its weights as a weight space of batch 1 and one
/// channel, and the module name of every layer (for messages and for writing back).
#[derive(Clone, Debug, PartialEq)]
pub struct Chain {
    /// The layers, in order, and the hidden activation the caller named.
    pub spec: NetworkSpec,
    /// The weights; a layer without a bias gets zeros.
    pub network: WeightSpace,
    /// Module name per layer (`fc1`, `0`, `net.0.linear`).
    pub modules: Vec<String>,
    /// Whether each layer had a bias in the file.
    pub has_bias: Vec<bool>,
}

/// One module's parameters.
struct Module<'a> {
    name: &'a str,
    weight: Option<&'a Tensor>,
    bias: Option<&'a Tensor>,
}

/// Reads `sd` as a chain of dense/conv layers with hidden activation `activation`. `layers`,
/// when given, names the modules in forward order (for state dicts whose order says nothing);
/// otherwise the state dict's order is used. `path` names the file in errors.
///
/// ```
/// use monomial_nfn::torchfile::{infer_chain, StateDict};
/// use monomial_nfn::NetActivation;
/// let path = std::path::Path::new("tests/fixtures/pth/cnn_sequential.pth");
/// let sd = StateDict::read(path).unwrap();
/// let chain = infer_chain(&sd, None, NetActivation::Relu, path).unwrap();
/// assert_eq!(chain.modules, ["0", "2", "6"]);
/// assert_eq!(chain.spec.layers_in_words(), "conv 1 -> 4, 3×3 kernel; conv 4 -> 4, 3×3 kernel; dense 4 -> 3");
/// ```
pub fn infer_chain(
    sd: &StateDict,
    layers: Option<&[&str]>,
    activation: NetActivation,
    path: &Path,
) -> Result<Chain> {
    let refuse = |why: String| {
        Error::torch(
            path,
            TorchProblem::NotAChain(format!("{why}; tensors found: {}", sd.describe())),
        )
    };
    let mut modules: Vec<Module> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for e in &sd.entries {
        let (module, param) = e.name.rsplit_once('.').unwrap_or(("", e.name.as_str()));
        if !e.dtype.is_float() || !matches!(param, "weight" | "bias") {
            return Err(refuse(format!(
                "{} is not a dense/conv weight or bias (a normalisation layer or buffer?)",
                e.name
            )));
        }
        let i = *index.entry(module).or_insert_with(|| {
            modules.push(Module {
                name: module,
                weight: None,
                bias: None,
            });
            modules.len() - 1
        });
        if param == "weight" {
            modules[i].weight = Some(&e.tensor);
        } else {
            modules[i].bias = Some(&e.tensor);
        }
    }
    if let Some(order) = layers {
        let mut ordered = Vec::with_capacity(order.len());
        for name in order {
            let Some(i) = modules.iter().position(|m| m.name == *name) else {
                return Err(refuse(format!(
                    "the layer order names {name:?}, which has no tensors"
                )));
            };
            ordered.push(modules.remove(i));
        }
        if let Some(m) = modules.first() {
            return Err(refuse(format!(
                "module {:?} is not in the layer order {order:?}",
                m.name
            )));
        }
        modules = ordered;
    }
    if modules.is_empty() {
        return Err(refuse("the state dict holds no tensor".into()));
    }
    let mut shapes = Vec::new();
    let (mut weights, mut biases, mut has_bias) = (Vec::new(), Vec::new(), Vec::new());
    for m in &modules {
        let Some(w) = m.weight else {
            return Err(refuse(format!(
                "module {:?} has a bias but no weight",
                m.name
            )));
        };
        let layer = match w.shape[..] {
            [o, i] => LayerShape::dense(o, i),
            [o, i, kh, kw] => LayerShape::conv(o, i, kh, kw),
            _ => {
                return Err(refuse(format!(
                    "module {:?} has a weight of shape {:?}: not dense (out, in) or 2-D conv \
                     (out, in, kh, kw), a normalisation layer?",
                    m.name, w.shape
                )))
            }
        };
        let bias = match m.bias {
            Some(b) if b.shape == [layer.n_out] => b.data.clone(),
            Some(b) => {
                return Err(refuse(format!(
                    "module {:?} has a bias of shape {:?} for {} outputs",
                    m.name, b.shape, layer.n_out
                )))
            }
            None => vec![0.0; layer.n_out],
        };
        if let Some(prev) = shapes.last().copied().map(|p: LayerShape| p.n_out) {
            if prev != layer.n_in {
                return Err(refuse(format!(
                    "module {:?} takes {} inputs but the module before it has {prev} outputs \
                     (a branch, or an order the names do not say: pass the layer order)",
                    m.name, layer.n_in
                )));
            }
        }
        let mut ws = vec![1, 1];
        ws.extend(layer.weight_dims());
        weights.push(Tensor::new(ws, w.data.clone())?);
        biases.push(Tensor::new(vec![1, 1, layer.n_out], bias)?);
        has_bias.push(m.bias.is_some());
        shapes.push(layer);
    }
    let spec = NetworkSpec::new(shapes, activation).map_err(|e| refuse(e.to_string()))?;
    let network = WeightSpace::new(&spec, weights, biases)
        .map_err(|e| Error::torch(path, TorchProblem::Malformed(e.to_string())))?;
    Ok(Chain {
        spec,
        network,
        modules: modules.iter().map(|m| m.name.to_string()).collect(),
        has_bias,
    })
}
