//! `NetworkSpec`: the shapes of the networks an NFN reads (SPEC §1).

use crate::error::{Error, Result};

/// Activation of the *input* networks; it decides which symmetry group they have (SPEC §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NetActivation {
    /// ReLU: positive scaling + permutation.
    Relu,
    /// tanh: sign flips + permutation.
    Tanh,
    /// sin (SIRENs): sign flips + permutation.
    Sin,
}

/// One weight layer of an input network: a dense layer (kh = kw = 1) or a conv layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerShape {
    /// Output neurons (rows) n_i.
    pub n_out: usize,
    /// Input neurons (columns) n_{i-1}.
    pub n_in: usize,
    /// Kernel height (1 for dense).
    pub kh: usize,
    /// Kernel width (1 for dense).
    pub kw: usize,
    /// True for a conv layer (weights carry kernel axes, even 1×1 ones).
    pub conv: bool,
}

/// `dense IN -> OUT` or `conv IN -> OUT, KH×KW kernel`, for messages.
impl std::fmt::Display for LayerShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.conv { "conv" } else { "dense" };
        write!(f, "{kind} {} -> {}", self.n_in, self.n_out)?;
        if self.conv {
            write!(f, ", {}×{} kernel", self.kh, self.kw)?;
        }
        Ok(())
    }
}

impl LayerShape {
    /// A dense layer `n_in -> n_out`.
    pub fn dense(n_out: usize, n_in: usize) -> Self {
        LayerShape {
            n_out,
            n_in,
            kh: 1,
            kw: 1,
            conv: false,
        }
    }

    /// A conv layer with a kh×kw kernel.
    pub fn conv(n_out: usize, n_in: usize, kh: usize, kw: usize) -> Self {
        LayerShape {
            n_out,
            n_in,
            kh,
            kw,
            conv: true,
        }
    }

    /// f_i: the number of kernel positions (1 for dense).
    pub fn f(&self) -> usize {
        self.kh * self.kw
    }

    /// Reference-layout weight shape without batch and channel axes.
    pub fn weight_dims(&self) -> Vec<usize> {
        if self.conv {
            vec![self.n_out, self.n_in, self.kh, self.kw]
        } else {
            vec![self.n_out, self.n_in]
        }
    }
}

/// The shapes of an input network: its weight layers, in order, and its activation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetworkSpec {
    /// Weight layers 1..L.
    pub layers: Vec<LayerShape>,
    /// The input network's hidden activation.
    pub activation: NetActivation,
}

impl NetworkSpec {
    /// The layers in words (`dense 16 -> 10; ...`), for messages.
    pub fn layers_in_words(&self) -> String {
        let layers: Vec<String> = self.layers.iter().map(|l| l.to_string()).collect();
        layers.join("; ")
    }

    /// Builds and validates a spec: widths must chain and every size must be nonzero.
    pub fn new(layers: Vec<LayerShape>, activation: NetActivation) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::Spec("a network needs at least one layer".into()));
        }
        for (i, l) in layers.iter().enumerate() {
            if l.n_out == 0 || l.n_in == 0 || l.kh == 0 || l.kw == 0 {
                return Err(Error::Spec(format!("layer {i} has a zero size: {l}")));
            }
            if i > 0 && layers[i - 1].n_out != l.n_in {
                return Err(Error::Spec(format!(
                    "layer {i} takes {} inputs but layer {} has {} outputs",
                    l.n_in,
                    i - 1,
                    layers[i - 1].n_out
                )));
            }
        }
        Ok(NetworkSpec { layers, activation })
    }

    /// An MLP through the given widths, e.g. `[2, 8, 8, 1]`.
    pub fn mlp(widths: &[usize], activation: NetActivation) -> Result<Self> {
        if widths.len() < 2 {
            return Err(Error::Spec(format!(
                "an MLP needs at least two widths, got {widths:?}"
            )));
        }
        let layers = widths
            .windows(2)
            .map(|w| LayerShape::dense(w[1], w[0]))
            .collect();
        Self::new(layers, activation)
    }

    /// The Small CNN Zoo architecture (SPEC §1.4): three 3×3 convs of 16 channels, dense 16 -> 10.
    pub fn cnn_zoo(activation: NetActivation) -> Self {
        NetworkSpec {
            layers: vec![
                LayerShape::conv(16, 1, 3, 3),
                LayerShape::conv(16, 16, 3, 3),
                LayerShape::conv(16, 16, 3, 3),
                LayerShape::dense(10, 16),
            ],
            activation,
        }
    }

    /// L, the number of weight layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// n_0, the number of network inputs.
    pub fn n_in(&self) -> usize {
        self.layers[0].n_in
    }

    /// n_L, the number of network outputs.
    pub fn n_out(&self) -> usize {
        self.layers[self.layers.len() - 1].n_out
    }

    /// Errors unless the spec has at least two layers (every NFN layer and pool needs a hidden layer).
    pub fn require_hidden(&self) -> Result<()> {
        if self.layers.len() < 2 {
            return Err(Error::Spec(format!(
                "NFN layers need L >= 2 weight layers (SPEC §3.4), got L = {}",
                self.layers.len()
            )));
        }
        Ok(())
    }
}
