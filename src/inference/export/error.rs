//! What can go wrong moving a model to or from another framework's format.

use burn::store::SafetensorsStoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("safetensors: {0}")]
    Format(String),
    #[error("{0}")]
    Mismatch(String),
    #[error(
        "safetensors in PyTorch's layout holds Conv2d and Linear layers; this model has {0}, \
         which PyTorch has no layer for"
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
