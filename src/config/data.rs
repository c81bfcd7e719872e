//! The `data` and `augmentation` sections: which data set, where, how it is split, and how
//! training images are distorted.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, check};
use crate::data::augment::Augmentation;
use crate::data::source::DatasetKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// MNIST or Fashion-MNIST.
    pub dataset: DatasetKind,
    /// Folder holding the four IDX files; `None` looks in `MNIST_DIR`, then the cache (MNIST),
    /// or in Debian's package folder (Fashion-MNIST).
    pub dir: Option<PathBuf>,
    /// Training digits held out for validation; 0 validates on the test set instead.
    pub validation_size: usize,
    /// Train on only the first N training digits (after the validation split).
    pub train_limit: Option<usize>,
    /// Evaluate on only the first N test digits.
    pub test_limit: Option<usize>,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            dataset: DatasetKind::Mnist,
            dir: None,
            validation_size: 5_000,
            train_limit: None,
            test_limit: None,
        }
    }
}

impl DataSection {
    /// Checks every value that JSON types alone do not constrain.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
