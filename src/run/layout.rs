//! The names of what a run puts in its folder (the module's page draws the layout), and the
//! list `--overwrite` removes.

pub const CONFIG_FILE: &str = "config.json";
pub const MODEL_FILE: &str = "model.bpk";
pub const BEST_MODEL_FILE: &str = "model_best.bpk";
pub const SUMMARY_FILE: &str = "summary.json";
pub const METRICS_FILE: &str = "metrics.csv";
pub const PLOTS_DIR: &str = "plots";
pub const EVAL_DIR: &str = "eval";
pub const CHECKPOINT_DIR: &str = "checkpoints";
/// Where `lenet eval --model best` writes, beside `eval/` of the final model.
pub const BEST_EVAL_DIR: &str = "eval-best";
/// MLflow: the tracking server and run id of the run, when it logs there (`tracking.mlflow`).
pub const MLFLOW_FILE: &str = "mlflow.json";
/// TensorBoard's event files, when the run logs to it (`tracking.tensorboard`).
pub const TENSORBOARD_DIR: &str = "tensorboard";
/// How the run is going or how it ended (see [`super::status`]).
pub const STATUS_FILE: &str = "status.json";
/// Marks a folder of runs made by one sweep (`lenet sweep`), each trial a run folder in it;
/// such a folder's runs go by `<sweep>/<trial>` among the runs of the folder above.
pub const SWEEP_FILE: &str = "sweep.json";

/// Everything a run puts in its folder; `--overwrite` removes exactly these, nothing else.
pub const RUN_ENTRIES: [&str; 15] = [
    CONFIG_FILE,
    STATUS_FILE,
    MODEL_FILE,
    BEST_MODEL_FILE,
    BEST_EVAL_DIR,
    SUMMARY_FILE,
    METRICS_FILE,
    PLOTS_DIR,
    EVAL_DIR,
    CHECKPOINT_DIR,
    TENSORBOARD_DIR,
    MLFLOW_FILE,
    "train",
    "valid",
    "experiment.log",
];
