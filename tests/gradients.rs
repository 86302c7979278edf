//! Backward passes (SPEC §8) on every backend (`on_every_backend!`: `NAME::cpu_f64`,
//! `NAME::cpu_f32`, `NAME::gpu`): CPU f64 gradients of every layer kind and loss match central
//! finite differences, the f32 backends (CPU f32, GPU) match CPU f64 on the same models, and
//! gradients of invariant losses transform under the group as the chain rule says (SPEC §10).
//!
//! Tolerances. Central differences with step h have truncation error O(h²·|L'''|) and rounding
//! error O(ε·|L|/h); with h = 1e-5 on O(1) losses both are ≲ 1e-10, so we require
//! |fd − analytic| ≤ 1e-6 · M, with M the largest |gradient| of the same group (parameters of one
//! layer, or the input), as the goldens do (a per-entry relative error is unsound for entries
//! that are ~0). Smooth activations (tanh, sin, sigmoid) keep the loss differentiable at every
//! probed point; ReLU kinks are covered by the goldens instead.
//!
//! f32 backends are compared entry by entry with the f64 autodiff (itself checked against
//! finite differences by the `cpu_f64` run): |f32 − f64| ≤ 1e-4 · M per group. Each gradient entry
//! is a chain of sums of K ≲ 300 products through a few layers, so f32 rounding (ε = 6e-8) gives
//! K·ε ≈ 2e-5 of the group's scale at worst; 1e-4 is the bound the GPU-vs-CPU suite uses.

mod common;

