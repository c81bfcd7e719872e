//! A large picture brought down to the size it is prepared at, in one pass over its bytes.
//! Preparing looks at a picture with its longer side at most [`WORKING_SIDE`] pixels, so a
//! phone's 12-megapixel photo would otherwise be converted to floats and resampled whole: that
//! took several times as long as decoding it. The image crate's `thumbnail`, which shrank it
//! before, reads it pixel by pixel through a generic accessor and was slower still; here the
//! bytes are summed a whole row at a time.

use image::{DynamicImage, ImageBuffer};

/// Pictures are looked at with their longer side at most this long: enough for a digit that
/// fills a tenth of a photo's width, and it bounds the work for any camera's resolution.
pub const WORKING_SIDE: u32 = 512;

/// A picture more than twice [`WORKING_SIDE`] on its longer side (a camera's) is shrunk to at
/// most this: a digit filling a tenth of a 12-megapixel photo's width is still 25 pixels
/// across, more than MNIST's 20, and preparing it looks at a quarter of the pixels 512 would
/// give (preparing a phone photo's 504x378 took as many instructions as shrinking it, and 4
/// times those of its 252x189). Smaller pictures, the photo-like set among them, are prepared
/// at up to 512.
pub const LARGE_PICTURE_SIDE: u32 = 256;

/// Whether a picture this size is a large one, prepared at [`LARGE_PICTURE_SIDE`]: more than
/// twice [`WORKING_SIDE`] on its longer side.
pub fn is_large(width: u32, height: u32) -> bool {
    width.max(height) > 2 * WORKING_SIDE
}

/// `image` shrunk to at most [`LARGE_PICTURE_SIDE`] by [`averaged`] when it [`is_large`];
/// otherwise as it is, for the preparation's own resampling.
pub fn shrunk(image: DynamicImage) -> DynamicImage {
    if is_large(image.width(), image.height()) {
        averaged(image)
    } else {
        image
    }
}

/// `image` shrunk by averaging square blocks of `k` x `k` pixels, the smallest `k` that brings
/// its longer side to at most [`LARGE_PICTURE_SIDE`].
pub fn averaged(image: DynamicImage) -> DynamicImage {
    let k = block_side(image.width(), image.height());
    averaged_by(image, k as usize)
}

/// The side of the smallest blocks whose averages bring a picture of `width` x `height` to at
/// most [`LARGE_PICTURE_SIDE`] on its longer side.
fn block_side(width: u32, height: u32) -> u32 {
    width.max(height).div_ceil(LARGE_PICTURE_SIDE)
}

/// How a large JPEG of `width` x `height` is brought to [`LARGE_PICTURE_SIDE`] in part by its
/// decoder: decoded at 1/`scale` by its DCT (8, 4 or 2), then blocks of `block` x `block`
/// averaged, as [`averaged`] averages blocks of `k` = `scale` x `block`. When no scale divides
/// `k`, `k` is rounded up to a multiple of one, by at most a tenth (the picture comes out at most
/// a tenth smaller); `None` when none is that close (`k` of 5, 7 or 9, for some pictures under
/// 2,305 pixels a side, which decode quickly whole).
pub fn jpeg_scaling(width: u32, height: u32) -> Option<(u32, usize)> {
    let k = block_side(width, height);
    [8, 4, 2].into_iter().find_map(|scale| {
        let block = k.div_ceil(scale);
        (10 * scale * block <= 11 * k).then_some((scale, block as usize))
    })
}

/// `image` shrunk by averaging square blocks of `k` x `k` pixels. A block cut by the right or
/// bottom edge (less than `k` pixels) is left out. A picture whose shorter side is under `k` (a
/// thin strip) is left as it is: no whole block would remain. Pictures of 8 bits per channel
/// are averaged as bytes; others (16-bit, float) through the image crate's `thumbnail`.
pub fn averaged_by(image: DynamicImage, k: usize) -> DynamicImage {
    if k <= 1 {
        return image;
    }
    let (width, height) = (image.width() as usize / k, image.height() as usize / k);
    if width == 0 || height == 0 {
        return image;
    }
    let averaged = |bytes: &[u8], channels: usize| {
        block_average(
            bytes,
            image.width() as usize * channels,
            channels,
            k,
            width,
            height,
        )
    };
    let (w, h) = (width as u32, height as u32);
    let made = match &image {
        DynamicImage::ImageLuma8(p) => {
            ImageBuffer::from_raw(w, h, averaged(p, 1)).map(DynamicImage::ImageLuma8)
        }
        DynamicImage::ImageLumaA8(p) => {
            ImageBuffer::from_raw(w, h, averaged(p, 2)).map(DynamicImage::ImageLumaA8)
        }
        DynamicImage::ImageRgb8(p) => {
            ImageBuffer::from_raw(w, h, averaged(p, 3)).map(DynamicImage::ImageRgb8)
        }
        DynamicImage::ImageRgba8(p) => {
            ImageBuffer::from_raw(w, h, averaged(p, 4)).map(DynamicImage::ImageRgba8)
        }
        _ => None,
    };
    made.unwrap_or_else(|| image.thumbnail(LARGE_PICTURE_SIDE, LARGE_PICTURE_SIDE))
}

