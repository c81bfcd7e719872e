//! `lenet predict`: a run's model on people's image files, each brought to the model's input
//! form by [`crate::data::image`] as the run was trained (`data.preprocess`), answered by the
//! run's class names, with a warning where the answer deserves doubt.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::Serialize;
use thiserror::Error;

use super::{argmax, classify};
use crate::data::Class;
use crate::data::classes::class_name;
use crate::data::image::{
    Decoding, IMAGE_ENDINGS, ImageError, Prepared, has_image_ending, load_image,
};
use crate::model::LeNet5;

/// Below this probability for its answer, the model is said to be unsure.
const UNSURE: f32 = 0.6;

#[derive(Debug, Error)]
pub enum InputError {
    #[error("{}: no such file or folder", path.display())]
    Missing { path: PathBuf },
    #[error("{}: the folder holds no images ({})", path.display(), IMAGE_ENDINGS.join(", "))]
    EmptyFolder { path: PathBuf },
    #[error("{pattern}: matches no file")]
    NoMatch { pattern: String },
    #[error("{pattern}: not a valid pattern: {message}")]
    Pattern { pattern: String, message: String },
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl InputError {
    /// The file, folder or pattern the error is about.
    pub fn input(&self) -> String {
        match self {
            InputError::Missing { path } | InputError::EmptyFolder { path } => {
                path.display().to_string()
            }
            InputError::NoMatch { pattern } | InputError::Pattern { pattern, .. } => {
                pattern.clone()
            }
            InputError::Image(error) => error.path().display().to_string(),
        }
    }
}

/// The model's answer for one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub file: PathBuf,
    /// The answer's label and name.
    pub class: Class,
    pub name: String,
    pub probability: f32,
    /// The probability of every class, in class order.
    pub probabilities: Vec<f32>,
    /// The three most probable classes, most probable first.
    pub top3: Vec<Candidate>,
    /// Why the answer may be wrong: an unsure model, other marks in the picture.
    pub warnings: Vec<String>,
    /// The 28x28 image the model saw (light ink on black, row-major).
    #[serde(skip)]
    pub input: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub class: Class,
    pub name: String,
    pub probability: f32,
}

/// How a run's model reads images and names its answers.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    pub decoding: Decoding,
    pub classes: &'a [String],
}

/// The image files `inputs` name: files as they are, a folder's images (by their endings, in
/// name order), and the files a glob pattern (`digits/*.png`) matches. What names nothing is
/// an error in its place.
pub fn expand_inputs(inputs: &[PathBuf]) -> Vec<Result<PathBuf, InputError>> {
    let mut files = Vec::new();
    for input in inputs {
        let text = input.to_string_lossy();
        if input.is_dir() {
            let mut images: Vec<PathBuf> = std::fs::read_dir(input)
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.is_file() && has_image_ending(path))
                .collect();
            images.sort();
            if images.is_empty() {
                files.push(Err(InputError::EmptyFolder {
                    path: input.clone(),
                }));
            }
            files.extend(images.into_iter().map(Ok));
        } else if !input.exists() && text.contains(['*', '?', '[']) {
            files.extend(glob_matches(&text));
        } else if input.exists() {
            files.push(Ok(input.clone()));
        } else {
            files.push(Err(InputError::Missing {
                path: input.clone(),
            }));
        }
    }
    files
}

/// The files `pattern` matches, in name order.
fn glob_matches(pattern: &str) -> Vec<Result<PathBuf, InputError>> {
    match glob::glob(pattern) {
        Err(e) => vec![Err(InputError::Pattern {
            pattern: pattern.to_string(),
            message: e.msg.to_string(),
        })],
        Ok(paths) => {
            let mut found: Vec<PathBuf> = paths.flatten().filter(|p| p.is_file()).collect();
            found.sort();
            if found.is_empty() {
                vec![Err(InputError::NoMatch {
                    pattern: pattern.to_string(),
                })]
            } else {
                found.into_iter().map(Ok).collect()
            }
        }
    }
}

/// Classifies each file of `inputs` (see [`expand_inputs`]); what cannot be read is returned
/// as an error in its place, and the rest are still classified.
pub fn predict_files(
    model: &LeNet5,
    inputs: &[PathBuf],
    device: &Device,
    reading: Reading,
) -> Vec<Result<Prediction, InputError>> {
    each_readable(inputs, reading.decoding, |images| {
        predict_prepared(model, images, device, reading.classes)
    })
}

/// `answer` for every file of `inputs` that reads (see [`expand_inputs`]), all at once and in
/// order, prepared as `decoding` says; each file that cannot be read is an error in its place.
pub fn each_readable<T>(
    inputs: &[PathBuf],
    decoding: Decoding,
    answer: impl FnOnce(&[(&Path, &Prepared)]) -> Vec<T>,
) -> Vec<Result<T, InputError>> {
    let prepared: Vec<Result<(PathBuf, Prepared), InputError>> = expand_inputs(inputs)
        .into_iter()
        .map(|file| {
            let file = file?;
            let image = load_image(&file, decoding)?;
            Ok((file, image))
        })
        .collect();
    let readable: Vec<(&Path, &Prepared)> = prepared
        .iter()
        .filter_map(|p| p.as_ref().ok().map(|(f, d)| (f.as_path(), d)))
        .collect();
    let mut answers = answer(&readable).into_iter();
    prepared
        .into_iter()
        .map(|p| p.map(|_| answers.next().expect("one answer per readable image")))
        .collect()
}

