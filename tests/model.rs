//! Model structure: parameter counts (SPEC §3.5, §6.5), pool widths (SPEC §4.2, §5.3),
//! checkpoint round trips, and initialisation statistics (SPEC §7, §10.2 item 8).

use monomial_nfn::io::{load_checkpoint, save_checkpoint};
use monomial_nfn::{
    Activation, Cpu, Init, InvariantPool, Layer, LayerShape, Model, MonomialLinear, NetActivation,
    NetworkSpec, PoolAxes, PoolMode, Tensor, Variant, WeightSpace,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn zoo_spec() -> NetworkSpec {
    NetworkSpec::cnn_zoo(NetActivation::Relu)
}

fn siren(n_out: usize) -> NetworkSpec {
    NetworkSpec::mlp(&[2, 32, 32, n_out], NetActivation::Sin).unwrap()
}

fn count(spec: &NetworkSpec, c: usize, o: usize, variant: Variant) -> usize {
    MonomialLinear::zeros(spec, c, o, variant)
        .unwrap()
        .num_params()
}

// --- Parameter counts ------------------------------------------------------------------------

#[test]
fn cnn_zoo_models_have_254619_parameters() {
    // SPEC §6.5: NFN body 163,698 + pool γ/β 320 + head 90,601, for both activations.
    for act in [NetActivation::Relu, NetActivation::Tanh] {
        let m = Model::monomial_cnn_zoo(act, &mut rng(0)).unwrap();
        assert_eq!(m.num_params(), 254_619, "{act:?}");
        let (mut body, mut pool, mut head) = (0, 0, 0);
        for l in m.layers() {
            match l {
                Layer::Monomial(x) => body += x.num_params(),
                Layer::Perm(x) => body += x.num_params(),
                Layer::Pool(p) => pool += p.num_params(),
                Layer::Dense(d) => head += d.num_params(),
                _ => {}
            }
        }
        assert_eq!((body, pool, head), (163_698, 320, 90_601), "{act:?}");
    }
}

#[test]
fn cnn_zoo_models_have_the_paper_layer_stack() {
    // SPEC §6.1: [16,16,5] with ReLU, or tanh, tanh, abs; pool; 250 -> 200 -> 200 -> 1, sigmoid.
    for (act, acts) in [
        (
            NetActivation::Relu,
            [Activation::Relu, Activation::Relu, Activation::Relu],
        ),
        (
            NetActivation::Tanh,
            [Activation::Tanh, Activation::Tanh, Activation::Abs],
        ),
    ] {
        let m = Model::monomial_cnn_zoo(act, &mut rng(1)).unwrap();
        let l = m.layers();
        assert_eq!(l.len(), 13, "{act:?}");
        for (i, (c, o)) in [(1, 16), (16, 16), (16, 5)].into_iter().enumerate() {
            match (&l[2 * i], &l[2 * i + 1]) {
                (Layer::Monomial(x), Layer::Activation(a)) => {
                    assert_eq!((x.c_in, x.c_out, x.variant), (c, o, Variant::Scale));
                    assert_eq!(*a, acts[i]);
                }
                other => panic!("{act:?} layer {i}: {other:?}"),
            }
        }
        match &l[6] {
            Layer::Pool(p) => {
                assert_eq!(
                    (p.mode, p.axes, p.channels),
                    (PoolMode::ParamMulL2, PoolAxes::Hidden, 5)
                );
                assert_eq!(p.out_features(), 250);
            }
            other => panic!("{other:?}"),
        }
        let dense: Vec<(usize, usize)> = l
            .iter()
            .filter_map(|x| match x {
                Layer::Dense(d) => Some((d.n_in, d.n_out)),
                _ => None,
            })
            .collect();
        assert_eq!(dense, vec![(250, 200), (200, 200), (200, 1)]);
        assert_eq!(l[12], Layer::Activation(Activation::Sigmoid));
    }
}

#[test]
fn monomial_linear_counts_match_the_spec_table_for_the_cnn_zoo() {
    // SPEC §3.5 worked numbers.
    let spec = zoo_spec();
    assert_eq!(count(&spec, 1, 16, Variant::Scale), 7_584);
    assert_eq!(count(&spec, 16, 16, Variant::Scale), 118_944);
    assert_eq!(count(&spec, 16, 5, Variant::Scale), 37_170);
}

#[test]
fn monomial_linear_count_is_464_c_c_prime_plus_10_c_prime_on_the_cnn_zoo() {
    let spec = zoo_spec();
    for c in 1..=6 {
        for o in 1..=6 {
            assert_eq!(
                count(&spec, c, o, Variant::Scale),
                464 * c * o + 10 * o,
                "{c}->{o}"
            );
        }
    }
}

#[test]
fn monomial_linear_count_matches_the_general_formula() {
    // SPEC §3.5: P = cc'(f1²n0² + 2f1n0 + 1) + Σ_mid cc'(f²+1) + cc'(fL²nL² + fL nL²) + c'nL,
    // where this crate's Λ^L is (c', c, nL, nL) (SPEC §3.4), i.e. cc'nL² instead of cc'fL nL².
    let specs = [
        NetworkSpec::mlp(&[3, 7, 2], NetActivation::Relu).unwrap(),
        NetworkSpec::mlp(&[2, 6, 4, 5, 3, 1], NetActivation::Relu).unwrap(),
        NetworkSpec::new(
            vec![
                LayerShape::conv(4, 2, 3, 3),
                LayerShape::conv(6, 4, 5, 5),
                LayerShape::conv(3, 6, 1, 3),
            ],
            NetActivation::Relu,
        )
        .unwrap(),
        zoo_spec(),
    ];
    for spec in &specs {
        let l = spec.num_layers();
        let f: Vec<usize> = spec.layers.iter().map(|s| s.f()).collect();
        let (n0, nl) = (spec.n_in(), spec.n_out());
        for (c, o) in [(1, 1), (2, 3), (4, 2)] {
            let cc = c * o;
            let mut p = cc * (f[0] * f[0] * n0 * n0 + 2 * f[0] * n0 + 1);
            for fi in &f[1..l - 1] {
                p += cc * (fi * fi + 1);
            }
            p += cc * (f[l - 1] * f[l - 1] * nl * nl + nl * nl) + o * nl;
            assert_eq!(count(spec, c, o, Variant::Scale), p, "{spec:?} {c}->{o}");
            // Sign variant: Ω (fL c', c, nL) and Ξ (c', fL c, nL), and for L = 2 the two
            // weight-weight terms (f1c', f2c, nL, n0) and (f2c', f1c, n0, nL).
            let mut s = p + 2 * f[l - 1] * cc * nl;
            if l == 2 {
                s += 2 * f[0] * f[1] * cc * nl * n0;
            }
            assert_eq!(
                count(spec, c, o, Variant::Sign),
                s,
                "{spec:?} {c}->{o} sign"
            );
        }
    }
}

#[test]
fn siren_layer_counts_are_13cc_plus_c_and_15cc_plus_c_with_the_sign_terms() {
    // SPEC §3.5 all-dense case (n0 = 2, nL = 1, L = 3): HNPS 13cc' + c', Siren 15cc' + c'.
    let spec = siren(1);
    for (c, o) in [(1, 1), (1, 64), (64, 64), (64, 1), (16, 3)] {
        assert_eq!(count(&spec, c, o, Variant::Scale), 13 * c * o + o);
        assert_eq!(count(&spec, c, o, Variant::Sign), 15 * c * o + o);
    }
}

// --- Pool widths -----------------------------------------------------------------------------

fn pool_width(spec: &NetworkSpec, c: usize, mode: PoolMode, axes: PoolAxes) -> (usize, usize) {
    let p = InvariantPool::new(spec, c, mode, axes).unwrap();
    (p.width(), p.out_features())
}

#[test]
fn cnn_zoo_pool_width_is_50_per_channel() {
    // SPEC §4.2: F = (n0 f1 + 1) + Σ_mid (f + 1) + (nL fL + nL) = 10 + 10 + 10 + 20.
    for c in 1..=5 {
        for mode in [
            PoolMode::L1,
            PoolMode::L2,
            PoolMode::L2Square,
            PoolMode::ParamMulL2,
            PoolMode::Mean,
        ] {
            assert_eq!(
                pool_width(&zoo_spec(), c, mode, PoolAxes::Hidden),
                (50, 50 * c)
            );
        }
        // NPPool: F = Σ (f_i + 1) = 10 + 10 + 10 + 2 (SPEC §5.3).
        assert_eq!(
            pool_width(&zoo_spec(), c, PoolMode::Mean, PoolAxes::All),
            (32, 32 * c)
        );
    }
}

#[test]
fn siren_pool_width_is_3_plus_2_plus_2_n_out() {
    for n_out in [1, 3] {
        for c in [1, 4] {
            let (w, total) = pool_width(&siren(n_out), c, PoolMode::ParamMulL2, PoolAxes::Hidden);
            assert_eq!(w, 3 + 2 + 2 * n_out);
            assert_eq!(total, c * w);
        }
    }
}

#[test]
fn pool_output_has_shape_b_c_f() {
    let spec = zoo_spec();
    let mut r = rng(2);
    let mut pool = InvariantPool::new(&spec, 3, PoolMode::ParamMulL2, PoolAxes::Hidden).unwrap();
    pool.randomize(&mut r);
    let m = Model::new(spec.clone(), 3, vec![Layer::Pool(pool)]);
    let u = WeightSpace::random(&spec, 2, 3, &mut r);
    let y = m
        .forward(&Cpu::<f64>::new(), &u)
        .unwrap()
        .features()
        .unwrap();
    assert_eq!(y.shape, vec![2, 3, 50]);
    // The last piece is the raw last bias (SPEC §4.2): b^(L)[b, c, :] verbatim.
    for b in 0..2 {
        for c in 0..3 {
            let got = &y.data[(b * 3 + c) * 50 + 40..(b * 3 + c) * 50 + 50];
            let want = &u.biases[3].data[(b * 3 + c) * 10..(b * 3 + c) * 10 + 10];
            assert_eq!(got, want);
        }
    }
}

#[test]
fn pool_params_are_gamma_beta_per_tensor() {
    // SPEC §4.1: C·f per weight (conv), C per dense weight and per bias; the last bias's γ/β
    // exist but are unused. CNN zoo, C = 5: 2·5·(9+9+9+1) + 2·5·4 = 320.
    let p = InvariantPool::new(&zoo_spec(), 5, PoolMode::ParamMulL2, PoolAxes::Hidden).unwrap();
    assert_eq!(p.num_params(), 320);
    for mode in [
        PoolMode::L1,
        PoolMode::L2,
        PoolMode::L2Square,
        PoolMode::Mean,
    ] {
        let p = InvariantPool::new(&zoo_spec(), 5, mode, PoolAxes::Hidden).unwrap();
        assert_eq!(p.num_params(), 0, "{mode:?}");
    }
}

// --- Checkpoints -----------------------------------------------------------------------------

fn temp_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "monomial-nfn-model-{tag}-{}-{:?}.safetensors",
        std::process::id(),
        std::thread::current().id()
    ))
}

