//! How much ink each pixel of a picture holds, whatever its colours, polarity and lighting: a
//! photo of paper is brighter on one side than the other, so the background is a smooth surface
//! fitted to the pixels that are not ink, not one value for the whole picture.

use image::imageops::{self, FilterType};
use std::sync::OnceLock;

use image::{DynamicImage, ImageBuffer, Luma};

use super::shrink::WORKING_SIDE;

/// A background surface that varies less than this over the picture is taken as flat, one
/// value: a clean scan or a drawing then keeps its pixels exactly.
const FLAT: f32 = 2.0 / 255.0;

/// Whether a picture is a tight crop of one digit (a low-resolution scan, MNIST's own 28x28):
/// at most 40 pixels on either side. Its paper is one level, with no lighting, table or shadow
/// to fit (with half of its few pixels ink, a fitted surface would lean into the strokes), and
/// its digit may touch every edge.
pub fn is_tight_crop(width: usize, height: usize) -> bool {
    width.max(height) <= 40
}

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
        let mut scratch = Scratch::default();
        // The paper is most of the picture: if most of it is light, the ink is dark.
        if scratch.median(&values) > 0.5 {
            values.iter_mut().for_each(|v| *v = 1.0 - *v);
        }
        let (background, noise) = fit_background(&values, width, height, &mut scratch);
        let ink = match background {
            Background::Flat(level) => values.iter().map(|v| (v - level).max(0.0)).collect(),
            Background::Surface(surface) => values
                .iter()
                .zip(&surface)
                .map(|(v, b)| (v - b).max(0.0))
                .collect(),
        };
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
    let (width, height) = (image.width(), image.height());
    let composited = |grey: f32, alpha: f32| grey * alpha + (1.0 - alpha);
    let grey: Vec<f32> = match image {
        // Grey pictures of 8 bits (a drawing, a scan) through a table of what each byte is as
        // a float, the image crate's own values, without its buffer of float pairs. (Its
        // colour to grey in floats is kept for colour pictures: a grey level taken at 8 bits
        // differs from it.)
        DynamicImage::ImageLuma8(luma) => {
            let levels = byte_levels();
            luma.as_raw()[..width as usize * height as usize]
                .iter()
                .map(|&l| composited(levels[l as usize], 1.0))
                .collect()
        }
        DynamicImage::ImageLumaA8(luma_alpha) => {
            let levels = byte_levels();
            luma_alpha.as_raw()[..2 * width as usize * height as usize]
                .chunks_exact(2)
                .map(|p| composited(levels[p[0] as usize], levels[p[1] as usize]))
                .collect()
        }
        _ => image
            .to_luma_alpha32f()
            .pixels()
            .map(|p| composited(p[0], p[1]))
            .collect(),
    };
    let grey = ImageBuffer::from_raw(width, height, grey).expect("one value per pixel");
    let longer = width.max(height);
    if longer <= WORKING_SIDE {
        return grey;
    }
    let scale = WORKING_SIDE as f32 / longer as f32;
    let size = |side: u32| ((side as f32 * scale).round() as u32).max(1);
    imageops::resize(&grey, size(width), size(height), FilterType::Triangle)
}

/// Each byte's value as the image crate turns it into a float.
fn byte_levels() -> &'static [f32; 256] {
    static LEVELS: OnceLock<[f32; 256]> = OnceLock::new();
    LEVELS.get_or_init(|| {
        let bytes = ImageBuffer::<Luma<u8>, Vec<u8>>::from_fn(256, 1, |x, _| Luma([x as u8]));
        let floats = DynamicImage::ImageLuma8(bytes).to_luma32f().into_raw();
        std::array::from_fn(|i| floats[i])
    })
}

/// Values sampled to find where a median lies, and how far either side of the sample's own
/// median the bounds are taken: the sample's rank of the true median varies by about
/// sqrt(1024) / 2 = 16, so 64 is four times that.
const SAMPLE: usize = 1024;
const MARGIN: usize = 64;

