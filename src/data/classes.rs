//! Class names: those a data set comes with (MNIST's digits, Fashion-MNIST's clothes, an IDX
//! set's `classes.txt`), the checks every list of names passes, and names for people's lines.

use std::path::Path;

use super::error::DataError;
use super::{CLASSES_FILE, Class, DatasetKind, MAX_CLASSES};

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

/// The class names of an IDX data set, if known before reading its labels: the config's (or
/// the run's), else `classes.txt` in its folder, else MNIST's and Fashion-MNIST's own.
pub fn idx_names(
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