#[test]
fn checkpoint_round_trip_gives_identical_forward_outputs() {
    for (i, act) in [NetActivation::Relu, NetActivation::Tanh]
        .into_iter()
        .enumerate()
    {
        let saved = Model::monomial_cnn_zoo(act, &mut rng(10 + i as u64)).unwrap();
        let mut loaded = Model::monomial_cnn_zoo(act, &mut rng(20 + i as u64)).unwrap();
        let u = WeightSpace::random(saved.spec(), 3, 1, &mut rng(30));
        let cpu = Cpu::<f64>::new();
        let y = saved.forward(&cpu, &u).unwrap().features().unwrap();
        let before = loaded.forward(&cpu, &u).unwrap().features().unwrap();
        assert_ne!(y, before, "differently seeded models should differ");
        let path = temp_path(&format!("roundtrip{i}"));
        save_checkpoint(&saved, &path).unwrap();
        // Loading must also drop the plan cached by the forward above.
        load_checkpoint(&mut loaded, &path).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(
            loaded.layers(),
            saved.layers(),
            "{act:?}: parameters differ"
        );
        let after = loaded.forward(&cpu, &u).unwrap().features().unwrap();
        assert_eq!(after, y, "{act:?}: forward differs after round trip");
        let f32b = Cpu::<f32>::new();
        assert_eq!(
            loaded.forward(&f32b, &u).unwrap().features().unwrap(),
            saved.forward(&f32b, &u).unwrap().features().unwrap()
        );
    }
}

