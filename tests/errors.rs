//! Bad input gives a typed [`monomial_nfn::Error`], never a panic (DESIGN §3: "a bad shape is an
//! `Error`, never a panic").

use std::path::PathBuf;

use monomial_nfn::golden::check_golden;
use monomial_nfn::io::{load_checkpoint, save_checkpoint, TensorFile};
use monomial_nfn::nn::head::Dense;
use monomial_nfn::{
    Activation, Backend, Cpu, Error, GroupElement, Init, InvariantPool, Layer, LayerShape, Model,
    MonomialLinear, NetActivation, NetworkSpec, PoolAxes, PoolMode, ScaleRange, Symmetry, Tensor,
    Variant, WeightSpace,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn mlp() -> NetworkSpec {
    NetworkSpec::mlp(&[3, 5, 4, 2], NetActivation::Relu).unwrap()
}

/// Equivariant layer 1 -> 2, ReLU, layer 2 -> 1 on `spec`.
fn small_model(spec: &NetworkSpec) -> Model {
    let mut r = rng(0);
    Model::new(
        spec.clone(),
        1,
        vec![
            Layer::Monomial(
                MonomialLinear::new(spec, 1, 2, Variant::Scale, Init::XavierNormal, &mut r)
                    .unwrap(),
            ),
            Layer::Activation(Activation::Relu),
            Layer::Monomial(
                MonomialLinear::new(spec, 2, 1, Variant::Scale, Init::XavierNormal, &mut r)
                    .unwrap(),
            ),
        ],
    )
}

/// A fresh path in the system temp dir (no tempfile dependency); removed by the caller.
fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "monomial-nfn-errors-{tag}-{}-{:?}.safetensors",
        std::process::id(),
        std::thread::current().id()
    ))
}

/// Runs `f`, turning a panic into a test failure that says a typed error was expected.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => panic!("{what}: panicked instead of returning a typed error"),
    }
}

fn cpu() -> Cpu<f64> {
    Cpu::<f64>::new()
}

// --- Shapes ----------------------------------------------------------------------------------

#[test]
fn weight_space_with_a_wrong_layer_shape_is_a_shape_error_naming_the_layer() {
    let spec = mlp();
    let mut ws = WeightSpace::zeros(&spec, 2, 1);
    ws.weights[1] = Tensor::zeros(vec![2, 1, 4, 6]); // should be (2, 1, 4, 5)
    match WeightSpace::new(&spec, ws.weights.clone(), ws.biases.clone()) {
        Err(Error::Shape {
            what,
            expected,
            got,
        }) => {
            assert!(what.contains("weight 1"), "message names the layer: {what}");
            assert_eq!(expected, vec![2, 1, 4, 5]);
            assert_eq!(got, vec![2, 1, 4, 6]);
        }
        other => panic!("expected Error::Shape, got {other:?}"),
    }
    let mut ws = WeightSpace::zeros(&spec, 2, 1);
    ws.biases[2] = Tensor::zeros(vec![2, 1, 3]);
    match small_model(&spec).forward(&cpu(), &ws) {
        Err(Error::Shape { what, .. }) => assert!(what.contains("bias 2"), "{what}"),
        other => panic!("expected Error::Shape, got {other:?}"),
    }
}

