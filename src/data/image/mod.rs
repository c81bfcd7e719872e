//! Images brought to the model's input form, one way for training on image folders and for
//! `predict`, `serve` and eval alike, as the run's `data.preprocess` says ([`Preprocess`]).
//!
//! `digit` (the default) makes a photo or drawing of a mark on paper look like MNIST's images:
//! greyscale, light ink on a dark background, cropped to the mark's ink, the longer side scaled
//! to 20 pixels, and placed in a 28x28 field with the ink's centre of mass at the centre, as
//! LeCun et al. prepared MNIST. Photos are read as they are shown (their EXIF orientation
//! applied), their lighting is taken out ([`ink`]), and only the largest mark's own ink is kept
//! ([`marks`]). A clean 28x28 MNIST digit comes through unchanged.
//!
//! `resize` is a plain greyscale resize to 28x28, for pictures of objects, where cropping to
//! "ink" would cut the object apart.

mod ink;
mod marks;
mod shrink;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::{
    DynamicImage, GrayImage, ImageBuffer, ImageDecoder, ImageFormat, ImageReader, Limits, Luma,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::input::{IMAGE_PIXELS, IMAGE_SIDE};
use ink::InkMap;
use shrink::{is_large, shrunk};

/// Side of the box MNIST scaled each digit into, inside the 28x28 field.
const DIGIT_BOX: usize = 20;
/// Where MNIST's digits have their centre of mass, in pixel indices: 14.0 on both axes, every
/// one of the 10,000 test digits within half a pixel of it.
const CENTRE_OF_MASS: f32 = 14.0;

/// Ink at least this strong counts as full strength already.
const FULL_INK: f32 = 0.9;

/// The formats read, and how errors name them.
const FORMATS: [ImageFormat; 6] = [
    ImageFormat::Png,
    ImageFormat::Jpeg,
    ImageFormat::Bmp,
    ImageFormat::WebP,
    ImageFormat::Tiff,
    ImageFormat::Gif,
];
const FORMAT_NAMES: &str = "PNG, JPEG, BMP, WebP, TIFF or GIF";

/// The file endings images are recognised by in folders (their content decides the format).
pub const IMAGE_ENDINGS: [&str; 9] = [
    "png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff", "gif", "jfif",
];

/// Whether `path` ends like an image file.
pub fn has_image_ending(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .is_some_and(|e| IMAGE_ENDINGS.contains(&e.as_str()))
}

/// The largest image decoded by default, in pixels: a phone's photo (48 megapixels) fits.
pub const MAX_PIXELS: u64 = 50_000_000;

/// The most memory one decode may take, whatever the pixel limit: a 50-megapixel photo with
/// 16 bits per channel and alpha needs 400 MB.
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// How image files are read: how they are brought to 28x28, and the largest decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoding {
    pub preprocess: Preprocess,
    /// Images of more pixels than this are refused from their header, before decoding.
    pub max_pixels: u64,
}

/// How an image is brought to the model's 28x28 greyscale input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preprocess {
    /// A mark on paper (a digit, a letter, a symbol): cropped to its ink, scaled into a 20x20
    /// box and centred, light on dark whatever the image's polarity, as MNIST was made.
    #[default]
    Digit,
    /// A plain greyscale resize of the whole picture to 28x28, for photos of objects.
    Resize,
}

#[derive(Debug, Error)]
pub enum ImageError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a {FORMAT_NAMES} image", path.display())]
    UnknownFormat { path: PathBuf },
    #[error("{}: cannot decode the image: {message}", path.display())]
    Decode { path: PathBuf, message: String },
    #[error("{}: nothing to read: the image is blank", path.display())]
    Blank { path: PathBuf },
    #[error(
        "{}: {width}x{height} pixels ({}), more than the limit of {}; raise it with \
         --max-image-pixels (data.max_image_pixels in a config)",
        path.display(),
        megapixels(*width as u64 * *height as u64),
        megapixels(*limit)
    )]
    TooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        limit: u64,
    },
    #[error(
        "{}: decoding needs more than {} MB of memory, the most one image may take",
        path.display(),
        MAX_DECODE_BYTES >> 20
    )]
    TooMuchMemory { path: PathBuf },
}

/// Pixels for people: `12.3 megapixels`, or the count when under one.
fn megapixels(pixels: u64) -> String {
    if pixels >= 1_000_000 {
        format!("{:.1} megapixels", pixels as f64 / 1e6)
    } else {
        format!("{pixels} pixels")
    }
}

impl ImageError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ImageError::Read { path, .. }
            | ImageError::UnknownFormat { path }
            | ImageError::Decode { path, .. }
            | ImageError::Blank { path }
            | ImageError::TooLarge { path, .. }
            | ImageError::TooMuchMemory { path } => path,
        }
    }
}

/// An image in the model's input form, and what was noticed on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// 28x28 greyscale, light ink on black, row-major.
    pub pixels: Vec<u8>,
    /// Separate marks besides the digit (another digit, a doodle), left out of `pixels`.
    pub other_marks: usize,
}

