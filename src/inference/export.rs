//! The weights as safetensors, in PyTorch's layout and names, so that a PyTorch LeNet-5 with the
//! same layers (`c1`, `c3`, `c5` as `nn.Conv2d`, `f6`, `f7` as `nn.Linear`) loads them with
//! `load_state_dict`; and back.
//!
//! Convolutions already share PyTorch's `[out, in, kh, kw]` layout. Burn keeps a linear layer's
//! weight as `[in, out]`, PyTorch as `[out, in]`: those are transposed both ways.

use std::collections::HashMap;

use burn::module::Param;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use thiserror::Error;

use crate::model::{ActivationKind, LeNet5, LeNet5Config, PoolingKind, Variant};

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("safetensors: {0}")]
    Format(#[from] safetensors::SafeTensorError),
    #[error("safetensors: tensor {name}: {problem}")]
    Tensor { name: String, problem: String },
    #[error(
        "export writes PyTorch's Conv2d and Linear layers; this model has {0}, which PyTorch has no \
         layer for"
    )]
    NoPyTorchLayer(&'static str),
}

/// A weight tensor in PyTorch's layout: name, shape, values in row-major order.
struct Weight {
    name: String,
    shape: Vec<usize>,
    values: Vec<f32>,
}

fn conv_weights(name: &str, conv: &Conv2d) -> Vec<Weight> {
    let mut weights = vec![Weight {
        name: format!("{name}.weight"),
        shape: conv.weight.dims().to_vec(),
        values: conv.weight.val().into_data().iter::<f32>().collect(),
    }];
    if let Some(bias) = &conv.bias {
        weights.push(bias_weight(name, bias));
    }
    weights
}

fn linear_weights(name: &str, linear: &Linear) -> Vec<Weight> {
    let transposed = linear.weight.val().transpose();
    let mut weights = vec![Weight {
        name: format!("{name}.weight"),
        shape: transposed.dims().to_vec(),
        values: transposed.into_data().iter::<f32>().collect(),
    }];
    if let Some(bias) = &linear.bias {
        weights.push(bias_weight(name, bias));
    }
    weights
}

fn bias_weight(name: &str, bias: &Param<Tensor<1>>) -> Weight {
    Weight {
        name: format!("{name}.bias"),
        shape: bias.dims().to_vec(),
        values: bias.val().into_data().iter::<f32>().collect(),
    }
}

/// The model's weights as a safetensors file, with the activation and pooling as metadata.
pub fn to_safetensors(model: &LeNet5, config: &LeNet5Config) -> Result<Vec<u8>, ExportError> {
    let unsupported = match (config.variant, config.activation, config.pooling, &model.f7) {
        (Variant::Lecun98, ..) => Some("the 1998 input scaling and C3 connection table"),
        (_, ActivationKind::ScaledTanh, ..) => Some("the scaled tanh"),
        (_, _, PoolingKind::Trainable, _) => Some("trainable subsampling"),
        (.., None) => Some("RBF output units"),
        _ => None,
    };
    if let Some(feature) = unsupported {
        return Err(ExportError::NoPyTorchLayer(feature));
    }
    let f7 = model.f7.as_ref().expect("checked above");
    let weights: Vec<Weight> = [
        conv_weights("c1", &model.c1),
        conv_weights("c3", &model.c3),
        conv_weights("c5", &model.c5),
        linear_weights("f6", &model.f6),
        linear_weights("f7", f7),
    ]
    .into_iter()
    .flatten()
    .collect();
    let bytes: Vec<Vec<u8>> = weights
        .iter()
        .map(|w| w.values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = weights
        .iter()
        .zip(&bytes)
        .map(|(w, data)| {
            Ok((
                w.name.clone(),
                TensorView::new(Dtype::F32, w.shape.clone(), data)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("model".to_string(), "LeNet-5".to_string()),
        ("activation".to_string(), config.activation.to_string()),
        ("pooling".to_string(), config.pooling.to_string()),
    ]);
    Ok(safetensors::serialize(views, Some(metadata))?)
}

/// A model built from a safetensors file in the layout [`to_safetensors`] writes.
pub fn from_safetensors(bytes: &[u8], device: &Device) -> Result<LeNet5, ExportError> {
    let file = SafeTensors::deserialize(bytes)?;
    let (_, header) = SafeTensors::read_metadata(bytes)?;
    let meta = header.metadata().clone().unwrap_or_default();
    let config = LeNet5Config::new()
        .with_activation(match meta.get("activation").map(String::as_str) {
            Some("tanh") => ActivationKind::Tanh,
            _ => ActivationKind::Relu,
        })
        .with_pooling(match meta.get("pooling").map(String::as_str) {
            Some("avg") => PoolingKind::Avg,
            _ => PoolingKind::Max,
        });
    let mut model = config.init(device);
    let read = |name: &str, shape: &[usize]| -> Result<TensorData, ExportError> {
        let problem = |problem: String| ExportError::Tensor {
            name: name.to_string(),
            problem,
        };
        let view = file.tensor(name).map_err(|e| problem(e.to_string()))?;
        if view.dtype() != Dtype::F32 {
            return Err(problem(format!("dtype {:?}, expected F32", view.dtype())));
        }
        if view.shape() != shape {
            return Err(problem(format!(
                "shape {:?}, expected {shape:?}",
                view.shape()
            )));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(TensorData::new(values, shape.to_vec()))
    };
    let load_conv = |name: &str, conv: &mut Conv2d| -> Result<(), ExportError> {
        let shape = conv.weight.dims();
        conv.weight = Param::from_tensor(Tensor::from_data(
            read(&format!("{name}.weight"), &shape)?,
            device,
        ));
        if let Some(bias) = &mut conv.bias {
            *bias = Param::from_tensor(Tensor::from_data(
                read(&format!("{name}.bias"), &bias.dims())?,
                device,
            ));
        }
        Ok(())
    };
    let load_linear = |name: &str, linear: &mut Linear| -> Result<(), ExportError> {
        let [input, output] = linear.weight.dims();
        let torch: Vec<f32> = read(&format!("{name}.weight"), &[output, input])?
            .iter::<f32>()
            .collect();
        // Transposed here rather than with `Tensor::transpose`, so the weight is laid out as
        // Burn's own: a strided view would change the order of the matmul's sums, and with it
        // the last bits of the logits.
        let burn: Vec<f32> = (0..input * output)
            .map(|i| torch[(i % output) * input + i / output])
            .collect();
        let weight = TensorData::new(burn, [input, output]);
        linear.weight = Param::from_tensor(Tensor::from_data(weight, device));
        if let Some(bias) = &mut linear.bias {
            *bias = Param::from_tensor(Tensor::from_data(
                read(&format!("{name}.bias"), &bias.dims())?,
                device,
            ));
        }
        Ok(())
    };
    load_conv("c1", &mut model.c1)?;
    load_conv("c3", &mut model.c3)?;
    load_conv("c5", &mut model.c5)?;
    load_linear("f6", &mut model.f6)?;
    if let Some(f7) = &mut model.f7 {
        load_linear("f7", f7)?;
    }
    Ok(model)
}