/// Buffers the background fit's medians reuse: the deviations whose median is taken, and the
/// candidates the median is selected from.
#[derive(Default)]
struct Scratch {
    values: Vec<f32>,
    keys: Vec<u32>,
}

impl Scratch {
    /// The element at position `len / 2` of `values` sorted by `f32::total_cmp` (the upper
    /// median). First the first value is tried, in one counting pass: most of a drawing or a
    /// clean scan is paper of one exact value, and the median is it. Otherwise it is selected
    /// among the few values a sample puts near the middle: two passes over the picture in all,
    /// where a radix selection took four.
    fn median(&mut self, values: &[f32]) -> f32 {
        let Some(&first) = values.first() else {
            return 0.0;
        };
        let rank = values.len() / 2;
        let guess = key(first);
        // Counted in 32 bits side by side (a picture has far fewer pixels).
        let (below, equal) = values.iter().fold((0u32, 0u32), |(below, equal), &v| {
            let k = key(v);
            (below + u32::from(k < guess), equal + u32::from(k == guess))
        });
        let (below, equal) = (below as usize, equal as usize);
        if (below..below + equal).contains(&rank) {
            return first;
        }
        // A sample scattered over the values, sorted, gives two keys that almost surely
        // hold the wanted rank between them; one pass counts the keys below the lower and
        // keeps those between, among which the rank is selected. Should the sample mislead
        // (a rank outside), every key is selected from instead: the answer is exact either way.
        let keys = &mut self.keys;
        // Positions scattered by a large prime's multiples: an even stride would sample a
        // few columns of a picture whose width divides it.
        let len = values.len() as u64;
        let mut sample: Vec<u32> = (0..SAMPLE.min(values.len()) as u64)
            .map(|i| key(values[(i * 2_654_435_761 % len) as usize]))
            .collect();
        sample.sort_unstable();
        let at = rank * sample.len() / values.len();
        let (low, high) = (
            sample[at.saturating_sub(MARGIN)],
            sample[(at + MARGIN).min(sample.len() - 1)],
        );
        keys.clear();
        let mut below = 0usize;
        for &v in values {
            let k = key(v);
            below += usize::from(k < low);
            if (low..=high).contains(&k) {
                keys.push(k);
            }
        }
        let rank = match rank.checked_sub(below) {
            Some(within) if within < keys.len() => within,
            _ => {
                keys.clear();
                keys.extend(values.iter().map(|&v| key(v)));
                rank
            }
        };
        from_key(*keys.select_nth_unstable(rank).1)
    }

    /// The median of the distances of `values` from `centre`.
    fn median_deviation(&mut self, values: impl Iterator<Item = f32>, centre: f32) -> f32 {
        let mut deviations = std::mem::take(&mut self.values);
        deviations.clear();
        deviations.extend(values.map(|v| (v - centre).abs()));
        let median = self.median(&deviations);
        self.values = deviations;
        median
    }
}

/// Bits that sort as the floats do under `total_cmp`: negatives flipped whole, positives with
/// the sign bit set.
fn key(v: f32) -> u32 {
    let bits = v.to_bits();
    // Without a branch, so that passes over keys run many side by side: the sign spread over
    // all bits (negatives) or the sign bit alone (positives), flipped.
    bits ^ ((bits as i32 >> 31) as u32 | 1 << 31)
}

fn from_key(key: u32) -> f32 {
    f32::from_bits(if key >> 31 == 1 {
        key & !(1 << 31)
    } else {
        !key
    })
}

/// Paper of one exact level is taken as flat when at most one pixel in this many lies just above
/// it (a drawing's anti-aliased edges are well under 1%).
const NEAR_PAPER_SHARE: usize = 50;

/// The paper's level under each pixel.
enum Background {
    Flat(f32),
    Surface(Vec<f32>),
}

