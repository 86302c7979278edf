//! `edit_inr` end to end on a small generated INR set: every editor trains on the pixel loss
//! through the render and beats the unedited SIRENs, permuted test SIRENs give the same MSE,
//! the PNG grid and curves are written, edited SIRENs are saved and render their edits.

use monomial_nfn::classify::InrSource;
use monomial_nfn::editing::{dilate, edit_inr, EditConfig};
use monomial_nfn::nn::edit::InrEditorConfig;
use monomial_nfn::train::StepSchedule;
use monomial_nfn::zoo::inr::render_pictures;
use monomial_nfn::zoo::NetworkFile;
use monomial_nfn::Cpu;

#[test]
fn dilation_is_a_three_by_three_maximum_filter() {
    let img = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.5];
    // 3 rows × 4 columns: the 1.0 at (2, 0) spreads to rows 1-2, columns 0-1.
    let d = dilate(&img, 3, 4, 1);
    assert_eq!(
        d,
        vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.5, 0.5, 1.0, 1.0, 0.5, 0.5]
    );
}

#[test]
fn edit_inr_trains_every_editor_below_the_unedited_error() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("edited.safetensors");
    let config = EditConfig {
        inrs: InrSource::Generate { n: 40, seed: 2 },
        editor: InrEditorConfig {
            front: Some(3),
            fourier: (4, 3.0),
            widths: vec![6, 6],
            ..InrEditorConfig::paper_monomial((8, 8))
        },
        schedule: StepSchedule {
            steps: 60,
            eval_every: 20,
            batch: 8,
            warmup: 5,
            ..EditConfig::default().schedule
        },
        examples: 2,
        save_edited: Some(saved.clone()),
        cache_dir: dir.path().join("cache"),
        out_dir: dir.path().join("out"),
        ..EditConfig::default()
    };
    let cpu = Cpu::<f32>::new();
    let report = edit_inr(&config, &cpu).unwrap();
    assert_eq!(report.sizes, (32, 4, 4));
    assert_eq!(report.models.len(), 3);
    for m in &report.models {
        assert!(
            m.mse < report.unedited_mse,
            "{}: {} vs unedited {}",
            m.model,
            m.mse,
            report.unedited_mse
        );
        assert!(
            (m.mse_permuted - m.mse).abs() <= 1e-6 * m.mse,
            "{}: permutations",
            m.model
        );
        assert_eq!(m.curve.len(), 3);
    }
    assert!(report.grid.exists() && report.plot.exists());
    assert!(report.table().contains("unedited"));
    // The saved edits render what the first editor predicted.
    let edited = NetworkFile::read(&saved, None).unwrap();
    assert_eq!(edited.networks.batch(), 4);
    let pics = render_pictures(&cpu, &edited, &[0, 1, 2, 3], 8, 8).unwrap();
    let img = edited.images.clone().unwrap();
    let mse: f64 = pics
        .iter()
        .flat_map(|p| p.data.clone())
        .zip(&img.data)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        / img.data.len() as f64;
    assert!(
        (mse - report.models[0].mse).abs() < 1e-4 * (1.0 + mse),
        "{mse} vs {}",
        report.models[0].mse
    );
}
