//! How pictures become the model's input: scaling, centring, polarity, transparency, and
//! what of a file is read.

use super::*;
use image::{GenericImageView, GrayImage, RgbaImage};

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
    let field = mnist_style(&bar_image(300, 400, true)).unwrap().pixels;
    let (x0, y0, x1, y1) = bounds(&field);
    assert_eq!(y1 - y0 + 1, 20, "longer side is 20 pixels");
    assert!(x1 - x0 < 3, "aspect kept: a thin bar stays thin");
    assert!((13..=14).contains(&((x0 + x1) / 2)), "centred: {x0}..{x1}");
    assert!((13..=14).contains(&((y0 + y1) / 2)), "centred: {y0}..{y1}");
}

#[test]
fn polarity_does_not_matter() {
    let dark_on_light = mnist_style(&bar_image(100, 100, true)).unwrap().pixels;
    let light_on_dark = mnist_style(&bar_image(100, 100, false)).unwrap().pixels;
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
    let field = mnist_style(&DynamicImage::ImageRgba8(img)).unwrap().pixels;
    let (_, y0, _, y1) = bounds(&field);
    assert_eq!(y1 - y0 + 1, 20);
}

#[test]
fn an_mnist_style_digit_comes_through_unchanged() {
    // 20 pixels tall, anti-aliased edges, centre of mass within half a pixel of 14.
    let mut field = vec![0u8; IMAGE_PIXELS];
    for y in 4..24 {
        field[y * IMAGE_SIDE + 13] = 60;
        field[y * IMAGE_SIDE + 14] = 255;
        field[y * IMAGE_SIDE + 15] = if y < 10 { 90 } else { 200 };
        field[y * IMAGE_SIDE + 16] = 7;
    }
    let image = DynamicImage::ImageLuma8(
        GrayImage::from_raw(IMAGE_SIDE as u32, IMAGE_SIDE as u32, field.clone()).unwrap(),
    );
    assert_eq!(mnist_style(&image).unwrap().pixels, field);
}

#[test]
fn resize_keeps_the_whole_picture_as_it_is() {
    let field: Vec<u8> = (0..IMAGE_PIXELS).map(|i| (i % 251) as u8).collect();
    let image = DynamicImage::ImageLuma8(
        GrayImage::from_raw(IMAGE_SIDE as u32, IMAGE_SIDE as u32, field.clone()).unwrap(),
    );
    assert_eq!(
        resized(&image).pixels,
        field,
        "28x28 greyscale is unchanged"
    );
    let big = resized(&bar_image(280, 140, true)).pixels;
    assert_eq!(big.len(), IMAGE_PIXELS);
    assert!(big[0] > 200, "a light background stays light: {}", big[0]);
    let centre = 14 * IMAGE_SIDE + 14;
    assert!(big[centre] < 60, "the dark bar stays dark: {}", big[centre]);
    let mut ink = RgbaImage::from_pixel(28, 28, image::Rgba([0, 0, 0, 0]));
    ink.put_pixel(5, 5, image::Rgba([255, 0, 0, 255]));
    let on_paper = resized(&DynamicImage::ImageRgba8(ink)).pixels;
    assert_eq!(on_paper[0], 255, "transparent is white paper");
    assert_eq!(on_paper[5 * 28 + 5], 54, "opaque red is its luma");
}

/// An animated GIF: its first frame is what is read, whatever follows.
#[test]
fn of_an_animation_the_first_frame_is_read() {
    let gif = |frames: &[DynamicImage]| {
        let mut bytes = Vec::new();
        image::codecs::gif::GifEncoder::new(&mut bytes)
            .encode_frames(frames.iter().map(|f| image::Frame::new(f.to_rgba8())))
            .unwrap();
        decode(&bytes, Path::new("animated.gif"), 1_000_000).unwrap()
    };
    let first = bar_image(40, 40, true);
    let blank = DynamicImage::ImageLuma8(GrayImage::new(40, 40));
    let animated = gif(&[first.clone(), bar_image(40, 40, false), blank]);
    assert_eq!((animated.width(), animated.height()), (40, 40));
    assert_eq!(animated.to_rgba8(), gif(&[first]).to_rgba8());
    assert!(
        animated.to_luma8().get_pixel(0, 0).0[0] > 200,
        "the light first frame"
    );
}

#[test]
fn a_blank_image_has_no_digit() {
    let blank = DynamicImage::ImageLuma8(GrayImage::from_pixel(40, 40, Luma([200])));
    assert_eq!(mnist_style(&blank), None);
}

/// A large JPEG comes out of decoding shrunk, scaled in its DCT, and close to the same
/// picture decoded whole and averaged in the same blocks, in colour and in grey: 2000 wide in
/// the blocks of 8 [`shrunk`] takes (decoded at 1/8), 3264 wide in blocks of 14 where
/// [`shrunk`] takes 13 (decoded at 1/2, then 7x7 blocks).
#[test]
fn a_large_jpeg_is_decoded_shrunk_close_to_its_whole_decode_averaged() {
    let jpeg = |image: &DynamicImage| {
        let mut bytes = Vec::new();
        image
            .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                &mut bytes, 90,
            ))
            .unwrap();
        bytes
    };
    for (width, height, blocks) in [(2000, 1500, 8), (3264, 600, 14)] {
        let colour = DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
            let ink = (900..1100).contains(&x) && (200..500).contains(&y);
            let v = if ink { 30 } else { (100 + x / 20) as u8 };
            image::Rgb([v, v / 2 + (y % 256) as u8 / 4, 200])
        }));
        let grey = DynamicImage::ImageLuma8(colour.to_luma8());
        for image in [colour, grey] {
            let bytes = jpeg(&image);
            let shrunk = decode(&bytes, Path::new("big.jpg"), MAX_PIXELS).unwrap();
            let whole = shrink::averaged_by(image::load_from_memory(&bytes).unwrap(), blocks);
            assert_eq!(shrunk.color(), whole.color());
            assert_eq!(
                shrunk.dimensions(),
                (width / blocks as u32, height / blocks as u32)
            );
            assert_eq!(shrunk.dimensions(), whole.dimensions());
            let (a, b) = (shrunk.into_bytes(), whole.into_bytes());
            let differences: Vec<u8> = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y)).collect();
            let mean = differences.iter().map(|&d| d as f64).sum::<f64>() / a.len() as f64;
            assert!(mean < 1.5, "{width}: {mean}");
            assert!(
                differences.iter().all(|&d| d <= 12),
                "{width}: {:?}",
                differences.iter().max()
            );
        }
    }
}
