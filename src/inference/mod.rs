//! Using a trained model: running it over a data set (predictions, probabilities, loss) and
//! over images already in the model's 28x28 form, and the commands built on that: [`eval`]
//! (a finished run on its test set), [`predict`] (people's image files), [`export`] (the model
//! for other frameworks and runtimes) and [`import`] (weights trained elsewhere, as a run).

pub mod eval;
pub mod explain;
pub mod export;
pub mod import;
pub mod predict;

use std::path::PathBuf;

use burn::data::dataloader::DataLoaderBuilder;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::activation::softmax;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use thiserror::Error;

use crate::config::ConfigError;
use crate::data::Class;
use crate::data::batcher::{ImageBatcher, images_tensor};
use crate::data::classes::class_name;
use crate::data::error::DataError;
use crate::data::split::ImageSplit;
use crate::device::NotCompiled;
use crate::model::LeNet5;
use crate::report::eval_report::csv_cell;
use crate::report::plots::PlotError;
use crate::report::{EvalReport, Mistake};
use crate::run::RunError;
use export::ExportError;

/// What can stop `eval`, `export` or `import`, each in one line naming what is wrong.
#[derive(Debug, Error)]
pub enum InferenceError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Device(#[from] NotCompiled),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("evaluation failed: {0}")]
    Evaluation(String),
    #[error("{}: {problem}", file.display())]
    Import { file: PathBuf, problem: String },
}

impl InferenceError {
    /// Whether the error is in what the user asked for rather than met while doing it.
    pub fn is_usage(&self) -> bool {
        match self {
            InferenceError::Config(_) | InferenceError::Device(_) => true,
            InferenceError::Run(error) => error.is_usage(),
            InferenceError::Data(error) => error.is_usage(),
            _ => false,
        }
    }
}

/// Class probabilities of one image, one per class.
pub type Probabilities = Vec<f32>;

/// The model's answers on a dataset, image by image in dataset order.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub labels: Vec<Class>,
    pub predictions: Vec<Class>,
    pub probabilities: Vec<Probabilities>,
    /// Mean cross-entropy over all images.
    pub loss: f64,
}

impl Evaluation {
    pub fn images(&self) -> usize {
        self.labels.len()
    }

    pub fn correct(&self) -> usize {
        self.labels
            .iter()
            .zip(&self.predictions)
            .filter(|(label, prediction)| label == prediction)
            .count()
    }

    /// Fraction of images classified correctly, 0..1.
    pub fn accuracy(&self) -> f64 {
        self.correct() as f64 / self.images().max(1) as f64
    }

    /// The report people read: accuracy, per-class precision and recall, confusion matrix,
    /// the classes called by `names`.
    pub fn report(&self, names: &[String]) -> EvalReport {
        EvalReport::new(names, &self.labels, &self.predictions, self.loss)
    }

    /// Every image's answer, one CSV row each: its index in the data set, its label, the
    /// model's answer and the probability given to that answer, the two classes' `names`, and
    /// the file the image was read from (for image folders; empty for IDX files).
    pub fn predictions_csv<'a>(
        &self,
        names: &[String],
        file: impl Fn(usize) -> Option<&'a std::path::Path>,
    ) -> String {
        let mut csv =
            String::from("index,label,predicted,probability,label_name,predicted_name,file\n");
        for (i, (label, predicted)) in self.labels.iter().zip(&self.predictions).enumerate() {
            let probability = self.probabilities[i][*predicted as usize];
            let name = |class: Class| csv_cell(&class_name(names, class));
            let file = file(i).map_or(String::new(), |f| csv_cell(&f.to_string_lossy()));
            csv += &format!(
                "{i},{label},{predicted},{probability},{},{},{file}\n",
                name(*label),
                name(*predicted)
            );
        }
        csv
    }

    /// The `count` mistakes the model was most confident about, most confident first.
    pub fn worst_mistakes(&self, count: usize) -> Vec<Mistake> {
        let mut mistakes: Vec<Mistake> = (0..self.images())
            .filter(|&i| self.labels[i] != self.predictions[i])
            .map(|i| Mistake {
                index: i,
                label: self.labels[i],
                predicted: self.predictions[i],
                confidence: self.probabilities[i][self.predictions[i] as usize],
            })
            .collect();
        mistakes.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        mistakes.truncate(count);
        mistakes
    }
}

