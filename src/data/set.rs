//! A data set as training and evaluation read it, whatever its kind: its training and test
//! images in memory and its class names.

use std::path::Path;
use std::sync::Arc;

use super::dataset::{DataError, IdxSet, ImageDataset, ImageSplit, SplitSize};
use super::folder::{Unreadable, read_folder};
use super::idx::{TEST_LABELS, TRAIN_LABELS};
use super::image::Preprocess;
use super::source::DatasetKind;
use super::{Class, MAX_CLASSES};

/// How a data set is read: the data section's settings that data knows of.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// How image files are brought to 28x28 (folder data sets).
    pub preprocess: Preprocess,
    pub unreadable: Unreadable,
    /// The test set's share of train/ when a folder data set has no test/ folder.
    pub test_size: SplitSize,
    /// The seed of that split.
    pub seed: u64,
    /// Class names given by the config or recorded by a run.
    pub classes: Option<Vec<String>>,
}

/// A data set read: its training images (empty when only the test set was asked for), its
/// test images, its class names, and a line for each thing to warn about (images left out,
/// classes without training images).
#[derive(Debug)]
pub struct DataSet {
    pub train: ImageDataset,
    pub test: ImageDataset,
    pub classes: Vec<String>,
    pub warnings: Vec<String>,
}

/// The file in an IDX data set's folder that names its classes, one per line.
pub const CLASSES_FILE: &str = "classes.txt";

/// Fashion-MNIST's classes, in label order.
const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The class names of a data set that has no names of its own: the labels' numbers.
pub fn numbered(count: usize) -> Vec<String> {
    (0..count).map(|c| c.to_string()).collect()
}

/// Reads the `kind` data set in `dir`; with `test_only`, only its test set.
pub fn read(
    kind: DatasetKind,
    dir: &Path,
    options: &ReadOptions,
    test_only: bool,
) -> Result<DataSet, DataError> {
    if kind == DatasetKind::Folder {
        let data = read_folder(dir, options, test_only)?;
        return Ok(DataSet {
            train: data.train,
            test: data.test,
            classes: data.classes,
            warnings: data.warnings,
        });
    }
    let named = idx_class_names(kind, dir, options.classes.as_deref())?;
    let bound = named.as_ref().map_or(MAX_CLASSES.min(256), Vec::len);
    let (train, test) = if test_only {
        (
            ImageSplit::new(Vec::new(), Vec::new()),
            IdxSet::read_test(dir, bound)?,
        )
    } else {
        let set = IdxSet::read(dir, bound)?;
        (set.train, set.test)
    };
    let classes = match named {
        Some(names) => names,
        None => {
            let highest = train.labels().iter().chain(test.labels()).max();
            numbered(highest.map_or(0, |&c| c as usize + 1))
        }
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
        train: ImageDataset::new(Arc::new(train)),
        test: ImageDataset::new(Arc::new(test)),
        classes,
        warnings: Vec::new(),
    })
}

/// The class names of the `kind` data set in `dir`, found without reading its images: from its
/// folders, its names, or its training labels.
pub fn class_names(
    kind: DatasetKind,
    dir: &Path,
    options: &ReadOptions,
) -> Result<Vec<String>, DataError> {
    if kind == DatasetKind::Folder {
        return Ok(super::folder::class_names(dir)?);
    }
    if let Some(names) = idx_class_names(kind, dir, options.classes.as_deref())? {
        return Ok(names);
    }
    // As reading the data set does: the highest label of either split.
    let mut highest = None;
    for name in [TRAIN_LABELS, TEST_LABELS] {
        let labels = super::idx::read_labels(&super::idx::file_in(dir, name), 256)?;
        highest = highest.max(labels.iter().max().copied());
    }
    Ok(numbered(highest.map_or(0, |l| l as usize + 1)))
}

/// The class names of an IDX data set, if known before reading its labels: the config's (or
/// the run's), else `classes.txt` in its folder, else MNIST's and Fashion-MNIST's own.
fn idx_class_names(
    kind: DatasetKind,
    dir: &Path,
    given: Option<&[String]>,
) -> Result<Option<Vec<String>>, DataError> {
    let (names, source) = match given {
        Some(names) => (Some(names.to_vec()), "data.classes".to_string()),
        None => {
            let file = dir.join(CLASSES_FILE);
            let from_file = if kind == DatasetKind::Idx && file.is_file() {
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    DataError::Classes(format!("{}: cannot read: {e}", file.display()))
                })?;
                Some(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(String::from)
                        .collect(),
                )
            } else {
                None
            };
            (from_file, file.display().to_string())
        }
    };
    let fixed = match kind {
        DatasetKind::Mnist => Some(numbered(10)),
        DatasetKind::FashionMnist => Some(FASHION_CLASSES.map(String::from).to_vec()),
        _ => None,
    };
    let Some(names) = names else {
        return Ok(fixed);
    };
    check_names(&names, &source)?;
    if let Some(fixed) = fixed
        && names.len() != fixed.len()
    {
        return Err(DataError::Classes(format!(
            "{source}: names {} classes, but {kind} has {}",
            names.len(),
            fixed.len()
        )));
    }
    Ok(Some(names))
}

/// Class names must be two or more, at most [`MAX_CLASSES`], none empty, none repeated.
pub fn check_names(names: &[String], source: &str) -> Result<(), DataError> {
    let problem = if names.len() < 2 {
        Some(format!(
            "names {} class{}; a classifier needs at least two",
            names.len(),
            if names.len() == 1 { "" } else { "es" }
        ))
    } else if names.len() > MAX_CLASSES {
        Some(format!(
            "names {} classes; at most {MAX_CLASSES} are supported",
            names.len()
        ))
    } else if names.iter().any(|n| n.trim().is_empty()) {
        Some("a class name is empty".to_string())
    } else {
        names
            .iter()
            .enumerate()
            .find(|(i, n)| names[..*i].contains(n))
            .map(|(_, n)| format!("names the class {n:?} twice"))
    };
    match problem {
        Some(problem) => Err(DataError::Classes(format!("{source}: {problem}"))),
        None => Ok(()),
    }
}

/// Class names for a line of text: all of them up to `shown`, else the first `shown` and how
/// many more.
pub fn brief(classes: &[String], shown: usize) -> String {
    let mut text = classes[..classes.len().min(shown)].join(", ");
    if classes.len() > shown {
        text += &format!(" and {} more", classes.len() - shown);
    }
    text
}

/// The class a label stands for, or its number when a run named no classes.
pub fn class_name(classes: &[String], class: Class) -> String {
    classes
        .get(class as usize)
        .cloned()
        .unwrap_or_else(|| class.to_string())
}
