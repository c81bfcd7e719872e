//! MNIST in memory: the four IDX files, the train/validation split and a Burn `Dataset` over
//! it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataset::Dataset;
use thiserror::Error;

use super::idx::{
    self, IdxError, IdxImages, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, find_file,
};
use super::rng::Rng;

/// MNIST and Fashion-MNIST have ten classes; their label files hold nothing else.
pub const CLASSES: usize = 10;

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
        let labels = idx::read_labels(labels_path, CLASSES)?;
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

    /// The pixels of digit `index`.
    pub fn image(&self, index: usize) -> &[u8] {
        self.images.image(index)
    }

    /// The label of digit `index`.
    pub fn label(&self, index: usize) -> u8 {
        self.labels[index]
    }

    /// `count` made-up digits for unit tests: image `i` is filled with the value `i` and labelled
    /// `i % 10`.
    #[cfg(test)]
    pub(crate) fn synthetic(count: usize) -> Self {
        Self {
            images: IdxImages {
                count,
                pixels: (0..count * crate::input::IMAGE_PIXELS)
                    .map(|i| (i / crate::input::IMAGE_PIXELS) as u8)
                    .collect(),
            },
            labels: (0..count).map(|i| (i % 10) as u8).collect(),
        }
    }
}

/// Training and test splits of MNIST, read from a directory holding the four IDX files.
#[derive(Debug)]
pub struct Mnist {
    pub train: MnistSplit,
    pub test: MnistSplit,
}

impl Mnist {
    /// Reads the four files from `dir`. The caller has checked that they exist
    /// (see [`super::source::locate`]); a file that vanished since is reported by name.
    pub fn read(dir: &Path) -> Result<Self, DataError> {
        let path = |name: &str| find_file(dir, name).unwrap_or_else(|| dir.join(name));
        Ok(Self {
            train: MnistSplit::read(&path(TRAIN_IMAGES), &path(TRAIN_LABELS))?,
            test: Self::read_test(dir)?,
        })
    }

    /// Reads only the test split from `dir`, all that evaluating a trained model needs.
    pub fn read_test(dir: &Path) -> Result<MnistSplit, DataError> {
        let path = |name: &str| find_file(dir, name).unwrap_or_else(|| dir.join(name));
        MnistSplit::read(&path(TEST_IMAGES), &path(TEST_LABELS))
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
        Rng::new(seed).shuffle(&mut shuffled);
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
}
