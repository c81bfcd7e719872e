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
    BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore,
    SafetensorsStoreError,
};
use safetensors::SafeTensors;
use serde_json::Value;
use thiserror::Error;

use crate::model::{ActivationKind, LeNet5, LeNet5Config, PoolingKind, Variant};

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("safetensors: {0}")]
    Format(String),
    #[error("safetensors: tensor {name}: {problem}")]
    Tensor { name: String, problem: String },
    #[error(
        "export writes PyTorch's Conv2d and Linear layers; this model has {0}, which PyTorch has no \
         layer for"
    )]
    NoPyTorchLayer(&'static str),
}

impl From<SafetensorsStoreError> for ExportError {
    fn from(error: SafetensorsStoreError) -> Self {
        // burn-store's messages can span lines; an error here is one line.
        ExportError::Format(
            error
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        )
    }
}

/// The model's weights as a safetensors file, with the activation and pooling as metadata.
/// The same weights always give the same bytes.
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

/// A model built from a safetensors file in the layout [`to_safetensors`] writes. Every tensor
/// the model needs must be there with its shape, and nothing else.
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
    let mut model = config.init(device);
    let mut store = SafetensorsStore::from_bytes(Some(bytes.to_vec()))
        .with_from_adapter(PyTorchToBurnAdapter)
        .allow_partial(true)
        .validate(false);
    let applied = model.load_from(&mut store)?;
    let problem = |name: &str, problem: String| ExportError::Tensor {
        name: name.to_string(),
        problem,
    };
    if let Some(error) = applied.errors.first() {
        return Err(problem("", error.to_string()));
    }
    if let Some((name, _)) = applied.missing.first() {
        return Err(problem(name, "missing".to_string()));
    }
    if let Some(name) = applied.unused.first() {
        return Err(problem(name, "not a tensor of this model".to_string()));
    }
    Ok(model)
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