/// The background under `values` (ink bright) and the paper's noise: a quadratic surface in x
/// and y, fitted by least squares to the pixels that are not ink, found by refitting without
/// the pixels well above the last fit until they no longer change (at most four fits). A nearly
/// flat surface becomes the paper's median; paper of one exact level is flat from the start.
fn fit_background(
    values: &[f32],
    width: usize,
    height: usize,
    scratch: &mut Scratch,
) -> (Background, f32) {
    let axes = Axes::new(width, height);
    // Start from the pixels near the picture's typical level: most of the picture is paper,
    // and a large or bold digit would otherwise pull the first surface up under itself.
    let middle = scratch.median(values);
    let spread = 1.4826 * scratch.median_deviation(values.iter().copied(), middle);
    let start = middle + (3.0 * spread).max(0.05);
    // Most of the picture one exact level, and hardly any of the rest just above it (a
    // drawing, a clean scan, an MNIST digit: the rest is ink, and a pen's anti-aliased edge):
    // that is the paper, flat and without noise, and the rounds of fitting would only confirm
    // it. (A shadow or lighting falling off from a white clipped to one level puts much of the
    // picture just above it, and is fitted.)
    if spread == 0.0 {
        let near_paper = values.iter().filter(|&&v| v > middle && v <= start).count();
        if near_paper * NEAR_PAPER_SHARE <= values.len() {
            return (Background::Flat(middle), 0.0);
        }
    }
    if is_tight_crop(width, height) {
        let paper: Vec<f32> = values.iter().copied().filter(|&v| v <= start).collect();
        let level = scratch.median(&paper);
        let noise = 1.4826 * scratch.median_deviation(paper.iter().copied(), level);
        return (Background::Flat(level), noise);
    }
    let mut paper: Vec<bool> = values.iter().map(|&v| v <= start).collect();
    let mut background = Vec::new();
    let (mut low, mut high) = (middle, middle);
    let mut residuals = Vec::new();
    let mut noise = 0.0;
    for _ in 0..4 {
        let Some(coefficients) = least_squares(values, &paper, &axes) else {
            break;
        };
        (low, high) = axes.surface(&coefficients, &mut background);
        residuals.clear();
        residuals.extend(
            (values.iter().zip(&background).zip(&paper))
                .filter(|(_, paper)| **paper)
                .map(|((v, b), _)| v - b),
        );
        let centre = scratch.median(&residuals);
        noise = 1.4826 * scratch.median_deviation(residuals.iter().copied(), centre);
        let limit = (3.0 * noise).max(0.02);
        // The same pixels would give the same fit again: the fit has settled.
        let mut settled = true;
        for ((paper, &v), &b) in paper.iter_mut().zip(values).zip(&background) {
            let refitted = v - b < limit;
            settled &= refitted == *paper;
            *paper = refitted;
        }
        if settled {
            break;
        }
    }
    if high - low < FLAT {
        residuals.clear();
        residuals.extend(
            (values.iter().zip(&paper))
                .filter(|(_, paper)| **paper)
                .map(|(v, _)| v),
        );
        return (Background::Flat(scratch.median(&residuals)), noise);
    }
    (Background::Surface(background), noise)
}

/// The picture's coordinates scaled to -1..1, each column's x and each row's y, for the
/// quadratic surface `c0 + c1 x + c2 y + c3 x^2 + c4 y^2 + c5 xy`.
struct Axes {
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// The sums of x^0 to x^4 over a whole row, in the order a row's pixels are summed.
    row_moments: [f64; 5],
}

impl Axes {
    fn new(width: usize, height: usize) -> Self {
        let scaled = |n: usize, size: usize| 2.0 * n as f64 / size.max(2) as f64 - 1.0;
        let xs: Vec<f64> = (0..width).map(|x| scaled(x, width)).collect();
        let mut row_moments = [0.0f64; 5];
        for &x in &xs {
            add_powers(&mut row_moments, x);
        }
        Self {
            xs,
            ys: (0..height).map(|y| scaled(y, height)).collect(),
            row_moments,
        }
    }