/// Reads an image file and brings it to the model's input form.
pub fn load_image(path: &Path, how: Decoding) -> Result<Prepared, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode_image(&bytes, path, how)
}

/// Brings an image file's `bytes` to the model's input form; `name` names it in errors.
pub fn decode_image(bytes: &[u8], name: &Path, how: Decoding) -> Result<Prepared, ImageError> {
    let image = decode(bytes, name, how.max_pixels)?;
    prepare(image, how.preprocess).ok_or_else(|| ImageError::Blank {
        path: name.to_path_buf(),
    })
}

/// Brings a decoded image to the model's input form; `None` if it holds no ink.
pub fn prepare(image: DynamicImage, preprocess: Preprocess) -> Option<Prepared> {
    let image = shrunk(image);
    match preprocess {
        Preprocess::Digit => mnist_style(&image),
        Preprocess::Resize => Some(resized(&image)),
    }
}

/// The whole picture in greyscale at 28x28, as it is (no inversion, no cropping); what is
/// transparent shows white paper, as a viewer shows it.
pub fn resized(image: &DynamicImage) -> Prepared {
    let grey = if image.color().has_alpha() {
        let rgba = image.to_rgba32f();
        GrayImage::from_fn(rgba.width(), rgba.height(), |x, y| {
            let [r, g, b, a] = rgba.get_pixel(x, y).0;
            // Rec. 709 luma, as the image crate's greyscale conversion uses.
            let luma = 0.2126 * r + 0.7152 * g + 0.0722 * b;
            Luma([((luma * a + (1.0 - a)) * 255.0).round().clamp(0.0, 255.0) as u8])
        })
    } else {
        image.to_luma8()
    };
    let side = IMAGE_SIDE as u32;
    let grey = if grey.dimensions() == (side, side) {
        grey
    } else {
        imageops::resize(&grey, side, side, FilterType::Triangle)
    };
    Prepared {
        pixels: grey.into_raw(),
        other_marks: 0,
    }
}

/// Decodes an image by its content (a text file called .png is not a PNG), turned upright as
/// its EXIF orientation says, as phones store pictures taken sideways. Its size is read from
/// its header first: an image of more than `max_pixels` is refused before anything is
/// decoded, and no decode may take more than [`MAX_DECODE_BYTES`]. Of an animation or a
/// multi-page file, the first frame is read. A JPEG larger than preparing looks at (a
/// camera's) comes out already shrunk, much as [`prepare`] would shrink it ([`shrunk_jpeg`]).
pub fn decode(bytes: &[u8], name: &Path, max_pixels: u64) -> Result<DynamicImage, ImageError> {
    let decode_error = |error: image::ImageError| match error {
        image::ImageError::Limits(_) => ImageError::TooMuchMemory {
            path: name.to_path_buf(),
        },
        // Some decoders' messages run over lines (found by fuzzing: a truncated JPEG); an error
        // here is one line.
        error => ImageError::Decode {
            path: name.to_path_buf(),
            message: error
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        },
    };
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| decode_error(e.into()))
    };
    let mut probe = reader()?;
    let Some(probe_format) = probe.format().filter(|f| FORMATS.contains(f)) else {
        return Err(ImageError::UnknownFormat {
            path: name.to_path_buf(),
        });
    };
    // The header alone, read without limits (PNG's decoder would refuse a large image by its
    // memory, before its size could be named).
    probe.no_limits();
    let (width, height) = probe.into_dimensions().map_err(decode_error)?;
    if width as u64 * height as u64 > max_pixels {
        return Err(ImageError::TooLarge {
            path: name.to_path_buf(),
            width,
            height,
            limit: max_pixels,
        });
    }
    let mut reader = reader()?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    if decoder.total_bytes() > MAX_DECODE_BYTES {
        return Err(ImageError::TooMuchMemory {
            path: name.to_path_buf(),
        });
    }
    let orientation = decoder.orientation().map_err(decode_error)?;
    let shrunk = (is_large(width, height) && probe_format == ImageFormat::Jpeg)
        .then(|| shrunk_jpeg(bytes, width, height))
        .flatten();
    let mut image = match shrunk {
        Some(image) => image,
        None => DynamicImage::from_decoder(decoder).map_err(decode_error)?,
    };
    image.apply_orientation(orientation);
    Ok(image)
}

