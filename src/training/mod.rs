//! Training LeNet-5 through Burn's `SupervisedTraining` and `Learner`, then one evaluation on
//! the test set. It knows nothing of the command line and prints nothing: [`Training`]'s
//! `Display` says what is about to happen, and [`Training::launch`] returns the run's summary.
//!
//! A run goes through these phases, in this order:
//!
//! 1. resolve the config: backend, data folder, run folder ([`prepare`]);
//! 2. read the data and split it, which settles the classes, and with them the output layer;
//! 3. check everything about the run folder before writing to it (a resumed or extended run's
//!    config and checkpoints: [`resume`]; `init_from`'s source: [`init`]), then lock it and
//!    open it as the [`StartMode`] says;
//! 4. build the learner, from another run's weights with `init_from`, or restore it from the
//!    newest checkpoint;
//! 5. make the loaders;
//! 6. launch Burn's training with the resumable loop ([`resumable`]), the checkpoints
//!    ([`checkpoint`]) and the dashboard or the line renderer ([`renderer`]) ([`launch`]);
//! 7. turn how the loop ended into a result, and write the outputs, testing the final model and
//!    the best epoch's.
//!
//! [`step`] holds the training and validation steps the learner runs; [`burn_glue`] every place
//! that leans on how Burn behaves rather than on its API; [`error`] what can stop a run.

mod average;
pub mod burn_glue;
pub mod checkpoint;
pub mod error;
pub mod init;
mod launch;
pub mod options;
mod prepare;
pub mod renderer;
mod resumable;
mod resume;
pub mod step;

pub use error::TrainingError;
pub use options::{
    EpochGate, KillHook, Progress, ProgressHook, StartMode, TrackedHook, TrainOptions,
};
pub use prepare::Training;

use crate::config::TrainingConfig;
use crate::run::RunSummary;

/// Trains a model as `config` says (its name `config_name` names the default run folder),
/// started in its folder as `mode` says, evaluates it on the test set and writes the run folder.
pub fn train(
    config: &TrainingConfig,
    config_name: &str,
    mode: StartMode,
    options: &TrainOptions,
) -> Result<RunSummary, TrainingError> {
    Training::prepare(config, config_name, mode, options)?.launch()
}
