//! Distortions of training digits, drawn afresh for every image of every epoch, in the batcher:
//! random affine maps (rotation, scaling, shear, translation) and optionally elastic distortions
//! (Simard et al. 2003). Each image's distortion is a function of the seed, the epoch and the
//! image, so runs are reproducible and a resumed run distorts exactly as an uninterrupted one.

use serde::{Deserialize, Serialize};

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
}

impl Default for Augmentation {
    fn default() -> Self {
        Self {
            rotation_degrees: 10.0,
            scale: 0.1,
            shear_degrees: 10.0,
            translation: 2.0,
            elastic: None,
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
        out
    }
}

impl Elastic {
    /// Displacements `[dx, dy]` per pixel.
    fn field(&self, rng: &mut Rng) -> [Vec<f64>; 2] {
        let radius = (3.0 * self.sigma).ceil() as isize;
        let kernel: Vec<f64> = (-radius..=radius)
            .map(|i| (-((i * i) as f64) / (2.0 * self.sigma * self.sigma)).exp())
            .collect();
        let total: f64 = kernel.iter().sum();
        let kernel: Vec<f64> = kernel.iter().map(|k| k / total).collect();
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
fn blur(
    values: &[f64],
    kernel: &[f64],
    radius: isize,
    index: impl Fn(usize, usize) -> usize,
) -> Vec<f64> {
    let side = IMAGE_SIDE as isize;
    let mut out = vec![0.0; values.len()];
    for line in 0..IMAGE_SIDE {
        for position in 0..IMAGE_SIDE {
            let mut sum = 0.0;
            for (k, weight) in kernel.iter().enumerate() {
                let at = (position as isize + k as isize - radius).clamp(0, side - 1) as usize;
                sum += weight * values[index(at, line)];
            }
            out[index(position, line)] = sum;
        }
    }
    out
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
}
