//! How a run is carried out beyond what its config says: how it starts in its folder, what it
//! shows, what stops it, and who is told how it goes.

use std::sync::Arc;

use burn::train::Interrupter;

use super::error::TrainingError;
use crate::data::loader::Position;
use crate::run::history::EpochMetrics;

/// How a run starts in its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// A new run. A folder that holds a run is refused, unless that run left nothing to keep
    /// (it failed or was killed before its first checkpoint).
    New,
    /// A new run in place of the one in the folder (`--overwrite`).
    Overwrite,
    /// The run in the folder, from its newest checkpoint; the config must be the one it started
    /// with (`--resume`, `lenet resume`).
    Resume,
    /// The run in the folder continued to `epochs` epochs in all, from its newest checkpoint,
    /// even if it finished (`lenet resume --epochs N`).
    Extend { epochs: usize },
}

impl StartMode {
    /// Whether the run goes on from what the folder holds.
    pub fn continues(self) -> bool {
        matches!(self, StartMode::Resume | StartMode::Extend { .. })
    }
}

/// Where a run is, as training reports it to [`TrainOptions::on_progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// About to train from this position.
    Starting(Position),
    /// A training batch is done; the position counts it.
    Trained(Position),
    /// A validation batch of `epoch` is done; `batches` of them so far.
    Validated { epoch: usize, batches: usize },
    /// The epoch was validated, recorded and checkpointed.
    EpochEnded(usize),
    /// Training is over and the final model is being evaluated on the test set.
    Testing,
}

/// A function told each [`Progress`] of a run.
pub type ProgressHook = Arc<dyn Fn(Progress) + Send + Sync>;

/// A function told of a run killed from the dashboard, just before the process exits with 130.
pub type KillHook = Arc<dyn Fn(&TrainingError) + Send + Sync>;

/// A function told, as a run ends, one line per tracker it was also logged to: where, and
/// what could not be sent there.
pub type TrackedHook = Arc<dyn Fn(&str) + Send + Sync>;

/// Asked between epochs (and before a resumed run's first) with the epochs done so far: a
/// reason ends the run there, as early stopping does, tested and written as finished, with the
/// reason in its summary. Never asked after the last epoch, nor before the first.
pub type EpochGate = Arc<dyn Fn(&[EpochMetrics]) -> Option<String> + Send + Sync>;

/// How a run is carried out, beyond what the config says.
#[derive(Clone)]
pub struct TrainOptions {
    /// Show Burn's terminal dashboard when stdout is a terminal.
    pub dashboard: bool,
    /// Stops training at the next batch boundary when asked to (Ctrl-C, `q` in the dashboard).
    pub interrupter: Interrupter,
    /// Told where the run is after every batch, epoch and phase.
    pub on_progress: Option<ProgressHook>,
    /// Says that the dashboard killed the run (q, then k), in the caller's words; without it,
    /// the error's own line goes to stderr.
    pub on_kill: Option<KillHook>,
    /// Told where the run was also logged, as it ends.
    pub on_tracked: Option<TrackedHook>,
    /// Ends the run early, between epochs, when it gives a reason (a sweep's hyperband).
    pub epoch_gate: Option<EpochGate>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            dashboard: true,
            interrupter: Interrupter::new(),
            on_progress: None,
            on_kill: None,
            on_tracked: None,
            epoch_gate: None,
        }
    }
}

impl TrainOptions {
    pub(super) fn report(&self, progress: Progress) {
        if let Some(hook) = &self.on_progress {
            hook(progress);
        }
    }
}
