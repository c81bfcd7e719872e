//! The network described for people: each layer's kind, output shape and trainable
//! parameters, as `lenet summary` and the start of training show them.

use burn::nn::conv::Conv2d;
use burn::nn::{Linear, PaddingConfig2d};
use burn::prelude::*;
use serde::Serialize;

use super::lecun98;
use super::{ActivationKind, LeNet5, Subsampling, Variant};
use crate::input::IMAGE_SIDE;

/// One row of the per-layer table, as `docs/design.md` draws it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerInfo {
    pub name: &'static str,
    pub kind: String,
    /// Output shape for one image (no batch dimension).
    pub output: Vec<usize>,
    pub parameters: usize,
}

/// Values of one layer's output for one image (or of a set of weights), flat in the shape's
/// row-major order: what `lenet explain` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerValues {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl LayerValues {
    /// The smallest and largest value, the range one colour scale covers.
    pub fn range(&self) -> (f32, f32) {
        self.values
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(low, high), &v| {
                (low.min(v), high.max(v))
            })
    }
}

impl LeNet5 {
    /// Every layer with its kind, output shape and trainable parameter count, in the order
    /// data flows.
    pub fn layers(&self, device: &Device) -> Vec<LayerInfo> {
        self.layer_shapes(device)
            .into_iter()
            .zip(self.described())
            .map(|((name, output), (kind, parameters))| LayerInfo {
                name,
                kind,
                output,
                parameters,
            })
            .collect()
    }

    /// Parameters training can change: all of them, less the C3 weights Table I leaves out.
    pub fn trainable_params(&self) -> usize {
        self.described().iter().map(|(_, count)| count).sum()
    }

    /// Each layer's kind and trainable parameter count.
    fn described(&self) -> Vec<(String, usize)> {
        let activation = self.activation;
        let paper = self.variant == Variant::Lecun98;
        let conv = |c: &Conv2d, table: bool| {
            let [out, input, kh, kw] = c.weight.dims();
            let padding = match c.padding {
                PaddingConfig2d::Explicit(top, ..) if top > 0 => format!(", padding {top}"),
                _ if paper && input == 1 => ", on the 32x32 paper-scaled input".to_string(),
                _ => String::new(),
            };
            if table {
                let connections = lecun98::c3_connections();
                (
                    format!("conv {kh}x{kw}, {input}->{out} by Table I, {activation}"),
                    connections * kh * kw + out,
                )
            } else {
                (
                    format!("conv {kh}x{kw}, {input}->{out}{padding}, {activation}"),
                    c.num_params(),
                )
            }
        };
        let pool = |s: &Subsampling| match s {
            Subsampling::Max(_) => ("max pool 2x2".to_string(), 0),
            Subsampling::Avg(_) => ("avg pool 2x2".to_string(), 0),
            Subsampling::Trainable(layer) => (
                format!("2x2 sum x coef + bias, {activation}"),
                layer.num_params(),
            ),
        };
        let dense = |l: &Linear, activation: Option<ActivationKind>| {
            let [input, out] = l.weight.dims();
            let activation = activation.map_or(String::new(), |a| format!(", {a}"));
            (format!("dense {input}->{out}{activation}"), l.num_params())
        };
        let output = match &self.f7 {
            Some(linear) => dense(linear, None),
            None => ("RBF 84->10, fixed 7x12 prototypes".to_string(), 0),
        };
        vec![
            conv(&self.c1, false),
            pool(&self.s2),
            conv(&self.c3, paper),
            pool(&self.s4),
            conv(&self.c5, false),
            dense(&self.f6, Some(activation)),
            output,
        ]
    }

    /// The output shape of each layer (without the batch dimension) for one image.
    pub fn layer_shapes(&self, device: &Device) -> Vec<(&'static str, Vec<usize>)> {
        let mut shapes = Vec::new();
        let image = Tensor::zeros([1, 1, IMAGE_SIDE, IMAGE_SIDE], device);
        self.forward_observed(image, |layer, output| {
            shapes.push((layer, output.dims()[1..].to_vec()))
        });
        shapes
    }
}
