//! Photo-like pictures of MNIST digits, as people would photograph a digit written on paper:
//! dark ink on light paper, uneven lighting, sensor noise, blur, JPEG, a picture stored sideways
//! with an EXIF orientation tag, the digit small and off-centre on a large page, a pen mark and
//! the edge of the table beyond the paper. Each picture is a function of the digit and its index
//! alone, so the set is the same on every run.
//!
//! Shared by the tests (tests/commands.rs) and `cargo bench --bench photos`, which prints the
//! accuracy per kind for the README.

#![allow(dead_code)] // each user takes the parts it needs

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{DynamicImage, GrayImage, ImageEncoder, Luma};
use lenet::data::rng::Rng;

/// The kinds of picture, each a step further from a clean scan.
pub const KINDS: [&str; 10] = [
    "clean", "paper", "gradient", "noise", "blur", "jpeg", "small", "sideways", "marks", "photo",
];

/// The picture of kind `kind` of a 28x28 MNIST digit (light ink on black), as encoded bytes
/// (PNG, or JPEG for the kinds that are photos).
pub fn picture(kind: &str, digit: &[u8], index: usize) -> Vec<u8> {
    let mut rng = Rng::new(0x5eed ^ (index as u64 * 0x9e37_79b9));
    match kind {
        "clean" => png(&GrayImage::from_raw(28, 28, digit.to_vec()).unwrap()),
        "paper" => png(&on_paper(digit, 6, (200, 200), &mut rng)),
        "gradient" => {
            let mut page = on_paper(digit, 6, (220, 200), &mut rng);
            lighting(&mut page, &mut rng);
            png(&page)
        }
        "noise" => {
            let mut page = on_paper(digit, 6, (200, 200), &mut rng);
            noise(&mut page, 14.0, &mut rng);
            png(&page)
        }
        "blur" => png(&imageops::blur(
            &on_paper(digit, 6, (200, 200), &mut rng),
            2.5,
        )),
        "jpeg" => jpeg(&on_paper(digit, 6, (200, 200), &mut rng), 35, None),
        "small" => png(&on_paper(digit, 3, (640, 480), &mut rng)),
        "sideways" => {
            let page = on_paper(digit, 6, (240, 200), &mut rng);
            // Orientation 6: shown after turning 90 degrees clockwise, so stored the other way.
            jpeg(&imageops::rotate270(&page), 90, Some(6))
        }
        "marks" => {
            let mut page = on_paper(digit, 5, (320, 260), &mut rng);
            marks(&mut page, &mut rng);
            png(&page)
        }
        "photo" => {
            let mut page = on_paper(digit, 4, (480, 360), &mut rng);
            lighting(&mut page, &mut rng);
            marks(&mut page, &mut rng);
            let mut page = imageops::blur(&page, 1.2);
            noise(&mut page, 8.0, &mut rng);
            jpeg(&imageops::rotate90(&page), 75, Some(8))
        }
        other => panic!("unknown kind {other}"),
    }
}

