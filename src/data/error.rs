//! Every error reading a data set can meet, each naming the file or folder and what is wrong
//! with it in one line. The two file-format readers keep their own ([`IdxError`],
//! [`ImageError`]), which [`DataError`] wraps with the others.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::idx::{FILE_NAMES, IdxError};
use super::image::{IMAGE_ENDINGS, ImageError};
use super::{FASHION_MNIST_DIR, MAX_CLASSES, SplitSize, TEST_DIR, TRAIN_DIR};

#[derive(Debug, Error)]
pub enum DataError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Idx(#[from] IdxError),
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error(transparent)]
    Synthetic(#[from] SyntheticError),
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

impl DataError {
    /// Whether the error is in what the user asked for (a split larger than the data, a data
    /// set named without its folder) rather than in the data met while doing it.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DataError::SplitTooLarge { .. }
                | DataError::Folder(FolderError::TestTooLarge { .. })
                | DataError::Source(SourceError::NoDir { .. })
                | DataError::Synthetic(_)
        )
    }
}

#[derive(Debug, Error)]
pub enum FolderError {
    #[error("{}: no such folder (data.dir of a \"folder\" data set)", dir.display())]
    NoFolder { dir: PathBuf },
    #[error(
        "{}: no {TRAIN_DIR}/ folder; a \"folder\" data set holds {TRAIN_DIR}/<class>/<images> \
         and optionally {TEST_DIR}/<class>/<images>",
        dir.display()
    )]
    NoTrain { dir: PathBuf },
    #[error("{}: cannot list: {source}", dir.display())]
    List {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}: holds no class folders; put each class's images in a folder named after the class",
        dir.display()
    )]
    NoClasses { dir: PathBuf },
    #[error(
        "{}: only one class folder ({name}); a classifier needs at least two classes",
        dir.display()
    )]
    OneClass { dir: PathBuf, name: String },
    #[error("{}: {count} class folders; at most {MAX_CLASSES} are supported", dir.display())]
    TooManyClasses { dir: PathBuf, count: usize },
    #[error(
        "{}: holds no images ({}); add some, or remove the folder",
        dir.display(),
        IMAGE_ENDINGS.join(", ")
    )]
    EmptyClass { dir: PathBuf },
    #[error(
        "{}: every image was unreadable and skipped; the class has nothing left to train on",
        dir.display()
    )]
    AllSkipped { dir: PathBuf },
    #[error(
        "{}: its class folders differ from {TRAIN_DIR}/'s: {}",
        dir.display(),
        describe_difference(train, test)
    )]
    ClassMismatch {
        dir: PathBuf,
        train: Vec<String>,
        test: Vec<String>,
    },
    #[error(
        "{}: the class folders ({}) are not data.classes ({}): for image folders the classes \
         are the folder names, in name order (leave data.classes out), and a trained run's \
         must still be there",
        dir.display(),
        found.join(", "),
        recorded.join(", ")
    )]
    Recorded {
        dir: PathBuf,
        found: Vec<String>,
        recorded: Vec<String>,
    },
    #[error(
        "{}: data.test_size holds out {size} of its {total} images, leaving none to train on",
        dir.display()
    )]
    TestTooLarge {
        dir: PathBuf,
        size: usize,
        total: usize,
    },
    #[error(
        "{error} (set data.unreadable_images to \"skip\" to leave such files out with a warning)"
    )]
    Unreadable { error: ImageError },
}

fn describe_difference(train: &[String], test: &[String]) -> String {
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|c| !b.contains(c)).cloned().collect()
    };
    let mut parts = Vec::new();
    let missing = only(train, test);
    if !missing.is_empty() {
        parts.push(format!("it lacks {}", missing.join(", ")));
    }
    let extra = only(test, train);
    if !extra.is_empty() {
        parts.push(format!(
            "it has {} that {TRAIN_DIR}/ has not",
            extra.join(", ")
        ));
    }
    parts.join("; ")
}

/// How the data folder was chosen, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--data-dir` or the config's `data.dir`.
    Configured,
    /// The `MNIST_DIR` environment variable.
    Env,
    /// The per-user cache folder.
    Cache,
}

impl Origin {
    fn describe(self) -> &'static str {
        match self {
            Origin::Configured => "--data-dir / data.dir",
            Origin::Env => "MNIST_DIR",
            Origin::Cache => "the cache",
        }
    }
}

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("{}", missing_message(data, dir, *origin, missing))]
    Missing {
        data: &'static str,
        dir: PathBuf,
        origin: Origin,
        missing: Vec<&'static str>,
    },
    #[error(
        "MNIST is not in {} and could not be downloaded: {reason}. To run offline, put the four \
         files ({}, each raw or .gz) in {}, or point --data-dir or MNIST_DIR at a folder that \
         holds them",
        dir.display(),
        FILE_NAMES.join(", "),
        dir.display()
    )]
    Download { dir: PathBuf, reason: String },
    #[error(
        "no MNIST folder given and no cache folder on this system: pass --data-dir or set MNIST_DIR"
    )]
    NoCache,
    #[error(
        "{}: Fashion-MNIST files missing ({}): install Debian's package with `apt-get install \
         dataset-fashion-mnist` (it puts them in {FASHION_MNIST_DIR}), or point --data-dir / \
         data.dir at a folder holding them, each raw or .gz",
        dir.display(),
        missing.join(", ")
    )]
    FashionMissing {
        dir: PathBuf,
        missing: Vec<&'static str>,
    },
    #[error("data.dir is needed for data.dataset \"{kind}\": {what}")]
    NoDir {
        kind: &'static str,
        what: &'static str,
    },
    #[error("{}: no such folder (data.dir)", dir.display())]
    NoFolder { dir: PathBuf },
}

/// A folder that lacks data files, said so that each file is named once: a folder that does
/// not exist is not listed file by file.
fn missing_message(data: &str, dir: &Path, origin: Origin, missing: &[&str]) -> String {
    if dir.is_dir() {
        let folders = if dir.join(TRAIN_DIR).is_dir() {
            "; it holds a train/ folder: for image folders, set data.dataset to \"folder\""
        } else {
            ""
        };
        format!(
            "{}: {data} files missing ({}, named by {}), each expected raw or .gz{folders}",
            dir.display(),
            missing.join(", "),
            origin.describe()
        )
    } else {
        format!(
            "{}: no such folder (named by {}); it should hold the {data} files {}, each raw or \
             .gz",
            dir.display(),
            origin.describe(),
            missing.join(", ")
        )
    }
}

/// What goes wrong drawing digits from fonts (`data.synthetic`).
#[derive(Debug, Error)]
pub enum SyntheticError {
    #[error("data.synthetic.fonts: {}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data.synthetic.fonts: {}: not a TrueType or OpenType font", path.display())]
    NotAFont { path: PathBuf },
    #[error(
        "data.synthetic.fonts: {}: has no drawable glyph for the digit {digit}",
        path.display()
    )]
    NoDigit { path: PathBuf, digit: u8 },
    #[error(
        "data.synthetic draws the digits 0-9, but this data set's classes are {classes}: \
         leave data.synthetic out"
    )]
    NotDigits { classes: String },
}
