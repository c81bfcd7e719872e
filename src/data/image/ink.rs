//! How much ink each pixel of a picture holds, whatever its colours, polarity and lighting: a
//! photo of paper is brighter on one side than the other, so the background is a smooth surface
//! fitted to the pixels that are not ink, not one value for the whole picture.

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, Luma};

use super::shrink::WORKING_SIDE;

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
        if median(&values) > 0.5 {
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

/// The element at position `len / 2` of `values` sorted by `f32::total_cmp` (the upper
/// median). The preparation takes several medians of a whole picture, so this is made for its
/// pictures: first the first value is tried, in one counting pass (most of a drawing or a clean
/// scan is paper of one exact value, and the median is it); otherwise a radix selection on the
/// floats' bits, whose first pass keeps only the values under the wanted digit for the others.
fn median(values: &[f32]) -> f32 {
    let Some(&first) = values.first() else {
        return 0.0;
    };
    let rank = values.len() / 2;
    let guess = key(first);
    let (mut below, mut equal) = (0usize, 0usize);
    for &v in values {
        let k = key(v);
        below += usize::from(k < guess);
        equal += usize::from(k == guess);
    }
    if (below..below + equal).contains(&rank) {
        return first;
    }
    // The top 11 bits first, over every value; then the values under the chosen digit alone.
    let mut counts = vec![0usize; 1 << 11];
    for &v in values {
        counts[(key(v) >> 21) as usize] += 1;
    }
    let (top, mut rank) = digit_at(&counts, rank);
    let mut keys: Vec<u32> = values
        .iter()
        .map(|&v| key(v))
        .filter(|k| k >> 21 == top)
        .collect();
    let mut prefix = top << 21;
    for (shift, width) in [(10, 11), (0, 10)] {
        let mask = (1u32 << width) - 1;
        counts.fill(0);
        for &k in &keys {
            counts[((k >> shift) & mask) as usize] += 1;
        }
        let (digit, below) = digit_at(&counts, rank);
        rank = below;
        prefix |= digit << shift;
        keys.retain(|k| (k >> shift) & mask == digit);
    }
    from_key(prefix)
}

/// The digit under which the element of `rank` falls, given each digit's count, and its rank
/// among that digit's elements.
fn digit_at(counts: &[usize], mut rank: usize) -> (u32, usize) {
    let mut digit = 0;
    while rank >= counts[digit] {
        rank -= counts[digit];
        digit += 1;
    }
    (digit as u32, rank)
}

/// Bits that sort as the floats do under `total_cmp`: negatives flipped whole, positives with
/// the sign bit set.
fn key(v: f32) -> u32 {
    let bits = v.to_bits();
    if bits >> 31 == 1 { !bits } else { bits | 1 << 31 }
}

fn from_key(key: u32) -> f32 {
    f32::from_bits(if key >> 31 == 1 {
        key & !(1 << 31)
    } else {
        !key
    })
}

/// The background under `values` (ink bright) and the paper's noise: a quadratic surface in x
/// and y, fitted by least squares to the pixels that are not ink, found by refitting without
/// the pixels well above the last fit until they no longer change (at most four fits). A nearly
/// flat surface becomes the paper's median.
fn fit_background(values: &[f32], width: usize, height: usize) -> (Vec<f32>, f32) {
    let axes = Axes::new(width, height);
    // Start from the pixels near the picture's typical level: most of the picture is paper,
    // and a large or bold digit would otherwise pull the first surface up under itself.
    let middle = median(values);
    let spread = 1.4826 * median(&values.iter().map(|v| (v - middle).abs()).collect::<Vec<_>>());
    let start = middle + (3.0 * spread).max(0.05);
    let mut paper: Vec<bool> = values.iter().map(|&v| v <= start).collect();
    let mut background = vec![middle; values.len()];
    let mut noise = 0.0;
    for _ in 0..4 {
        let Some(coefficients) = least_squares(values, &paper, &axes) else {
            break;
        };
        background = axes.surface(&coefficients);
        let residuals: Vec<f32> = (0..values.len())
            .filter(|&i| paper[i])
            .map(|i| values[i] - background[i])
            .collect();
        let centre = median(&residuals);
        noise = 1.4826
            * median(&residuals.iter().map(|r| (r - centre).abs()).collect::<Vec<_>>());
        let limit = (3.0 * noise).max(0.02);
        let refitted: Vec<bool> = (0..values.len())
            .map(|i| values[i] - background[i] < limit)
            .collect();
        // The same pixels would give the same fit again: the fit has settled.
        let settled = refitted == paper;
        paper = refitted;
        if settled {
            break;
        }
    }
    let (low, high) = background
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &b| (lo.min(b), hi.max(b)));
    if high - low < FLAT {
        let paper_values: Vec<f32> = (0..values.len())
            .filter(|&i| paper[i])
            .map(|i| values[i])
            .collect();
        background = vec![median(&paper_values); values.len()];
    }
    (background, noise)
}

/// The picture's coordinates scaled to -1..1, each column's x and each row's y, for the
/// quadratic surface `c0 + c1 x + c2 y + c3 x^2 + c4 y^2 + c5 xy`.
struct Axes {
    xs: Vec<f64>,
    ys: Vec<f64>,
}

impl Axes {
    fn new(width: usize, height: usize) -> Self {
        let scaled = |n: usize, size: usize| 2.0 * n as f64 / size.max(2) as f64 - 1.0;
        Self {
            xs: (0..width).map(|x| scaled(x, width)).collect(),
            ys: (0..height).map(|y| scaled(y, height)).collect(),
        }
    }

    /// The surface of `c` at every pixel, row by row: per row it is a quadratic in x alone.
    fn surface(&self, c: &[f64; 6]) -> Vec<f32> {
        let mut surface = Vec::with_capacity(self.xs.len() * self.ys.len());
        for &y in &self.ys {
            let (constant, linear) = (c[0] + c[2] * y + c[4] * y * y, c[1] + c[5] * y);
            surface.extend(
                self.xs
                    .iter()
                    .map(|&x| (constant + linear * x + c[3] * x * x) as f32),
            );
        }
        surface
    }
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
        let (mut xm, mut vm) = ([0.0f64; 5], [0.0f64; 3]);
        for (column, &x) in axes.xs.iter().enumerate() {
            let p = row * width + column;
            if !use_pixel[p] {
                continue;
            }
            let v = values[p] as f64;
            let (x2, x3) = (x * x, x * x * x);
            xm[0] += 1.0;
            xm[1] += x;
            xm[2] += x2;
            xm[3] += x3;
            xm[4] += x2 * x2;
            vm[0] += v;
            vm[1] += v * x;
            vm[2] += v * x2;
        }
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
    fn the_median_is_the_element_a_sort_puts_in_the_middle() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.3
        };
        for len in [1, 2, 3, 10, 101, 5000] {
            let mut values: Vec<f32> = (0..len).map(|_| next()).collect();
            values.extend([0.0, -0.0, 1.0, -1.0, 0.5, 0.5]);
            let mut sorted = values.clone();
            sorted.sort_by(f32::total_cmp);
            let expected = sorted[sorted.len() / 2];
            assert_eq!(median(&values).to_bits(), expected.to_bits(), "{len}");
            // The first value tried as the median: it is, or it is not.
            values.insert(0, expected);
            let mut sorted = values.clone();
            sorted.sort_by(f32::total_cmp);
            let expected = sorted[sorted.len() / 2];
            assert_eq!(median(&values).to_bits(), expected.to_bits(), "{len}, first");
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