#[test]
fn weight_space_with_a_missing_layer_is_a_shape_error() {
    let spec = mlp();
    let mut ws = WeightSpace::zeros(&spec, 1, 1);
    ws.weights.pop();
    ws.biases.pop();
    assert!(matches!(
        small_model(&spec).forward(&cpu(), &ws),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn weight_space_of_another_architecture_is_a_shape_error() {
    let model = small_model(&mlp());
    let other = NetworkSpec::cnn_zoo(NetActivation::Relu);
    let ws = WeightSpace::random(&other, 1, 1, &mut rng(1));
    assert!(matches!(
        model.forward(&cpu(), &ws),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn tensor_whose_data_does_not_fill_its_shape_is_an_error() {
    assert!(matches!(
        Tensor::new(vec![2, 3], vec![0.0; 5]),
        Err(Error::Shape { .. })
    ));
    // The fields are public, so an inconsistent tensor can still reach a model: that must be
    // an error too, not an out-of-bounds panic while packing.
    let spec = mlp();
    let mut ws = WeightSpace::zeros(&spec, 2, 1);
    ws.weights[0].data.truncate(7);
    let r = no_panic("short tensor data", || {
        small_model(&spec).forward(&cpu(), &ws).map(|_| ())
    });
    assert!(matches!(r, Err(Error::Shape { .. })), "got {r:?}");
}

#[test]
fn wrong_channel_count_for_a_model_is_a_shape_error() {
    let spec = mlp();
    let ws = WeightSpace::random(&spec, 2, 3, &mut rng(2)); // the model takes 1 channel
    match small_model(&spec).forward(&cpu(), &ws) {
        Err(Error::Shape { expected, got, .. }) => {
            assert_eq!(expected[1], 1);
            assert_eq!(got[1], 3);
        }
        other => panic!("expected Error::Shape, got {other:?}"),
    }
    let mut r = rng(3);
    let zoo = Model::monomial_cnn_zoo(NetActivation::Relu, &mut r).unwrap();
    let ws = WeightSpace::random(zoo.spec(), 1, 2, &mut r);
    assert!(matches!(zoo.forward(&cpu(), &ws), Err(Error::Shape { .. })));
}

#[test]
fn layers_whose_channels_do_not_chain_are_a_shape_error() {
    let spec = mlp();
    let mut r = rng(4);
    let model = Model::new(
        spec.clone(),
        1,
        vec![
            Layer::Monomial(
                MonomialLinear::new(&spec, 1, 2, Variant::Scale, Init::default(), &mut r).unwrap(),
            ),
            Layer::Monomial(
                MonomialLinear::new(&spec, 3, 1, Variant::Scale, Init::default(), &mut r).unwrap(),
            ),
        ],
    );
    let ws = WeightSpace::random(&spec, 1, 1, &mut r);
    assert!(matches!(
        model.forward(&cpu(), &ws),
        Err(Error::Shape { .. })
    ));
    // A pool with the wrong channel count, and a head with the wrong input width.
    let pool = InvariantPool::new(&spec, 4, PoolMode::L2, PoolAxes::Hidden).unwrap();
    let model = Model::new(spec.clone(), 1, vec![Layer::Pool(pool)]);
    assert!(matches!(
        model.forward(&cpu(), &ws),
        Err(Error::Shape { .. })
    ));
    let pool = InvariantPool::new(&spec, 1, PoolMode::L2, PoolAxes::Hidden).unwrap();
    let wrong = pool.out_features() + 1;
    let model = Model::new(
        spec.clone(),
        1,
        vec![
            Layer::Pool(pool),
            Layer::Dense(Dense::new(wrong, 3, &mut r).unwrap()),
        ],
    );
    assert!(matches!(
        model.forward(&cpu(), &ws),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn layer_built_for_another_architecture_is_an_error_not_a_panic() {
    // A MonomialLinear or pool carries its own spec; one built for different widths must be
    // rejected when the model is planned rather than indexing out of bounds.
    let spec = mlp();
    let other = NetworkSpec::mlp(&[3, 6, 4, 2], NetActivation::Relu).unwrap();
    let mut r = rng(5);
    let ws = WeightSpace::random(&spec, 2, 1, &mut r);
    let layers = [
        Layer::Monomial(
            MonomialLinear::new(&other, 1, 2, Variant::Scale, Init::default(), &mut r).unwrap(),
        ),
        Layer::Pool(InvariantPool::new(&other, 1, PoolMode::L2, PoolAxes::Hidden).unwrap()),
    ];
    for layer in layers {
        let model = Model::new(spec.clone(), 1, vec![layer]);
        let res = no_panic("layer for another spec", || {
            model.forward(&cpu(), &ws).map(|_| ())
        });
        assert!(
            matches!(res, Err(Error::Spec(_) | Error::Shape { .. })),
            "got {res:?}"
        );
    }
}

#[test]
fn layers_in_an_impossible_order_are_a_spec_error() {
    let spec = mlp();
    let mut r = rng(6);
    let pool = || InvariantPool::new(&spec, 1, PoolMode::L2, PoolAxes::Hidden).unwrap();
    let ws = WeightSpace::random(&spec, 1, 1, &mut r);
    // A dense layer reads a weight space flattened (the MLP baseline): a wrong input size is a
    // shape error naming the flattened length.
    let dense = Model::new(
        spec.clone(),
        1,
        vec![Layer::Dense(Dense::new(4, 1, &mut r).unwrap())],
    );
    assert!(matches!(
        dense.forward(&cpu(), &ws),
        Err(Error::Shape { .. })
    ));
    let ff = monomial_nfn::nn::fourier::FourierFeatures::new(1, 2, 1.0, &mut r).unwrap();
    for layers in [
        vec![Layer::Pool(pool()), Layer::Fourier(ff)],
        vec![Layer::Pool(pool()), Layer::Pool(pool())],
        vec![
            Layer::Pool(pool()),
            Layer::Monomial(
                MonomialLinear::new(&spec, 1, 1, Variant::Scale, Init::default(), &mut r).unwrap(),
            ),
        ],
    ] {
        let model = Model::new(spec.clone(), 1, layers);
        assert!(matches!(model.forward(&cpu(), &ws), Err(Error::Spec(_))));
    }
}

// --- Input values ----------------------------------------------------------------------------

#[test]
fn empty_batch_is_an_input_error() {
    let spec = mlp();
    let ws = WeightSpace::zeros(&spec, 0, 1);
    assert!(matches!(
        small_model(&spec).forward(&cpu(), &ws),
        Err(Error::Input(_))
    ));
    assert!(matches!(ws.validate(&spec, Some(1)), Err(Error::Input(_))));
}

#[test]
fn nan_or_infinity_in_the_input_is_an_input_error() {
    let spec = mlp();
    let model = small_model(&spec);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        for in_bias in [false, true] {
            let mut ws = WeightSpace::random(&spec, 2, 1, &mut rng(7));
            let t = if in_bias {
                &mut ws.biases[2]
            } else {
                &mut ws.weights[1]
            };
            let last = t.data.len() - 1;
            t.data[last] = bad;
            match model.forward(&cpu(), &ws) {
                Err(Error::Input(msg)) => {
                    let kind = if in_bias { "bias" } else { "weight" };
                    assert!(msg.contains(kind), "{msg}");
                }
                other => panic!("{bad} in the input: expected Error::Input, got {other:?}"),
            }
            // On the f32 backend too, and through the zoo model.
            assert!(matches!(
                model.forward(&Cpu::<f32>::new(), &ws),
                Err(Error::Input(_))
            ));
        }
    }
    let mut r = rng(8);
    let zoo = Model::monomial_cnn_zoo(NetActivation::Tanh, &mut r).unwrap();
    let mut ws = WeightSpace::random(zoo.spec(), 1, 1, &mut r);
    ws.weights[0].data[4] = f64::NAN;
    assert!(matches!(zoo.forward(&cpu(), &ws), Err(Error::Input(_))));
}

// --- Specs and layer configuration -----------------------------------------------------------

#[test]
fn network_spec_whose_widths_do_not_chain_is_a_spec_error() {
    let r = NetworkSpec::new(
        vec![LayerShape::dense(5, 3), LayerShape::dense(2, 4)],
        NetActivation::Relu,
    );
    match r {
        Err(Error::Spec(msg)) => assert!(msg.contains("layer 1"), "{msg}"),
        other => panic!("expected Error::Spec, got {other:?}"),
    }
    let r = NetworkSpec::new(
        vec![LayerShape::conv(4, 1, 3, 3), LayerShape::conv(4, 5, 3, 3)],
        NetActivation::Relu,
    );
    assert!(matches!(r, Err(Error::Spec(_))));
}

#[test]
fn degenerate_network_specs_are_spec_errors() {
    assert!(matches!(
        NetworkSpec::new(vec![], NetActivation::Relu),
        Err(Error::Spec(_))
    ));
    assert!(matches!(
        NetworkSpec::mlp(&[3], NetActivation::Relu),
        Err(Error::Spec(_))
    ));
    assert!(matches!(
        NetworkSpec::mlp(&[3, 0, 2], NetActivation::Relu),
        Err(Error::Spec(_))
    ));
    assert!(matches!(
        NetworkSpec::new(vec![LayerShape::conv(4, 1, 0, 3)], NetActivation::Relu),
        Err(Error::Spec(_))
    ));
}

#[test]
fn single_layer_spec_is_a_spec_error_for_layers_and_pools() {
    // L = 1 has no hidden layer; SPEC §3.4 treats it as unsupported.
    let spec = NetworkSpec::mlp(&[3, 2], NetActivation::Relu).unwrap();
    for variant in [Variant::Scale, Variant::Sign] {
        assert!(matches!(
            MonomialLinear::new(&spec, 1, 1, variant, Init::default(), &mut rng(9)),
            Err(Error::Spec(_))
        ));
        assert!(matches!(
            MonomialLinear::zeros(&spec, 1, 1, variant),
            Err(Error::Spec(_))
        ));
    }
    assert!(matches!(
        InvariantPool::new(&spec, 1, PoolMode::L2, PoolAxes::Hidden),
        Err(Error::Spec(_))
    ));
    assert!(matches!(
        Model::monomial_invariant(
            &spec,
            1,
            &[2],
            Activation::Relu,
            Activation::Relu,
            Variant::Scale,
            Init::default(),
            PoolMode::L2,
            &[4],
            &mut rng(10)
        ),
        Err(Error::Spec(_))
    ));
}

#[test]
fn zero_channels_are_spec_errors() {
    let spec = mlp();
    let mut r = rng(11);
    for (c, o) in [(0, 1), (1, 0), (0, 0)] {
        assert!(matches!(
            MonomialLinear::new(&spec, c, o, Variant::Scale, Init::default(), &mut r),
            Err(Error::Spec(_))
        ));
    }
    assert!(matches!(
        InvariantPool::new(&spec, 0, PoolMode::ParamMulL2, PoolAxes::Hidden),
        Err(Error::Spec(_))
    ));
    assert!(matches!(Dense::new(0, 3, &mut r), Err(Error::Spec(_))));
    assert!(matches!(Dense::new(3, 0, &mut r), Err(Error::Spec(_))));
    for (c, widths) in [(0, vec![2]), (1, vec![2, 0]), (1, vec![])] {
        assert!(matches!(
            Model::monomial_invariant(
                &spec,
                c,
                &widths,
                Activation::Relu,
                Activation::Relu,
                Variant::Scale,
                Init::default(),
                PoolMode::L2,
                &[4],
                &mut r
            ),
            Err(Error::Spec(_))
        ));
    }
    // Zero-channel features given to a model that expects one channel.
    let ws = WeightSpace::zeros(&spec, 1, 0);
    assert!(matches!(
        small_model(&spec).forward(&cpu(), &ws),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn np_pool_with_a_normalising_mode_is_a_spec_error() {
    let spec = mlp();
    for mode in [
        PoolMode::L1,
        PoolMode::L2,
        PoolMode::L2Square,
        PoolMode::ParamMulL2,
    ] {
        assert!(matches!(
            InvariantPool::new(&spec, 2, mode, PoolAxes::All),
            Err(Error::Spec(_))
        ));
    }
}

#[test]
fn group_element_of_another_architecture_is_a_shape_error() {
    let spec = mlp();
    let other = NetworkSpec::mlp(&[3, 6, 4, 2], NetActivation::Relu).unwrap();
    let deeper = NetworkSpec::mlp(&[3, 5, 4, 4, 2], NetActivation::Relu).unwrap();
    let ws = WeightSpace::random(&spec, 1, 1, &mut rng(12));
    for s in [&other, &deeper] {
        let g = GroupElement::sample(s, Symmetry::Monomial, ScaleRange::default(), &mut rng(13));
        assert!(matches!(g.act(&spec, &ws), Err(Error::Shape { .. })));
    }
    // A weight space that does not match the spec it is acted on with.
    let g = GroupElement::identity(&spec);
    let ws = WeightSpace::random(&other, 1, 1, &mut rng(14));
    assert!(matches!(g.act(&spec, &ws), Err(Error::Shape { .. })));
}

#[test]
fn group_element_that_is_not_a_permutation_is_an_error_not_a_panic() {
    // The fields are public (and golden files can carry arbitrary `group.perm.*` indices), so an
    // out-of-range or repeated index must be rejected rather than crash the action.
    let spec = mlp();
    let ws = WeightSpace::random(&spec, 1, 1, &mut rng(15));
    let mut out_of_range = GroupElement::identity(&spec);
    out_of_range.perms[0][2] = 99;
    let mut repeated = GroupElement::identity(&spec);
    repeated.perms[1][0] = 1;
    let mut zero_factor = GroupElement::identity(&spec);
    zero_factor.factors[0][1] = 0.0;
    for (what, g) in [
        ("out-of-range index", out_of_range),
        ("repeated index", repeated),
        ("zero factor", zero_factor),
    ] {
        let res = no_panic(what, || g.act(&spec, &ws).map(|_| ()));
        assert!(
            matches!(res, Err(Error::Shape { .. } | Error::Input(_))),
            "{what}: got {res:?}"
        );
    }
}

// --- Files -----------------------------------------------------------------------------------

#[test]
fn loading_a_checkpoint_into_another_architecture_is_a_format_error() {
    let mut r = rng(16);
    let zoo = Model::monomial_cnn_zoo(NetActivation::Relu, &mut r).unwrap();
    let path = temp_path("arch");
    save_checkpoint(&zoo, &path).unwrap();
    let spec = zoo.spec().clone();
    let others = [
        // Other widths: same names, other shapes.
        Model::monomial_invariant(
            &spec,
            1,
            &[8, 5],
            Activation::Relu,
            Activation::Relu,
            Variant::Scale,
            Init::XavierNormal,
            PoolMode::ParamMulL2,
            &[200, 200],
            &mut r,
        )
        .unwrap(),
        // A sign-variant body: extra tensors the checkpoint lacks.
        Model::monomial_invariant(
            &spec,
            1,
            &[16, 16, 5],
            Activation::Tanh,
            Activation::Abs,
            Variant::Sign,
            Init::XavierNormal,
            PoolMode::ParamMulL2,
            &[200, 200],
            &mut r,
        )
        .unwrap(),
        // A parameter-free pool: the checkpoint has tensors the model does not.
        Model::monomial_invariant(
            &spec,
            1,
            &[16, 16, 5],
            Activation::Relu,
            Activation::Relu,
            Variant::Scale,
            Init::XavierNormal,
            PoolMode::L2,
            &[200, 200],
            &mut r,
        )
        .unwrap(),
        // Another input architecture altogether.
        small_model(&mlp()),
    ];
    for (i, mut m) in others.into_iter().enumerate() {
        match load_checkpoint(&mut m, &path) {
            Err(Error::Format { path: p, .. }) => assert_eq!(p, path),
            other => panic!("architecture {i}: expected Error::Format, got {other:?}"),
        }
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn missing_checkpoint_is_an_io_error() {
    let path = temp_path("missing");
    std::fs::remove_file(&path).ok();
    let mut m = small_model(&mlp());
    match load_checkpoint(&mut m, &path) {
        Err(Error::Io { path: p, source }) => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
    assert!(matches!(TensorFile::read(&path), Err(Error::Io { .. })));
}

#[test]
fn corrupt_safetensors_files_are_format_errors() {
    let model = small_model(&mlp());
    let good = temp_path("good");
    save_checkpoint(&model, &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut huge_header = bytes.clone();
    huge_header[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut bad_json = bytes.clone();
    bad_json[8] = b'#';
    let corruptions: Vec<(&str, Vec<u8>)> = vec![
        ("empty file", vec![]),
        ("garbage", b"this is not a safetensors file at all".to_vec()),
        ("header length only", bytes[..8].to_vec()),
        ("truncated header", bytes[..8 + header_len / 2].to_vec()),
        ("truncated data", bytes[..bytes.len() - 9].to_vec()),
        ("huge header length", huge_header),
        ("header is not JSON", bad_json),
    ];
    for (what, data) in corruptions {
        let path = temp_path("corrupt");
        std::fs::write(&path, &data).unwrap();
        let mut m = small_model(&mlp());
        match load_checkpoint(&mut m, &path) {
            Err(Error::Format { .. }) => {}
            other => panic!("{what}: expected Error::Format, got {other:?}"),
        }
        assert!(matches!(TensorFile::read(&path), Err(Error::Format { .. })));
        std::fs::remove_file(&path).ok();
    }
    std::fs::remove_file(&good).ok();
}

#[test]
fn checkpoint_with_a_wrongly_shaped_tensor_is_a_format_error() {
    let model = small_model(&mlp());
    let path = temp_path("reshaped");
    save_checkpoint(&model, &path).unwrap();
    let mut file = TensorFile::read(&path).unwrap();
    let (name, t) = file
        .tensors
        .iter()
        .next()
        .map(|(n, t)| (n.clone(), t.clone()))
        .unwrap();
    let mut shape = t.shape.clone();
    shape.push(1);
    shape[0] += 1;
    let n: usize = shape.iter().product();
    file.tensors
        .insert(name, Tensor::new(shape, vec![0.5; n]).unwrap());
    file.write(&path).unwrap();
    let mut m = small_model(&mlp());
    assert!(matches!(
        load_checkpoint(&mut m, &path),
        Err(Error::Format { .. })
    ));
    std::fs::remove_file(&path).ok();
}

#[test]
fn check_golden_on_a_garbage_or_foreign_file_is_an_error_not_a_panic() {
    let cpu = cpu();
    let backends: [&dyn Backend; 1] = [&cpu];
    let garbage = temp_path("golden-garbage");
    std::fs::write(
        &garbage,
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}",
    )
    .unwrap();
    assert!(matches!(
        check_golden(&garbage, &backends),
        Err(Error::Format { .. })
    ));
    std::fs::remove_file(&garbage).ok();

    let missing = temp_path("golden-missing");
    assert!(matches!(
        check_golden(&missing, &backends),
        Err(Error::Io { .. })
    ));

    // A valid safetensors file that is not a golden (a checkpoint): no metadata to build from.
    let foreign = temp_path("golden-foreign");
    save_checkpoint(&small_model(&mlp()), &foreign).unwrap();
    match no_panic("check_golden on a checkpoint", || {
        check_golden(&foreign, &backends)
    }) {
        Err(Error::Format { .. }) => {}
        Ok(report) => assert!(!report.passed(), "a checkpoint passed as a golden"),
        Err(e) => panic!("expected Error::Format, got {e:?}"),
    }
    std::fs::remove_file(&foreign).ok();
}

#[test]
fn check_golden_with_a_bad_group_witness_is_an_error_not_a_panic() {
    // Take a real golden with a symmetry witness and corrupt its permutation indices.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/goldens");
    let src = dir.join("A_mlp_hnpslinear_c1to3.safetensors");
    let mut file = TensorFile::read(&src).unwrap();
    let Some(perm) = file.tensors.get_mut("group.perm.0") else {
        panic!("the golden carries a permutation witness");
    };
    perm.data[0] = 1e6;
    let path = temp_path("golden-badperm");
    file.write(&path).unwrap();
    let cpu = cpu();
    let backends: [&dyn Backend; 1] = [&cpu];
    let res = no_panic("check_golden with a corrupt group.perm", || {
        check_golden(&path, &backends)
    });
    std::fs::remove_file(&path).ok();
    match res {
        Err(Error::Format { .. } | Error::Shape { .. } | Error::Input(_)) => {}
        Err(e) => panic!("unexpected error kind {e:?}"),
        Ok(report) => panic!(
            "a corrupt witness was accepted: passed = {}",
            report.passed()
        ),
    }
    std::fs::remove_file(&path).ok();
}
