//! Symmetry properties of every backend (SPEC §2, §3, §4, §10.1–10.2):
//! equivariant layers commute with the monomial group, pools and invariant models ignore it, and
//! the group action itself is a well-behaved action that preserves the function of the networks
//! it acts on.
//!
//! Tolerances. An HNPS layer only ever combines coordinates that carry the *same* character
//! (SPEC §3.1), so E(g·U) computes, entry by entry, exactly the sum that E(U) computes with every
//! term multiplied by one common factor χ. Floating point is scale-invariant (barring
//! over/underflow, far away here: factors are ≤ 1e8), so after dividing by χ the two results
//! differ only by the rounding of a K-term dot product (K ≤ f·c·n ≈ 150 here) plus a few ulps
//! from forming χ and 1/χ: |Δ| ≲ K·ε·Σ|coef·x| ≈ 1e-14 · max|E(U)|. We therefore check
//! max|g⁻¹·E(g·U) − E(U)| ≤ 1e-12 · max|E(U)| per output tensor (SPEC §10.2 item 1), which leaves
//! two orders of magnitude of headroom while still catching any wrong coupling: those give O(1).
//! A per-entry relative error would be unsound, since individual entries can cancel to ~0.
//! In f32 (the CPU's and the GPU's) the same argument with ε = 6e-8 gives SPEC §10.2's bounds:
//! 1e-4 relative for factors up to 1e4, 1e-5 for moderate ones and for the pools.
//!
//! Every property runs on every backend (CPU f64, CPU f32, the GPU) through
//! `on_every_backend!` (tests/common): `NAME::cpu_f64`, `NAME::cpu_f32`, `NAME::gpu`.

mod common;

