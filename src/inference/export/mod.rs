//! A trained model in the formats other tools read: [`safetensors`] in PyTorch's layout (and
//! back, for `lenet import`), and [`onnx`] for ONNX runtimes.

pub mod error;
pub mod onnx;
mod onnx_proto;
pub mod safetensors;

pub use error::ExportError;
pub use onnx::to_onnx;
pub use safetensors::{from_safetensors, load_safetensors, to_safetensors};
