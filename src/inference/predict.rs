//! `lenet predict`: a run's model on people's image files, each brought to the model's input
//! form by [`crate::data::image`].

use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::Serialize;

use super::{argmax, classify};
use crate::data::image::{ImageError, load_digit};
use crate::model::LeNet5;

/// The model's answer for one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub file: PathBuf,
    pub digit: u8,
    pub probability: f32,
    /// The three most probable digits, most probable first.
    pub top3: Vec<Candidate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Candidate {
    pub digit: u8,
    pub probability: f32,
}

/// Classifies each file; files that cannot be read or decoded are returned as errors, in place.
pub fn predict_files(
    model: &LeNet5,
    files: &[PathBuf],
    device: &Device,
) -> Vec<Result<Prediction, ImageError>> {
    let digits: Vec<Result<Vec<u8>, ImageError>> = files.iter().map(|f| load_digit(f)).collect();
    let readable: Vec<&[u8]> = digits
        .iter()
        .filter_map(|d| d.as_ref().ok().map(Vec::as_slice))
        .collect();
    let mut probabilities = classify(model, &readable, device).into_iter();
    files
        .iter()
        .zip(digits)
        .map(|(file, digit)| {
            digit.map(|_| {
                let p = probabilities.next().expect("one result per readable image");
                prediction(file, &p)
            })
        })
        .collect()
}

fn prediction(file: &Path, probabilities: &[f32]) -> Prediction {
    let mut ranked: Vec<Candidate> = probabilities
        .iter()
        .enumerate()
        .map(|(digit, &probability)| Candidate {
            digit: digit as u8,
            probability,
        })
        .collect();
    ranked.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    ranked.truncate(3);
    let digit = argmax(probabilities);
    Prediction {
        file: file.to_path_buf(),
        digit,
        probability: probabilities[digit as usize],
        top3: ranked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top3_is_ranked() {
        let mut p = [0.0; 10];
        p[2] = 0.1;
        p[8] = 0.7;
        p[3] = 0.2;
        let prediction = prediction(Path::new("x.png"), &p);
        assert_eq!(prediction.digit, 8);
        assert_eq!(prediction.probability, 0.7);
        let top: Vec<u8> = prediction.top3.iter().map(|c| c.digit).collect();
        assert_eq!(top, vec![8, 3, 2]);
    }
}
