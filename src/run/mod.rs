//! A run: one training of the model, and the folder it writes. This module owns that folder:
//! its layout, the policy for reusing it, atomic writes into it ([`atomic`]), what a finished
//! run leaves there ([`summary`], [`history`]) and loading a finished run back ([`finished`]).
//! It knows the config and the model, but nothing of how training or evaluation work.
//!
//! ```text
//! artifacts/<config name>/
//!   config.json        the resolved config (CLI overrides applied, device and data folder filled in)
//!   model.bpk          the final weights (Burn's burnpack format)
//!   model_best.bpk     the weights of the best epoch by validation (see `early_stopping`)
//!   summary.json       test accuracy, epochs, device, timings, per-epoch metrics
//!   metrics.csv        per-epoch loss, accuracy, learning rate and seconds, train and valid
//!   plots/             loss.png and accuracy.png per epoch
//!   status.json        training, stopped, failed or finished; the config's name; first start
//!   eval/              what `lenet eval` writes (and a run logged to a tracker, at its end)
//!   tensorboard/       TensorBoard's event files, with `tracking.tensorboard`
//!   mlflow.json        the MLflow run it is logged to, with `tracking.mlflow`
//!   checkpoints/       the two newest checkpoints (model, optimizer, scheduler, position)
//!   train/ valid/      Burn's metric logs, one folder per epoch
//!   .lock              held by the process training in the folder, if any
//! ```

pub mod atomic;
pub mod error;
pub mod finished;
pub mod folder;
pub mod history;
pub mod invocation;
pub mod layout;
pub mod listing;
pub mod lock;
pub mod mlflow_record;
pub mod status;
pub mod summary;

pub use atomic::write_atomic;
pub use error::RunError;
pub use finished::{FinishedRun, ModelChoice};
pub use folder::{create_dir, model_bytes, name, prepare, prepare_resume, save_model};
pub use invocation::invocation;
pub use layout::{
    BEST_EVAL_DIR, BEST_MODEL_FILE, CHECKPOINT_DIR, CONFIG_FILE, EVAL_DIR, METRICS_FILE,
    MLFLOW_FILE, MODEL_FILE, PLOTS_DIR, STATUS_FILE, SUMMARY_FILE, SWEEP_FILE, TENSORBOARD_DIR,
};
pub use listing::{RunDetails, RunInfo, Tracked, find_run, has_tensorboard_events, list_runs};
pub use lock::RunLock;
pub use mlflow_record::MlflowRecord;
pub use status::{RunState, RunStatus};
pub use summary::{BestEpoch, RunSummary};
