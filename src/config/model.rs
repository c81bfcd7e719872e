//! The `model` section: which LeNet-5, and the parts that can be mixed between variants.

use serde::{Deserialize, Serialize};

use crate::model::{ActivationKind, LeNet5Config, OutputKind, PoolingKind, Variant};

/// The network. `variant` picks the modern LeNet-5 or the 1998 paper's; the other keys default
/// by variant (modern: relu, max, linear; lecun98: scaled_tanh, trainable, rbf) and can be set
/// to mix the two.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    pub variant: Variant,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation: Option<ActivationKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pooling: Option<PoolingKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputKind>,
}

impl ModelSection {
    /// The model's Burn config: the variant's own parts, except those this section sets.
    pub fn to_model_config(self) -> LeNet5Config {
        let defaults = LeNet5Config::for_variant(self.variant);
        LeNet5Config {
            activation: self.activation.unwrap_or(defaults.activation),
            pooling: self.pooling.unwrap_or(defaults.pooling),
            output: self.output.unwrap_or(defaults.output),
            ..defaults
        }
    }
}
