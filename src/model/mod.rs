//! LeNet-5 as a Burn module.
//!
//! The layers follow the table of `docs/design.md` (LeCun et al. 1998 with the usual modern
//! simplifications): the 28x28 digit is padded by 2 to the paper's 32x32, then
//!
//! | layer | kind                    | output   | parameters |
//! |-------|-------------------------|----------|-----------:|
//! | C1    | conv 5x5, 6 maps        | 6x28x28  |        156 |
//! | S2    | 2x2 pool                | 6x14x14  |          0 |
//! | C3    | conv 5x5, 16 maps       | 16x10x10 |      2,416 |
//! | S4    | 2x2 pool                | 16x5x5   |          0 |
//! | C5    | conv 5x5, 120 maps      | 120x1x1  |     48,120 |
//! | F6    | dense 120 -> 84         | 84       |     10,164 |
//! | F7    | dense 84 -> 10 (logits) | 10       |        850 |
//!
//! 61,706 parameters in all. The `lecun98` variant is the paper's own network instead: scaled
//! tanh, trainable subsampling in S2 and S4 (12 and 32 parameters), C3 wired by the paper's
//! Table I (1,516), the paper's input scaling, and RBF output units with fixed prototypes:
//! 60,000 trainable parameters (see [`lecun98`]).
//!
//! The model knows nothing of data, training or the command line: it takes normalised images
//! (see [`crate::input`]) and gives logits. [`layers`] describes it for people; its
//! convolutions and pools run through [`crate::kernels`].

pub mod layers;
pub mod lecun98;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use crate::kernels;
use lecun98::TrainableSubsampling;

/// The non-linearity after C1, C3, C5 and F6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationKind {
    #[default]
    Relu,
    Tanh,
    /// The paper's 1.7159 tanh(2a/3).
    ScaledTanh,
}

impl std::fmt::Display for ActivationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ActivationKind::Relu => "relu",
            ActivationKind::Tanh => "tanh",
            ActivationKind::ScaledTanh => "scaled tanh",
        })
    }
}

/// Which LeNet-5: the modern simplification, or the paper's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    #[default]
    Modern,
    /// LeCun et al. 1998: paper input scaling, C3 connection table, paper initialisation.
    Lecun98,
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Variant::Modern => "modern",
            Variant::Lecun98 => "lecun98",
        })
    }
}

/// The output layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// A dense layer 84 -> 10 giving logits.
    #[default]
    Linear,
    /// The paper's Euclidean RBF units with fixed prototypes; logits are minus the distances.
    Rbf,
}

/// The subsampling of S2 and S4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolingKind {
    #[default]
    Max,
    Avg,
    /// The paper's: 2x2 sum times a trainable coefficient plus a trainable bias, per map.
    Trainable,
}

impl std::fmt::Display for PoolingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PoolingKind::Max => "max",
            PoolingKind::Avg => "avg",
            PoolingKind::Trainable => "trainable",
        })
    }
}

#[derive(Config, Debug)]
pub struct LeNet5Config {
    #[config(default = "Variant::Modern")]
    pub variant: Variant,
    #[config(default = "ActivationKind::Relu")]
    pub activation: ActivationKind,
    #[config(default = "PoolingKind::Max")]
    pub pooling: PoolingKind,
    #[config(default = "OutputKind::Linear")]
    pub output: OutputKind,
    /// Units of the output layer, one per class. The paper's RBF units exist for the ten
    /// digits only.
    #[config(default = 10)]
    pub num_classes: usize,
}

impl LeNet5Config {
    /// A variant with its own activation, pooling and output: the modern network's relu, max
    /// pooling and dense output, or the paper's scaled tanh, trainable subsampling and RBF units.
    pub fn for_variant(variant: Variant) -> Self {
        match variant {
            Variant::Modern => Self::new(),
            Variant::Lecun98 => Self::new()
                .with_variant(Variant::Lecun98)
                .with_activation(ActivationKind::ScaledTanh)
                .with_pooling(PoolingKind::Trainable)
                .with_output(OutputKind::Rbf),
        }
    }
}

/// A 2x2, stride-2 subsampling layer (S2, S4).
#[derive(Module, Debug)]
pub enum Subsampling {
    Max(MaxPool2d),
    Avg(AvgPool2d),
    Trainable(TrainableSubsampling),
}

impl Subsampling {
    fn new(kind: PoolingKind, maps: usize, device: &Device) -> Self {
        match kind {
            PoolingKind::Max => Subsampling::Max(MaxPool2dConfig::new([2, 2]).init()),
            PoolingKind::Avg => Subsampling::Avg(AvgPool2dConfig::new([2, 2]).init()),
            PoolingKind::Trainable => {
                Subsampling::Trainable(TrainableSubsampling::new(maps, device))
            }
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Subsampling::Max(pool) => kernels::max_pool(x, pool),
            Subsampling::Avg(pool) => pool.forward(x),
            Subsampling::Trainable(layer) => layer.forward(x),
        }
    }
}

