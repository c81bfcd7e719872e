//! Distortions of training digits, drawn afresh for every image of every epoch, in the batcher:
//! random affine maps (rotation, scaling, shear, translation) and optionally elastic distortions
//! (Simard et al. 2003); then, optionally, what other pens and scanners do to a digit: a
//! bolder or thinner stroke, blur, and a low resolution. Each image's distortion is a function
//! of the seed, the epoch and the image, so runs are reproducible and a resumed run distorts
//! exactly as an uninterrupted one.

use serde::{Deserialize, Serialize};

use image::{DynamicImage, GrayImage, imageops};

use super::image::mnist_style;
use super::rng::Rng;
use crate::input::{IMAGE_PIXELS, IMAGE_SIDE};

/// How much to distort; every range is symmetric around no change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Augmentation {
    /// Largest rotation, in degrees.
    pub rotation_degrees: f64,
    /// Largest relative change of size, e.g. 0.15 for 85%..115%.
    pub scale: f64,
    /// Largest horizontal shear, in degrees.
    pub shear_degrees: f64,
    /// Largest shift along each axis, in pixels.
    pub translation: f64,
    /// Elastic distortion, if any.
    pub elastic: Option<Elastic>,
    /// Largest change of stroke weight, in [0, 1]: the share of a one-pixel bolder (or
    /// thinner) stroke blended in.
    #[serde(skip_serializing_if = "is_zero")]
    pub stroke: f64,
    /// Largest Gaussian blur, in pixels (sigma).
    #[serde(skip_serializing_if = "is_zero")]
    pub blur: f64,
    /// Digits seen as a low-resolution scan, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_resolution: Option<LowResolution>,
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

impl Default for Augmentation {
    fn default() -> Self {
        Self {
            rotation_degrees: 10.0,
            scale: 0.1,
            shear_degrees: 10.0,
            translation: 2.0,
            elastic: None,
            stroke: 0.0,
            blur: 0.0,
            low_resolution: None,
        }
    }
}

/// Some digits shrunk to a few pixels, as a scan at low resolution holds them, and brought
/// back to 28x28 by the preparation `lenet predict` gives such a scan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LowResolution {
    /// Share of the digits shrunk, in [0, 1].
    pub probability: f64,
    /// Fewest and most pixels along the digit's longer side.
    pub smallest: u32,
    pub largest: u32,
}

impl Default for LowResolution {
    fn default() -> Self {
        Self {
            probability: 0.2,
            smallest: 6,
            largest: 14,
        }
    }
}

/// A random displacement field, smoothed by a Gaussian of `sigma` pixels and scaled by `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Elastic {
    pub alpha: f64,
    pub sigma: f64,
}

impl Default for Elastic {
    fn default() -> Self {
        Self {
            alpha: 8.0,
            sigma: 3.0,
        }
    }
}

