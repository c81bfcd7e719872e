//! One step of training and of validation, as Burn's `Learner` runs them: the model's logits,
//! the cross-entropy loss, and (for training) its gradients.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};

use crate::data::batcher::ImageBatch;
use crate::model::LeNet5;

/// Logits and cross-entropy loss of a batch, in the form Burn's metrics read; `smoothing` is
/// the share of each target spread over all classes.
fn classification(
    model: &LeNet5,
    batch: ImageBatch,
    smoothing: Option<f32>,
) -> ClassificationOutput {
    let logits = model.forward(batch.images);
    let loss = CrossEntropyLossConfig::new()
        .with_smoothing(smoothing)
        .init(&logits.device())
        .forward(logits.clone(), batch.targets.clone());
    ClassificationOutput::new(loss, logits, batch.targets)
}

/// A training step whose loss smooths the targets by `smoothing` (the config's
/// `label_smoothing`). Burn's `TrainStep` takes nothing but the batch, and the smoothing is
/// training's setting, not the model's, so lenet's loop calls this rather than give the model
/// a field it would only carry for training.
pub fn train_step(
    model: &LeNet5,
    batch: ImageBatch,
    smoothing: Option<f32>,
) -> TrainOutput<ClassificationOutput> {
    let output = classification(model, batch, smoothing);
    TrainOutput::new(model, output.loss.backward(), output)
}

impl TrainStep for LeNet5 {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        train_step(self, batch, None)
    }
}

impl InferenceStep for LeNet5 {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        classification(self, batch, None)
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use burn::tensor::Distribution;
    use burn::tensor::activation::log_softmax;

    use super::*;
    use crate::model::LeNet5Config;

    #[test]
    fn smoothing_spreads_that_share_of_each_target_over_the_classes() {
        let device = Device::default().autodiff();
        // An untrained model's logits are close to uniform, and the closer they are the less
        // smoothing changes the loss (unseeded and unscaled, it sometimes changed it by less
        // than this test's threshold): F7's weights scaled up spread them.
        device.seed(11);
        let mut model = LeNet5Config::new().init(&device);
        let f7 = model.f7.take().expect("the modern network's linear output");
        let scaled = Tensor::<2>::from_data((f7.weight.val() * 50.0).into_data(), &device);
        let weight = burn::module::Param::from_tensor(scaled);
        model.f7 = Some(burn::nn::Linear { weight, ..f7 });
        let images = Tensor::<4>::random([6, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
        let labels = vec![0i64, 3, 9, 3, 7, 1];
        let targets = Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [6]), &device);
        let log_probs = log_softmax(model.forward(images.clone()), 1)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let loss = |smoothing| {
            let batch = ImageBatch {
                images: images.clone(),
                targets: targets.clone(),
            };
            let output = train_step(&model, batch, smoothing);
            output.item.loss.into_scalar::<f32>()
        };
        let expected = |alpha: f32| {
            let per_image = log_probs.chunks(10).zip(&labels).map(|(row, &label)| {
                row.iter()
                    .enumerate()
                    .map(|(class, lp)| {
                        let target = if class as i64 == label {
                            1.0 - alpha
                        } else {
                            0.0
                        };
                        -(target + alpha / 10.0) * lp
                    })
                    .sum::<f32>()
            });
            per_image.sum::<f32>() / labels.len() as f32
        };
        let (plain, smoothed) = (loss(None), loss(Some(0.2)));
        assert!(
            (plain - expected(0.0)).abs() < 1e-4,
            "{plain} vs {}",
            expected(0.0)
        );
        assert!(
            (smoothed - expected(0.2)).abs() < 1e-4,
            "{smoothed} vs {}",
            expected(0.2)
        );
        assert!(
            (smoothed - plain).abs() > 1e-3,
            "smoothing changed little: {plain} vs {smoothed}"
        );
    }
}
