//! The weights as safetensors, in PyTorch's layout and names, so that a PyTorch LeNet-5 with the
//! same layers (`c1`, `c3`, `c5` as `nn.Conv2d`, `f6`, `f7` as `nn.Linear`) loads them with
//! `load_state_dict`; and back.
//!
//! Written through burn-store's safetensors store with its PyTorch adapters, which transpose a
//! linear layer's weight between Burn's `[in, out]` and PyTorch's `[out, in]` (convolutions
//! already share PyTorch's `[out, in, kh, kw]`). The activation and pooling travel as metadata.

use std::collections::BTreeMap;

use burn::prelude::*;
use burn::store::{
    ApplyError, BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore,
};
use safetensors::SafeTensors;
use serde_json::Value;

use super::error::ExportError;
use crate::model::{ActivationKind, LeNet5, LeNet5Config, PoolingKind, Subsampling, Variant};

/// The part of `model` that PyTorch has no layer for, if any.
fn no_pytorch_layer(model: &LeNet5) -> Option<&'static str> {
    match (model.variant, model.activation, &model.s2, &model.f7) {
        (Variant::Lecun98, ..) => Some("the 1998 input scaling and C3 connection table"),
        (_, ActivationKind::ScaledTanh, ..) => Some("the scaled tanh"),
        (_, _, Subsampling::Trainable(_), _) => Some("trainable subsampling"),
        (.., None) => Some("RBF output units"),
        _ => None,
    }
}

/// The model's weights as a safetensors file, with the activation and pooling as metadata.
/// The same weights always give the same bytes.
pub fn to_safetensors(model: &LeNet5, config: &LeNet5Config) -> Result<Vec<u8>, ExportError> {
    if let Some(feature) = no_pytorch_layer(model) {
        return Err(ExportError::NoPyTorchLayer(feature));
    }
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .clear_metadata()
        .metadata("format", "pt")
        .metadata("model", "LeNet-5")
        .metadata("activation", config.activation.to_string())
        .metadata("pooling", config.pooling.to_string());
    model.save_into(&mut store)?;
    canonical_header(store.get_bytes()?)
}

/// A model built from a safetensors file in the layout [`to_safetensors`] writes, its
/// activation and pooling read from the file's metadata.
pub fn from_safetensors(bytes: &[u8], device: &Device) -> Result<LeNet5, ExportError> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| ExportError::Format(e.to_string()))?;
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
    load_safetensors(bytes, config.init(device))
}

/// `model` with its weights read from a safetensors file in PyTorch's layout. Every tensor the
/// model needs must be there with its shape, and nothing else; every problem is named.
pub fn load_safetensors(bytes: &[u8], mut model: LeNet5) -> Result<LeNet5, ExportError> {
    if let Some(feature) = no_pytorch_layer(&model) {
        return Err(ExportError::NoPyTorchLayer(feature));
    }
    let mut store = SafetensorsStore::from_bytes(Some(bytes.to_vec()))
        .with_from_adapter(PyTorchToBurnAdapter)
        .allow_partial(true)
        .validate(false);
    let applied = model.load_from(&mut store)?;
    // In PyTorch's layout, which the file is in: a linear weight is [out, in].
    let torch_shape = |dims: &[usize]| {
        let mut dims = dims.to_vec();
        if dims.len() == 2 {
            dims.reverse();
        }
        format!("{dims:?}")
    };
    let mut problems: Vec<String> = applied
        .errors
        .iter()
        .map(|error| match error {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => format!(
                "{path} has shape {}, the model needs {}",
                torch_shape(found.as_slice()),
                torch_shape(expected.as_slice())
            ),
            other => other.to_string(),
        })
        .collect();
    problems.extend(
        applied
            .missing
            .iter()
            .map(|(path, _)| format!("{path} is missing")),
    );
    problems.extend(
        applied
            .unused
            .iter()
            .map(|path| format!("{path} is not a tensor of this model")),
    );
    if problems.is_empty() {
        Ok(model)
    } else {
        Err(ExportError::Mismatch(problems.join("; ")))
    }
}

/// The safetensors file with its JSON header's keys in sorted order. safetensors writes the
/// metadata from a `HashMap`, whose order changes from run to run, so the same weights gave
/// different bytes; the tensors' offsets are explicit, so the order of the keys is free.
fn canonical_header(bytes: Vec<u8>) -> Result<Vec<u8>, ExportError> {
    let malformed = |what: &str| ExportError::Format(format!("burn-store wrote {what}"));
    let length = bytes
        .get(..8)
        .map(|n| u64::from_le_bytes(n.try_into().expect("8 bytes")) as usize)
        .ok_or_else(|| malformed("no header"))?;
    let header = bytes
        .get(8..8 + length)
        .ok_or_else(|| malformed("a truncated header"))?;
    let header: Value =
        serde_json::from_slice(header).map_err(|_| malformed("a header that is not JSON"))?;
    let mut text = serde_json::to_string(&sorted(header)).expect("JSON serialises");
    // The data starts 8-byte aligned, as safetensors writes it.
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + length..]);
    Ok(out)
}

/// `value` with every object's keys in sorted order, whatever map serde_json was built with.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let entries: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(entries.into_iter().collect())
        }
        other => other,
    }
}