#[test]
fn checkpoint_round_trip_of_an_equivariant_sign_stack() {
    let spec = NetworkSpec::mlp(&[3, 7, 2], NetActivation::Tanh).unwrap();
    let build = |seed| {
        let mut r = rng(seed);
        Model::new(
            spec.clone(),
            2,
            vec![
                Layer::Monomial(
                    MonomialLinear::new(&spec, 2, 3, Variant::Sign, Init::XavierNormal, &mut r)
                        .unwrap(),
                ),
                Layer::Activation(Activation::Tanh),
                Layer::Monomial(
                    MonomialLinear::new(&spec, 3, 1, Variant::Sign, Init::KaimingNormal, &mut r)
                        .unwrap(),
                ),
            ],
        )
    };
    let (saved, mut loaded) = (build(40), build(41));
    let path = temp_path("sign-stack");
    save_checkpoint(&saved, &path).unwrap();
    load_checkpoint(&mut loaded, &path).unwrap();
    std::fs::remove_file(&path).ok();
    let u = WeightSpace::random(&spec, 2, 2, &mut rng(42));
    let cpu = Cpu::<f64>::new();
    assert_eq!(
        loaded.forward(&cpu, &u).unwrap().space().unwrap(),
        saved.forward(&cpu, &u).unwrap().space().unwrap()
    );
}