use common::{Precision, TestBackend};
use monomial_nfn::nn::head::Dense;
use monomial_nfn::plan::LossKind;
use monomial_nfn::{
    Activation, Backend, Cpu, Gradients, GroupElement, Init, InvariantPool, Layer, LayerShape,
    Model, MonomialLinear, NetActivation, NetworkSpec, PermKind, PermLinear, PoolAxes, PoolMode,
    ScaleRange, Symmetry, Tensor, Variant, WeightSpace,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn mlp(widths: &[usize], act: NetActivation) -> NetworkSpec {
    NetworkSpec::mlp(widths, act).unwrap()
}

/// Mixed kernel sizes, two input channels, a conv last layer.
fn small_cnn() -> NetworkSpec {
    NetworkSpec::new(
        vec![
            LayerShape::conv(3, 2, 3, 3),
            LayerShape::conv(4, 3, 1, 3),
            LayerShape::dense(2, 4),
        ],
        NetActivation::Tanh,
    )
    .unwrap()
}

fn specs() -> Vec<(&'static str, NetworkSpec)> {
    vec![
        ("mlp L=2", mlp(&[3, 4, 2], NetActivation::Tanh)),
        ("mlp L=3", mlp(&[2, 4, 3, 2], NetActivation::Tanh)),
        ("cnn L=3", small_cnn()),
    ]
}

/// Every equivariant layer kind, c -> o channels, coefficients drawn U(±1).
fn equivariant_layers(spec: &NetworkSpec, c: usize, o: usize, r: &mut ChaCha8Rng) -> Vec<Layer> {
    let mut v = vec![
        Layer::Monomial(
            MonomialLinear::new(spec, c, o, Variant::Scale, Init::XavierNormal, r).unwrap(),
        ),
        Layer::Monomial(
            MonomialLinear::new(spec, c, o, Variant::Sign, Init::XavierNormal, r).unwrap(),
        ),
        Layer::Perm(PermLinear::new(spec, c, o, PermKind::Np { io_embed: true }, r).unwrap()),
        Layer::Perm(PermLinear::new(spec, c, o, PermKind::Hnp, r).unwrap()),
    ];
    for layer in &mut v {
        randomize(layer, r);
    }
    v
}

/// Draws every coefficient of a layer U(±1) (so that no term is accidentally zero).
fn randomize(layer: &mut Layer, r: &mut ChaCha8Rng) {
    let Some(params) = monomial_nfn::nn::model::layer_params_mut(layer) else {
        return;
    };
    let names: Vec<(String, Vec<usize>)> = params
        .iter()
        .map(|(n, t)| (n.to_string(), t.shape.clone()))
        .collect();
    for (n, shape) in names {
        let len = shape.iter().product();
        let data = (0..len).map(|_| r.random_range(-1.0..1.0)).collect();
        params.set(&n, Tensor::new(shape, data).unwrap()).unwrap();
    }
}

/// Scales a weight space (keeps tanh away from saturation).
fn scaled(mut u: WeightSpace, s: f64) -> WeightSpace {
    for t in u.weights.iter_mut().chain(u.biases.iter_mut()) {
        t.data.iter_mut().for_each(|v| *v *= s);
    }
    u
}

fn loss_of(m: &Model, u: &WeightSpace, target: Option<&Tensor>, kind: LossKind) -> f64 {
    m.gradients(&Cpu::<f64>::new(), u, target, kind)
        .unwrap()
        .loss
}

fn max_abs(ts: &[&Tensor]) -> f64 {
    ts.iter()
        .flat_map(|t| t.data.iter())
        .fold(0.0f64, |m, v| m.max(v.abs()))
}

/// f32 gradients against the f64 autodiff, relative to each group's largest entry (module docs).
const F32_GRAD_TOL: f64 = 1e-4;
/// f32 losses against the f64 one, relative to max(1, |loss|).
const F32_LOSS_TOL: f64 = 1e-5;

/// Checks a model's gradients on `b`: on f64, sampled coordinates against central differences;
/// on f32, every entry against the f64 CPU autodiff.
fn check_grads(
    b: &TestBackend,
    name: &str,
    m: &Model,
    u: &WeightSpace,
    target: Option<&Tensor>,
    kind: LossKind,
) {
    if b.precision == Precision::F64 {
        return check_fd(b.get(), name, m, u, target, kind);
    }
    let got = m.gradients(b.get(), u, target, kind).unwrap();
    let want = m.gradients(&Cpu::<f64>::new(), u, target, kind).unwrap();
    assert!(
        (got.loss - want.loss).abs() <= F32_LOSS_TOL * want.loss.abs().max(1.0),
        "{name} on {}: loss {} vs f64 {}",
        b.get().describe(),
        got.loss,
        want.loss
    );
    let groups = |g: &Gradients| -> Vec<Vec<Tensor>> {
        let input = g.input.weights.iter().chain(&g.input.biases).cloned();
        let params = g
            .params
            .iter()
            .map(|l| l.iter().map(|(_, t)| t.clone()).collect());
        std::iter::once(input.collect()).chain(params).collect()
    };
    for (k, (a, w)) in groups(&got).iter().zip(&groups(&want)).enumerate() {
        let a: Vec<&Tensor> = a.iter().collect();
        let w: Vec<&Tensor> = w.iter().collect();
        let e = rel_err(&a, &w);
        assert!(
            e <= F32_GRAD_TOL,
            "{name} on {}: group {k} (0: input, then layers) differs from f64 by {e:.2e} of its \
             largest entry",
            b.get().describe()
        );
    }
}

/// Checks sampled coordinates of every parameter and input gradient (from `backend`, f64)
/// against central differences of the CPU f64 loss.
fn check_fd(
    backend: &dyn Backend,
    name: &str,
    m: &Model,
    u: &WeightSpace,
    target: Option<&Tensor>,
    kind: LossKind,
) {
    const H: f64 = 1e-5;
    let g: Gradients = m.gradients(backend, u, target, kind).unwrap();
    let mut r = rng(99);
    // Input gradient.
    let inputs: Vec<&Tensor> = g.input.weights.iter().chain(&g.input.biases).collect();
    let m_in = max_abs(&inputs);
    assert!(m_in > 0.0, "{name}: zero input gradient");
    let l = u.weights.len();
    for (k, an_t) in inputs.iter().enumerate() {
        for _ in 0..4 {
            let len = if k < l {
                u.weights[k].len()
            } else {
                u.biases[k - l].len()
            };
            let i = r.random_range(0..len);
            let at = |d: f64| {
                let mut v = u.clone();
                let t = if k < l {
                    &mut v.weights[k]
                } else {
                    &mut v.biases[k - l]
                };
                t.data[i] += d;
                loss_of(m, &v, target, kind)
            };
            let fd = (at(H) - at(-H)) / (2.0 * H);
            let an = an_t.data[i];
            assert!(
                (fd - an).abs() <= 1e-6 * m_in,
                "{name}: input tensor {k}[{i}]: fd {fd:.9e} vs analytic {an:.9e} (M {m_in:.3e})"
            );
        }
    }
    // Parameter gradients, per layer.
    for (li, grads) in g.params.iter().enumerate() {
        if grads.is_empty() {
            continue;
        }
        let m_p = max_abs(&grads.iter().map(|(_, t)| t).collect::<Vec<_>>());
        for (pname, gt) in grads {
            for _ in 0..3 {
                let i = r.random_range(0..gt.len());
                let at = |d: f64| {
                    let mut mm = m.clone();
                    let layer = &mut mm.layers_mut()[li];
                    let params = monomial_nfn::nn::model::layer_params_mut(layer)
                        .expect("a layer with gradients has parameters");
                    let mut t = params.get(pname).unwrap().clone();
                    t.data[i] += d;
                    params.set(pname, t).unwrap();
                    loss_of(&mm, u, target, kind)
                };
                let fd = (at(H) - at(-H)) / (2.0 * H);
                let an = gt.data[i];
                assert!(
                    (fd - an).abs() <= 1e-6 * m_p.max(1e-300),
                    "{name}: layer {li} {pname}[{i}]: fd {fd:.9e} vs analytic {an:.9e} (M {m_p:.3e})"
                );
            }
        }
    }
}

on_every_backend! {
    fn equivariant_layer_gradients_match_finite_differences(b) {
        let mut r = rng(1);
        for (sname, spec) in specs() {
            for (c, o) in [(1, 2), (2, 3)] {
                for (k, layer) in equivariant_layers(&spec, c, o, &mut r)
                    .into_iter()
                    .enumerate()
                {
                    let m = Model::new(
                        spec.clone(),
                        c,
                        vec![layer, Layer::Activation(Activation::Tanh)],
                    );
                    let u = scaled(WeightSpace::random(&spec, 2, c, &mut r), 0.5);
                    check_grads(
                        b,
                        &format!("{sname} layer kind {k} {c}->{o}"),
                        &m,
                        &u,
                        None,
                        LossKind::HalfSumSquares,
                    );
                }
            }
        }
    }
}

/// An invariant model: layer, sin, pool of `mode`, dense, `head_act`, dense.
#[allow(clippy::too_many_arguments)]
fn invariant_model(
    spec: &NetworkSpec,
    body: Layer,
    c: usize,
    mode: PoolMode,
    axes: PoolAxes,
    outputs: usize,
    head_act: Activation,
    r: &mut ChaCha8Rng,
) -> Model {
    let mut pool = InvariantPool::new(spec, c, mode, axes).unwrap();
    pool.randomize(r);
    let width = pool.out_features();
    Model::new(
        spec.clone(),
        1,
        vec![
            body,
            Layer::Activation(Activation::Sin),
            Layer::Pool(pool),
            Layer::Dense(Dense::new(width, 5, r).unwrap()),
            Layer::Activation(Activation::Tanh),
            Layer::Dense(Dense::new(5, outputs, r).unwrap()),
            Layer::Activation(head_act),
        ],
    )
}

on_every_backend! {
    fn pools_heads_and_losses_match_finite_differences(b) {
        let mut r = rng(2);
        let spec = small_cnn();
        let cases = [
            (
                PoolMode::L1,
                PoolAxes::Hidden,
                LossKind::Bce,
                Activation::Sigmoid,
                1,
            ),
            (
                PoolMode::L2,
                PoolAxes::Hidden,
                LossKind::Mse,
                Activation::Abs,
                1,
            ),
            (
                PoolMode::L2Square,
                PoolAxes::Hidden,
                LossKind::Mse,
                Activation::Tanh,
                2,
            ),
            (
                PoolMode::ParamMulL2,
                PoolAxes::Hidden,
                LossKind::Bce,
                Activation::Sigmoid,
                1,
            ),
            (
                PoolMode::Mean,
                PoolAxes::Hidden,
                LossKind::SoftmaxCe { classes: 3 },
                Activation::Sin,
                3,
            ),
            (
                PoolMode::Mean,
                PoolAxes::All,
                LossKind::Mse,
                Activation::Sin,
                1,
            ),
        ];
        for (mode, axes, kind, head_act, outputs) in cases {
            let body = Layer::Monomial(
                MonomialLinear::new(&spec, 1, 2, Variant::Scale, Init::XavierNormal, &mut r).unwrap(),
            );
            let m = invariant_model(&spec, body, 2, mode, axes, outputs, head_act, &mut r);
            let batch = 3;
            let u = WeightSpace::random(&spec, batch, 1, &mut r);
            let target: Vec<f64> = match kind {
                LossKind::SoftmaxCe { classes } => (0..batch * classes)
                    .map(|i| {
                        if i % classes == i / classes % classes {
                            1.0
                        } else {
                            0.0
                        }
                    })
                    .collect(),
                _ => (0..batch * outputs)
                    .map(|_| r.random_range(0.1..0.9))
                    .collect(),
            };
            let t = Tensor::new(vec![batch, outputs], target).unwrap();
            check_grads(
                b,
                &format!("{mode:?} {axes:?} {kind:?}"),
                &m,
                &u,
                Some(&t),
                kind,
            );
        }
    }
}

/// max over tensors of max|a − b| / max|b|.
fn rel_err(a: &[&Tensor], b: &[&Tensor]) -> f64 {
    let m = max_abs(b).max(1e-300);
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.data.iter().zip(&y.data))
        .fold(0.0f64, |e, (p, q)| e.max((p - q).abs()))
        / m
}