/// Classifies every image of `dataset` with `model` (in inference mode) on `device`, with a
/// progress bar on stderr when `progress` is set and stderr is a terminal.
pub fn evaluate(
    model: &LeNet5,
    dataset: ImageSplit,
    batch_size: usize,
    device: &Device,
    progress: bool,
) -> Result<Evaluation, burn::data::dataset::DatasetError> {
    let model = model.valid();
    let labels: Vec<Class> = dataset.labels().collect();
    let images = dataset.len();
    let loader = DataLoaderBuilder::new(ImageBatcher)
        .batch_size(batch_size)
        .set_device(device.clone())
        .build(dataset);
    let bar = progress_bar(images as u64, progress);
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut probabilities = Vec::with_capacity(images);
    let mut loss_sum = 0.0;
    for batch in loader.iter() {
        let batch = batch?;
        let count = batch.targets.dims()[0];
        let logits = model.forward(batch.images);
        let loss = loss_fn.forward(logits.clone(), batch.targets);
        loss_sum += loss.into_scalar::<f64>() * count as f64;
        probabilities.extend(to_probabilities(logits));
        bar.inc(count as u64);
    }
    bar.finish_and_clear();
    Ok(Evaluation {
        labels,
        predictions: probabilities.iter().map(|p| argmax(p)).collect(),
        probabilities,
        loss: loss_sum / images.max(1) as f64,
    })
}

/// Class probabilities for 28x28 greyscale images (white ink on black, as in MNIST).
pub fn classify(model: &LeNet5, images: &[&[u8]], device: &Device) -> Vec<Probabilities> {
    if images.is_empty() {
        return Vec::new();
    }
    let logits = model
        .valid()
        .forward(images_tensor(images.iter().copied(), device));
    to_probabilities(logits)
}

/// The most probable class.
pub fn argmax(probabilities: &[f32]) -> Class {
    probabilities
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(class, _)| class as Class)
}

fn to_probabilities(logits: Tensor<2>) -> Vec<Probabilities> {
    let [_, classes] = logits.dims();
    let values: Vec<f32> = softmax(logits, 1).into_data().iter::<f32>().collect();
    values.chunks_exact(classes).map(<[f32]>::to_vec).collect()
}

fn progress_bar(len: u64, visible: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(len),
        if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("evaluating [{bar:30}] {pos}/{len} images")
            .expect("progress template is valid")
            .progress_chars("=> "),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluation() -> Evaluation {
        let mut confident = vec![0.0; 10];
        confident[7] = 0.9;
        let mut unsure = vec![0.0; 10];
        unsure[3] = 0.6;
        let mut right = vec![0.0; 10];
        right[1] = 0.99;
        Evaluation {
            labels: vec![1, 2, 5],
            predictions: vec![1, 3, 7],
            probabilities: vec![right, unsure, confident],
            loss: 0.5,
        }
    }

    #[test]
    fn accuracy_counts_matches() {
        let e = evaluation();
        assert_eq!((e.images(), e.correct()), (3, 1));
        assert!((e.accuracy() - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn worst_mistakes_come_most_confident_first() {
        let mistakes = evaluation().worst_mistakes(5);
        let summary: Vec<(usize, Class, Class)> = mistakes
            .iter()
            .map(|m| (m.index, m.label, m.predicted))
            .collect();
        assert_eq!(summary, vec![(2, 5, 7), (1, 2, 3)]);
        assert_eq!(mistakes[0].confidence, 0.9);
        assert_eq!(evaluation().worst_mistakes(1).len(), 1);
    }

    #[test]
    fn argmax_picks_the_largest() {
        let mut p = vec![0.05; 10];
        p[4] = 0.5;
        assert_eq!(argmax(&p), 4);
    }
}