/// A large JPEG of `width` x `height` decoded at 1/2, 1/4 or 1/8 of its size by its DCT, then
/// averaged down to what [`shrunk`] would make of the whole decode (the same blocks, or blocks
/// up to a tenth larger: [`shrink::jpeg_scaling`]): a phone's 12-megapixel photo is decoded at
/// 504x378 instead of whole, only for 16x16 blocks of it to be averaged (`jpeg-decoder` scales
/// so; the image crate's decoder does not). Its memory is bounded as the whole decode's, checked
/// before: its output is smaller, and a progressive JPEG's coefficients are kept whole by either
/// decoder. `None` when that decoder cannot read the file (a CMYK or 12-bit JPEG, a damaged
/// one, one whose scale falls between theirs): the image crate's decoder then reads it whole,
/// or names what is wrong.
fn shrunk_jpeg(bytes: &[u8], width: u32, height: u32) -> Option<DynamicImage> {
    let (scale, block) = shrink::jpeg_scaling(width, height)?;
    let scaled = |side: u32| u16::try_from(side.div_ceil(scale)).ok();
    let (scaled_width, scaled_height) = (scaled(width)?, scaled(height)?);
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    // The smallest of its scales that is at least this large: 1/scale, as it reads the header.
    let decoded_size = decoder.scale(scaled_width, scaled_height).ok()?;
    if decoded_size != (scaled_width, scaled_height) {
        return None;
    }
    let luma = match decoder.info()?.pixel_format {
        jpeg_decoder::PixelFormat::L8 => true,
        jpeg_decoder::PixelFormat::RGB24 => false,
        jpeg_decoder::PixelFormat::L16 | jpeg_decoder::PixelFormat::CMYK32 => return None,
    };
    let pixels = decoder.decode().ok()?;
    let (w, h) = (u32::from(scaled_width), u32::from(scaled_height));
    let image = if luma {
        DynamicImage::ImageLuma8(ImageBuffer::from_raw(w, h, pixels)?)
    } else {
        DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, pixels)?)
    };
    // Without the last row or column of blocks the whole decode would not have made whole.
    let blocks = scale * block as u32;
    let (kept_width, kept_height) = (width / blocks, height / blocks);
    let averaged = shrink::averaged_by(image, block);
    Some(
        if averaged.width() > kept_width || averaged.height() > kept_height {
            averaged.crop_imm(0, 0, kept_width, kept_height)
        } else {
            averaged
        },
    )
}

/// Brings any image of a digit to the model's input form; `None` if it holds no ink at all.
pub fn mnist_style(image: &DynamicImage) -> Option<Prepared> {
    let map = InkMap::of(image);
    let digit = marks::find_digit(&map)?;
    let glyph = crop(&map, &digit)?;
    let longer = glyph.width().max(glyph.height()) as usize;
    // A digit already MNIST's size (a saved MNIST digit) is not resampled, which would blur it.
    let glyph = if longer == DIGIT_BOX {
        glyph
    } else {
        let scale = DIGIT_BOX as f32 / longer as f32;
        let size = |side: u32| ((side as f32 * scale).round() as u32).max(1);
        imageops::resize(
            &glyph,
            size(glyph.width()),
            size(glyph.height()),
            FilterType::Triangle,
        )
    };
    Some(Prepared {
        pixels: centred(&glyph),
        other_marks: digit.other_marks,
    })
}

/// The digit's box cut out of the ink map, its pixels scaled so the strongest is (about) 1 and
/// every pixel that is not the digit's set to 0.
fn crop(map: &InkMap, digit: &marks::Digit) -> Option<ImageBuffer<Luma<f32>, Vec<f32>>> {
    let w = map.width;
    let [x0, y0, x1, y1] = digit.bounds;
    let digit = &digit.pixels;
    let (cw, ch) = (x1 - x0 + 1, y1 - y0 + 1);
    // The digit's part of each row of the box, as (kept, ink) slices.
    let rows = || {
        (y0..=y1).map(move |y| {
            let at = y * w + x0..y * w + x1 + 1;
            (&digit[at.clone()], &map.ink[at])
        })
    };
    let mut strongest = 0.0f32;
    for (kept, ink) in rows() {
        for (_, &ink) in kept.iter().zip(ink).filter(|(kept, _)| **kept) {
            strongest = strongest.max(ink);
        }
    }
    if strongest <= 0.0 {
        return None;
    }
    // Faint ink (a pencil, a dim photo) is brought to full strength, as MNIST's digits have;
    // ink already near it (a scan, a drawing, an MNIST digit itself) keeps its values.
    let strongest = if strongest >= FULL_INK {
        1.0
    } else {
        strongest
    };
    let mut values = Vec::with_capacity(cw * ch);
    for (kept, ink) in rows() {
        values.extend(
            kept.iter()
                .zip(ink)
                .map(|(&kept, &ink)| if kept { ink / strongest } else { 0.0 }),
        );
    }
    ImageBuffer::from_raw(cw as u32, ch as u32, values)
}

/// `glyph` placed in the 28x28 field with its centre of mass where MNIST's digits have theirs,
/// moved by whole pixels and kept inside the field.
fn centred(glyph: &ImageBuffer<Luma<f32>, Vec<f32>>) -> Vec<u8> {
    let (width, height) = glyph.dimensions();
    let (mut mass, mut mx, mut my) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y, p) in glyph.enumerate_pixels() {
        mass += p[0];
        mx += p[0] * x as f32;
        my += p[0] * y as f32;
    }
    let place = |moment: f32, size: u32| {
        let offset = (CENTRE_OF_MASS - moment / mass.max(f32::MIN_POSITIVE)).round() as i64;
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
    field
}

#[cfg(test)]
mod tests;