// --- Initialisation statistics (SPEC §7) -----------------------------------------------------

fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn assert_std(what: &str, xs: &[f64], want: f64) {
    assert!(xs.len() >= 10_000, "{what}: only {} samples", xs.len());
    let (mean, std) = mean_std(xs);
    assert!(
        (std - want).abs() <= 0.05 * want,
        "{what}: sample std {std:.5} vs {want:.5} (n = {})",
        xs.len()
    );
    // The mean of n i.i.d. N(0, σ²) draws is within 5σ/√n with overwhelming probability.
    assert!(
        mean.abs() <= 5.0 * want / (xs.len() as f64).sqrt(),
        "{what}: mean {mean:.2e}"
    );
}

fn param<'a>(layer: &'a MonomialLinear, name: &str) -> &'a Tensor {
    layer
        .params
        .get(name)
        .unwrap_or_else(|| panic!("{name} exists"))
}

#[test]
fn xavier_normal_init_matches_spec_std_for_the_cnn_zoo_16_to_16_layer() {
    // SPEC §7 example table (16→16 rows, f = 9, n0 = 1, nL = 10, c = c' = 16).
    let layer = MonomialLinear::new(
        &zoo_spec(),
        16,
        16,
        Variant::Scale,
        Init::XavierNormal,
        &mut rng(50),
    )
    .unwrap();
    // mid-W: Φ^i is 144×144 = 20,736 entries; in = out = 144, std = √(2/288) = 0.0833.
    for name in ["mid1.phi", "mid2.phi"] {
        let t = param(&layer, name);
        assert_eq!(t.shape, vec![144, 144]);
        assert_std(name, &t.data, (2.0f64 / 288.0).sqrt());
    }
    assert!(((2.0f64 / 288.0).sqrt() - 0.0833).abs() < 5e-5);
    // last-W: Φ^L (16, 16, 10, 10) = 25,600 entries; in = out = f c nL = 160, std 0.0791.
    let t = param(&layer, "last.phi");
    assert_eq!(t.len(), 25_600);
    assert_std("last.phi", &t.data, (2.0f64 / 320.0).sqrt());
    // last-b: Λ^L (25,600) with τ; in = c nL = 160, out = 2 c' nL = 320, std 0.0645.
    let t = param(&layer, "last.lambda");
    assert_eq!(t.len(), 25_600);
    assert_std("last.lambda", &t.data, (2.0f64 / 480.0).sqrt());
    // first-W: Φ¹ (144, 144, 1, 1) = 20,736 entries with Ψ¹; in = f c n0 + c = 160,
    // out = 2 f c' n0 = 288, std √(2/448) = 0.0668.
    let t = param(&layer, "first.phi");
    assert_eq!(t.len(), 20_736);
    assert_std("first.phi", &t.data, (2.0f64 / 448.0).sqrt());
}

