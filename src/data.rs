//! MNIST in memory: the four IDX files, the train/validation split, a Burn `Dataset` over it,
//! and the `Batcher` that turns digits into normalised tensors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use thiserror::Error;

use crate::idx::{self, IMAGE_PIXELS, IMAGE_SIDE, IdxError, IdxImages};

/// Mean and standard deviation of MNIST's training pixels (scaled to 0..1), the usual values.
pub const PIXEL_MEAN: f32 = 0.1307;
pub const PIXEL_STD: f32 = 0.3081;

/// The four MNIST files by their standard names; each may also be present with `.gz` appended.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
pub const FILE_NAMES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

#[derive(Debug, Error)]
pub enum DataError {
    #[error(transparent)]
    Idx(#[from] IdxError),
    #[error(
        "{} holds {images} images but {} holds {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        images_path: PathBuf,
        images: usize,
        labels_path: PathBuf,
        labels: usize,
    },
    #[error(
        "data.validation_size ({validation}) must be smaller than the training set ({train} images)"
    )]
    ValidationTooLarge { validation: usize, train: usize },
}

/// One split of MNIST as read from disk: images and their labels, checked to agree.
#[derive(Debug)]
pub struct MnistSplit {
    images: IdxImages,
    labels: Vec<u8>,
}

impl MnistSplit {
    /// Reads an images file and a labels file and checks that they describe the same digits.
    pub fn read(images_path: &Path, labels_path: &Path) -> Result<Self, DataError> {
        let images = idx::read_images(images_path)?;
        let labels = idx::read_labels(labels_path)?;
        if images.count != labels.len() {
            return Err(DataError::CountMismatch {
                images_path: images_path.to_path_buf(),
                images: images.count,
                labels_path: labels_path.to_path_buf(),
                labels: labels.len(),
            });
        }
        Ok(Self { images, labels })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `count` made-up digits for unit tests: image `i` is filled with the value `i` and labelled
    /// `i % 10`.
    #[cfg(test)]
    pub(crate) fn synthetic(count: usize) -> Self {
        Self {
            images: IdxImages {
                count,
                pixels: (0..count * IMAGE_PIXELS)
                    .map(|i| (i / IMAGE_PIXELS) as u8)
                    .collect(),
            },
            labels: (0..count).map(|i| (i % 10) as u8).collect(),
        }
    }
}

/// The path of `name` in `dir`, raw or gzipped, if either exists.
pub fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

/// The names (of [`FILE_NAMES`]) that `dir` lacks.
pub fn missing_files(dir: &Path) -> Vec<&'static str> {
    FILE_NAMES
        .into_iter()
        .filter(|name| find_file(dir, name).is_none())
        .collect()
}

/// Training and test splits of MNIST, read from a directory holding the four IDX files.
#[derive(Debug)]
pub struct Mnist {
    pub train: MnistSplit,
    pub test: MnistSplit,
}

impl Mnist {
    /// Reads the four files from `dir`. The caller has checked that they exist
    /// (see [`crate::source::locate`]); a file that vanished since is reported by name.
    pub fn read(dir: &Path) -> Result<Self, DataError> {
        let path = |name: &str| find_file(dir, name).unwrap_or_else(|| dir.join(name));
        Ok(Self {
            train: MnistSplit::read(&path(TRAIN_IMAGES), &path(TRAIN_LABELS))?,
            test: MnistSplit::read(&path(TEST_IMAGES), &path(TEST_LABELS))?,
        })
    }
}

/// One digit: its 28x28 pixels and its label.
#[derive(Debug, Clone)]
pub struct MnistItem {
    pub pixels: Vec<u8>,
    pub label: u8,
}

/// A view of some of a split's digits, in a fixed order. Cheap to clone: the pixels are shared.
#[derive(Debug, Clone)]
pub struct MnistDataset {
    split: Arc<MnistSplit>,
    indices: Vec<u32>,
}

impl MnistDataset {
    /// Every digit of `split`, in file order.
    pub fn new(split: Arc<MnistSplit>) -> Self {
        let indices = (0..split.len() as u32).collect();
        Self { split, indices }
    }

    /// Splits off `validation_size` digits chosen by `seed` as a validation set; the rest, in
    /// file order, is the training set. Returns `(train, validation)`.
    pub fn split_validation(
        self,
        validation_size: usize,
        seed: u64,
    ) -> Result<(Self, Self), DataError> {
        if validation_size >= self.indices.len() {
            return Err(DataError::ValidationTooLarge {
                validation: validation_size,
                train: self.indices.len(),
            });
        }
        let mut shuffled = self.indices.clone();
        shuffle(&mut shuffled, seed);
        let mut validation = shuffled[..validation_size].to_vec();
        let mut train = shuffled[validation_size..].to_vec();
        // File order within each part, so that a limit takes the same digits whatever the seed
        // shuffled, and the data loader alone decides the order of an epoch.
        validation.sort_unstable();
        train.sort_unstable();
        Ok((
            Self {
                split: self.split.clone(),
                indices: train,
            },
            Self {
                split: self.split,
                indices: validation,
            },
        ))
    }

