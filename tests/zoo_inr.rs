//! SIREN INR sets: fits reproduce their images, the set round-trips through its file with labels,
//! and every SIREN keeps the sign symmetry of sin.

use monomial_nfn::zoo::inr::{generate, siren_spec, InrConfig};
use monomial_nfn::zoo::symmetry::diagnose;
use monomial_nfn::zoo::task::{ImageSet, CLASSES};
use monomial_nfn::zoo::NetworkFile;
use monomial_nfn::Cpu;
use rand::SeedableRng;

#[test]
fn sirens_fit_their_images_and_round_trip_with_labels() {
    let cfg = InrConfig {
        steps: 150,
        ..InrConfig::new(4, 3)
    };
    let cpu = Cpu::<f32>::new();
    let (file, mse) = generate(&cfg, &cpu, &|_| {}).unwrap();
    assert_eq!(file.spec, siren_spec());
    assert_eq!(file.networks.batch(), 4);
    // The images the fits saw, to compare the error with their variance.
    let images =
        ImageSet::generate_with_noise(4, false, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
    for (i, &e) in mse.iter().enumerate() {
        let px = images.image(i);
        let mean = px.iter().sum::<f32>() as f64 / px.len() as f64;
        let var = px.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / px.len() as f64;
        assert!(e < 0.05 * var, "fit {i}: mse {e}, image variance {var}");
    }
    let labels = file.labels.clone().unwrap();
    assert_eq!(
        labels,
        images
            .labels
            .iter()
            .map(|&l| l as usize)
            .collect::<Vec<_>>()
    );
    assert!(labels.iter().all(|&l| l < CLASSES));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inr.safetensors");
    file.write(&path).unwrap();
    let back = NetworkFile::read(&path, None).unwrap();
    assert_eq!(back.networks, file.networks);
    assert_eq!(back.labels, file.labels);
    assert_eq!(back.spec, siren_spec());
    let stored = file.images.clone().unwrap();
    assert_eq!(stored.shape, vec![4, 16, 16]);
    assert_eq!(back.images, file.images, "images round-trip");
    for (a, b) in stored.data.iter().zip(&images.pixels) {
        assert_eq!(*a, *b as f64);
    }
    let (again, _) = generate(&cfg, &cpu, &|_| {}).unwrap();
    assert_eq!(again.networks, file.networks, "deterministic per seed");
}

#[test]
fn fitted_sirens_are_sign_symmetric_but_not_scale_symmetric() {
    let (file, _) = generate(
        &InrConfig {
            steps: 20,
            ..InrConfig::new(1, 0)
        },
        &Cpu::<f32>::new(),
        &|_| {},
    )
    .unwrap();
    let r = diagnose(&file.spec, &file.network(0).unwrap(), 16, 3, 32, 1).unwrap();
    let exact: Vec<bool> = r.iter().map(|k| k.exact()).collect();
    assert_eq!(exact, [true, false, true, false], "{r:?}");
}

#[test]
fn renders_reproduce_the_stored_images_and_write_pngs() {
    use monomial_nfn::picture::save_grid;
    use monomial_nfn::zoo::inr::{render_pictures, stored_picture};
    let cfg = InrConfig {
        steps: 300,
        ..InrConfig::new(2, 5)
    };
    let cpu = Cpu::<f32>::new();
    let (file, _) = generate(&cfg, &cpu, &|_| {}).unwrap();
    let renders = render_pictures(&cpu, &file, &[1, 0], 16, 16).unwrap();
    for (r, i) in renders.iter().zip([1, 0]) {
        let img = stored_picture(&file, i).unwrap();
        let err = r
            .data
            .iter()
            .zip(&img.data)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            / 256.0;
        assert!(
            err < 1e-3,
            "SIREN {i}: render differs from its image by mse {err}"
        );
    }
    assert!(
        render_pictures(&cpu, &file, &[2], 16, 16).is_err(),
        "index out of range"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    save_grid(
        &path,
        &[renders.clone(), vec![stored_picture(&file, 1).unwrap()]],
        4,
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    // Two columns of (16 + 1)·4 plus a 4-pixel margin: 140 wide, two rows: 140 high.
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 140);
    assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 140);
}