fn all_grads(g: &Gradients) -> (Vec<&Tensor>, Vec<&Tensor>) {
    let params = g.params.iter().flatten().map(|(_, t)| t).collect();
    let input = g.input.weights.iter().chain(&g.input.biases).collect();
    (params, input)
}

on_every_backend! {
    /// Every layer kind under a ParamMulL2 pool and a sigmoid head, at batch 1 and at batch 33
    /// (past one GPU workgroup of batch rows).
    fn invariant_model_gradients_at_batches_1_and_33(b) {
        let mut r = rng(3);
        for (sname, spec) in specs() {
            for (k, layer) in equivariant_layers(&spec, 2, 3, &mut r)
                .into_iter()
                .enumerate()
            {
                let m = invariant_model(
                    &spec,
                    layer,
                    3,
                    PoolMode::ParamMulL2,
                    PoolAxes::Hidden,
                    1,
                    Activation::Sigmoid,
                    &mut r,
                );
                let m = Model::new(spec.clone(), 2, m.layers().to_vec());
                for batch in [1, 33] {
                    let u = WeightSpace::random(&spec, batch, 2, &mut r);
                    let t = Tensor::new(
                        vec![batch, 1],
                        (0..batch).map(|_| r.random_range(0.1..0.9)).collect(),
                    )
                    .unwrap();
                    check_grads(
                        b,
                        &format!("{sname} kind {k} batch {batch}"),
                        &m,
                        &u,
                        Some(&t),
                        LossKind::Bce,
                    );
                }
            }
        }
    }
}

