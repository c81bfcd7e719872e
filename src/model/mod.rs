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

/// One layer's output for a batch, as the forward pass makes it.
pub enum LayerOutput<'a> {
    /// Feature maps `[batch, maps, height, width]`: C1 to C5.
    Maps(&'a Tensor<4>),
    /// Units `[batch, units]`: F6, and F7 (the logits, or the 1998 network's RBF distances).
    Units(&'a Tensor<2>),
}

impl LayerOutput<'_> {
    pub fn dims(&self) -> Vec<usize> {
        match self {
            LayerOutput::Maps(x) => x.dims().to_vec(),
            LayerOutput::Units(x) => x.dims().to_vec(),
        }
    }

    /// Every value, in the dimensions' row-major order.
    pub fn values(&self) -> Vec<f32> {
        let data = match self {
            LayerOutput::Maps(x) => (*x).clone().into_data(),
            LayerOutput::Units(x) => (*x).clone().into_data(),
        };
        data.iter::<f32>().collect()
    }
}

/// What [`LeNet5::forward_observed`] shows each layer's output to.
type Observer<'a> = dyn FnMut(&'static str, LayerOutput<'_>) + 'a;

impl LeNet5 {
    /// Class logits `[batch, 10]` for normalised images `[batch, 1, 28, 28]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.run(images, None)
    }

    /// The forward pass, showing `observe` each layer's output by the layer's name, in the
    /// order data flows: what `lenet explain` shows and `lenet summary` measures is the model's
    /// own computation, not a copy of it.
    pub fn forward_observed(
        &self,
        images: Tensor<4>,
        mut observe: impl FnMut(&'static str, LayerOutput<'_>),
    ) -> Tensor<2> {
        self.run(images, Some(&mut observe))
    }

    /// The forward pass. Unobserved, a convolution followed by relu and a max pool runs as one
    /// op ([`kernels::conv_relu_max_pool`], the same values to the bit, the gradients up to
    /// rounding), since the maps between them need not exist; observed, they run one by one so
    /// that C1's and C3's maps can be shown.
    fn run(&self, images: Tensor<4>, mut observe: Option<&mut Observer<'_>>) -> Tensor<2> {
        let fuse = observe.is_none() && self.activation == ActivationKind::Relu;
        let mut show = |layer: &'static str, output: LayerOutput<'_>| {
            if let Some(observe) = observe.as_mut() {
                observe(layer, output);
            }
        };
        let paper = self.variant == Variant::Lecun98;
        let images = if paper {
            lecun98::paper_input(images)
        } else {
            images
        };
        let x = match &self.s2 {
            Subsampling::Max(pool) if fuse => kernels::conv_relu_max_pool(images, &self.c1, pool),
            _ => {
                let x = self.activate(kernels::conv2d(images, &self.c1));
                show("c1", LayerOutput::Maps(&x));
                self.subsample(&self.s2, x)
            }
        };
        show("s2", LayerOutput::Maps(&x));
        let x = match &self.s4 {
            Subsampling::Max(pool) if fuse && !paper => {
                kernels::conv_relu_max_pool(x, &self.c3, pool)
            }
            _ => {
                let x = if paper {
                    // Table I: C3 sees only some S2 maps. Masking the weights (not the output)
                    // keeps the layer a plain convolution with zero gradients where there is
                    // no connection.
                    let weight = self.c3.weight.val() * lecun98::c3_mask(&x.device());
                    let bias = self.c3.bias.as_ref().expect("C3 has a bias").val();
                    kernels::conv2d_stride1(x, weight, bias, [0, 0])
                } else {
                    kernels::conv2d(x, &self.c3)
                };
                let x = self.activate(x);
                show("c3", LayerOutput::Maps(&x));
                self.subsample(&self.s4, x)
            }
        };
        show("s4", LayerOutput::Maps(&x));
        let x = self.activate(kernels::conv2d(x, &self.c5));
        show("c5", LayerOutput::Maps(&x));
        let x: Tensor<2> = x.flatten(1, 3);
        let x = self.activate(self.f6.forward(x));
        show("f6", LayerOutput::Units(&x));
        match &self.f7 {
            Some(linear) => {
                let logits = linear.forward(x);
                show("f7", LayerOutput::Units(&logits));
                logits
            }
            None => {
                let distances = lecun98::rbf_distances(x);
                show("f7", LayerOutput::Units(&distances));
                distances.mul_scalar(-lecun98::RBF_SHARPNESS)
            }
        }
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
mod tests;