/// The rounded mean of each `k` x `k` block of pixels of `channels` bytes each, in rows of
/// `stride` bytes: `width` x `height` blocks from the top left.
fn block_average(
    bytes: &[u8],
    stride: usize,
    channels: usize,
    k: usize,
    width: usize,
    height: usize,
) -> Vec<u8> {
    let area = (k * k) as u32;
    let used = width * k * channels;
    let mut out = Vec::with_capacity(width * height * channels);
    // Down the block's rows first: whole rows of bytes added side by side, in 16 bits while
    // they fit (twice the sums an instruction takes as in 32), as they do for blocks of up to
    // 257 rows; taller ones (a picture of more than 65,000 pixels a side) in 32.
    let mut column_sums16 = vec![0u16; used];
    let mut column_sums = vec![0u32; used];
    for block_row in 0..height {
        let rows = (block_row * k..(block_row + 1) * k).map(|row| &bytes[row * stride..][..used]);
        if k <= 257 {
            sum_rows(&mut column_sums16, rows);
            column_sums
                .iter_mut()
                .zip(&column_sums16)
                .for_each(|(sum32, &sum)| *sum32 = sum as u32);
        } else {
            sum_rows(&mut column_sums, rows);
        }
        // Then across: each block's k columns, channel by channel.
        for block in column_sums.chunks_exact(k * channels) {
            let mut sums = [0u32; 4];
            for pixel in block.chunks_exact(channels) {
                sums.iter_mut().zip(pixel).for_each(|(sum, &v)| *sum += v);
            }
            out.extend(
                sums[..channels]
                    .iter()
                    .map(|&sum| ((sum + area / 2) / area) as u8),
            );
        }
    }
    out
}

/// `sums` set to the sums of `rows`, byte by byte down the columns.
fn sum_rows<'a, S: Copy + From<u8> + std::ops::AddAssign>(
    sums: &mut [S],
    rows: impl Iterator<Item = &'a [u8]>,
) {
    sums.fill(S::from(0));
    for row in rows {
        sums.iter_mut()
            .zip(row)
            .for_each(|(sum, &b)| *sum += S::from(b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, RgbImage};

    #[test]
    fn blocks_are_averaged_and_rounded() {
        // 4x2 bytes of one channel in 2x2 blocks: (1+2+5+6)/4 = 3.5 -> 4, (3+4+7+8)/4 = 5.5 -> 6.
        assert_eq!(
            block_average(&[1, 2, 3, 4, 5, 6, 7, 8], 4, 1, 2, 2, 1),
            [4, 6]
        );
        // Two channels, averaged apart: one 2x2 block of a 2x2 picture.
        assert_eq!(
            block_average(&[10, 100, 20, 200, 30, 100, 40, 200], 4, 2, 2, 1, 1),
            [25, 150]
        );
    }

    #[test]
    fn a_large_jpeg_is_averaged_in_the_same_blocks_or_a_tenth_larger() {
        for longer in 1025..=16_000u32 {
            let k = longer.div_ceil(LARGE_PICTURE_SIDE);
            match jpeg_scaling(longer, longer / 2) {
                Some((scale, block)) => {
                    let blocks = scale * block as u32;
                    assert!(
                        blocks >= k && 10 * blocks <= 11 * k,
                        "{longer}: {blocks}, {k}"
                    );
                    assert_eq!(blocks % scale, 0);
                }
                None => assert!([5, 7, 9].contains(&k), "{longer}"),
            }
        }
        // A camera's common sizes: 8, 12, 16 and 48 megapixels.
        assert_eq!(
            jpeg_scaling(3264, 2448),
            Some((2, 7)),
            "13 rounded up to 14"
        );
        assert_eq!(
            jpeg_scaling(4624, 3472),
            Some((4, 5)),
            "19 rounded up to 20"
        );
        assert_eq!(jpeg_scaling(8064, 6048), Some((8, 4)));
    }

    #[test]
    fn a_large_picture_comes_down_to_the_working_side_and_a_small_one_stays() {
        let photo = DynamicImage::ImageRgb8(RgbImage::from_fn(4032, 3024, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 7])
        }));
        let down = shrunk(photo);
        // A JPEG of that size is decoded at 1/8, then 2x2 blocks averaged: the same blocks.
        assert_eq!(jpeg_scaling(4032, 3024), Some((8, 2)));
        // k = 16: 252 x 189, each block the mean of its 256 pixels.
        assert_eq!((down.width(), down.height()), (252, 189));
        let pixel = down.as_rgb8().unwrap().get_pixel(1, 2).0;
        assert_eq!(
            pixel,
            [24, 40, 7],
            "x 16..32 -> 23.5, y 32..48 -> 39.5, rounded up"
        );
        let small = DynamicImage::ImageLuma8(GrayImage::new(1024, 700));
        assert_eq!(shrunk(small).width(), 1024);
        let wide16 = DynamicImage::ImageLuma16(image::ImageBuffer::new(3000, 40));
        assert!(shrunk(wide16).width() <= LARGE_PICTURE_SIDE);
        let strip = DynamicImage::ImageLuma8(GrayImage::new(6000, 3));
        assert_eq!(shrunk(strip).width(), 6000, "no whole 24x24 block is left");
        // The tallest block 16-bit sums hold, and one taller, averaged all the same.
        for k in [257, 300] {
            let white = vec![255u8; k * k];
            assert_eq!(block_average(&white, k, 1, k, 1, 1), [255], "{k}");
        }
    }
}