/// g⁻ᵀ: the same permutations with inverted factors, which is how gradients transform.
fn contragredient(g: &GroupElement) -> GroupElement {
    GroupElement {
        perms: g.perms.clone(),
        factors: g
            .factors
            .iter()
            .map(|f| f.iter().map(|d| 1.0 / d).collect())
            .collect(),
    }
}

on_every_backend! {
    fn input_gradients_of_invariant_losses_transform_contragrediently(b) {
        // L(g·U) = L(U) for all U gives ∇L(g·U) = g⁻ᵀ·∇L(U) (SPEC §10).
        let mut r = rng(4);
        let relu = mlp(&[3, 5, 4, 2], NetActivation::Relu);
        let tanh = mlp(&[3, 5, 4, 2], NetActivation::Tanh);
        for (name, spec, sym, range) in [
            (
                "relu scale",
                &relu,
                Symmetry::PositiveScale,
                ScaleRange::Uniform { lo: 1.0, hi: 1e4 },
            ),
            (
                "relu scale small",
                &relu,
                Symmetry::PositiveScale,
                ScaleRange::Uniform { lo: 1e-4, hi: 1.0 },
            ),
            ("tanh sign", &tanh, Symmetry::Sign, ScaleRange::default()),
        ] {
            let m = if sym == Symmetry::Sign {
                Model::monomial_invariant(
                    spec,
                    1,
                    &[3, 2],
                    Activation::Tanh,
                    Activation::Abs,
                    Variant::Sign,
                    Init::XavierNormal,
                    PoolMode::ParamMulL2,
                    &[6],
                    &mut r,
                )
            } else {
                Model::monomial_invariant(
                    spec,
                    1,
                    &[3, 2],
                    Activation::Relu,
                    Activation::Relu,
                    Variant::Scale,
                    Init::XavierNormal,
                    PoolMode::ParamMulL2,
                    &[6],
                    &mut r,
                )
            }
            .unwrap();
            let u = WeightSpace::random(spec, 4, 1, &mut r);
            let t = Tensor::new(vec![4, 1], vec![0.2, 0.4, 0.6, 0.8]).unwrap();
            let g = GroupElement::sample(spec, sym, range, &mut r);
            let gu = g.act(spec, &u).unwrap();
            let a = m.gradients(b.get(), &gu, Some(&t), LossKind::Bce).unwrap();
            let c = m.gradients(b.get(), &u, Some(&t), LossKind::Bce).unwrap();
            assert!(
                (a.loss - c.loss).abs() <= b.tol(1e-12, 1e-6),
                "{name}: loss not invariant"
            );
            let expected = contragredient(&g).act(spec, &c.input).unwrap();
            let exp: Vec<&Tensor> = expected.weights.iter().chain(&expected.biases).collect();
            let ours: Vec<&Tensor> = a.input.weights.iter().chain(&a.input.biases).collect();
            // Per tensor, plus a floor of 1e-14 of the largest gradient: a ReLU model with a
            // normalising pool sees hidden dense weights only through their signs, so their exact
            // gradient is 0 and both sides hold rounding noise there (goldens README).
            // In f32 (ε = 6e-8, sums of ≲ 100 terms through a few layers) 1e-5 per tensor. The
            // noise on exact zeros is rounding of terms as large as the largest gradient, so its
            // bound is a few ε of it: it measured 1.3e-11 of the largest gradient on lavapipe
            // and 3.0e-9 on an NVIDIA H200, whose compiler contracts other products into FMAs
            // (f64: 2e-20): floor 1e-7, ≈ ε. The loss is invariant to 1e-6 in f32 (measured:
            // exactly).
            let floor = b.tol(1e-14, 1e-7) * max_abs(&exp);
            for (k, (x, y)) in ours.iter().zip(&exp).enumerate() {
                let tol = b.tol(1e-9, 1e-5) * max_abs(&[y]) + floor;
                let e = x
                    .data
                    .iter()
                    .zip(&y.data)
                    .fold(0.0f64, |e, (p, q)| e.max((p - q).abs()));
                assert!(
                    e <= tol,
                    "{name}: tensor {k}: ∇L(g·U) differs from g⁻ᵀ·∇L(U) by {e:.2e} > {tol:.2e}"
                );
            }
            // Parameter gradients are invariant.
            let (pa, _) = all_grads(&a);
            let (pb, _) = all_grads(&c);
            let e = rel_err(&pa, &pb);
            assert!(
                e <= b.tol(1e-9, 1e-5),
                "{name}: parameter gradients changed by {e:.2e}"
            );
        }
    }
}