use common::Precision;
use monomial_nfn::{
    Activation, Backend, Cpu, GroupElement, Init, InvariantPool, Layer, LayerShape, Model,
    MonomialLinear, NetActivation, NetworkSpec, PoolAxes, PoolMode, ScaleRange, Symmetry, Tensor,
    Variant, WeightSpace,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------------------------------------
// Fixtures

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn mlp(widths: &[usize], act: NetActivation) -> NetworkSpec {
    NetworkSpec::mlp(widths, act).expect("valid MLP spec")
}

/// conv(4<-1, 3x3), conv(6<-4, 5x5), dense(3<-6): mixed kernel sizes and a dense last layer.
fn mixed_cnn() -> NetworkSpec {
    NetworkSpec::new(
        vec![
            LayerShape::conv(4, 1, 3, 3),
            LayerShape::conv(6, 4, 5, 5),
            LayerShape::dense(3, 6),
        ],
        NetActivation::Relu,
    )
    .expect("valid CNN spec")
}

/// A CNN with two input channels and a conv *last* layer: exercises n_0 > 1 together with f_1 > 1
/// and Λ^L for f_L > 1, neither of which any golden file covers (SPEC A.3).
fn all_conv_cnn() -> NetworkSpec {
    NetworkSpec::new(
        vec![
            LayerShape::conv(5, 2, 3, 3),
            LayerShape::conv(4, 5, 5, 5),
            LayerShape::conv(3, 4, 1, 3),
        ],
        NetActivation::Relu,
    )
    .expect("valid CNN spec")
}

/// Every architecture of SPEC §10.1.
fn architectures() -> Vec<(&'static str, NetworkSpec)> {
    vec![
        ("mlp L=2 [3,7,2]", mlp(&[3, 7, 2], NetActivation::Relu)),
        ("mlp L=3 [3,7,5,2]", mlp(&[3, 7, 5, 2], NetActivation::Relu)),
        (
            "mlp L=5 [2,6,4,5,3,1]",
            mlp(&[2, 6, 4, 5, 3, 1], NetActivation::Relu),
        ),
        ("cnn 3x3,5x5,dense", mixed_cnn()),
        ("cnn all-conv n0=2", all_conv_cnn()),
        ("cnn zoo", NetworkSpec::cnn_zoo(NetActivation::Relu)),
        (
            "siren [2,32,32,1]",
            mlp(&[2, 32, 32, 1], NetActivation::Sin),
        ),
    ]
}

/// Architectures with L = 2, 3 and 4 for the sign variant (L = 2 has its own extra terms).
fn sign_architectures() -> Vec<(&'static str, NetworkSpec)> {
    let conv_l2 = NetworkSpec::new(
        vec![LayerShape::conv(5, 2, 3, 3), LayerShape::dense(3, 5)],
        NetActivation::Tanh,
    )
    .expect("valid spec");
    vec![
        ("mlp L=2 [3,7,2]", mlp(&[3, 7, 2], NetActivation::Tanh)),
        ("cnn L=2 conv+dense", conv_l2),
        ("siren L=3", mlp(&[2, 32, 32, 1], NetActivation::Sin)),
        ("mlp L=3 [3,7,5,2]", mlp(&[3, 7, 5, 2], NetActivation::Tanh)),
        (
            "mlp L=4 [2,6,4,5,3]",
            mlp(&[2, 6, 4, 5, 3], NetActivation::Tanh),
        ),
        ("cnn zoo L=4", NetworkSpec::cnn_zoo(NetActivation::Tanh)),
    ]
}

/// (c, c') pairs covering every channel count 1..=4 on both sides.
const CHANNELS: [(usize, usize); 5] = [(1, 1), (1, 4), (2, 3), (3, 2), (4, 4)];

const BATCH: usize = 2;

fn layer(spec: &NetworkSpec, c: usize, o: usize, variant: Variant, seed: u64) -> MonomialLinear {
    MonomialLinear::new(spec, c, o, variant, Init::XavierNormal, &mut rng(seed))
        .expect("layer builds")
}

/// Draws g; for the sign and monomial groups, redraws until some factor is negative, so that a
/// "sign flip" is never accidentally the identity (7 hidden neurons give all-positive 1/128 of
/// the time, which would make the negative checks vacuous).
fn sample(
    spec: &NetworkSpec,
    symmetry: Symmetry,
    range: ScaleRange,
    r: &mut ChaCha8Rng,
) -> GroupElement {
    loop {
        let g = GroupElement::sample(spec, symmetry, range, r);
        let needs_sign = matches!(symmetry, Symmetry::Sign | Symmetry::Monomial);
        if !needs_sign || g.factors.iter().flatten().any(|&d| d < 0.0) {
            return g;
        }
    }
}

fn single(layer: Layer, spec: &NetworkSpec, channels: usize) -> Model {
    Model::new(spec.clone(), channels, vec![layer])
}

fn tensors(ws: &WeightSpace) -> impl Iterator<Item = &Tensor> {
    ws.weights.iter().chain(&ws.biases)
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

/// max over tensors of max|a − b| / max|b|.
fn rel_err_per_tensor(a: &WeightSpace, b: &WeightSpace) -> f64 {
    tensors(a)
        .zip(tensors(b))
        .map(|(x, y)| {
            assert_eq!(x.shape, y.shape);
            let m = y.max_abs();
            assert!(m > 0.0, "reference output tensor is identically zero");
            max_abs_diff(&x.data, &y.data) / m
        })
        .fold(0.0, f64::max)
}

/// max over tensors of max|g⁻¹·E(g·U) − E(U)| / max|E(U)|.
fn equivariance_error(
    backend: &dyn Backend,
    model: &Model,
    u: &WeightSpace,
    g: &GroupElement,
) -> f64 {
    let spec = model.spec();
    let e_u = model.forward(backend, u).unwrap().space().unwrap();
    let gu = g.act(spec, u).unwrap();
    let e_gu = model.forward(backend, &gu).unwrap().space().unwrap();
    let back = g.inverse().act(spec, &e_gu).unwrap();
    rel_err_per_tensor(&back, &e_u)
}

/// Runs the equivariance check over every architecture and channel pair; returns the worst error
/// after asserting each one against `tol`.
fn sweep_layers(
    backend: &dyn Backend,
    archs: &[(&str, NetworkSpec)],
    variant: Variant,
    symmetry: Symmetry,
    range: ScaleRange,
    tol: f64,
    seed: u64,
) -> f64 {
    let mut worst = 0.0f64;
    let mut r = rng(seed);
    for (name, spec) in archs {
        for &(c, o) in &CHANNELS {
            let m = single(
                Layer::Monomial(layer(spec, c, o, variant, r.random())),
                spec,
                c,
            );
            let u = WeightSpace::random(spec, BATCH, c, &mut r);
            let g = sample(spec, symmetry, range, &mut r);
            let err = equivariance_error(backend, &m, &u, &g);
            assert!(
                err <= tol,
                "{name}, {c}->{o} channels, {variant:?} under {symmetry:?} {range:?} on {}: \
                 relative error {err:.3e} > {tol:.0e}",
                backend.describe()
            );
            worst = worst.max(err);
        }
    }
    eprintln!("{variant:?} under {symmetry:?} {range:?}: worst relative error {worst:.2e}");
    worst
}

// ---------------------------------------------------------------------------------------------
// Equivariant layer, scale variant (HNPSLinear): equivariant to the whole monomial group G.

const F64_TOL: f64 = 1e-12;
/// SPEC §10.2 item 1: f32 positive scaling ≤ 1e-4 relative for factors up to 1e4.
const F32_TOL: f64 = 1e-4;

on_every_backend! {
    fn permuting_hidden_neurons_permutes_output(b) {
        sweep_layers(
            b.get(),
            &architectures(),
            Variant::Scale,
            Symmetry::Permutation,
            ScaleRange::default(),
            b.tol(F64_TOL, F32_TOL),
            1,
        );
    }
}

on_every_backend! {
    fn log_uniform_positive_scaling_up_to_1e4_scales_output_by_its_character(b) {
        let worst = sweep_layers(
            b.get(),
            &architectures(),
            Variant::Scale,
            Symmetry::PositiveScale,
            ScaleRange::default(),
            b.tol(F64_TOL, F32_TOL),
            2,
        );
        if b.precision == Precision::F32 {
            assert!(worst > 0.0, "f32 rounding should be visible at all");
        }
    }
}

on_every_backend! {
    fn paper_augmentation_scales_uniform_1_to_1e4_scale_output_by_its_character(b) {
        sweep_layers(
            b.get(),
            &architectures(),
            Variant::Scale,
            Symmetry::PositiveScale,
            ScaleRange::Uniform { lo: 1.0, hi: 1e4 },
            b.tol(F64_TOL, F32_TOL),
            3,
        );
    }
}

on_every_backend! {
    fn small_positive_scales_uniform_1e3_to_1_scale_output_by_its_character(b) {
        sweep_layers(
            b.get(),
            &architectures(),
            Variant::Scale,
            Symmetry::PositiveScale,
            ScaleRange::Uniform { lo: 1e-3, hi: 1.0 },
            b.tol(F64_TOL, F32_TOL),
            4,
        );
    }
}

on_every_backend! {
    fn sign_flips_of_hidden_neurons_flip_output_signs(b) {
        sweep_layers(
            b.get(),
            &architectures(),
            Variant::Scale,
            Symmetry::Sign,
            ScaleRange::default(),
            b.tol(F64_TOL, F32_TOL),
            5,
        );
    }
}

on_every_backend! {
    fn scale_variant_commutes_with_general_monomial_matrices(b) {
        // Any nonzero factor: positive scales up to 1e4 times random signs (SPEC §3.1 "important
        // consequence").
        sweep_layers(
            b.get(),
            &architectures(),
            Variant::Scale,
            Symmetry::Monomial,
            ScaleRange::default(),
            b.tol(F64_TOL, F32_TOL),
            6,
        );
    }
}

on_every_backend! {
    fn moderate_positive_scales_scale_output_within_1e_5_in_f32(b) {
        // SPEC §10.2 item 1: f32 positive scaling ≤ 1e-5 relative for moderate factors.
        sweep_layers(
            b.get(),
            &architectures(),
            Variant::Scale,
            Symmetry::PositiveScale,
            ScaleRange::LogUniform { lo: 0.1, hi: 10.0 },
            b.tol(F64_TOL, 1e-5),
            8,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Equivariant layer, sign variant (HNPS_SirenLinear + the L = 2 terms): G^{±1} and P, not G^{>0}.

on_every_backend! {
    fn sign_variant_commutes_with_sign_flips_and_permutations(b) {
        for (i, symmetry) in [Symmetry::Permutation, Symmetry::Sign]
            .into_iter()
            .enumerate()
        {
            sweep_layers(
                b.get(),
                &sign_architectures(),
                Variant::Sign,
                symmetry,
                ScaleRange::default(),
                b.tol(F64_TOL, F32_TOL),
                10 + i as u64,
            );
        }
    }
}

on_every_backend! {
    fn sign_variant_is_not_positive_scale_equivariant(b) {
        // The cross terms Ω, Ξ (and for L = 2 the weight-weight terms) pair characters d and 1/d,
        // which agree only for d = ±1: under scales up to 1e4 the error is O(1) or larger.
        let mut r = rng(12);
        for (name, spec) in sign_architectures() {
            for &(c, o) in &CHANNELS {
                let m = single(
                    Layer::Monomial(layer(&spec, c, o, Variant::Sign, r.random())),
                    &spec,
                    c,
                );
                let u = WeightSpace::random(&spec, BATCH, c, &mut r);
                let g = sample(
                    &spec,
                    Symmetry::PositiveScale,
                    ScaleRange::default(),
                    &mut r,
                );
                let err = equivariance_error(b.get(), &m, &u, &g);
                assert!(
                    err > 1e-3,
                    "{name} {c}->{o}: sign variant looks scale-equivariant (error {err:.2e})"
                );
            }
        }
    }
}

on_every_backend! {
    fn sign_variant_l2_weight_weight_terms_alone_are_sign_but_not_scale_equivariant(b) {
        // With Ω and Ξ zeroed, the only non-HNPS terms left in an L = 2 sign layer are
        // W'^(1) <- W^(2) and W'^(2) <- W^(1) (SPEC §3.1). HNPS is scale-equivariant, so any
        // scale error must come from them: this checks they are present, random and correctly
        // sign-equivariant.
        let mut r = rng(13);
        for (name, spec) in sign_architectures()
            .into_iter()
            .filter(|(_, s)| s.num_layers() == 2)
        {
            for &(c, o) in &CHANNELS {
                let mut lay = layer(&spec, c, o, Variant::Sign, r.random());
                for name in ["sign.omega", "sign.xi"] {
                    let shape = lay
                        .params
                        .get(name)
                        .expect("parameter exists")
                        .shape
                        .clone();
                    lay.params.set(name, Tensor::zeros(shape)).unwrap();
                }
                for name in ["sign.w1_from_w2", "sign.w2_from_w1"] {
                    let t = lay.params.get(name).expect("L = 2 sign term exists");
                    assert!(t.max_abs() > 0.0, "{name} is randomly initialised");
                }
                let m = single(Layer::Monomial(lay), &spec, c);
                let u = WeightSpace::random(&spec, BATCH, c, &mut r);
                let g = sample(&spec, Symmetry::Sign, ScaleRange::default(), &mut r);
                let tol = b.tol(F64_TOL, F32_TOL);
                let err = equivariance_error(b.get(), &m, &u, &g);
                assert!(err <= tol, "{name} {c}->{o}: sign error {err:.2e}");
                let g = sample(
                    &spec,
                    Symmetry::PositiveScale,
                    ScaleRange::default(),
                    &mut r,
                );
                let err = equivariance_error(b.get(), &m, &u, &g);
                assert!(err > 1e-3, "{name} {c}->{o}: scale error only {err:.2e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bitwise: HNPS layers never sum over a hidden axis, so permutations and sign flips only move or
// negate whole GEMM rows, and every backend sums each row in an order that does not depend on
// where the row sits (SPEC §3.6, DESIGN §5).

fn assert_bitwise_equivariant(backend: &dyn Backend, variant: Variant, seed: u64) {
    let mut r = rng(seed);
    let archs = match variant {
        Variant::Scale => architectures(),
        Variant::Sign => sign_architectures(),
    };
    for (name, spec) in archs {
        for &(c, o) in &CHANNELS {
            let m = single(
                Layer::Monomial(layer(&spec, c, o, variant, r.random())),
                &spec,
                c,
            );
            // A batch of 5 makes some GEMMs exceed a single row block and tile.
            let u = WeightSpace::random(&spec, 5, c, &mut r);
            for symmetry in [Symmetry::Permutation, Symmetry::Sign] {
                let g = sample(&spec, symmetry, ScaleRange::default(), &mut r);
                let e_u = m.forward(backend, &u).unwrap().space().unwrap();
                let e_gu = m
                    .forward(backend, &g.act(&spec, &u).unwrap())
                    .unwrap()
                    .space()
                    .unwrap();
                let g_e_u = g.act(&spec, &e_u).unwrap();
                for (i, (a, b)) in tensors(&e_gu).zip(tensors(&g_e_u)).enumerate() {
                    let bits = |t: &Tensor| t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert!(
                        bits(a) == bits(b),
                        "{name} {c}->{o} {variant:?} under {symmetry:?} on {}: tensor {i} \
                         differs by up to {:.3e}",
                        backend.describe(),
                        max_abs_diff(&a.data, &b.data)
                    );
                }
            }
        }
    }
}

on_every_backend! {
    fn permutations_and_sign_flips_commute_bitwise(b) {
        assert_bitwise_equivariant(b.get(), Variant::Scale, 20);
        assert_bitwise_equivariant(b.get(), Variant::Sign, 22);
    }
}

// ---------------------------------------------------------------------------------------------
// Equivariant stacks: the activation between layers decides the group (SPEC §2.5).

fn stack(spec: &NetworkSpec, act: Activation, variant: Variant, seed: u64) -> Model {
    let mut r = rng(seed);
    let layers = vec![
        Layer::Monomial(
            MonomialLinear::new(spec, 1, 3, variant, Init::XavierNormal, &mut r).unwrap(),
        ),
        Layer::Activation(act),
        Layer::Monomial(
            MonomialLinear::new(spec, 3, 4, variant, Init::XavierNormal, &mut r).unwrap(),
        ),
        Layer::Activation(act),
        Layer::Monomial(
            MonomialLinear::new(spec, 4, 2, variant, Init::XavierNormal, &mut r).unwrap(),
        ),
    ];
    Model::new(spec.clone(), 1, layers)
}

on_every_backend! {
    fn relu_stack_is_positive_scale_equivariant(b) {
        let mut r = rng(30);
        for (name, spec) in architectures() {
            let m = stack(&spec, Activation::Relu, Variant::Scale, r.random());
            let u = WeightSpace::random(&spec, BATCH, 1, &mut r);
            for range in [
                ScaleRange::default(),
                ScaleRange::Uniform { lo: 1.0, hi: 1e4 },
            ] {
                let g = sample(&spec, Symmetry::PositiveScale, range, &mut r);
                let err = equivariance_error(b.get(), &m, &u, &g);
                assert!(err <= b.tol(F64_TOL, F32_TOL), "{name} {range:?}: error {err:.2e}");
            }
        }
    }
}

on_every_backend! {
    fn relu_stack_is_not_sign_equivariant(b) {
        let mut r = rng(31);
        for (name, spec) in architectures() {
            let m = stack(&spec, Activation::Relu, Variant::Scale, r.random());
            let u = WeightSpace::random(&spec, BATCH, 1, &mut r);
            let g = sample(&spec, Symmetry::Sign, ScaleRange::default(), &mut r);
            let err = equivariance_error(b.get(), &m, &u, &g);
            assert!(
                err > 1e-3,
                "{name}: ReLU stack looks sign-equivariant ({err:.2e})"
            );
        }
    }
}

on_every_backend! {
    fn tanh_and_sin_stacks_are_sign_equivariant_bitwise(b) {
        for (i, (act, variant)) in [
            (Activation::Tanh, Variant::Scale),
            (Activation::Sin, Variant::Sign),
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = rng(32 + i as u64);
            for (name, spec) in sign_architectures() {
                let m = stack(&spec, act, variant, r.random());
                let u = WeightSpace::random(&spec, BATCH, 1, &mut r);
                let g = sample(&spec, Symmetry::Sign, ScaleRange::default(), &mut r);
                let e_gu = m
                    .forward(b.get(), &g.act(&spec, &u).unwrap())
                    .unwrap()
                    .space()
                    .unwrap();
                let g_e_u = g
                    .act(&spec, &m.forward(b.get(), &u).unwrap().space().unwrap())
                    .unwrap();
                assert!(
                    e_gu == g_e_u,
                    "{name} {act:?} {variant:?} on {}: not bitwise sign-equivariant",
                    b.get().describe()
                );
            }
        }
    }
}

on_every_backend! {
    fn tanh_stack_is_not_positive_scale_equivariant(b) {
        let mut r = rng(34);
        for (name, spec) in sign_architectures() {
            let m = stack(&spec, Activation::Tanh, Variant::Scale, r.random());
            let u = WeightSpace::random(&spec, BATCH, 1, &mut r);
            let g = sample(
                &spec,
                Symmetry::PositiveScale,
                ScaleRange::Uniform { lo: 1.0, hi: 1e4 },
                &mut r,
            );
            let err = equivariance_error(b.get(), &m, &u, &g);
            assert!(
                err > 1e-3,
                "{name}: tanh stack looks scale-equivariant ({err:.2e})"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Invariant pools (SPEC §4).

fn pool_model(spec: &NetworkSpec, c: usize, mode: PoolMode, axes: PoolAxes, seed: u64) -> Model {
    let mut pool = InvariantPool::new(spec, c, mode, axes).expect("pool builds");
    pool.randomize(&mut rng(seed));
    single(Layer::Pool(pool), spec, c)
}

/// max|P(g·U) − P(U)| and max|P(U)| for one draw of g.
fn pool_change(backend: &dyn Backend, m: &Model, u: &WeightSpace, g: &GroupElement) -> (f64, f64) {
    let p = m.forward(backend, u).unwrap().features().unwrap();
    let pg = m
        .forward(backend, &g.act(m.spec(), u).unwrap())
        .unwrap()
        .features()
        .unwrap();
    assert_eq!(p.shape, pg.shape);
    (max_abs_diff(&pg.data, &p.data), p.max_abs())
}

const NORMALISING: [PoolMode; 4] = [
    PoolMode::L1,
    PoolMode::L2,
    PoolMode::L2Square,
    PoolMode::ParamMulL2,
];

/// Worst |P(g·U) − P(U)| over architectures, channel counts 1..=4 and the given symmetries.
fn pool_sweep(
    backend: &dyn Backend,
    mode: PoolMode,
    axes: PoolAxes,
    reference_l1: bool,
    symmetries: &[(Symmetry, ScaleRange)],
    seed: u64,
    mut check: impl FnMut(&str, f64, f64),
) {
    let mut r = rng(seed);
    for (name, spec) in architectures() {
        for c in 1..=4 {
            let mut m = pool_model(&spec, c, mode, axes, r.random());
            if reference_l1 {
                for l in m.layers_mut() {
                    if let Layer::Pool(p) = l {
                        p.reference_l1 = true;
                    }
                }
            }
            let u = WeightSpace::random(&spec, 3, c, &mut r);
            for &(symmetry, range) in symmetries {
                let g = sample(&spec, symmetry, range, &mut r);
                let (d, scale) = pool_change(backend, &m, &u, &g);
                check(
                    &format!("{name} C={c} {mode:?} {axes:?} {symmetry:?} {range:?}"),
                    d,
                    scale,
                );
            }
        }
    }
}

const SCALINGS: [(Symmetry, ScaleRange); 3] = [
    (
        Symmetry::Permutation,
        ScaleRange::LogUniform { lo: 1e-4, hi: 1e4 },
    ),
    (
        Symmetry::PositiveScale,
        ScaleRange::LogUniform { lo: 1e-4, hi: 1e4 },
    ),
    (
        Symmetry::PositiveScale,
        ScaleRange::Uniform { lo: 1.0, hi: 1e4 },
    ),
];

/// Pool outputs are O(1) (normalised entries, γ, β ~ N(0, 1)): 1e-12 absolute is ~1e4 f64
/// ulps; f32 gets 1e-5 (SPEC §10.2).
const POOL_TOL: (f64, f64) = (1e-12, 1e-5);

on_every_backend! {
    fn normalising_pools_are_invariant_to_permutation_and_positive_scaling(b) {
        let tol = b.tol(POOL_TOL.0, POOL_TOL.1);
        for (i, mode) in NORMALISING.into_iter().enumerate() {
            let mut worst = 0.0f64;
            pool_sweep(
                b.get(),
                mode,
                PoolAxes::Hidden,
                false,
                &SCALINGS,
                40 + i as u64,
                |what, d, scale| {
                    assert!(scale > 0.1 && scale < 100.0, "{what}: output scale {scale}");
                    assert!(d <= tol, "{what}: pool changed by {d:.3e}");
                    worst = worst.max(d);
                },
            );
            eprintln!("{mode:?}: worst invariance error {worst:.2e}");
        }
    }
}

on_every_backend! {
    fn reference_l1_pool_is_invariant_to_permutation_and_positive_scaling(b) {
        // The reference's L1 quirk (L2 for dense weights and biases, SPEC §4.1) keeps invariance.
        pool_sweep(
            b.get(),
            PoolMode::L1,
            PoolAxes::Hidden,
            true,
            &SCALINGS,
            45,
            |what, d, _| {
                assert!(d <= b.tol(POOL_TOL.0, POOL_TOL.1), "{what}: pool changed by {d:.3e}");
            },
        );
    }
}

on_every_backend! {
    fn l2_square_pool_is_also_sign_invariant(b) {
        let sym = [
            (Symmetry::Sign, ScaleRange::default()),
            (Symmetry::Monomial, ScaleRange::default()),
        ];
        pool_sweep(
            b.get(),
            PoolMode::L2Square,
            PoolAxes::Hidden,
            false,
            &sym,
            50,
            |what, d, _| {
                assert!(d <= b.tol(POOL_TOL.0, POOL_TOL.1), "{what}: pool changed by {d:.3e}");
            },
        );
    }
}

on_every_backend! {
    fn l1_l2_and_param_mul_l2_pools_are_not_sign_invariant(b) {
        // x/‖x‖ is only sign-*equivariant*: a flipped neuron flips its normalised entries.
        let sym = [(Symmetry::Sign, ScaleRange::default())];
        for (i, mode) in [PoolMode::L1, PoolMode::L2, PoolMode::ParamMulL2]
            .into_iter()
            .enumerate()
        {
            pool_sweep(
                b.get(),
                mode,
                PoolAxes::Hidden,
                false,
                &sym,
                51 + i as u64,
                |what, d, scale| {
                    assert!(
                        d > 1e-3 * scale,
                        "{what}: pool looks sign-invariant ({d:.2e})"
                    );
                },
            );
        }
    }
}

on_every_backend! {
    fn mean_pools_are_permutation_invariant_but_not_scale_invariant(b) {
        // HNPPool (hidden axes) and NPPool (all axes) average raw features (SPEC §5.3).
        for (i, axes) in [PoolAxes::Hidden, PoolAxes::All].into_iter().enumerate() {
            let perm = [(Symmetry::Permutation, ScaleRange::default())];
            pool_sweep(
                b.get(),
                PoolMode::Mean,
                axes,
                false,
                &perm,
                55 + i as u64,
                |what, d, scale| {
                    assert!(
                        d <= b.tol(POOL_TOL.0, POOL_TOL.1) * scale.max(1.0),
                        "{what}: mean pool changed by {d:.3e}"
                    );
                },
            );
            let scaled = [
                (Symmetry::PositiveScale, ScaleRange::default()),
                (
                    Symmetry::PositiveScale,
                    ScaleRange::Uniform { lo: 1.0, hi: 1e4 },
                ),
            ];
            pool_sweep(
                b.get(),
                PoolMode::Mean,
                axes,
                false,
                &scaled,
                57 + i as u64,
                |what, d, scale| {
                    assert!(
                        d > 1e-3 * scale,
                        "{what}: mean pool looks scale-invariant ({d:.2e})"
                    );
                },
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// End-to-end: the paper's CNN-Zoo models (SPEC §6.1).

/// (max |f(g·U) − f(U)|, the outputs f(U)).
fn model_change(
    backend: &dyn Backend,
    m: &Model,
    u: &WeightSpace,
    g: &GroupElement,
) -> (f64, Tensor) {
    let y = m.forward(backend, u).unwrap().features().unwrap();
    let yg = m
        .forward(backend, &g.act(m.spec(), u).unwrap())
        .unwrap()
        .features()
        .unwrap();
    assert_eq!(y.shape, vec![u.batch(), 1]);
    (max_abs_diff(&yg.data, &y.data), y)
}

/// Checks that the sigmoid outputs are not saturated, so invariance is not vacuous.
fn assert_informative(y: &Tensor) {
    assert!(
        y.data.iter().all(|&p| p > 1e-3 && p < 1.0 - 1e-3),
        "saturated outputs make the test vacuous: {:?}",
        y.data
    );
    let spread = y.data.iter().cloned().fold(f64::MIN, f64::max)
        - y.data.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        spread > 1e-4,
        "outputs do not depend on the input: {:?}",
        y.data
    );
}

const ZOO_BATCH: usize = 4;

on_every_backend! {
    fn relu_cnn_zoo_model_is_invariant_to_positive_scaling_and_permutation(b) {
        let mut r = rng(60);
        let m = Model::monomial_cnn_zoo(NetActivation::Relu, &mut r).unwrap();
        let spec = m.spec().clone();
        let u = WeightSpace::random(&spec, ZOO_BATCH, 1, &mut r);
        for range in [
            ScaleRange::default(),
            ScaleRange::Uniform { lo: 1.0, hi: 1e4 },
        ] {
            for _ in 0..2 {
                let g = sample(&spec, Symmetry::PositiveScale, range, &mut r);
                let (d, y) = model_change(b.get(), &m, &u, &g);
                assert_informative(&y);
                assert!(
                    d <= b.tol(1e-9, 1e-4),
                    "{range:?}: output changed by {d:.3e}"
                );
                if b.precision == Precision::F32 {
                    let y64 = m.forward(&Cpu::<f64>::new(), &u).unwrap().features().unwrap();
                    assert!(
                        max_abs_diff(&y.data, &y64.data) <= 1e-4,
                        "f32 and f64 disagree"
                    );
                }
                eprintln!("relu zoo {range:?} on {}: {d:.2e}", b.get().describe());
            }
        }
    }
}

on_every_backend! {
    fn tanh_cnn_zoo_model_is_invariant_to_sign_flips_and_permutation(b) {
        let mut r = rng(61);
        let m = Model::monomial_cnn_zoo(NetActivation::Tanh, &mut r).unwrap();
        let spec = m.spec().clone();
        let u = WeightSpace::random(&spec, ZOO_BATCH, 1, &mut r);
        for _ in 0..3 {
            let g = sample(&spec, Symmetry::Sign, ScaleRange::default(), &mut r);
            let (d, y) = model_change(b.get(), &m, &u, &g);
            assert_informative(&y);
            assert!(d <= b.tol(1e-12, 1e-5), "output changed by {d:.3e}");
        }
    }
}

on_every_backend! {
    fn tanh_cnn_zoo_model_output_is_bitwise_unchanged_by_sign_flips_alone(b) {
        // HNPS layers and the odd tanh commute bitwise with sign flips; abs then removes them, so
        // without a permutation (which reorders the pool's sums) nothing downstream can differ.
        let mut r = rng(62);
        let m = Model::monomial_cnn_zoo(NetActivation::Tanh, &mut r).unwrap();
        let spec = m.spec().clone();
        let u = WeightSpace::random(&spec, ZOO_BATCH, 1, &mut r);
        let mut g = sample(&spec, Symmetry::Sign, ScaleRange::default(), &mut r);
        for p in &mut g.perms {
            *p = (0..p.len()).collect();
        }
        assert!(g.factors.iter().flatten().any(|&d| d < 0.0));
        let (d, _) = model_change(b.get(), &m, &u, &g);
        assert_eq!(d, 0.0, "{}", b.get().describe());
    }
}

on_every_backend! {
    fn relu_cnn_zoo_model_is_not_sign_invariant(b) {
        let mut r = rng(63);
        let m = Model::monomial_cnn_zoo(NetActivation::Relu, &mut r).unwrap();
        let spec = m.spec().clone();
        let u = WeightSpace::random(&spec, ZOO_BATCH, 1, &mut r);
        let g = sample(&spec, Symmetry::Sign, ScaleRange::default(), &mut r);
        let (d, y) = model_change(b.get(), &m, &u, &g);
        assert_informative(&y);
        assert!(
            d > 1e-6,
            "ReLU model looks sign-invariant: max change {d:.3e}"
        );
        eprintln!("relu zoo under sign flips: max change {d:.3e}");
    }
}

on_every_backend! {
    fn tanh_cnn_zoo_model_is_not_scale_invariant(b) {
        let mut r = rng(64);
        let m = Model::monomial_cnn_zoo(NetActivation::Tanh, &mut r).unwrap();
        let spec = m.spec().clone();
        let u = WeightSpace::random(&spec, ZOO_BATCH, 1, &mut r);
        let g = sample(
            &spec,
            Symmetry::PositiveScale,
            ScaleRange::Uniform { lo: 1.0, hi: 1e4 },
            &mut r,
        );
        let (d, _) = model_change(b.get(), &m, &u, &g);
        assert!(
            d > 1e-6,
            "tanh model looks scale-invariant: max change {d:.3e}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The group action itself (SPEC §2.2).

#[test]
fn inverse_undoes_the_action() {
    let mut r = rng(70);
    for (name, spec) in architectures() {
        let u = WeightSpace::random(&spec, 2, 3, &mut r);
        for symmetry in [
            Symmetry::Permutation,
            Symmetry::PositiveScale,
            Symmetry::Sign,
            Symmetry::Monomial,
        ] {
            let g = sample(&spec, symmetry, ScaleRange::default(), &mut r);
            let back = g.inverse().act(&spec, &g.act(&spec, &u).unwrap()).unwrap();
            // Entries are N(0,1) draws (never 0) and the round trip multiplies each by
            // (d_j/d_k)·((1/d_j)/(1/d_k)) = 1 up to ~6 roundings: a per-entry relative bound holds.
            for (a, b) in tensors(&back).zip(tensors(&u)) {
                for (x, y) in a.data.iter().zip(&b.data) {
                    assert!(
                        (x - y).abs() <= 1e-12 * y.abs(),
                        "{name} {symmetry:?}: {x} came back instead of {y}"
                    );
                }
            }
            if matches!(symmetry, Symmetry::Permutation | Symmetry::Sign) {
                assert!(back == u, "{name} {symmetry:?}: round trip is not exact");
            }
        }
    }
}

#[test]
fn identity_acts_as_identity_exactly() {
    let mut r = rng(71);
    for (name, spec) in architectures() {
        let u = WeightSpace::random(&spec, 2, 2, &mut r);
        let e = GroupElement::identity(&spec);
        assert!(e.act(&spec, &u).unwrap() == u, "{name}");
        assert_eq!(e.inverse(), e, "{name}: identity is its own inverse");
    }
}

#[test]
fn action_fixes_input_and_output_neurons() {
    // SPEC §2.2 "fixed dims": g^(0) = g^(L) = I. Under a permutation, row j of g·W^(1) is row
    // π_1⁻¹(j) of W^(1) with its input columns in place, and W^(L) keeps its output rows (only
    // its hidden columns move); under any monomial g, b^(L) is untouched.
    let mut r = rng(72);
    for (name, spec) in architectures() {
        let (b, c) = (2, 2);
        let u = WeightSpace::random(&spec, b, c, &mut r);
        let l = spec.num_layers();
        let g = sample(&spec, Symmetry::Monomial, ScaleRange::default(), &mut r);
        let gu = g.act(&spec, &u).unwrap();
        assert!(
            gu.biases[l - 1] == u.biases[l - 1],
            "{name}: output bias changed"
        );

        let g = sample(&spec, Symmetry::Permutation, ScaleRange::default(), &mut r);
        let gu = g.act(&spec, &u).unwrap();
        let first = spec.layers[0];
        let row = first.n_in * first.f();
        for bc in 0..b * c {
            for j in 0..first.n_out {
                let src = g.perms[0][j];
                let got = &gu.weights[0].data[(bc * first.n_out + j) * row..][..row];
                let want = &u.weights[0].data[(bc * first.n_out + src) * row..][..row];
                assert_eq!(got, want, "{name}: W^(1) row {j}");
            }
        }
        let last = spec.layers[l - 1];
        let f = last.f();
        for bc in 0..b * c {
            for j in 0..last.n_out {
                for k in 0..last.n_in {
                    let src = g.perms[l - 2][k];
                    let at = |kk: usize| ((bc * last.n_out + j) * last.n_in + kk) * f;
                    assert_eq!(
                        &gu.weights[l - 1].data[at(k)..at(k) + f],
                        &u.weights[l - 1].data[at(src)..at(src) + f],
                        "{name}: W^(L)[{j},{k}]"
                    );
                }
            }
        }
    }
}

// --- The action preserves the function of the networks it acts on (SPEC §2.3) ----------------

/// Evaluates network `b` (channel 0) of a weight space: conv layers are 'valid' stride-1
/// convolutions, the first dense layer after a conv stack follows a global average pool.
fn eval_network(
    spec: &NetworkSpec,
    u: &WeightSpace,
    b: usize,
    act: fn(f64) -> f64,
    x: &Tensor,
) -> Vec<f64> {
    let l = spec.num_layers();
    let c = u.channels();
    // Activations as (channels, h, w); dense activations are (n, 1, 1).
    let (mut h, mut hh, mut ww) = (x.data.clone(), x.shape[1], x.shape[2]);
    for (i, s) in spec.layers.iter().enumerate() {
        let w = &u.weights[i].data;
        let bias = &u.biases[i].data;
        let woff = (b * c) * s.n_out * s.n_in * s.f();
        let boff = (b * c) * s.n_out;
        if !s.conv && (hh, ww) != (1, 1) {
            // Global average pool.
            let n = hh * ww;
            h = h
                .chunks(n)
                .map(|ch| ch.iter().sum::<f64>() / n as f64)
                .collect();
            hh = 1;
            ww = 1;
        }
        let (oh, ow) = (hh + 1 - s.kh, ww + 1 - s.kw);
        let mut out = vec![0.0; s.n_out * oh * ow];
        for j in 0..s.n_out {
            for y in 0..oh {
                for xx in 0..ow {
                    let mut acc = bias[boff + j];
                    for k in 0..s.n_in {
                        for dy in 0..s.kh {
                            for dx in 0..s.kw {
                                let wv = w[woff + ((j * s.n_in + k) * s.kh + dy) * s.kw + dx];
                                acc += wv * h[(k * hh + y + dy) * ww + xx + dx];
                            }
                        }
                    }
                    out[(j * oh + y) * ow + xx] = if i + 1 < l { act(acc) } else { acc };
                }
            }
        }
        h = out;
        hh = oh;
        ww = ow;
    }
    h
}

fn random_input(spec: &NetworkSpec, r: &mut ChaCha8Rng) -> Tensor {
    let side = if spec.layers[0].conv { 12 } else { 1 };
    let n = spec.n_in() * side * side;
    Tensor::new(
        vec![spec.n_in(), side, side],
        (0..n).map(|_| r.random_range(-1.0..1.0)).collect(),
    )
    .unwrap()
}

/// Max |f_{gU}(x) − f_U(x)| / max |f_U(x)| over a few inputs and batch items.
fn function_change(
    spec: &NetworkSpec,
    act: fn(f64) -> f64,
    symmetry: Symmetry,
    range: ScaleRange,
    seed: u64,
) -> f64 {
    let mut r = rng(seed);
    let u = WeightSpace::random(spec, 2, 1, &mut r);
    let g = sample(spec, symmetry, range, &mut r);
    let gu = g.act(spec, &u).unwrap();
    let mut worst = 0.0f64;
    for b in 0..2 {
        for _ in 0..3 {
            let x = random_input(spec, &mut r);
            let y = eval_network(spec, &u, b, act, &x);
            let yg = eval_network(spec, &gu, b, act, &x);
            let m = y.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            worst = worst.max(max_abs_diff(&y, &yg) / m);
        }
    }
    worst
}

fn relu(x: f64) -> f64 {
    x.max(0.0)
}

#[test]
fn positive_scaling_and_permutation_preserve_relu_network_function() {
    for (i, (name, spec)) in architectures().into_iter().enumerate() {
        for range in [
            ScaleRange::default(),
            ScaleRange::Uniform { lo: 1.0, hi: 1e4 },
        ] {
            let err = function_change(&spec, relu, Symmetry::PositiveScale, range, 80 + i as u64);
            assert!(
                err <= 1e-10,
                "{name} {range:?}: ReLU network function changed by {err:.2e}"
            );
        }
        let err = function_change(
            &spec,
            relu,
            Symmetry::Sign,
            ScaleRange::default(),
            90 + i as u64,
        );
        assert!(
            err > 1e-3,
            "{name}: sign flips preserved a ReLU network ({err:.2e})"
        );
    }
}

#[test]
fn sign_flips_and_permutation_preserve_tanh_and_sin_network_function() {
    for (i, (name, spec)) in architectures().into_iter().enumerate() {
        for act in [f64::tanh as fn(f64) -> f64, |x: f64| {
            (30.0 * x).sin() / 30.0
        }] {
            let err = function_change(
                &spec,
                act,
                Symmetry::Sign,
                ScaleRange::default(),
                100 + i as u64,
            );
            assert!(
                err <= 1e-12,
                "{name}: odd-activation network changed by {err:.2e}"
            );
        }
        let err = function_change(
            &spec,
            f64::tanh,
            Symmetry::PositiveScale,
            ScaleRange::Uniform { lo: 1.0, hi: 1e4 },
            110 + i as u64,
        );
        assert!(
            err > 1e-3,
            "{name}: scaling preserved a tanh network ({err:.2e})"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The norm clamp (SPEC §9.1–9.2): PyTorch's x / max(‖x‖, 1e-12) is scale-dependent for entries
// with tiny nonzero norms, which trained zoos have (dead units decay to ~1e-20 under Adam);
// ε = 0 normalises exactly.

on_every_backend! {
    fn exact_normalisation_keeps_models_invariant_for_near_zero_units(b) {
        let mut r = rng(90);
        let spec = NetworkSpec::cnn_zoo(NetActivation::Relu);
        let mut u = WeightSpace::random(&spec, 3, 1, &mut r);
        // Hidden neuron 2 of layer 1 is dead: its incoming and outgoing weights are ~1e-14.
        let (n0, f) = (spec.layers[1].n_in, spec.layers[1].f());
        for b in 0..3 {
            for j in 0..spec.layers[1].n_out {
                for t in 0..f {
                    u.weights[1].data[((b * spec.layers[1].n_out + j) * n0 + 2) * f + t] *= 1e-14;
                }
            }
            for k in 0..n0 {
                for t in 0..f {
                    u.weights[1].data[((b * spec.layers[1].n_out + 2) * n0 + k) * f + t] *= 1e-14;
                }
            }
        }
        let g = sample(
            &spec,
            Symmetry::PositiveScale,
            ScaleRange::Uniform { lo: 1.0, hi: 1e4 },
            &mut r,
        );
        let gu = g.act(&spec, &u).unwrap();
        let mut m = Model::monomial_cnn_zoo(NetActivation::Relu, &mut r).unwrap();
        let change = |m: &Model, backend: &dyn Backend| {
            let y = m.forward(backend, &u).unwrap().features().unwrap();
            let yg = m.forward(backend, &gu).unwrap().features().unwrap();
            max_abs_diff(&y.data, &yg.data)
        };
        let clamped = change(&m, b.get());
        assert!(
            clamped > 1e-9,
            "the 1e-12 clamp left the model invariant ({clamped:.2e})"
        );
        m.set_norm_eps(0.0).unwrap();
        let exact = change(&m, b.get());
        assert!(
            exact <= b.tol(1e-12, 1e-5),
            "{}: exact normalisation changed the output by {exact:.2e}",
            b.get().describe()
        );
    }
}
