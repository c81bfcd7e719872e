//! Images in memory, whatever they were read from: the 28x28 images of a split with their
//! class labels, seeded splits of them, and a Burn `Dataset` over them. [`IdxSet`] reads the
//! four IDX files of MNIST and the data sets shipped like it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataset::Dataset;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Class;
use super::folder::FolderError;
use super::idx::{
    self, IdxError, IdxImages, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, file_in,
};
use super::rng::Rng;
use crate::input::IMAGE_PIXELS;

#[derive(Debug, Error)]
pub enum DataError {
    #[error(transparent)]
    Idx(#[from] IdxError),
    #[error(transparent)]
    Folder(#[from] FolderError),
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
        "{key} ({}) must be smaller than the {total} images it is taken from; a fraction \
         such as 0.1 takes that share of them",
        match asked {
            SplitSize::Count(_) => size.to_string(),
            SplitSize::Fraction(f) => format!("{f}: {size} images"),
        }
    )]
    SplitTooLarge {
        key: &'static str,
        asked: SplitSize,
        size: usize,
        total: usize,
    },
    #[error("{0}")]
    Classes(String),
}

/// How many images a split takes: a number of images, or a fraction of those there are.
/// In JSON, a whole number of 1 or more is a count and a number in (0, 1) a fraction.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub enum SplitSize {
    Count(usize),
    Fraction(f64),
}

impl SplitSize {
    /// The number of images taken from `total`.
    pub fn of(self, total: usize) -> usize {
        match self {
            SplitSize::Count(count) => count,
            // A share is at least one image: a fraction asks for some.
            SplitSize::Fraction(fraction) => {
                ((total as f64 * fraction).round() as usize).clamp(total.min(1), total)
            }
        }
    }
}

impl TryFrom<f64> for SplitSize {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, String> {
        if value > 0.0 && value < 1.0 {
            Ok(SplitSize::Fraction(value))
        } else if value >= 0.0 && value.fract() == 0.0 && value <= u32::MAX as f64 {
            Ok(SplitSize::Count(value as usize))
        } else {
            Err(format!(
                "expected a number of images (a whole number) or a fraction in (0, 1), got {value}"
            ))
        }
    }
}

impl Serialize for SplitSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            SplitSize::Count(count) => serializer.serialize_u64(count as u64),
            SplitSize::Fraction(fraction) => serializer.serialize_f64(fraction),
        }
    }
}

/// Positions `0..len` parted by `seed`: `held` of them drawn at random, and the rest, each part
/// in ascending order. Returns `(rest, held)`.
pub fn seeded_split(len: usize, held: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..len).collect();
    Rng::new(seed).shuffle(&mut order);
    let mut chosen = order[..held].to_vec();
    let mut rest = order[held..].to_vec();
    chosen.sort_unstable();
    rest.sort_unstable();
    (rest, chosen)
}

/// One split of a data set in memory: 28x28 images and their labels, checked to agree.
#[derive(Debug)]
pub struct ImageSplit {
    images: IdxImages,
    labels: Vec<Class>,
    /// The file each image was read from, for data sets of image files; empty for IDX files.
    files: Vec<PathBuf>,
}

impl ImageSplit {
    /// A split of `labels.len()` images whose pixels follow each other in `pixels`.
    pub fn new(pixels: Vec<u8>, labels: Vec<Class>) -> Self {
        assert_eq!(
            pixels.len(),
            labels.len() * IMAGE_PIXELS,
            "one label per image"
        );
        Self {
            images: IdxImages {
                count: labels.len(),
                pixels,
            },
            labels,
            files: Vec::new(),
        }
    }

    /// The same split, each image named by the file it was read from.
    pub fn with_files(mut self, files: Vec<PathBuf>) -> Self {
        assert_eq!(files.len(), self.labels.len(), "one file per image");
        self.files = files;
        self
    }