/// The generator of one image's distortion in one epoch.
fn image_rng(seed: u64, epoch: usize, image: usize) -> Rng {
    let mut rng = Rng::new(seed ^ 0x5851_f42d_4c95_7f2d);
    rng.mix((epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    rng.mix((image as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f));
    rng
}

impl Augmentation {
    /// A distorted copy of a 28x28 digit. `image` identifies the digit within its dataset.
    pub fn apply(&self, pixels: &[u8], seed: u64, epoch: usize, image: usize) -> Vec<u8> {
        let mut rng = image_rng(seed, epoch, image);
        let angle = (self.rotation_degrees * rng.symmetric()).to_radians();
        let shear = (self.shear_degrees * rng.symmetric()).to_radians().tan();
        let scale = 1.0 + self.scale * rng.symmetric();
        let shift = [
            self.translation * rng.symmetric(),
            self.translation * rng.symmetric(),
        ];
        // The forward map is rotate(shear(scale(p))) + shift about the centre; sampling needs its
        // inverse: for each output pixel, where in the input it comes from.
        let (sin, cos) = angle.sin_cos();
        let forward = [
            [cos * scale, (cos * shear - sin) * scale],
            [sin * scale, (sin * shear + cos) * scale],
        ];
        let det = forward[0][0] * forward[1][1] - forward[0][1] * forward[1][0];
        let inverse = [
            [forward[1][1] / det, -forward[0][1] / det],
            [-forward[1][0] / det, forward[0][0] / det],
        ];
        let field = self.elastic.map(|e| e.field(&mut rng));
        let centre = (IMAGE_SIDE as f64 - 1.0) / 2.0;
        let mut out = vec![0u8; IMAGE_PIXELS];
        for y in 0..IMAGE_SIDE {
            for x in 0..IMAGE_SIDE {
                let (mut px, mut py) = (x as f64, y as f64);
                if let Some([dx, dy]) = &field {
                    px += dx[y * IMAGE_SIDE + x];
                    py += dy[y * IMAGE_SIDE + x];
                }
                let (u, v) = (px - centre - shift[0], py - centre - shift[1]);
                let sx = inverse[0][0] * u + inverse[0][1] * v + centre;
                let sy = inverse[1][0] * u + inverse[1][1] * v + centre;
                out[y * IMAGE_SIDE + x] = bilinear(pixels, sx, sy);
            }
        }
        // Drawn only when asked for, so that a config without them distorts as it always has.
        if self.stroke > 0.0 {
            out = restroked(&out, self.stroke * rng.symmetric());
        }
        if self.blur > 0.0 {
            out = blurred(&out, self.blur * rng.unit());
        }
        if let Some(low) = self.low_resolution
            && rng.unit() < low.probability
        {
            let sides = u64::from(low.largest - low.smallest + 1);
            let side = low.smallest + (rng.next_u64() % sides) as u32;
            if let Some(scanned) = scanned_at(&out, side) {
                out = scanned;
            }
        }
        out
    }
}

impl Elastic {
    /// Displacements `[dx, dy]` per pixel.
    fn field(&self, rng: &mut Rng) -> [Vec<f64>; 2] {
        let (kernel, radius) = gaussian(self.sigma);
        let mut smooth = || {
            let noise: Vec<f64> = (0..IMAGE_PIXELS).map(|_| rng.symmetric()).collect();
            let rows = blur(&noise, &kernel, radius, |x, y| y * IMAGE_SIDE + x);
            let both = blur(&rows, &kernel, radius, |x, y| x * IMAGE_SIDE + y);
            both.into_iter()
                .map(|v| v * self.alpha)
                .collect::<Vec<f64>>()
        };
        [smooth(), smooth()]
    }
}

/// One pass of a separable blur along the axis `index(position, line)` walks, edges clamped.
/// Each line is copied out with its clamped edges, then the kernel's taps are added in turn over
/// the whole line: the same sums in the same order as tap by tap per pixel, but in loops the
/// compiler vectorises (the elastic field's blur was most of a distortion's time).
fn blur(
    values: &[f64],
    kernel: &[f64],
    radius: isize,
    index: impl Fn(usize, usize) -> usize,
) -> Vec<f64> {
    let side = IMAGE_SIDE as isize;
    let mut out = vec![0.0; values.len()];
    let mut line_values = vec![0.0; IMAGE_SIDE + kernel.len() - 1];
    let mut sums = [0.0f64; IMAGE_SIDE];
    for line in 0..IMAGE_SIDE {
        for (i, value) in line_values.iter_mut().enumerate() {
            *value = values[index((i as isize - radius).clamp(0, side - 1) as usize, line)];
        }
        sums.fill(0.0);
        for (k, weight) in kernel.iter().enumerate() {
            for (sum, value) in sums.iter_mut().zip(&line_values[k..k + IMAGE_SIDE]) {
                *sum += weight * value;
            }
        }
        for (position, sum) in sums.iter().enumerate() {
            out[index(position, line)] = *sum;
        }
    }
    out
}

/// A normalised Gaussian kernel of `sigma` pixels, out to three sigmas, and its radius.
fn gaussian(sigma: f64) -> (Vec<f64>, isize) {
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f64> = (-radius..=radius)
        .map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = kernel.iter().sum();
    (kernel.iter().map(|k| k / total).collect(), radius)
}

/// The digit drawn with a bolder pen (`amount` > 0) or a thinner one (< 0): `|amount|` of the
/// way to its grey-level dilation (erosion) by a plus of one pixel.
fn restroked(pixels: &[u8], amount: f64) -> Vec<u8> {
    let side = IMAGE_SIDE as isize;
    let at = |x: isize, y: isize| -> u8 {
        if (0..side).contains(&x) && (0..side).contains(&y) {
            pixels[(y * side + x) as usize]
        } else {
            0
        }
    };
    let mut out = vec![0u8; IMAGE_PIXELS];
    for y in 0..side {
        for x in 0..side {
            let plus = [
                at(x, y),
                at(x - 1, y),
                at(x + 1, y),
                at(x, y - 1),
                at(x, y + 1),
            ];
            let reach = if amount > 0.0 {
                plus.iter().max()
            } else {
                plus.iter().min()
            };
            let here = f64::from(plus[0]);
            let target = f64::from(*reach.expect("five values"));
            out[(y * side + x) as usize] = (here + amount.abs() * (target - here)).round() as u8;
        }
    }
    out
}

/// The digit out of focus by a Gaussian of `sigma` pixels, its strongest ink kept as strong
/// (as the preparation of a blurred picture brings it back).
fn blurred(pixels: &[u8], sigma: f64) -> Vec<u8> {
    if sigma < 0.1 {
        return pixels.to_vec();
    }
    let (kernel, radius) = gaussian(sigma);
    let values: Vec<f64> = pixels.iter().map(|&p| f64::from(p)).collect();
    let rows = blur(&values, &kernel, radius, |x, y| y * IMAGE_SIDE + x);
    let both = blur(&rows, &kernel, radius, |x, y| x * IMAGE_SIDE + y);
    let before = f64::from(*pixels.iter().max().unwrap_or(&0));
    let after = both.iter().cloned().fold(0.0, f64::max);
    let gain = if after > 0.0 { before / after } else { 0.0 };
    both.iter()
        .map(|v| (v * gain).round().clamp(0.0, 255.0) as u8)
        .collect()
}

/// The digit as a scan would hold it with `side` pixels along its longer side (dark ink on
/// white paper, a pixel of paper round it), then prepared as `lenet predict` prepares such a
/// scan; `None` if the digit is already that small or holds no ink.
fn scanned_at(pixels: &[u8], side: u32) -> Option<Vec<u8>> {
    let inked = |i: usize| pixels[i] > 0;
    let (mut x0, mut y0, mut x1, mut y1) = (IMAGE_SIDE, IMAGE_SIDE, 0, 0);
    for i in (0..IMAGE_PIXELS).filter(|&i| inked(i)) {
        let (x, y) = (i % IMAGE_SIDE, i / IMAGE_SIDE);
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    let (width, height) = (
        (x1 + 1).checked_sub(x0)? as u32,
        (y1 + 1).checked_sub(y0)? as u32,
    );
    let longer = width.max(height);
    if side >= longer {
        return None;
    }
    let ink = GrayImage::from_fn(width, height, |x, y| {
        image::Luma([pixels[(y0 + y as usize) * IMAGE_SIDE + x0 + x as usize]])
    });
    let shrunk_side = |s: u32| ((s * side) as f32 / longer as f32).round().max(1.0) as u32;
    let small = imageops::resize(
        &ink,
        shrunk_side(width),
        shrunk_side(height),
        imageops::FilterType::Triangle,
    );
    let mut scan = GrayImage::from_pixel(small.width() + 2, small.height() + 2, image::Luma([255]));
    for (x, y, p) in small.enumerate_pixels() {
        scan.put_pixel(x + 1, y + 1, image::Luma([255 - p[0]]));
    }
    Some(mnist_style(&DynamicImage::ImageLuma8(scan))?.pixels)
}

/// The image at a fractional position, 0 (paper) outside it.
fn bilinear(pixels: &[u8], x: f64, y: f64) -> u8 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: f64, yi: f64| -> f64 {
        if xi < 0.0 || yi < 0.0 || xi >= IMAGE_SIDE as f64 || yi >= IMAGE_SIDE as f64 {
            0.0
        } else {
            pixels[yi as usize * IMAGE_SIDE + xi as usize] as f64
        }
    };
    let value = at(x0, y0) * (1.0 - fx) * (1.0 - fy)
        + at(x0 + 1.0, y0) * fx * (1.0 - fy)
        + at(x0, y0 + 1.0) * (1.0 - fx) * fy
        + at(x0 + 1.0, y0 + 1.0) * fx * fy;
    value.round().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digit() -> Vec<u8> {
        let mut pixels = vec![0u8; IMAGE_PIXELS];
        for y in 6..22 {
            for x in 12..16 {
                pixels[y * IMAGE_SIDE + x] = 255;
            }
        }
        pixels
    }

    fn ink(pixels: &[u8]) -> f64 {
        pixels.iter().map(|&p| p as f64).sum()
    }

    #[test]
    fn no_distortion_is_the_identity() {
        let none = Augmentation {
            rotation_degrees: 0.0,
            scale: 0.0,
            shear_degrees: 0.0,
            translation: 0.0,
            elastic: None,
            ..Augmentation::default()
        };
        assert_eq!(none.apply(&digit(), 1, 1, 0), digit());
    }

    #[test]
    fn distortions_are_deterministic_per_seed_epoch_and_image() {
        let augment = Augmentation {
            elastic: Some(Elastic::default()),
            ..Augmentation::default()
        };
        let a = augment.apply(&digit(), 7, 3, 11);
        assert_eq!(a, augment.apply(&digit(), 7, 3, 11));
        assert_ne!(a, augment.apply(&digit(), 8, 3, 11), "seed");
        assert_ne!(a, augment.apply(&digit(), 7, 4, 11), "epoch");
        assert_ne!(a, augment.apply(&digit(), 7, 3, 12), "image");
        assert_ne!(a, digit());
    }

    #[test]
    fn a_distorted_digit_keeps_most_of_its_ink_in_the_field() {
        let augment = Augmentation {
            elastic: Some(Elastic::default()),
            ..Augmentation::default()
        };
        for image in 0..50 {
            let out = augment.apply(&digit(), 1, 1, image);
            let ratio = ink(&out) / ink(&digit());
            assert!(
                (0.6..1.5).contains(&ratio),
                "image {image}: ink ratio {ratio}"
            );
        }
    }

    #[test]
    fn a_pure_shift_moves_the_digit() {
        let shift = Augmentation {
            rotation_degrees: 0.0,
            scale: 0.0,
            shear_degrees: 0.0,
            translation: 3.0,
            elastic: None,
            ..Augmentation::default()
        };
        let out = shift.apply(&digit(), 5, 1, 0);
        let centre = |p: &[u8]| {
            let total = ink(p);
            let x: f64 = (0..IMAGE_PIXELS)
                .map(|i| (i % IMAGE_SIDE) as f64 * p[i] as f64)
                .sum();
            x / total
        };
        let moved = centre(&out) - centre(&digit());
        assert!(moved.abs() <= 3.0 + 1e-9 && moved.abs() > 0.01, "{moved}");
    }

    fn bar_width(pixels: &[u8]) -> usize {
        // Inked pixels of the middle row of `digit()`'s vertical bar.
        pixels[14 * IMAGE_SIDE..15 * IMAGE_SIDE]
            .iter()
            .filter(|&&p| p > 127)
            .count()
    }

    #[test]
    fn restroking_makes_a_stroke_bolder_or_thinner() {
        assert_eq!(bar_width(&digit()), 4);
        assert_eq!(bar_width(&restroked(&digit(), 1.0)), 6);
        assert_eq!(bar_width(&restroked(&digit(), -1.0)), 2);
        assert_eq!(restroked(&digit(), 0.0), digit());
    }

    #[test]
    fn blurring_spreads_ink_and_keeps_its_strongest() {
        let out = blurred(&digit(), 1.5);
        assert_eq!(out.iter().max(), Some(&255));
        let faint = |p: &[u8]| p.iter().filter(|&&v| v > 0 && v < 255).count();
        assert!(faint(&out) > 40, "{} grey pixels", faint(&out));
        assert_eq!(faint(&digit()), 0);
    }

    #[test]
    fn a_low_resolution_scan_is_blockier_but_the_same_digit() {
        let out = scanned_at(&digit(), 5).unwrap();
        // Still a bar of MNIST's 20 pixels' height, centred, but its edges now soft.
        let rows = (0..IMAGE_SIDE)
            .filter(|y| {
                out[y * IMAGE_SIDE..(y + 1) * IMAGE_SIDE]
                    .iter()
                    .any(|&p| p > 127)
            })
            .count();
        assert!((17..=22).contains(&rows), "{rows} rows");
        assert_ne!(out, digit());
        assert!(
            scanned_at(&digit(), 16).is_none(),
            "no larger than the digit is"
        );
        assert!(scanned_at(&[0; IMAGE_PIXELS], 5).is_none());
    }

    #[test]
    fn a_config_without_the_newer_distortions_is_recorded_as_before_them() {
        // A run's recorded config is compared when it resumes: runs from before these keys
        // existed must still match.
        let json = serde_json::to_string(&Augmentation::default()).unwrap();
        assert!(!json.contains("blur") && !json.contains("stroke") && !json.contains("low_res"));
        let with = serde_json::to_string(&Augmentation {
            blur: 1.0,
            ..Augmentation::default()
        })
        .unwrap();
        assert!(with.contains("\"blur\":1.0"), "{with}");
    }
}
