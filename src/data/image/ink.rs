//! How much ink each pixel of a picture holds, whatever its colours, polarity and lighting: a
//! photo of paper is brighter on one side than the other, so the background is a smooth surface
//! fitted to the pixels that are not ink, not one value for the whole picture.

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, Luma};

/// Pictures are looked at with their longer side at most this long: enough for a digit that
/// fills a tenth of a photo's width, and it bounds the work for any camera's resolution.
const WORKING_SIDE: u32 = 512;

/// A background surface that varies less than this over the picture is taken as flat, one
/// value: a clean scan or a drawing then keeps its pixels exactly.
const FLAT: f32 = 2.0 / 255.0;

/// Ink strength per pixel, 0 (paper) upwards, with the noise level of the paper around it.
pub struct InkMap {
    pub width: usize,
    pub height: usize,
    pub ink: Vec<f32>,
    /// The standard deviation of the paper's pixels about the fitted background.
    pub noise: f32,
}

impl InkMap {
    /// The ink of `image`: greyscale (transparent pixels count as paper), at most
    /// `WORKING_SIDE` pixels on a side, turned so that ink is bright whichever way round the
    /// picture is, with the background surface subtracted.
    pub fn of(image: &DynamicImage) -> Self {
        let grey = greyscale(image);
        let (width, height) = (grey.width() as usize, grey.height() as usize);
        let mut values = grey.into_raw();
        // The paper is most of the picture: if most of it is light, the ink is dark.
        if median(values.clone()) > 0.5 {
            values.iter_mut().for_each(|v| *v = 1.0 - *v);
        }
        let (background, noise) = fit_background(&values, width, height);
        let ink = values
            .iter()
            .zip(&background)
            .map(|(v, b)| (v - b).max(0.0))
            .collect();
        InkMap {
            width,
            height,
            ink,
            noise,
        }
    }
}

/// The picture's grey levels (0 black, 1 white), composited over white paper, and scaled down
/// (averaging) if it is larger than the working size.
fn greyscale(image: &DynamicImage) -> ImageBuffer<Luma<f32>, Vec<f32>> {
    let grey_alpha = image.to_luma_alpha32f();
    let (width, height) = grey_alpha.dimensions();
    let grey: Vec<f32> = grey_alpha
        .pixels()
        .map(|p| p[0] * p[1] + (1.0 - p[1]))
        .collect();
    let grey = ImageBuffer::from_raw(width, height, grey).expect("one value per pixel");
    let longer = width.max(height);
    if longer <= WORKING_SIDE {
        return grey;
    }
    let scale = WORKING_SIDE as f32 / longer as f32;
    let size = |side: u32| ((side as f32 * scale).round() as u32).max(1);
    imageops::resize(&grey, size(width), size(height), FilterType::Triangle)
}

fn median(mut values: Vec<f32>) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let middle = values.len() / 2;
    *values.select_nth_unstable_by(middle, f32::total_cmp).1
}

/// The background under `values` (ink bright) and the paper's noise: a quadratic surface in x
/// and y, fitted by least squares to the pixels that are not ink, found by refitting without
/// the pixels well above the last fit. A nearly flat surface becomes the paper's median.
fn fit_background(values: &[f32], width: usize, height: usize) -> (Vec<f32>, f32) {
    let terms = |i: usize| {
        let x = 2.0 * (i % width) as f64 / width.max(2) as f64 - 1.0;
        let y = 2.0 * (i / width) as f64 / height.max(2) as f64 - 1.0;
        [1.0, x, y, x * x, y * y, x * y]
    };
    let surface = |coefficients: &[f64; 6]| -> Vec<f32> {
        (0..values.len())
            .map(|i| {
                let t = terms(i);
                (0..6).map(|k| coefficients[k] * t[k]).sum::<f64>() as f32
            })
            .collect()
    };
    // Start from the pixels near the picture's typical level: most of the picture is paper,
    // and a large or bold digit would otherwise pull the first surface up under itself.
    let middle = median(values.to_vec());
    let spread = 1.4826 * median(values.iter().map(|v| (v - middle).abs()).collect());
    let start = middle + (3.0 * spread).max(0.05);
    let mut paper: Vec<bool> = values.iter().map(|&v| v <= start).collect();
    let mut background = vec![middle; values.len()];
    let mut noise = 0.0;
    for _ in 0..4 {
        let Some(coefficients) = least_squares(values, &paper, terms) else {
            break;
        };
        background = surface(&coefficients);
        let residuals: Vec<f32> = (0..values.len())
            .filter(|&i| paper[i])
            .map(|i| values[i] - background[i])
            .collect();
        let centre = median(residuals.clone());
        noise = 1.4826 * median(residuals.iter().map(|r| (r - centre).abs()).collect());
        let limit = (3.0 * noise).max(0.02);
        for (i, is_paper) in paper.iter_mut().enumerate() {
            *is_paper = values[i] - background[i] < limit;
        }
    }
    let (low, high) = background
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &b| (lo.min(b), hi.max(b)));
    if high - low < FLAT {
        let paper_values = (0..values.len())
            .filter(|&i| paper[i])
            .map(|i| values[i])
            .collect();
        background = vec![median(paper_values); values.len()];
    }
    (background, noise)
}

