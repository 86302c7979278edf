//! Pictures as PNG files: INR renders and the images they were fitted to, side by side in a
//! grid, values in [0, 1] mapped to 0–255 (clamped), enlarged by whole-pixel blocks.

use std::path::Path;

use crate::error::{Error, Result};

/// One picture: h × w pixels of `channels` (1 grey, 3 RGB) values, row-major, channels last.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    /// Rows.
    pub h: usize,
    /// Columns.
    pub w: usize,
    /// Values per pixel (1 or 3).
    pub channels: usize,
    /// h·w·channels values, nominally in [0, 1].
    pub data: Vec<f64>,
}

impl Picture {
    /// Wraps values, checking the size.
    pub fn new(h: usize, w: usize, channels: usize, data: Vec<f64>) -> Result<Self> {
        if !(channels == 1 || channels == 3) || data.len() != h * w * channels || h * w == 0 {
            return Err(Error::shape(
                "picture (h, w, 1 or 3 channels)",
                &[h, w, channels],
                &[data.len()],
            ));
        }
        Ok(Picture {
            h,
            w,
            channels,
            data,
        })
    }
}

/// Writes rows of pictures as one PNG: every picture enlarged `scale` times, separated by a
/// 1-block gap; all pictures must share one size.
pub fn save_grid(path: &Path, rows: &[Vec<Picture>], scale: usize) -> Result<()> {
    let first = rows
        .iter()
        .flatten()
        .next()
        .ok_or_else(|| Error::Input("no pictures to write".into()))?;
    let (h, w) = (first.h, first.w);
    if rows.iter().flatten().any(|p| p.h != h || p.w != w) {
        return Err(Error::Input(
            "pictures of one grid must share a size".into(),
        ));
    }
    let scale = scale.max(1);
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let (cw, ch) = ((w + 1) * scale, (h + 1) * scale);
    let (width, height) = (cols * cw + scale, rows.len() * ch + scale);
    let mut img = vec![40u8; width * height * 3];
    for (r, row) in rows.iter().enumerate() {
        for (c, pic) in row.iter().enumerate() {
            for y in 0..h * scale {
                for x in 0..w * scale {
                    let at = ((y / scale) * w + x / scale) * pic.channels;
                    let px = |k: usize| (pic.data[at + k].clamp(0.0, 1.0) * 255.0).round() as u8;
                    let rgb = if pic.channels == 3 {
                        [px(0), px(1), px(2)]
                    } else {
                        [px(0); 3]
                    };
                    let (gx, gy) = (c * cw + scale + x, r * ch + scale + y);
                    let at = (gy * width + gx) * 3;
                    img[at..at + 3].copy_from_slice(&rgb);
                }
            }
        }
    }
    write_png(path, width, height, img)
}

/// Encodes 8-bit RGB pixels as a PNG (the `image` crate, feature `plot`), through a temporary
/// name.
#[cfg(feature = "plot")]
fn write_png(path: &Path, width: usize, height: usize, rgb: Vec<u8>) -> Result<()> {
    let img = image::RgbImage::from_raw(width as u32, height as u32, rgb)
        .ok_or_else(|| Error::Input(format!("{width}x{height} picture buffer of a wrong size")))?;
    crate::io::write_atomic(path, |tmp| {
        img.save_with_format(tmp, image::ImageFormat::Png)
            .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))
    })
}

/// Without the `plot` feature: logs that `path` is not drawn.
#[cfg(not(feature = "plot"))]
fn write_png(path: &Path, width: usize, height: usize, _rgb: Vec<u8>) -> Result<()> {
    log::warn!(
        "built without the `plot` feature: {} ({width}x{height}) not written",
        path.display()
    );
    Ok(())
}