    /// Keeps only the first `limit` digits (all of them when `limit` is `None` or larger).
    pub fn limit(mut self, limit: Option<usize>) -> Self {
        if let Some(limit) = limit {
            self.indices.truncate(limit);
        }
        self
    }

    /// The digits at positions `range` of this view.
    pub fn range(mut self, range: std::ops::Range<usize>) -> Self {
        self.indices = self.indices[range].to_vec();
        self
    }

    /// The labels of the digits in this view, in order.
    pub fn labels(&self) -> impl Iterator<Item = u8> + '_ {
        self.indices.iter().map(|&i| self.split.labels[i as usize])
    }
}

impl Dataset<MnistItem> for MnistDataset {
    fn get(&self, index: usize) -> Result<MnistItem, burn::data::dataset::DatasetError> {
        let i = self.indices[index] as usize;
        Ok(MnistItem {
            pixels: self.split.images.image(i).to_vec(),
            label: self.split.labels[i],
        })
    }

    fn len(&self) -> usize {
        self.indices.len()
    }
}

/// Fisher-Yates with SplitMix64: written out rather than taken from `rand` so that a seed picks
/// the same validation digits on every platform and every version of every dependency.
pub(crate) fn shuffle(values: &mut [u32], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..values.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        values.swap(i, j);
    }
}

/// A batch of digits on a device: images `[batch, 1, 28, 28]`, normalised, and labels `[batch]`.
#[derive(Debug, Clone)]
pub struct MnistBatch {
    pub images: Tensor<4>,
    pub targets: Tensor<1, Int>,
}

/// Scales pixels to 0..1 and normalises them with MNIST's mean and standard deviation.
#[derive(Debug, Clone, Default)]
pub struct MnistBatcher;

/// The normalised value of one pixel, as the model sees it.
pub fn normalise(pixel: u8) -> f32 {
    (pixel as f32 / 255.0 - PIXEL_MEAN) / PIXEL_STD
}

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

impl Batcher<MnistItem, MnistBatch> for MnistBatcher {
    fn batch(&self, items: Vec<MnistItem>, device: &Device) -> MnistBatch {
        let images = images_tensor(items.iter().map(|item| item.pixels.as_slice()), device);
        let labels: Vec<i64> = items.iter().map(|item| item.label as i64).collect();
        let targets = Tensor::from_data(TensorData::new(labels, [items.len()]), device);
        MnistBatch { images, targets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_of(count: usize) -> Arc<MnistSplit> {
        Arc::new(MnistSplit::synthetic(count))
    }

    #[test]
    fn validation_split_is_disjoint_complete_and_seeded() {
        let all = MnistDataset::new(split_of(100));
        let (train, valid) = all.clone().split_validation(20, 7).unwrap();
        assert_eq!((train.len(), valid.len()), (80, 20));
        let mut seen: Vec<u32> = train
            .indices
            .iter()
            .chain(&valid.indices)
            .copied()
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());

        let (_, same) = all.clone().split_validation(20, 7).unwrap();
        let (_, other) = all.split_validation(20, 8).unwrap();
        assert_eq!(valid.indices, same.indices);
        assert_ne!(valid.indices, other.indices);
    }

    #[test]
    fn validation_must_leave_training_digits() {
        let err = MnistDataset::new(split_of(10))
            .split_validation(10, 0)
            .unwrap_err();
        assert!(
            err.to_string().contains("data.validation_size (10)"),
            "{err}"
        );
    }

    #[test]
    fn limit_keeps_the_first_digits() {
        let data = MnistDataset::new(split_of(10)).limit(Some(3));
        assert_eq!(data.labels().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(data.get(2).unwrap().pixels[0], 2);
        assert_eq!(MnistDataset::new(split_of(10)).limit(None).len(), 10);
    }

    #[test]
    fn batcher_normalises_pixels_and_keeps_labels() {
        let device = crate::device::Backend::preferred().device().unwrap();
        let items = vec![
            MnistItem {
                pixels: vec![0; IMAGE_PIXELS],
                label: 3,
            },
            MnistItem {
                pixels: vec![255; IMAGE_PIXELS],
                label: 9,
            },
        ];
        let batch = MnistBatcher.batch(items, &device);
        assert_eq!(batch.images.dims(), [2, 1, 28, 28]);
        let values = batch.images.into_data().try_to_vec::<f32>().unwrap();
        assert!((values[0] - (-PIXEL_MEAN / PIXEL_STD)).abs() < 1e-6);
        assert!((values[IMAGE_PIXELS] - (1.0 - PIXEL_MEAN) / PIXEL_STD).abs() < 1e-6);
        let labels = batch.targets.into_data().iter::<i64>().collect::<Vec<_>>();
        assert_eq!(labels, vec![3, 9]);
    }
}
