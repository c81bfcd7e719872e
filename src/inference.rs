//! Running a trained model over a dataset: predictions, accuracy and loss.

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;

use crate::data::{MnistBatcher, MnistDataset};
use crate::model::LeNet5;

/// The model's answers on a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub labels: Vec<u8>,
    pub predictions: Vec<u8>,
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
}

/// Classifies every image of `dataset` with `model` (in inference mode) on `device`.
pub fn evaluate(
    model: &LeNet5,
    dataset: MnistDataset,
    batch_size: usize,
    device: &Device,
) -> Result<Evaluation, burn::data::dataset::DatasetError> {
    let model = model.valid();
    let labels: Vec<u8> = dataset.labels().collect();
    let images = dataset.len();
    let loader = DataLoaderBuilder::new(MnistBatcher)
        .batch_size(batch_size)
        .set_device(device.clone())
        .build(dataset);
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut predictions = Vec::with_capacity(images);
    let mut loss_sum = 0.0;
    for batch in loader.iter() {
        let batch = batch?;
        let count = batch.targets.dims()[0];
        let logits = model.forward(batch.images);
        let loss = loss_fn.forward(logits.clone(), batch.targets);
        loss_sum += loss.into_scalar::<f64>() * count as f64;
        let predicted = logits.argmax(1).into_data();
        predictions.extend(predicted.iter::<i64>().map(|p| p as u8));
    }
    Ok(Evaluation {
        labels,
        predictions,
        loss: loss_sum / images.max(1) as f64,
    })
}
