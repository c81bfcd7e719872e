//! The form of the model's input, which data, model and inference all agree on: a 28x28
//! greyscale image, light ink on a dark background, each pixel scaled to 0..1 and normalised
//! with the mean and standard deviation of MNIST's training pixels.

/// Side length of an input image.
pub const IMAGE_SIDE: usize = 28;
/// Number of pixels in one input image.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// Mean and standard deviation of MNIST's training pixels (scaled to 0..1), the usual values.
pub const PIXEL_MEAN: f32 = 0.1307;
pub const PIXEL_STD: f32 = 0.3081;

/// The normalised value of one pixel, as the model sees it.
pub fn normalise(pixel: u8) -> f32 {
    (pixel as f32 / 255.0 - PIXEL_MEAN) / PIXEL_STD
}
