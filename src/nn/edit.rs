//! Weight-space editing of SIRENs (SPEC §6.3): an equivariant NFN writes a change Δ to a SIREN's
//! weights; `EditRender` scales Δ per tensor (LearnedScale, one scalar per layer for weights and
//! one for biases, init 0.01), adds it to the input SIREN U, and renders U + s·Δ on an h×w grid
//! with the SIREN op, so training back-propagates a pixel loss through the rendering. Models:
//! the Monomial-NFN editor (`equiv_io_hnps`), NP (`equiv_io`) and HNP (`equiv`).

use rand::Rng;

use crate::error::{Error, Result};
use crate::nn::baseline::{PermKind, PermLinear};
use crate::nn::model::{Layer, Model};
use crate::nn::monomial::{MonomialLinear, Variant};
use crate::nn::params::{Init, ParamSet};
use crate::nn::SpaceBufs;
use crate::plan::{Activation, PlanBuilder, SirenOp};
use crate::space::InternalLayout;
use crate::spec::NetworkSpec;

/// LearnedScale, the residual U + s·Δ and the render of the edited SIRENs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EditRender {
    /// The SIRENs' architecture.
    pub spec: NetworkSpec,
    /// Render grid rows.
    pub h: usize,
    /// Render grid columns.
    pub w: usize,
    /// `scale.w{i}` and `scale.b{i}`, one value each.
    #[serde(skip)]
    pub params: ParamSet,
}

impl EditRender {
    /// Scales initialised to `init` (the reference's 0.01).
    pub fn new(spec: &NetworkSpec, h: usize, w: usize, init: f64) -> Result<Self> {
        crate::siren::widths(spec)?;
        if h * w == 0 {
            return Err(Error::Spec(format!("render grid {h}x{w} is empty")));
        }
        let mut params = ParamSet::default();
        for i in 0..spec.num_layers() {
            for kind in ["w", "b"] {
                let name = format!("scale.{kind}{i}");
                params.add_zeros(name.clone(), vec![1]);
                let t = crate::tensor::Tensor::new(vec![1], vec![init])?;
                params.set(&name, t)?;
            }
        }
        Ok(EditRender {
            spec: spec.clone(),
            h,
            w,
            params,
        })
    }

    /// Outputs per network: h·w·n_L rendered values ('ij' order, channels last).
    pub fn width(&self) -> usize {
        self.h * self.w * self.spec.n_out()
    }

    /// Appends U + s·Δ packed into SIREN rows (each tensor placed by a constant 0/1 selection
    /// GEMM, so the backward reaches Δ and s through ordinary GEMM gradients) and the render;
    /// returns the (B, h·w·n_L) output buffer.
    pub fn emit(
        &self,
        pb: &mut PlanBuilder,
        input: &SpaceBufs,
        delta: &SpaceBufs,
        batch: usize,
    ) -> Result<usize> {
        if input.channels != 1 || delta.channels != 1 {
            return Err(Error::shape(
                "edited SIREN channels (input, Δ)",
                &[1, 1],
                &[input.channels, delta.channels],
            ));
        }
        let widths = crate::siren::widths(&self.spec)?;
        let d = SirenOp::params_per_sample(&widths);
        let rows = pb.scratch(batch * d);
        let mut off = 0;
        let mut first = true;
        for (i, layer) in self.spec.layers.iter().enumerate() {
            let lay = InternalLayout::of(&self.spec, i, batch, 1);
            let (rn, sn) = lay.rs();
            // Packed column of each internal entry: W (n_out × n_in) row-major, then b.
            let w_cols: Vec<usize> = (0..rn * sn)
                .map(|e| {
                    let (r, s) = (e / sn, e % sn);
                    let (j, k) = if lay.transposed { (s, r) } else { (r, s) };
                    off + j * layer.n_in + k
                })
                .collect();
            let wn = layer.n_out * layer.n_in;
            let b_cols: Vec<usize> = (0..layer.n_out).map(|j| off + wn + j).collect();
            for (kind, cols, u, dl) in [
                ("w", w_cols, input.w[i], delta.w[i]),
                ("b", b_cols, input.b[i], delta.b[i]),
            ] {
                let len = cols.len();
                let mut sel = vec![0.0; len * d];
                for (e, &c) in cols.iter().enumerate() {
                    sel[e * d + c] = 1.0;
                }
                let sel = pb.param(sel);
                let s = pb.coef(&self.params, &format!("scale.{kind}{i}"), vec![0]);
                let scaled = pb.scratch(batch * len);
                pb.gemm(dl, s, None, scaled, batch * len, 1, 1, false);
                pb.gemm(u, sel, None, rows, batch, len, d, !first);
                pb.gemm(scaled, sel, None, rows, batch, len, d, true);
                first = false;
            }
            off += wn + layer.n_out;
        }
        let coords = pb.param(crate::siren::grid_coords(self.h, self.w));
        pb.siren(rows, coords, batch, &widths, crate::siren::OMEGA)
    }
}