/// The model's answers for images already brought to its input form, each named by a file,
/// its classes called by `classes`.
pub fn predict_prepared(
    model: &LeNet5,
    images: &[(&Path, &Prepared)],
    device: &Device,
    classes: &[String],
) -> Vec<Prediction> {
    let pixels: Vec<&[u8]> = images.iter().map(|(_, d)| d.pixels.as_slice()).collect();
    classify(model, &pixels, device)
        .into_iter()
        .zip(images)
        .map(|(probabilities, (file, image))| prediction(file, probabilities, image, classes))
        .collect()
}

fn prediction(
    file: &Path,
    probabilities: Vec<f32>,
    image: &Prepared,
    classes: &[String],
) -> Prediction {
    let mut ranked: Vec<Candidate> = probabilities
        .iter()
        .enumerate()
        .map(|(class, &probability)| Candidate {
            class: class as Class,
            name: class_name(classes, class as Class),
            probability,
        })
        .collect();
    ranked.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    ranked.truncate(3);
    let answer = argmax(&probabilities);
    let name = class_name(classes, answer);
    let probability = probabilities[answer as usize];
    let warnings = doubts(&probabilities, classes, image);
    Prediction {
        file: file.to_path_buf(),
        class: answer,
        name,
        probability,
        probabilities,
        top3: ranked,
        warnings,
        input: image.pixels.clone(),
    }
}

/// Why an answer may be wrong: the model gave it less than [`UNSURE`], or the picture holds
/// other marks besides the one read.
pub fn doubts(probabilities: &[f32], classes: &[String], image: &Prepared) -> Vec<String> {
    let mut ranked: Vec<usize> = (0..probabilities.len()).collect();
    ranked.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
    let mut warnings = Vec::new();
    if let Some(&answer) = ranked.first()
        && probabilities[answer] < UNSURE
    {
        let second = ranked.get(1).map_or(String::new(), |&c| {
            format!(
                ", then {} ({:.0}%)",
                class_name(classes, c as Class),
                probabilities[c] * 100.0
            )
        });
        warnings.push(format!(
            "the model is unsure: {} ({:.0}%){second}",
            class_name(classes, answer as Class),
            probabilities[answer] * 100.0
        ));
    }
    if image.other_marks > 0 {
        warnings.push(format!(
            "the image holds {} other mark{} besides the largest; only that one was read",
            image.other_marks,
            if image.other_marks == 1 { "" } else { "s" }
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(other_marks: usize) -> Prepared {
        Prepared {
            pixels: vec![0; 784],
            other_marks,
        }
    }

    #[test]
    fn top3_is_ranked_and_every_probability_kept() {
        let mut p = vec![0.0; 10];
        p[2] = 0.1;
        p[8] = 0.7;
        p[3] = 0.2;
        let names = crate::data::classes::numbered(10);
        let prediction = prediction(Path::new("x.png"), p.clone(), &prepared(0), &names);
        assert_eq!((prediction.class, prediction.name.as_str()), (8, "8"));
        assert_eq!(prediction.probability, 0.7);
        assert_eq!(prediction.probabilities, p);
        let top: Vec<Class> = prediction.top3.iter().map(|c| c.class).collect();
        assert_eq!(top, vec![8, 3, 2]);
        assert!(prediction.warnings.is_empty());
    }

    #[test]
    fn doubts_are_warned_about() {
        let mut p = vec![0.0; 10];
        p[4] = 0.45;
        p[9] = 0.4;
        let names: Vec<String> = "abcdefghij".chars().map(String::from).collect();
        let prediction = prediction(Path::new("x.png"), p, &prepared(2), &names);
        assert_eq!(prediction.name, "e");
        assert_eq!(
            prediction.warnings,
            [
                "the model is unsure: e (45%), then j (40%)",
                "the image holds 2 other marks besides the largest; only that one was read"
            ]
        );
    }

    #[test]
    fn folders_and_patterns_name_their_images() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.png", "a.JPG", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let inputs = [
            dir.path().to_path_buf(),
            dir.path().join("*.png"),
            dir.path().join("*.gif"),
            empty.clone(),
            dir.path().join("gone.png"),
        ];
        let found: Vec<String> = expand_inputs(&inputs)
            .into_iter()
            .map(|f| match f {
                Ok(path) => path.file_name().unwrap().to_string_lossy().into_owned(),
                Err(e) => e.to_string().replace(&*dir.path().to_string_lossy(), "D"),
            })
            .collect();
        assert_eq!(
            found,
            [
                "a.JPG",
                "b.png",
                "b.png",
                "D/*.gif: matches no file",
                "D/empty: the folder holds no images (png, jpg, jpeg, bmp, webp, tif, tiff, gif, jfif)",
                "D/gone.png: no such file or folder",
            ]
        );
    }
}
