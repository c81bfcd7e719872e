//! People's images brought to the model's input form. A photo or drawing of a digit becomes
//! what MNIST's images look like: greyscale, light ink on a dark background, cropped to the
//! ink, the longer side scaled to 20 pixels, and placed in a 28x28 field with the ink's centre
//! of mass at the centre, as LeCun et al. prepared MNIST.

use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma};
use thiserror::Error;

use crate::input::{IMAGE_PIXELS, IMAGE_SIDE};

/// Side of the box MNIST scaled each digit into, inside the 28x28 field.
const DIGIT_BOX: f32 = 20.0;
/// Ink below this fraction of the strongest ink is background noise, not part of the digit.
const INK_THRESHOLD: f32 = 0.1;

#[derive(Debug, Error)]
pub enum ImageError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a PNG, JPEG or BMP image", path.display())]
    UnknownFormat { path: PathBuf },
    #[error("{}: cannot decode the image: {message}", path.display())]
    Decode { path: PathBuf, message: String },
    #[error("{}: no digit found: the image is blank", path.display())]
    Blank { path: PathBuf },
}

/// Reads an image file and brings it to MNIST form (28x28, white ink on black, row-major).
pub fn load_digit(path: &Path) -> Result<Vec<u8>, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // By content, not by name: a text file called .png is not a PNG.
    let format = image::guess_format(&bytes)
        .ok()
        .filter(|f| matches!(f, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Bmp))
        .ok_or_else(|| ImageError::UnknownFormat {
            path: path.to_path_buf(),
        })?;
    let image =
        image::load_from_memory_with_format(&bytes, format).map_err(|e| ImageError::Decode {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    mnist_style(&image).ok_or_else(|| ImageError::Blank {
        path: path.to_path_buf(),
    })
}

/// Brings any image of a digit to MNIST form; `None` if it holds no ink at all.
pub fn mnist_style(image: &DynamicImage) -> Option<Vec<u8>> {
    let ink = ink_map(image)?;
    let (x0, y0, x1, y1) = ink_bounds(&ink)?;
    let glyph = imageops::crop_imm(&ink, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image();
    let scale = DIGIT_BOX / glyph.width().max(glyph.height()) as f32;
    let width = ((glyph.width() as f32 * scale).round() as u32).max(1);
    let height = ((glyph.height() as f32 * scale).round() as u32).max(1);
    let glyph = imageops::resize(&glyph, width, height, FilterType::Triangle);

    // Shift so that the centre of mass lands on the centre of the field, keeping all ink inside.
    let (mut mass, mut mx, mut my) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y, p) in glyph.enumerate_pixels() {
        mass += p[0];
        mx += p[0] * (x as f32 + 0.5);
        my += p[0] * (y as f32 + 0.5);
    }
    let centre = IMAGE_SIDE as f32 / 2.0;
    let place = |com: f32, size: u32| {
        let offset = (centre - com / mass).round() as i64;
        offset.clamp(0, (IMAGE_SIDE as i64 - size as i64).max(0))
    };
    let (ox, oy) = (place(mx, width), place(my, height));
    let mut field = vec![0u8; IMAGE_PIXELS];
    for (x, y, p) in glyph.enumerate_pixels() {
        let (fx, fy) = (x as i64 + ox, y as i64 + oy);
        if (0..IMAGE_SIDE as i64).contains(&fx) && (0..IMAGE_SIDE as i64).contains(&fy) {
            field[fy as usize * IMAGE_SIDE + fx as usize] =
                (p[0].clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    Some(field)
}

/// Ink strength per pixel, 0 (background) to 1 (strongest ink), whatever the image's colours
/// and polarity. Transparent pixels count as background.
fn ink_map(image: &DynamicImage) -> Option<ImageBuffer<Luma<f32>, Vec<f32>>> {
    let grey_alpha = image.to_luma_alpha32f();
    let (width, height) = grey_alpha.dimensions();
    // Composite over white: a transparent background is paper.
    let grey: Vec<f32> = grey_alpha
        .pixels()
        .map(|p| p[0] * p[1] + (1.0 - p[1]))
        .collect();
    let background = median(border(&grey, width as usize, height as usize));
    let dark_ink = background > 0.5;
    let mut ink: Vec<f32> = grey
        .iter()
        .map(|&v| {
            if dark_ink {
                background - v
            } else {
                v - background
            }
            .max(0.0)
        })
        .collect();
    let strongest = ink.iter().copied().fold(0.0, f32::max);
    if strongest < INK_THRESHOLD {
        return None;
    }
    ink.iter_mut().for_each(|v| *v /= strongest);
    ImageBuffer::from_raw(width, height, ink)
}

fn border(pixels: &[f32], width: usize, height: usize) -> Vec<f32> {
    (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .filter(|&(x, y)| x == 0 || y == 0 || x == width - 1 || y == height - 1)
        .map(|(x, y)| pixels[y * width + x])
        .collect()
}

fn median(mut values: Vec<f32>) -> f32 {
    values.sort_by(f32::total_cmp);
    values[values.len() / 2]
}

/// Inclusive bounding box `(x0, y0, x1, y1)` of the pixels holding ink.
fn ink_bounds(ink: &ImageBuffer<Luma<f32>, Vec<f32>>) -> Option<(u32, u32, u32, u32)> {
    let mut bounds: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in ink.enumerate_pixels() {
        if p[0] > INK_THRESHOLD {
            bounds = Some(match bounds {
                None => (x, y, x, y),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
            });
        }
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, RgbaImage};

    /// A dark bar on a light background, `w`x`h` pixels.
    fn bar_image(w: u32, h: u32, light_background: bool) -> DynamicImage {
        let (bg, ink) = if light_background {
            (240, 10)
        } else {
            (10, 240)
        };
        let mut img = GrayImage::from_pixel(w, h, Luma([bg]));
        for y in h / 4..h * 3 / 4 {
            for x in w / 2 - w / 20..w / 2 + w / 20 {
                img.put_pixel(x, y, Luma([ink]));
            }
        }
        DynamicImage::ImageLuma8(img)
    }

    fn bounds(field: &[u8]) -> (usize, usize, usize, usize) {
        let ink: Vec<(usize, usize)> = (0..IMAGE_PIXELS)
            .filter(|&i| field[i] > 25)
            .map(|i| (i % IMAGE_SIDE, i / IMAGE_SIDE))
            .collect();
        let xs = ink.iter().map(|p| p.0);
        let ys = ink.iter().map(|p| p.1);
        (
            xs.clone().min().unwrap(),
            ys.clone().min().unwrap(),
            xs.max().unwrap(),
            ys.max().unwrap(),
        )
    }

    #[test]
    fn a_digit_is_scaled_to_20_pixels_and_centred() {
        let field = mnist_style(&bar_image(300, 400, true)).unwrap();
        let (x0, y0, x1, y1) = bounds(&field);
        assert_eq!(y1 - y0 + 1, 20, "longer side is 20 pixels");
        assert!(x1 - x0 < 3, "aspect kept: a thin bar stays thin");
        assert!((13..=14).contains(&((x0 + x1) / 2)), "centred: {x0}..{x1}");
        assert!((13..=14).contains(&((y0 + y1) / 2)), "centred: {y0}..{y1}");
    }

    #[test]
    fn polarity_does_not_matter() {
        let dark_on_light = mnist_style(&bar_image(100, 100, true)).unwrap();
        let light_on_dark = mnist_style(&bar_image(100, 100, false)).unwrap();
        assert_eq!(dark_on_light, light_on_dark);
        assert!(
            dark_on_light.iter().filter(|&&v| v > 200).count() > 10,
            "ink is bright"
        );
        assert_eq!(dark_on_light[0], 0, "background is black");
    }

    #[test]
    fn transparent_background_is_paper() {
        let mut img = RgbaImage::from_pixel(50, 50, image::Rgba([0, 0, 0, 0]));
        for y in 10..40 {
            for x in 24..27 {
                img.put_pixel(x, y, image::Rgba([0, 0, 0, 255]));
            }
        }
        let field = mnist_style(&DynamicImage::ImageRgba8(img)).unwrap();
        let (_, y0, _, y1) = bounds(&field);
        assert_eq!(y1 - y0 + 1, 20);
    }

    #[test]
    fn a_blank_image_has_no_digit() {
        let blank = DynamicImage::ImageLuma8(GrayImage::from_pixel(40, 40, Luma([200])));
        assert_eq!(mnist_style(&blank), None);
    }
}