    /// Reads an images file and a labels file and checks that they describe the same images,
    /// every label below `classes`.
    pub fn read(images_path: &Path, labels_path: &Path, classes: usize) -> Result<Self, DataError> {
        let images = idx::read_images(images_path)?;
        let labels = idx::read_labels(labels_path, classes)?;
        if images.count != labels.len() {
            return Err(DataError::CountMismatch {
                images_path: images_path.to_path_buf(),
                images: images.count,
                labels_path: labels_path.to_path_buf(),
                labels: labels.len(),
            });
        }
        Ok(Self {
            images,
            labels: labels.into_iter().map(Class::from).collect(),
            files: Vec::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `index`.
    pub fn image(&self, index: usize) -> &[u8] {
        self.images.image(index)
    }

    /// The label of image `index`.
    pub fn label(&self, index: usize) -> Class {
        self.labels[index]
    }

    /// Every label, in order.
    pub fn labels(&self) -> &[Class] {
        &self.labels
    }

    /// `count` made-up digits for unit tests: image `i` is filled with the value `i` and labelled
    /// `i % 10`.
    #[cfg(test)]
    pub(crate) fn synthetic(count: usize) -> Self {
        Self::new(
            (0..count * IMAGE_PIXELS)
                .map(|i| (i / IMAGE_PIXELS) as u8)
                .collect(),
            (0..count).map(|i| (i % 10) as Class).collect(),
        )
    }
}

/// Training and test splits of a data set in IDX files, read from a folder holding the four.
#[derive(Debug)]
pub struct IdxSet {
    pub train: ImageSplit,
    pub test: ImageSplit,
}

impl IdxSet {
    /// Reads the four files from `dir`, every label below `classes`. The caller has checked
    /// that they exist (see [`super::source::locate`]); a file that vanished since is reported
    /// by name.
    pub fn read(dir: &Path, classes: usize) -> Result<Self, DataError> {
        Ok(Self {
            train: ImageSplit::read(
                &file_in(dir, TRAIN_IMAGES),
                &file_in(dir, TRAIN_LABELS),
                classes,
            )?,
            test: Self::read_test(dir, classes)?,
        })
    }

    /// Reads only the test split from `dir`, all that evaluating a trained model needs.
    pub fn read_test(dir: &Path, classes: usize) -> Result<ImageSplit, DataError> {
        ImageSplit::read(
            &file_in(dir, TEST_IMAGES),
            &file_in(dir, TEST_LABELS),
            classes,
        )
    }
}

/// One image: its 28x28 pixels and its label.
#[derive(Debug, Clone)]
pub struct ImageItem {
    pub pixels: Vec<u8>,
    pub label: Class,
}

/// A view of some of a split's digits, in a fixed order. Cheap to clone: the pixels are shared.
#[derive(Debug, Clone)]
pub struct ImageDataset {
    split: Arc<ImageSplit>,
    indices: Vec<u32>,
}

impl ImageDataset {
    /// Every digit of `split`, in file order.
    pub fn new(split: Arc<ImageSplit>) -> Self {
        let indices = (0..split.len() as u32).collect();
        Self { split, indices }
    }

    /// Splits off `size` images chosen by `seed` (a validation or test set; `key` names the
    /// setting in errors); the rest, in file order, stays. Returns `(rest, split off)`.
    pub fn split_off(
        self,
        size: SplitSize,
        seed: u64,
        key: &'static str,
    ) -> Result<(Self, Self), DataError> {
        let held = size.of(self.indices.len());
        if held >= self.indices.len() {
            return Err(DataError::SplitTooLarge {
                key,
                asked: size,
                size: held,
                total: self.indices.len(),
            });
        }
        let (rest, held) = seeded_split(self.indices.len(), held, seed);
        // File order within each part, so that a limit takes the same images whatever the seed
        // drew, and the data loader alone decides the order of an epoch.
        let part = |positions: Vec<usize>| {
            let mut indices: Vec<u32> = positions.into_iter().map(|p| self.indices[p]).collect();
            indices.sort_unstable();
            Self {
                split: self.split.clone(),
                indices,
            }
        };
        Ok((part(rest), part(held)))
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

    /// The file image `index` of this view was read from, if it came from a file of its own.
    pub fn file(&self, index: usize) -> Option<&Path> {
        let i = *self.indices.get(index)? as usize;
        self.split.files.get(i).map(PathBuf::as_path)
    }

    /// The labels of the images in this view, in order.
    pub fn labels(&self) -> impl Iterator<Item = Class> + '_ {
        self.indices.iter().map(|&i| self.split.labels[i as usize])
    }
}

impl Dataset<ImageItem> for ImageDataset {
    fn get(&self, index: usize) -> Result<ImageItem, burn::data::dataset::DatasetError> {
        let i = *self.indices.get(index).ok_or_else(|| {
            burn::data::dataset::DatasetError::new(std::io::Error::other(format!(
                "no image {index}: the data set has {}",
                self.indices.len()
            )))
        })? as usize;
        Ok(ImageItem {
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

    fn split_of(count: usize) -> Arc<ImageSplit> {
        Arc::new(ImageSplit::synthetic(count))
    }

    #[test]
    fn validation_split_is_disjoint_complete_and_seeded() {
        let all = ImageDataset::new(split_of(100));
        let (train, valid) = all.clone().split_off(SplitSize::Count(20), 7, "k").unwrap();
        assert_eq!((train.len(), valid.len()), (80, 20));
        let mut seen: Vec<u32> = train
            .indices
            .iter()
            .chain(&valid.indices)
            .copied()
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());

        let (_, same) = all.clone().split_off(SplitSize::Count(20), 7, "k").unwrap();
        let (_, other) = all.clone().split_off(SplitSize::Count(20), 8, "k").unwrap();
        let (_, fifth) = all.split_off(SplitSize::Fraction(0.2), 7, "k").unwrap();
        assert_eq!(valid.indices, same.indices);
        assert_ne!(valid.indices, other.indices);
        assert_eq!(valid.indices, fifth.indices, "a fraction takes its share");
    }

    #[test]
    fn split_sizes_read_counts_and_fractions() {
        let read = |text: &str| serde_json::from_str::<SplitSize>(text);
        assert_eq!(read("5000").unwrap(), SplitSize::Count(5000));
        assert_eq!(read("0").unwrap(), SplitSize::Count(0));
        assert_eq!(read("0.1").unwrap(), SplitSize::Fraction(0.1));
        for bad in ["1.5", "-1", "\"x\""] {
            assert!(read(bad).is_err(), "{bad}");
        }
        assert_eq!(SplitSize::Fraction(0.25).of(30), 8);
        assert_eq!(
            SplitSize::Fraction(0.01).of(30),
            1,
            "a share is at least one image"
        );
        assert_eq!(SplitSize::Fraction(0.01).of(0), 0);
        assert_eq!(serde_json::to_string(&SplitSize::Count(7)).unwrap(), "7");
        assert_eq!(
            serde_json::to_string(&SplitSize::Fraction(0.25)).unwrap(),
            "0.25"
        );
    }

    #[test]
    fn validation_must_leave_training_digits() {
        let err = ImageDataset::new(split_of(10))
            .split_off(SplitSize::Count(10), 0, "data.validation_size")
            .unwrap_err();
        assert!(
            err.to_string().contains("data.validation_size (10)"),
            "{err}"
        );
    }

    #[test]
    fn limit_keeps_the_first_digits() {
        let data = ImageDataset::new(split_of(10)).limit(Some(3));
        assert_eq!(data.labels().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(data.get(2).unwrap().pixels[0], 2);
        assert_eq!(ImageDataset::new(split_of(10)).limit(None).len(), 10);
    }
}
