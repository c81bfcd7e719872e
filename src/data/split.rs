//! Images in memory, whatever they were read from: [`ImageSplit`], the one container of a
//! split's 28x28 images with their class labels (a Burn `Dataset`, cheap to clone and to split
//! further), and [`DataSet`], a data set's training and test splits with its class names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataset::Dataset;

use super::error::DataError;
use super::idx::{self, Part};
use super::rng::Rng;
use super::{Class, SplitSize};
use crate::input::IMAGE_PIXELS;

/// A data set read: its training images (empty when only the test set was asked for), its
/// test images, its class names, and a line for each thing to warn about (images left out,
/// files not read).
#[derive(Debug)]
pub struct DataSet {
    pub train: ImageSplit,
    pub test: ImageSplit,
    pub classes: Vec<String>,
    pub warnings: Vec<String>,
}

/// One image: its 28x28 pixels and its label.
#[derive(Debug, Clone)]
pub struct ImageItem {
    pub pixels: Vec<u8>,
    pub label: Class,
}

/// Some of a split's images, in a fixed order. The pixels are shared, so clones, validation
/// splits and limits copy only positions.
#[derive(Debug, Clone)]
pub struct ImageSplit {
    images: Arc<Images>,
    /// The positions in `images` this split holds, in its order.
    indices: Vec<u32>,
}

/// The images behind one or more [`ImageSplit`]s, checked to agree.
#[derive(Debug)]
struct Images {
    /// Each image's 28x28 pixels after the last.
    pixels: Vec<u8>,
    labels: Vec<Class>,
    /// The file each image was read from, for data sets of image files; empty for IDX files.
    files: Vec<PathBuf>,
}

impl ImageSplit {
    /// A split of `labels.len()` images whose pixels follow each other in `pixels`, each read
    /// from the file of the same position in `files` (or none, when `files` is empty).
    pub fn new(pixels: Vec<u8>, labels: Vec<Class>, files: Vec<PathBuf>) -> Self {
        assert_eq!(
            pixels.len(),
            labels.len() * IMAGE_PIXELS,
            "one label per image"
        );
        assert!(
            files.is_empty() || files.len() == labels.len(),
            "one file per image, or none"
        );
        let indices = (0..labels.len() as u32).collect();
        Self {
            images: Arc::new(Images {
                pixels,
                labels,
                files,
            }),
            indices,
        }
    }

    /// A split without images.
    pub fn empty() -> Self {
        Self::new(Vec::new(), Vec::new(), Vec::new())
    }

    /// The `part` of the IDX data set in `dir`: its images file and labels file, checked to
    /// describe the same images, every label below `classes`.
    pub fn read_idx(dir: &Path, part: Part, classes: usize) -> Result<Self, DataError> {
        let (images_name, labels_name) = part.files();
        let (images_path, labels_path) = (
            idx::file_in(dir, images_name),
            idx::file_in(dir, labels_name),
        );
        let images = idx::read_images(&images_path)?;
        let labels = idx::read_labels(&labels_path, classes)?;
        if images.count != labels.len() {
            return Err(DataError::CountMismatch {
                images_path,
                images: images.count,
                labels_path,
                labels: labels.len(),
            });
        }
        let labels = labels.into_iter().map(Class::from).collect();
        Ok(Self::new(images.pixels, labels, Vec::new()))
    }

    /// This split's images followed by `pixels` and `labels` (images drawn rather than read
    /// from files), as a split of its own. Which file each image came from is not kept: only
    /// test images are reported by file.
    pub fn extended(&self, pixels: &[u8], labels: &[Class]) -> Self {
        let mut all = Vec::with_capacity((self.len() + labels.len()) * IMAGE_PIXELS);
        let mut all_labels = Vec::with_capacity(self.len() + labels.len());
        for index in 0..self.len() {
            all.extend_from_slice(self.image(index));
            all_labels.push(self.label(index));
        }
        all.extend_from_slice(pixels);
        all_labels.extend_from_slice(labels);
        Self::new(all, all_labels, Vec::new())
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The pixels of image `index` of this split.
    pub fn image(&self, index: usize) -> &[u8] {
        let i = self.indices[index] as usize;
        &self.images.pixels[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS]
    }

    /// The label of image `index` of this split.
    pub fn label(&self, index: usize) -> Class {
        self.images.labels[self.indices[index] as usize]
    }

    /// The labels of the images in this split, in order.
    pub fn labels(&self) -> impl Iterator<Item = Class> + '_ {
        self.indices.iter().map(|&i| self.images.labels[i as usize])
    }

    /// The file image `index` of this split was read from, if it came from a file of its own.
    pub fn file(&self, index: usize) -> Option<&Path> {
        let i = *self.indices.get(index)? as usize;
        self.images.files.get(i).map(PathBuf::as_path)
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
                images: self.images.clone(),
                indices,
            }
        };
        Ok((part(rest), part(held)))
    }

    /// Keeps only the first `limit` images (all of them when `limit` is `None` or larger).
    pub fn limit(mut self, limit: Option<usize>) -> Self {
        if let Some(limit) = limit {
            self.indices.truncate(limit);
        }
        self
    }

    /// The images at positions `range` of this split.
    pub fn range(mut self, range: std::ops::Range<usize>) -> Self {
        self.indices = self.indices[range].to_vec();
        self
    }

    /// `count` made-up images for unit tests: image `i` is filled with the value `i` and
    /// labelled `i % 10`.
    #[cfg(test)]
    pub(crate) fn synthetic(count: usize) -> Self {
        Self::new(
            (0..count * IMAGE_PIXELS)
                .map(|i| (i / IMAGE_PIXELS) as u8)
                .collect(),
            (0..count).map(|i| (i % 10) as Class).collect(),
            Vec::new(),
        )
    }
}

impl Dataset<ImageItem> for ImageSplit {
    fn get(&self, index: usize) -> Result<ImageItem, burn::data::dataset::DatasetError> {
        if index >= self.indices.len() {
            return Err(burn::data::dataset::DatasetError::new(
                std::io::Error::other(format!(
                    "no image {index}: the data set has {}",
                    self.indices.len()
                )),
            ));
        }
        Ok(ImageItem {
            pixels: self.image(index).to_vec(),
            label: self.label(index),
        })
    }

    fn len(&self) -> usize {
        ImageSplit::len(self)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_split_is_disjoint_complete_and_seeded() {
        let all = ImageSplit::synthetic(100);
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
    fn validation_must_leave_training_images() {
        let err = ImageSplit::synthetic(10)
            .split_off(SplitSize::Count(10), 0, "data.validation_size")
            .unwrap_err();
        assert!(
            err.to_string().contains("data.validation_size (10)"),
            "{err}"
        );
    }

    #[test]
    fn limit_keeps_the_first_images() {
        let data = ImageSplit::synthetic(10).limit(Some(3));
        assert_eq!(data.labels().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(data.get(2).unwrap().pixels[0], 2);
        assert_eq!(ImageSplit::synthetic(10).limit(None).len(), 10);
    }

    #[test]
    fn a_split_off_part_reads_its_own_images() {
        let (rest, held) = ImageSplit::synthetic(10)
            .split_off(SplitSize::Count(3), 1, "k")
            .unwrap();
        for part in [&rest, &held] {
            for i in 0..part.len() {
                let item = part.get(i).unwrap();
                assert_eq!(item.label, part.label(i));
                assert_eq!(item.pixels[0] as Class % 10, item.label);
            }
        }
        assert!(held.get(3).is_err());
    }
}
