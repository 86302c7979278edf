//! A procedural 10-class image task (no download): seven-segment digit glyphs drawn on a 16×16
//! grayscale canvas with random affine jitter, stroke width, contrast and pixel noise.

use rand::Rng;
use rand_distr::{Distribution, Normal};

/// Image side in pixels.
pub const SIDE: usize = 16;
/// Number of classes.
pub const CLASSES: usize = 10;

/// Segment end points in glyph units (x in [0, 1], y in [0, 2], y down).
const SEGMENTS: [[f32; 4]; 7] = [
    [0.0, 0.0, 1.0, 0.0], // a: top
    [1.0, 0.0, 1.0, 1.0], // b: top right
    [1.0, 1.0, 1.0, 2.0], // c: bottom right
    [0.0, 2.0, 1.0, 2.0], // d: bottom
    [0.0, 1.0, 0.0, 2.0], // e: bottom left
    [0.0, 0.0, 0.0, 1.0], // f: top left
    [0.0, 1.0, 1.0, 1.0], // g: middle
];

/// Lit segments (bits a..g) of each digit.
const DIGITS: [u8; CLASSES] = [
    0b0111111, 0b0000110, 0b1011011, 0b1001111, 0b1100110, 0b1101101, 0b1111101, 0b0000111,
    0b1111111, 0b1101111,
];

/// Images (n, 16, 16) row-major in [−0.5, 1.5]-ish, and their labels.
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// n·256 pixels.
    pub pixels: Vec<f32>,
    /// n labels in 0..10.
    pub labels: Vec<u8>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i`'s pixels.
    pub fn image(&self, i: usize) -> &[f32] {
        &self.pixels[i * SIDE * SIDE..(i + 1) * SIDE * SIDE]
    }

    /// `n` images with balanced labels in random order.
    pub fn generate(n: usize, rng: &mut impl Rng) -> Self {
        Self::generate_with_noise(n, true, rng)
    }

    /// `n` images; without `noise` the pixel noise is left out (the glyph alone, as clean as an
    /// MNIST digit: INR sets, whose SIRENs would otherwise spend their weights on noise).
    pub fn generate_with_noise(n: usize, noise: bool, rng: &mut impl Rng) -> Self {
        let mut pixels = Vec::with_capacity(n * SIDE * SIDE);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let label = ((i + rng.random_range(0..CLASSES)) % CLASSES) as u8;
            draw(label, noise, rng, &mut pixels);
            labels.push(label);
        }
        ImageSet { pixels, labels }
    }
}

/// Renders one jittered glyph of `digit`, appending 256 pixels to `out`.
fn draw(digit: u8, with_noise: bool, rng: &mut impl Rng, out: &mut Vec<f32>) {
    let scale = 4.0 * rng.random_range(0.8f32..1.2);
    let (sin, cos) = rng.random_range(-0.3f32..0.3).sin_cos();
    let shear = rng.random_range(-0.25f32..0.25);
    let (tx, ty) = (
        rng.random_range(-1.5f32..1.5),
        rng.random_range(-1.5f32..1.5),
    );
    let half_width = rng.random_range(0.5f32..1.3);
    let contrast = rng.random_range(0.6f32..1.0);
    let noise =
        Normal::new(0.0f32, rng.random_range(0.05f32..0.3)).expect("sigma drawn from (0.05, 0.3)");
    // Glyph point (gx, gy) centred at (0.5, 1) -> image coordinates.
    let map = |gx: f32, gy: f32| {
        let (x, y) = ((gx - 0.5) * scale, (gy - 1.0) * scale);
        let x = x + shear * y;
        let c = (SIDE as f32 - 1.0) / 2.0;
        (c + tx + cos * x - sin * y, c + ty + sin * x + cos * y)
    };
    let segs: Vec<[f32; 4]> = SEGMENTS
        .iter()
        .enumerate()
        .filter(|(s, _)| DIGITS[digit as usize] >> s & 1 == 1)
        .map(|(_, s)| {
            let (x0, y0) = map(s[0], s[1]);
            let (x1, y1) = map(s[2], s[3]);
            [x0, y0, x1, y1]
        })
        .collect();
    for py in 0..SIDE {
        for px in 0..SIDE {
            let (x, y) = (px as f32, py as f32);
            let d = segs
                .iter()
                .map(|s| segment_distance(x, y, s))
                .fold(f32::INFINITY, f32::min);
            let ink = (half_width + 0.5 - d).clamp(0.0, 1.0);
            let n = if with_noise { noise.sample(rng) } else { 0.0 };
            out.push(contrast * ink + n);
        }
    }
}

/// Distance from (x, y) to the segment s = [x0, y0, x1, y1].
fn segment_distance(x: f32, y: f32, s: &[f32; 4]) -> f32 {
    let (dx, dy) = (s[2] - s[0], s[3] - s[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((x - s[0]) * dx + (y - s[1]) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (ex, ey) = (s[0] + t * dx - x, s[1] + t * dy - y);
    (ex * ex + ey * ey).sqrt()
}
