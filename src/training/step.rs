//! One step of training and of validation, as Burn's `Learner` runs them: the model's logits,
//! the cross-entropy loss, and (for training) its gradients.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};

use crate::data::batcher::ImageBatch;
use crate::model::LeNet5;

/// Logits and cross-entropy loss of a batch, in the form Burn's metrics read.
fn classification(model: &LeNet5, batch: ImageBatch) -> ClassificationOutput {
    let logits = model.forward(batch.images);
    let loss = CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits.clone(), batch.targets.clone());
    ClassificationOutput::new(loss, logits, batch.targets)
}

impl TrainStep for LeNet5 {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        let output = classification(self, batch);
        TrainOutput::new(self, output.loss.backward(), output)
    }
}

impl InferenceStep for LeNet5 {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        classification(self, batch)
    }
}
