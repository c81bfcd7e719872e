//! A data set as training and evaluation read it, whatever its kind: its training and test
//! images in memory with its class names ([`read`]), or only its class names ([`class_names`]).

use std::path::Path;

use super::classes::{self, numbered};
use super::error::DataError;
use super::folder;
use super::idx::{self, Part, TEST_LABELS, TRAIN_LABELS};
use super::split::{DataSet, ImageSplit};
use super::{Class, DatasetKind, MAX_CLASSES, ReadOptions};

/// Reads the `kind` data set in `dir`; with `test_only`, only its test set.
pub fn read(
    kind: DatasetKind,
    dir: &Path,
    options: &ReadOptions,
    test_only: bool,
) -> Result<DataSet, DataError> {
    if kind == DatasetKind::Folder {
        return Ok(folder::read_folder(dir, options, test_only)?);
    }
    let named = classes::idx_names(kind, dir, options.classes.as_deref())?;
    let bound = named.as_ref().map_or(MAX_CLASSES.min(256), Vec::len);
    let train = if test_only {
        ImageSplit::empty()
    } else {
        ImageSplit::read_idx(dir, Part::Train, bound)?
    };
    let test = ImageSplit::read_idx(dir, Part::Test, bound)?;
    let classes = match named {
        Some(names) => names,
        None => numbered(highest_class(train.labels().chain(test.labels()))),
    };
    if classes.len() < 2 {
        return Err(DataError::Classes(format!(
            "{}: the labels name {} class{}; a classifier needs at least two",
            dir.join(TRAIN_LABELS).display(),
            classes.len(),
            if classes.len() == 1 { "" } else { "es" }
        )));
    }
    Ok(DataSet {
        train,
        test,
        classes,
        warnings: Vec::new(),
    })
}

/// The class names of the `kind` data set in `dir`, found without reading its images: from its
/// folders, its names, or its labels.
pub fn class_names(
    kind: DatasetKind,
    dir: &Path,
    options: &ReadOptions,
) -> Result<Vec<String>, DataError> {
    if kind == DatasetKind::Folder {
        return Ok(folder::class_names(dir)?);
    }
    if let Some(names) = classes::idx_names(kind, dir, options.classes.as_deref())? {
        return Ok(names);
    }
    let mut labels = Vec::new();
    for name in [TRAIN_LABELS, TEST_LABELS] {
        labels.extend(idx::read_labels(&idx::file_in(dir, name), 256)?);
    }
    Ok(numbered(highest_class(labels.into_iter().map(Class::from))))
}

/// How many classes unnamed labels stand for: one more than the highest label of either split.
fn highest_class(labels: impl Iterator<Item = Class>) -> usize {
    labels.max().map_or(0, |c| c as usize + 1)
}