/// A 4 drawn with a 16-pixel round pen on a white 224x224 canvas, dark grey ink, as the draw
/// page (or a phone's drawing app) makes one.
pub fn drawn_four() -> Vec<u8> {
    let strokes: [&[(f32, f32)]; 2] = [
        &[(134.0, 35.0), (62.0, 140.0), (172.0, 136.0)],
        &[(140.0, 56.0), (135.0, 196.0)],
    ];
    let near = |px: f32, py: f32| {
        strokes.iter().any(|stroke| {
            stroke.windows(2).any(|segment| {
                let ((ax, ay), (bx, by)) = (segment[0], segment[1]);
                let (dx, dy) = (bx - ax, by - ay);
                let t = (((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
                let (cx, cy) = (ax + t * dx - px, ay + t * dy - py);
                cx * cx + cy * cy <= 64.0
            })
        })
    };
    let image = GrayImage::from_fn(224, 224, |x, y| {
        Luma([if near(x as f32, y as f32) { 17 } else { 255 }])
    });
    png(&image)
}

/// A phone camera's picture of the digit on paper: 4032x3024 pixels (12 megapixels) in colour
/// (warm paper, blue ink), lit unevenly, with sensor noise, as a JPEG.
pub fn phone_photo(digit: &[u8]) -> Vec<u8> {
    let mut rng = Rng::new(0x0fe0);
    let mut page = on_paper(digit, 60, (4032, 3024), &mut rng);
    lighting(&mut page, &mut rng);
    noise(&mut page, 6.0, &mut rng);
    let colour = image::RgbImage::from_fn(page.width(), page.height(), |x, y| {
        let v = page.get_pixel(x, y)[0];
        image::Rgb([
            v,
            (v as f32 * 0.96) as u8,
            (v as f32 * 0.88 + 24.0).min(255.0) as u8,
        ])
    });
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, 90)
        .write_image(
            colour.as_raw(),
            colour.width(),
            colour.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    bytes
}

/// The digit as dark ink on light paper, `scale` times its size, somewhere on a page of
/// `size` pixels (away from the edges), the paper a little off white and the ink off black.
fn on_paper(digit: &[u8], scale: u32, size: (u32, u32), rng: &mut Rng) -> GrayImage {
    let small = GrayImage::from_raw(28, 28, digit.to_vec()).unwrap();
    let big = imageops::resize(&small, 28 * scale, 28 * scale, FilterType::Triangle);
    let paper = 225.0 + 20.0 * uniform(rng);
    let ink = 25.0 + 40.0 * uniform(rng);
    let mut page = GrayImage::from_pixel(size.0, size.1, Luma([paper as u8]));
    let room = |page: u32, side: u32| page.saturating_sub(side + 20);
    let x0 = 10 + (uniform(rng) * room(size.0, big.width()) as f64) as u32;
    let y0 = 10 + (uniform(rng) * room(size.1, big.height()) as f64) as u32;
    for (x, y, p) in big.enumerate_pixels() {
        let strength = p[0] as f64 / 255.0;
        let value = paper * (1.0 - strength) + ink * strength;
        page.put_pixel(x0 + x, y0 + y, Luma([value.round() as u8]));
    }
    page
}

/// Light falling off across the page: from full at one side to well under half at the other,
/// in a random direction.
fn lighting(page: &mut GrayImage, rng: &mut Rng) {
    let angle = uniform(rng) * std::f64::consts::TAU;
    let (dx, dy) = (angle.cos(), angle.sin());
    let (w, h) = (page.width() as f64, page.height() as f64);
    for (x, y, p) in page.enumerate_pixels_mut() {
        let along = ((x as f64 / w - 0.5) * dx + (y as f64 / h - 0.5) * dy) / 0.71 + 0.5;
        let light = 0.45 + 0.55 * along.clamp(0.0, 1.0);
        p[0] = (p[0] as f64 * light).round() as u8;
    }
}

/// Gaussian sensor noise of `sigma` grey levels.
fn noise(page: &mut GrayImage, sigma: f64, rng: &mut Rng) {
    for p in page.pixels_mut() {
        let (u, v) = (uniform(rng).max(1e-12), uniform(rng));
        let gauss = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        p[0] = (p[0] as f64 + sigma * gauss).round().clamp(0.0, 255.0) as u8;
    }
}

/// A pen stroke in a corner away from the middle, and the dark table showing along one edge.
fn marks(page: &mut GrayImage, rng: &mut Rng) {
    let (w, h) = page.dimensions();
    let corner_x = if uniform(rng) < 0.5 { 4 } else { w - 44 };
    for i in 0..36 {
        let (x, y) = (corner_x + i, 6 + i / 3);
        for t in 0..3 {
            page.put_pixel(x, y + t, Luma([40]));
        }
    }
    let band = 8 + (uniform(rng) * 8.0) as u32;
    for x in 0..w {
        for y in h - band..h {
            page.put_pixel(x, y, Luma([30]));
        }
    }
}

fn uniform(rng: &mut Rng) -> f64 {
    (rng.symmetric() + 1.0) / 2.0
}

fn png(image: &GrayImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    DynamicImage::ImageLuma8(image.clone())
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}

/// JPEG at `quality`, with an EXIF orientation tag when one is given.
fn jpeg(image: &GrayImage, quality: u8, orientation: Option<u16>) -> Vec<u8> {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, quality)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::L8,
        )
        .unwrap();
    match orientation {
        Some(orientation) => with_exif_orientation(&bytes, orientation),
        None => bytes,
    }
}

/// A JPEG with an APP1 Exif segment holding one tag, the orientation, right after its start.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08".to_vec(); // big-endian, first IFD at 8
    tiff.extend(1u16.to_be_bytes()); // one entry
    tiff.extend(0x0112u16.to_be_bytes()); // Orientation
    tiff.extend(3u16.to_be_bytes()); // SHORT
    tiff.extend(1u32.to_be_bytes()); // one value
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0]); // the value field's unused half
    tiff.extend(0u32.to_be_bytes()); // no next IFD
    let mut segment = b"Exif\x00\x00".to_vec();
    segment.extend(tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend([0xff, 0xe1]);
    out.extend(((segment.len() + 2) as u16).to_be_bytes());
    out.extend(segment);
    out.extend(&jpeg[2..]);
    out
}
