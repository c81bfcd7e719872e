//! Data: where the images come from and how they reach the model. It knows nothing of the
//! model, of training or of the command line.
//!
//! - this file holds what the rest of the layer (and its callers) name a data set by: its kind,
//!   how it is read, split sizes, class labels; [`error`] holds every error reading one can
//!   meet, wrapping those of the two file-format readers, [`idx`] and [`image`];
//! - [`source`] finds a data set's folder (a folder the user names, `MNIST_DIR`, the cache, a
//!   checked download, Debian's Fashion-MNIST); [`dataset`] reads any kind of data set into
//!   memory, through [`folder`] for people's own images, one folder per class, with the class
//!   names of [`classes`];
//! - [`split`] is the one in-memory container of a split's images, a Burn `Dataset`, and
//!   [`batcher`] turns its items into the model's input tensors;
//! - [`loader`] serves training's epochs in a seeded order that can start mid-epoch, with the
//!   seeded distortions of [`augment`]; [`rng`] is the one random generator behind them;
//! - [`image`] brings image files (photos, drawings, pictures of objects) to the 28x28 form.

pub mod augment;
pub mod batcher;
pub mod classes;
pub mod dataset;
pub mod error;
pub mod folder;
pub mod idx;
pub mod image;
pub mod loader;
pub mod rng;
pub mod source;
pub mod split;
pub mod synthetic;

use serde::{Deserialize, Serialize};

use image::Preprocess;

/// A class label: the index of a class in the data set's class names.
pub type Class = u16;

/// The most classes a data set may have: the output layer is 84 x classes, and eval's
/// confusion matrix classes x classes.
pub const MAX_CLASSES: usize = 1000;

/// The folders of an image-folder data set: `train/<class>/` and, optionally, `test/<class>/`.
pub const TRAIN_DIR: &str = "train";
pub const TEST_DIR: &str = "test";

/// The file in an IDX data set's folder that names its classes, one per line.
pub const CLASSES_FILE: &str = "classes.txt";

/// Where Debian's `dataset-fashion-mnist` package installs the four files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The kinds of data set training reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DatasetKind {
    #[default]
    #[serde(rename = "mnist")]
    Mnist,
    /// Zalando's Fashion-MNIST: 28x28 greyscale clothing in 10 classes, MNIST's file format.
    #[serde(rename = "fashion-mnist")]
    FashionMnist,
    /// Any folder holding four IDX files under MNIST's names (KMNIST, EMNIST, ...), its
    /// classes found from the labels.
    #[serde(rename = "idx")]
    Idx,
    /// People's own images, one folder per class (see [`folder`]).
    #[serde(rename = "folder")]
    Folder,
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DatasetKind::Mnist => "MNIST",
            DatasetKind::FashionMnist => "Fashion-MNIST",
            DatasetKind::Idx => "IDX data set",
            DatasetKind::Folder => "Image folders",
        })
    }
}

/// How a data set is read: the data section's settings that data knows of.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// How image files are brought to 28x28 (folder data sets).
    pub preprocess: Preprocess,
    /// The largest image file decoded, in pixels.
    pub max_pixels: u64,
    pub unreadable: Unreadable,
    /// The test set's share of train/ when a folder data set has no test/ folder.
    pub test_size: SplitSize,
    /// The seed of that split.
    pub seed: u64,
    /// Class names given by the config or recorded by a run.
    pub classes: Option<Vec<String>>,
}

/// What to do with an image file that cannot be read or holds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unreadable {
    /// Stop before training, naming the file.
    #[default]
    Fail,
    /// Leave it out, with a warning naming it.
    Skip,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