/// One editor configuration (SPEC §6.3).
#[derive(Clone, Debug, PartialEq)]
pub struct InrEditorConfig {
    /// Width of the HNPS_SirenLinear front end 1 → h → 1 (no nonlinearity between), or None.
    pub front: Option<usize>,
    /// Fourier frequencies and σ.
    pub fourier: (usize, f64),
    /// IO position encoding (max_freq, bands), if any.
    pub pos_encoding: Option<(f64, usize)>,
    /// The permutation-equivariant layers (the last one maps to 1 channel: Δ).
    pub base: PermKind,
    /// Hidden widths of those layers.
    pub widths: Vec<usize>,
    /// LearnedScale's initial value.
    pub scale_init: f64,
    /// Render grid (h, w).
    pub grid: (usize, usize),
}

impl InrEditorConfig {
    /// The paper's Monomial-NFN editor (`equiv_io_hnps`) on an h×w grid.
    pub fn paper_monomial(grid: (usize, usize)) -> Self {
        InrEditorConfig {
            front: Some(16),
            fourier: (128, 3.0),
            pos_encoding: Some((3.0, 3)),
            base: PermKind::Np { io_embed: false },
            widths: vec![128; 3],
            scale_init: 0.01,
            grid,
        }
    }

    /// The NP baseline (`equiv_io`): the same without the front end.
    pub fn paper_np(grid: (usize, usize)) -> Self {
        InrEditorConfig {
            front: None,
            ..Self::paper_monomial(grid)
        }
    }

    /// The HNP baseline (`equiv`): HNP layers, no front end, no position encoding.
    pub fn paper_hnp(grid: (usize, usize)) -> Self {
        InrEditorConfig {
            front: None,
            pos_encoding: None,
            base: PermKind::Hnp,
            ..Self::paper_monomial(grid)
        }
    }

    /// The equivariant body alone (input U, output Δ with one channel).
    pub fn body(&self, spec: &NetworkSpec, rng: &mut impl Rng) -> Result<Vec<Layer>> {
        let mut layers = Vec::new();
        let mut c = 1;
        if let Some(h) = self.front {
            for c_out in [h, 1] {
                let l =
                    MonomialLinear::new(spec, c, c_out, Variant::Sign, Init::XavierNormal, rng)?;
                layers.push(Layer::Monomial(l));
                c = c_out;
            }
        }
        c = crate::nn::inr::push_encodings(&mut layers, c, self.fourier, self.pos_encoding, rng)?;
        for &w in &self.widths {
            layers.push(Layer::Perm(PermLinear::new(spec, c, w, self.base, rng)?));
            layers.push(Layer::Activation(Activation::Relu));
            c = w;
        }
        layers.push(Layer::Perm(PermLinear::new(spec, c, 1, self.base, rng)?));
        Ok(layers)
    }

    /// The editor: body, then LearnedScale, U + s·Δ and the render.
    pub fn build(&self, spec: &NetworkSpec, rng: &mut impl Rng) -> Result<Model> {
        let mut layers = self.body(spec, rng)?;
        let (h, w) = self.grid;
        layers.push(Layer::EditRender(EditRender::new(
            spec,
            h,
            w,
            self.scale_init,
        )?));
        Ok(Model::new(spec.clone(), 1, layers))
    }
}

impl EditRender {
    /// U + s·Δ on the host, in the reference layout (what the render draws).
    pub fn apply(
        &self,
        u: &crate::space::WeightSpace,
        delta: &crate::space::WeightSpace,
    ) -> Result<crate::space::WeightSpace> {
        let mut out = u.clone();
        for i in 0..self.spec.num_layers() {
            for (kind, t, d) in [
                ("w", &mut out.weights[i], &delta.weights[i]),
                ("b", &mut out.biases[i], &delta.biases[i]),
            ] {
                if t.shape != d.shape {
                    return Err(Error::shape("Δ tensor", &t.shape, &d.shape));
                }
                let s = self.params.expect(&format!("scale.{kind}{i}"))?.data[0];
                t.data
                    .iter_mut()
                    .zip(&d.data)
                    .for_each(|(a, b)| *a += s * b);
            }
        }
        Ok(out)
    }
}

/// The edited networks U + s·Δ of an editor model (body, then [`EditRender`]).
pub fn edited_networks(
    model: &Model,
    backend: &dyn crate::backend::Backend,
    u: &crate::space::WeightSpace,
) -> Result<crate::space::WeightSpace> {
    let (last, body) = model
        .layers()
        .split_last()
        .ok_or_else(|| Error::Spec("an editor has layers".into()))?;
    let Layer::EditRender(edit) = last else {
        return Err(Error::Spec("an editor ends in an EditRender layer".into()));
    };
    let body = Model::new(model.spec().clone(), 1, body.to_vec());
    let delta = body.forward(backend, u)?.space()?;
    body.release(backend);
    edit.apply(u, &delta)
}
