//! The permutation-only baselines (SPEC §5): NPLinear and HNPLinear are equivariant to the
//! permutations they claim and to no more, their invariant models ignore hidden permutations but
//! not rescaling, the flatten orders the goldens cannot pin (SPEC A.3) follow the SPEC, the
//! paper's configurations have the reference's parameter counts, and the GPU agrees with CPU f64.

mod common;

use monomial_nfn::{
    Backend, Cpu, GroupElement, Layer, LayerShape, Model, NetActivation, NetworkSpec, PermKind,
    PermLinear, ScaleRange, Symmetry, Tensor, WeightSpace,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn mlp(widths: &[usize]) -> NetworkSpec {
    NetworkSpec::mlp(widths, NetActivation::Relu).unwrap()
}

/// Two input channels and a conv last layer: n_0 > 1 with f_1 > 1, which no golden covers.
fn all_conv_cnn() -> NetworkSpec {
    NetworkSpec::new(
        vec![
            LayerShape::conv(5, 2, 3, 3),
            LayerShape::conv(4, 5, 5, 5),
            LayerShape::conv(3, 4, 1, 3),
        ],
        NetActivation::Relu,
    )
    .unwrap()
}

fn architectures() -> Vec<(&'static str, NetworkSpec)> {
    let conv_l2 = NetworkSpec::new(
        vec![LayerShape::conv(5, 2, 3, 3), LayerShape::dense(3, 5)],
        NetActivation::Relu,
    )
    .unwrap();
    vec![
        ("mlp L=2 [3,7,2]", mlp(&[3, 7, 2])),
        ("cnn L=2 conv+dense", conv_l2),
        ("mlp L=3 [3,7,5,2]", mlp(&[3, 7, 5, 2])),
        ("mlp L=5 [2,6,4,5,3,1]", mlp(&[2, 6, 4, 5, 3, 1])),
        ("cnn all-conv n0=2", all_conv_cnn()),
        ("cnn zoo", NetworkSpec::cnn_zoo(NetActivation::Relu)),
    ]
}

const KINDS: [PermKind; 3] = [
    PermKind::Np { io_embed: false },
    PermKind::Np { io_embed: true },
    PermKind::Hnp,
];

/// A layer with every coefficient (io embeddings included) drawn U(±1).
fn random_layer(spec: &NetworkSpec, c: usize, o: usize, kind: PermKind, seed: u64) -> Model {
    let mut r = rng(seed);
    let mut layer = PermLinear::new(spec, c, o, kind, &mut r).unwrap();
    let names: Vec<(String, Vec<usize>)> = layer
        .params
        .iter()
        .map(|(n, t)| (n.to_string(), t.shape.clone()))
        .collect();
    for (n, shape) in names {
        let len = shape.iter().product();
        let data = (0..len).map(|_| r.random_range(-1.0..1.0)).collect();
        layer
            .params
            .set(&n, Tensor::new(shape, data).unwrap())
            .unwrap();
    }
    Model::new(spec.clone(), c, vec![Layer::Perm(layer)])
}

fn tensors(ws: &WeightSpace) -> impl Iterator<Item = &Tensor> {
    ws.weights.iter().chain(&ws.biases)
}

/// max over tensors of max|a − b| / max|b|.
fn rel_err(a: &WeightSpace, b: &WeightSpace) -> f64 {
    tensors(a)
        .zip(tensors(b))
        .map(|(x, y)| {
            assert_eq!(x.shape, y.shape);
            let m = y.max_abs();
            assert!(m > 0.0, "reference output tensor is identically zero");
            let d = x
                .data
                .iter()
                .zip(&y.data)
                .fold(0.0f64, |e, (p, q)| e.max((p - q).abs()));
            d / m
        })
        .fold(0.0, f64::max)
}

fn forward_space(m: &Model, u: &WeightSpace) -> WeightSpace {
    m.forward(&Cpu::<f64>::new(), u).unwrap().space().unwrap()
}

/// Permutes the input neurons (columns of W¹) by `pin` and the output neurons (rows of W^L and
/// b^L) by `pout`, as gathers: W'[.., k] = W[.., pin[k]].
fn permute_io(spec: &NetworkSpec, u: &WeightSpace, pin: &[usize], pout: &[usize]) -> WeightSpace {
    let mut v = u.clone();
    let l = spec.num_layers();
    let (b, c) = (u.batch(), u.channels());
    let s0 = spec.layers[0];
    let (n1, n0, f0) = (s0.n_out, s0.n_in, s0.f());
    for bc in 0..b * c {
        for j in 0..n1 {
            for (k, &pk) in pin.iter().enumerate() {
                for t in 0..f0 {
                    let dst = ((bc * n1 + j) * n0 + k) * f0 + t;
                    let src = ((bc * n1 + j) * n0 + pk) * f0 + t;
                    v.weights[0].data[dst] = u.weights[0].data[src];
                }
            }
        }
    }
    let sl = spec.layers[l - 1];
    let (nl, nh, fl) = (sl.n_out, sl.n_in, sl.f());
    for bc in 0..b * c {
        for (j, &pj) in pout.iter().enumerate() {
            let row = nh * fl;
            let (dst, src) = ((bc * nl + j) * row, (bc * nl + pj) * row);
            v.weights[l - 1].data[dst..dst + row]
                .copy_from_slice(&u.weights[l - 1].data[src..src + row]);
            v.biases[l - 1].data[bc * nl + j] = u.biases[l - 1].data[bc * nl + pj];
        }
    }
    v
}

fn shuffled(n: usize, r: &mut ChaCha8Rng) -> Vec<usize> {
    use rand::seq::SliceRandom;
    // Redraw until it is not the identity (for n > 1), so negative checks are not vacuous.
    loop {
        let mut p: Vec<usize> = (0..n).collect();
        p.shuffle(r);
        if n == 1 || p.iter().enumerate().any(|(i, &x)| i != x) {
            return p;
        }
    }
}

#[test]
fn np_and_hnp_layers_commute_with_hidden_permutations() {
    let mut r = rng(1);
    for (name, spec) in architectures() {
        for kind in KINDS {
            for (c, o) in [(1, 1), (1, 3), (2, 3), (3, 2)] {
                let m = random_layer(&spec, c, o, kind, r.random());
                let u = WeightSpace::random(&spec, 2, c, &mut r);
                let g = GroupElement::sample(
                    &spec,
                    Symmetry::Permutation,
                    ScaleRange::default(),
                    &mut r,
                );
                let e_gu = forward_space(&m, &g.act(&spec, &u).unwrap());
                let back = g.inverse().act(&spec, &e_gu).unwrap();
                let err = rel_err(&back, &forward_space(&m, &u));
                assert!(err <= 1e-12, "{name} {kind:?} {c}->{o}: {err:.3e}");
            }
        }
    }
}

#[test]
fn only_np_without_embedding_commutes_with_input_and_output_permutations() {
    let mut r = rng(2);
    for (name, spec) in architectures() {
        let (n0, nl) = (spec.n_in(), spec.n_out());
        if n0 < 2 || nl < 2 {
            continue;
        }
        for kind in KINDS {
            let m = random_layer(&spec, 2, 3, kind, r.random());
            let u = WeightSpace::random(&spec, 2, 2, &mut r);
            let (pin, pout) = (shuffled(n0, &mut r), shuffled(nl, &mut r));
            let e_pu = forward_space(&m, &permute_io(&spec, &u, &pin, &pout));
            let p_eu = permute_io(&spec, &forward_space(&m, &u), &pin, &pout);
            let err = rel_err(&e_pu, &p_eu);
            if kind == (PermKind::Np { io_embed: false }) {
                assert!(err <= 1e-12, "{name} {kind:?}: {err:.3e}");
            } else {
                assert!(err > 1e-3, "{name} {kind:?} ignores io order: {err:.3e}");
            }
        }
    }
}

#[test]
fn baseline_models_are_permutation_invariant_but_not_scale_invariant() {
    let mut r = rng(3);
    let spec = all_conv_cnn();
    let cpu = Cpu::<f64>::new();
    for kind in KINDS {
        let m = Model::perm_invariant(&spec, 1, &[3, 2], kind, &[8], &mut r).unwrap();
        let u = WeightSpace::random(&spec, 4, 1, &mut r);
        let y = m.forward(&cpu, &u).unwrap().features().unwrap();
        let change = |sym: Symmetry, r: &mut ChaCha8Rng| {
            let g = GroupElement::sample(&spec, sym, ScaleRange::default(), r);
            let yg = m
                .forward(&cpu, &g.act(&spec, &u).unwrap())
                .unwrap()
                .features()
                .unwrap();
            y.data
                .iter()
                .zip(&yg.data)
                .fold(0.0f64, |e, (a, b)| e.max((a - b).abs()))
                / y.max_abs()
        };
        let perm = change(Symmetry::Permutation, &mut r);
        assert!(
            perm <= 1e-12,
            "{kind:?}: permutation changed output by {perm:.3e}"
        );
        let scale = change(Symmetry::PositiveScale, &mut r);
        assert!(
            scale > 1e-3,
            "{kind:?}: positive scaling left output unchanged ({scale:.3e})"
        );
    }
}

#[test]
fn paper_baselines_have_the_reference_parameter_counts() {
    // SPEC §6.5: HNP body 1,558,742, NP-PosEmb body 778,389, head 1,253,001 for both.
    let mut r = rng(4);
    for (m, total, body) in [
        (Model::hnp_cnn_zoo(&mut r).unwrap(), 2_811_743, 1_558_742),
        (Model::np_cnn_zoo(&mut r).unwrap(), 2_031_390, 778_389),
    ] {
        assert_eq!(m.num_params(), total);
        let eq: usize = m
            .layers()
            .iter()
            .map(|l| match l {
                Layer::Perm(p) => p.num_params(),
                _ => 0,
            })
            .sum();
        assert_eq!((eq, total - eq), (body, 1_253_001));
    }
}

/// A zero HNP layer on the all-conv CNN (n₀ = 2, f₁ = 9, c = 2) with one coefficient set.
fn probe(name: &str, row: usize, col: usize) -> Model {
    let spec = all_conv_cnn();
    let mut layer = PermLinear::zeros(&spec, 2, 1, PermKind::Hnp).unwrap();
    let w = layer.params.get(name).unwrap();
    let (shape, cols) = (w.shape.clone(), w.shape[1]);
    let mut data = vec![0.0; w.len()];
    data[row * cols + col] = 1.0;
    layer
        .params
        .set(name, Tensor::new(shape, data).unwrap())
        .unwrap();
    Model::new(spec, 2, vec![Layer::Perm(layer)])
}

#[test]
fn hnp_first_layer_flattens_rows_channel_major_as_the_spec_says() {
    // SPEC §5.2 / A.3: e_j starts with X¹[·,j,·] flattened as (n, q) -> n·n₀ + q, and the output
    // index is m·n₀ + k. Route input (n = c·9 + t = 1·9 + 2, q = 0) to output (m = 4, k = 1).
    let spec = all_conv_cnn();
    let (n0, n1) = (2, 5);
    let m = probe("w0_rpt.weight", 4 * n0 + 1, 11 * n0);
    let u = WeightSpace::random(&spec, 3, 2, &mut rng(5));
    let out = forward_space(&m, &u);
    let x = &u.weights[0]; // (B, 2, 5, 2, 3, 3)
    let y = &out.weights[0]; // (B, 1, 5, 2, 3, 3)
    for b in 0..3 {
        for j in 0..n1 {
            for k in 0..n0 {
                for t in 0..9 {
                    let got = y.data[((b * n1 + j) * n0 + k) * 9 + t];
                    let want = if (k, t) == (1, 4) {
                        x.data[(((b * 2 + 1) * n1 + j) * n0) * 9 + 2]
                    } else {
                        0.0
                    };
                    assert_eq!(got, want, "b {b} j {j} k {k} t {t}");
                }
            }
        }
    }
}

#[test]
fn hnp_global_vector_flattens_first_row_mean_channel_major() {
    // g_H = [M¹..M^L (18 + 50 + 6 for c = 2); β¹..β^L (3·2); flat R¹ (n·n₀ + k); ...]: its entry
    // for (n = 11, k = 0) is mean_j X¹[·, 11, j, 0], broadcast to every W'¹ row j.
    let spec = all_conv_cnn();
    let (n0, n1) = (2, 5);
    let offset = 18 + 50 + 6 + 3 * 2;
    let m = probe("w0_rbdcst.weight", 0, offset + 11 * n0);
    let u = WeightSpace::random(&spec, 2, 2, &mut rng(6));
    let out = forward_space(&m, &u);
    let x = &u.weights[0];
    for b in 0..2 {
        let mean: f64 = (0..n1)
            .map(|j| x.data[(((b * 2 + 1) * n1 + j) * n0) * 9 + 2])
            .sum::<f64>()
            / n1 as f64;
        for j in 0..n1 {
            let got = out.weights[0].data[((b * n1 + j) * n0) * 9];
            assert!((got - mean).abs() <= 1e-15, "b {b} j {j}: {got} vs {mean}");
        }
    }
}

#[test]
fn gpu_matches_cpu_f64_on_baseline_layers_and_models() {
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let cpu = Cpu::<f64>::new();
    let mut r = rng(7);
    for (name, spec) in architectures() {
        for kind in KINDS {
            let (c, o) = (r.random_range(1..=5), r.random_range(1..=5));
            let m = random_layer(&spec, c, o, kind, r.random());
            let batch = [1, 33][r.random_range(0..2)];
            let u = WeightSpace::random(&spec, batch, c, &mut r);
            let g = m.forward(&gpu, &u).unwrap().space().unwrap();
            let err = rel_err(&g, &forward_space(&m, &u));
            assert!(
                err <= 1e-5,
                "{name} {kind:?} {c}->{o} batch {batch}: {err:.3e}"
            );
        }
        let m = Model::perm_invariant(&spec, 1, &[4, 3], PermKind::Hnp, &[16], &mut r).unwrap();
        let u = WeightSpace::random(&spec, 5, 1, &mut r);
        let a = m.forward(&gpu, &u).unwrap().features().unwrap();
        let b = m.forward(&cpu, &u).unwrap().features().unwrap();
        let err = a
            .data
            .iter()
            .zip(&b.data)
            .fold(0.0f64, |e, (p, q)| e.max((p - q).abs()));
        assert!(
            err <= 1e-5 * b.max_abs().max(1e-3),
            "{name} HNP model: {err:.3e}"
        );
        eprintln!("{name}: gpu {}", gpu.describe());
    }
}

#[test]
fn statnn_features_are_the_seven_statistics_of_every_tensor() {
    // One MLP network [2, 3, 1]: W₀ (3×2), b₀ (3), W₁ (1×3), b₁ (1).
    let spec = mlp(&[2, 3, 1]);
    let w0: Vec<f64> = vec![4.0, -1.0, 0.5, 2.0, 3.0, 0.0];
    let u = WeightSpace::new(
        &spec,
        vec![
            Tensor::new(vec![1, 1, 3, 2], w0.clone()).unwrap(),
            Tensor::new(vec![1, 1, 1, 3], vec![1.0, 2.0, 6.0]).unwrap(),
        ],
        vec![
            Tensor::new(vec![1, 1, 3], vec![0.0, 0.0, 3.0]).unwrap(),
            Tensor::new(vec![1, 1, 1], vec![7.0]).unwrap(),
        ],
    )
    .unwrap();
    let stat = monomial_nfn::nn::stat::StatFeatures::new(&spec, 1).unwrap();
    let m = Model::new(spec.clone(), 1, vec![Layer::Stat(stat)]);
    let y = m
        .forward(&Cpu::<f64>::new(), &u)
        .unwrap()
        .features()
        .unwrap();
    // W₀ sorted: -1, 0, .5, 2, 3, 4; mean 1.4167; unbiased var; quantiles at positions 0,
    // 1.25, 2.5, 3.75, 5 of the sorted values (linear interpolation).
    let mean = w0.iter().sum::<f64>() / 6.0;
    let var = w0.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 5.0;
    let want_w0 = [mean, var, -1.0, 0.125, 1.25, 2.75, 4.0];
    for (k, w) in want_w0.iter().enumerate() {
        assert!(
            (y.data[k] - w).abs() < 1e-12,
            "W0 stat {k}: {} vs {w}",
            y.data[k]
        );
    }
    // b₁ has a single value: variance 0 (n − 1 clamped to 1), every quantile 7.
    assert_eq!(&y.data[21..28], &[7.0, 0.0, 7.0, 7.0, 7.0, 7.0, 7.0]);
    if let Some(gpu) = common::gpu_or_skip() {
        let mut r = rng(11);
        let spec = all_conv_cnn();
        let stat = monomial_nfn::nn::stat::StatFeatures::new(&spec, 3).unwrap();
        let m = Model::new(spec.clone(), 3, vec![Layer::Stat(stat)]);
        let u = WeightSpace::random(&spec, 5, 3, &mut r);
        let a = m.forward(&gpu, &u).unwrap().features().unwrap();
        let b = m
            .forward(&Cpu::<f64>::new(), &u)
            .unwrap()
            .features()
            .unwrap();
        for (p, q) in a.data.iter().zip(&b.data) {
            assert!(
                (p - q).abs() <= 1e-5 * q.abs().max(1.0),
                "gpu {p} vs cpu {q}"
            );
        }
    }
}

#[test]
fn statnn_is_permutation_invariant_but_not_scale_invariant_and_has_1059001_parameters() {
    let mut r = rng(12);
    let m = Model::stat_cnn_zoo(&mut r).unwrap();
    assert_eq!(m.num_params(), 1_059_001);
    let spec = m.spec().clone();
    let cpu = Cpu::<f64>::new();
    let u = WeightSpace::random(&spec, 3, 1, &mut r);
    let y = m.forward(&cpu, &u).unwrap().features().unwrap();
    for (sym, invariant) in [
        (Symmetry::Permutation, true),
        (Symmetry::PositiveScale, false),
    ] {
        let g = GroupElement::sample(&spec, sym, ScaleRange::default(), &mut r);
        let yg = m
            .forward(&cpu, &g.act(&spec, &u).unwrap())
            .unwrap()
            .features()
            .unwrap();
        let d = y
            .data
            .iter()
            .zip(&yg.data)
            .fold(0.0f64, |e, (a, b)| e.max((a - b).abs()));
        assert_eq!(d <= 1e-12, invariant, "{sym:?}: change {d:.3e}");
    }
    // Its statistics have no input gradient: a typed error, not a panic.
    let t = Tensor::new(vec![3, 1], vec![0.5; 3]).unwrap();
    assert!(m
        .gradients(&cpu, &u, Some(&t), monomial_nfn::plan::LossKind::Bce)
        .is_err());
}