/// LeNet-5. Field names are the paper's layer names.
#[derive(Module, Debug)]
pub struct LeNet5 {
    pub c1: Conv2d,
    pub s2: Subsampling,
    pub c3: Conv2d,
    pub s4: Subsampling,
    pub c5: Conv2d,
    pub f6: Linear,
    /// The dense output layer; `None` when the output is the paper's RBF units, which have no
    /// trainable parameters.
    pub f7: Option<Linear>,
    #[module(skip)]
    pub activation: ActivationKind,
    #[module(skip)]
    pub variant: Variant,
}

impl LeNet5Config {
    pub fn init(&self, device: &Device) -> LeNet5 {
        let paper = self.variant == Variant::Lecun98;
        let conv = |channels: [usize; 2]| {
            let config = Conv2dConfig::new(channels, [5, 5]);
            if paper {
                config.with_initializer(lecun98::initializer(channels[0] * 25))
            } else {
                config
            }
        };
        let dense = |input: usize, output: usize| {
            let config = LinearConfig::new(input, output);
            if paper {
                config.with_initializer(lecun98::initializer(input))
            } else {
                config
            }
        };
        LeNet5 {
            // The modern variant pads the 28x28 digit by 2 with zeros, giving the paper's 32x32;
            // the paper's variant pads with its background value before C1 instead.
            c1: if paper {
                conv([1, 6]).init(device)
            } else {
                conv([1, 6])
                    .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                    .init(device)
            },
            s2: Subsampling::new(self.pooling, 6, device),
            c3: conv([6, 16]).init(device),
            s4: Subsampling::new(self.pooling, 16, device),
            c5: conv([16, 120]).init(device),
            f6: dense(120, 84).init(device),
            f7: (self.output == OutputKind::Linear)
                .then(|| dense(84, self.num_classes).init(device)),
            activation: self.activation,
            variant: self.variant,
        }
    }
}

