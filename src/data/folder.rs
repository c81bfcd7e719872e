//! A data set of people's own images in folders, one sub-folder per class:
//!
//! ```text
//! DIR/train/<class>/*.png|jpg|...     the training images (validation is split off them)
//! DIR/test/<class>/...                optional; without it a seeded `test_size` share of
//!                                     train/ is held out as the test set
//! ```
//!
//! Every image is brought to the model's 28x28 form once, when the data set is read, by the
//! same code as `lenet predict` ([`super::image`]), so epochs never decode again.
//!
//! burn-dataset's `ImageFolderDataset` reads this layout, but not in a way training can use:
//! its `get` decodes with `image::open(..).unwrap()`, so one unreadable file panics in the
//! middle of an epoch instead of being reported (or skipped) before training starts; it picks
//! the decoder by file ending rather than content, ignores EXIF orientation, and walks every
//! depth, so stray images in nested folders become classes. This module lists the two levels
//! itself and decodes each image once, in parallel, up front.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::error::FolderError;
use super::image::{Decoding, IMAGE_ENDINGS, ImageError, has_image_ending, load_image};
use super::split::{DataSet, ImageSplit, seeded_split};
use super::{Class, MAX_CLASSES, ReadOptions, TEST_DIR, TRAIN_DIR, Unreadable};
use crate::input::IMAGE_PIXELS;

/// One image file and its class.
type Entry = (PathBuf, Class);

/// An image file's 28x28 pixels, or why it could not be read.
type Decoded = Result<Vec<u8>, ImageError>;

/// Reads the folder data set in `dir`; with `test_only`, prepares only the test images.
pub fn read_folder(
    dir: &Path,
    options: &ReadOptions,
    test_only: bool,
) -> Result<DataSet, FolderError> {
    if !dir.is_dir() {
        return Err(FolderError::NoFolder {
            dir: dir.to_path_buf(),
        });
    }
    let classes = class_names(dir)?;
    let train_dir = dir.join(TRAIN_DIR);
    if let Some(recorded) = &options.classes
        && recorded != &classes
    {
        return Err(FolderError::Recorded {
            dir: train_dir,
            found: classes,
            recorded: recorded.clone(),
        });
    }
    let mut skipped = Vec::new();
    let train_entries = list_images(&train_dir, &classes, &mut skipped)?;
    let test_dir = dir.join(TEST_DIR);
    let (train_entries, test_entries) = if test_dir.is_dir() {
        let test_classes = class_folders(&test_dir).or_else(|e| match e {
            FolderError::OneClass { name, .. } => Ok(vec![name]),
            other => Err(other),
        })?;
        if test_classes != classes {
            return Err(FolderError::ClassMismatch {
                dir: test_dir,
                train: classes,
                test: test_classes,
            });
        }
        (
            train_entries,
            list_images(&test_dir, &classes, &mut skipped)?,
        )
    } else {
        let size = options.test_size.of(train_entries.len());
        if size >= train_entries.len() {
            return Err(FolderError::TestTooLarge {
                dir: train_dir,
                size,
                total: train_entries.len(),
            });
        }
        let (rest, held) = seeded_split(train_entries.len(), size, options.seed ^ TEST_SPLIT_SALT);
        let entries = |positions: Vec<usize>| -> Vec<Entry> {
            positions
                .into_iter()
                .map(|p| train_entries[p].clone())
                .collect()
        };
        (entries(rest), entries(held))
    };
    let train = if test_only {
        ImageSplit::empty()
    } else {
        prepare(&train_entries, &classes, &train_dir, options, &mut skipped)?
    };
    let test_root = if test_dir.is_dir() {
        test_dir
    } else {
        train_dir
    };
    let test = prepare(&test_entries, &classes, &test_root, options, &mut skipped)?;
    Ok(DataSet {
        train,
        test,
        classes,
        warnings: skipped,
    })
}

/// The class names of the folder data set in `dir`, found without reading an image: its
/// class folders in train/.
pub fn class_names(dir: &Path) -> Result<Vec<String>, FolderError> {
    let train_dir = dir.join(TRAIN_DIR);
    if !train_dir.is_dir() {
        return Err(FolderError::NoTrain {
            dir: dir.to_path_buf(),
        });
    }
    class_folders(&train_dir)
}

/// Mixed into the seed of the held-out test split, so that it is not the validation split's.
const TEST_SPLIT_SALT: u64 = 0x7e57_5e7f_0f01_de75;

/// The class folders of `dir`, sorted by name: at least two, at most [`MAX_CLASSES`].
fn class_folders(dir: &Path) -> Result<Vec<String>, FolderError> {
    let mut classes: Vec<String> = fs::read_dir(dir)
        .map_err(|source| FolderError::List {
            dir: dir.to_path_buf(),
            source,
        })?
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    classes.sort();
    match classes.len() {
        0 => Err(FolderError::NoClasses {
            dir: dir.to_path_buf(),
        }),
        1 => Err(FolderError::OneClass {
            dir: dir.to_path_buf(),
            name: classes.remove(0),
        }),
        n if n > MAX_CLASSES => Err(FolderError::TooManyClasses {
            dir: dir.to_path_buf(),
            count: n,
        }),
        _ => Ok(classes),
    }
}

