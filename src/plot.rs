//! Learning-curve plots (PNG) comparing the models of a run: validation metric and training loss
//! per evaluation round. Drawn with plotters when the `plot` feature is on (the `mnfn` binary's default);
//! without it the curves stay in their CSV files and no PNG is written.

use std::path::Path;

#[cfg(feature = "plot")]
use plotters::prelude::*;

use crate::error::Result;
use crate::train::Epoch;

/// Draws validation metric (left) and training loss (right) against the optimizer step, one
/// line per model; drawn under a temporary name and renamed ([`crate::io::write_atomic`]).
#[cfg(feature = "plot")]
pub fn learning_curves(path: &Path, metric: &str, models: &[(&str, &[Epoch])]) -> Result<()> {
    crate::io::write_atomic(path, |tmp| {
        draw(tmp, metric, models).map_err(|e| {
            crate::error::Error::io(path, std::io::Error::other(format!("plotting failed: {e}")))
        })
    })
}

/// Without the `plot` feature: logs that `path` is not drawn (the CSV curves remain).
#[cfg(not(feature = "plot"))]
pub fn learning_curves(path: &Path, metric: &str, models: &[(&str, &[Epoch])]) -> Result<()> {
    log::warn!(
        "built without the `plot` feature: {} ({metric}, {} models) not drawn",
        path.display(),
        models.len()
    );
    Ok(())
}

/// Registers the embedded DejaVu Sans as plotters' "sans-serif" (once per process).
#[cfg(feature = "plot")]
fn register_font() -> std::result::Result<(), Box<dyn std::error::Error>> {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err("the embedded DejaVu Sans font did not load".into())
    }
}

#[cfg(feature = "plot")]
fn draw(
    path: &Path,
    metric: &str,
    models: &[(&str, &[Epoch])],
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    register_font()?;
    let root = BitMapBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 2));
    // x is the optimizer step of each evaluation (epochs and every-k-steps rounds alike).
    let last_step = models
        .iter()
        .flat_map(|(_, c)| c.iter().map(|e| e.step))
        .max()
        .unwrap_or(1)
        .max(1);
    type Pick = fn(&Epoch) -> f64;
    let series: [(&str, Pick); 2] = [
        (metric, |e: &Epoch| e.val_metric),
        ("training loss", |e: &Epoch| e.train_loss),
    ];
    for (panel, (title, pick)) in panels.iter().zip(series) {
        let values: Vec<f64> = models
            .iter()
            .flat_map(|(_, c)| c.iter().map(pick))
            .filter(|v| v.is_finite())
            .collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = match (values.is_empty(), lo < hi) {
            (true, _) => (0.0, 1.0),
            (false, true) => (lo, hi),
            (false, false) => (lo - 0.5, lo + 0.5),
        };
        let pad = 0.05 * (hi - lo);
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..last_step as f64, (lo - pad)..(hi + pad))?;
        chart.configure_mesh().x_desc("step").draw()?;
        for (i, (name, curve)) in models.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points = curve
                .iter()
                .map(|e| (e.step as f64, pick(e)))
                .filter(|(_, v)| v.is_finite());
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
