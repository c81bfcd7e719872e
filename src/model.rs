//! LeNet-5 as a Burn module.
//!
//! The layers follow the design's table (LeCun et al. 1998 with the usual modern
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
//! 61,706 parameters in all.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{relu, tanh};
use serde::{Deserialize, Serialize};

use crate::idx::NUM_CLASSES;

/// The non-linearity after C1, C3, C5 and F6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivationKind {
    #[default]
    Relu,
    Tanh,
}

impl std::fmt::Display for ActivationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ActivationKind::Relu => "relu",
            ActivationKind::Tanh => "tanh",
        })
    }
}

/// The subsampling of S2 and S4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolingKind {
    #[default]
    Max,
    Avg,
}

impl std::fmt::Display for PoolingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PoolingKind::Max => "max",
            PoolingKind::Avg => "avg",
        })
    }
}

#[derive(Config, Debug)]
pub struct LeNet5Config {
    #[config(default = "ActivationKind::Relu")]
    pub activation: ActivationKind,
    #[config(default = "PoolingKind::Max")]
    pub pooling: PoolingKind,
}

/// A 2x2, stride-2 subsampling layer (S2, S4).
#[derive(Module, Debug)]
pub enum Subsampling {
    Max(MaxPool2d),
    Avg(AvgPool2d),
}

impl Subsampling {
    fn new(kind: PoolingKind) -> Self {
        match kind {
            PoolingKind::Max => Subsampling::Max(MaxPool2dConfig::new([2, 2]).init()),
            PoolingKind::Avg => Subsampling::Avg(AvgPool2dConfig::new([2, 2]).init()),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Subsampling::Max(pool) => pool.forward(x),
            Subsampling::Avg(pool) => pool.forward(x),
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
    pub f7: Linear,
    #[module(skip)]
    pub activation: ActivationKind,
}

impl LeNet5Config {
    pub fn init(&self, device: &Device) -> LeNet5 {
        let conv = |channels: [usize; 2]| Conv2dConfig::new(channels, [5, 5]);
        LeNet5 {
            // Padding 2 turns the 28x28 digit into the paper's 32x32 input.
            c1: conv([1, 6])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(device),
            s2: Subsampling::new(self.pooling),
            c3: conv([6, 16]).init(device),
            s4: Subsampling::new(self.pooling),
            c5: conv([16, 120]).init(device),
            f6: LinearConfig::new(120, 84).init(device),
            f7: LinearConfig::new(84, NUM_CLASSES).init(device),
            activation: self.activation,
        }
    }
}

/// One row of the per-layer table: what a reader of the design expects to see.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerInfo {
    pub name: &'static str,
    pub kind: String,
    /// Output shape for one image (no batch dimension).
    pub output: Vec<usize>,
    pub parameters: usize,
}

impl LeNet5 {
    /// Every layer with its kind, output shape and parameter count, in the order data flows.
    pub fn layers(&self, device: &Device) -> Vec<LayerInfo> {
        let activation = self.activation;
        let conv = |c: &Conv2d| {
            let [out, input, kh, kw] = c.weight.dims();
            let padding = match c.padding {
                PaddingConfig2d::Explicit(top, ..) if top > 0 => format!(", padding {top}"),
                _ => String::new(),
            };
            (
                format!("conv {kh}x{kw}, {input}->{out}{padding}, {activation}"),
                c.num_params(),
            )
        };
        let pool = |s: &Subsampling| {
            let kind = match s {
                Subsampling::Max(_) => "max",
                Subsampling::Avg(_) => "avg",
            };
            (format!("{kind} pool 2x2"), 0)
        };
        let dense = |l: &Linear, activation: Option<ActivationKind>| {
            let [input, out] = l.weight.dims();
            let activation = activation.map_or(String::new(), |a| format!(", {a}"));
            (format!("dense {input}->{out}{activation}"), l.num_params())
        };
        let described = [
            conv(&self.c1),
            pool(&self.s2),
            conv(&self.c3),
            pool(&self.s4),
            conv(&self.c5),
            dense(&self.f6, Some(activation)),
            dense(&self.f7, None),
        ];
        self.layer_shapes(device)
            .into_iter()
            .zip(described)
            .map(|((name, output), (kind, parameters))| LayerInfo {
                name,
                kind,
                output,
                parameters,
            })
            .collect()
    }

    /// Class logits `[batch, 10]` for normalised images `[batch, 1, 28, 28]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_observed(images, |_, _| {})
    }

    /// The output shape of each layer (without the batch dimension) for one image.
    pub fn layer_shapes(&self, device: &Device) -> Vec<(&'static str, Vec<usize>)> {
        let mut shapes = Vec::new();
        let image = Tensor::zeros([1, 1, 28, 28], device);
        self.forward_observed(image, |layer, dims| {
            shapes.push((layer, dims[1..].to_vec()))
        });
        shapes
    }

    /// The forward pass, telling `observe` each layer's name and output dimensions.
    fn forward_observed(
        &self,
        images: Tensor<4>,
        mut observe: impl FnMut(&'static str, &[usize]),
    ) -> Tensor<2> {
        let x = self.activate(self.c1.forward(images));
        observe("c1", &x.dims());
        let x = self.s2.forward(x);
        observe("s2", &x.dims());
        let x = self.activate(self.c3.forward(x));
        observe("c3", &x.dims());
        let x = self.s4.forward(x);
        observe("s4", &x.dims());
        let x = self.activate(self.c5.forward(x));
        observe("c5", &x.dims());
        let x: Tensor<2> = x.flatten(1, 3);
        let x = self.activate(self.f6.forward(x));
        observe("f6", &x.dims());
        let logits = self.f7.forward(x);
        observe("f7", &logits.dims());
        logits
    }

    fn activate<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self.activation {
            ActivationKind::Relu => relu(x),
            ActivationKind::Tanh => tanh(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Backend;

    fn device() -> Device {
        Backend::preferred().device().unwrap()
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
            model.f7.num_params(),
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
