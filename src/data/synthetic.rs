//! Digits the project draws itself from font files, added to the training images so that the
//! model meets digits from other hands than MNIST's 250 writers: handwriting fonts in many
//! sizes and stroke weights, drawn as dark ink on paper and brought to 28x28 by the same
//! preparation `lenet predict` gives a user's picture. Fonts are named in the config, so the
//! families a run learnt from are on record and the others can be held out to measure it.

use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontVec, PxScale, point};
use image::{DynamicImage, GrayImage};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::Class;
use super::classes::brief;
use super::error::SyntheticError;
use super::image::mnist_style;
use super::rng::Rng;
use crate::input::IMAGE_PIXELS;

/// `data.synthetic`: how many digits to draw, and from which font files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Synthetic {
    /// Font files (TrueType or OpenType); each digit is drawn from one picked at random.
    pub fonts: Vec<PathBuf>,
    /// Digits drawn, the ten classes in turn.
    pub images: usize,
}

/// Rendered sizes (pixels per em) and how much thicker than the font's own a stroke may be
/// made, as a share of the size: enough for a felt pen, not so much that a 0 fills in.
const SIZES: std::ops::Range<f32> = 40.0..96.0;
const MOST_THICKENING: f32 = 0.10;

impl Synthetic {
    /// Drawn digits are labelled by their digit: the data set's classes must be 0-9 in order.
    pub fn check_classes(&self, classes: &[String]) -> Result<(), SyntheticError> {
        let digits = (0..10).map(|d| d.to_string());
        if classes.len() == 10 && classes.iter().cloned().eq(digits) {
            Ok(())
        } else {
            Err(SyntheticError::NotDigits {
                classes: brief(classes, 10),
            })
        }
    }

    /// Draws the digits: their 28x28 pixels one after the other, and their labels. A function
    /// of the seed and the fonts alone, so a resumed run draws the same ones.
    pub fn draw(&self, seed: u64) -> Result<(Vec<u8>, Vec<Class>), SyntheticError> {
        let fonts = self
            .fonts
            .iter()
            .map(|path| load(path))
            .collect::<Result<Vec<_>, _>>()?;
        // The config refuses both, but the library's callers need not go through it.
        if fonts.is_empty() || self.images == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let digits: Vec<(Vec<u8>, Class)> = (0..self.images)
            .into_par_iter()
            .map(|index| {
                let mut rng = Rng::new(seed ^ 0x2545_f491_4f6c_dd1d);
                rng.mix(index as u64);
                let digit = (index % 10) as u8;
                let font = &fonts[(rng.next_u64() % fonts.len() as u64) as usize];
                let size = SIZES.start + (SIZES.end - SIZES.start) * rng.unit() as f32;
                let pen = rng.unit() as f32;
                let image = draw_digit(font, digit, size, pen)
                    .expect("load drew every digit at the smallest and largest size and pen");
                (image, Class::from(digit))
            })
            .collect();
        let mut pixels = Vec::with_capacity(digits.len() * IMAGE_PIXELS);
        let mut labels = Vec::with_capacity(digits.len());
        for (image, label) in digits {
            pixels.extend_from_slice(&image);
            labels.push(label);
        }
        Ok((pixels, labels))
    }
}

fn load(path: &Path) -> Result<FontVec, SyntheticError> {
    let bytes = std::fs::read(path).map_err(|source| SyntheticError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let font = FontVec::try_from_vec(bytes).map_err(|_| SyntheticError::NotAFont {
        path: path.to_path_buf(),
    })?;
    // Checked here, once, at the smallest and largest size and pen, so that drawing cannot
    // meet a digit that is missing, empty or absurdly large.
    for digit in 0..10u8 {
        let drawable = font.glyph_id(char::from(b'0' + digit)).0 != 0
            && [(SIZES.start, 0.0), (SIZES.end, 1.0)]
                .iter()
                .all(|&(size, pen)| draw_digit(&font, digit, size, pen).is_some());
        if !drawable {
            return Err(SyntheticError::NoDigit {
                path: path.to_path_buf(),
                digit,
            });
        }
    }
    Ok(font)
}

/// One digit drawn dark on white paper, `size` pixels per em, its pen thickened by the share
/// `pen` of the most, then prepared as a user's picture is; `None` if the font's glyph for it
/// is empty, or larger than a digit can be (a broken font's bounds).
fn draw_digit(font: &FontVec, digit: u8, size: f32, pen: f32) -> Option<Vec<u8>> {
    let thickening = (MOST_THICKENING * size * pen) as usize;
    let glyph = font
        .glyph_id(char::from(b'0' + digit))
        .with_scale_and_position(PxScale::from(size), point(0.0, 0.0));
    let outline = font.outline_glyph(glyph)?;
    let bounds = outline.px_bounds();
    let largest = 4.0 * size;
    if !(bounds.width() <= largest && bounds.height() <= largest) {
        return None;
    }
    // A margin of paper all round, wider than any thickening, so the ink never meets the edge.
    let margin = (size / 4.0) as usize + thickening;
    let width = bounds.width().ceil() as usize + 2 * margin;
    let height = bounds.height().ceil() as usize + 2 * margin;
    let mut ink = vec![0f32; width * height];
    outline.draw(|x, y, coverage| {
        let at = (y as usize + margin) * width + x as usize + margin;
        if let Some(pixel) = ink.get_mut(at) {
            *pixel = pixel.max(coverage);
        }
    });
    let ink = thicken(&ink, width, height, thickening);
    let paper: Vec<u8> = ink
        .iter()
        .map(|&c| 255 - (c.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let picture = GrayImage::from_raw(width as u32, height as u32, paper)?;
    Some(mnist_style(&DynamicImage::ImageLuma8(picture))?.pixels)
}

/// Grey-level dilation by a square of side 2r + 1, rows then columns: a bolder pen.
fn thicken(ink: &[f32], width: usize, height: usize, radius: usize) -> Vec<f32> {
    if radius == 0 {
        return ink.to_vec();
    }
    let widest =
        |values: &[f32], at: &dyn Fn(usize, usize) -> usize, lines: usize, length: usize| {
            let mut out = vec![0f32; values.len()];
            for line in 0..lines {
                for i in 0..length {
                    let (from, to) = (i.saturating_sub(radius), (i + radius).min(length - 1));
                    out[at(line, i)] = (from..=to).map(|j| values[at(line, j)]).fold(0.0, f32::max);
                }
            }
            out
        };
    let rows = widest(ink, &|y, x| y * width + x, height, width);
    widest(&rows, &|x, y| y * width + x, width, height)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Drawing from real fonts is tested in tests/synthetic.rs, which knows where CI puts them.

    #[test]
    fn thickening_widens_a_stroke_by_its_radius_each_side() {
        let (width, height) = (9, 3);
        let mut ink = vec![0f32; width * height];
        ink[width + 4] = 1.0;
        let thick = thicken(&ink, width, height, 2);
        let row: Vec<f32> = thick[width..2 * width].to_vec();
        assert_eq!(row, [0., 0., 1., 1., 1., 1., 1., 0., 0.]);
        assert!(thick.iter().take(width).eq(row.iter()));
        assert_eq!(thicken(&ink, width, height, 0), ink);
    }
}
