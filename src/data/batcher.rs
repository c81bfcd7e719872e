//! The `Batcher` that turns digits into the model's input: normalised image tensors and their
//! labels.

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;

use super::split::ImageItem;
use crate::input::{IMAGE_PIXELS, IMAGE_SIDE, normalise};

/// A batch of digits on a device: images `[batch, 1, 28, 28]`, normalised, and labels `[batch]`.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    pub images: Tensor<4>,
    pub targets: Tensor<1, Int>,
}

/// Scales pixels to 0..1 and normalises them with MNIST's mean and standard deviation.
#[derive(Debug, Clone, Default)]
pub struct ImageBatcher;

/// Turns 28x28 greyscale images into the model's input tensor `[n, 1, 28, 28]`.
pub fn images_tensor<'a>(
    images: impl ExactSizeIterator<Item = &'a [u8]>,
    device: &Device,
) -> Tensor<4> {
    let count = images.len();
    let mut values = Vec::with_capacity(count * IMAGE_PIXELS);
    for image in images {
        values.extend(image.iter().map(|&p| normalise(p)));
    }
    Tensor::from_data(
        TensorData::new(values, [count, 1, IMAGE_SIDE, IMAGE_SIDE]),
        device,
    )
}

impl Batcher<ImageItem, ImageBatch> for ImageBatcher {
    fn batch(&self, items: Vec<ImageItem>, device: &Device) -> ImageBatch {
        let images = images_tensor(items.iter().map(|item| item.pixels.as_slice()), device);
        let labels: Vec<i64> = items.iter().map(|item| item.label as i64).collect();
        let targets = Tensor::from_data(TensorData::new(labels, [items.len()]), device);
        ImageBatch { images, targets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{PIXEL_MEAN, PIXEL_STD};

    #[test]
    fn batcher_normalises_pixels_and_keeps_labels() {
        let device = crate::device::BackendKind::preferred().device().unwrap();
        let items = vec![
            ImageItem {
                pixels: vec![0; IMAGE_PIXELS],
                label: 3,
            },
            ImageItem {
                pixels: vec![255; IMAGE_PIXELS],
                label: 9,
            },
        ];
        let batch = ImageBatcher.batch(items, &device);
        assert_eq!(batch.images.dims(), [2, 1, 28, 28]);
        let values = batch.images.into_data().try_to_vec::<f32>().unwrap();
        assert!((values[0] - (-PIXEL_MEAN / PIXEL_STD)).abs() < 1e-6);
        assert!((values[IMAGE_PIXELS] - (1.0 - PIXEL_MEAN) / PIXEL_STD).abs() < 1e-6);
        let labels = batch.targets.into_data().iter::<i64>().collect::<Vec<_>>();
        assert_eq!(labels, vec![3, 9]);
    }
}
