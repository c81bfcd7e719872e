//! `lenet import`: a run folder made from weights in PyTorch's layout (safetensors, as
//! `lenet export` writes them or as a PyTorch LeNet-5's `state_dict` saves), so that a model
//! trained elsewhere can be evaluated, served and used by `lenet predict` like one trained
//! here. The config says which network the weights are for; every tensor is checked against
//! it before anything is written.

use std::path::{Path, PathBuf};

use super::InferenceError;
use super::export::load_safetensors;
use crate::config::TrainingConfig;
use crate::device::BackendKind;
use crate::run::{self, CONFIG_FILE, MODEL_FILE, RunError, RunLock};

/// Where an import wrote its run.
#[derive(Debug, Clone)]
pub struct Imported {
    pub run_dir: PathBuf,
    pub parameters: usize,
}

/// Makes the run folder `out` from the safetensors file `weights` and the config at `config`:
/// `config.json` and `model.bpk`, as a finished training would leave them (without a summary,
/// since nothing was trained or tested here).
pub fn import_weights(
    weights: &Path,
    config: &Path,
    out: &Path,
) -> Result<Imported, InferenceError> {
    let mut config = TrainingConfig::load(config)?;
    let backend = config.device.unwrap_or_else(BackendKind::preferred);
    let device = backend.device()?;
    let bytes = std::fs::read(weights).map_err(|source| RunError::Io {
        path: weights.to_path_buf(),
        action: "read",
        source,
    })?;
    // The output layer has a unit per class: the config's data.classes (a run's config.json
    // records them), else MNIST's ten.
    let model = config.model_config().init(&device);
    let model = load_safetensors(&bytes, model).map_err(|e| {
        let mut problem = e.to_string();
        if problem.contains("f7") && config.data.classes.is_none() {
            problem += "; f7 has a unit per class: name the classes in the config's \
                        data.classes (a run's config.json has them)";
        }
        InferenceError::Import {
            file: weights.to_path_buf(),
            problem,
        }
    })?;
    let parameters = model.trainable_params();
    let model_bytes = run::model_bytes(&model).map_err(|problem| InferenceError::Import {
        file: weights.to_path_buf(),
        problem,
    })?;

    let _lock = RunLock::acquire(out)?;
    run::prepare(out, false)?;
    config.device = Some(backend);
    config.artifact_dir = Some(out.to_path_buf());
    let json = serde_json::to_vec_pretty(&config).expect("config serialises");
    run::write_atomic(&out.join(MODEL_FILE), &model_bytes)?;
    run::write_atomic(&out.join(CONFIG_FILE), &json)?;
    Ok(Imported {
        run_dir: out.to_path_buf(),
        parameters,
    })
}