#[test]
fn xavier_normal_init_matches_spec_std_for_the_cnn_zoo_first_layer_groups() {
    // The 1→16 layer's first-W (in 10, out 288, std 0.0819) and first-b (in 10, out 32,
    // std 0.218) groups hold 1,440 and 160 values: pool independently seeded layers until each
    // group has ≥ 1e4 samples.
    let spec = zoo_spec();
    let (mut first_w, mut first_b) = (Vec::new(), Vec::new());
    let mut r = rng(51);
    while first_b.len() < 10_000 {
        let layer =
            MonomialLinear::new(&spec, 1, 16, Variant::Scale, Init::XavierNormal, &mut r).unwrap();
        if first_w.len() < 20_000 {
            first_w.extend_from_slice(&param(&layer, "first.phi").data);
            first_w.extend_from_slice(&param(&layer, "first.psi").data);
        }
        first_b.extend_from_slice(&param(&layer, "first.gamma").data);
        first_b.extend_from_slice(&param(&layer, "first.lambda").data);
    }
    let (w_std, b_std) = ((2.0f64 / 298.0).sqrt(), (2.0f64 / 42.0).sqrt());
    assert!((w_std - 0.0819).abs() < 5e-5 && (b_std - 0.218).abs() < 5e-4);
    assert_std("first-W 1->16", &first_w, w_std);
    assert_std("first-b 1->16", &first_b, b_std);
}

#[test]
fn other_init_schemes_follow_their_formulas() {
    // SPEC §7 on mid-W of the 16→16 zoo layer (in = out = 144).
    let spec = zoo_spec();
    let mid = |init| {
        let l = MonomialLinear::new(&spec, 16, 16, Variant::Scale, init, &mut rng(52)).unwrap();
        param(&l, "mid1.phi").data.clone()
    };
    // kaiming_normal: N(0, √(2/in)).
    assert_std(
        "kaiming",
        &mid(Init::KaimingNormal),
        (2.0f64 / 144.0).sqrt(),
    );
    // pytorch_default: U(±1/√in), std bound/√3; xavier_uniform: U(±√(6/(in+out))).
    for (init, bound) in [
        (Init::PytorchDefault, 1.0 / 144f64.sqrt()),
        (Init::XavierUniform, (6.0f64 / 288.0).sqrt()),
    ] {
        let xs = mid(init);
        let max = xs.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            max <= bound && max > 0.99 * bound,
            "{init:?}: max {max} vs bound {bound}"
        );
        assert_std(&format!("{init:?}"), &xs, bound / 3f64.sqrt());
    }
}

#[test]
fn pool_gamma_beta_randomize_to_standard_normal() {
    // SPEC §7: γ, β ~ N(0, 1) element-wise. Pool a wide model's γ/β (C·f values per tensor).
    let spec = zoo_spec();
    let mut r = rng(53);
    let mut xs = Vec::new();
    while xs.len() < 10_000 {
        let mut p = InvariantPool::new(&spec, 64, PoolMode::ParamMulL2, PoolAxes::Hidden).unwrap();
        p.randomize(&mut r);
        for (_, t) in p.params.iter() {
            xs.extend_from_slice(&t.data);
        }
    }
    assert_std("pool γ/β", &xs, 1.0);
    // A fresh pool starts at γ = 1, β = 0.
    let p = InvariantPool::new(&spec, 2, PoolMode::ParamMulL2, PoolAxes::Hidden).unwrap();
    for (name, t) in p.params.iter() {
        let want = if name.starts_with("gamma") { 1.0 } else { 0.0 };
        assert!(t.data.iter().all(|&v| v == want), "{name}");
    }
}

#[test]
fn same_seed_builds_the_same_model() {
    let a = Model::monomial_cnn_zoo(NetActivation::Relu, &mut rng(60)).unwrap();
    let b = Model::monomial_cnn_zoo(NetActivation::Relu, &mut rng(60)).unwrap();
    let c = Model::monomial_cnn_zoo(NetActivation::Relu, &mut rng(61)).unwrap();
    assert_eq!(a.layers(), b.layers());
    assert_ne!(a.layers(), c.layers());
}