impl LeNet5 {
    /// Class logits `[batch, 10]` for normalised images `[batch, 1, 28, 28]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_observed(images, |_, _| {})
    }

    /// The forward pass, telling `observe` each layer's name and output dimensions.
    pub(super) fn forward_observed(
        &self,
        images: Tensor<4>,
        mut observe: impl FnMut(&'static str, &[usize]),
    ) -> Tensor<2> {
        let paper = self.variant == Variant::Lecun98;
        let images = if paper {
            lecun98::paper_input(images)
        } else {
            images
        };
        let x = self.activate(kernels::conv2d(images, &self.c1));
        observe("c1", &x.dims());
        let x = self.subsample(&self.s2, x);
        observe("s2", &x.dims());
        let x = if paper {
            // Table I: C3 sees only some S2 maps. Masking the weights (not the output) keeps the
            // layer a plain convolution with zero gradients where there is no connection.
            let weight = self.c3.weight.val() * lecun98::c3_mask(&x.device());
            let bias = self.c3.bias.as_ref().expect("C3 has a bias").val();
            kernels::conv2d_stride1(x, weight, bias, [0, 0])
        } else {
            kernels::conv2d(x, &self.c3)
        };
        let x = self.activate(x);
        observe("c3", &x.dims());
        let x = self.subsample(&self.s4, x);
        observe("s4", &x.dims());
        let x = self.activate(kernels::conv2d(x, &self.c5));
        observe("c5", &x.dims());
        let x: Tensor<2> = x.flatten(1, 3);
        let x = self.activate(self.f6.forward(x));
        observe("f6", &x.dims());
        let logits = match &self.f7 {
            Some(linear) => linear.forward(x),
            None => lecun98::rbf_distances(x).mul_scalar(-lecun98::RBF_SHARPNESS),
        };
        observe("f7", &logits.dims());
        logits
    }

    /// This model with the layers of `source` (same variant and pooling), except those named in
    /// `keep`, which stay as they are.
    pub fn with_layers_of(mut self, source: LeNet5, keep: &[String]) -> Self {
        let take = |name: &str| !keep.iter().any(|k| k == name);
        if take("c1") {
            self.c1 = source.c1;
        }
        if take("s2") {
            self.s2 = source.s2;
        }
        if take("c3") {
            self.c3 = source.c3;
        }
        if take("s4") {
            self.s4 = source.s4;
        }
        if take("c5") {
            self.c5 = source.c5;
        }
        if take("f6") {
            self.f6 = source.f6;
        }
        if take("f7") {
            self.f7 = source.f7;
        }
        self
    }

    /// S2 or S4; the paper's trainable subsampling is followed by the activation like any unit.
    fn subsample(&self, layer: &Subsampling, x: Tensor<4>) -> Tensor<4> {
        match layer {
            Subsampling::Trainable(_) => self.activate(layer.forward(x)),
            _ => layer.forward(x),
        }
    }

    fn activate<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self.activation {
            ActivationKind::Relu => relu(x),
            ActivationKind::Tanh => kernels::scaled_tanh(x, 1.0, 1.0),
            ActivationKind::ScaledTanh => lecun98::scaled_tanh(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::BackendKind;

    fn device() -> Device {
        BackendKind::preferred().device().unwrap()
    }

    #[test]
    fn default_model_has_the_designs_parameter_count() {
        let model = LeNet5Config::new().init(&device());
        assert_eq!(model.num_params(), 61_706);
        let per_layer = [
            model.c1.num_params(),
            model.c3.num_params(),
            model.c5.num_params(),
            model.f6.num_params(),
            model.f7.as_ref().unwrap().num_params(),
        ];
        assert_eq!(per_layer, [156, 2_416, 48_120, 10_164, 850]);
    }

    #[test]
    fn pooling_and_activation_add_no_parameters() {
        for pooling in [PoolingKind::Max, PoolingKind::Avg] {
            for activation in [ActivationKind::Relu, ActivationKind::Tanh] {
                let model = LeNet5Config::new()
                    .with_pooling(pooling)
                    .with_activation(activation)
                    .init(&device());
                assert_eq!(model.num_params(), 61_706, "{pooling:?} {activation:?}");
            }
        }
    }

    #[test]
    fn each_layer_has_the_designs_output_shape() {
        let model = LeNet5Config::new().init(&device());
        let shapes = model.layer_shapes(&device());
        let expected: Vec<(&str, Vec<usize>)> = vec![
            ("c1", vec![6, 28, 28]),
            ("s2", vec![6, 14, 14]),
            ("c3", vec![16, 10, 10]),
            ("s4", vec![16, 5, 5]),
            ("c5", vec![120, 1, 1]),
            ("f6", vec![84]),
            ("f7", vec![10]),
        ];
        assert_eq!(shapes, expected);
    }

    #[test]
    fn layer_table_matches_the_design() {
        let model = LeNet5Config::new().init(&device());
        let rows: Vec<(&str, String, usize)> = model
            .layers(&device())
            .into_iter()
            .map(|l| (l.name, l.kind, l.parameters))
            .collect();
        let expected = [
            ("c1", "conv 5x5, 1->6, padding 2, relu", 156),
            ("s2", "max pool 2x2", 0),
            ("c3", "conv 5x5, 6->16, relu", 2_416),
            ("s4", "max pool 2x2", 0),
            ("c5", "conv 5x5, 16->120, relu", 48_120),
            ("f6", "dense 120->84, relu", 10_164),
            ("f7", "dense 84->10", 850),
        ];
        let expected: Vec<(&str, String, usize)> = expected
            .into_iter()
            .map(|(n, k, p)| (n, k.to_string(), p))
            .collect();
        assert_eq!(rows, expected);
    }

    fn lecun98() -> LeNet5Config {
        LeNet5Config::for_variant(Variant::Lecun98)
    }

    #[test]
    fn lecun98_has_the_papers_trainable_parameters() {
        let model = lecun98().init(&device());
        let rows: Vec<(&str, usize)> = model
            .layers(&device())
            .into_iter()
            .map(|l| (l.name, l.parameters))
            .collect();
        assert_eq!(
            rows,
            [
                ("c1", 156),
                ("s2", 12),
                ("c3", 1_516),
                ("s4", 32),
                ("c5", 48_120),
                ("f6", 10_164),
                ("f7", 0),
            ]
        );
        assert_eq!(model.trainable_params(), 60_000);
        let shapes: Vec<Vec<usize>> = model
            .layer_shapes(&device())
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        let modern: Vec<Vec<usize>> = LeNet5Config::new()
            .init(&device())
            .layer_shapes(&device())
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        assert_eq!(shapes, modern);
    }

    #[test]
    fn c3_weights_outside_table_one_get_no_gradient() {
        let device = device().autodiff();
        device.seed(3);
        let model = lecun98().init(&device);
        let images = Tensor::<4>::random(
            [4, 1, 28, 28],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let grads = model.forward(images).sum().backward();
        let grad: Vec<f32> = model
            .c3
            .weight
            .grad(&grads)
            .unwrap()
            .into_data()
            .iter::<f32>()
            .collect();
        let mask: Vec<f32> = lecun98::c3_mask(&device.clone().inner())
            .into_data()
            .iter::<f32>()
            .collect();
        for (g, m) in grad.iter().zip(&mask) {
            if *m == 0.0 {
                assert_eq!(*g, 0.0);
            }
        }
        let connected = grad
            .iter()
            .zip(&mask)
            .filter(|(g, m)| **m == 1.0 && **g != 0.0);
        assert!(connected.count() > 1_000, "connected weights learn");
    }

    #[test]
    fn forward_gives_logits_per_image() {
        let model = LeNet5Config::new().init(&device());
        let logits = model.forward(Tensor::zeros([3, 1, 28, 28], &device()));
        assert_eq!(logits.dims(), [3, 10]);
    }

    #[test]
    fn activation_changes_the_output() {
        let device = device();
        device.seed(1);
        let relu_model = LeNet5Config::new().init(&device);
        let mut tanh_model = relu_model.clone();
        tanh_model.activation = ActivationKind::Tanh;
        let images = Tensor::<4>::ones([1, 1, 28, 28], &device);
        let a = relu_model.forward(images.clone()).into_data();
        let b = tanh_model.forward(images).into_data();
        assert_ne!(a, b);
    }
}