/// The six coefficients minimising the squared error of `terms` against `values` over the
/// pixels marked in `use_pixel`, by the normal equations; `None` if they are singular.
fn least_squares(
    values: &[f32],
    use_pixel: &[bool],
    terms: impl Fn(usize) -> [f64; 6],
) -> Option<[f64; 6]> {
    let mut normal = [[0.0f64; 7]; 6];
    for i in (0..values.len()).filter(|&i| use_pixel[i]) {
        let t = terms(i);
        for r in 0..6 {
            for c in 0..6 {
                normal[r][c] += t[r] * t[c];
            }
            normal[r][6] += t[r] * values[i] as f64;
        }
    }
    // Gaussian elimination with partial pivoting on the 6x7 augmented matrix.
    for column in 0..6 {
        let pivot = (column..6)
            .max_by(|&a, &b| normal[a][column].abs().total_cmp(&normal[b][column].abs()))?;
        if normal[pivot][column].abs() < 1e-9 {
            return None;
        }
        normal.swap(column, pivot);
        let pivot_row = normal[column];
        for (row, values) in normal.iter_mut().enumerate() {
            if row != column {
                let factor = values[column] / pivot_row[column];
                for (value, pivot_value) in values.iter_mut().zip(pivot_row).skip(column) {
                    *value -= factor * pivot_value;
                }
            }
        }
    }
    Some(std::array::from_fn(|k| normal[k][6] / normal[k][k]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::GrayImage;

    #[test]
    fn a_flat_background_keeps_the_pixels_exactly() {
        let mut img = GrayImage::new(28, 28);
        for (i, p) in img.pixels_mut().enumerate() {
            if (i % 28).abs_diff(14) < 2 && (4..24).contains(&(i / 28)) {
                p[0] = (100 + i % 150) as u8;
            }
        }
        let map = InkMap::of(&DynamicImage::ImageLuma8(img.clone()));
        let back: Vec<u8> = map.ink.iter().map(|v| (v * 255.0).round() as u8).collect();
        assert_eq!(back, img.into_raw());
        assert_eq!(map.noise, 0.0);
    }

    #[test]
    fn a_lighting_gradient_is_not_ink() {
        // Paper from 0.45 (left) to 0.95 (right) white; a dark stroke down the middle.
        let img = GrayImage::from_fn(200, 150, |x, _| {
            let paper = 0.45 + 0.5 * x as f32 / 199.0;
            let ink = (95..105).contains(&x);
            image::Luma([((if ink { paper - 0.35 } else { paper }) * 255.0) as u8])
        });
        let map = InkMap::of(&DynamicImage::ImageLuma8(img));
        let column = |x: usize| map.ink[75 * map.width + x];
        assert!(column(100) > 0.3, "the stroke is ink: {}", column(100));
        for x in [0, 30, 60, 140, 199] {
            assert!(column(x) < 0.03, "paper at x = {x} is not: {}", column(x));
        }
    }
}