/// Every image file of each class folder, each class's in name order, the classes interleaved
/// (the first image of each class, then the second, ...) so that a limit on the number of
/// images takes some of every class; and a line for each folder holding what is not read:
/// files without an image ending, files beside the class folders, folders inside them.
fn list_images(
    dir: &Path,
    classes: &[String],
    notes: &mut Vec<String>,
) -> Result<Vec<Entry>, FolderError> {
    let visible = |path: &PathBuf| {
        !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    };
    let list = |folder: &Path| -> Result<Vec<PathBuf>, FolderError> {
        Ok(fs::read_dir(folder)
            .map_err(|source| FolderError::List {
                dir: folder.to_path_buf(),
                source,
            })?
            .flatten()
            .map(|entry| entry.path())
            .filter(visible)
            .collect())
    };
    let loose = list(dir)?.into_iter().filter(|p| p.is_file()).count();
    if loose > 0 {
        notes.push(format!(
            "{}: {loose} file{} beside the class folders not read (only images inside a class \
             folder are)",
            dir.display(),
            if loose == 1 { "" } else { "s" }
        ));
    }
    let mut per_class = Vec::with_capacity(classes.len());
    for name in classes {
        let folder = dir.join(name);
        let all = list(&folder)?;
        let mut files: Vec<PathBuf> = all
            .iter()
            .filter(|path| path.is_file() && has_image_ending(path))
            .cloned()
            .collect();
        let (others, folders) = (
            all.iter().filter(|p| p.is_file()).count() - files.len(),
            all.iter().filter(|p| p.is_dir()).count(),
        );
        let mut unread = Vec::new();
        if others > 0 {
            unread.push(format!(
                "{others} file{} without an image ending ({})",
                if others == 1 { "" } else { "s" },
                IMAGE_ENDINGS.join(", ")
            ));
        }
        if folders > 0 {
            unread.push(format!(
                "{folders} folder{} inside it",
                if folders == 1 { "" } else { "s" }
            ));
        }
        if !unread.is_empty() {
            notes.push(format!(
                "{}: not read: {}",
                folder.display(),
                unread.join(", ")
            ));
        }
        if files.is_empty() {
            return Err(FolderError::EmptyClass { dir: folder });
        }
        files.sort();
        per_class.push(files);
    }
    let longest = per_class.iter().map(Vec::len).max().unwrap_or(0);
    let mut entries = Vec::with_capacity(per_class.iter().map(Vec::len).sum());
    for i in 0..longest {
        for (class, files) in per_class.iter().enumerate() {
            if let Some(file) = files.get(i) {
                entries.push((file.clone(), class as Class));
            }
        }
    }
    Ok(entries)
}

/// Decodes and prepares `entries` in parallel, with a progress bar on a terminal; what cannot
/// be read stops the reading or is skipped with a line in `skipped`, as `options` say.
fn prepare(
    entries: &[Entry],
    classes: &[String],
    root: &Path,
    options: &ReadOptions,
    skipped: &mut Vec<String>,
) -> Result<ImageSplit, FolderError> {
    let bar =
        ProgressBar::with_draw_target(Some(entries.len() as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("preparing {msg} [{bar:30}] {pos}/{len} images")
            .expect("progress template is valid")
            .progress_chars("=> "),
    );
    bar.set_message(root.display().to_string());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let decoding = Decoding {
        preprocess: options.preprocess,
        max_pixels: options.max_pixels,
    };
    let chunks: Vec<Vec<(usize, Decoded)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((path, _)) = entries.get(i) else {
                            return done;
                        };
                        done.push((i, load_image(path, decoding).map(|p| p.pixels)));
                        bar.inc(1);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("an image worker panicked"))
            .collect()
    });
    bar.finish_and_clear();
    // Back in the entries' order, whichever worker decoded what.
    let mut results: Vec<(usize, Decoded)> = chunks.into_iter().flatten().collect();
    results.sort_unstable_by_key(|(i, _)| *i);
    let mut pixels = Vec::with_capacity(entries.len() * IMAGE_PIXELS);
    let mut labels = Vec::with_capacity(entries.len());
    let mut files = Vec::with_capacity(entries.len());
    let mut kept_per_class = vec![0usize; classes.len()];
    for ((file, class), (_, result)) in entries.iter().zip(results) {
        match result {
            Ok(image) => {
                pixels.extend_from_slice(&image);
                labels.push(*class);
                files.push(file.clone());
                kept_per_class[*class as usize] += 1;
            }
            Err(error) => match options.unreadable {
                Unreadable::Fail => return Err(FolderError::Unreadable { error }),
                Unreadable::Skip => skipped.push(format!("skipped {error}")),
            },
        }
    }
    let listed = |class: usize| entries.iter().any(|(_, c)| *c as usize == class);
    if let Some(class) = (0..classes.len()).find(|&c| kept_per_class[c] == 0 && listed(c)) {
        return Err(FolderError::AllSkipped {
            dir: root.join(&classes[class]),
        });
    }
    Ok(ImageSplit::new(pixels, labels, files))
}