    /// The surface of `c` at every pixel, row by row (per row it is a quadratic in x alone),
    /// written into `surface`; its lowest and highest values.
    fn surface(&self, c: &[f64; 6], surface: &mut Vec<f32>) -> (f32, f32) {
        surface.clear();
        for &y in &self.ys {
            let (constant, linear) = (c[0] + c[2] * y + c[4] * y * y, c[1] + c[5] * y);
            surface.extend(
                self.xs
                    .iter()
                    .map(|&x| (constant + linear * x + c[3] * x * x) as f32),
            );
        }
        surface
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &b| (lo.min(b), hi.max(b)))
    }
}

/// Adds x^0 to x^4 to `sums`.
fn add_powers(sums: &mut [f64; 5], x: f64) {
    let (x2, x3) = (x * x, x * x * x);
    sums[0] += 1.0;
    sums[1] += x;
    sums[2] += x2;
    sums[3] += x3;
    sums[4] += x2 * x2;
}

/// Adds v, v x and v x^2 to `sums`.
fn add_weighted(sums: &mut [f64; 3], x: f64, v: f64) {
    sums[0] += v;
    sums[1] += v * x;
    sums[2] += v * (x * x);
}

/// The six coefficients minimising the squared error of the surface against `values` over the
/// pixels marked in `use_pixel`, by the normal equations; `None` if they are singular. The
/// normal equations hold sums of x^i y^j (i + j up to 4) and of v x^i y^j (up to 2), summed per
/// row over x first, then over the rows: a handful of sums per pixel instead of 42 products.
fn least_squares(values: &[f32], use_pixel: &[bool], axes: &Axes) -> Option<[f64; 6]> {
    let width = axes.xs.len();
    // moments[i][j] = sum of x^i y^j; weighted[i][j] = sum of v x^i y^j.
    let mut moments = [[0.0f64; 5]; 5];
    let mut weighted = [[0.0f64; 3]; 3];
    for (row, &y) in axes.ys.iter().enumerate() {
        let (used, values) = (
            &use_pixel[row * width..(row + 1) * width],
            &values[row * width..(row + 1) * width],
        );
        let mut vm = [0.0f64; 3];
        // A row whose every pixel is used (most of a picture's paper) has the x sums of every
        // row, summed once in the same order.
        let xm = if used.iter().all(|&u| u) {
            for (&x, &v) in axes.xs.iter().zip(values) {
                add_weighted(&mut vm, x, v as f64);
            }
            axes.row_moments
        } else {
            let mut xm = [0.0f64; 5];
            for ((&x, &v), _) in axes.xs.iter().zip(values).zip(used).filter(|(_, u)| **u) {
                add_powers(&mut xm, x);
                add_weighted(&mut vm, x, v as f64);
            }
            xm
        };
        let mut yj = 1.0;
        for j in 0..5 {
            for i in 0..5 - j {
                moments[i][j] += xm[i] * yj;
            }
            if j < 3 {
                for i in 0..3 - j {
                    weighted[i][j] += vm[i] * yj;
                }
            }
            yj *= y;
        }
    }
    // Each term of the surface as its powers of x and y.
    const POWERS: [(usize, usize); 6] = [(0, 0), (1, 0), (0, 1), (2, 0), (0, 2), (1, 1)];
    let mut normal = [[0.0f64; 7]; 6];
    for (r, &(ri, rj)) in POWERS.iter().enumerate() {
        for (c, &(ci, cj)) in POWERS.iter().enumerate() {
            normal[r][c] = moments[ri + ci][rj + cj];
        }
        normal[r][6] = weighted[ri][rj];
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
    fn a_tight_crop_keeps_all_its_ink_on_one_paper_level() {
        // The first of UCI's digits (scikit-learn's `load_digits`), a 0: 8x8 counts out of 16,
        // half the picture ink, some of it faint. A surface fitted to it took about half of
        // each stroke away.
        let counts: [u8; 64] = [
            0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4,
            12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10,
            12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0,
        ];
        let paper: Vec<u8> = counts
            .iter()
            .map(|&c| 255 - (c as u32 * 255 / 16) as u8)
            .collect();
        let image = DynamicImage::ImageLuma8(GrayImage::from_raw(8, 8, paper).unwrap());
        let map = InkMap::of(&image);
        for (ink, &count) in map.ink.iter().zip(&counts) {
            let expected = (count as u32 * 255 / 16) as f32 / 255.0;
            assert!((ink - expected).abs() < 1e-6, "{ink} for {count}/16");
        }
    }

    #[test]
    fn the_median_is_the_element_a_sort_puts_in_the_middle() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.3
        };
        // The element a sort puts in the middle, checked against the median; returned.
        let check = |values: &[f32], case: &str| {
            let mut sorted = values.to_vec();
            sorted.sort_by(f32::total_cmp);
            let expected = sorted[sorted.len() / 2];
            assert_eq!(
                Scratch::default().median(values).to_bits(),
                expected.to_bits(),
                "{case}"
            );
            expected
        };
        for len in [1, 2, 3, 10, 101, 5000] {
            let mut values: Vec<f32> = (0..len).map(|_| next()).collect();
            values.extend([0.0, -0.0, 1.0, -1.0, 0.5, 0.5]);
            let expected = check(&values, &format!("{len}"));
            // The first value tried as the median: it is, or it is not.
            values.insert(0, expected);
            check(&values, &format!("{len}, first"));
        }
    }

    #[test]
    fn a_sample_that_misleads_still_gives_the_median() {
        // Every value the sample takes is far above the others: its bounds miss the middle.
        let sampled: std::collections::HashSet<u64> = (0..SAMPLE as u64)
            .map(|i| i * 2_654_435_761 % 5000)
            .collect();
        let values: Vec<f32> = (0..5000u64)
            .map(|i| if sampled.contains(&i) { 1e9 } else { i as f32 })
            .collect();
        let mut sorted = values.clone();
        sorted.sort_by(f32::total_cmp);
        assert_eq!(Scratch::default().median(&values), sorted[2500]);
    }

    #[test]
    fn grey_levels_are_the_image_crates_own() {
        let mut seed = 11u32;
        let mut byte = || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            (seed >> 24) as u8
        };
        let bytes: Vec<u8> = (0..4 * 300).map(|_| byte()).collect();
        let rgba = image::RgbaImage::from_raw(20, 15, bytes).unwrap();
        let images = [
            DynamicImage::ImageRgba8(rgba.clone()),
            DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(rgba.clone()).to_rgb8()),
            DynamicImage::ImageLumaA8(DynamicImage::ImageRgba8(rgba.clone()).to_luma_alpha8()),
            DynamicImage::ImageLuma8(DynamicImage::ImageRgba8(rgba.clone()).to_luma8()),
            DynamicImage::ImageRgba16(DynamicImage::ImageRgba8(rgba).to_rgba16()),
        ];
        for image in images {
            let expected: Vec<u32> = image
                .to_luma_alpha32f()
                .pixels()
                .map(|p| (p[0] * p[1] + (1.0 - p[1])).to_bits())
                .collect();
            let grey: Vec<u32> = greyscale(&image).iter().map(|v| v.to_bits()).collect();
            assert_eq!(grey, expected, "{:?}", image.color());
        }
    }

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
    fn a_shadow_beside_clipped_white_is_fitted_not_taken_for_ink() {
        // Paper clipped to white over 60% of the picture, then falling to 225 in a shadow; a
        // dark stroke on the white.
        let img = GrayImage::from_fn(200, 150, |x, y| {
            let paper = if x < 120 {
                255
            } else {
                255 - (x - 120) * 30 / 80
            };
            let ink = (40..48).contains(&x) && (30..120).contains(&y);
            image::Luma([if ink { 40 } else { paper as u8 }])
        });
        let map = InkMap::of(&DynamicImage::ImageLuma8(img));
        let at = |x: usize, y: usize| map.ink[y * map.width + x];
        assert!(at(44, 75) > 0.5, "the stroke is ink: {}", at(44, 75));
        for x in [130, 160, 199] {
            assert!(
                at(x, 10) < 0.05,
                "the shadow at x = {x} is not: {}",
                at(x, 10)
            );
        }
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
