//! An exponential moving average of the weights over training's steps (`ema` in the config):
//! the model a run validates, keeps and saves when it is asked for. Averaging the last few
//! thousand steps' weights smooths out the noise of the last batches, which a single set of
//! weights carries. Burn 0.22 has no weight averaging, so it is written here: a visitor reads the
//! trained weights, a mapper blends them into the average, parameter by parameter.

use std::collections::VecDeque;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

use crate::model::LeNet5;

/// The average and how fast it forgets.
#[derive(Debug, Clone)]
pub struct WeightAverage {
    decay: f64,
    model: LeNet5,
}

impl WeightAverage {
    /// Starts the average at `model`'s weights (without autodiff), or continues `model` as an
    /// average a checkpoint saved.
    pub fn new(model: LeNet5, decay: f64) -> Self {
        Self {
            decay,
            model: model.valid(),
        }
    }

    /// Blends in the weights `trained` has after optimizer step `step` (counted from 1). Early
    /// on the decay is lower, `(1 + step) / (10 + step)` at most, so that the first steps'
    /// average is not mostly the random initial weights.
    pub fn update(&mut self, trained: &LeNet5, step: usize) {
        let decay = self.decay.min((1.0 + step as f64) / (10.0 + step as f64));
        let mut current = Weights::default();
        trained.visit(&mut current);
        let mut blend = Blend {
            decay,
            current: current.0,
        };
        self.model = self.model.clone().map(&mut blend);
    }

    pub fn model(&self) -> &LeNet5 {
        &self.model
    }
}

/// Each float parameter's value, flattened, in the order the module visits them: the order
/// the mapper meets the average's, the two being one network. (Not by parameter id: a model
/// loaded from a record need not keep the ids of the one it was saved from.)
#[derive(Default)]
struct Weights(VecDeque<Tensor<1>>);

impl ModuleVisitor for Weights {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push_back(param.val().valid().flatten(0, D - 1));
    }
}

/// `decay * average + (1 - decay) * current`, for every float parameter.
struct Blend {
    decay: f64,
    current: VecDeque<Tensor<1>>,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let current = self
            .current
            .pop_front()
            .expect("the average and the trained model are one network");
        let decay = self.decay;
        param.map(|average| {
            let shape = average.shape();
            average * decay + current.reshape(shape) * (1.0 - decay)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LeNet5Config;

    fn first_weight(model: &LeNet5) -> f32 {
        model
            .f6
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()[0]
    }

    /// Two networks of fresh weights, and an average started at the first with `decay` after
    /// the second was blended in at optimizer step `step`.
    fn blended_once(decay: f64, step: usize) -> (LeNet5, LeNet5, WeightAverage) {
        let device = Device::default();
        let start = LeNet5Config::new().init(&device);
        let trained = LeNet5Config::new().init(&device);
        let mut average = WeightAverage::new(start.clone(), decay);
        average.update(&trained, step);
        (start, trained, average)
    }

    #[test]
    fn the_average_moves_towards_the_trained_weights_by_one_minus_decay() {
        // Late in a run the warm-up no longer caps the decay: 0.9 applies.
        let (start, trained, average) = blended_once(0.9, 1000);
        let (a, t) = (first_weight(&start), first_weight(&trained));
        let expected = 0.9 * a + 0.1 * t;
        assert!((first_weight(average.model()) - expected).abs() < 1e-6);
        // Every parameter is blended, biases too.
        let bias = |m: &LeNet5| {
            m.c1.bias
                .as_ref()
                .unwrap()
                .val()
                .into_data()
                .try_to_vec::<f32>()
        };
        let (a, t, got) = (
            bias(&start).unwrap(),
            bias(&trained).unwrap(),
            bias(average.model()).unwrap(),
        );
        for i in 0..a.len() {
            assert!((got[i] - (0.9 * a[i] + 0.1 * t[i])).abs() < 1e-6);
        }
    }

    #[test]
    fn early_steps_weigh_the_trained_weights_more() {
        // Step 1: decay (1 + 1) / (10 + 1) = 2/11, not 0.999.
        let (start, trained, average) = blended_once(0.999, 1);
        let (a, t) = (first_weight(&start), first_weight(&trained));
        let expected = (2.0 / 11.0) * a + (9.0 / 11.0) * t;
        assert!((first_weight(average.model()) - expected).abs() < 1e-6);
    }
}
