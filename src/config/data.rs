//! The `data` and `augmentation` sections: which data set, where, how it is split, and how
//! training images are distorted.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, check};
use crate::data::augment::Augmentation;
use crate::data::classes::{check_names, numbered};
use crate::data::image::{Decoding, MAX_PIXELS, Preprocess};
use crate::data::synthetic::Synthetic;
use crate::data::{DatasetKind, ReadOptions, SplitSize, Unreadable};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// MNIST, Fashion-MNIST, another IDX data set, or image folders.
    pub dataset: DatasetKind,
    /// Folder holding the four IDX files, or the image folders; `None` looks in `MNIST_DIR`,
    /// then the cache (MNIST), or in Debian's package folder (Fashion-MNIST).
    pub dir: Option<PathBuf>,
    /// Training images held out for validation, a count or a fraction; 0 validates on the
    /// test set instead.
    pub validation_size: SplitSize,
    /// Image folders without test/: the share of train/ held out as the test set.
    pub test_size: SplitSize,
    /// Train on only the first N training images (after the validation split).
    pub train_limit: Option<usize>,
    /// Evaluate on only the first N test images.
    pub test_limit: Option<usize>,
    /// How image files (folders, `predict`, `serve`) are brought to 28x28.
    pub preprocess: Preprocess,
    /// An image file of a folder data set that cannot be read: stop, or leave it out.
    pub unreadable_images: Unreadable,
    /// The largest image file decoded (folders, `predict`, `serve`), in pixels; larger ones are
    /// refused from their header, before decoding.
    pub max_image_pixels: u64,
    /// The class names, in label order. Found from the data (folder names, `classes.txt`, the
    /// labels) and recorded in the run's config; set it to name an IDX set's classes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// Digits drawn from fonts, added to the training images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<Synthetic>,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            dataset: DatasetKind::Mnist,
            dir: None,
            validation_size: SplitSize::Count(5_000),
            test_size: SplitSize::Fraction(0.2),
            train_limit: None,
            test_limit: None,
            preprocess: Preprocess::Digit,
            unreadable_images: Unreadable::Fail,
            max_image_pixels: MAX_PIXELS,
            classes: None,
            synthetic: None,
        }
    }
}

impl DataSection {
    /// How the data set is read, its splits drawn from `seed`.
    pub fn read_options(&self, seed: u64) -> ReadOptions {
        ReadOptions {
            preprocess: self.preprocess,
            max_pixels: self.max_image_pixels,
            unreadable: self.unreadable_images,
            test_size: self.test_size,
            seed,
            classes: self.classes.clone(),
        }
    }

    /// How this data set's image files are read, and any image given to the run's model.
    pub fn decoding(&self) -> Decoding {
        Decoding {
            preprocess: self.preprocess,
            max_pixels: self.max_image_pixels,
        }
    }

    /// The class names: those recorded, or MNIST's ten digits for a run made before classes
    /// were recorded.
    pub fn class_names(&self) -> Vec<String> {
        self.classes.clone().unwrap_or_else(|| numbered(10))
    }

    /// Checks every value that JSON types alone do not constrain.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(names) = &self.classes {
            let fixed = matches!(self.dataset, DatasetKind::Mnist | DatasetKind::FashionMnist);
            check(
                !fixed || names.len() == 10,
                "data.classes",
                format!(
                    "names {} classes, but {} has 10 (leave it out, or give ten names)",
                    names.len(),
                    self.dataset
                ),
            )?;
            check_names(names, "data.classes").map_err(|e| {
                let message = e.to_string();
                ConfigError::value(
                    "data.classes",
                    message.trim_start_matches("data.classes: ").to_string(),
                )
            })?;
        }
        if let Some(synthetic) = &self.synthetic {
            check(
                !synthetic.fonts.is_empty(),
                "data.synthetic.fonts",
                "must name at least one font file",
            )?;
            check(
                synthetic.images >= 1,
                "data.synthetic.images",
                "must be at least 1 (leave data.synthetic out to draw none)",
            )?;
        }
        check(
            self.max_image_pixels >= 1,
            "data.max_image_pixels",
            "must be at least 1",
        )?;
        check(
            self.test_size != SplitSize::Count(0),
            "data.test_size",
            "must hold out at least one image",
        )?;
        for (key, limit) in [
            ("data.train_limit", self.train_limit),
            ("data.test_limit", self.test_limit),
        ] {
            check(
                limit != Some(0),
                key,
                "must be at least 1 (leave it out to use every digit)",
            )?;
        }
        Ok(())
    }
}

/// Checks the `augmentation` section's ranges.
pub fn validate_augmentation(a: &Augmentation) -> Result<(), ConfigError> {
    for (key, value, max) in [
        ("augmentation.rotation_degrees", a.rotation_degrees, 90.0),
        ("augmentation.scale", a.scale, 1.0),
        ("augmentation.shear_degrees", a.shear_degrees, 60.0),
        ("augmentation.translation", a.translation, 14.0),
    ] {
        check(
            (0.0..max).contains(&value),
            key,
            format!("must be in [0, {max}), got {value}"),
        )?;
    }
    check(
        (0.0..=1.0).contains(&a.stroke),
        "augmentation.stroke",
        format!("must be in [0, 1], got {}", a.stroke),
    )?;
    check(
        (0.0..=3.0).contains(&a.blur),
        "augmentation.blur",
        format!("must be in [0, 3] pixels, got {}", a.blur),
    )?;
    if let Some(low) = &a.low_resolution {
        check(
            (0.0..=1.0).contains(&low.probability),
            "augmentation.low_resolution.probability",
            format!("must be in [0, 1], got {}", low.probability),
        )?;
        check(
            (4..=27).contains(&low.smallest) && low.smallest <= low.largest && low.largest <= 27,
            "augmentation.low_resolution",
            format!(
                "smallest and largest must satisfy 4 <= smallest <= largest <= 27, got {} and {}",
                low.smallest, low.largest
            ),
        )?;
    }
    if let Some(e) = &a.elastic {
        check(
            e.sigma > 0.0 && e.sigma <= 10.0,
            "augmentation.elastic.sigma",
            format!("must be in (0, 10], got {}", e.sigma),
        )?;
        check(
            (0.0..=100.0).contains(&e.alpha),
            "augmentation.elastic.alpha",
            format!("must be in [0, 100], got {}", e.alpha),
        )?;
    }
    Ok(())
}
