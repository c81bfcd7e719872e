//! `init_from`: a run that starts from another finished run's weights instead of random ones,
//! layer by layer, with the layers named in `init_from_skip` left at their fresh values (a new
//! output layer for other classes, say).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::ModuleRecord;

use super::error::TrainingError;
use crate::config::TrainingConfig;
use crate::data::classes::brief;
use crate::model::LeNet5;
use crate::run::{CONFIG_FILE, FinishedRun, MODEL_FILE};

/// A finished run whose weights a new run starts from, checked to fit it, its weights read.
pub struct Source {
    dir: PathBuf,
    config: TrainingConfig,
    record: ModuleRecord,
}

impl Source {
    /// Checks that the finished run in `dir` can give its weights to a run of `config` in
    /// `run_dir`: another run, with the same layers, and the same output layer unless
    /// `init_from_skip` names f7. Reads its weights now, before anything is written.
    pub fn check(
        dir: &Path,
        config: &TrainingConfig,
        run_dir: &Path,
    ) -> Result<Self, TrainingError> {
        let problem = |message: String| TrainingError::InitFrom {
            dir: dir.to_path_buf(),
            message,
        };
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same(dir, run_dir) {
            return Err(problem(
                "is this run's own folder; a run starts from another, finished one".to_string(),
            ));
        }
        // Loading it as a finished run checks the folder and says what is wrong in the usual
        // words, which name the folder already.
        let finished = FinishedRun::load(dir, config.device).map_err(|e| {
            let message = e.to_string();
            let prefix = format!("{}: ", dir.display());
            problem(
                message
                    .strip_prefix(&prefix)
                    .unwrap_or(&message)
                    .to_string(),
            )
        })?;
        let theirs = finished.config.model_config();
        let ours = config.model_config();
        for (what, a, b) in [
            (
                "variant",
                theirs.variant.to_string(),
                ours.variant.to_string(),
            ),
            (
                "pooling",
                theirs.pooling.to_string(),
                ours.pooling.to_string(),
            ),
        ] {
            if a != b {
                return Err(problem(format!(
                    "its model has {what} {a}, this config's has {b}; weights carry over only \
                     between models with the same layers"
                )));
            }
        }
        // The output layer's units are the classes, in order: other classes (even as many) make
        // its weights mean something else.
        let (their_classes, our_classes) = (
            finished.config.data.class_names(),
            config.data.class_names(),
        );
        let output_differs = their_classes != our_classes || theirs.output != ours.output;
        if output_differs && !config.init_from_skip.iter().any(|l| l == "f7") {
            return Err(problem(format!(
                "its output layer is for the classes ({}), this run's data has ({}): add \
                 \"init_from_skip\": [\"f7\"] to the config to start the output layer afresh",
                brief(&their_classes, 5),
                brief(&our_classes, 5)
            )));
        }
        let record = ModuleRecord::load(dir.join(MODEL_FILE))
            .map_err(|e| problem(format!("{MODEL_FILE}: {e}")))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config: finished.config,
            record,
        })
    }

    /// `model` (made by `config`, on the autodiff `device`) with this run's final weights in
    /// every layer but those `config.init_from_skip` names.
    pub fn apply(
        self,
        model: LeNet5,
        config: &TrainingConfig,
        device: &Device,
    ) -> Result<LeNet5, TrainingError> {
        let problem = |message: String| TrainingError::InitFrom {
            dir: self.dir.clone(),
            message,
        };
        let loaded = self
            .config
            .model_config()
            .init(device)
            .try_load_record(self.record)
            .map_err(|e| problem(format!("{MODEL_FILE}: {e} (see its {CONFIG_FILE})")))?;
        Ok(model.with_layers_of(loaded, &config.init_from_skip))
    }
}
